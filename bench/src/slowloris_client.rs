//! The good client of `bench slowloris`: one user's whole life per cycle, each request on its own connection
//! from 127.0.0.1, every operation timed and its failures told apart from its timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::{ConnectStatus, DisconnectStatus, Op, RegisterStatus, Reply, SendReply, UnregisterStatus, UsersReply};

use crate::output::Json;
use crate::stats::Latency;
use crate::wire::{self, encode, Clock, Counters, Decoder, Listener};

/// The operations of one cycle, in order.
pub const OPS: [&str; 6] = ["REGISTER", "CONNECT", "SEND", "CONNECTEDUSERS", "DISCONNECT", "UNREGISTER"];
/// At most this many distinct error texts are kept for the report.
const MAX_EXAMPLES: usize = 5;
/// Text of the good client's messages (to itself).
const TEXT: &[u8] = b"slowloris good client";

/// The good client: where to go, who it is, and the listener its CONNECTs name.
pub struct GoodClient {
    addr: SocketAddr,
    prefix: String,
    timeout: Duration,
}

impl GoodClient {
    pub fn new(addr: SocketAddr, prefix: &str, timeout: Duration) -> GoodClient {
        GoodClient { addr, prefix: format!("{prefix}good"), timeout }
    }
}

/// What the good client saw.
#[derive(Default)]
pub struct GoodOut {
    pub cycles: u64,
    pub elapsed: Duration,
    pub lat: [Latency; 6],
    pub failed: [u64; 6],
    pub timed_out: [u64; 6],
    pub examples: Vec<String>,
    pub pushes: u64,
}

impl GoodOut {
    /// Failed operations, timeouts included.
    pub fn failed(&self) -> u64 {
        self.failed.iter().sum()
    }

    /// Every operation's latencies together.
    pub fn all(&self) -> Latency {
        let mut all = Latency::default();
        for l in &self.lat {
            all.merge(l);
        }
        all
    }

    pub fn json(&self, j: &mut Json) {
        j.open();
        j.num("cycles", self.cycles as f64);
        j.num("elapsed_s", self.elapsed.as_secs_f64());
        j.num("failed", self.failed() as f64);
        j.num("timed_out", self.timed_out.iter().sum::<u64>() as f64);
        j.num("pushes_received", self.pushes as f64);
        for (i, op) in OPS.iter().enumerate() {
            j.field(&op.to_ascii_lowercase());
            j.open();
            j.num("failed", self.failed[i] as f64);
            j.num("timed_out", self.timed_out[i] as f64);
            j.field("latency");
            self.lat[i].summary().json(j);
            j.close();
        }
        j.field("all");
        self.all().summary().json(j);
        j.array("error_examples");
        for e in &self.examples {
            j.string(e);
        }
        j.close_array();
        j.close();
    }

    fn record(&mut self, op: usize, took: Duration, result: Result<Reply, wire::Failure>, ok: fn(&Reply) -> bool) {
        let error = match result {
            Ok(reply) if ok(&reply) => {
                self.lat[op].record(took);
                return;
            }
            Ok(reply) => format!("{} answered {reply:?}", OPS[op]),
            Err(e) => {
                if e.is_timeout() {
                    self.timed_out[op] += 1;
                }
                format!("{}: {e}", OPS[op])
            }
        };
        self.failed[op] += 1;
        if self.examples.len() < MAX_EXAMPLES && !self.examples.contains(&error) {
            self.examples.push(error);
        }
    }
}

/// Runs cycles for `duration`, calling `tick(cycles)` after each; returns what was seen.
pub fn good_client(client: GoodClient, duration: Duration, mut tick: impl FnMut(u64)) -> Result<GoodOut, String> {
    let counters = Arc::new(Counters::default());
    let decoder = Decoder { prefix: client.prefix.clone().into() };
    let clock = Clock(Instant::now());
    let listener = Listener::spawn(0, decoder, clock, counters.clone(), client.timeout)
        .map_err(|e| format!("cannot start the good client's listener: {e}"))?;
    let mut out = GoodOut::default();
    let started = Instant::now();
    let mut buf = Vec::with_capacity(256);
    // Bounded by `duration` (each request by the timeout).
    while started.elapsed() < duration {
        let alias = format!("{}{}", client.prefix, out.cycles);
        cycle(&client, &alias, listener.port, &mut buf, &mut out);
        out.cycles += 1;
        tick(out.cycles);
    }
    out.elapsed = started.elapsed();
    out.pushes = listener.stop().len() as u64;
    Ok(out)
}

/// One user's life: REGISTER, CONNECT, SEND to itself, CONNECTEDUSERS, DISCONNECT, UNREGISTER.
fn cycle(client: &GoodClient, alias: &str, port: u16, buf: &mut Vec<u8>, out: &mut GoodOut) {
    let mut step = |i: usize, op: Op, buf: &[u8], ok: fn(&Reply) -> bool| {
        let t = Instant::now();
        let result = wire::request(client.addr, buf, op, client.timeout);
        out.record(i, t.elapsed(), result, ok);
    };
    encode::register(buf, alias);
    step(0, Op::Register, buf, |r| *r == Reply::Register(RegisterStatus::Ok));
    encode::connect(buf, alias, port);
    step(1, Op::Connect, buf, |r| *r == Reply::Connect(ConnectStatus::Ok));
    encode::send(buf, alias, alias, TEXT);
    step(2, Op::Send, buf, |r| matches!(r, Reply::Send(SendReply::Accepted(_))));
    encode::connected_users(buf, alias);
    step(3, Op::ConnectedUsers, buf, |r| matches!(r, Reply::ConnectedUsers(UsersReply::List(_))));
    encode::disconnect(buf, alias);
    step(4, Op::Disconnect, buf, |r| *r == Reply::Disconnect(DisconnectStatus::Ok));
    encode::unregister(buf, alias);
    step(5, Op::Unregister, buf, |r| *r == Reply::Unregister(UnregisterStatus::Ok));
}
