//! Ctrl-C, SIGTERM and SIGHUP end the session as QUIT does: the connected user is disconnected first.
//!
//! The signals are received on an ordinary thread (signal-hook's self-pipe), which queues a QUIT for the sender
//! thread behind the command in flight. A second signal ends the program at once, for a user who does not want
//! to wait for an unresponsive server. At the prompt of a terminal, Ctrl-C never becomes a signal: the line
//! editor reads it as a key and the main thread turns it into QUIT itself.

use std::io;
use std::thread;

use crossbeam_channel::Sender;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::sender::{Job, Origin};
use crate::shell::Command;

/// Exit status after a second signal, the shell's convention for "killed by SIGINT".
pub const FORCED_EXIT_CODE: i32 = 130;

/// Starts the signal thread. `force_exit` ends the process without a disconnect (second signal).
pub fn install(jobs: Sender<Job>, force_exit: fn(i32) -> !) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    thread::Builder::new().name("signals".into()).spawn(move || {
        let mut quitting = false;
        for signal in signals.forever() {
            if quitting {
                eprintln!("interrupted again: exiting without waiting");
                force_exit(FORCED_EXIT_CODE);
            }
            quitting = true;
            log::debug!("signal {signal}: quitting");
            if jobs.send(Job { command: Command::Quit, origin: Origin::Signal }).is_err() {
                // The sender is gone, so is the session: nothing left to disconnect.
                force_exit(FORCED_EXIT_CODE);
            }
        }
    })?;
    Ok(())
}
