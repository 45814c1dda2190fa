//! Console output in batches, for a console that is not a terminal.
//!
//! At the default level the server prints a line per request and per delivered message. Written one `write` per
//! line, as `env_logger` does (it flushes after every record), that costs about 9% of the server's CPU when the
//! console is a pipe, and it wakes the reader once per line. C's stdio block-buffers a pipe or a file; we do the
//! same with a bound on staleness: lines are appended to a buffer, and a writer thread writes whatever gathered
//! within [`BATCH_INTERVAL`] in one `write`. Order is kept; nothing is lost on a clean stop, because
//! [`BatchHandle::finish`] (also run on drop) writes the rest. On a terminal the caller keeps the direct writer.
//!
//! Memory is bounded: past [`MAX_BUFFERED`] bytes (the reader does not keep up), the logging thread writes the
//! batch itself, which blocks it exactly as the direct writer would.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long a line may wait for others before it is written.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(20);
/// Bytes buffered before the logging thread writes them itself.
pub const MAX_BUFFERED: usize = 1 << 20;

type Output = Box<dyn Write + Send>;

struct State {
    buf: Vec<u8>,
    /// The writer thread waits for a first line (so only then is a wake-up, a syscall, needed).
    writer_idle: bool,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// The real output. Held while a batch is taken and written, so that batches go out in order.
    out: Mutex<Output>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the buffer half-updated: keep logging.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes everything buffered so far.
    fn drain(&self) -> io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let batch = std::mem::take(&mut self.state().buf);
        if batch.is_empty() {
            return Ok(());
        }
        out.write_all(&batch)?;
        out.flush()
    }
}

/// The writer handed to the logger.
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Owns the writer thread; [`BatchHandle::finish`] (or dropping it) writes what is left and stops the thread.
pub struct BatchHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchWriter {
    /// A batching writer over `out`. If the writer thread cannot be started, every line is written at once.
    pub fn new(out: Output) -> (BatchWriter, BatchHandle) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { buf: Vec::new(), writer_idle: false, stop: false }),
            wake: Condvar::new(),
            out: Mutex::new(out),
        });
        let worker = shared.clone();
        let thread = thread::Builder::new().name("console".into()).spawn(move || write_loop(&worker)).ok();
        if thread.is_none() {
            shared.state().stop = true;
        }
        (BatchWriter { shared: shared.clone() }, BatchHandle { shared, thread })
    }
}

fn write_loop(shared: &Shared) {
    loop {
        let stopping = {
            let mut st = shared.state();
            while st.buf.is_empty() && !st.stop {
                st.writer_idle = true;
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            st.writer_idle = false;
            st.stop
        };
        if !stopping {
            // Let the batch gather: whatever is logged meanwhile goes out in the same write.
            thread::sleep(BATCH_INTERVAL);
        }
        // A console that cannot be written to (closed pipe) must not stop the server; the lines are dropped.
        let _ = shared.drain();
        if stopping && shared.state().buf.is_empty() {
            return;
        }
    }
}

impl Write for BatchWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut st = self.shared.state();
        if st.stop {
            // No writer thread (it could not start, or we are finishing): write directly, in order.
            drop(st);
            let mut out = self.shared.out.lock().unwrap_or_else(|p| p.into_inner());
            let pending = std::mem::take(&mut self.shared.state().buf);
            out.write_all(&pending)?;
            out.write_all(bytes)?;
            return Ok(bytes.len());
        }
        let wake = st.buf.is_empty() && st.writer_idle;
        st.buf.extend_from_slice(bytes);
        let full = st.buf.len() >= MAX_BUFFERED;
        drop(st);
        if wake {
            self.shared.wake.notify_one();
        }
        if full {
            self.shared.drain()?;
        }
        Ok(bytes.len())
    }

    /// Does nothing: the logger flushes after every line, and the writer thread decides when to write.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BatchHandle {
    /// Writes every buffered line and stops the writer thread; later lines are written directly.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.state().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.shared.drain();
    }
}

impl Drop for BatchHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A shared in-memory output that counts its writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let mut g = self.0.lock().unwrap();
            g.0.extend_from_slice(b);
            g.1 += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_come_out_in_order_in_few_writes_and_finish_writes_the_rest() {
        let sink = Sink::default();
        let (mut w, handle) = BatchWriter::new(Box::new(sink.clone()));
        let mut expected = Vec::new();
        for i in 0..1000 {
            let line = format!("s> line {i}\n");
            w.write_all(line.as_bytes()).unwrap();
            w.flush().unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        handle.finish();
        let g = sink.0.lock().unwrap();
        assert_eq!(g.0, expected);
        assert!(g.1 < 100, "{} writes for 1000 lines", g.1);
        drop(g);
        // After finishing, lines are written directly.
        w.write_all(b"s> server stopped\n").unwrap();
        assert!(sink.0.lock().unwrap().0.ends_with(b"s> server stopped\n"));
    }

    #[test]
    fn a_lone_line_is_written_within_the_interval() {
        let sink = Sink::default();
        let (mut w, _handle) = BatchWriter::new(Box::new(sink.clone()));
        w.write_all(b"s> REGISTER alice OK\n").unwrap();
        let started = Instant::now();
        while sink.0.lock().unwrap().0.is_empty() {
            assert!(started.elapsed() < Duration::from_secs(5), "line never written");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_full_buffer_is_written_by_the_logging_thread() {
        let sink = Sink::default();
        let (mut w, _handle) = BatchWriter::new(Box::new(sink.clone()));
        w.write_all(&vec![b'x'; MAX_BUFFERED]).unwrap();
        assert_eq!(sink.0.lock().unwrap().0.len(), MAX_BUFFERED);
    }
}
