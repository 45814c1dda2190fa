//! Admission control: connection slots, incomplete requests per address, and deliveries in progress.
//!
//! Three bounds under one lock (docs/protocol.md 2.5; docs/architecture.md,
//! "Admission"):
//!
//! - **Connection slots** (`--max-connections`). A connection holds a [`Permit`] from accept until its reply
//!   has been written and its stream closed. Beyond the cap the accept loop waits, but never behind a peer that
//!   merely holds a slot without finishing a request: see the next two points.
//! - **Incomplete requests per address** (`--max-pending-per-address`). A connection is *pending* until its
//!   request has been read in full. When one address has more pending connections than its limit, its oldest
//!   one is shed: its socket is shut down, which ends its thread's read, and the newcomer is served. A host
//!   with a thousand idle sockets therefore still gets a fresh request through, and hurts only itself
//!   (as nginx `limit_conn` and Apache `mod_reqtimeout` do).
//! - **All slots taken.** A newcomer evicts one pending connection: the oldest of the address that has the most
//!   pending connections. Slowloris sockets come in numbers from few addresses, so they go first, while an
//!   ordinary client with one request in progress is the last to be chosen. Only when every slot is held by a
//!   connection that already sent its whole request (it is being answered, within the reply write timeout)
//!   does the accept loop wait.
//! - **Deliveries in progress** (`--max-deliveries`). Deliveries run on the request's thread after the
//!   connection is closed ([`Permit::into_delivery`]): they may wait seconds on a listener (grace retries,
//!   push timeouts) and must not hold a connection slot meanwhile, so they count against their own cap. A
//!   thread that finds that cap full waits for a delivery slot *before* giving its connection slot back, so
//!   the number of threads stays bounded by the sum of both caps.
//!
//! The lock guards counters and short queues only; no network I/O happens under it. Shedding a connection is a
//! `shutdown` of its socket, done by the accept loop after the lock is released. A shed connection whose
//! request completes in that instant learns it from [`Permit::request_complete`] and closes without reply, so
//! a request is either answered or shed, never both.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod permit;
#[cfg(test)]
mod tests;

pub use permit::{DeliverySlot, Permit};

/// With no `--max-pending-per-address`, one address may hold this fraction (1/8) of the connection slots with
/// incomplete requests.
pub const PENDING_SHARE: usize = 8;
/// Default cap on deliveries in progress at once (`--max-deliveries`).
pub const DEFAULT_MAX_DELIVERIES: usize = 64;
/// Shed connections are reported in one warning at most this often, with their count since the last one.
pub const SHED_REPORT_EVERY: Duration = Duration::from_secs(10);

/// The three bounds of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections holding a slot at once (accepted, not yet answered and closed).
    pub max_connections: usize,
    /// Connections of one address that have not yet sent a complete request.
    pub max_pending_per_address: usize,
    /// Deliveries in progress at once.
    pub max_deliveries: usize,
}

impl Limits {
    /// `max_connections` slots, with the default share per address and the default delivery cap.
    pub fn new(max_connections: usize) -> Limits {
        Limits {
            max_connections,
            max_pending_per_address: default_pending_per_address(max_connections),
            max_deliveries: DEFAULT_MAX_DELIVERIES,
        }
    }
}

/// The default per-address limit for a connection cap: one [`PENDING_SHARE`]th of it, at least 1.
pub fn default_pending_per_address(max_connections: usize) -> usize {
    (max_connections / PENDING_SHARE).max(1)
}

/// The shared bookkeeping of the three bounds.
#[derive(Debug)]
pub struct Admission {
    /// Counters and pending queues; held for a few map operations at a time, never across I/O.
    state: Mutex<State>,
    /// Signalled when a slot is given back while every slot was taken, and on stop: the accept loop waits on it.
    slot_freed: Condvar,
    /// Signalled when a delivery slot is given back while every one was taken.
    delivery_freed: Condvar,
    limits: Limits,
}

#[derive(Debug, Default)]
struct State {
    /// Connections holding a slot.
    in_use: usize,
    /// Of those, connections already shed whose thread has not yet given its slot back.
    shedding: usize,
    /// Deliveries in progress.
    deliveries: usize,
    /// Source of the connections' serial numbers (accept order).
    next_serial: u64,
    /// Pending connections per peer address, oldest first; an address leaves the map with its last one.
    pending: HashMap<IpAddr, VecDeque<Pending>>,
    /// Set on stop: the accept loop no longer waits for a slot.
    stopping: bool,
    /// Connections shed since the last warning, and when that was.
    shed_unreported: u64,
    last_report: Option<Instant>,
}

/// A connection that has not yet sent a complete request.
#[derive(Debug)]
struct Pending {
    serial: u64,
    /// A second handle on the socket, to shut it down when the connection is shed.
    socket: TcpStream,
}

impl State {
    /// Removes the pending entry `serial` of `peer`; `None` when it was shed.
    fn take_pending(&mut self, peer: IpAddr, serial: u64) -> Option<Pending> {
        let queue = self.pending.get_mut(&peer)?;
        let at = queue.iter().position(|p| p.serial == serial)?;
        let entry = queue.remove(at);
        if queue.is_empty() {
            self.pending.remove(&peer);
        }
        entry
    }

    /// Takes the oldest pending connection of `peer` out of the books, to be shed.
    fn shed_oldest_of(&mut self, peer: IpAddr) -> Option<Pending> {
        let queue = self.pending.get_mut(&peer)?;
        let victim = queue.pop_front();
        if queue.is_empty() {
            self.pending.remove(&peer);
        }
        self.shedding += usize::from(victim.is_some());
        self.shed_unreported += u64::from(victim.is_some());
        victim
    }

    /// The number of connections to report as shed now, at most once per [`SHED_REPORT_EVERY`].
    fn take_report(&mut self, now: Instant) -> Option<u64> {
        let recent = self.last_report.is_some_and(|t| now.saturating_duration_since(t) < SHED_REPORT_EVERY);
        if self.shed_unreported == 0 || recent {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.shed_unreported))
    }

    /// The victim when every slot is taken: the oldest pending connection of the address with the most of
    /// them (ties: the one whose oldest is older). A walk over the addresses, only when the slots are full.
    fn shed_for_newcomer(&mut self) -> Option<Pending> {
        let peer = self
            .pending
            .iter()
            .filter_map(|(ip, q)| q.front().map(|oldest| (q.len(), std::cmp::Reverse(oldest.serial), *ip)))
            .max()
            .map(|(_, _, ip)| ip)?;
        self.shed_oldest_of(peer)
    }
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        let limits = Limits {
            max_connections: limits.max_connections.max(1),
            max_pending_per_address: limits.max_pending_per_address.max(1),
            max_deliveries: limits.max_deliveries.max(1),
        };
        Admission {
            state: Mutex::new(State::default()),
            slot_freed: Condvar::new(),
            delivery_freed: Condvar::new(),
            limits,
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connections holding a slot right now.
    pub fn in_use(&self) -> usize {
        self.lock().in_use
    }

    /// Deliveries in progress right now.
    pub fn deliveries(&self) -> usize {
        self.lock().deliveries
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock can panic halfway; a poisoned lock still holds consistent counters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits the connection `stream` from `peer`, accepted at `accepted`: sheds what the limits require and
    /// waits while every slot is held by a complete request. `None` on stop, or when the socket cannot be
    /// duplicated (out of descriptors): the caller drops the connection.
    pub fn admit(self: &Arc<Self>, stream: &TcpStream, peer: IpAddr, accepted: Instant) -> Option<Permit> {
        let socket = match stream.try_clone() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("cannot track the connection from {peer} ({e}): dropped");
                return None;
            }
        };
        let mut victims: Vec<Pending> = Vec::new();
        let mut st = self.lock();
        let own = st.pending.get(&peer).map_or(0, VecDeque::len);
        if own >= self.limits.max_pending_per_address {
            victims.extend(st.shed_oldest_of(peer));
        }
        let serial = loop {
            if st.stopping {
                drop(st);
                shed(victims, "the server is stopping");
                return None;
            }
            if st.in_use < self.limits.max_connections {
                st.in_use += 1;
                st.next_serial += 1;
                let serial = st.next_serial;
                st.pending.entry(peer).or_default().push_back(Pending { serial, socket });
                break serial;
            }
            // Every slot is taken. Unless a shed connection is already about to give one back, shed another.
            if st.in_use - st.shedding >= self.limits.max_connections {
                if let Some(victim) = st.shed_for_newcomer() {
                    victims.push(victim);
                }
            }
            if victims.is_empty() {
                st = self.slot_freed.wait(st).unwrap_or_else(|p| p.into_inner());
            } else {
                drop(st);
                shed(std::mem::take(&mut victims), "all connection slots taken");
                st = self.lock();
            }
        };
        let report = st.take_report(accepted);
        drop(st);
        shed(victims, "too many incomplete requests from its address");
        if let Some(n) = report {
            log::warn!(
                "{n} incomplete request(s) shed since the last report: slow or idle peers (docs/protocol.md 2.5)"
            );
        }
        Some(Permit::pending(self.clone(), peer, serial, accepted))
    }

    /// Stops admitting: a waiting [`Admission::admit`] returns `None`.
    pub fn stop(&self) {
        let mut st = self.lock();
        st.stopping = true;
        self.slot_freed.notify_all();
    }
}

/// Shuts the shed sockets down (outside the lock): their threads' reads end at once.
fn shed(victims: Vec<Pending>, why: &str) {
    for victim in victims {
        let peer = victim.socket.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
        log::debug!("incomplete request from {peer} shed: {why}");
        let _ = victim.socket.shutdown(Shutdown::Both);
    }
}
