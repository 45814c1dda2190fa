//! The message delivery server (see `docs/architecture.md`).
//!
//! - [`listener`]: accept loop, connection cap, one named thread per connection, orderly stop.
//! - [`handler`]: one request: decode, apply, reply, then deliver.
//! - [`store`]: the registry (`Arc<Mutex<LinkedList<User>>>`) and every state transition.
//! - [`delivery`]: ordered pushes to listeners, acknowledgements, the start-up grace period.
//! - [`ttweet`]: the ttweet board beside the server (`--ttweet-port`), on the same accept loop.
//! - [`console`]: the console lines, also appended to a session log file (`--log-file`).
//! - [`batched`]: console lines written in batches when the console is a pipe or a file.
//! - [`journal`]: durability with `--data-dir`: the journal, recovery at start-up, compaction.
//! - [`cluster`]: `--cluster redis://…`: the same store interface ([`store::Backend`]) on Redis, for several nodes.
//!
//! Tests and tools start a server in-process with [`Server::bind`] and [`Server::spawn`].

pub mod batched;
pub mod cluster;
pub mod console;
pub mod delivery;
pub mod handler;
pub mod journal;
pub mod listener;
pub mod net;
pub mod store;
pub mod ttweet;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use protocol::Profile;

pub use store::{Backend, Store};

use handler::Context;
use listener::Shared;

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
    /// Accept the one-field REGISTER of PROTOCOL.md A.3.
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
            max_queue: DEFAULT_MAX_QUEUE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
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
    /// The defaults, on 127.0.0.1 and an ephemeral port: what tests want.
    pub fn localhost() -> Config {
        Config::default()
    }
}

/// Serves one accepted connection (the handler over the configured store interface).
type Serve = Arc<dyn Fn(TcpStream) + Send + Sync>;

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    serve: Serve,
    /// The in-memory registry; with `--cluster` the state is in Redis and this one stays empty.
    store: Store,
    shared: Arc<Shared>,
    ttweet: Option<ttweet::Service>,
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
    /// then locked until the server is dropped) — and binds the listening socket. A journal that cannot be
    /// recovered is an error of kind `Other` wrapping a [`journal::JournalError`].
    ///
    /// With `cluster`, the state is in Redis: an unreachable Redis, or one that is not durable under
    /// `require_durable`, is an error of kind `Other` wrapping a [`cluster::ClusterError`].
    pub fn bind(config: Config) -> io::Result<Server> {
        let store = Store::new(config.max_queue);
        if let Some(cluster) = &config.cluster {
            let redis = cluster::RedisStore::open(cluster, config.max_queue).map_err(io::Error::other)?;
            let sweeper = cluster::Sweeper::start(redis.clone(), config.profile.dialect().push)?;
            let mut server = Server::with_backend(config, redis, store)?;
            server.sweeper = Some(sweeper);
            return Ok(server);
        }
        let Some(dir) = config.data_dir.clone() else { return Server::with_store(config, store) };
        let options = journal::Options { compact_min_bytes: config.compact_min_bytes };
        let (store, durability) = journal::Durability::open(&dir, store, options).map_err(io::Error::other)?;
        let mut server = Server::with_store(config, store)?;
        server.durability = Some(durability);
        Ok(server)
    }

    /// Binds with a registry prepared by the caller (for example recovered from a journal).
    pub fn with_store(config: Config, store: Store) -> io::Result<Server> {
        Server::with_backend(config, store.clone(), store)
    }

    /// Binds with any implementation of the store interface; `store` is what [`Server::store`] shows.
    fn with_backend<B: Backend>(config: Config, backend: B, store: Store) -> io::Result<Server> {
        let listener = TcpListener::bind(config.bind)?;
        let shared = Shared::new(listener.local_addr()?, config.max_connections);
        let ttweet = match config.ttweet_port {
            Some(port) => Some(ttweet::Service::bind(
                SocketAddr::new(config.bind.ip(), port),
                config.max_connections,
                config.request_timeout,
            )?),
            None => None,
        };
        let ctx = Context {
            store: backend,
            dialect: config.profile.dialect(),
            request_timeout: config.request_timeout,
            ip_check: config.ip_check,
            accept_short_register: config.accept_short_register,
        };
        let serve: Serve = Arc::new(move |stream| handler::handle(stream, &ctx));
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
        Stopper { main: self.shared.clone(), ttweet: self.ttweet.as_ref().map(ttweet::Service::shared) }
    }

    /// The journal, with `data_dir` (for example to ask for a compaction on SIGUSR1).
    pub fn journal(&self) -> Option<Arc<journal::FileJournal>> {
        self.durability.as_ref().map(|d| d.journal().clone())
    }

    /// Where the ttweet board listens, when there is one.
    pub fn ttweet_addr(&self) -> Option<SocketAddr> {
        self.ttweet.as_ref().map(ttweet::Service::local_addr)
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
        listener::serve(listener, shared, move |stream| serve(stream));
        if let Some(t) = board {
            let _ = t.join();
        }
        // Only now that every connection thread is done: stops the compactor and syncs the journal's tail.
        drop(durability);
        drop(sweeper);
    }

    /// Serves on a background thread.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let addr = self.local_addr();
        let ttweet_addr = self.ttweet_addr();
        let store = self.store.clone();
        let stopper = self.stopper();
        let thread = thread::Builder::new().name("accept".into()).spawn(move || self.run())?;
        Ok(ServerHandle { addr, ttweet_addr, store, stopper, thread: Some(thread) })
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
