//! The console, and the session log file that repeats it (`--log-file`).
//!
//! The server's binary formats its log records with `env_logger` (the `s> ...` lines of docs/protocol.md 4). With a
//! log file, `env_logger` writes to a [`Tee`] instead of stdout: each record reaches the console and is appended
//! to the file, as the original ttweet server kept its report file. `env_logger` hands over one whole record per
//! `write_all`, under its own lock, so each line is one append (one `write` on an `O_APPEND` file) and the file
//! keeps the console's order; no registry lock is involved.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Opens (creating it if needed) the session log file for appending: earlier sessions' lines are kept.
pub fn open_log_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Writes everything to the console and to a file.
#[derive(Debug)]
pub struct Tee<C, F> {
    console: C,
    file: F,
}

impl<C: Write, F: Write> Tee<C, F> {
    pub fn new(console: C, file: F) -> Tee<C, F> {
        Tee { console, file }
    }
}

impl<C: Write, F: Write> Write for Tee<C, F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Always whole buffers: a partial write would leave the two copies out of step.
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // Both copies are attempted even when one fails (a closed stdout must not stop the log file, nor the
        // reverse); the first error is reported.
        let console = self.console.write_all(buf);
        let file = self.file.write_all(buf);
        console.and(file)
    }

    fn flush(&mut self) -> io::Result<()> {
        let console = self.console.flush();
        let file = self.file.flush();
        console.and(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that always fails.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }
    }

    #[test]
    fn both_copies_get_every_line() {
        let mut tee = Tee::new(Vec::new(), Vec::new());
        tee.write_all(b"s> REGISTER alice OK\n").unwrap();
        writeln!(tee, "s> CONNECT alice OK").unwrap();
        tee.flush().unwrap();
        let Tee { console, file } = tee;
        assert_eq!(console, b"s> REGISTER alice OK\ns> CONNECT alice OK\n");
        assert_eq!(file, console);
    }

    #[test]
    fn a_failing_console_does_not_stop_the_file() {
        let mut tee = Tee::new(Broken, Vec::new());
        assert!(tee.write_all(b"s> line\n").is_err());
        assert_eq!(tee.file, b"s> line\n");
    }

    #[test]
    fn the_file_is_appended_to() {
        let path = std::env::temp_dir().join(format!("server-console-test-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        for line in ["first\n", "second\n"] {
            let mut file = open_log_file(&path).unwrap();
            file.write_all(line.as_bytes()).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\nsecond\n");
        let _ = std::fs::remove_file(&path);
    }
}
