//! Writing the answer and closing the connection without losing it: the status line and headers, a bounded
//! write, and the linger that keeps a reset from destroying an answer the peer has not read yet.

use std::io::{self, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::deadline::{read_some, write_all_by, ReadLimits};
use crate::app::Response;

/// Longest time to write a whole response, so a peer that does not read cannot hold a worker.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering a request whose input was not read to the end (an error answer, e.g. 413), how long the
/// worker keeps reading and discarding before closing. Closing a socket with unread input makes the kernel send
/// a reset, which can destroy the answer before the client has read it; draining briefly lets it arrive.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(1);
/// Most bytes discarded while lingering.
pub const MAX_LINGER_BYTES: usize = 256 * 1024;

pub(super) fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head_only: bool,
    deadline: Instant,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + response.body.len());
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    if let Some(allow) = response.allow {
        let _ = write!(out, "Allow: {allow}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    write_all_by(stream, &out, deadline)?;
    stream.flush()
}

/// Reads and discards what the peer still sends, for at most [`LINGER_TIMEOUT`] and [`MAX_LINGER_BYTES`], so
/// that closing does not reset the connection under the answer just written.
pub(super) fn linger(stream: &mut TcpStream) {
    let limits = ReadLimits { deadline: Instant::now() + LINGER_TIMEOUT, idle: LINGER_TIMEOUT };
    let mut scratch = [0u8; 8192];
    let mut drained = 0;
    while drained < MAX_LINGER_BYTES {
        match read_some(stream, &mut scratch, limits) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// A request target fit for a log line: at most 200 characters, control characters escaped.
pub(super) fn loggable(target: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = target.chars().take(MAX).flat_map(char::escape_debug).collect();
    if target.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_targets_are_bounded_and_escaped() {
        assert_eq!(loggable("/?wsdl"), "/?wsdl");
        assert_eq!(loggable("/\u{7}"), "/\\u{7}");
        assert_eq!(loggable(&"x".repeat(500)).chars().count(), 201);
    }
}
