//! The accept loop: admission control, a pool of reused connection threads, and an orderly stop.
//!
//! Each accepted stream is admitted ([`crate::admission`]: a connection slot, shedding incomplete requests when
//! an address or the whole server is over its limit) and handed with its [`Permit`] to a worker of the pool
//! ([`crate::pool`]), which owns it until it is served. Nothing here waits on a peer: the loop only waits for a
//! slot while every slot is held by a request that is complete and being answered.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::admission::{Admission, Limits, Permit};
use crate::pool::{Pool, PoolStats, WORKER_IDLE_RETIRE};

/// Stack of a connection thread. Requests need little; a small stack keeps thousands of idle peers cheap.
pub const CONNECTION_STACK: usize = 256 * 1024;
/// Pause after an accept error such as "too many open files", so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// State shared by the accept loop and whoever asks it to stop or watches it.
#[derive(Debug)]
pub struct Shared {
    pub stop: AtomicBool,
    /// Connection slots, incomplete requests per address, deliveries in progress.
    pub admission: Arc<Admission>,
    /// Where to connect to wake a blocked `accept` when stopping.
    pub wake_addr: SocketAddr,
    /// Threads of the pool: started, alive, parked.
    pub threads: Arc<PoolStats>,
}

impl Shared {
    /// The state of an accept loop on a socket bound to `local`, serving at most `max_connections` at once, with
    /// the default per-address and delivery limits.
    pub fn new(local: SocketAddr, max_connections: usize) -> Shared {
        Shared::with_limits(local, Limits::new(max_connections))
    }

    /// The state of an accept loop on a socket bound to `local`, within `limits`.
    pub fn with_limits(local: SocketAddr, limits: Limits) -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            admission: Arc::new(Admission::new(limits)),
            wake_addr: wake::reachable(local),
            threads: Arc::new(PoolStats::default()),
        }
    }

    /// Asks the accept loop to stop: no new connection is taken; those in flight finish.
    pub fn request_stop(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        self.admission.stop();
        // Unblock accept(); failure means the listener is already gone, which is just as good.
        let _ = wake::unblock_accept(self.wake_addr);
    }

    /// Worker threads started so far: far fewer than the connections served, since threads are reused.
    pub fn threads_spawned(&self) -> u64 {
        self.threads.spawned.load(Ordering::Relaxed)
    }
}

/// Runs the accept loop until [`Shared::request_stop`], then waits for every connection thread.
///
/// `handle` serves one accepted connection on a pool thread; the [`Permit`] is the connection's slot, which the
/// handler gives back by dropping it (or trades for a delivery slot, [`Permit::into_delivery`]). It is generic
/// so that the message server and the ttweet board share this loop, its limits and its orderly stop.
pub fn serve<H>(listener: TcpListener, shared: Arc<Shared>, handle: H)
where
    H: Fn(TcpStream, Permit) + Send + Sync + 'static,
{
    let mut pool = Pool::new("conn", CONNECTION_STACK, WORKER_IDLE_RETIRE, shared.threads.clone(), move |job| {
        let (stream, permit) = job;
        handle(stream, permit)
    });
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
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
        // The deadline of the request counts from here (docs/protocol.md 2.5).
        let accepted = Instant::now();
        match shared.admission.admit(&stream, peer.ip().to_canonical(), accepted) {
            Some(permit) => pool.execute((stream, permit)),
            None if shared.stop.load(Ordering::SeqCst) => break,
            None => {} // dropped (logged by admit)
        }
    }
    drop(listener);
    let started = Instant::now();
    pool.join();
    log::debug!("all connection threads joined in {:?}", started.elapsed());
}
