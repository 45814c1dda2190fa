//! The accept loop: a connection cap, one named thread per connection, and an orderly shutdown.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Stack of a connection thread. Requests need little; a small stack keeps thousands of idle peers cheap.
pub const CONNECTION_STACK: usize = 256 * 1024;
/// Pause after an accept error such as "too many open files", so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Finished thread handles are reaped once this many have piled up.
const REAP_EVERY: usize = 256;

/// Counting semaphore for connections in flight: the accept loop waits for a free slot.
#[derive(Debug)]
pub struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots { used: Mutex::new(0), freed: Condvar::new(), max: max.max(1) }
    }

    /// Blocks until a slot is free (or `stop` is set, then returns `None`).
    fn acquire(self: &Arc<Self>, stop: &AtomicBool) -> Option<Permit> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used >= self.max {
            if stop.load(Ordering::SeqCst) {
                return None;
            }
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += 1;
        Some(Permit(self.clone()))
    }

    fn wake_all(&self) {
        let _guard = self.used.lock().unwrap_or_else(|p| p.into_inner());
        self.freed.notify_all();
    }
}

/// A taken slot, given back when the connection thread ends, even by a panic.
struct Permit(Arc<Slots>);

impl Drop for Permit {
    fn drop(&mut self) {
        let mut used = self.0.used.lock().unwrap_or_else(|p| p.into_inner());
        // Only a full count has waiters, so only then is a wake-up (a futex syscall, even with nobody waiting)
        // worth its cost; all of them are woken so that none is left asleep beside a free slot.
        let was_full = *used >= self.0.max;
        *used -= 1;
        if was_full {
            self.0.freed.notify_all();
        }
    }
}

/// State shared by the accept loop and whoever asks it to stop.
#[derive(Debug)]
pub struct Shared {
    pub stop: AtomicBool,
    pub slots: Arc<Slots>,
    /// Where to connect to wake a blocked `accept` when stopping.
    pub wake_addr: SocketAddr,
}

impl Shared {
    /// The state of an accept loop on a socket bound to `local`, serving at most `max_connections` at once.
    pub fn new(local: SocketAddr, max_connections: usize) -> Shared {
        // A wildcard address cannot be connected to: wake the loop through loopback instead.
        let wake_ip: IpAddr = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        Shared {
            stop: AtomicBool::new(false),
            slots: Arc::new(Slots::new(max_connections)),
            wake_addr: SocketAddr::new(wake_ip, local.port()),
        }
    }

    /// Asks the accept loop to stop: no new connection is taken; those in flight finish.
    pub fn request_stop(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        self.slots.wake_all();
        // Unblock accept(); failure means the listener is already gone, which is just as good.
        let _ = TcpStream::connect_timeout(&self.wake_addr, Duration::from_secs(1));
    }
}

/// Runs the accept loop until [`Shared::request_stop`], then waits for every connection thread.
///
/// `handle` serves one accepted connection on its own thread; it is generic so that the message server and the
/// ttweet board share this loop, its connection cap and its orderly stop.
pub fn serve<H>(listener: TcpListener, shared: Arc<Shared>, handle: H)
where
    H: Fn(TcpStream) + Send + Sync + 'static,
{
    let handle = Arc::new(handle);
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut serial: u64 = 0;
    let mut reap_at = REAP_EVERY;
    while let Some(permit) = shared.slots.acquire(&shared.stop) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                log::warn!("accept failed: {e}");
                if e.kind() != io::ErrorKind::ConnectionAborted {
                    thread::sleep(ACCEPT_ERROR_PAUSE);
                }
                continue;
            }
        };
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        serial += 1;
        let handle = handle.clone();
        let spawned =
            thread::Builder::new().name(format!("conn-{serial}")).stack_size(CONNECTION_STACK).spawn(move || {
                let _permit = permit;
                handle(stream);
            });
        match spawned {
            Ok(handle) => threads.push(handle),
            // The closure (and with it the stream and the permit) is dropped: the peer sees a close.
            Err(e) => log::error!("cannot start a connection thread: {e}; connection dropped"),
        }
        if threads.len() >= reap_at {
            threads.retain(|t| !t.is_finished());
            // Amortised: with many long-lived connections, do not rescan them on every accept.
            reap_at = (threads.len() * 2).max(REAP_EVERY);
        }
    }
    drop(listener);
    let started = Instant::now();
    for t in threads {
        // A connection thread that panicked has already been logged by the panic hook.
        let _ = t.join();
    }
    log::debug!("all connection threads joined in {:?}", started.elapsed());
}
