//! The HTTP/1.1 side: a fixed pool of worker threads, each accepting and serving one connection at a time, with
//! every read, write and size bounded.
//!
//! Each connection carries exactly one request and is then closed (`Connection: close`), which keeps a worker's
//! time per peer bounded by [`REQUEST_DEADLINE`] + [`WRITE_TIMEOUT`] + [`LINGER_TIMEOUT`] whatever the peer does,
//! and means an idle keep-alive connection can never hold a worker. Clients (zeep, ureq, curl) reconnect for the
//! next call. A peer that is slow or silent is cut at the deadline; a flood of such peers can occupy all workers
//! for at most that long, during which new connections wait in the kernel's listen backlog rather than costing a
//! thread or memory each.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};

use crate::app::{self, Request, Response};

/// Largest request head (request line and headers) accepted; more is answered 431. Real SOAP clients send well
/// under 1 KiB.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest number of header lines accepted; more is answered 431.
pub const MAX_HEADERS: usize = 64;
/// Largest request body accepted; a larger declared `Content-Length` is answered 413 without reading the body.
/// A message is at most 255 bytes (PROTOCOL.md 2.3), so 64 KiB leaves room for any envelope around any text a
/// user could paste, and bounds the memory one request can cost.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest wait for the next bytes of a request; a peer idle this long is dropped (408 if it had started).
pub const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time from accepting a connection to having its whole request, however the bytes trickle in: this is
/// what stops a peer that sends one byte every few seconds (slowloris) from holding a worker indefinitely.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Longest time to write a whole response, so a peer that does not read cannot hold a worker.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering a request whose input was not read to the end (an error answer, e.g. 413), how long the
/// worker keeps reading and discarding before closing. Closing a socket with unread input makes the kernel send
/// a reset, which can destroy the answer before the client has read it; draining briefly lets it arrive.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(1);
/// Most bytes discarded while lingering.
pub const MAX_LINGER_BYTES: usize = 256 * 1024;
/// Worker threads when not configured: connections served at the same time. Threads are cheap here (a few KiB
/// of buffers each), and every worker is one more silent or trickling peer the service absorbs without delaying
/// anyone: up to this many such peers cost nothing; beyond it, a new request waits for a worker to be freed by a
/// deadline (measured: 100 silent connections against 64 workers delay the next request by one idle timeout).
pub const DEFAULT_WORKERS: usize = 64;
/// Upper bound for the configured number of workers.
pub const MAX_WORKERS: usize = 256;
/// Pause after a failed `accept` (e.g. out of file descriptors), so that a persistent failure does not spin.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// Longest `--public-url` accepted.
pub const MAX_PUBLIC_URL_LEN: usize = 2048;

/// Settings of a [`Service`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL advertised as the WSDL's `soap:address`; when `None` it is derived from each request's `Host`.
    pub public_url: Option<String>,
    /// Number of worker threads (1..=[`MAX_WORKERS`]).
    pub workers: usize,
    /// Longest wait for the next bytes of a request ([`READ_IDLE_TIMEOUT`] by default).
    pub read_idle_timeout: Duration,
    /// Longest time to receive a whole request ([`REQUEST_DEADLINE`] by default).
    pub request_deadline: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            public_url: None,
            workers: DEFAULT_WORKERS,
            read_idle_timeout: READ_IDLE_TIMEOUT,
            request_deadline: REQUEST_DEADLINE,
        }
    }
}

impl Config {
    /// Checks the settings, so that a bad one is reported at start-up rather than served.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(format!("workers must be between 1 and {MAX_WORKERS}, not {}", self.workers));
        }
        if self.read_idle_timeout.is_zero() || self.request_deadline.is_zero() {
            return Err("timeouts must be longer than zero".into());
        }
        if let Some(url) = &self.public_url {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            if !scheme_ok || url.len() > MAX_PUBLIC_URL_LEN || !url.chars().all(|c| c.is_ascii_graphic()) {
                return Err(format!(
                    "public URL {url:?} must be an http:// or https:// URL of printable ASCII, at most \
                     {MAX_PUBLIC_URL_LEN} bytes (percent-encode anything else)"
                ));
            }
        }
        Ok(())
    }
}

/// A bound but not yet serving service. Binding first lets the caller learn the port (e.g. after binding port 0)
/// before any request can arrive.
#[derive(Debug)]
pub struct Service {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: Config,
}

impl Service {
    /// Binds the listening socket. Fails on an invalid [`Config`] (as `InvalidInput`) or if the address cannot be
    /// bound.
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<Service> {
        config.validate().map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        Ok(Service { listener, local_addr, config })
    }

    /// The address actually bound (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts the workers and returns at once; the service stops when the handle is shut down or dropped.
    pub fn spawn(self) -> io::Result<RunningService> {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            public_url: self.config.public_url,
            local_addr: self.local_addr,
            read_idle_timeout: self.config.read_idle_timeout,
            request_deadline: self.config.request_deadline,
        });
        let mut workers = Vec::with_capacity(self.config.workers);
        for n in 0..self.config.workers {
            let listener = self.listener.try_clone()?;
            let (worker_stop, shared) = (Arc::clone(&stop), Arc::clone(&shared));
            let spawned = thread::Builder::new()
                .name(format!("webservice-worker-{n}"))
                .spawn(move || worker(&listener, &shared, &worker_stop));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    // Stop the workers already started before reporting the failure.
                    drop(RunningService { local_addr: self.local_addr, stop, workers });
                    return Err(e);
                }
            }
        }
        Ok(RunningService { local_addr: self.local_addr, stop, workers })
    }

    /// Serves until the process ends.
    pub fn run(self) -> io::Result<()> {
        let mut running = self.spawn()?;
        for handle in running.workers.drain(..) {
            if handle.join().is_err() {
                error!("a worker thread ended by panic");
            }
        }
        Ok(())
    }
}

/// A serving service. Dropping it stops the workers: each finishes the connection it is serving (bounded by the
/// deadlines above), then exits.
#[derive(Debug)]
pub struct RunningService {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl RunningService {
    /// The address the service listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL of the service on loopback-reachable form, e.g. `http://127.0.0.1:8000/`.
    pub fn url(&self) -> String {
        format!("http://{}/", wake_addr(self.local_addr))
    }

    /// Stops the service and waits for its workers.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Workers block in accept(); one connection per worker wakes each of them, and a woken worker sees the
        // flag and exits without serving. A connection that fails just means that worker was not blocked.
        let wake = wake_addr(self.local_addr);
        for _ in &self.workers {
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        }
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// The address to connect to in order to reach a listener bound to `addr` (loopback for a wildcard bind).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut wake = addr;
    if addr.ip().is_unspecified() {
        wake.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    wake
}

/// What every worker shares.
#[derive(Debug)]
struct Shared {
    public_url: Option<String>,
    local_addr: SocketAddr,
    read_idle_timeout: Duration,
    request_deadline: Duration,
}

fn worker(listener: &TcpListener, shared: &Shared, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                // A bug in a handler must cost one connection, not a worker: the pool would shrink otherwise.
                if panic::catch_unwind(AssertUnwindSafe(|| serve(stream, peer, shared))).is_err() {
                    error!("{peer}: the request handler panicked; connection dropped");
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted) => {}
            Err(e) => {
                warn!("accept failed: {e}; retrying in {ACCEPT_ERROR_BACKOFF:?}");
                thread::sleep(ACCEPT_ERROR_BACKOFF);
            }
        }
    }
}

/// The parts of a request head the service acts on, copied out of the read buffer.
#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    host: Option<String>,
    content_length: u64,
    expect_continue: bool,
}

/// Why no request was handed to the application.
#[derive(Debug)]
enum Refusal {
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

fn serve(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let started = Instant::now();
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(shared.local_addr);
    let limits = ReadLimits { deadline: started + shared.request_deadline, idle: shared.read_idle_timeout };
    let (response, head, fully_read) = match read_request(&mut stream, limits) {
        Ok((head, body, fully_read)) => {
            let request =
                Request { method: &head.method, target: &head.target, host: head.host.as_deref(), body: &body };
            (app::handle(&request, shared.public_url.as_deref(), local), Some(head), fully_read)
        }
        Err(Refusal::Answer(answer)) => {
            let (response, head) = *answer;
            (response, head, false)
        }
        Err(Refusal::Silent(why)) => {
            debug!("{peer}: closed without a request ({why})");
            return;
        }
    };
    let head_only = head.as_ref().is_some_and(|h| h.method == "HEAD");
    let written = write_response(&mut stream, &response, head_only, Instant::now() + WRITE_TIMEOUT);
    let (method, target) = match &head {
        Some(h) => (h.method.as_str(), loggable(&h.target)),
        None => ("-", "-".to_owned()),
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let op = response.operation.unwrap_or("-");
    match written {
        Ok(()) => info!("{peer} {method} {target} op={op} status={} {elapsed_ms:.1}ms", response.status),
        Err(e) => {
            info!("{peer} {method} {target} op={op} status={} not delivered ({e}) {elapsed_ms:.1}ms", response.status)
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    if !fully_read {
        linger(&mut stream);
    }
}

/// Reads one request: its head, then exactly `Content-Length` bytes of body. On success also says whether the
/// connection holds no further input that we know of (nothing after the body).
fn read_request(stream: &mut TcpStream, limits: ReadLimits) -> Result<(Head, Vec<u8>, bool), Refusal> {
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

/// When reads must end.
#[derive(Debug, Clone, Copy)]
struct ReadLimits {
    /// No read returns later than this.
    deadline: Instant,
    /// No read waits longer than this for its first byte.
    idle: Duration,
}

/// One read that returns within the idle timeout and never after the deadline.
fn read_some(stream: &mut TcpStream, buf: &mut [u8], limits: ReadLimits) -> io::Result<usize> {
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
fn write_all_by(stream: &mut TcpStream, mut data: &[u8], deadline: Instant) -> io::Result<()> {
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
fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn write_response(stream: &mut TcpStream, response: &Response, head_only: bool, deadline: Instant) -> io::Result<()> {
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
fn linger(stream: &mut TcpStream) {
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
fn loggable(target: &str) -> String {
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

    #[test]
    fn log_targets_are_bounded_and_escaped() {
        assert_eq!(loggable("/?wsdl"), "/?wsdl");
        assert_eq!(loggable("/\u{7}"), "/\\u{7}");
        assert_eq!(loggable(&"x".repeat(500)).chars().count(), 201);
    }

    #[test]
    fn config_is_validated() {
        assert!(Config::default().validate().is_ok());
        assert!(Config { workers: 0, ..Config::default() }.validate().is_err());
        assert!(Config { workers: MAX_WORKERS + 1, ..Config::default() }.validate().is_err());
        for bad in ["ftp://x/", "http://a b/", "localhost:8000", "http://ü/"] {
            assert!(Config { public_url: Some(bad.into()), ..Config::default() }.validate().is_err(), "{bad}");
        }
        assert!(Config { public_url: Some("https://h.example/ws/".into()), ..Config::default() }.validate().is_ok());
    }
}
