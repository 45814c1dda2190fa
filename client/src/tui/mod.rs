//! `client --tui`: the full-screen terminal messenger (docs/tui.md).
//!
//! Threads, as in the shell:
//! - the UI loop (this file): owns the terminal and the [`App`]; waits for [`Event`]s, applies them, draws;
//! - the sender ([`worker`]): runs one request at a time against the server; owns the listener, whose accept
//!   loop is the receiver thread and reports pushes;
//! - input: reads keys, mouse and resize events from the terminal;
//! - signals: SIGTERM, SIGHUP and SIGINT from outside end the session as `/quit` does.
//!
//! Everything reaches the UI loop over one crossbeam channel, so the state has a single owner and no lock. Log
//! lines travel the same way and end on the status line: nothing but the UI loop writes to the terminal while
//! it runs. The terminal is restored on every way out — a normal end, a lost server, a second signal and a
//! panic (a panic hook) — and the history is saved after every change, so a crash loses nothing written.
//!
//! Where things go: a key or command → [`app`] (and [`command`] for the syntax); something on screen →
//! [`render`] and [`layout`]; a new request → [`event::Job`] and [`worker`].

pub mod app;
pub mod command;
pub mod conversation;
pub mod editor;
pub mod event;
pub mod history;
pub mod layout;
mod logging;
pub mod render;
pub mod worker;

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use client::listener::PushSource;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use crossterm::event::{DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use self::app::{App, Effect, Quit};
use self::event::{Event, Job};
use self::history::History;
use self::layout::Theme;
use self::logging::init_logging;
use crate::cli::Args;
use crate::normalizer::Mode;

/// How often the UI loop wakes up without an event (timers: notices, the users refresh).
pub const TICK: Duration = Duration::from_millis(250);

/// Events waiting for the UI loop; the listener and the input thread wait when it is full.
pub const EVENT_QUEUE: usize = 1024;

/// Commands waiting for the sender thread; beyond this, new commands are refused with a notice.
pub const JOB_QUEUE: usize = 64;

/// Events applied before the screen is drawn again (a burst of pushes is drawn once, not once each).
const EVENT_BATCH: usize = 256;

/// Longest wait for the sender thread to disconnect at the end (its requests are bounded by
/// `client::conn` timeouts and the listener's stop; this only caps the sum).
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the input thread waits for a key before checking whether the session is over.
const INPUT_POLL: Duration = Duration::from_millis(100);

/// Exit status after a panic (the status Rust gives a program whose main thread panicked).
const PANIC_EXIT_CODE: i32 = 101;

/// Exit status after a second signal (the shell's convention for "killed by SIGINT").
const FORCED_EXIT_CODE: i32 = 130;

/// Runs the TUI until the user quits; the exit code for `main`.
pub fn run(args: Args) -> ExitCode {
    if !io::stdin().is_terminal() || !io::stdout().is_terminal() {
        eprintln!("error: --tui needs a terminal (use the line shell, without --tui, for scripts)");
        return ExitCode::FAILURE;
    }
    let target = format!("{}:{}", args.server, args.port);
    // As the shell, no connection before the first command (docs/protocol.md, section 8, "Client: talking to a
    // server"): a server that is down is reported by the first request.
    let server = match args.server_address() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("error: cannot resolve server {target}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(dir) = args.history_dir.clone().or_else(history::default_dir) else {
        eprintln!("error: no data directory on this platform: give one with --history-dir DIR");
        return ExitCode::FAILURE;
    };
    let history = History::new(dir);
    let (events_tx, events_rx) = bounded::<Event>(EVENT_QUEUE);
    let (jobs_tx, jobs_rx) = bounded::<Job>(JOB_QUEUE);
    init_logging(events_tx.clone());

    let mode = Mode::from_flags(args.local_normalize, args.ws_url.clone());
    let push_source = args.accept_pushes_from.unwrap_or(PushSource::Only(server.ip()));
    if let Err(e) = worker::spawn(server, push_source, mode, jobs_rx, events_tx.clone()) {
        eprintln!("error: cannot start the sender thread: {e}");
        return ExitCode::FAILURE;
    }
    #[cfg(unix)]
    if let Err(e) = watch_signals(events_tx.clone()) {
        log::warn!("signals will end the program without a disconnect: {e}");
    }

    let _guard = match enter_terminal() {
        Ok(g) => g,
        Err(e) => {
            restore_terminal();
            eprintln!("error: cannot set up the terminal: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop_input = Arc::new(AtomicBool::new(false));
    if let Err(e) = spawn_input(events_tx, Arc::clone(&stop_input)) {
        restore_terminal();
        eprintln!("error: cannot start the input thread: {e}");
        return ExitCode::FAILURE;
    }
    let outcome = ui_loop(target, &history, &jobs_tx, &events_rx);
    stop_input.store(true, Ordering::SeqCst);
    restore_terminal();
    match outcome {
        Ok(None | Some(Quit::User)) => ExitCode::SUCCESS,
        Ok(Some(Quit::ServerLost(why))) => {
            eprintln!("error: lost the server: {why}");
            eprintln!("(the conversations are kept in {})", history.dir().display());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The loop: draw, wait for events (at most [`TICK`]), apply them, carry out their effects, save the history.
fn ui_loop(
    server: String,
    history: &History,
    jobs: &Sender<Job>,
    events: &Receiver<Event>,
) -> io::Result<Option<Quit>> {
    let backend = CrosstermBackend::new(io::stdout());
    let mut terminal = Terminal::new(backend)?;
    let size = terminal.size()?;
    let theme = Theme {
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        utc_offset: i64::from(chrono::Local::now().offset().local_minus_utc()),
    };
    let mut app = App::new(server, theme, (size.width, size.height), Instant::now(), worker::unix_now());
    if let Some(alias) = history.last_user() {
        load_history(&mut app, history, &alias);
        app.notify(format!("history of {alias} shown: /connect {alias} to go online"), false);
    }
    let mut quit_started = None;
    loop {
        terminal.draw(|frame| render::render(&app, frame))?;
        match events.recv_timeout(TICK) {
            Ok(event) => app.update(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(app.quit),
        }
        for event in events.try_iter().take(EVENT_BATCH) {
            app.update(event);
        }
        app.update(Event::Tick { now: Instant::now(), wall: worker::unix_now() });
        for effect in app.take_effects() {
            match effect {
                Effect::Job(job) => submit(&mut app, jobs, job),
                Effect::LoadHistory(alias) => {
                    save_history(&mut app, history);
                    load_history(&mut app, history, &alias);
                }
            }
        }
        save_history(&mut app, history);
        if app.quit.is_some() {
            let started = *quit_started.get_or_insert_with(Instant::now);
            if app.stopped || app.force_quit || started.elapsed() > QUIT_TIMEOUT {
                return Ok(app.quit);
            }
        }
    }
}

/// Hands a job to the sender thread without ever blocking the screen (but for the final QUIT).
fn submit(app: &mut App, jobs: &Sender<Job>, job: Job) {
    let result = if job == Job::Quit {
        jobs.send_timeout(job, QUIT_TIMEOUT).map_err(|_| "the sender thread does not answer")
    } else {
        jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => "busy: too many commands waiting, try again",
            TrySendError::Disconnected(_) => "the sender thread stopped",
        })
    };
    if let Err(why) = result {
        app.update(Event::Log(format!("error: {why}")));
        if why.contains("stopped") || why.contains("answer") {
            // Nothing can be sent any more: end the session.
            app.force_quit = true;
            app.quit.get_or_insert(Quit::User);
        }
    }
}

fn load_history(app: &mut App, history: &History, alias: &str) {
    let (conversations, note) = match history.load(alias) {
        Ok((c, 0)) => (c, None),
        Ok((c, bad)) => (c, Some(format!("history of {alias}: {bad} damaged lines skipped"))),
        Err(e) => (BTreeMap::new(), Some(format!("history of {alias} unreadable: {e}"))),
    };
    app.update(Event::HistoryLoaded { alias: alias.to_owned(), conversations, note });
    if let Err(e) = history.set_last_user(alias) {
        app.update(Event::Log(format!("cannot write to {}: {e}", history.dir().display())));
    }
}

fn save_history(app: &mut App, history: &History) {
    if !app.history_dirty {
        return;
    }
    app.history_dirty = false;
    let Some(owner) = app.owner.clone() else { return };
    if let Err(e) = history.save(&owner, &app.conversations) {
        app.update(Event::Log(format!("cannot save the history in {}: {e}", history.dir().display())));
    }
}

// ----- the terminal

/// Whether the terminal is in raw mode on the alternate screen (so that restoring happens once).
static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Restores the terminal when dropped, on every path out of [`run`].
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Raw mode, the alternate screen, mouse reports and bracketed paste; a panic hook that undoes them before the panic message.
///
/// A panic on any thread ends the program: once the terminal is restored for the message, the UI loop could
/// only draw over the shell. The history is already on disk (it is saved after every change).
fn enter_terminal() -> io::Result<TerminalGuard> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
        std::process::exit(PANIC_EXIT_CODE);
    }));
    TERMINAL_ACTIVE.store(true, Ordering::SeqCst);
    terminal::enable_raw_mode()?;
    crossterm::execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture, EnableBracketedPaste)?;
    Ok(TerminalGuard)
}

/// Leaves the alternate screen, shows the cursor, ends raw mode. Safe to call from any thread, any number of
/// times.
pub fn restore_terminal() {
    if TERMINAL_ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = crossterm::execute!(
            out,
            DisableBracketedPaste,
            DisableMouseCapture,
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
        let _ = terminal::disable_raw_mode();
        let _ = out.flush();
    }
}

/// The input thread: terminal events into the UI loop, until `stop` is set or the loop is gone.
fn spawn_input(events: Sender<Event>, stop: Arc<AtomicBool>) -> io::Result<()> {
    use crossterm::event::{self as term, Event as TermEvent};
    thread::Builder::new().name("input".into()).spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let event = match term::poll(INPUT_POLL).and_then(|ready| ready.then(term::read).transpose()) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(e) => {
                    log::warn!("cannot read the terminal: {e}");
                    let _ = events.send(Event::Signal);
                    return;
                }
            };
            let event = match event {
                TermEvent::Key(k) => Event::Key(k),
                TermEvent::Mouse(m) => Event::Mouse(m),
                TermEvent::Paste(text) => Event::Paste(text),
                TermEvent::Resize(w, h) => Event::Resize(w, h),
                _ => continue,
            };
            if events.send(event).is_err() {
                return;
            }
        }
    })?;
    Ok(())
}

/// The signal thread: the first SIGINT, SIGTERM or SIGHUP quits as `/quit` does (in raw mode Ctrl-C is a key,
/// so these come from outside); a second one restores the terminal and exits at once.
#[cfg(unix)]
fn watch_signals(events: Sender<Event>) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    thread::Builder::new().name("signals".into()).spawn(move || {
        let mut quitting = false;
        for _ in signals.forever() {
            if quitting || events.send(Event::Signal).is_err() {
                restore_terminal();
                std::process::exit(FORCED_EXIT_CODE);
            }
            quitting = true;
        }
    })?;
    Ok(())
}
