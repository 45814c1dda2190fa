//! The load phase: client threads issue a weighted mix of SEND to an online user, SEND to an offline user and
//! CONNECTEDUSERS (docs/protocol.md 2.1 and 4), each on its own connection, and log every accepted SEND for
//! the delivery check.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use protocol::{Op, Reply, SendReply, UsersReply};

use crate::cli::Mix;
use crate::phase::{drive, Phase, Schedule};
use crate::population::Population;
use crate::stats::Latency;
use crate::wire::{self, encode};

/// At most this many distinct error texts are kept per phase for the report.
const MAX_ERROR_EXAMPLES: usize = 5;

/// The three measured request kinds, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SendOnline = 0,
    SendOffline = 1,
    Users = 2,
}

pub const KINDS: [Kind; 3] = [Kind::SendOnline, Kind::SendOffline, Kind::Users];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::SendOnline => "send_online",
            Kind::SendOffline => "send_offline",
            Kind::Users => "connected_users",
        }
    }

    /// The kind a uniform `pick` in `0..sum(weights)` selects.
    fn pick(mix: Mix, mut pick: u32) -> Kind {
        for (kind, weight) in KINDS.into_iter().zip([mix.send_online, mix.send_offline, mix.users]) {
            if pick < weight {
                return kind;
            }
            pick -= weight;
        }
        Kind::Users
    }
}

/// xorshift64*: fast, good enough to pick users and request kinds, and reproducible from `--seed`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams and 0 is not a fixed point.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// A SEND the server accepted.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    pub number: u64,
    pub sender: u32,
    pub recipient: u32,
    pub id: u32,
    /// When the SEND was issued (before connecting): acceptance happened after this...
    pub sent_ns: u64,
    /// ...and before this, when its reply was read.
    pub at_ns: u64,
    /// Sent to a connected recipient (its delivery latency is measured).
    pub online: bool,
}

/// What one worker thread produced in one phase.
#[derive(Default)]
pub struct WorkerOut {
    pub lat: [Latency; 3],
    pub errors: [u64; 3],
    pub examples: Vec<String>,
    pub accepted: Vec<Accepted>,
    /// Message numbers of SENDs whose outcome is unknown (no valid reply): the server may have queued them.
    pub unconfirmed: Vec<u64>,
    /// With [`MixPlan::record_times`]: (start, duration) in nanoseconds of the run's clock, per measured request.
    pub times: Vec<(u64, u64)>,
}

impl WorkerOut {
    pub fn error(&mut self, kind: Kind, what: String) {
        self.errors[kind as usize] += 1;
        if self.examples.len() < MAX_ERROR_EXAMPLES && !self.examples.contains(&what) {
            self.examples.push(what);
        }
    }

    pub fn merge(&mut self, other: WorkerOut) {
        for (a, b) in self.lat.iter_mut().zip(&other.lat) {
            a.merge(b);
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        for e in other.examples {
            if self.examples.len() < MAX_ERROR_EXAMPLES && !self.examples.contains(&e) {
                self.examples.push(e);
            }
        }
        self.accepted.extend(other.accepted);
        self.unconfirmed.extend(other.unconfirmed);
        self.times.extend(other.times);
    }
}

/// One worker's reusable state.
struct Worker<'a> {
    pop: &'a Population,
    /// The server node this thread talks to.
    addr: SocketAddr,
    size: usize,
    rng: Rng,
    out: WorkerOut,
    buf: Vec<u8>,
    text: Vec<u8>,
}

impl Worker<'_> {
    fn connected_users(&mut self, sender: u32) -> Result<(), String> {
        encode::connected_users(&mut self.buf, &self.pop.aliases[sender as usize]);
        match wire::request(self.addr, &self.buf, Op::ConnectedUsers, self.pop.timeout) {
            Ok(Reply::ConnectedUsers(UsersReply::List(_))) => Ok(()),
            Ok(other) => Err(format!("CONNECTEDUSERS answered {other:?}")),
            Err(e) => Err(format!("CONNECTEDUSERS: {e}")),
        }
    }

    /// A recipient for `sender`: another online user (one of the n-1 others), or an offline one.
    fn recipient(&mut self, sender: u32, online: bool) -> u32 {
        let pop = self.pop;
        if !online {
            return pop.offline[self.rng.below(pop.offline.len())];
        }
        let r = pop.online[self.rng.below(pop.online.len() - 1)];
        if r == sender {
            pop.online[pop.online.len() - 1]
        } else {
            r
        }
    }

    fn send(&mut self, sender: u32, online: bool) -> Result<(), String> {
        let pop = self.pop;
        let recipient = self.recipient(sender, online);
        let number = pop.next_number.fetch_add(1, Ordering::Relaxed);
        wire::message_text(&mut self.text, number, self.size);
        encode::send(&mut self.buf, &pop.aliases[sender as usize], &pop.aliases[recipient as usize], &self.text);
        let sent_ns = pop.clock.now_ns();
        match wire::request(self.addr, &self.buf, Op::Send, pop.timeout) {
            Ok(Reply::Send(SendReply::Accepted(id))) => {
                let at_ns = pop.clock.now_ns();
                self.out.accepted.push(Accepted { number, sender, recipient, id, sent_ns, at_ns, online });
                Ok(())
            }
            Ok(other) => Err(format!("SEND answered {other:?}")),
            Err(e) => {
                self.out.unconfirmed.push(number);
                Err(format!("SEND: {e}"))
            }
        }
    }
}

/// What one phase of the mix sends.
#[derive(Debug, Clone, Copy)]
pub struct MixPlan {
    pub mix: Mix,
    /// Message text size in bytes.
    pub size: usize,
    pub seed: u64,
    pub schedule: Schedule,
    /// Keep each measured request's start and duration (for a time window of interest, e.g. a compaction).
    pub record_times: bool,
}

/// One phase of the mix on `threads` client threads.
pub fn run_mix(pop: &Population, plan: &MixPlan, threads: usize, show: bool) -> Phase {
    let MixPlan { mix, size, seed, schedule, record_times } = *plan;
    let total = mix.send_online + mix.send_offline + mix.users;
    let mut phase = drive(schedule, "mix", threads, show, Some(&pop.counters), |t, plan, live| {
        let rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(t as u64));
        let (buf, text) = (Vec::with_capacity(512), Vec::with_capacity(size));
        let addr = pop.nodes[t % pop.nodes.len()];
        let mut w = Worker { pop, addr, size, rng, out: WorkerOut::default(), buf, text };
        while let Some(measured) = plan.next() {
            let kind = Kind::pick(mix, w.rng.below(total as usize) as u32);
            let sender = pop.online[w.rng.below(pop.online.len())];
            let (t0, t0_ns) = (Instant::now(), pop.clock.now_ns());
            let result = match kind {
                Kind::Users => w.connected_users(sender),
                Kind::SendOnline | Kind::SendOffline => w.send(sender, kind == Kind::SendOnline),
            };
            match result {
                Ok(()) if measured => {
                    let took = t0.elapsed();
                    w.out.lat[kind as usize].record(took);
                    if record_times {
                        w.out.times.push((t0_ns, u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)));
                    }
                }
                Ok(()) => {}
                Err(e) => {
                    live.errors.fetch_add(1, Ordering::Relaxed);
                    w.out.error(kind, e);
                }
            }
            live.done.fetch_add(1, Ordering::Relaxed);
        }
        w.out
    });
    phase.offline_queued = phase.out.accepted.iter().filter(|a| !a.online).count();
    phase
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_the_weights() {
        let mix = Mix { send_online: 60, send_offline: 20, users: 20 };
        assert_eq!(Kind::pick(mix, 0), Kind::SendOnline);
        assert_eq!(Kind::pick(mix, 59), Kind::SendOnline);
        assert_eq!(Kind::pick(mix, 60), Kind::SendOffline);
        assert_eq!(Kind::pick(mix, 80), Kind::Users);
        let none_offline = Mix { send_online: 50, send_offline: 0, users: 50 };
        assert_eq!(Kind::pick(none_offline, 50), Kind::Users);
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::new(7);
        assert!((0..10_000).all(|_| rng.below(3) < 3));
    }
}
