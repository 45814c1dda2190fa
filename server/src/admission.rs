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
        Some(Permit { admission: self.clone(), peer, serial, accepted, stage: Stage::Pending })
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

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Its request is still being read; it can be shed.
    Pending,
    /// Its request is complete; it is being answered.
    Complete,
    /// Its slot has been given back.
    Released,
}

/// A connection slot, held from accept until the reply has been written and the stream closed. Dropping it
/// gives the slot back, on every path, a panic included.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    peer: IpAddr,
    serial: u64,
    accepted: Instant,
    stage: Stage,
}

impl Permit {
    /// When the connection was accepted: the whole-request deadline counts from here.
    pub fn accepted(&self) -> Instant {
        self.accepted
    }

    /// Records that the request has been read in full: from now on the connection is no longer pending, and
    /// cannot be shed. `false` when it was shed meanwhile: the caller closes without reply.
    pub fn request_complete(&mut self) -> bool {
        if self.stage != Stage::Pending {
            return self.stage == Stage::Complete;
        }
        let mut st = self.admission.lock();
        if st.take_pending(self.peer, self.serial).is_none() {
            return false;
        }
        self.stage = Stage::Complete;
        true
    }

    /// Gives the connection slot back and takes a delivery slot instead, waiting while every delivery slot is
    /// taken (the connection slot is kept meanwhile, which bounds the number of threads). Call it once the reply
    /// has been written and the stream closed, before pushing; the delivery slot is given back when the
    /// returned value is dropped.
    pub fn into_delivery(mut self) -> DeliverySlot {
        let admission = self.admission.clone();
        let mut st = admission.lock();
        while st.deliveries >= admission.limits.max_deliveries {
            st = admission.delivery_freed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.deliveries += 1;
        self.release(&mut st);
        drop(st);
        DeliverySlot { admission }
    }

    /// The admission control this permit belongs to.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// Like [`Permit::into_delivery`], but never waits: `Err` gives the permit back when every delivery slot is
    /// taken, for a caller that would rather leave the work queued than hold its connection slot meanwhile.
    pub fn try_into_delivery(mut self) -> Result<DeliverySlot, Permit> {
        let admission = self.admission.clone();
        let mut st = admission.lock();
        if st.deliveries >= admission.limits.max_deliveries {
            drop(st);
            return Err(self);
        }
        st.deliveries += 1;
        self.release(&mut st);
        drop(st);
        Ok(DeliverySlot { admission })
    }

    fn release(&mut self, st: &mut State) {
        match self.stage {
            Stage::Released => return,
            Stage::Complete => {}
            Stage::Pending => {
                if st.take_pending(self.peer, self.serial).is_none() {
                    // It was shed: the accept loop counted it as about to give its slot back.
                    st.shedding -= 1;
                }
            }
        }
        self.stage = Stage::Released;
        // Only a full count has a waiter, so only then is a wake-up (a futex syscall) worth its cost.
        let was_full = st.in_use >= self.admission.limits.max_connections;
        st.in_use -= 1;
        if was_full {
            self.admission.slot_freed.notify_all();
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.stage == Stage::Released {
            return;
        }
        let admission = self.admission.clone();
        let mut st = admission.lock();
        self.release(&mut st);
    }
}

/// A delivery slot ([`Permit::into_delivery`]); dropping it gives the slot back.
#[derive(Debug)]
pub struct DeliverySlot {
    admission: Arc<Admission>,
}

impl DeliverySlot {
    /// The admission control this slot belongs to.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// A delivery slot for a thread that holds no connection, when one is free.
    pub fn try_take(admission: &Arc<Admission>) -> Option<DeliverySlot> {
        let mut st = admission.lock();
        if st.deliveries >= admission.limits.max_deliveries {
            return None;
        }
        st.deliveries += 1;
        Some(DeliverySlot { admission: admission.clone() })
    }
}

impl Drop for DeliverySlot {
    fn drop(&mut self) {
        let mut st = self.admission.lock();
        let was_full = st.deliveries >= self.admission.limits.max_deliveries;
        st.deliveries -= 1;
        if was_full {
            // All waiters re-check, so that none stays asleep beside a free slot.
            self.admission.delivery_freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{Ipv4Addr, TcpListener};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);

    /// Connected pairs on loopback: (the client's end, the server's end).
    struct Pairs(TcpListener);

    impl Pairs {
        fn new() -> Pairs {
            Pairs(TcpListener::bind("127.0.0.1:0").unwrap())
        }

        fn pair(&self) -> (TcpStream, TcpStream) {
            let client = TcpStream::connect(self.0.local_addr().unwrap()).unwrap();
            let (server, _) = self.0.accept().unwrap();
            client.set_read_timeout(Some(WAIT)).unwrap();
            (client, server)
        }
    }

    fn ip(n: u8) -> IpAddr {
        Ipv4Addr::new(10, 0, 0, n).into()
    }

    fn admission(max_connections: usize, per_address: usize, deliveries: usize) -> Arc<Admission> {
        Arc::new(Admission::new(Limits {
            max_connections,
            max_pending_per_address: per_address,
            max_deliveries: deliveries,
        }))
    }

    fn shut_down(client: &mut TcpStream) -> bool {
        matches!(client.read(&mut [0u8; 1]), Ok(0) | Err(_))
    }

    #[test]
    fn an_address_over_its_limit_loses_its_oldest_pending_connection() {
        let pairs = Pairs::new();
        let adm = admission(10, 2, 1);
        let (mut c1, s1) = pairs.pair();
        let (_c2, s2) = pairs.pair();
        let (_c3, s3) = pairs.pair();
        let mut p1 = adm.admit(&s1, ip(1), Instant::now()).unwrap();
        let mut p2 = adm.admit(&s2, ip(1), Instant::now()).unwrap();
        // Another address does not count against the first one's limit.
        let mut other = adm.admit(&s3, ip(2), Instant::now()).unwrap();
        let (_c4, s4) = pairs.pair();
        let mut p4 = adm.admit(&s4, ip(1), Instant::now()).unwrap();
        assert!(shut_down(&mut c1), "the oldest of the address was shut down");
        assert!(adm.lock().last_report.is_some(), "and reported");
        assert!(!p1.request_complete(), "and learns it was shed");
        assert!(p2.request_complete() && p4.request_complete() && other.request_complete());
        assert_eq!(adm.in_use(), 4, "a shed connection holds its slot until its thread lets go");
        drop((p1, p2, p4, other));
        assert_eq!(adm.in_use(), 0);
        assert_eq!(adm.lock().shedding, 0);
        assert!(adm.lock().pending.is_empty());
    }

    #[test]
    fn a_full_server_sheds_the_busiest_address_oldest_and_serves_the_newcomer() {
        let pairs = Pairs::new();
        let adm = admission(3, 3, 1);
        let (mut lone_c, lone_s) = pairs.pair();
        let (mut b1_c, b1_s) = pairs.pair();
        let (_b2_c, b2_s) = pairs.pair();
        let mut lone = adm.admit(&lone_s, ip(1), Instant::now()).unwrap();
        let mut b1 = adm.admit(&b1_s, ip(2), Instant::now()).unwrap();
        let mut b2 = adm.admit(&b2_s, ip(2), Instant::now()).unwrap();
        let (_n_c, n_s) = pairs.pair();
        let (tx, admitted) = mpsc::channel();
        let waiting = adm.clone();
        let newcomer = thread::spawn(move || tx.send(waiting.admit(&n_s, ip(3), Instant::now()).is_some()).unwrap());
        // The victim's read ends; its thread then gives the slot back, and the newcomer gets it.
        assert!(shut_down(&mut b1_c), "the busiest address's oldest was shut down");
        assert!(!b1.request_complete());
        drop(b1);
        assert!(admitted.recv_timeout(WAIT).unwrap(), "the newcomer was admitted");
        newcomer.join().unwrap();
        // The lone connection, the oldest of all, was left alone.
        lone_c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        assert!(lone_c.read(&mut [0u8; 1]).is_err(), "still open: the read timed out");
        assert!(lone.request_complete() && b2.request_complete());
    }

    #[test]
    fn complete_requests_are_never_shed_and_stop_ends_the_wait() {
        let pairs = Pairs::new();
        let adm = admission(1, 1, 1);
        let (_c1, s1) = pairs.pair();
        let mut p1 = adm.admit(&s1, ip(1), Instant::now()).unwrap();
        assert!(p1.request_complete());
        let (_c2, s2) = pairs.pair();
        let waiting = adm.clone();
        let (tx, refused) = mpsc::channel();
        let newcomer = thread::spawn(move || tx.send(waiting.admit(&s2, ip(1), Instant::now()).is_none()).unwrap());
        // Nothing is sheddable: the newcomer waits (a bounded negative check), until the stop.
        assert!(refused.recv_timeout(Duration::from_millis(50)).is_err());
        adm.stop();
        assert!(refused.recv_timeout(WAIT).unwrap(), "stop made admit give up");
        newcomer.join().unwrap();
        assert!(p1.request_complete(), "the complete request kept its slot");
    }

    #[test]
    fn into_delivery_frees_the_connection_slot_within_the_delivery_cap() {
        let pairs = Pairs::new();
        let adm = admission(4, 4, 1);
        let (_c1, s1) = pairs.pair();
        let (_c2, s2) = pairs.pair();
        let mut p1 = adm.admit(&s1, ip(1), Instant::now()).unwrap();
        let mut p2 = adm.admit(&s2, ip(1), Instant::now()).unwrap();
        assert!(p1.request_complete() && p2.request_complete());
        let d1 = p1.into_delivery();
        assert_eq!((adm.in_use(), adm.deliveries()), (1, 1));
        // The cap is reached: a try gives the permit back, still holding its slot.
        let mut p2 = p2.try_into_delivery().expect_err("no delivery slot free");
        assert!(p2.request_complete(), "the permit is intact");
        assert_eq!(adm.in_use(), 1);
        let (tx, got) = mpsc::channel();
        let second = thread::spawn(move || {
            let d2 = p2.into_delivery();
            tx.send(()).unwrap();
            drop(d2);
        });
        // The cap is reached: the second waits, keeping its connection slot.
        assert!(got.recv_timeout(Duration::from_millis(50)).is_err());
        assert_eq!(adm.in_use(), 1);
        drop(d1);
        got.recv_timeout(WAIT).unwrap();
        second.join().unwrap();
        assert_eq!((adm.in_use(), adm.deliveries()), (0, 0));
    }
}
