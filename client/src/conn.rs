//! One request, one connection: connect, write the request whole, read the reply, close (docs/protocol.md,
//! "Shape of a conversation" and "Client: talking to a server").
//!
//! Every step is bounded: the connect, the write and each read by a timeout, and the whole reply by a byte cap
//! ([`MAX_REPLY_LEN`]) and a deadline ([`REPLY_DEADLINE`]), so a server that stalls, trickles, closes early or
//! sends garbage costs the caller at most a few seconds and an error, never a hang.
//!
//! Every connection this module opens carries one complete request, written in one piece before anything is
//! read. There is deliberately no "is the server up?" probe: the original C servers of this design crash, hang
//! or replay their previous request when a connection closes without a complete request (see
//! docs/compatibility.md), so an unreachable server is reported by the first command instead
//! ([`ConnError::Connect`]).

use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use protocol::reply::{ReplyError, MAX_REPLY_LEN};
use protocol::{FieldReader, Reply, Request};

/// Default bound on connecting to the server, on writing a request and on each read of its reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on reading one whole reply, however the bytes trickle in. Each read is also bounded by the request's
/// timeout; this one stops a server that sends one byte just before every timeout from holding us for as long
/// as [`MAX_REPLY_LEN`] bytes take.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(30);

/// Why a request got no usable reply. Every variant means the same to a user (the command's
/// "other / network error" line); the cause is for the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The connection could not be opened (refused, unreachable, timed out).
    #[error("cannot connect: {0}")]
    Connect(#[source] io::Error),
    /// The request could not be written.
    #[error("cannot send the request: {0}")]
    Write(#[source] io::Error),
    /// The reply was missing, truncated, too slow, malformed, or carried a code the operation does not define.
    #[error("no valid reply: {0}")]
    Reply(#[source] ReplyError),
}

/// Sends `req` to the server at `addr` on a fresh connection and reads its reply.
///
/// `timeout` bounds the connect, the write and every single read; the whole reply is further bounded by
/// [`REPLY_DEADLINE`] and [`MAX_REPLY_LEN`]. The reply's status may be in any dialect of the original servers
/// (docs/compatibility.md, "What each profile sends").
pub fn request(addr: SocketAddr, req: &Request, timeout: Duration) -> Result<Reply, ConnError> {
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(ConnError::Connect)?;
    stream.set_write_timeout(Some(timeout)).map_err(ConnError::Write)?;
    stream.set_read_timeout(Some(timeout)).map_err(ConnError::Connect)?;
    // Requests are tiny: disabling Nagle costs nothing and avoids a delayed-ACK stall on some stacks.
    let _ = stream.set_nodelay(true);
    // One write of the whole request, so the server never sees a request split by our own buffering.
    (&stream).write_all(&req.to_bytes()).map_err(ConnError::Write)?;
    let deadline = Instant::now() + REPLY_DEADLINE.max(timeout);
    let reader = DeadlineReader::new(&stream, timeout, deadline);
    let mut fields = FieldReader::with_cap(BufReader::new(reader), MAX_REPLY_LEN);
    Reply::read_from(req.op(), &mut fields).map_err(ConnError::Reply)
}

/// A socket reader whose every read ends by a fixed deadline as well as by the per-read timeout; past the
/// deadline, reads fail with [`ErrorKind::TimedOut`].
pub(crate) struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    timeout: Duration,
    deadline: Instant,
}

impl<'a> DeadlineReader<'a> {
    pub(crate) fn new(stream: &'a TcpStream, timeout: Duration, deadline: Instant) -> DeadlineReader<'a> {
        DeadlineReader { stream, timeout, deadline }
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, "deadline passed"));
        }
        // A zero read timeout means "block forever" to the OS, hence the floor of one millisecond.
        self.stream.set_read_timeout(Some(left.min(self.timeout).max(Duration::from_millis(1))))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::reply::{ConnectStatus, SendReply, UsersReply};
    use protocol::FieldError;
    use std::net::TcpListener;
    use std::thread;

    /// A one-shot fake server: accepts one connection, reads the request fields, then answers `reply`.
    fn fake(reply: &'static [u8], hold_open: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut r = FieldReader::new(BufReader::new(s.try_clone().unwrap()));
                let _ = Request::read_from(&mut r);
                let _ = s.write_all(reply);
                thread::sleep(hold_open);
            }
        });
        addr
    }

    fn connect_req() -> Request {
        Request::Connect { alias: "a".into(), port: 9 }
    }

    #[test]
    fn reads_raw_and_ascii_replies() {
        let addr = fake(b"\x02", Duration::ZERO);
        let r = request(addr, &connect_req(), DEFAULT_TIMEOUT).unwrap();
        assert_eq!(r, Reply::Connect(ConnectStatus::AlreadyConnected));
        let addr = fake(b"0\x007\0", Duration::ZERO);
        let req = Request::Send { sender: "a".into(), recipient: "b".into(), text: "t".into() };
        assert_eq!(request(addr, &req, DEFAULT_TIMEOUT).unwrap(), Reply::Send(SendReply::Accepted(7)));
        let addr = fake(b"\x001\0a\0", Duration::ZERO);
        let req = Request::ConnectedUsers { alias: "a".into() };
        assert_eq!(
            request(addr, &req, DEFAULT_TIMEOUT).unwrap(),
            Reply::ConnectedUsers(UsersReply::List(vec!["a".into()]))
        );
    }

    #[test]
    fn early_close_garbage_and_unknown_codes_are_errors() {
        for bytes in [&b""[..], b"garbage", b"\x07", b"\x05"] {
            let addr = fake(bytes, Duration::ZERO);
            assert!(matches!(request(addr, &connect_req(), DEFAULT_TIMEOUT), Err(ConnError::Reply(_))), "{bytes:?}");
        }
    }

    #[test]
    fn a_silent_server_times_out() {
        let addr = fake(b"", Duration::from_secs(3));
        let started = Instant::now();
        let err = request(addr, &connect_req(), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, ConnError::Reply(ReplyError::Field(FieldError::Timeout))), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn refused_is_a_connect_error() {
        // Bind then drop: the port is very likely closed for the duration of the test.
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(matches!(request(addr, &connect_req(), DEFAULT_TIMEOUT), Err(ConnError::Connect(_))));
    }
}
