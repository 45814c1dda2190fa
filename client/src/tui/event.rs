//! The messages between the TUI's threads: [`Event`]s flow into the UI loop (keys, pushes, results), [`Job`]s
//! flow from it to the sender thread.

use std::collections::BTreeMap;
use std::time::Instant;

use crossterm::event::{KeyEvent, MouseEvent};
use protocol::Op;

use super::conversation::Conversation;

/// Everything that can change the state of the [`App`](super::app::App).
#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Text pasted into the terminal (bracketed paste): typed into the input line as one piece, line breaks
    /// included as spaces, so a pasted paragraph is not sent line by line.
    Paste(String),
    /// The terminal's new size, columns and rows.
    Resize(u16, u16),
    /// Time passes: the monotonic clock for timers and the wall clock (Unix seconds) for message times.
    Tick {
        now: Instant,
        wall: i64,
    },
    /// From the sender or receiver thread.
    Net(Net),
    /// A log line (warnings and errors): shown briefly on the status line, never printed over the screen.
    Log(String),
    /// SIGTERM, SIGHUP or SIGINT from outside: leave as `/quit` does.
    Signal,
    /// The history of `alias`, read from disk (or an error to show).
    HistoryLoaded {
        alias: String,
        conversations: BTreeMap<String, Conversation>,
        note: Option<String>,
    },
}

/// What the sender thread and the listener report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Net {
    /// A CONNECT for `alias` is about to be sent: pushes for that alias may follow at once.
    Connecting { alias: String },
    /// The result of REGISTER, UNREGISTER, CONNECT or DISCONNECT for `alias`, with the shell's result line
    /// (docs/protocol.md, section 8, "Client: output lines", for the status codes behind it).
    Done { op: Op, alias: String, ok: bool, line: String },
    /// The result of our message number `local`: its id and the text as normalized and sent, or why not.
    Sent { local: u64, result: Result<(u32, String), String> },
    /// The users connected now.
    Users(Vec<String>),
    /// CONNECTEDUSERS failed (generic failure or a network error, already logged): ask again at the next refresh.
    UsersFailed,
    /// CONNECTEDUSERS answered that we are not connected (the server dropped us, e.g. after a failed push).
    NotConnected,
    /// A message pushed to us.
    Message { from: String, id: u32, text: String, at: i64 },
    /// Our message `id` was delivered.
    Ack { id: u32 },
    /// The server could not be reached at all.
    ServerLost(String),
    /// How messages are being normalized now (the status line's "ws:" field).
    Normalizer(String),
    /// The sender thread has finished its QUIT (disconnected, listener closed).
    Stopped,
}

/// A command for the sender thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Register {
        alias: String,
        full_name: String,
        birth_date: String,
    },
    Unregister {
        alias: String,
    },
    Connect {
        alias: String,
    },
    Disconnect {
        alias: String,
    },
    Send {
        local: u64,
        from: String,
        to: String,
        text: String,
    },
    Users {
        alias: String,
    },
    /// Disconnect if connected, close the listener, report [`Net::Stopped`] and end.
    Quit,
}
