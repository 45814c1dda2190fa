//! The bench's side of the wire: one request per connection, the baseline's ping, and the push listeners.
//!
//! Everything here is lean on purpose: the bench shares the machine with the server it measures, so every
//! syscall it saves is CPU the server gets. A request is connect, one write, the reads of its reply, close;
//! there is no `set_nodelay` (a single write never waits for Nagle) and no write timeout (a request of a few
//! hundred bytes always fits the empty send buffer of a fresh socket). Reads are bounded by a timeout and the
//! reply by a byte cap.

use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use protocol::field::{put_field, put_number};
use protocol::push::MAX_PUSH_LEN;
use protocol::reply::ReplyError;
use protocol::{FieldReader, Op, Push, Reply};

/// Cap on one reply's bytes: a CONNECTEDUSERS list of a few thousand aliases fits; a runaway server does not
/// make us buffer without bound.
pub const MAX_REPLY_BYTES: usize = 1 << 20;
/// Read buffer of a reply: a whole ordinary reply in one read.
const REPLY_BUFFER: usize = 4096;
/// Bytes the baseline client sends: "a few bytes", like a short request.
pub const PING: &[u8] = b"PING\0bench\0";
/// Bound on the connection that wakes a blocked `accept` when a listener stops.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a request failed (for the error counts of the report).
#[derive(Debug)]
pub enum Failure {
    Connect(io::Error),
    Write(io::Error),
    Reply(ReplyError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "connect: {e}"),
            Failure::Write(e) => write!(f, "write: {e}"),
            Failure::Reply(e) => write!(f, "reply: {e}"),
        }
    }
}

impl Failure {
    /// Whether the failure is a timeout (of the connect or of a read) rather than a refusal, reset or bad reply.
    pub fn is_timeout(&self) -> bool {
        match self {
            Failure::Connect(e) | Failure::Write(e) => {
                matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
            }
            Failure::Reply(ReplyError::Field(protocol::FieldError::Timeout)) => true,
            Failure::Reply(_) => false,
        }
    }
}

/// Opens a connection to `addr` whose reads time out after `timeout`.
fn open(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Failure> {
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(Failure::Connect)?;
    stream.set_read_timeout(Some(timeout)).map_err(Failure::Connect)?;
    Ok(stream)
}

/// Sends one encoded request and reads the reply of `op`.
pub fn request(addr: SocketAddr, bytes: &[u8], op: Op, timeout: Duration) -> Result<Reply, Failure> {
    let stream = open(addr, timeout)?;
    (&stream).write_all(bytes).map_err(Failure::Write)?;
    let mut reader = FieldReader::with_cap(BufReader::with_capacity(REPLY_BUFFER, &stream), MAX_REPLY_BYTES);
    Reply::read_from(op, &mut reader).map_err(Failure::Reply)
}

/// The alias of the probe's UNREGISTER: nobody is registered under it.
pub const PROBE_ALIAS: &str = "bench-probe-nobody";

/// Whether a server answers: one complete, harmless request (an UNREGISTER of [`PROBE_ALIAS`]), its reply read.
/// Never an empty or cut-short connection: the original servers crash or replay their previous request on one
/// (docs/compatibility.md, "What an original server cannot survive").
pub fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), Failure> {
    let mut bytes = Vec::new();
    encode::unregister(&mut bytes, PROBE_ALIAS);
    request(addr, &bytes, Op::Unregister, timeout).map(|_| ())
}

/// The baseline's request: connect, write a few bytes, read one byte, close.
pub fn ping(addr: SocketAddr, timeout: Duration) -> Result<(), Failure> {
    let mut stream = open(addr, timeout)?;
    stream.write_all(PING).map_err(Failure::Write)?;
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(1) => Ok(()),
        Ok(_) => Err(Failure::Reply(ReplyError::Field(protocol::FieldError::Eof))),
        Err(e) => Err(Failure::Reply(ReplyError::Field(e.into()))),
    }
}

/// Request encoders writing into a reused buffer (the bench allocates nothing per request on this path).
pub mod encode {
    use super::*;

    pub fn register(buf: &mut Vec<u8>, alias: &str) {
        buf.clear();
        put_field(buf, b"REGISTER");
        put_field(buf, alias.as_bytes());
        put_field(buf, alias.as_bytes());
        put_field(buf, b"01/01/2000");
    }

    pub fn unregister(buf: &mut Vec<u8>, alias: &str) {
        buf.clear();
        put_field(buf, b"UNREGISTER");
        put_field(buf, alias.as_bytes());
    }

    pub fn connect(buf: &mut Vec<u8>, alias: &str, port: u16) {
        buf.clear();
        put_field(buf, b"CONNECT");
        put_field(buf, alias.as_bytes());
        put_number(buf, u64::from(port));
    }

    pub fn disconnect(buf: &mut Vec<u8>, alias: &str) {
        buf.clear();
        put_field(buf, b"DISCONNECT");
        put_field(buf, alias.as_bytes());
    }

    pub fn send(buf: &mut Vec<u8>, sender: &str, recipient: &str, text: &[u8]) {
        buf.clear();
        put_field(buf, b"SEND");
        put_field(buf, sender.as_bytes());
        put_field(buf, recipient.as_bytes());
        put_field(buf, text);
    }

    pub fn connected_users(buf: &mut Vec<u8>, alias: &str) {
        buf.clear();
        put_field(buf, b"CONNECTEDUSERS");
        put_field(buf, alias.as_bytes());
    }
}

/// Nanoseconds since the bench started: the one clock every thread stamps events with.
#[derive(Debug, Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// What a listener received.
#[derive(Debug, Clone, Copy)]
pub enum Received {
    /// A message push. `number` is the bench's message number parsed from the text (None if the text is not
    /// one of ours); `sender` the sender's user index parsed from its alias.
    Message { at_ns: u64, number: Option<u64>, sender: Option<u32>, id: u32 },
    /// An acknowledgement push, read at `at_ns`.
    Ack { at_ns: u64, id: u32 },
    /// Something that is not a valid push (counted as an error).
    Malformed,
}

/// Counters every listener bumps, read by the progress line and the end-of-run wait.
#[derive(Debug, Default)]
pub struct Counters {
    pub messages: AtomicU64,
    pub acks: AtomicU64,
    pub malformed: AtomicU64,
}

/// How a listener makes sense of a push's text and sender alias.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Alias prefix of this run's users: `<prefix><index>`.
    pub prefix: Arc<str>,
}

impl Decoder {
    /// The user index of an alias of this run.
    pub fn user_index(&self, alias: &str) -> Option<u32> {
        alias.strip_prefix(&*self.prefix)?.parse().ok()
    }

    /// The message number at the start of a text made by [`message_text`].
    pub fn number(text: &str) -> Option<u64> {
        let rest = text.strip_prefix('m')?;
        let end = rest.find(' ')?;
        u64::from_str_radix(&rest[..end], 16).ok()
    }
}

/// A message text of exactly `size` bytes that starts with the message's number: `m<hex> xxxx…`.
pub fn message_text(buf: &mut Vec<u8>, number: u64, size: usize) {
    buf.clear();
    let _ = write!(buf, "m{number:x} ");
    buf.resize(size.max(buf.len()), b'x');
}

/// The smallest text size that can carry a message number.
pub const MIN_TEXT: usize = 18;

/// A push listener for one user: a bound socket and the thread accepting on it.
pub struct Listener {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Received>>,
}

impl Listener {
    /// Binds 127.0.0.1 on an ephemeral port and starts accepting at once (before CONNECT is sent, so no push
    /// can find the door closed).
    pub fn spawn(
        user: u32,
        decoder: Decoder,
        clock: Clock,
        counters: Arc<Counters>,
        timeout: Duration,
    ) -> io::Result<Listener> {
        let socket = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        let port = socket.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name(format!("listen-{user}"))
            .stack_size(LISTENER_STACK)
            .spawn(move || accept_loop(socket, &flag, &decoder, clock, &counters, timeout))?;
        Ok(Listener { port, stop, thread })
    }

    /// Stops accepting and returns everything received.
    pub fn stop(self) -> Vec<Received> {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept; if this fails the listener is already gone.
        let _ = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)), WAKE_TIMEOUT);
        self.thread.join().unwrap_or_default()
    }
}

/// Pause after a failed accept (out of descriptors for a moment).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Stack of a listener thread: it only parses small pushes.
const LISTENER_STACK: usize = 128 * 1024;

fn accept_loop(
    socket: TcpListener,
    stop: &AtomicBool,
    decoder: &Decoder,
    clock: Clock,
    counters: &Counters,
    timeout: Duration,
) -> Vec<Received> {
    let mut got = Vec::new();
    // Bounded by the run: the loop ends when the bench stops the listener.
    while !stop.load(Ordering::SeqCst) {
        let stream = match socket.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::ConnectionAborted => continue,
            Err(_) => {
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Some(r) = read_one(&stream, decoder, clock, timeout) {
            match r {
                Received::Message { .. } => counters.messages.fetch_add(1, Ordering::Relaxed),
                Received::Ack { .. } => counters.acks.fetch_add(1, Ordering::Relaxed),
                Received::Malformed => counters.malformed.fetch_add(1, Ordering::Relaxed),
            };
            got.push(r);
        }
    }
    got
}

/// Reads one push and then the end of stream (so the server, which half-closed first, is the side that keeps
/// the TIME_WAIT and our port is free at once).
fn read_one(stream: &TcpStream, decoder: &Decoder, clock: Clock, timeout: Duration) -> Option<Received> {
    let _ = stream.set_read_timeout(Some(timeout));
    let mut reader = FieldReader::with_cap(BufReader::with_capacity(MAX_PUSH_LEN, stream), MAX_PUSH_LEN);
    if let Ok(None) = reader.peek_byte() {
        return None; // a wake-up connection
    }
    let push = Push::read_from(&mut reader);
    let at_ns = clock.now_ns();
    // Read to EOF, bounded by the push cap and the read timeout.
    let mut rest = reader.into_inner().take(MAX_PUSH_LEN as u64);
    let _ = io::copy(&mut rest, &mut io::sink());
    Some(match push {
        Ok(Push::Message { sender, id, text }) => {
            Received::Message { at_ns, number: Decoder::number(&text), sender: decoder.user_index(&sender), id }
        }
        Ok(Push::Ack { id }) => Received::Ack { at_ns, id },
        Err(_) => Received::Malformed,
    })
}
