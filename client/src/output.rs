//! Everything the client prints on stdout goes through [`Output`], one whole line or block per write.
//!
//! Two sinks:
//! - a terminal with line editing: rustyline's external printer, which clears the prompt and the half-typed
//!   line, prints, and redraws them, so an asynchronous line never tears what the user is typing;
//! - anything else (a pipe, a file): stdout, locked for each block and flushed after it, so a script reading us
//!   sees every line as soon as it exists and never half a line.
//!
//! It also owns the result gate ([`Output::result_gate`]): the sender holds it from a request to its result
//! line, and the receiver takes it before printing a push. The server answers before it pushes, but our two
//! threads race to print; the gate keeps `CONNECT OK` before the messages it releases and
//! `SEND OK - MESSAGE <id>` before `SEND MESSAGE <id> OK`, as the server ordered them.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustyline::ExternalPrinter;

/// The prompt (docs/protocol.md, "Choices where …", item 8).
pub const PROMPT: &str = "c> ";

/// A cloneable handle on the client's standard output.
#[derive(Clone)]
pub struct Output {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Held by the sender from a request to its result line, taken by the receiver before printing a push.
    result_gate: Mutex<()>,
}

struct State {
    sink: Sink,
    /// Whether notes go through the external printer (a terminal shows stderr and stdout together) rather than to
    /// stderr.
    notes_to_printer: bool,
    /// Whether a prompt was printed by [`Output::prompt`] and the cursor still stands after it.
    after_prompt: bool,
    /// Whether the main thread is waiting for input behind that prompt (so a block must redraw it).
    waiting_for_input: bool,
}

enum Sink {
    Stdout,
    Printer(Box<dyn ExternalPrinter + Send>),
}

impl Output {
    /// Output to stdout (pipe mode, or a terminal whose external printer is unavailable).
    pub fn stdout() -> Output {
        Output::with_sink(Sink::Stdout, false)
    }

    /// Output through rustyline's external printer (terminal mode); notes too when `notes_to_printer` (stderr is
    /// the same terminal).
    pub fn printer(printer: Box<dyn ExternalPrinter + Send>, notes_to_printer: bool) -> Output {
        Output::with_sink(Sink::Printer(printer), notes_to_printer)
    }

    fn with_sink(sink: Sink, notes_to_printer: bool) -> Output {
        let state = State { sink, notes_to_printer, after_prompt: false, waiting_for_input: false };
        Output { inner: Arc::new(Inner { state: Mutex::new(state), result_gate: Mutex::new(()) }) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Printing must go on after a panic elsewhere: the state is two flags and a sink, always consistent.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Prints one result line (the caller's own answer to a command).
    pub fn line(&self, text: &str) {
        let mut state = self.state();
        state.after_prompt = false;
        state.write(format!("{text}\n"));
    }

    /// Prints an explanation: a failure's reason, a change of the acting user, the command list after an unknown
    /// command. Notes go to stderr, so that stdout holds only the result lines a script parses; on a line-editing
    /// terminal that also shows stderr they go through the editor, so as not to tear the prompt.
    pub fn note(&self, text: &str) {
        let mut state = self.state();
        if state.notes_to_printer && matches!(state.sink, Sink::Printer(_)) {
            state.after_prompt = false;
            state.write(format!("{text}\n"));
        } else {
            // As for stdout: a failed write has nowhere better to be reported.
            let mut err = io::stderr().lock();
            let _ = writeln!(err, "{text}");
            let _ = err.flush();
        }
    }

    /// Prints asynchronous lines (`text` ends with a newline): on a fresh line, and followed by a new prompt
    /// when the user is at one.
    pub fn block(&self, text: &str) {
        let mut state = self.state();
        let mut out = String::with_capacity(text.len() + 2 * PROMPT.len());
        if state.after_prompt {
            out.push('\n');
        }
        out.push_str(text);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        state.after_prompt = false;
        if state.waiting_for_input && matches!(state.sink, Sink::Stdout) {
            out.push_str(PROMPT);
            state.after_prompt = true;
        }
        state.write(out);
    }

    /// Prints the prompt in pipe mode (terminal mode leaves the prompt to rustyline) and marks the main thread
    /// as waiting for input.
    pub fn prompt(&self) {
        let mut state = self.state();
        state.waiting_for_input = true;
        state.after_prompt = true;
        state.write(PROMPT.to_owned());
    }

    /// Marks the end of waiting for input (a line was read).
    pub fn input_read(&self) {
        self.state().waiting_for_input = false;
    }

    /// Moves a cursor left after a prompt to a fresh line (at end of input, and before exiting so that the
    /// shell's prompt does not follow ours on the same line).
    pub fn finish(&self) {
        let mut state = self.state();
        if state.after_prompt {
            state.after_prompt = false;
            state.write("\n".to_owned());
        }
    }

    /// Prints straight to stdout from now on, starting on a fresh line. For the last lines of a session ended
    /// by a signal: the line editor may hold the terminal, and the process exits before it would draw them.
    pub fn leave_editor(&self) {
        let mut state = self.state();
        if matches!(state.sink, Sink::Printer(_)) {
            state.sink = Sink::Stdout;
            state.after_prompt = true;
        }
        if state.after_prompt {
            state.after_prompt = false;
            state.write("\n".to_owned());
        }
    }

    /// The result gate: see the module comment. Never hold it while stopping the listener, whose last pushes
    /// need it to print.
    pub fn result_gate(&self) -> MutexGuard<'_, ()> {
        self.inner.result_gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A writer for diagnostics (the logger) that prints whole lines through the external printer.
    pub fn diagnostics(&self) -> DiagWriter {
        DiagWriter { output: self.clone(), pending: Vec::new() }
    }
}

impl State {
    fn write(&mut self, text: String) {
        match &mut self.sink {
            Sink::Stdout => {
                // A failed write (stdout closed) cannot be reported anywhere useful; the session goes on.
                let mut out = io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            Sink::Printer(printer) => {
                if printer.print(text).is_err() {
                    // The editor is gone (end of session); nothing else can draw on the terminal anyway.
                    log::debug!("external printer unavailable");
                }
            }
        }
    }
}

/// An [`io::Write`] that hands complete lines to an [`Output`] as asynchronous blocks.
pub struct DiagWriter {
    output: Output,
    pending: Vec<u8>,
}

/// Longest diagnostic kept while waiting for its line end; longer text is printed as it is.
const MAX_DIAG_LINE: usize = 64 * 1024;

impl Write for DiagWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') {
            let lines: Vec<u8> = self.pending.drain(..=end).collect();
            self.output.block(&String::from_utf8_lossy(&lines));
        } else if self.pending.len() > MAX_DIAG_LINE {
            self.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.pending.clear();
            self.output.block(&text);
        }
        Ok(())
    }
}
