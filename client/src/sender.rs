//! The sender thread: runs one command at a time against the server and prints its result line.
//!
//! It owns the session (docs/protocol.md, "Client: commands") — the current user, the connected alias and its listener — so no
//! other thread needs a lock to know who we are. Commands arrive on a channel from the main thread (typed
//! lines) or from the signal thread (Ctrl-C); each user command is answered with a [`Done`] once its line is
//! printed, so the prompt comes back only after the result.

use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use client::conn::{self, ConnError, DEFAULT_TIMEOUT};
use client::listener::{ListenerHandle, PushSource};
use crossbeam_channel::{Receiver, Sender};
use log::debug;
use protocol::reply::{ConnectStatus, SendReply, UnregisterStatus};
use protocol::{Op, RegisterStatus, Reply, Request, MAX_FIELD_LEN};

use crate::format::{failure_line, printable, reason, result_line, SENDATTACH_REASON, SENDATTACH_UNSUPPORTED};
use crate::normalizer::Normalizer;
use crate::output::Output;
use crate::receiver;
use crate::shell::Command;

mod acks;

use acks::{AckTracker, MAX_TRACKED_ACKS};

/// How long a DISCONNECT (or QUIT) waits for the acknowledgements of the messages sent just before it.
///
/// On a live connection an acknowledgement follows its SEND within milliseconds; waiting this little lets a
/// script that sends and quits at once still see `SEND MESSAGE <id> OK`. An acknowledgement that misses it is not
/// lost: the server keeps it for the next CONNECT (docs/protocol.md, "Semantics in brief").
pub const ACK_GRACE: Duration = Duration::from_millis(1000);

/// The reason given when SEND or CONNECTEDUSERS has no user to act as.
const NO_CURRENT_USER: &str = "no current user: REGISTER or CONNECT first";

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A line the user typed: the main thread waits for its [`Done`].
    User,
    /// A signal (Ctrl-C): nobody waits; the program ends once the command is done.
    Signal,
}

/// One command for the sender thread.
#[derive(Debug)]
pub struct Job {
    pub command: Command,
    pub origin: Origin,
}

/// A user command is finished and its line printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// The command was QUIT: the session is over.
    pub quit: bool,
}

/// Starts the sender thread. `exit_on_signal` runs after a signal's QUIT has disconnected the user; it is
/// expected to end the process (the main thread is blocked reading input and cannot be woken).
pub fn spawn(
    mut session: Session,
    jobs: Receiver<Job>,
    done: Sender<Done>,
    exit_on_signal: Box<dyn FnOnce() + Send>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new().name("sender".into()).spawn(move || {
        for job in jobs.iter() {
            if job.origin == Origin::Signal {
                session.output.leave_editor();
            }
            let quit = session.run(job.command);
            match job.origin {
                Origin::User => {
                    if done.send(Done { quit }).is_err() {
                        // The main thread is gone: end the session as QUIT would.
                        session.run(Command::Quit);
                        return;
                    }
                }
                Origin::Signal if quit => {
                    exit_on_signal();
                    return;
                }
                Origin::Signal => {}
            }
            if quit {
                return;
            }
        }
        // Every command sender dropped without QUIT (cannot happen through main): still leave cleanly.
        session.run(Command::Quit);
    })
}

/// The state of one client session.
pub struct Session {
    server: SocketAddr,
    /// Whose connections the listener reads (`--accept-pushes-from`).
    push_source: PushSource,
    normalizer: Normalizer,
    output: Output,
    /// The alias of the last successful REGISTER or CONNECT (docs/protocol.md, "Client: commands").
    current_user: Option<String>,
    /// The alias this process connected, with its listener.
    connected: Option<Connected>,
    acks: AckTracker,
}

struct Connected {
    alias: String,
    listener: ListenerHandle,
}

impl Session {
    pub fn new(server: SocketAddr, push_source: PushSource, normalizer: Normalizer, output: Output) -> Session {
        Session {
            server,
            push_source,
            normalizer,
            output,
            current_user: None,
            connected: None,
            acks: AckTracker::new(),
        }
    }

    /// Runs one command and prints its result line(s). Returns whether the session is over.
    pub fn run(&mut self, command: Command) -> bool {
        self.acks.drain();
        // The result gate (see `Output`) is held from each request to its line, but never across stopping the
        // listener: its last pushes need the gate to print.
        let output = self.output.clone();
        match command {
            Command::Register { alias, birth_date, full_name } => {
                let _gate = output.result_gate();
                let req = Request::Register { full_name, alias: alias.clone(), birth_date };
                let result = self.call(&req);
                self.print(&req, &result);
                if matches!(result, Ok(Reply::Register(RegisterStatus::Ok))) {
                    self.act_as(Some(alias));
                }
            }
            Command::Unregister { alias } => {
                let gate = output.result_gate();
                let req = Request::Unregister { alias: alias.clone() };
                let result = self.call(&req);
                drop(gate);
                let removed = matches!(result, Ok(Reply::Unregister(UnregisterStatus::Ok)));
                // The server pushes nothing more to a removed user: its listener has no purpose left.
                if removed && self.connected.as_ref().is_some_and(|c| c.alias == alias) {
                    self.close_listener();
                }
                self.print(&req, &result);
                if removed && self.current_user.as_deref() == Some(alias.as_str()) {
                    self.act_as(None);
                }
            }
            Command::Connect { alias } => {
                let gate = output.result_gate();
                let unused = self.connect(alias);
                drop(gate);
                if let Some(listener) = unused {
                    listener.stop();
                }
            }
            Command::Disconnect { alias } => self.disconnect(alias),
            Command::ConnectedUsers => match self.current_user.clone() {
                Some(alias) => {
                    let _gate = output.result_gate();
                    let req = Request::ConnectedUsers { alias };
                    let result = self.call(&req);
                    self.print(&req, &result);
                }
                None => self.fail_locally(Op::ConnectedUsers, NO_CURRENT_USER),
            },
            Command::Send { recipient, message } => self.send(recipient, &message),
            Command::SendAttach { .. } => {
                self.output.line(SENDATTACH_UNSUPPORTED);
                self.output.note(SENDATTACH_REASON);
            }
            Command::Quit => {
                if let Some(alias) = self.connected.as_ref().map(|c| c.alias.clone()) {
                    self.disconnect(alias);
                }
                return true;
            }
        }
        false
    }

    /// Changes the current user, and says so when it changed (docs/protocol.md, "Client: explanations").
    fn act_as(&mut self, user: Option<String>) {
        if self.current_user == user {
            return;
        }
        match &user {
            Some(alias) => self.output.note(&format!("now acting as {}", printable(alias))),
            None => self.output.note("no current user now: REGISTER or CONNECT to act as someone"),
        }
        self.current_user = user;
    }

    /// CONNECT; the caller holds the result gate. Returns a listener that did not get connected, for the caller
    /// to stop once the gate is released.
    fn connect(&mut self, alias: String) -> Option<ListenerHandle> {
        let port = match &self.connected {
            // Same alias again: ask the server with the listener we have; it will normally answer 2.
            Some(c) if c.alias == alias => c.listener.port(),
            Some(c) => {
                let why = format!("already connected as {0}: DISCONNECT {0} first (one listener per client)", c.alias);
                self.fail_locally(Op::Connect, &why);
                return None;
            }
            None => return self.connect_new(alias),
        };
        let req = Request::Connect { alias: alias.clone(), port };
        let result = self.call(&req);
        self.print(&req, &result);
        if matches!(result, Ok(Reply::Connect(ConnectStatus::Ok))) {
            self.act_as(Some(alias));
        }
        None
    }

    fn connect_new(&mut self, alias: String) -> Option<ListenerHandle> {
        // The listener accepts before CONNECT is sent: the server may push right after its reply
        // (docs/protocol.md, "Client: the push listener").
        let (acks_tx, acks_rx) = crossbeam_channel::bounded(MAX_TRACKED_ACKS);
        let listener = match receiver::start(self.output.clone(), self.push_source, acks_tx) {
            Ok(l) => l,
            Err(e) => {
                self.fail_locally(Op::Connect, &format!("cannot open a listener: {e}"));
                return None;
            }
        };
        let req = Request::Connect { alias: alias.clone(), port: listener.port() };
        let result = self.call(&req);
        self.print(&req, &result);
        if !matches!(result, Ok(Reply::Connect(ConnectStatus::Ok))) {
            return Some(listener);
        }
        self.acks.reset(acks_rx);
        self.connected = Some(Connected { alias: alias.clone(), listener });
        self.act_as(Some(alias));
        None
    }

    /// DISCONNECT, without the result gate: the acknowledgements waited for and the last pushes drained need it.
    fn disconnect(&mut self, alias: String) {
        let ours = self.connected.as_ref().is_some_and(|c| c.alias == alias);
        if ours {
            self.acks.wait();
        }
        let req = Request::Disconnect { alias };
        let result = self.call(&req);
        if ours {
            // Whatever the reply. Closing first means nothing of this session prints after the line.
            self.close_listener();
        }
        self.print(&req, &result);
    }

    fn close_listener(&mut self) {
        if let Some(c) = self.connected.take() {
            c.listener.stop();
        }
        self.acks.clear();
    }

    fn send(&mut self, recipient: String, message: &str) {
        let Some(sender) = self.current_user.clone() else {
            return self.fail_locally(Op::Send, NO_CURRENT_USER);
        };
        let text = match self.normalizer.normalize(message) {
            Ok(t) => t,
            Err(e) => return self.fail_locally(Op::Send, &e.to_string()),
        };
        if text.is_empty() {
            return self.fail_locally(Op::Send, "the message is empty");
        }
        if text.len() > MAX_FIELD_LEN {
            let why = format!("the message is {} bytes long, the limit is {MAX_FIELD_LEN}", text.len());
            return self.fail_locally(Op::Send, &why);
        }
        let output = self.output.clone();
        let _gate = output.result_gate();
        let req = Request::Send { sender, recipient, text };
        let result = self.call(&req);
        if let Ok(Reply::Send(SendReply::Accepted(id))) = result {
            if self.connected.is_some() {
                self.acks.sent(id);
            }
        }
        self.print(&req, &result);
    }

    /// Sends a request. A failure gives the reason to show the user.
    fn call(&self, req: &Request) -> Result<Reply, String> {
        // Only well-formed requests leave this process: an original server cannot survive some bad ones.
        if let Some(why) = field_problem(req) {
            return Err(why);
        }
        conn::request(self.server, req, DEFAULT_TIMEOUT).map_err(|e| {
            debug!("{}: server {}: {e:?}", req.op(), self.server);
            match e {
                ConnError::Connect(e) => format!("cannot reach server {}: {e}", self.server),
                ConnError::Write(e) => format!("cannot send the request to server {}: {e}", self.server),
                ConnError::Reply(e) => format!("no valid answer from server {}: {e}", self.server),
                e => format!("server {}: {e}", self.server),
            }
        })
    }

    /// Prints the result line of `req`, then, when it is not a success, the reason on its own line.
    fn print(&self, req: &Request, result: &Result<Reply, String>) {
        self.output.line(&result_line(req.op(), result.as_ref().ok()));
        let connected_here = self.connected.as_ref().map(|c| c.alias.as_str());
        let reason = match result {
            Ok(reply) => reason(req, reply, connected_here),
            Err(why) => Some(why.clone()),
        };
        if let Some(why) = reason {
            self.output.note(&why);
        }
    }

    /// Prints the FAIL line of `op` for a failure found before contacting the server, and its reason.
    fn fail_locally(&self, op: Op, why: &str) {
        self.output.line(failure_line(op));
        self.output.note(why);
    }
}

/// Why `req` cannot be sent as it is: a field that contains a NUL character or is longer than the protocol's
/// field limit. The original servers truncate or overflow on long fields; ours would answer a failure anyway.
pub(crate) fn field_problem(req: &Request) -> Option<String> {
    let fields: &[(&'static str, &str)] = match req {
        Request::Register { full_name, alias, birth_date } => {
            &[("alias", alias), ("birth date", birth_date), ("full name", full_name)]
        }
        Request::Unregister { alias }
        | Request::Connect { alias, .. }
        | Request::Disconnect { alias }
        | Request::ConnectedUsers { alias } => &[("alias", alias)],
        Request::Send { sender, recipient, text } => &[("sender", sender), ("recipient", recipient), ("message", text)],
    };
    fields.iter().find_map(|(name, v)| {
        if v.contains('\0') {
            Some(format!("the {name} contains a NUL character, which the protocol cannot carry"))
        } else if v.len() > MAX_FIELD_LEN {
            Some(format!("the {name} is {} bytes long, the limit is {MAX_FIELD_LEN}", v.len()))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_over_long_fields_are_named() {
        let req = Request::Send { sender: "a".into(), recipient: "b".into(), text: "x\0y".into() };
        assert_eq!(
            field_problem(&req).as_deref(),
            Some("the message contains a NUL character, which the protocol cannot carry")
        );
        let req = Request::Connect { alias: "a".repeat(256), port: 1 };
        assert_eq!(field_problem(&req).as_deref(), Some("the alias is 256 bytes long, the limit is 255"));
        assert_eq!(field_problem(&Request::Disconnect { alias: "a".repeat(255) }), None);
    }
}
