//! Reading one HTTP/1.1 request with its limits: the head (size, header count, `Host`, `Content-Length`), then
//! exactly the declared body, refusing what is too large before allocating it.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::deadline::{is_timeout, read_some, write_all_by, ReadLimits};
use super::response::WRITE_TIMEOUT;
use crate::app::{self, Response};

/// Largest request head (request line and headers) accepted; more is answered 431. Real SOAP clients send well
/// under 1 KiB.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest number of header lines accepted; more is answered 431.
pub const MAX_HEADERS: usize = 64;
/// Largest request body accepted; a larger declared `Content-Length` is answered 413 without reading the body.
/// A message is at most 255 bytes (docs/protocol.md, "Limits and timeouts"), so 64 KiB leaves room for any
/// envelope around any text a user could paste, and bounds the memory one request can cost.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest wait for the next bytes of a request; a peer idle this long is dropped (408 if it had started).
pub const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time from accepting a connection to having its whole request, however the bytes trickle in: this is
/// what stops a peer that sends one byte every few seconds (slowloris) from holding a worker indefinitely.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// The parts of a request head the service acts on, copied out of the read buffer.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) host: Option<String>,
    pub(super) content_length: u64,
    pub(super) expect_continue: bool,
}

/// Why no request was handed to the application.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Nothing worth answering: the peer closed, reset, or stayed silent before sending a byte.
    Silent(String),
    /// An HTTP error answer; the head, when it was read, labels the log line. Boxed: it is the rare path.
    Answer(Box<(Response, Option<Head>)>),
}

impl Refusal {
    fn answer(status: u16, message: impl Into<String>, head: Option<Head>) -> Refusal {
        Refusal::Answer(Box::new((Response::text(status, message), head)))
    }
}

/// connection holds no further input that we know of (nothing after the body).
pub(super) fn read_request(stream: &mut TcpStream, limits: ReadLimits) -> Result<(Head, Vec<u8>, bool), Refusal> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let (head, head_len) = loop {
        match read_some(stream, &mut chunk, limits) {
            Ok(0) if buf.is_empty() => return Err(Refusal::Silent("closed".into())),
            Ok(0) => return Err(Refusal::answer(400, "connection closed inside the request head", None)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if buf.is_empty() => return Err(Refusal::Silent(e.to_string())),
            Err(e) if is_timeout(&e) => {
                return Err(Refusal::answer(408, "request head not received in time", None));
            }
            Err(e) => return Err(Refusal::Silent(e.to_string())),
        }
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(Refusal::answer(431, format!("request head larger than {MAX_HEAD_BYTES} bytes"), None));
        }
    };

    let declared = head.content_length;
    if declared > MAX_BODY_BYTES as u64 {
        let message = format!("request body of {declared} bytes is larger than the limit of {MAX_BODY_BYTES} bytes");
        return Err(Refusal::answer(413, message, Some(head)));
    }
    // Checked against MAX_BODY_BYTES just above, so it fits.
    let declared = declared as usize;
    let mut body = buf.split_off(head_len);
    let extra = body.len() > declared;
    body.truncate(declared);
    if head.expect_continue && body.len() < declared {
        let continued = write_all_by(stream, b"HTTP/1.1 100 Continue\r\n\r\n", Instant::now() + WRITE_TIMEOUT);
        if let Err(e) = continued {
            return Err(Refusal::Silent(format!("could not send 100 Continue: {e}")));
        }
    }
    let mut filled = body.len();
    body.resize(declared, 0);
    while filled < declared {
        match read_some(stream, &mut body[filled..], limits) {
            Ok(0) => return Err(Refusal::answer(400, "connection closed inside the request body", Some(head))),
            Ok(n) => filled += n,
            Err(e) if is_timeout(&e) => {
                return Err(Refusal::answer(408, "request body not received in time", Some(head)));
            }
            Err(e) => return Err(Refusal::Silent(e.to_string())),
        }
    }
    Ok((head, body, !extra))
}

/// Parses the head once it is complete: `Ok(None)` while more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::answer(431, format!("more than {MAX_HEADERS} header lines"), None))
        }
        Err(httparse::Error::Version) => {
            return Err(Refusal::answer(505, "only HTTP/1.0 and HTTP/1.1 are served", None))
        }
        Err(e) => return Err(Refusal::answer(400, format!("malformed request head: {e}"), None)),
    };
    let mut head = Head {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        host: None,
        content_length: 0,
        expect_continue: false,
    };
    let mut hosts = 0;
    let mut lengths: Vec<u64> = Vec::new();
    let mut chunked = false;
    for header in request.headers.iter() {
        let value = std::str::from_utf8(header.value).map(|v| v.trim_matches([' ', '\t']));
        let name = header.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            match value {
                Ok(v) if app::is_valid_host(v) => head.host = Some(v.to_owned()),
                _ => return Err(Refusal::answer(400, "invalid Host header", Some(head))),
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match value.ok().and_then(parse_content_length) {
                Some(n) => lengths.push(n),
                None => return Err(Refusal::answer(400, "invalid Content-Length header", Some(head))),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("expect") {
            match value {
                Ok(v) if v.eq_ignore_ascii_case("100-continue") => head.expect_continue = true,
                _ => return Err(Refusal::answer(417, "only Expect: 100-continue is understood", Some(head))),
            }
        }
    }
    // RFC 9112 3.2: an HTTP/1.1 request must have exactly one Host; a repeated or contradictory Content-Length
    // makes the body boundary ambiguous (6.3), which is how request smuggling starts.
    if hosts > 1 || (hosts == 0 && request.version == Some(1)) {
        return Err(Refusal::answer(400, "an HTTP/1.1 request needs exactly one Host header", Some(head)));
    }
    if lengths.windows(2).any(|w| w[0] != w[1]) {
        return Err(Refusal::answer(400, "conflicting Content-Length headers", Some(head)));
    }
    if chunked {
        // Chunked request bodies are not accepted: every SOAP client sends Content-Length, and a declared length
        // lets an oversized body be refused before it is read.
        return Err(Refusal::answer(
            411,
            "send the body with Content-Length (chunked bodies are not accepted)",
            Some(head),
        ));
    }
    head.content_length = lengths.first().copied().unwrap_or(0);
    Ok(Some((head, head_len)))
}

/// A `Content-Length` value: decimal digits only; too many digits to fit saturate, which the size check refuses.
fn parse_content_length(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse::<u64>().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<(Head, usize)>, u16> {
        parse_head(raw.as_bytes()).map_err(|r| match r {
            Refusal::Answer(answer) => answer.0.status,
            Refusal::Silent(_) => 0,
        })
    }

    #[test]
    fn complete_head_is_parsed() {
        let raw = "POST /?x HTTP/1.1\r\nHost: h:1\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\nbody";
        let (h, n) = match head(raw) {
            Ok(Some(parsed)) => parsed,
            other => panic!("{other:?}"),
        };
        assert_eq!((h.method.as_str(), h.target.as_str(), h.host.as_deref()), ("POST", "/?x", Some("h:1")));
        assert_eq!((h.content_length, h.expect_continue, n), (12, true, raw.len() - 4));
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert!(matches!(head("GET / HTTP/1.1\r\nHost: h\r\n"), Ok(None)));
    }

    #[test]
    fn bad_heads_are_refused_with_the_right_status() {
        let cases = [
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
            ("POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417),
            ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
            ("\u{1}\u{2}\r\n\r\n", 400),
        ];
        for (raw, status) in cases {
            assert_eq!(head(raw).map(|_| ()), Err(status), "{raw:?}");
        }
        let many = format!("GET / HTTP/1.1\r\nHost: h\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(head(&many).map(|_| ()), Err(431));
    }

    #[test]
    fn http_1_0_may_omit_host_and_huge_lengths_saturate() {
        assert!(matches!(head("GET /?wsdl HTTP/1.0\r\n\r\n"), Ok(Some((Head { host: None, .. }, _)))));
        let raw = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        assert!(matches!(head(raw), Ok(Some((Head { content_length: u64::MAX, .. }, _)))));
        let same_twice = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
        assert!(matches!(head(same_twice), Ok(Some((Head { content_length: 3, .. }, _)))));
    }
}
