//! The message delivery server (see `docs/architecture.md`).
//!
//! - [`listener`]: accept loop, connection cap, one named thread per connection, orderly stop.
//! - [`handler`]: one request: decode, apply, reply, then deliver.
//! - [`store`]: the registry (`Arc<Mutex<LinkedList<User>>>`) and every state transition.
//! - [`delivery`]: ordered pushes to listeners, acknowledgements, the start-up grace period.
//!
//! Tests and tools start a server in-process with [`Server::bind`] and [`Server::spawn`].

pub mod delivery;
pub mod handler;
pub mod listener;
pub mod store;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use protocol::Profile;

pub use store::Store;

use handler::Context;
use listener::{Shared, Slots};

/// Default cap on connections served at once (each holds one thread).
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Default cap on pending entries (messages and acknowledgements) per user.
pub const DEFAULT_MAX_QUEUE: usize = 10_000;
/// Default idle timeout of a request: this long without a byte ends the connection (PROTOCOL.md 2.4).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a server can be configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Connections served at once; the accept loop waits for a free slot beyond it.
    pub max_connections: usize,
    /// Pending entries per user; a SEND to a full queue fails with code 2.
    pub max_queue: usize,
    /// Idle timeout while reading a request.
    pub request_timeout: Duration,
    /// Byte-level dialect of replies and pushes.
    pub profile: Profile,
    /// DISCONNECT only from the listener's IP (PROTOCOL.md 4.4).
    pub ip_check: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_queue: DEFAULT_MAX_QUEUE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            profile: Profile::Standard,
            ip_check: true,
        }
    }
}

impl Config {
    /// The defaults, on 127.0.0.1 and an ephemeral port: what tests want.
    pub fn localhost() -> Config {
        Config::default()
    }
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    ctx: Arc<Context>,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the listening socket and prepares an empty registry.
    pub fn bind(config: Config) -> io::Result<Server> {
        let store = Store::new(config.max_queue);
        Server::with_store(config, store)
    }

    /// Binds with a registry prepared by the caller (for example recovered from a journal).
    pub fn with_store(config: Config, store: Store) -> io::Result<Server> {
        let listener = TcpListener::bind(config.bind)?;
        let local = listener.local_addr()?;
        let wake_ip = if local.ip().is_unspecified() {
            match local {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            }
        } else {
            local.ip()
        };
        let ctx = Context {
            store,
            dialect: config.profile.dialect(),
            request_timeout: config.request_timeout,
            ip_check: config.ip_check,
        };
        let shared = Shared {
            stop: AtomicBool::new(false),
            slots: Arc::new(Slots::new(config.max_connections)),
            wake_addr: SocketAddr::new(wake_ip, local.port()),
        };
        Ok(Server { listener, ctx: Arc::new(ctx), shared: Arc::new(shared) })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.wake_addr
    }

    /// The registry.
    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    /// A handle that can stop this server from another thread (a signal handler, a test).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.shared.clone())
    }

    /// Serves until stopped, then waits for every connection thread to finish.
    pub fn run(self) {
        listener::serve(self.listener, self.ctx, self.shared);
    }

    /// Serves on a background thread.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let addr = self.local_addr();
        let store = self.ctx.store.clone();
        let stopper = self.stopper();
        let thread = thread::Builder::new().name("accept".into()).spawn(move || self.run())?;
        Ok(ServerHandle { addr, store, stopper, thread: Some(thread) })
    }
}

/// Stops a running server: no new connection is accepted, those in flight finish.
#[derive(Debug, Clone)]
pub struct Stopper(Arc<Shared>);

impl Stopper {
    pub fn stop(&self) {
        self.0.request_stop();
    }
}

/// A server running on a background thread; dropping it stops the server and waits for it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    store: Store,
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Where the server listens (on 127.0.0.1 when bound to 0.0.0.0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live registry.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops the server and waits for its threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
