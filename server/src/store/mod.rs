//! The registry and every state transition.
//!
//! `Store` is a cloneable handle over `Arc<Mutex<Registry>>`. Its methods are the only code that takes the lock;
//! each one finds its users through the hash index (constant time, whatever the number of users), computes the
//! transition, and returns plain data (a status, a [`Ticket`] to deliver, a journal position to make durable)
//! that the caller acts on after the lock is gone. No network or disk wait ever happens under the lock: a
//! journal append is a `write` into the OS cache, never an fsync, and a snapshot only encodes into memory here.
//!
//! A plain `std::sync::Mutex` is right: a critical section is a few hash probes and no I/O, about a microsecond;
//! one lock per bucket would buy nothing here (docs/architecture.md, "The registry").
//!
//! - `user`: one user, its queue entries, what a deliverer is handed.
//! - `claims`: the delivery claim ([`Ticket`]) and the store's side of each push.
//! - `registry`: the data behind the lock: slab, index, connected set, snapshot capture, undo log.
//! - `recovery`: rebuilding the registry from a snapshot and journal records, strictly.
//! - `backend`: the store interface ([`Backend`]) the handler and the deliverer talk to; `Store` is one of its
//!   two implementations, `cluster::RedisStore` the other.

mod backend;
mod claims;
mod recovery;
mod registry;
mod user;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use protocol::{ConnectStatus, DisconnectStatus, RegisterStatus, SendReply, UnregisterStatus, UsersReply};

pub use backend::{Backend, Claim};
pub use claims::{Delivered, Ticket};
pub use recovery::{ReplayError, RestoredUser, POP_UNCHECKED};
pub use registry::{SnapshotSink, Steps};
pub use user::{Entry, Job, UserState, UserView, GRACE_PERIOD, GRACE_RETRY, SNAPSHOT_ITEM_COST};

use registry::{Registry, Undo};
use user::{Link, User};

/// A change of durable state, as handed to the [`Journal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Register {
        full_name: &'a str,
        alias: &'a str,
        birth_date: &'a str,
    },
    Unregister {
        alias: &'a str,
    },
    /// A message accepted from `sender` under `id` (so `sender`'s counter is now `id`), queued for `recipient`.
    Message {
        sender: &'a str,
        recipient: &'a str,
        id: u32,
        text: &'a str,
    },
    /// An acknowledgement queued for `to`.
    Ack {
        to: &'a str,
        id: u32,
    },
    /// Entry number `number` of `alias`'s queue, its head, was pushed successfully and removed.
    Pop {
        alias: &'a str,
        number: u64,
    },
}

/// Durability hook. `append` runs with the registry lock held, so it may only write into the OS cache, never
/// sync; `sync` runs without it.
pub trait Journal: Send + Sync {
    /// Appends a record and returns its position (the journal's length after it).
    fn append(&self, record: &Record<'_>) -> io::Result<u64>;
    /// Returns once every record up to `position` is on disk; an error means they may never be.
    fn sync(&self, position: u64) -> io::Result<()>;
    /// Every position up to this one is known to be on disk.
    fn durable(&self) -> u64;
    /// After a failed `sync`: every position up to this one is or can still be made durable; the changes after
    /// it never will be, and the store takes them back.
    fn kept(&self) -> u64;
}

/// Result of an accepted SEND (`T`: the backend's ticket).
#[derive(Debug)]
pub struct Accepted<T = Ticket> {
    pub id: u32,
    /// The recipient was connected and idle: this thread must deliver.
    pub ticket: Option<T>,
    /// The recipient was not connected (the message is stored).
    pub stored: bool,
    /// Journal position to make durable before replying.
    pub position: Option<u64>,
}

/// Handle on the registry. Cloning is cheap; every clone sees the same users.
#[derive(Clone)]
pub struct Store {
    /// Every user and every transition; see the module documentation for why one plain mutex.
    inner: Arc<Mutex<Registry>>,
    /// Bytes a snapshot of the live state would take (maintained by the registry, read by the journal).
    live: Arc<AtomicU64>,
    max_queue: usize,
    journal: Option<Arc<dyn Journal>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("max_queue", &self.max_queue).finish_non_exhaustive()
    }
}

/// The id after `last` (docs/protocol.md 6): 1 after 0 and after u32::MAX, so 0 is never used.
pub fn next_id(last: u32) -> u32 {
    last.checked_add(1).unwrap_or(1)
}

/// Whether a request from `from` may act for a user whose listener is `link` (None: no check asked).
fn same_origin(link: Option<&Link>, from: Option<IpAddr>) -> bool {
    match (link, from) {
        (Some(link), Some(ip)) => link.addr.ip().to_canonical() == ip.to_canonical(),
        _ => true,
    }
}

impl Store {
    /// An empty registry whose queues hold at most `max_queue` entries each.
    pub fn new(max_queue: usize) -> Store {
        let live = Arc::new(AtomicU64::new(0));
        Store { inner: Arc::new(Mutex::new(Registry::new(live.clone()))), live, max_queue, journal: None }
    }

    /// The same registry, journalling every durable change to `journal`.
    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> Store {
        self.journal = Some(journal);
        self
    }

    /// Takes the lock. No transition can panic between its checks and its last write, so a poisoned lock still
    /// guards a consistent registry, and we keep serving instead of failing every later request.
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, record: &Record<'_>) -> io::Result<Option<u64>> {
        match &self.journal {
            Some(j) => j.append(record).map(Some),
            None => Ok(None),
        }
    }

    fn log_undo(&self, reg: &mut Registry, position: Option<u64>, undo: impl FnOnce() -> Undo) {
        if let (Some(j), Some(p)) = (&self.journal, position) {
            reg.log_undo(p, j.durable(), undo());
        }
    }

    /// Makes the journal durable up to `position` (no-op without a journal). If it cannot be, every change not
    /// yet durable is taken back (their requests are answered with a failure) and the error returned.
    pub fn commit(&self, position: Option<u64>) -> io::Result<()> {
        let (Some(j), Some(p)) = (&self.journal, position) else { return Ok(()) };
        if p <= j.durable() {
            return Ok(());
        }
        j.sync(p).inspect_err(|_| {
            let undone = self.lock().roll_back(j.kept());
            if undone > 0 {
                log::warn!("journal: {undone} changes not made durable were taken back");
            }
        })
    }

    /// Records `addr` as the user's listener under a new connection epoch, which it returns.
    fn link(reg: &mut Registry, key: usize, addr: SocketAddr) -> u64 {
        let epoch = reg.token();
        reg.users[key].link = Some(Box::new(Link { addr, epoch, ready_at: None }));
        reg.set_online(key, true);
        epoch
    }

    /// REGISTER (4.1).
    pub fn register(&self, full_name: &str, alias: &str, birth_date: &str) -> (RegisterStatus, Option<u64>) {
        if alias.is_empty() {
            return (RegisterStatus::Fail, None);
        }
        let mut reg = self.lock();
        if reg.find(alias).is_some() {
            return (RegisterStatus::AliasInUse, None);
        }
        let position = match self.append(&Record::Register { full_name, alias, birth_date }) {
            Ok(p) => p,
            Err(e) => {
                log::error!("journal append failed: {e}");
                return (RegisterStatus::Fail, None);
            }
        };
        let seq = reg.next_seq;
        reg.next_seq += 1;
        let alias: Arc<str> = Arc::from(alias);
        reg.insert(User::new(seq, alias.clone(), full_name, birth_date));
        self.log_undo(&mut reg, position, || Undo::Register { alias, seq });
        (RegisterStatus::Ok, position)
    }

    /// UNREGISTER (4.2): removes the user and its queue. `from`: the request's address, which must be the
    /// listener's when the user is connected (None: no check).
    pub fn unregister(&self, alias: &str, from: Option<IpAddr>) -> (UnregisterStatus, Option<u64>) {
        let mut reg = self.lock();
        let Some(key) = reg.find(alias) else { return (UnregisterStatus::NoSuchUser, None) };
        if !same_origin(reg.users[key].link.as_deref(), from) {
            return (UnregisterStatus::Fail, None);
        }
        let position = match self.append(&Record::Unregister { alias }) {
            Ok(p) => p,
            Err(e) => {
                log::error!("journal append failed: {e}");
                return (UnregisterStatus::Fail, None);
            }
        };
        let user = Box::new(reg.remove(key));
        self.log_undo(&mut reg, position, || Undo::Unregister { user });
        (UnregisterStatus::Ok, position)
    }

    /// CONNECT (4.3): records the listener. Pushes wait until [`Store::activate`] says the reply is out.
    pub fn connect(&self, alias: &str, addr: SocketAddr) -> (ConnectStatus, u64) {
        let mut reg = self.lock();
        let Some(key) = reg.find(alias) else { return (ConnectStatus::NoSuchUser, 0) };
        if reg.users[key].link.is_some() {
            return (ConnectStatus::AlreadyConnected, 0);
        }
        (ConnectStatus::Ok, Store::link(&mut reg, key, addr))
    }

    /// The listener address and connection epoch of a connected user.
    pub fn link_of(&self, alias: &str) -> Option<(SocketAddr, u64)> {
        let mut reg = self.lock();
        let key = reg.find(alias)?;
        reg.users[key].link.as_ref().map(|l| (l.addr, l.epoch))
    }

    /// CONNECT of a user whose recorded session (`epoch`) was found dead: the new listener replaces it, unless
    /// the session changed meanwhile.
    pub fn take_over(&self, alias: &str, epoch: u64, addr: SocketAddr) -> (ConnectStatus, u64) {
        let mut reg = self.lock();
        let Some(key) = reg.find(alias) else { return (ConnectStatus::NoSuchUser, 0) };
        match &reg.users[key].link {
            Some(link) if link.epoch == epoch => {}
            Some(_) => return (ConnectStatus::AlreadyConnected, 0),
            None => {}
        }
        (ConnectStatus::Ok, Store::link(&mut reg, key, addr))
    }

    /// Called once the CONNECT reply is written: from now on pushes may go to the listener. Returns a ticket
    /// when this thread should flush the queue.
    pub fn activate(&self, alias: &str, epoch: u64) -> Option<Ticket> {
        let mut reg = self.lock();
        let key = reg.find(alias)?;
        match reg.users[key].link.as_deref_mut() {
            Some(link) if link.epoch == epoch => link.ready_at = Some(Instant::now()),
            _ => return None,
        }
        self.ticket(&mut reg, key)
    }

    /// DISCONNECT (4.4). `from`: the request's address, which must be the listener's (None: no check).
    pub fn disconnect(&self, alias: &str, from: Option<IpAddr>) -> DisconnectStatus {
        let mut reg = self.lock();
        let Some(key) = reg.find(alias) else { return DisconnectStatus::NoSuchUser };
        match reg.users[key].link.as_deref() {
            None => DisconnectStatus::NotConnected,
            link if !same_origin(link, from) => DisconnectStatus::Fail,
            Some(_) => {
                reg.users[key].link = None;
                reg.set_online(key, false);
                DisconnectStatus::Ok
            }
        }
    }

    /// SEND (4.5): assigns the sender's next id and queues the message for the recipient. `from`: the request's
    /// address, which must be the sender's listener's (None: no check).
    pub fn send(&self, sender: &str, recipient: &str, text: &str, from: Option<IpAddr>) -> Result<Accepted, SendReply> {
        if text.len() > protocol::MAX_FIELD_LEN {
            return Err(SendReply::Fail);
        }
        let mut reg = self.lock();
        let s = reg.find(sender).ok_or(SendReply::NoSuchUser)?;
        let r = reg.find(recipient).ok_or(SendReply::NoSuchUser)?;
        let link = reg.users[s].link.as_deref();
        if link.is_none() || !same_origin(link, from) || reg.users[r].queue.len() >= self.max_queue {
            return Err(SendReply::Fail);
        }
        let id = next_id(reg.users[s].last_id);
        let position = self.append(&Record::Message { sender, recipient, id, text }).map_err(|e| {
            log::error!("journal append failed: {e}");
            SendReply::Fail
        })?;
        reg.touch(s).last_id = id;
        let sender_name = reg.users[s].alias.clone();
        let number = reg.users[r].queue_tail();
        reg.enqueue(r, Entry::Message { sender: sender_name, id, text: text.into() });
        if let Some(p) = position {
            reg.users[r].queue_pos = p;
        }
        let (recipient_name, seq) = (reg.users[r].alias.clone(), reg.users[r].seq);
        self.log_undo(&mut reg, position, || Undo::Message { recipient: recipient_name, seq, number });
        let stored = reg.users[r].link.is_none();
        Ok(Accepted { id, stored, ticket: self.ticket(&mut reg, r), position })
    }

    /// CONNECTEDUSERS (4.6): every connected user in registration order; walks only the connected users.
    pub fn connected_users_for(&self, requester: &str) -> UsersReply {
        let mut reg = self.lock();
        let Some(key) = reg.find(requester) else { return UsersReply::Fail };
        if reg.users[key].link.is_none() {
            return UsersReply::NotConnected;
        }
        UsersReply::List(reg.online().map(|u| u.alias.to_string()).collect())
    }

    /// Whether `alias` is connected (`None`: not registered).
    pub fn is_connected(&self, alias: &str) -> Option<bool> {
        let mut reg = self.lock();
        reg.find(alias).map(|k| reg.users[k].link.is_some())
    }

    /// Aliases of every connected user, in registration order.
    pub fn connected_users(&self) -> Vec<String> {
        self.lock().online().map(|u| u.alias.to_string()).collect()
    }

    /// Number of registered users.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nobody is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Users looked at by every request so far (the cost-regression test compares it across sizes).
    pub fn steps(&self) -> Steps {
        self.lock().steps
    }

    /// A copy of the whole registry, in registration order (for tests and tools; it walks every user).
    pub fn snapshot(&self) -> Vec<UserState> {
        let reg = self.lock();
        let mut users: Vec<&User> = reg.users.iter().map(|(_, u)| u).collect();
        users.sort_by_key(|u| u.seq);
        users
            .into_iter()
            .map(|u| UserState {
                alias: u.alias.to_string(),
                full_name: u.full_name.to_string(),
                birth_date: u.birth_date.to_string(),
                last_id: u.last_id,
                connected: u.link.is_some(),
                queue: u.queue.iter().cloned().collect(),
            })
            .collect()
    }

    /// Bytes a snapshot of the live state takes, about (kept by every change: reading it costs nothing).
    pub fn live_bytes(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    /// The live size as the registry keeps it, for the journal to read at every append.
    pub(crate) fn live_counter(&self) -> Arc<AtomicU64> {
        self.live.clone()
    }

    /// Starts a snapshot: from now on every user that exists now is handed to `sink` exactly once, in its
    /// present state, either by [`Store::snapshot_step`] or just before a change to it. `then` runs under the same
    /// lock (the journal switches to a fresh segment there), so the snapshot plus that segment is the state.
    pub fn begin_snapshot<R>(&self, sink: Arc<dyn SnapshotSink>, then: impl FnOnce() -> R) -> R {
        let mut reg = self.lock();
        reg.begin_capture(sink);
        then()
    }

    /// Hands up to `chunk` more users to the snapshot's sink; true when the snapshot has every user.
    pub fn snapshot_step(&self, chunk: usize) -> bool {
        self.lock().capture_step(chunk)
    }

    /// Abandons the snapshot under way.
    pub fn abort_snapshot(&self) {
        self.lock().abort_capture();
    }
}

#[cfg(test)]
mod tests;
