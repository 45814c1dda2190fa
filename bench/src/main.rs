//! `bench`: load generator and delivery checker for the message delivery server, in the spirit of
//! redis-benchmark. Loopback only: the server records the CONNECT peer address as the push address, and the
//! bench's listeners are bound to 127.0.0.1, so the server must be on this machine too.
//!
//! # Layout
//! - `cli`: the command line; `run`: the standard run, step by step.
//! - `population`: the run's users and their setup; `mix`: the load phase; `phase`: timed phases on N threads;
//!   `verify`: the exactly-once check; `report`, `output`, `stats`, `progress`: what is shown.
//! - `baseline`: the two trivial servers of `--baseline`; `procs`: child processes and `/proc` sampling;
//!   `wire`: requests, push listeners and message texts.
//!
//! A new mode is a subcommand in `cli`, a module with its `run`, and an arm in `main` below.
//!
//! Every message text starts with a number unique in the run (`m<hex> xxx…`), so a listener can tell which
//! SEND it belongs to without shared state on the hot path: workers and listeners log into their own vectors,
//! merged once at the end.

use std::process::ExitCode;

use clap::Parser;

mod baseline;
mod cli;
mod flush;
mod mix;
mod output;
mod phase;
mod populate;
mod population;
mod procs;
mod progress;
mod report;
mod run;
mod scale;
mod scale_report;
mod slowloris;
mod slowloris_client;
mod stats;
mod verify;
mod wire;

use cli::{Cli, Command};

/// Why a run could not be done. A usage error exits 2 (as clap's own parse errors do), a runtime error 1.
#[derive(Debug)]
pub enum BenchError {
    /// The command line asks for something impossible or inconsistent.
    Usage(String),
    /// Something failed while running: the server, the network, the machine.
    Runtime(String),
}

/// Exit status of a run whose checks failed (lost or duplicated messages) or that could not run.
const EXIT_FAILED: u8 = 1;
/// Exit status of a usage error.
const EXIT_USAGE: u8 = 2;

/// Set by SIGINT or SIGTERM: phases and waits end early, and the run stops the servers it started.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a signal asked the run to stop.
pub fn stopping() -> bool {
    STOP.load(std::sync::atomic::Ordering::Relaxed)
}

/// On the first SIGINT or SIGTERM: one line, then the run winds down (servers stopped, report printed); on a
/// second one, exit at once.
fn watch_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else { return };
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if STOP.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("bench: signal {sig} again: exiting now");
                std::process::exit(130);
            }
            eprintln!("bench: signal {sig}: ending the current phase and stopping the servers started");
        }
    });
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    watch_signals();
    let result = match cli.command {
        Some(Command::ServeTrivial(a)) => baseline::serve_trivial(a.kind, a.bind)
            .map(|()| true)
            .map_err(|e| BenchError::Runtime(format!("trivial server: {e}"))),
        Some(Command::Flush(a)) => flush::run(&a),
        Some(Command::Populate(a)) => populate::run(&a),
        Some(Command::Scale(a)) => scale::run(&a),
        Some(Command::Slowloris(a)) => slowloris::run(&a),
        None => run::run(&cli.mix),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILED),
        Err(BenchError::Usage(e)) => {
            eprintln!("bench: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(BenchError::Runtime(e)) => {
            eprintln!("bench: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
