//! The message delivery server (see `docs/architecture.md`).
//!
//! - [`listener`]: accept loop, admission, a pool of reused connection threads, orderly stop.
//! - [`admission`]: connection slots, incomplete requests per address (shedding the oldest), deliveries.
//! - [`pool`]: the cached thread pool: a finished connection's thread parks and serves the next one.
//! - [`deadline`]: reading a request against the idle timeout and the whole-request deadline.
//! - [`handler`]: one request: decode, apply, reply, then deliver.
//! - [`store`]: the registry (`Arc<Mutex<LinkedList<User>>>`) and every state transition.
//! - [`delivery`]: ordered pushes to listeners, acknowledgements, the start-up grace period.
//! - [`board`]: the accept loop of the ttweet board beside the server (`--ttweet-port`; the board itself is the
//!   `ttweet` crate).
//! - [`console`]: the console lines, also appended to a session log file (`--log-file`).
//! - [`batched`]: console lines written in batches when the console is a pipe or a file.
//! - [`journal`]: durability with `--data-dir`: the journal, recovery at start-up, compaction.
//! - [`cluster`]: `--cluster redis://…`: the same store interface ([`store::Backend`]) on Redis, for several nodes.
//!
//! Where a change goes. A new operation: its request and reply in protocol (`request.rs`, `reply.rs`), a
//! [`Backend`] method implemented by [`Store`] (`store/`, with a journal record in `journal/format.rs` when it
//! changes state) and by `cluster::RedisStore` (`cluster/backend.rs`, its script in `cluster/scripts.rs`), an arm
//! in [`handler`], and a row test in `tests/operations.rs`. A change to how pushes are delivered: [`delivery`]
//! and the ticket methods of [`Backend`]. A new limit on connections: [`admission`] and a flag in `main.rs`.
//!
//! Tests and tools start a server in-process with [`Server::bind`] and [`Server::spawn`].

pub mod admission;
pub mod batched;
pub mod board;
pub mod cluster;
pub mod console;
pub mod deadline;
pub mod delivery;
pub mod handler;
pub mod journal;
pub mod listener;
pub mod net;
pub mod pool;
pub mod store;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use protocol::Profile;

pub use store::{Backend, Store};

use admission::Limits;
use handler::Context;
use listener::Shared;

/// Default cap on connections served at once (each holds one thread).
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Default cap on pending entries (messages and acknowledgements) per user.
pub const DEFAULT_MAX_QUEUE: usize = 10_000;
/// Default idle timeout of a request: this long without a byte ends the connection (docs/protocol.md 2.4).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default whole-request deadline: a request not complete this long after accept is closed without reply, however
/// its bytes trickle in (docs/protocol.md 2.5). Requests are a few hundred bytes.
pub const DEFAULT_REQUEST_DEADLINE: Duration = Duration::from_secs(5);
pub use admission::DEFAULT_MAX_DELIVERIES;

/// Everything a server can be configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Connections served at once. Beyond it a newcomer sheds the oldest incomplete request of the address with
    /// the most of them; the accept loop waits only while every slot holds a complete request.
    pub max_connections: usize,
    /// Connections of one address with an incomplete request; a newcomer beyond it sheds that address's oldest.
    /// `None`: [`admission::default_pending_per_address`] of `max_connections`.
    pub max_pending_per_address: Option<usize>,
    /// Deliveries in progress at once (they run after the reply, outside the connection slots).
    pub max_deliveries: usize,
    /// Pending entries per user; a SEND to a full queue fails with code 2.
    pub max_queue: usize,
    /// Idle timeout while reading a request.
    pub request_timeout: Duration,
    /// Whole-request deadline, from accept to the request's last byte.
    pub request_deadline: Duration,
    /// Byte-level dialect of replies and pushes.
    pub profile: Profile,
    /// DISCONNECT only from the listener's IP (docs/protocol.md 4.4).
    pub ip_check: bool,
    /// Accept the one-field REGISTER of docs/protocol.md appendix A.
    pub accept_short_register: bool,
    /// Port of the ttweet board, on the address of `bind`; `None`: no board.
    pub ttweet_port: Option<u16>,
    /// Where the journal lives; `None`: state is in memory only and a restart loses it.
    pub data_dir: Option<PathBuf>,
    /// Journal bytes since the last snapshot below which the journal is not compacted.
    pub compact_min_bytes: u64,
    /// `--cluster`: keep the state in Redis instead of in memory (then `data_dir` is not used).
    pub cluster: Option<cluster::ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_pending_per_address: None,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            max_queue: DEFAULT_MAX_QUEUE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            request_deadline: DEFAULT_REQUEST_DEADLINE,
            profile: Profile::Standard,
            ip_check: true,
            accept_short_register: false,
            ttweet_port: None,
            data_dir: None,
            compact_min_bytes: journal::DEFAULT_COMPACT_MIN_BYTES,
            cluster: None,
        }
    }
}

impl Config {
    /// The admission limits this configuration asks for.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_pending_per_address: self
                .max_pending_per_address
                .unwrap_or_else(|| admission::default_pending_per_address(self.max_connections)),
            max_deliveries: self.max_deliveries,
        }
    }
}

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket (or the ttweet board's) could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    /// The data directory could not be opened or recovered.
    #[error("data directory {}: {source}", .dir.display())]
    DataDir { dir: PathBuf, source: journal::JournalError },
    /// The thread that runs the server could not be started.
    #[error("cannot start the server's thread: {source}")]
    Spawn { source: io::Error },
    /// The cluster store (`--cluster`) could not be opened.
    #[error("cluster: {source}")]
    Cluster { source: cluster::ClusterError },
}

/// Serves one accepted connection (the handler over the configured store interface).
type Serve = Arc<dyn Fn(TcpStream, admission::Permit) + Send + Sync>;

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    serve: Serve,
    /// The in-memory registry; with `--cluster` the state is in Redis and this one stays empty.
    store: Store,
    shared: Arc<Shared>,
    ttweet: Option<board::Service>,
    /// The journal and its compactor, with `data_dir`; dropped after the last connection thread.
    durability: Option<journal::Durability>,
    /// With `cluster`: restarts deliveries whose claim lapsed; stopped after the last connection thread.
    sweeper: Option<cluster::Sweeper>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.shared.wake_addr).finish_non_exhaustive()
    }
}

impl Server {
    /// Prepares the registry — empty, or with `data_dir` recovered from the journal there (the directory is
    /// then locked until the server is dropped) — and binds the listening socket. With `cluster`, the state is in
    /// Redis: an unreachable Redis, or one that is not durable under `require_durable`, is an error.
    pub fn bind(config: Config) -> Result<Server, ServerError> {
        let store = Store::new(config.max_queue);
        if let Some(cluster) = &config.cluster {
            let redis = cluster::RedisStore::open(cluster, config.max_queue)
                .map_err(|source| ServerError::Cluster { source })?;
            let sweeper = cluster::Sweeper::start(redis.clone(), config.profile.dialect().push)
                .map_err(|source| ServerError::Spawn { source })?;
            let mut server = Server::with_backend(config, redis, store)?;
            server.sweeper = Some(sweeper);
            return Ok(server);
        }
        let Some(dir) = config.data_dir.clone() else { return Server::with_store(config, store) };
        let options = journal::Options { compact_min_bytes: config.compact_min_bytes };
        let (store, durability) = journal::Durability::open(&dir, store, options)
            .map_err(|source| ServerError::DataDir { dir: dir.clone(), source })?;
        let mut server = Server::with_store(config, store)?;
        server.durability = Some(durability);
        Ok(server)
    }

    /// Binds with a registry prepared by the caller (for example recovered from a journal).
    pub fn with_store(config: Config, store: Store) -> Result<Server, ServerError> {
        Server::with_backend(config, store.clone(), store)
    }

    /// Binds with any implementation of the store interface; `store` is what [`Server::store`] shows.
    fn with_backend<B: Backend>(config: Config, backend: B, store: Store) -> Result<Server, ServerError> {
        let listen = |addr: SocketAddr| move |source| ServerError::Listen { addr, source };
        let listener = TcpListener::bind(config.bind).map_err(listen(config.bind))?;
        let shared = Shared::with_limits(listener.local_addr().map_err(listen(config.bind))?, config.limits());
        let ttweet = match config.ttweet_port {
            Some(port) => {
                let addr = SocketAddr::new(config.bind.ip(), port);
                let board = board::Service::bind(addr, config.max_connections, config.request_timeout);
                Some(board.map_err(listen(addr))?)
            }
            None => None,
        };
        let ctx = Context {
            store: backend,
            dialect: config.profile.dialect(),
            request_timeout: config.request_timeout,
            request_deadline: config.request_deadline,
            ip_check: config.ip_check,
            accept_short_register: config.accept_short_register,
            waiting: delivery::Waiting::default(),
        };
        let serve: Serve = Arc::new(move |stream, permit| handler::handle(stream, &ctx, permit));
        Ok(Server { listener, serve, store, shared: Arc::new(shared), ttweet, durability: None, sweeper: None })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.wake_addr
    }

    /// The in-memory registry (empty with `--cluster`, whose state is in Redis).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A handle that can stop this server from another thread (a signal handler, a test).
    pub fn stopper(&self) -> Stopper {
        Stopper { main: self.shared.clone(), ttweet: self.ttweet.as_ref().map(board::Service::shared) }
    }

    /// The journal, with `data_dir` (for example to ask for a compaction on SIGUSR1).
    pub fn journal(&self) -> Option<Arc<journal::FileJournal>> {
        self.durability.as_ref().map(|d| d.journal().clone())
    }

    /// Where the ttweet board listens, when there is one.
    pub fn ttweet_addr(&self) -> Option<SocketAddr> {
        self.ttweet.as_ref().map(board::Service::local_addr)
    }

    /// Serves until stopped, then waits for every connection thread to finish.
    pub fn run(self) {
        let Server { listener, serve, store: _, shared, ttweet, durability, sweeper } = self;
        // The board has its own accept loop beside this one; the Stopper stops both.
        let board = ttweet.and_then(|service| {
            match thread::Builder::new().name("ttweet-accept".into()).spawn(move || service.run()) {
                Ok(t) => Some(t),
                Err(e) => {
                    log::error!("cannot start the ttweet board: {e}");
                    None
                }
            }
        });
        listener::serve(listener, shared, move |stream, permit| serve(stream, permit));
        if let Some(t) = board {
            let _ = t.join();
        }
        // Only now that every connection thread is done: stops the compactor and syncs the journal's tail.
        drop(durability);
        drop(sweeper);
    }

    /// Serves on a background thread.
    pub fn spawn(self) -> Result<ServerHandle, ServerError> {
        let addr = self.local_addr();
        let ttweet_addr = self.ttweet_addr();
        let store = self.store.clone();
        let stopper = self.stopper();
        let shared = self.shared.clone();
        let thread = thread::Builder::new()
            .name("accept".into())
            .spawn(move || self.run())
            .map_err(|source| ServerError::Spawn { source })?;
        Ok(ServerHandle { addr, ttweet_addr, store, stopper, shared, thread: Some(thread) })
    }
}

/// Stops a running server: no new connection is accepted, those in flight finish.
#[derive(Debug, Clone)]
pub struct Stopper {
    main: Arc<Shared>,
    ttweet: Option<Arc<Shared>>,
}

impl Stopper {
    pub fn stop(&self) {
        self.main.request_stop();
        if let Some(board) = &self.ttweet {
            board.request_stop();
        }
    }
}

/// A server running on a background thread; dropping it stops the server and waits for it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    ttweet_addr: Option<SocketAddr>,
    store: Store,
    stopper: Stopper,
    /// The accept loop's state: its counters are what tests watch.
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Where the server listens (on 127.0.0.1 when bound to 0.0.0.0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the ttweet board listens, when the configuration asked for one.
    pub fn ttweet_addr(&self) -> Option<SocketAddr> {
        self.ttweet_addr
    }

    /// The live registry.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Connection threads started so far (each serves connection after connection): for tests and monitoring.
    pub fn threads_spawned(&self) -> u64 {
        self.shared.threads_spawned()
    }

    /// Connections holding a slot right now (accepted, not yet answered and closed).
    pub fn connections_in_flight(&self) -> usize {
        self.shared.admission.in_use()
    }

    /// Deliveries in progress right now (they hold no connection slot).
    pub fn deliveries_in_progress(&self) -> usize {
        self.shared.admission.deliveries()
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
