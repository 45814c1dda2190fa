//! Reads and writes on a connection that never wait past a deadline: the one place that sets socket timeouts.
//!
//! A socket timeout bounds one `read` or `write` call; a peer trickling one byte at a time would reset it with
//! each byte. These helpers recompute the timeout from an absolute deadline before every call, so a whole
//! request or answer is bounded whatever the peer does.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// When reads must end.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadLimits {
    /// No read returns later than this.
    pub(super) deadline: Instant,
    /// No read waits longer than this for its first byte.
    pub(super) idle: Duration,
}

/// One read that returns within the idle timeout and never after the deadline.
pub(super) fn read_some(stream: &mut TcpStream, buf: &mut [u8], limits: ReadLimits) -> io::Result<usize> {
    loop {
        let left = remaining(limits.deadline)?;
        stream.set_read_timeout(Some(left.min(limits.idle)))?;
        match stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Writes all of `data`, giving up at `deadline`.
pub(super) fn write_all_by(stream: &mut TcpStream, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    while !data.is_empty() {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        match stream.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Time left until `deadline`, or a timeout error when none is (a zero timeout would mean "block forever").
fn remaining(deadline: Instant) -> io::Result<Duration> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(io::Error::new(ErrorKind::TimedOut, "deadline passed")),
    }
}

/// Socket timeouts surface as `WouldBlock` on Unix and `TimedOut` on Windows.
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
