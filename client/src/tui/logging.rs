//! Log lines on the status line: while the TUI runs, nothing but the UI loop may write to the terminal.

use std::io::{self, Write};

use crossbeam_channel::Sender;

use super::event::Event;

/// Log lines (warnings and errors unless `RUST_LOG` asks for more) go to the UI loop as [`Event::Log`], to be
/// shown on the status line: while the TUI runs, nothing else may write to the terminal.
pub(super) fn init_logging(events: Sender<Event>) {
    let mut builder = crate::logging::builder();
    builder.target(env_logger::Target::Pipe(Box::new(LogPipe { events, pending: Vec::new() })));
    builder.init();
}

/// Longest log line kept; the rest of a longer one is dropped (the status line shows one line anyway).
const MAX_LOG_LINE: usize = 1024;

/// An [`io::Write`] that turns each complete line into an [`Event::Log`]. It never blocks: when the UI loop is
/// behind, a log line is dropped rather than stalling the thread that logged it.
struct LogPipe {
    events: Sender<Event>,
    pending: Vec<u8>,
}

impl Write for LogPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let _ = self.events.try_send(Event::Log(text));
        }
        self.pending.truncate(MAX_LOG_LINE);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    #[test]
    fn log_output_becomes_one_event_per_line() {
        let (tx, rx) = bounded(8);
        let mut pipe = LogPipe { events: tx, pending: Vec::new() };
        pipe.write_all(b"warning: one\nwarning: tw").unwrap();
        pipe.write_all(b"o\n").unwrap();
        let lines: Vec<String> = rx
            .try_iter()
            .map(|e| match e {
                Event::Log(l) => l,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(lines, ["warning: one", "warning: two"]);
    }

    #[test]
    fn a_full_queue_drops_log_lines_instead_of_blocking() {
        let (tx, rx) = bounded(1);
        let mut pipe = LogPipe { events: tx, pending: Vec::new() };
        pipe.write_all(b"a\nb\nc\n").unwrap();
        assert_eq!(rx.len(), 1);
        pipe.write_all(&[b'x'; MAX_LOG_LINE * 2]).unwrap();
        assert!(pipe.pending.len() <= MAX_LOG_LINE);
    }
}
