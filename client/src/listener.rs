//! The client's listener: the socket on which the server pushes messages and acknowledgements (docs/protocol.md,
//! "Client: the push listener").
//!
//! [`PushListener::bind`] binds `0.0.0.0` on an ephemeral port; the kernel queues incoming connections from that
//! moment, and [`PushListener::spawn`] starts the accept loop on its own thread, so a caller binds and spawns
//! before it sends CONNECT and no push can find the door closed.
//!
//! Three guards keep a stranger from harming the session:
//! - **Origin.** Only connections from the server's address are read ([`PushSource`]); anything else is closed
//!   unread and logged at debug level. Otherwise anyone who reaches the port could print a message that seems to
//!   come from any user.
//! - **Deadline.** A whole push must arrive within [`PUSH_DEADLINE`] of the connection's acceptance, and is at
//!   most [`MAX_PUSH_LEN`] bytes; a pusher that stalls or trickles is dropped then.
//! - **Concurrency.** Each accepted connection is read on a thread of its own, at most
//!   [`MAX_CONCURRENT_PUSHES`] at once, so a stalled peer cannot hold up a real push. When all are busy the accept
//!   loop waits for one to finish (at most [`PUSH_DEADLINE`]); further connections wait in the kernel's queue.
//!
//! Pushes are handed to the caller's callback one at a time, in the order their connections were accepted,
//! which is the order the server sent them ([`Turns`]). A push read completely waits for earlier connections
//! still being read for at most [`ORDER_WAIT`], then goes ahead: a stalled connection is skipped, not waited
//! for. The connection is closed only after the callback returned (an orderly close after reading tells the
//! server the push was delivered). A malformed push is logged and dropped.
//!
//! Stopping ([`ListenerHandle::stop`]) sets a flag and wakes the blocked `accept` with a connection of our own;
//! the loop then drains whatever is already queued for [`STOP_LINGER`], waits for the pushes being read, and
//! closes the socket. A push the server has written is one it will not send again, so closing without draining
//! could lose a message.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufReader, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use log::{debug, warn};
use protocol::field::FieldError;
use protocol::push::{PushError, MAX_PUSH_LEN};
use protocol::{FieldReader, Push};

use crate::conn::DeadlineReader;

/// Bound on reading one whole push, from the connection's acceptance to its last byte: a pusher that stalls or
/// trickles is dropped after this long.
pub const PUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Most push connections read at the same time.
pub const MAX_CONCURRENT_PUSHES: usize = 16;

/// How long a push that was read completely waits for pushes accepted before it and still being read, so that
/// they print in the server's order. Real pushes arrive whole at once; only a stalled peer makes it run out.
pub const ORDER_WAIT: Duration = Duration::from_millis(500);

/// Bound on a push's whole wait for its turn, including earlier pushes being printed (printing waits for the
/// result line of a request in flight, itself bounded by the request's timeouts).
const MAX_TURN_WAIT: Duration = Duration::from_secs(60);

/// How long a stopping listener keeps accepting connections that are already on their way. After a DISCONNECT
/// reply the server finishes at most the one push it had started; this covers its connect and write.
pub const STOP_LINGER: Duration = Duration::from_millis(250);

/// Pause between two polls of the queue while lingering (the socket is non-blocking then).
const LINGER_POLL: Duration = Duration::from_millis(10);

/// Bound on the wake-up connection that unblocks `accept` when stopping.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Bound on waiting for the accept loop to finish after a stop: a wait for a free reader, the linger, the pushes
/// still being read, and slack.
pub const STOP_TIMEOUT: Duration =
    Duration::from_millis(2 * PUSH_DEADLINE.as_millis() as u64 + STOP_LINGER.as_millis() as u64 + 1000);

/// Whose connections the listener reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushSource {
    /// Only connections from this address (the server's, normally).
    Only(IpAddr),
    /// Any address: for a server behind NAT or with several addresses, whose pushes come from an address the
    /// client does not know.
    Any,
}

impl PushSource {
    /// Whether a connection from `peer` may deliver a push. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn admits(&self, peer: IpAddr) -> bool {
        match self {
            PushSource::Any => true,
            PushSource::Only(ip) => canonical(*ip) == canonical(peer),
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for PushSource {
    type Err = String;

    /// `any`, or an IPv4 or IPv6 address.
    fn from_str(s: &str) -> Result<PushSource, String> {
        if s.eq_ignore_ascii_case("any") {
            return Ok(PushSource::Any);
        }
        s.parse().map(PushSource::Only).map_err(|_| format!("{s:?} is neither an IP address nor `any`"))
    }
}

impl fmt::Display for PushSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushSource::Only(ip) => write!(f, "{ip}"),
            PushSource::Any => f.write_str("any"),
        }
    }
}

/// Reads one push from an accepted connection; the whole push must arrive within `deadline`.
///
/// `Ok(None)` means the peer closed without sending a byte (a port scanner, or our own wake-up connection): it is
/// not an error worth a warning.
pub fn read_push(stream: &TcpStream, deadline: Duration) -> Result<Option<Push>, PushError> {
    let until = Instant::now() + deadline;
    let mut reader = FieldReader::with_cap(BufReader::new(DeadlineReader::new(stream, deadline, until)), MAX_PUSH_LEN);
    match reader.peek_byte() {
        Ok(None) => return Ok(None),
        Ok(Some(_)) => {}
        Err(e) => return Err(PushError::Field(e)),
    }
    Push::read_from(&mut reader).map(Some)
}

/// A bound listener socket whose accept loop has not started yet.
#[derive(Debug)]
pub struct PushListener {
    listener: TcpListener,
    port: u16,
}

impl PushListener {
    /// Binds `0.0.0.0` on an ephemeral port: the server connects to the address it saw our request come from,
    /// which may be any of our interfaces.
    pub fn bind() -> io::Result<PushListener> {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        let port = listener.local_addr()?.port();
        Ok(PushListener { listener, port })
    }

    /// The port to announce in CONNECT.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the accept loop on a thread named `listener`, reading pushes from `source` only; `on_push` runs for
    /// every valid push, one at a time, in the order they were read (see the module comment).
    pub fn spawn<F>(self, source: PushSource, on_push: F) -> io::Result<ListenerHandle>
    where
        F: FnMut(Push) + Send + 'static,
    {
        self.spawn_with(source, PUSH_DEADLINE, on_push)
    }

    fn spawn_with<F>(self, source: PushSource, deadline: Duration, on_push: F) -> io::Result<ListenerHandle>
    where
        F: FnMut(Push) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = bounded(1);
        let port = self.port;
        let flag = Arc::clone(&stop);
        let shared = Arc::new(Shared {
            source,
            deadline,
            on_push: Mutex::new(on_push),
            readers: Arc::new(Readers::default()),
            turns: Arc::new(Turns::default()),
        });
        let thread = thread::Builder::new().name("listener".into()).spawn(move || {
            accept_loop(self.listener, &flag, &shared);
            let _ = done_tx.send(());
        })?;
        Ok(ListenerHandle { stop, port, done: done_rx, thread: Some(thread) })
    }
}

/// What the accept loop shares with the threads that read pushes.
struct Shared<F> {
    source: PushSource,
    deadline: Duration,
    /// The caller's callback. The lock makes the calls one at a time, so each push prints whole and in order.
    on_push: Mutex<F>,
    readers: Arc<Readers>,
    turns: Arc<Turns>,
}

/// The count of push connections being read, capped at [`MAX_CONCURRENT_PUSHES`].
#[derive(Default)]
struct Readers {
    busy: Mutex<usize>,
    changed: Condvar,
}

impl Readers {
    fn busy(&self) -> MutexGuard<'_, usize> {
        // A plain counter, consistent whatever panicked while holding it.
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a reader slot, waiting while all are busy (each frees within the push deadline).
    fn acquire(self: &Arc<Self>) -> ReaderSlot {
        let mut busy = self.busy();
        while *busy >= MAX_CONCURRENT_PUSHES {
            busy = self.changed.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        *busy += 1;
        ReaderSlot(Arc::clone(self))
    }

    /// Waits until no push is being read, at most `timeout`; returns whether that happened.
    fn wait_idle(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut busy = self.busy();
        while *busy > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            busy = self.changed.wait_timeout(busy, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }
}

/// One reader slot, freed on drop whatever happens to the thread that holds it.
struct ReaderSlot(Arc<Readers>);

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        *self.0.busy() -= 1;
        self.0.changed.notify_all();
    }
}

/// The printing order of pushes: one ticket per accepted connection, in acceptance order.
#[derive(Default)]
struct Turns {
    state: Mutex<TurnState>,
    changed: Condvar,
}

#[derive(Default)]
struct TurnState {
    next: u64,
    /// Connections that hold a ticket, by ticket number.
    open: BTreeMap<u64, Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The push is being read.
    Reading,
    /// Read completely, waiting for its turn.
    Ready,
    /// Being handed to the callback.
    Printing,
}

impl Turns {
    fn state(&self) -> MutexGuard<'_, TurnState> {
        // A counter and a map, consistent whatever panicked while holding them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A ticket for a connection just accepted.
    fn take(self: &Arc<Self>) -> Ticket {
        let mut st = self.state();
        let number = st.next;
        st.next += 1;
        st.open.insert(number, Stage::Reading);
        Ticket { turns: Arc::clone(self), number }
    }

    /// Runs `print` once `ticket`'s turn has come: no push is printing, no earlier push is waiting to print, and
    /// no earlier connection is still being read — that last condition for at most [`ORDER_WAIT`] after this push
    /// was read.
    fn print_in_turn(&self, ticket: &Ticket, print: impl FnOnce()) {
        let ready_at = Instant::now();
        let mut st = self.state();
        st.open.insert(ticket.number, Stage::Ready);
        loop {
            let earlier = || st.open.range(..ticket.number).map(|(_, stage)| *stage);
            let behind_a_push =
                earlier().any(|s| s != Stage::Reading) || st.open.values().any(|s| *s == Stage::Printing);
            let behind_a_reader = earlier().any(|s| s == Stage::Reading);
            let now = Instant::now();
            let waited = now.duration_since(ready_at);
            if waited >= MAX_TURN_WAIT {
                warn!("listener: a push waited {waited:?} for its turn; printing it now");
                break;
            }
            let wait = if behind_a_push {
                MAX_TURN_WAIT - waited
            } else if behind_a_reader && waited < ORDER_WAIT {
                ORDER_WAIT - waited
            } else {
                break;
            };
            st = self.changed.wait_timeout(st, wait).unwrap_or_else(PoisonError::into_inner).0;
        }
        st.open.insert(ticket.number, Stage::Printing);
        drop(st);
        print();
    }
}

/// A connection's place in the printing order, given up on drop (printed, dropped, or its thread died).
struct Ticket {
    turns: Arc<Turns>,
    number: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.turns.state().open.remove(&self.number);
        self.turns.changed.notify_all();
    }
}

/// A running accept loop. Dropping it stops it, like [`ListenerHandle::stop`].
#[derive(Debug)]
pub struct ListenerHandle {
    stop: Arc<AtomicBool>,
    port: u16,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl ListenerHandle {
    /// The port the listener is bound to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops accepting, delivers every push already queued (see the module comment), closes the socket and
    /// returns once all of that is done — or after [`STOP_TIMEOUT`] at worst, leaving a stuck loop behind.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        self.stop.store(true, Ordering::SeqCst);
        let wake = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        if let Err(e) = TcpStream::connect_timeout(&wake, WAKE_TIMEOUT) {
            // The loop notices the flag at its next connection; the wait below stays bounded anyway.
            warn!("cannot wake the listener on port {}: {e}", self.port);
        }
        match self.done.recv_timeout(STOP_TIMEOUT) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if thread.join().is_err() {
                    warn!("the listener thread panicked");
                }
            }
            Err(RecvTimeoutError::Timeout) => warn!("the listener on port {} did not stop in time", self.port),
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop<F: FnMut(Push) + Send + 'static>(listener: TcpListener, stop: &AtomicBool, shared: &Arc<Shared<F>>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => dispatch(stream, peer, shared),
            // A connection reset before we accepted it, or a transient shortage of descriptors: keep serving.
            Err(e) => {
                warn!("listener: accept failed: {e}");
                if !is_transient(&e) {
                    // Avoid a busy loop on a persistent error; the stop flag is still checked every round.
                    thread::sleep(LINGER_POLL);
                }
            }
        }
    }
    drain(&listener, shared);
    if !shared.readers.wait_idle(shared.deadline + WAKE_TIMEOUT) {
        warn!("listener: a push was still being read when the listener closed");
    }
    debug!("listener: closed");
}

/// Accepts and delivers what is already queued, for [`STOP_LINGER`], then returns so the socket closes.
fn drain<F: FnMut(Push) + Send + 'static>(listener: &TcpListener, shared: &Arc<Shared<F>>) {
    if let Err(e) = listener.set_nonblocking(true) {
        warn!("listener: cannot drain the queue: {e}");
        return;
    }
    let until = Instant::now() + STOP_LINGER;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                // Accepted sockets may inherit non-blocking mode on some systems; reads must block with a timeout.
                if stream.set_nonblocking(false).is_ok() {
                    dispatch(stream, peer, shared);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= until {
                    return;
                }
                thread::sleep(LINGER_POLL);
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => {
                warn!("listener: accept failed while closing: {e}");
                return;
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted)
}

/// Closes a connection from a stranger unread, or hands it to a reader thread of its own.
fn dispatch<F: FnMut(Push) + Send + 'static>(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared<F>>) {
    if !shared.source.admits(peer.ip()) {
        debug!("listener: closed a connection from {peer} unread: pushes are taken only from {}", shared.source);
        return;
    }
    let slot = shared.readers.acquire();
    let ticket = shared.turns.take();
    let mine = Arc::clone(shared);
    let spawned = thread::Builder::new().name("push".into()).spawn(move || {
        let _slot = slot;
        handle(&stream, peer, ticket, &mine);
    });
    if let Err(e) = spawned {
        // The closure, with the stream and the slot, is dropped: the connection closes, the slot is freed.
        warn!("listener: dropped a connection from {peer}: cannot start a thread to read it: {e}");
    }
}

fn handle<F: FnMut(Push)>(stream: &TcpStream, peer: SocketAddr, ticket: Ticket, shared: &Shared<F>) {
    match read_push(stream, shared.deadline) {
        Ok(Some(push)) => shared.turns.print_in_turn(&ticket, || {
            // A panic in the callback poisons nothing we rely on: the next push still gets printed.
            let mut on_push = shared.on_push.lock().unwrap_or_else(PoisonError::into_inner);
            on_push(push);
        }),
        Ok(None) => debug!("listener: empty connection from {peer}"),
        Err(PushError::Probe) => debug!("listener: the server checked that this listener is still there"),
        Err(PushError::Field(FieldError::Timeout)) => {
            warn!("listener: dropped a push from {peer}: not complete within {:?}", shared.deadline)
        }
        Err(e) => warn!("listener: dropped a push from {peer}: {e}"),
    }
    // The stream closes when the caller drops it, after the callback: see the module comment.
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::dialect::PushForm;
    use std::io::Write;

    /// Bound on waiting for a push that should arrive.
    const WAIT: Duration = Duration::from_secs(5);

    fn push_to(port: u16, bytes: &[u8]) {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        s.write_all(bytes).unwrap();
    }

    fn ack(id: u32) -> Vec<u8> {
        Push::Ack { id }.to_bytes(PushForm::SendMessage)
    }

    fn from_localhost() -> PushSource {
        PushSource::Only(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    #[test]
    fn delivers_pushes_in_order_and_drops_malformed_ones() {
        let listener = PushListener::bind().unwrap();
        let port = listener.port();
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = listener.spawn(from_localhost(), move |p| tx.send(p).unwrap()).unwrap();
        let m = Push::Message { sender: "bob".into(), id: 3, text: "hi".into() };
        push_to(port, b"HELLO\0");
        push_to(port, b"");
        push_to(port, &m.to_bytes(PushForm::SendMessage));
        // Back to back, as a server that does not wait for the listener's close sends them: they are read side by
        // side, and still printed in the order they arrived.
        for id in 4..40 {
            push_to(port, &ack(id));
        }
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), m);
        for id in 4..40 {
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), Push::Ack { id });
        }
        handle.stop();
    }

    #[test]
    fn stop_delivers_what_is_queued_and_being_read_then_closes() {
        let listener = PushListener::bind().unwrap();
        let port = listener.port();
        let (tx, rx) = crossbeam_channel::unbounded();
        // Queued in the kernel before the loop starts, and one still being written when the stop begins.
        for id in 1..=3 {
            push_to(port, &ack(id));
        }
        let slow = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let handle = listener.spawn(from_localhost(), move |p| tx.send(p).unwrap()).unwrap();
        let stopper = thread::spawn(move || handle.stop());
        (&slow).write_all(&ack(0)).unwrap();
        drop(slow);
        stopper.join().unwrap();
        let mut got: Vec<u32> = rx
            .try_iter()
            .map(|p| match p {
                Push::Ack { id } => id,
                other => panic!("{other:?}"),
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3]);
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(), "closed after stop");
    }

    #[test]
    fn a_trickling_peer_does_not_delay_a_real_push() {
        let listener = PushListener::bind().unwrap();
        let port = listener.port();
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = listener.spawn(from_localhost(), move |p| tx.send(p).unwrap()).unwrap();
        // Half a push, then silence: read alone, it would hold the listener for the whole deadline.
        let mut stall = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        stall.write_all(b"SEND_MESS").unwrap();
        let started = Instant::now();
        push_to(port, &ack(1));
        assert_eq!(rx.recv_timeout(PUSH_DEADLINE / 2).unwrap(), Push::Ack { id: 1 });
        assert!(started.elapsed() < PUSH_DEADLINE / 2);
        drop(stall);
        handle.stop();
    }

    #[test]
    fn a_push_that_trickles_past_its_deadline_is_dropped() {
        let listener = PushListener::bind().unwrap();
        let port = listener.port();
        let (tx, rx) = crossbeam_channel::unbounded();
        let deadline = Duration::from_millis(300);
        let handle = listener.spawn_with(from_localhost(), deadline, move |p| tx.send(p).unwrap()).unwrap();
        let mut trickle = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let bytes = ack(9);
        let started = Instant::now();
        // One byte every 50 ms: each read succeeds, the whole takes longer than the deadline. The loop is bounded
        // by the push's length, and stops once the listener has closed the connection.
        for b in &bytes {
            if trickle.write_all(&[*b]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        drop(trickle);
        assert!(rx.recv_timeout(deadline * 2).is_err(), "a late push was delivered");
        assert!(started.elapsed() >= deadline);
        handle.stop();
    }

    #[test]
    fn a_push_from_another_address_is_closed_unread() {
        let listener = PushListener::bind().unwrap();
        let port = listener.port();
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = listener.spawn(from_localhost(), move |p| tx.send(p).unwrap()).unwrap();
        let forged = Push::Message { sender: "boss".into(), id: 1, text: "send me your password".into() };
        forge_from_127_0_0_2(port, &forged.to_bytes(PushForm::SendMessage));
        push_to(port, &ack(2));
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), Push::Ack { id: 2 });
        handle.stop();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), []);
    }

    /// Connects to the listener from 127.0.0.2, writes `bytes` and waits (bounded) until the listener closes.
    fn forge_from_127_0_0_2(port: u16, bytes: &[u8]) {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 0)).into()).unwrap();
        s.connect(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into()).unwrap();
        let mut s: TcpStream = s.into();
        s.write_all(bytes).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        // The listener closes it unread: end of stream or a reset, well before the timeout.
        let started = Instant::now();
        let _ = io::Read::read(&mut s, &mut [0u8; 1]);
        assert!(started.elapsed() < WAIT, "the forged connection was kept open");
    }

    #[test]
    fn push_sources_parse_and_match() {
        assert_eq!("any".parse::<PushSource>(), Ok(PushSource::Any));
        assert_eq!("ANY".parse::<PushSource>(), Ok(PushSource::Any));
        let only: PushSource = "127.0.0.1".parse().unwrap();
        assert!(only.admits(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(only.admits("::ffff:127.0.0.1".parse().unwrap()), "IPv4-mapped counts as IPv4");
        assert!(!only.admits(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert!(PushSource::Any.admits(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))));
        assert!("localhost".parse::<PushSource>().is_err());
        assert_eq!(only.to_string(), "127.0.0.1");
    }
}
