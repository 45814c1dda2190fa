//! The client's listener: the socket on which the server pushes messages and acknowledgements (PROTOCOL.md 5,
//! 8.2).
//!
//! [`PushListener::bind`] binds `0.0.0.0` on an ephemeral port; the kernel queues incoming connections from that
//! moment, and [`PushListener::spawn`] starts the accept loop on its own thread, so a caller binds and spawns
//! before it sends CONNECT and no push can find the door closed. Pushes are read one connection at a time, each
//! bounded by [`PUSH_READ_TIMEOUT`] and [`MAX_PUSH_LEN`]; a malformed push is logged and dropped.
//!
//! Stopping ([`ListenerHandle::stop`]) sets a flag and wakes the blocked `accept` with a connection of our own;
//! the loop then drains whatever is already queued for [`STOP_LINGER`] before it closes the socket. The server
//! counts a push as delivered once its bytes are written, which happens as soon as the kernel has queued the
//! connection, so closing without draining would lose a message the server will never send again.

use std::io::{self, BufReader, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use log::{debug, warn};
use protocol::field::FieldError;
use protocol::push::{PushError, MAX_PUSH_LEN};
use protocol::{FieldReader, Push};

/// Bound on each read of one push (PROTOCOL.md 8.2): a pusher that stalls is dropped after this long.
pub const PUSH_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a stopping listener keeps accepting connections that are already on their way. After a DISCONNECT
/// reply the server finishes at most the one push it had started; this covers its connect and write.
pub const STOP_LINGER: Duration = Duration::from_millis(250);

/// Pause between two polls of the queue while lingering (the socket is non-blocking then).
const LINGER_POLL: Duration = Duration::from_millis(10);

/// Bound on the wake-up connection that unblocks `accept` when stopping.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Bound on waiting for the accept loop to finish after a stop: one push being read, the linger, and slack.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(7);

/// Reads one push from an accepted connection.
///
/// `Ok(None)` means the peer closed without sending a byte (a port scanner, or our own wake-up connection): it is
/// not an error worth a warning.
pub fn read_push(stream: &TcpStream, timeout: Duration) -> Result<Option<Push>, PushError> {
    stream.set_read_timeout(Some(timeout)).map_err(|e| PushError::Field(e.into()))?;
    let mut reader = FieldReader::with_cap(BufReader::new(stream), MAX_PUSH_LEN);
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

    /// Starts the accept loop on a thread named `listener`; `on_push` runs on that thread for every valid push,
    /// in arrival order.
    pub fn spawn<F>(self, on_push: F) -> io::Result<ListenerHandle>
    where
        F: FnMut(Push) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = bounded(1);
        let port = self.port;
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new().name("listener".into()).spawn(move || {
            accept_loop(self.listener, &flag, on_push);
            let _ = done_tx.send(());
        })?;
        Ok(ListenerHandle { stop, port, done: done_rx, thread: Some(thread) })
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

fn accept_loop<F: FnMut(Push)>(listener: TcpListener, stop: &AtomicBool, mut on_push: F) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => handle(&stream, peer, &mut on_push),
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
    drain(&listener, &mut on_push);
    debug!("listener: closed");
}

/// Accepts and delivers what is already queued, for [`STOP_LINGER`], then returns so the socket closes.
fn drain<F: FnMut(Push)>(listener: &TcpListener, on_push: &mut F) {
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
                    handle(&stream, peer, on_push);
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

fn handle<F: FnMut(Push)>(stream: &TcpStream, peer: SocketAddr, on_push: &mut F) {
    match read_push(stream, PUSH_READ_TIMEOUT) {
        Ok(Some(push)) => on_push(push),
        Ok(None) => debug!("listener: empty connection from {peer}"),
        Err(PushError::Field(FieldError::Timeout)) => warn!("listener: dropped a push from {peer}: read timed out"),
        Err(e) => warn!("listener: dropped a push from {peer}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::dialect::PushForm;
    use std::io::Write;

    fn push_to(port: u16, bytes: &[u8]) {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        s.write_all(bytes).unwrap();
    }

    #[test]
    fn delivers_pushes_in_order_and_drops_malformed_ones() {
        let listener = PushListener::bind().unwrap();
        let port = listener.port();
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = listener.spawn(move |p| tx.send(p).unwrap()).unwrap();
        let m = Push::Message { sender: "bob".into(), id: 3, text: "hi".into() };
        push_to(port, b"HELLO\0");
        push_to(port, b"");
        push_to(port, &m.to_bytes(PushForm::SendMessage));
        push_to(port, &Push::Ack { id: 4 }.to_bytes(PushForm::SendMessage));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), m);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Push::Ack { id: 4 });
        handle.stop();
    }

    #[test]
    fn stop_delivers_what_is_queued_then_closes() {
        let listener = PushListener::bind().unwrap();
        let port = listener.port();
        let (tx, rx) = crossbeam_channel::unbounded();
        // Block the loop inside the first push, so the next ones wait in the kernel's queue.
        let slow = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let handle = listener.spawn(move |p| tx.send(p).unwrap()).unwrap();
        for id in 1..=3 {
            push_to(port, &Push::Ack { id }.to_bytes(PushForm::SendMessage));
        }
        let stopper = thread::spawn(move || handle.stop());
        (&slow).write_all(&Push::Ack { id: 0 }.to_bytes(PushForm::SendMessage)).unwrap();
        drop(slow);
        stopper.join().unwrap();
        let got: Vec<Push> = rx.try_iter().collect();
        assert_eq!(got, (0..=3).map(|id| Push::Ack { id }).collect::<Vec<_>>());
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(), "closed after stop");
    }
}
