//! Where the user's lines come from: a terminal with line editing and history (rustyline), or plain lines from
//! a pipe or a file, so the client can be scripted with exactly the same output.

use std::io::{self, BufRead, ErrorKind};

use log::warn;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};

use crate::output::{Output, PROMPT};

/// Longest input line accepted, in bytes. Nothing legitimate comes close (fields are at most 255 bytes); the
/// bound keeps a file without line breaks from growing memory without end.
pub const MAX_INPUT_LINE: usize = 64 * 1024;

/// Lines remembered by the line editor's history (in memory only).
pub const HISTORY_SIZE: usize = 1000;

/// What reading produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// One line, without its terminator.
    Line(String),
    /// End of input, Ctrl-D or Ctrl-C at the prompt: the session ends as QUIT.
    End,
}

/// The source of the session's lines.
pub enum Source {
    // Boxed: the editor is large and there is one value per run.
    Terminal(Box<Terminal>),
    Plain(Plain),
}

impl Source {
    /// The next line, or the end of the session.
    pub fn read(&mut self) -> Input {
        match self {
            Source::Terminal(t) => t.read(),
            Source::Plain(p) => p.read(),
        }
    }
}

/// A terminal with line editing.
pub struct Terminal {
    editor: Editor<(), DefaultHistory>,
}

impl Terminal {
    /// The editor, configured with history and without a bell.
    pub fn new() -> rustyline::Result<Terminal> {
        let config = Config::builder()
            .auto_add_history(true)
            .max_history_size(HISTORY_SIZE)?
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .bell_style(rustyline::config::BellStyle::None)
            .build();
        Ok(Terminal { editor: Editor::with_config(config)? })
    }

    /// A printer that draws asynchronous lines above the prompt, if the terminal supports it.
    pub fn printer(&mut self) -> Option<Box<dyn rustyline::ExternalPrinter + Send>> {
        match self.editor.create_external_printer() {
            Ok(p) => Some(Box::new(p)),
            Err(e) => {
                log::debug!("no external printer: {e}");
                None
            }
        }
    }

    /// Shows the prompt and reads one edited line.
    pub fn read(&mut self) -> Input {
        match self.editor.readline(PROMPT) {
            Ok(line) => Input::Line(line),
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => Input::End,
            Err(e) => {
                warn!("cannot read the terminal: {e}");
                Input::End
            }
        }
    }
}

/// Plain lines from standard input.
pub struct Plain {
    stdin: io::StdinLock<'static>,
    output: Output,
    prompt: bool,
}

impl Plain {
    /// Reads stdin; prints the prompt before each line only if `prompt`.
    pub fn new(output: Output, prompt: bool) -> Plain {
        Plain { stdin: io::stdin().lock(), output, prompt }
    }

    /// Reads the next line that fits in [`MAX_INPUT_LINE`] (longer ones are skipped with a warning).
    pub fn read(&mut self) -> Input {
        if self.prompt {
            self.output.prompt();
        }
        let got = loop {
            match read_bounded_line(&mut self.stdin, MAX_INPUT_LINE) {
                Ok(Some(Ok(line))) => break Input::Line(line),
                Ok(Some(Err(len))) => warn!("ignored an input line of {len} bytes (the limit is {MAX_INPUT_LINE})"),
                Ok(None) => break Input::End,
                Err(e) => {
                    warn!("cannot read standard input: {e}");
                    break Input::End;
                }
            }
        };
        self.output.input_read();
        got
    }
}

/// Reads one line of at most `max` bytes, decoded as UTF-8 with replacement and without its `\n` or `\r\n`.
///
/// `Ok(None)` at end of input; `Ok(Some(Err(len)))` for a line longer than `max`, consumed whole but not kept.
/// A last line without a terminator counts as a line.
pub fn read_bounded_line<R: BufRead>(r: &mut R, max: usize) -> io::Result<Option<Result<String, usize>>> {
    let mut line = Vec::new();
    let mut len = 0usize;
    let mut seen_any = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if !seen_any {
                return Ok(None);
            }
            break;
        }
        seen_any = true;
        let (chunk, used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        len += chunk.len();
        if len <= max {
            line.extend_from_slice(chunk);
        }
        r.consume(used);
        if done {
            break;
        }
    }
    if len > max {
        return Ok(Some(Err(len)));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(Ok(String::from_utf8_lossy(&line).into_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn lines(bytes: &[u8], max: usize) -> Vec<Result<String, usize>> {
        let mut r = io::BufReader::with_capacity(4, Cursor::new(bytes.to_vec()));
        let mut out = Vec::new();
        while let Some(l) = read_bounded_line(&mut r, max).unwrap() {
            out.push(l);
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_terminators() {
        assert_eq!(lines(b"a\nbb\r\n\nlast", 100), [Ok("a".into()), Ok("bb".into()), Ok("".into()), Ok("last".into())]);
        assert!(lines(b"", 100).is_empty());
    }

    #[test]
    fn long_lines_are_skipped_whole() {
        assert_eq!(lines(b"0123456789\nok\n", 5), [Err(10), Ok("ok".into())]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(lines(b"SEND b caf\xe9\n", 100), [Ok("SEND b caf\u{fffd}".into())]);
    }
}
