//! `client`: the interactive shell of the message delivery service (docs/protocol.md, section "Client").
//!
//! Threads, as in the original design:
//! - main: reads lines ([`input`]), parses them ([`shell`]), answers local errors itself and hands commands to
//!   the sender, then waits for the result before the next prompt;
//! - sender ([`sender`]): performs each command against the server and prints its result line;
//! - receiver ([`receiver`]): exists while a user is connected; owns the listener and prints pushes;
//! - signals ([`signals`]): turns Ctrl-C into QUIT.
//!
//! Commands and results travel on crossbeam channels; everything printed goes through [`output::Output`].

mod cli;
mod format;
mod input;
mod logging;
mod normalizer;
mod output;
mod receiver;
mod sender;
mod shell;
#[cfg(unix)]
mod signals;
mod tui;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
#[cfg(unix)]
use std::sync::{Mutex, PoisonError};

use clap::Parser;
use client::listener::PushSource;
use crossbeam_channel::{bounded, Receiver, Sender};

use crate::cli::Args;
use crate::input::{Input, Plain, Source, Terminal};
use crate::normalizer::{Mode, Normalizer};
use crate::output::Output;
use crate::sender::{Done, Job, Origin, Session};
use crate::shell::{Command, Parsed};

/// Commands that may wait for the sender: the one the user typed and a QUIT from a signal.
const JOB_QUEUE: usize = 4;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.tui {
        return tui::run(args);
    }

    // Line editing only when a person types at a terminal that also shows the output; otherwise plain lines, so
    // that the client can be scripted (and `client | tee log` keeps every line in the log).
    let interactive = io::stdin().is_terminal() && io::stdout().is_terminal();
    let mut terminal = None;
    let mut printer = None;
    if interactive {
        save_terminal_mode();
        match Terminal::new() {
            Ok(mut t) => {
                // A terminal too dumb to redraw around asynchronous lines gets plain lines and our own prompt.
                printer = t.printer();
                terminal = printer.is_some().then_some(t);
            }
            Err(e) => eprintln!("warning: no line editing ({e}); reading plain lines"),
        }
    }
    let through_printer = printer.is_some() && io::stderr().is_terminal();
    let output = match printer {
        Some(p) => Output::printer(p, through_printer),
        None => Output::stdout(),
    };
    init_logging(through_printer.then(|| output.clone()));

    // No connection is opened before the first command: an empty connection crashes the original servers
    // (docs/compatibility.md), so a server that is down is reported by the first command's reason line.
    let server = match args.server_address() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("error: cannot resolve server {}:{}: {e}", args.server, args.port);
            return ExitCode::FAILURE;
        }
    };

    let normalizer = Normalizer::new(Mode::from_flags(args.local_normalize, args.ws_url));
    // By default pushes are read only from the server's own address (docs/protocol.md, "Client: the push
    // listener").
    let push_source = args.accept_pushes_from.unwrap_or(PushSource::Only(server.ip()));
    let session = Session::new(server, push_source, normalizer, output.clone());
    let (jobs_tx, jobs_rx) = bounded::<Job>(JOB_QUEUE);
    let (done_tx, done_rx) = bounded::<Done>(1);
    if let Err(e) = sender::spawn(session, jobs_rx, done_tx, Box::new(|| exit_now(0))) {
        eprintln!("error: cannot start the sender thread: {e}");
        return ExitCode::FAILURE;
    }
    #[cfg(unix)]
    if let Err(e) = signals::install(jobs_tx.clone(), exit_now) {
        eprintln!("warning: Ctrl-C will not disconnect first: {e}");
    }

    // Only one of them may exist: the plain reader holds the lock on stdin, which a dumb terminal's editor needs.
    let mut source = match terminal {
        Some(t) => Source::Terminal(Box::new(t)),
        None => Source::Plain(Plain::new(output.clone(), args.prompt || interactive)),
    };
    loop {
        let command = match source.read() {
            Input::Line(line) => match command_of(&line, &output) {
                Some(c) => c,
                None => continue,
            },
            Input::End => {
                // End of input leaves the cursor after the prompt: QUIT's lines start on a fresh one.
                output.finish();
                Command::Quit
            }
        };
        match run(&jobs_tx, &done_rx, command) {
            Ok(Done { quit: false }) => {}
            Ok(Done { quit: true }) => {
                output.finish();
                return ExitCode::SUCCESS;
            }
            Err(()) => {
                eprintln!("error: the sender thread stopped unexpectedly");
                return ExitCode::FAILURE;
            }
        }
    }
}

/// The command a typed line asks the sender for; `None` when the line is answered here (an empty line, a syntax
/// error, HELP, an unknown command).
fn command_of(line: &str, output: &Output) -> Option<Command> {
    match shell::parse(line) {
        Parsed::Empty => None,
        Parsed::Error(text) => {
            output.line(&text);
            None
        }
        Parsed::Help => {
            for line in shell::help_lines() {
                output.line(&line);
            }
            None
        }
        Parsed::Unknown(text) => {
            // The spec's line for scripts on stdout; the list, an explanation, with the notes.
            output.line(&text);
            output.note("Commands (HELP shows this list):");
            for line in shell::help_lines() {
                output.note(&line);
            }
            None
        }
        Parsed::Command(c) => Some(c),
    }
}

/// Hands `command` to the sender and waits until its result is printed.
///
/// The wait has no timeout of its own: every step of a command is bounded (connect, write, reads, the web
/// service, the listener's stop), so the sender always answers or dies, and a dead sender closes the channel.
fn run(jobs: &Sender<Job>, done: &Receiver<Done>, command: Command) -> Result<Done, ()> {
    jobs.send(Job { command, origin: Origin::User }).map_err(|_| ())?;
    done.recv().map_err(|_| ())
}

/// Logging to stderr, `warn` unless `RUST_LOG` says otherwise, so that stdout holds only the session. With a
/// line-editing terminal, log lines go through `output` so that they do not tear the prompt either.
fn init_logging(output: Option<Output>) {
    let mut builder = crate::logging::builder();
    if let Some(output) = output {
        builder.target(env_logger::Target::Pipe(Box::new(output.diagnostics())));
    }
    builder.init();
}

/// The terminal's mode before line editing touched it, restored if a signal ends the program mid-edit.
#[cfg(unix)]
static SAVED_TERMINAL: Mutex<Option<nix::sys::termios::Termios>> = Mutex::new(None);

fn save_terminal_mode() {
    #[cfg(unix)]
    if let Ok(mode) = nix::sys::termios::tcgetattr(io::stdin()) {
        *SAVED_TERMINAL.lock().unwrap_or_else(PoisonError::into_inner) = Some(mode);
    }
}

/// Ends the process from a thread other than main (after a signal): restores the terminal, flushes, exits.
fn exit_now(code: i32) -> ! {
    #[cfg(unix)]
    if let Some(mode) = SAVED_TERMINAL.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        let _ = nix::sys::termios::tcsetattr(io::stdin(), nix::sys::termios::SetArg::TCSANOW, mode);
    }
    let _ = io::stdout().flush();
    std::process::exit(code)
}
