//! A listener like a client's: accepts the server's push connections and records each push's bytes.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use protocol::{FieldReader, Push};

use crate::{read_all, TIMEOUT};

/// Accepts push connections and hands over each push's bytes, in arrival order. The server's `PROBE` (whether
/// the listener of a user it believes connected is still there, docs/protocol.md "Ghost sessions") is not a push
/// and is passed over.
pub struct Listener {
    addr: SocketAddr,
    pushes: Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// A listener on 127.0.0.1 and an ephemeral port.
    pub fn bind() -> Listener {
        Listener::bind_on(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0))
    }

    /// A listener on `addr`.
    pub fn bind_on(addr: SocketAddr) -> Listener {
        let listener = TcpListener::bind(addr).expect("listener binds");
        let addr = listener.local_addr().expect("listener address");
        let (tx, pushes) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(TIMEOUT));
                let bytes = read_all(&mut stream);
                if bytes == b"PROBE\0" {
                    continue;
                }
                if tx.send(bytes).is_err() {
                    break;
                }
            }
        });
        Listener { addr, pushes, stop, thread: Some(thread) }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The port as the CONNECT request carries it.
    pub fn port_field(&self) -> String {
        self.port().to_string()
    }

    /// The next push, waiting at most [`TIMEOUT`].
    pub fn next(&self) -> Vec<u8> {
        match self.pushes.recv_timeout(TIMEOUT) {
            Ok(bytes) => bytes,
            Err(RecvTimeoutError::Timeout) => panic!("no push arrived within {TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("listener thread ended"),
        }
    }

    /// The next push that decodes, passing over connections that do not carry a whole one (a push cut short
    /// by a server killed in the middle of it was never delivered); each wait is bounded by [`TIMEOUT`].
    pub fn next_push(&self) -> Push {
        loop {
            if let Ok(push) = Push::read_from(&mut FieldReader::new(&self.next()[..])) {
                return push;
            }
        }
    }

    /// The next `n` pushes.
    pub fn take(&self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.next()).collect()
    }

    /// Asserts that no push arrives within `wait` (a bounded negative check, not synchronisation).
    pub fn assert_quiet(&self, wait: Duration) {
        if let Ok(bytes) = self.pushes.recv_timeout(wait) {
            panic!("unexpected push {:?}", String::from_utf8_lossy(&bytes));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
