//! The users of a run and the setup work on them: registration, CONNECT with a real push listener each,
//! preloaded queues, and the cleanup at the end. Setup runs on a few threads (`parallel`), each request on its
//! own connection as the protocol demands (docs/protocol.md 2.1 and 4).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use protocol::{ConnectStatus, DisconnectStatus, Op, RegisterStatus, Reply, SendReply, UnregisterStatus};

use crate::mix::Accepted;
use crate::wire::{self, encode, Clock, Counters, Decoder, Listener};

/// Offline recipients when not given: as many as online users (the usual 100/50 run has 50 of each), but never
/// so many that the final "connect everybody" needs thousands of listeners.
pub const MAX_DEFAULT_OFFLINE_RECIPIENTS: usize = 1000;

/// The users of the run and where they stand.
pub struct Population {
    pub addr: SocketAddr,
    /// Every server node; the mix's thread t talks to node t mod N (setup goes to `addr`).
    pub nodes: Vec<SocketAddr>,
    pub aliases: Vec<String>,
    /// Users connected with a listener from the start (they send, and receive live deliveries).
    pub online: Vec<u32>,
    /// Users who stay offline until the end (their messages queue on the server).
    pub offline: Vec<u32>,
    pub timeout: Duration,
    pub clock: Clock,
    /// Handed to each listener [`Population::connect_users`] starts; nothing outside this module reads it.
    decoder: Decoder,
    pub counters: Arc<Counters>,
    pub listeners: Vec<(u32, Listener)>,
    pub next_number: AtomicU64,
}

impl Population {
    /// `users` aliases `<prefix><i>`, `connected` of them online (spread over the list), and `offline_wanted`
    /// offline recipients spread over the others; every request waits at most `timeout` per step.
    pub fn new(
        addr: SocketAddr,
        prefix: &str,
        (users, connected, offline_wanted): (usize, usize, usize),
        timeout: Duration,
    ) -> Population {
        let online = spread(users, connected);
        let online_set: HashSet<u32> = online.iter().copied().collect();
        let offline_all: Vec<u32> = (0..users as u32).filter(|u| !online_set.contains(u)).collect();
        let offline = spread(offline_all.len(), offline_wanted.min(offline_all.len()))
            .into_iter()
            .map(|i| offline_all[i as usize])
            .collect();
        Population {
            addr,
            nodes: vec![addr],
            aliases: (0..users).map(|i| format!("{prefix}{i}")).collect(),
            online,
            offline,
            timeout,
            clock: Clock(std::time::Instant::now()),
            decoder: Decoder { prefix: prefix.into() },
            counters: Arc::new(Counters::default()),
            listeners: Vec::new(),
            next_number: AtomicU64::new(1),
        }
    }

    /// Registers every user. Returns the first failure, worded for the operator.
    pub fn register_all(&self, threads: usize) -> Result<(), String> {
        let results = parallel(self.aliases.len(), threads, |i, buf| {
            let alias = &self.aliases[i];
            encode::register(buf, alias);
            match wire::request(self.addr, buf, Op::Register, self.timeout) {
                Ok(Reply::Register(RegisterStatus::Ok)) => Ok(()),
                Ok(Reply::Register(RegisterStatus::AliasInUse)) => {
                    Err(format!("REGISTER {alias}: alias already in use (choose another --prefix)"))
                }
                Ok(other) => Err(format!("REGISTER {alias} answered {other:?}")),
                Err(e) => Err(format!("REGISTER {alias}: {e}")),
            }
        });
        let failed = results.iter().filter(|r| r.is_err()).count();
        match results.into_iter().find_map(Result::err) {
            Some(first) => Err(format!("{failed} REGISTER requests failed; the first: {first}")),
            None => Ok(()),
        }
    }

    /// Gives each of `users` a listener, then CONNECTs it with that listener's port.
    pub fn connect_users(&mut self, users: &[u32], threads: usize) -> Result<(), String> {
        let mut ports = Vec::with_capacity(users.len());
        for &u in users {
            let l = Listener::spawn(u, self.decoder.clone(), self.clock, self.counters.clone(), self.timeout)
                .map_err(|e| format!("cannot start a listener: {e}"))?;
            ports.push(l.port);
            self.listeners.push((u, l));
        }
        let p: &Population = self;
        let results = parallel(users.len(), threads, |i, buf| {
            let alias = &p.aliases[users[i] as usize];
            encode::connect(buf, alias, ports[i]);
            match wire::request(p.addr, buf, Op::Connect, p.timeout) {
                Ok(Reply::Connect(ConnectStatus::Ok)) => Ok(()),
                Ok(other) => Err(format!("CONNECT {alias} answered {other:?}")),
                Err(e) => Err(format!("CONNECT {alias}: {e}")),
            }
        });
        results.into_iter().collect::<Result<Vec<()>, String>>().map(|_| ())
    }

    /// Queues `n` messages for the offline recipients, round robin from the online senders. Returns the
    /// accepted ones and the number of failures.
    pub fn preload(&self, n: u64, size: usize, threads: usize) -> (Vec<Accepted>, u64) {
        let results = parallel(n as usize, threads, |i, buf| {
            let sender = self.online[i % self.online.len()];
            let recipient = self.offline[i % self.offline.len()];
            let number = self.next_number.fetch_add(1, Ordering::Relaxed);
            let mut text = Vec::with_capacity(size);
            wire::message_text(&mut text, number, size);
            encode::send(buf, &self.aliases[sender as usize], &self.aliases[recipient as usize], &text);
            match wire::request(self.addr, buf, Op::Send, self.timeout) {
                Ok(Reply::Send(SendReply::Accepted(id))) => {
                    let at_ns = self.clock.now_ns();
                    Some(Accepted { number, sender, recipient, id, sent_ns: at_ns, at_ns, online: false })
                }
                _ => None,
            }
        });
        let errors = results.iter().filter(|r| r.is_none()).count() as u64;
        (results.into_iter().flatten().collect(), errors)
    }

    /// Disconnects every connected user and unregisters every user of the run (best effort).
    pub fn cleanup(&self, threads: usize) {
        let connected: Vec<u32> = self.listeners.iter().map(|(u, _)| *u).collect();
        parallel(connected.len(), threads, |i, buf| {
            encode::disconnect(buf, &self.aliases[connected[i] as usize]);
            let reply = wire::request(self.addr, buf, Op::Disconnect, self.timeout);
            matches!(reply, Ok(Reply::Disconnect(DisconnectStatus::Ok)))
        });
        parallel(self.aliases.len(), threads, |i, buf| {
            encode::unregister(buf, &self.aliases[i]);
            let reply = wire::request(self.addr, buf, Op::Unregister, self.timeout);
            matches!(reply, Ok(Reply::Unregister(UnregisterStatus::Ok)))
        });
    }

    /// Stops every listener and returns what each received, tagged with its user.
    pub fn stop_listeners(&mut self) -> Vec<(u32, wire::Received)> {
        let mut receptions = Vec::new();
        for (user, l) in std::mem::take(&mut self.listeners) {
            receptions.extend(l.stop().into_iter().map(|r| (user, r)));
        }
        receptions
    }
}

/// A prefix that differs between runs: users of an earlier run on the same server never collide.
pub fn random_prefix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mix = (u64::from(std::process::id()) << 32 | u64::from(nanos)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("b{:06x}_", mix >> 40)
}

/// `k` indices spread evenly over `0..n` (so online users sit all along the server's list, not at its head).
pub fn spread(n: usize, k: usize) -> Vec<u32> {
    (0..k).map(|i| (i * n / k.max(1)) as u32).collect()
}

/// Runs `f(i, buf)` for every `i` in `0..n` on `threads` threads; returns the results in index order.
pub fn parallel<R: Send>(n: usize, threads: usize, f: impl Fn(usize, &mut Vec<u8>) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, R)>> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads.clamp(1, n.max(1)))
            .map(|_| {
                s.spawn(|| {
                    let mut buf = Vec::with_capacity(512);
                    let mut got = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        got.push((i, f(i, &mut buf)));
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut all: Vec<(usize, R)> = parts.iter_mut().flat_map(std::mem::take).collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_covers_the_whole_range_evenly() {
        assert_eq!(spread(100, 4), vec![0, 25, 50, 75]);
        assert_eq!(spread(3, 3), vec![0, 1, 2]);
        assert!(spread(10, 0).is_empty());
    }

    #[test]
    fn parallel_keeps_index_order() {
        let out = parallel(100, 4, |i, _| i * 2);
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
    }
}
