//! The HTTP/1.1 side: a fixed pool of worker threads, each accepting and serving one connection at a time, with
//! every read, write and size bounded.
//!
//! Each connection carries exactly one request and is then closed (`Connection: close`), which keeps a worker's
//! time per peer bounded by [`REQUEST_DEADLINE`] + [`WRITE_TIMEOUT`] + [`LINGER_TIMEOUT`] whatever the peer does,
//! and means an idle keep-alive connection can never hold a worker. Clients (zeep, ureq, curl) reconnect for the
//! next call. A peer that is slow or silent is cut at the deadline; a flood of such peers can occupy all workers
//! for at most that long, during which new connections wait in the kernel's listen backlog rather than costing a
//! thread or memory each.

//!
//! - [`request`]: reading one request with its limits.
//! - [`response`]: writing the answer, closing without a reset.
//! - `deadline`: reads and writes bounded by a deadline, under both.
//! - here: the settings, the worker pool, and one connection from accept to close.

mod deadline;
pub mod request;
pub mod response;

use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};

use crate::app::{self, Request};
use deadline::ReadLimits;
use request::{read_request, Refusal};
pub use request::{MAX_BODY_BYTES, MAX_HEADERS, MAX_HEAD_BYTES, READ_IDLE_TIMEOUT, REQUEST_DEADLINE};
use response::{linger, loggable, write_response};
pub use response::{LINGER_TIMEOUT, MAX_LINGER_BYTES, WRITE_TIMEOUT};

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
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(ConfigError::Workers(self.workers));
        }
        if self.read_idle_timeout.is_zero() || self.request_deadline.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        if let Some(url) = &self.public_url {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            if !scheme_ok || url.len() > MAX_PUBLIC_URL_LEN || !url.chars().all(|c| c.is_ascii_graphic()) {
                return Err(ConfigError::PublicUrl(url.clone()));
            }
        }
        Ok(())
    }
}

/// A [`Config`] the service refuses to start with. [`Service::bind`] reports it as an `InvalidInput` I/O error
/// carrying this value (`io::Error::get_ref` and `downcast_ref` give it back).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The number of workers is outside 1..=[`MAX_WORKERS`].
    #[error("workers must be between 1 and {MAX_WORKERS}, not {0}")]
    Workers(usize),
    /// A timeout is zero (a zero socket timeout would mean "wait forever").
    #[error("timeouts must be longer than zero")]
    ZeroTimeout,
    /// The public URL is not an http:// or https:// URL of printable ASCII within [`MAX_PUBLIC_URL_LEN`] bytes.
    #[error(
        "public URL {0:?} must be an http:// or https:// URL of printable ASCII, at most {MAX_PUBLIC_URL_LEN} \
         bytes (percent-encode anything else)"
    )]
    PublicUrl(String),
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
        format!("http://{}/", wake::reachable(self.local_addr))
    }

    /// Stops the service and waits for its workers: each finishes the connection it is serving (bounded by the
    /// deadlines above). This is how the program stops on SIGINT or SIGTERM.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Workers block in accept(); one connection per worker wakes each of them, and a woken worker sees the
        // flag and exits without serving. A connection that fails just means that worker was not blocked.
        for _ in &self.workers {
            let _ = wake::unblock_accept(self.local_addr);
        }
        for handle in self.workers.drain(..) {
            if handle.join().is_err() {
                error!("a worker thread ended by panic");
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
