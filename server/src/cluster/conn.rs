//! Connections to Redis: one per request at a time, kept in a small idle pool.
//!
//! A thread takes a connection out of the pool (the pool's lock is held only for that `pop`), runs its round
//! trips, and puts the connection back. A connection that saw any error is dropped instead, so a Redis that
//! went away and came back is reconnected by the next request on its own: nothing else has to notice.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Client, Cmd, Connection, ConnectionLike, FromRedisValue, RedisResult};

use super::ClusterError;

/// Bound on establishing one connection to Redis (a Redis that is not there fails a request after this long).
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on each read and write of a Redis round trip; a Redis that stalls longer fails the request.
pub const REDIS_IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept for reuse; a burst beyond it opens (and then closes) extra ones.
pub const MAX_IDLE_CONNECTIONS: usize = 64;

/// A connection to one server or to a Redis Cluster (which routes each command to its slot's node).
enum Conn {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }
}

/// How a node reaches its Redis: one server, or a Redis Cluster through its seeds.
enum Target {
    Single(Client),
    Cluster(ClusterClient),
}

pub(super) struct Pool {
    target: Target,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    /// Opens the first connection (so that an unreachable Redis is an error now, not at the first request). One
    /// URL of a server with `cluster_enabled:1` is taken as a seed of a Redis Cluster, as are several URLs.
    pub fn open(urls: &[String]) -> Result<Pool, ClusterError> {
        let first = urls.first().ok_or(ClusterError::NoUrl)?;
        let clients = urls
            .iter()
            .map(|url| Client::open(url.as_str()).map_err(|source| ClusterError::BadUrl { url: url.clone(), source }))
            .collect::<Result<Vec<Client>, _>>()?;
        let unreachable = |source| ClusterError::Unreachable { url: first.clone(), source };
        let mut probe = connect_single(&clients[0]).map_err(unreachable)?;
        let info: String = redis::cmd("INFO").arg("cluster").query(&mut probe).map_err(unreachable)?;
        let target = if urls.len() > 1 || info.contains("cluster_enabled:1") {
            let cluster = ClusterClient::builder(urls.iter().map(String::as_str))
                .connection_timeout(REDIS_CONNECT_TIMEOUT)
                .response_timeout(REDIS_IO_TIMEOUT)
                .build()
                .map_err(|source| ClusterError::BadUrl { url: first.clone(), source })?;
            Target::Cluster(cluster)
        } else {
            Target::Single(clients[0].clone())
        };
        let pool = Pool { target, idle: Mutex::new(Vec::new()) };
        let conn = pool.connect().map_err(unreachable)?;
        pool.idle().push(conn);
        Ok(pool)
    }

    /// Whether the node talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        // The guarded data is a plain Vec that no code can leave half-changed.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn connect(&self) -> RedisResult<Conn> {
        Ok(match &self.target {
            Target::Single(client) => Conn::Single(connect_single(client)?),
            Target::Cluster(client) => Conn::Cluster(Box::new(client.get_connection()?)),
        })
    }

    /// Runs `f` on a connection (a pooled one, or a new one). On any error the connection is dropped, not
    /// pooled: its stream may be out of step, and the next request reconnects.
    pub fn run<T>(&self, f: impl FnOnce(&mut dyn ConnectionLike) -> RedisResult<T>) -> RedisResult<T> {
        self.with_conn(|conn| f(conn.as_dyn()))
    }

    /// Runs `commands`, which may name keys of any slots, as one batch: a pipeline (one round trip) on one
    /// server, a cluster pipeline (one round trip per node) on a Redis Cluster. Not atomic.
    pub fn batch<T: FromRedisValue>(&self, commands: Vec<Cmd>) -> RedisResult<T> {
        self.with_conn(|conn| match conn {
            Conn::Single(c) => {
                let mut pipe = redis::pipe();
                commands.into_iter().for_each(|cmd| _ = pipe.add_command(cmd));
                pipe.query(c)
            }
            Conn::Cluster(c) => {
                let mut pipe = redis::cluster::cluster_pipe();
                commands.into_iter().for_each(|cmd| _ = pipe.add_command(cmd));
                pipe.query(c)
            }
        })
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> RedisResult<T>) -> RedisResult<T> {
        let pooled = self.idle().pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = f(&mut conn);
        if result.is_ok() && conn.as_dyn().is_open() {
            let mut idle = self.idle();
            if idle.len() < MAX_IDLE_CONNECTIONS {
                idle.push(conn);
            }
        }
        result
    }
}

fn connect_single(client: &Client) -> RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(REDIS_CONNECT_TIMEOUT)?;
    conn.set_read_timeout(Some(REDIS_IO_TIMEOUT))?;
    conn.set_write_timeout(Some(REDIS_IO_TIMEOUT))?;
    Ok(conn)
}

/// `CONFIG GET appendonly` and `appendfsync` of the server at `url` (each seed of a cluster is asked).
pub(super) fn persistence(url: &str) -> RedisResult<(String, String)> {
    let mut conn = connect_single(&Client::open(url)?)?;
    let get = |conn: &mut redis::Connection, name: &str| -> RedisResult<String> {
        let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(conn)?;
        Ok(pair.get(1).cloned().unwrap_or_default())
    };
    Ok((get(&mut conn, "appendonly")?, get(&mut conn, "appendfsync")?))
}
