//! Reading a request against two clocks: the idle timeout of every read and the whole-request deadline.
//!
//! The idle timeout (`--request-timeout`) ends a peer that stops sending; the deadline (`--request-deadline`,
//! counted from accept) ends one that keeps trickling a byte now and then, which the idle timeout alone never
//! would (docs/protocol.md 2.5). Both are one socket read timeout: before each read it is set
//! to whichever ends first. A setsockopt costs a syscall, so the timeout already set is kept while it overshoots
//! the deadline by at most [`DEADLINE_SLACK`]: an ordinary request, which arrives in one read, pays for exactly
//! one, as it did with the idle timeout alone.

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How far past the deadline a read may end, so that the socket timeout is not reset before every read.
pub const DEADLINE_SLACK: Duration = Duration::from_millis(100);
/// A zero read timeout means "block forever" to the OS: the shortest one ever set.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The error of a read that the whole-request deadline ended: an I/O error of kind `Other`, so that it is not
/// mistaken for an idle timeout (the one-field REGISTER of docs/protocol.md appendix A waits for exactly that).
#[derive(Debug, thiserror::Error)]
#[error("the whole-request deadline passed")]
pub struct DeadlinePassed;

/// A socket reader whose reads end at the idle timeout and, while armed, at the deadline.
#[derive(Debug)]
pub struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    /// `None` once disarmed: reads go straight to the socket, with whatever timeout the caller set.
    deadline: Option<Instant>,
    idle: Duration,
    /// The read timeout last set on the socket by this reader.
    set: Option<Duration>,
}

impl<'a> DeadlineReader<'a> {
    /// Reads from `stream` with at most `idle` between bytes, and nothing after `deadline`.
    pub fn new(stream: &'a TcpStream, deadline: Instant, idle: Duration) -> DeadlineReader<'a> {
        DeadlineReader { stream, deadline: Some(deadline), idle, set: None }
    }

    /// Changes the idle timeout for the following reads (a shorter wait, such as the one-field REGISTER's).
    pub fn set_idle(&mut self, idle: Duration) {
        self.idle = idle;
    }

    /// The request is read: later reads (the drain after the reply) are bounded only by the socket timeout the
    /// caller sets.
    pub fn disarm(&mut self) {
        self.deadline = None;
    }

    /// The socket timeout the next read needs, or `None` when the one set already does.
    fn timeout_needed(&self, left: Duration) -> Option<Duration> {
        let want = self.idle.min(left).max(MIN_TIMEOUT);
        match self.set {
            Some(set) if set >= want && set <= want + DEADLINE_SLACK => None,
            _ => Some(want),
        }
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut stream = self.stream;
        let Some(deadline) = self.deadline else { return stream.read(buf) };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::other(DeadlinePassed));
        }
        if let Some(timeout) = self.timeout_needed(left) {
            stream.set_read_timeout(Some(timeout))?;
            self.set = Some(timeout);
        }
        match stream.read(buf) {
            // A timeout that ends this close to the deadline is the deadline's (the kernel rounds timeouts).
            Err(e)
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                    && Instant::now() + DEADLINE_SLACK >= deadline =>
            {
                Err(io::Error::other(DeadlinePassed))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn the_timeout_is_set_once_for_a_request_that_arrives_at_once() {
        let (mut client, server) = pair();
        client.write_all(b"abc").unwrap();
        let mut r = DeadlineReader::new(&server, Instant::now() + Duration::from_secs(5), Duration::from_secs(10));
        let mut buf = [0u8; 2];
        r.read_exact(&mut buf).unwrap();
        let first = r.set;
        assert!(first.is_some_and(|t| t <= Duration::from_secs(5)), "{first:?}");
        r.read_exact(&mut buf[..1]).unwrap();
        assert_eq!(r.set, first, "not reset within the slack");
    }

    #[test]
    fn the_idle_timeout_applies_when_it_ends_first() {
        let (_client, server) = pair();
        let mut r = DeadlineReader::new(&server, Instant::now() + Duration::from_secs(60), Duration::from_millis(50));
        let err = r.read(&mut [0u8; 1]).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err}");
        assert_eq!(r.set, Some(Duration::from_millis(50)));
    }

    #[test]
    fn the_deadline_ends_a_read_the_idle_timeout_would_not() {
        let (_client, server) = pair();
        let started = Instant::now();
        let mut r = DeadlineReader::new(&server, started + Duration::from_millis(200), Duration::from_secs(60));
        let err = r.read(&mut [0u8; 1]).unwrap_err();
        assert!(err.get_ref().is_some_and(|e| e.is::<DeadlinePassed>()), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(30), "not the idle timeout");
        // And every later read fails at once.
        assert!(r.read(&mut [0u8; 1]).is_err());
    }

    #[test]
    fn a_disarmed_reader_leaves_the_timeout_alone() {
        let (mut client, server) = pair();
        let mut r = DeadlineReader::new(&server, Instant::now(), Duration::from_secs(1));
        r.disarm();
        client.write_all(b"z").unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(r.read(&mut byte).unwrap(), 1);
        assert_eq!(r.set, None);
    }
}
