//! The fixtures every test tree of the workspace shares (one fixture module, not one per tree):
//!
//! - an in-process server on 127.0.0.1 and an ephemeral port: [`start`], [`start_with`], [`start_board`] (with a
//!   ttweet board), and a port where nothing listens, [`dead_port`];
//! - the openings most tests share, the server and its address with users already registered or connected:
//!   [`serve`], [`serve_with`], [`serve_registered`], [`serve_online`], [`serve_online_with`];
//! - requests in raw protocol bytes, the way a foreign client writes them ([`wire`]): [`fields`], [`call`],
//!   [`raw`], [`raw_from`] (from a second loopback address, [`OTHER_HOST`]), [`request`] (field by field, as the
//!   original Python clients write), and the session steps [`register`], [`online`], [`send`] with the pushes
//!   they lead to, [`message`] and [`ack`];
//! - the same as `protocol` values, failing with an error where the server is gone: [`typed`];
//! - the reply-table rows every server answers alike: [`rows`];
//! - a client's push listener that records every push ([`Listener`]), passing over the server's `PROBE`;
//! - the real `server` binary driven through its console ([`ServerProcess`]), and any child's output as lines
//!   on a channel ([`lines_of`]);
//! - a data directory's size and file names: [`dir_size`], [`file_names`];
//! - a bounded poll, [`eventually`], and the one bound on every wait, [`TIMEOUT`].
//!
//! Every wait here is bounded by [`TIMEOUT`]; nothing sleeps to synchronise; every address is a loopback one.

mod listener;
mod process;
pub mod rows;
pub mod typed;
pub mod wire;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use server::{Config, Server, ServerHandle};

pub use listener::Listener;
pub use process::{lines_of, server_binary, ServerProcess};
pub use wire::*;

/// Upper bound on any single wait in the tests (generous: a slow machine must not fail a correct server).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A second loopback address, to play a client on another host (Linux routes all of 127/8 to loopback).
pub const OTHER_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Starts a server with the default configuration on 127.0.0.1 and an ephemeral port.
pub fn start() -> ServerHandle {
    start_with(Config::default())
}

/// Starts a server with `config`.
pub fn start_with(config: Config) -> ServerHandle {
    Server::bind(config).and_then(Server::spawn).expect("server starts on 127.0.0.1:0")
}

/// Starts a server with `config` and a ttweet board on an ephemeral port; the server and the board's address.
pub fn start_board(config: Config) -> (ServerHandle, SocketAddr) {
    let srv = start_with(Config { ttweet_port: Some(0), ..config });
    let board = srv.ttweet_addr().expect("the board was asked for");
    (srv, board)
}

/// [`start`] and the server's address: the opening of a test that speaks to a server of the default configuration.
pub fn serve() -> (ServerHandle, SocketAddr) {
    serve_with(Config::default())
}

/// [`start_with`] `config`, and the server's address.
pub fn serve_with(config: Config) -> (ServerHandle, SocketAddr) {
    let srv = start_with(config);
    let addr = srv.addr();
    (srv, addr)
}

/// [`serve`] with each of `aliases` registered, in order ([`register_all`]), none connected.
pub fn serve_registered(aliases: &[&str]) -> (ServerHandle, SocketAddr) {
    let (srv, addr) = serve();
    register_all(addr, aliases);
    (srv, addr)
}

/// [`serve`] with each of `aliases` registered and connected, one after the other ([`register_online`]); their
/// listeners, in the same order.
pub fn serve_online<const N: usize>(aliases: [&str; N]) -> (ServerHandle, SocketAddr, [Listener; N]) {
    serve_online_with(Config::default(), aliases)
}

/// [`serve_online`] on a server started with `config`.
pub fn serve_online_with<const N: usize>(
    config: Config,
    aliases: [&str; N],
) -> (ServerHandle, SocketAddr, [Listener; N]) {
    let (srv, addr) = serve_with(config);
    let listeners = aliases.map(|alias| register_online(addr, alias));
    (srv, addr, listeners)
}

/// Polls `cond` until it holds or [`TIMEOUT`] passes.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::yield_now();
        thread::sleep(Duration::from_millis(5));
    }
}

/// The bytes of the files in `dir` (not below it).
pub fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir).unwrap().flatten().map(|e| e.metadata().map_or(0, |m| m.len())).sum()
}

/// The names of the files in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A port on 127.0.0.1 where nothing listens (connections are refused).
pub fn dead_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    l.local_addr().expect("address").port()
}
