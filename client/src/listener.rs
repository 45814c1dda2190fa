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

use std::io::{self, BufReader, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
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

mod source;
#[cfg(test)]
mod tests;
mod turns;

pub use source::{BadPushSource, PushSource};
use turns::{Ticket, Turns};

/// Bound on reading one whole push, from the connection's acceptance to its last byte: a pusher that stalls or
/// trickles is dropped after this long.
pub const PUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Most push connections read at the same time.
pub const MAX_CONCURRENT_PUSHES: usize = 16;

/// How long a push that was read completely waits for pushes accepted before it and still being read, so that
/// they print in the server's order. Real pushes arrive whole at once; only a stalled peer makes it run out.
pub const ORDER_WAIT: Duration = Duration::from_millis(500);

/// How long a stopping listener keeps accepting connections that are already on their way. After a DISCONNECT
/// reply the server finishes at most the one push it had started; this covers its connect and write.
pub const STOP_LINGER: Duration = Duration::from_millis(250);

/// Pause between two polls of the queue while lingering (the socket is non-blocking then).
const LINGER_POLL: Duration = Duration::from_millis(10);

/// Bound on waiting for the accept loop to finish after a stop: a wait for a free reader, the linger, the pushes
/// still being read, and slack.
pub const STOP_TIMEOUT: Duration =
    Duration::from_millis(2 * PUSH_DEADLINE.as_millis() as u64 + STOP_LINGER.as_millis() as u64 + 1000);

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
        if let Err(e) = wake::unblock_accept(SocketAddr::from((Ipv4Addr::UNSPECIFIED, self.port))) {
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
    if !shared.readers.wait_idle(shared.deadline + wake::WAKE_TIMEOUT) {
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
