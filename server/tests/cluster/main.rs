//! `--cluster`: several nodes on one real Redis (docs/scale-out.md). Each test starts its own `redis-server`
//! (see `redis.rs`; the tests fail, not pass, when it is not installed) and its nodes on 127.0.0.1:0: in-process
//! [`server::Server`]s, or the real binary where a node must be killed with SIGKILL.

#[path = "../support/mod.rs"]
mod support;

mod crash;
mod nodes;
mod redis;
mod rows;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use server::cluster::ClusterConfig;
use server::{Config, Server, ServerHandle};

use crate::redis::Redis;
use crate::support::{request, PushListener, IO_TIMEOUT};

/// A node of the cluster on `redis`, in-process.
pub fn node(redis: &Redis) -> ServerHandle {
    node_with(redis, Config::default())
}

/// A node with more configuration.
pub fn node_with(redis: &Redis, config: Config) -> ServerHandle {
    assert!(redis.command(&["PING"]).starts_with("+PONG"), "redis-server answers PING");
    let config = Config { cluster: Some(ClusterConfig::new(redis.url())), ..config };
    Server::bind(config).expect("a node binds").spawn().expect("a node runs")
}

/// One request, the whole reply.
pub fn call(addr: SocketAddr, parts: &[&str]) -> Vec<u8> {
    request(addr, parts)
}

pub fn register(addr: SocketAddr, alias: &str) {
    assert_eq!(call(addr, &["REGISTER", alias, alias, "01/01/2000"]), [0], "REGISTER {alias}");
}

/// CONNECT through `addr` with a fresh recording listener.
pub fn online(addr: SocketAddr, alias: &str) -> PushListener {
    let listener = PushListener::bind();
    assert_eq!(call(addr, &["CONNECT", alias, &listener.port_field()]), [0], "CONNECT {alias}");
    listener
}

/// SEND, which must be accepted; its id.
pub fn send(addr: SocketAddr, from: &str, to: &str, text: &str) -> u32 {
    let reply = call(addr, &["SEND", from, to, text]);
    assert_eq!(reply.first(), Some(&0), "SEND {from} -> {to} {text:?} accepted: {reply:?}");
    let digits = reply.get(1..reply.len().saturating_sub(1)).expect("an id field");
    std::str::from_utf8(digits).expect("ASCII id").parse().expect("a decimal id")
}

/// The bytes of a message push.
pub fn message(sender: &str, id: u32, text: &str) -> Vec<u8> {
    format!("SEND_MESSAGE\0{sender}\0{id}\0{text}\0").into_bytes()
}

/// The bytes of an acknowledgement push.
pub fn ack(id: u32) -> Vec<u8> {
    format!("SEND_MESS_ACK\0{id}\0").into_bytes()
}

/// Waits (bounded by [`IO_TIMEOUT`]) until `cond` holds, checking every few milliseconds.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
