//! Progress of a long step on stderr: an `indicatif` bar when stderr is a terminal, otherwise a plain line
//! every few seconds (a log file or CI output gets readable lines, not carriage returns). `--quiet` hides both.
//! The figures themselves always go to stdout, so `bench --json > file` stays one clean line.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a terminal bar is redrawn.
const DRAW_EVERY: Duration = Duration::from_millis(200);
/// Without a terminal, a progress line is printed this often.
pub const PIPED_EVERY: Duration = Duration::from_secs(5);

/// One step's progress: `position` out of `length` (milliseconds of a timed phase, or items).
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    piped: bool,
    last_line: Instant,
}

impl Progress {
    /// A bar for a step of `length` units; `show` is false under `--quiet`.
    pub fn new(label: &str, length: u64, show: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = (show && tty).then(|| {
            let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr_with_hz(5));
            // A constant template: if indicatif ever rejected it, the default style is still a bar.
            if let Ok(style) = ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {wide_bar} {msg}") {
                bar.set_style(style);
            }
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(DRAW_EVERY);
            bar
        });
        Progress { bar, label: label.to_owned(), piped: show && !tty, last_line: Instant::now() }
    }

    /// Moves the bar to `position` and shows `message` beside it (or prints it, piped, every few seconds).
    pub fn update(&mut self, position: u64, message: impl FnOnce() -> String) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.set_message(message());
        } else if self.piped && self.last_line.elapsed() >= PIPED_EVERY {
            self.last_line = Instant::now();
            eprintln!("{}: {}", self.label, message());
        }
    }

    /// A line above the bar (or on its own when there is none), e.g. a warning.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if self.piped => eprintln!("{}: {line}", self.label),
            None => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
