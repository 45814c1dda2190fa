//! `--cluster`: several nodes on one real Redis (docs/scale-out.md). Each test starts its own `redis-server`
//! (see `redis.rs`; the tests fail, not pass, when it is not installed) and its nodes on 127.0.0.1:0: in-process
//! [`server::Server`]s, or the real binary where a node must be killed with SIGKILL.

mod crash;
mod nodes;
mod redis;
mod rows;

use server::cluster::ClusterConfig;
use server::{Config, Server, ServerHandle};

use crate::redis::Redis;

/// A node of the cluster on `redis`, in-process.
pub fn node(redis: &Redis) -> ServerHandle {
    node_with(redis, Config::default())
}

/// A Redis and two nodes on it.
pub fn two_nodes() -> (Redis, ServerHandle, ServerHandle) {
    let redis = Redis::start();
    let (a, b) = (node(&redis), node(&redis));
    (redis, a, b)
}

/// A node with more configuration.
pub fn node_with(redis: &Redis, config: Config) -> ServerHandle {
    assert!(redis.command(&["PING"]).starts_with("+PONG"), "redis-server answers PING");
    let config = Config { cluster: Some(ClusterConfig::new(redis.url())), ..config };
    Server::bind(config).expect("a node binds").spawn().expect("a node runs")
}
