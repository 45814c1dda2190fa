//! The registry and every state transition.
//!
//! `Store` is a cloneable handle over `Arc<Mutex<LinkedList<User>>>`. Its methods are the only code that takes
//! the lock; each one walks the list at most once, computes the transition, and returns plain data (a status,
//! a [`Ticket`] to deliver, a journal position to make durable) that the caller acts on after the lock is gone.
//! So no network or disk wait ever happens under the lock (a journal append is a `write` into the OS cache,
//! never an fsync).
//!
//! A plain `std::sync::Mutex` is right here: every critical section is a short, bounded walk with no I/O, so
//! contention is brief and a fancier lock would buy nothing.

use std::collections::{LinkedList, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use protocol::{ConnectStatus, DisconnectStatus, RegisterStatus, SendReply, UnregisterStatus, UsersReply};

/// After a CONNECT reply, a refused push to that listener is retried during this long (PROTOCOL.md 5.4).
pub const GRACE_PERIOD: Duration = Duration::from_secs(2);

/// One pending push for a user: a message addressed to it, or an acknowledgement owed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Message { sender: Arc<str>, id: u32, text: Box<str> },
    Ack { id: u32 },
}

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
    /// The head of `alias`'s queue was pushed successfully and removed.
    Pop {
        alias: &'a str,
    },
}

/// Durability hook. `append` runs with the registry lock held, so it may only write into the OS cache,
/// never sync; `sync` runs without it.
pub trait Journal: Send + Sync {
    /// Appends a record and returns its position.
    fn append(&self, record: &Record<'_>) -> io::Result<u64>;
    /// Returns once every record up to `position` is on disk.
    fn sync(&self, position: u64) -> io::Result<()>;
}

/// Where a connected user's listener is.
#[derive(Debug, Clone)]
struct Link {
    addr: SocketAddr,
    /// Distinguishes this connection from earlier ones of the same user.
    epoch: u64,
    /// When the CONNECT reply was written; `None` until then, and no push goes out before it.
    ready_at: Option<Instant>,
}

/// One registered user.
#[derive(Debug)]
pub struct User {
    /// Unique per registration, so a deliverer never mistakes a re-registered alias for the user it served.
    uid: u64,
    /// [`alias_key`] of the alias: a walk compares this number, stored in the node, before it follows the
    /// alias pointer, which makes a walk of a long list several times cheaper (one cache miss per node, not two).
    key: u64,
    alias: String,
    full_name: String,
    birth_date: String,
    last_id: u32,
    link: Option<Link>,
    queue: VecDeque<Entry>,
    /// A deliverer is working on this user's queue: at most one push in flight per listener.
    delivering: bool,
}

impl User {
    fn new(uid: u64, full_name: &str, alias: &str, birth_date: &str) -> User {
        User {
            uid,
            key: alias_key(alias),
            alias: alias.to_owned(),
            full_name: full_name.to_owned(),
            birth_date: birth_date.to_owned(),
            last_id: 0,
            link: None,
            queue: VecDeque::new(),
            delivering: false,
        }
    }

    /// Whether this is the user called `alias`, whose [`alias_key`] is `key`.
    fn is(&self, alias: &str, key: u64) -> bool {
        self.key == key && self.alias == alias
    }

    /// Claims delivery of this user's queue if a push could go out now and nobody else is pushing.
    fn claim_delivery(&mut self) -> Option<Ticket> {
        let ready = self.link.as_ref().is_some_and(|l| l.ready_at.is_some());
        if ready && !self.delivering && !self.queue.is_empty() {
            self.delivering = true;
            Some(Ticket { alias: self.alias.clone(), uid: self.uid, job: self.job() })
        } else {
            None
        }
    }

    /// The push to attempt now: the head of the queue, if the listener is ready for pushes.
    fn job(&self) -> Option<Job> {
        match (&self.link, self.queue.front()) {
            (Some(Link { addr, epoch, ready_at: Some(ready_at) }), Some(entry)) => {
                Some(Job { addr: *addr, entry: entry.clone(), epoch: *epoch, ready_at: *ready_at })
            }
            _ => None,
        }
    }

    /// The next push for this user's deliverer; when there is none, the delivery is over and the claim released.
    fn next_job_or_release(&mut self) -> Option<Job> {
        let job = self.job();
        if job.is_none() {
            self.delivering = false;
        }
        job
    }
}

/// The right to deliver one user's queue, handed out to exactly one thread at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub alias: String,
    uid: u64,
    /// The first push, read under the same lock that handed out the ticket, so that the deliverer need not walk
    /// the list again to find it. Only as fresh as that lock: `delivery` uses it at once or drops it. `None`:
    /// ask [`Store::next_job`].
    job: Option<Job>,
}

impl Ticket {
    /// Takes the prepared first push, if any.
    pub(crate) fn take_job(&mut self) -> Option<Job> {
        self.job.take()
    }
}

/// The next push a deliverer should attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub addr: SocketAddr,
    pub entry: Entry,
    epoch: u64,
    ready_at: Instant,
}

impl Job {
    /// True while a refused connection is still within the start-up grace period of 5.4.
    pub fn in_grace(&self, now: Instant) -> bool {
        now.duration_since(self.ready_at) < GRACE_PERIOD
    }
}

/// What became of a successful push.
#[derive(Debug, Default)]
pub struct Delivered {
    /// The acknowledgement's recipient now needs a deliverer.
    pub ack_ticket: Option<Ticket>,
    /// The sender of the pushed message was still registered but its queue was full: the ack was dropped.
    pub ack_dropped: bool,
    /// The next push for the same ticket, found in the same walk (what [`Store::next_job`] would answer);
    /// `None`: the delivery is over and the ticket released, or the user is gone.
    pub next: Option<Job>,
}

/// A snapshot of one user for a journal snapshot and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    pub alias: String,
    pub full_name: String,
    pub birth_date: String,
    pub last_id: u32,
    pub connected: bool,
    pub queue: Vec<Entry>,
}

/// Result of an accepted SEND.
#[derive(Debug)]
pub struct Accepted {
    pub id: u32,
    /// The recipient was connected and idle: this thread must deliver.
    pub ticket: Option<Ticket>,
    /// The recipient was not connected (the message is stored).
    pub stored: bool,
    /// Journal position to make durable before replying.
    pub position: Option<u64>,
}

/// Handle on the registry. Cloning is cheap; every clone sees the same users.
#[derive(Clone)]
pub struct Store {
    users: Arc<Mutex<LinkedList<User>>>,
    next_uid: Arc<AtomicU64>,
    max_queue: usize,
    journal: Option<Arc<dyn Journal>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("max_queue", &self.max_queue).finish_non_exhaustive()
    }
}

/// The number a walk compares before the alias itself (FNV-1a: a few nanoseconds for an alias, no dependency;
/// collisions only cost a string comparison).
pub fn alias_key(alias: &str) -> u64 {
    alias.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The id after `last` (PROTOCOL.md 6): 1 after 0 and after u32::MAX, so 0 is never used.
pub fn next_id(last: u32) -> u32 {
    last.checked_add(1).unwrap_or(1)
}

impl Store {
    /// An empty registry whose queues hold at most `max_queue` entries each.
    pub fn new(max_queue: usize) -> Store {
        Store { users: Arc::default(), next_uid: Arc::new(AtomicU64::new(1)), max_queue, journal: None }
    }

    /// The same registry, journalling every durable change to `journal`.
    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> Store {
        self.journal = Some(journal);
        self
    }

    /// Takes the lock. A panic elsewhere while holding it cannot leave a half-done transition (no transition
    /// can panic between its checks and its last write), so a poisoned lock is still a consistent registry and
    /// we keep serving instead of failing every later request.
    fn lock(&self) -> MutexGuard<'_, LinkedList<User>> {
        self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn uid(&self) -> u64 {
        self.next_uid.fetch_add(1, Ordering::Relaxed)
    }

    fn append(&self, record: &Record<'_>) -> io::Result<Option<u64>> {
        match &self.journal {
            Some(j) => j.append(record).map(Some),
            None => Ok(None),
        }
    }

    /// Makes the journal durable up to `position` (no-op without a journal).
    pub fn commit(&self, position: Option<u64>) -> io::Result<()> {
        match (&self.journal, position) {
            (Some(j), Some(p)) => j.sync(p),
            _ => Ok(()),
        }
    }

    /// REGISTER (4.1).
    pub fn register(&self, full_name: &str, alias: &str, birth_date: &str) -> (RegisterStatus, Option<u64>) {
        let mut users = self.lock();
        if alias.is_empty() {
            return (RegisterStatus::Fail, None);
        }
        let key = alias_key(alias);
        if users.iter().any(|u| u.is(alias, key)) {
            return (RegisterStatus::AliasInUse, None);
        }
        match self.append(&Record::Register { full_name, alias, birth_date }) {
            Ok(pos) => {
                users.push_back(User::new(self.uid(), full_name, alias, birth_date));
                (RegisterStatus::Ok, pos)
            }
            Err(e) => {
                log::error!("journal append failed: {e}");
                (RegisterStatus::Fail, None)
            }
        }
    }

    /// UNREGISTER (4.2): removes the user and its queue.
    pub fn unregister(&self, alias: &str) -> (UnregisterStatus, Option<u64>) {
        let mut users = self.lock();
        let key = alias_key(alias);
        let Some(index) = users.iter().position(|u| u.is(alias, key)) else {
            return (UnregisterStatus::NoSuchUser, None);
        };
        match self.append(&Record::Unregister { alias }) {
            Ok(pos) => {
                remove_at(&mut users, index);
                (UnregisterStatus::Ok, pos)
            }
            Err(e) => {
                log::error!("journal append failed: {e}");
                (UnregisterStatus::Fail, None)
            }
        }
    }

    /// CONNECT (4.3): records the listener. Pushes wait until [`Store::activate`] says the reply is out.
    pub fn connect(&self, alias: &str, addr: SocketAddr) -> (ConnectStatus, u64) {
        let mut users = self.lock();
        let key = alias_key(alias);
        let Some(user) = users.iter_mut().find(|u| u.is(alias, key)) else {
            return (ConnectStatus::NoSuchUser, 0);
        };
        if user.link.is_some() {
            return (ConnectStatus::AlreadyConnected, 0);
        }
        let epoch = self.uid();
        user.link = Some(Link { addr, epoch, ready_at: None });
        (ConnectStatus::Ok, epoch)
    }

    /// Called once the CONNECT reply is written: from now on pushes may go to the listener. Returns a ticket
    /// when this thread should flush the queue.
    pub fn activate(&self, alias: &str, epoch: u64) -> Option<Ticket> {
        let mut users = self.lock();
        let key = alias_key(alias);
        let user = users.iter_mut().find(|u| u.is(alias, key))?;
        match &mut user.link {
            Some(link) if link.epoch == epoch => link.ready_at = Some(Instant::now()),
            _ => return None,
        }
        user.claim_delivery()
    }

    /// DISCONNECT (4.4). `peer` is the address the request came from; with `ip_check` it must match the
    /// listener's address.
    pub fn disconnect(&self, alias: &str, peer: IpAddr, ip_check: bool) -> DisconnectStatus {
        let mut users = self.lock();
        let key = alias_key(alias);
        let Some(user) = users.iter_mut().find(|u| u.is(alias, key)) else {
            return DisconnectStatus::NoSuchUser;
        };
        match &user.link {
            None => DisconnectStatus::NotConnected,
            Some(link) if ip_check && link.addr.ip() != peer => DisconnectStatus::Fail,
            Some(_) => {
                user.link = None;
                DisconnectStatus::Ok
            }
        }
    }

    /// SEND (4.5): assigns the sender's next id and queues the message for the recipient.
    pub fn send(&self, sender: &str, recipient: &str, text: &str) -> Result<Accepted, SendReply> {
        if text.len() > protocol::MAX_FIELD_LEN {
            return Err(SendReply::Fail);
        }
        let mut users = self.lock();
        let (s, r) = find_pair(&mut users, sender, recipient);
        let Some(s) = s else { return Err(SendReply::NoSuchUser) };
        // `None` here means the recipient is the sender itself (sending to oneself is allowed).
        let r = match r {
            Some(r) => Some(r),
            None if sender == recipient => None,
            None => return Err(SendReply::NoSuchUser),
        };
        if s.link.is_none() {
            return Err(SendReply::Fail);
        }
        if r.as_ref().map_or(s.queue.len(), |r| r.queue.len()) >= self.max_queue {
            return Err(SendReply::Fail);
        }
        let id = next_id(s.last_id);
        let position = self.append(&Record::Message { sender, recipient, id, text }).map_err(|e| {
            log::error!("journal append failed: {e}");
            SendReply::Fail
        })?;
        s.last_id = id;
        let sender_name: Arc<str> = Arc::from(sender);
        let r = r.unwrap_or(s);
        r.queue.push_back(Entry::Message { sender: sender_name, id, text: text.into() });
        Ok(Accepted { id, stored: r.link.is_none(), ticket: r.claim_delivery(), position })
    }

    /// CONNECTEDUSERS (4.6): every connected user in registration order.
    pub fn connected_users_for(&self, requester: &str) -> UsersReply {
        let users = self.lock();
        let mut requester_connected = None;
        let mut list = Vec::new();
        let key = alias_key(requester);
        for u in users.iter() {
            if u.is(requester, key) {
                requester_connected = Some(u.link.is_some());
            }
            if u.link.is_some() {
                list.push(u.alias.clone());
            }
        }
        match requester_connected {
            None => UsersReply::Fail,
            Some(false) => UsersReply::NotConnected,
            Some(true) => UsersReply::List(list),
        }
    }

    /// The next push for the holder of `ticket`, or `None` when its delivery is over (queue empty, user gone,
    /// disconnected or not yet ready). Returning `None` releases the ticket.
    pub fn next_job(&self, ticket: &Ticket) -> Option<Job> {
        let mut users = self.lock();
        // The uid alone names the user the ticket was issued for: a number compare per node.
        let user = users.iter_mut().find(|u| u.uid == ticket.uid)?;
        user.next_job_or_release()
    }

    /// Records a successful push of `job`: removes the head and, for a message, queues the acknowledgement to
    /// its sender (if still registered) and hands out the sender's ticket when the sender needs a deliverer.
    /// Also answers, from the same walk, the ticket's next push ([`Delivered::next`]).
    pub fn delivered(&self, ticket: &Ticket, job: &Job) -> Delivered {
        let mut users = self.lock();
        let (ack_to, id) = match &job.entry {
            Entry::Message { sender, id, .. } => (Some(sender.clone()), *id),
            Entry::Ack { id } => (None, *id),
        };
        let other = ack_to.as_deref().unwrap_or(&ticket.alias);
        let (r, s) = find_pair(&mut users, &ticket.alias, other);
        // The user is gone (unregistered, maybe registered again): its ticket went with it.
        let Some(r) = r.filter(|r| r.uid == ticket.uid) else { return Delivered::default() };
        if r.queue.front() != Some(&job.entry) {
            return Delivered { next: r.next_job_or_release(), ..Delivered::default() };
        }
        if let Err(e) = self.append(&Record::Pop { alias: &ticket.alias }) {
            // The push already happened; keeping the entry would deliver it twice. Without the record a
            // restart may repeat this one push (at-least-once), which is the documented worst case.
            log::error!("journal append failed: {e}");
        }
        r.queue.pop_front();
        let mut done = Delivered::default();
        if let Some(to) = ack_to {
            // The sender may be the recipient itself, or gone (unregistered): then the acknowledgement is dropped.
            let s = if s.is_none() && *to == *ticket.alias { Some(&mut *r) } else { s };
            if let Some(s) = s {
                if s.queue.len() >= self.max_queue {
                    done.ack_dropped = true;
                } else if let Err(e) = self.append(&Record::Ack { to: &to, id }) {
                    log::error!("journal append failed: {e}");
                    done.ack_dropped = true;
                } else {
                    s.queue.push_back(Entry::Ack { id });
                    done.ack_ticket = s.claim_delivery();
                }
            }
        }
        done.next = r.next_job_or_release();
        done
    }

    /// Records a failed push: the entry stays at the head, the user is marked disconnected (unless it has
    /// reconnected since the job was planned), and the ticket is released unless a new connection can be tried.
    /// Returns true when the deliverer should go on (the user reconnected meanwhile).
    pub fn failed(&self, ticket: &Ticket, job: &Job) -> bool {
        let mut users = self.lock();
        let Some(user) = users.iter_mut().find(|u| u.uid == ticket.uid) else {
            return false;
        };
        if user.link.as_ref().is_some_and(|l| l.epoch == job.epoch) {
            user.link = None;
        }
        if user.link.is_some() {
            return true;
        }
        user.delivering = false;
        false
    }

    /// Whether `alias` is connected (`None`: not registered).
    pub fn is_connected(&self, alias: &str) -> Option<bool> {
        let key = alias_key(alias);
        self.lock().iter().find(|u| u.is(alias, key)).map(|u| u.link.is_some())
    }

    /// Aliases of every connected user, in registration order.
    pub fn connected_users(&self) -> Vec<String> {
        self.lock().iter().filter(|u| u.link.is_some()).map(|u| u.alias.clone()).collect()
    }

    /// Number of registered users.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nobody is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the whole registry, in registration order.
    pub fn snapshot(&self) -> Vec<UserState> {
        self.snapshot_then(|| ()).0
    }

    /// [`Store::snapshot`], then `then` runs before the lock is released, so that no change slips in between:
    /// the journal switches to a fresh segment there, and the copy is exactly the state that segment starts
    /// from. `then` runs under the registry lock and must not wait for anything.
    pub fn snapshot_then<R>(&self, then: impl FnOnce() -> R) -> (Vec<UserState>, R) {
        let users = self.lock();
        let copy = users
            .iter()
            .map(|u| UserState {
                alias: u.alias.clone(),
                full_name: u.full_name.clone(),
                birth_date: u.birth_date.clone(),
                last_id: u.last_id,
                connected: u.link.is_some(),
                queue: u.queue.iter().cloned().collect(),
            })
            .collect();
        (copy, then())
    }

    /// About the bytes a journal snapshot of the registry takes (every string, plus [`SNAPSHOT_ITEM_COST`] per
    /// user and per queued entry), without copying anything: the journal compares its size with this to decide
    /// when compacting pays. One walk under the lock, so the journal calls it rarely.
    pub fn live_bytes(&self) -> u64 {
        let users = self.lock();
        let mut total = 0usize;
        for u in users.iter() {
            total += SNAPSHOT_ITEM_COST + u.alias.len() + u.full_name.len() + u.birth_date.len();
            for e in &u.queue {
                total += SNAPSHOT_ITEM_COST;
                if let Entry::Message { sender, text, .. } = e {
                    total += sender.len() + text.len();
                }
            }
        }
        total as u64
    }

    /// Recovery: fills an empty registry from a journal snapshot. Nobody is connected afterwards (connection
    /// state is not durable), so `connected` is ignored; queue caps are not applied, since the cap may have
    /// been lowered since the entries were accepted and dropping them would lose acknowledged messages.
    pub fn restore(&self, users: Vec<UserState>) -> Result<(), ReplayError> {
        let mut list = self.lock();
        if !list.is_empty() {
            return Err(ReplayError("snapshot loaded into a registry that is not empty"));
        }
        let mut seen = std::collections::HashSet::with_capacity(users.len());
        if users.iter().any(|u| u.alias.is_empty() || !seen.insert(u.alias.as_str())) {
            return Err(ReplayError("snapshot holds an empty or duplicate alias"));
        }
        for state in users {
            let mut user = User::new(self.uid(), &state.full_name, &state.alias, &state.birth_date);
            user.last_id = state.last_id;
            user.queue = state.queue.into();
            list.push_back(user);
        }
        Ok(())
    }

    /// Recovery: applies one journalled change without journalling it again. A record that does not fit the
    /// state (a message from an unknown sender, ...) means the files are not what this server wrote, and
    /// recovery must stop rather than guess. Queue caps are not applied (see [`Store::restore`]).
    pub fn replay(&self, record: &Record<'_>) -> Result<(), ReplayError> {
        let mut users = self.lock();
        match *record {
            Record::Register { full_name, alias, birth_date } => {
                if alias.is_empty() || users.iter().any(|u| u.alias == alias) {
                    return Err(ReplayError("REGISTER of an empty or already registered alias"));
                }
                users.push_back(User::new(self.uid(), full_name, alias, birth_date));
            }
            Record::Unregister { alias } => {
                let index = users.iter().position(|u| u.alias == alias);
                let index = index.ok_or(ReplayError("UNREGISTER of an alias that is not registered"))?;
                remove_at(&mut users, index);
            }
            Record::Message { sender, recipient, id, text } => {
                let (s, r) = find_pair(&mut users, sender, recipient);
                let Some(s) = s else { return Err(ReplayError("message from a sender that is not registered")) };
                if r.is_none() && sender != recipient {
                    return Err(ReplayError("message to a recipient that is not registered"));
                }
                s.last_id = id;
                let r = r.unwrap_or(s);
                r.queue.push_back(Entry::Message { sender: Arc::from(sender), id, text: text.into() });
            }
            Record::Ack { to, id } => {
                let user = users.iter_mut().find(|u| u.alias == to);
                let user = user.ok_or(ReplayError("acknowledgement for an alias that is not registered"))?;
                user.queue.push_back(Entry::Ack { id });
            }
            Record::Pop { alias } => {
                let user = users.iter_mut().find(|u| u.alias == alias);
                let user = user.ok_or(ReplayError("delivery to an alias that is not registered"))?;
                user.queue.pop_front().ok_or(ReplayError("delivery from an empty queue"))?;
            }
        }
        Ok(())
    }
}

/// Fixed bytes of one user or one queued entry in a journal snapshot (frame header, tag, lengths, numbers).
pub const SNAPSHOT_ITEM_COST: usize = 20;

/// Why recovery could not apply a snapshot or a journal record to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayError(pub &'static str);

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ReplayError {}

/// Removes the user at `index`. std's LinkedList has no stable remove-at: split at the node, drop it, join the
/// halves.
fn remove_at(users: &mut LinkedList<User>, index: usize) {
    let mut tail = users.split_off(index);
    tail.pop_front();
    users.append(&mut tail);
}

/// Finds `a` and `b` in one walk. When `a == b` only the first slot is filled: one node cannot be borrowed
/// mutably twice, and the caller knows the second is the first.
fn find_pair<'l>(users: &'l mut LinkedList<User>, a: &str, b: &str) -> (Option<&'l mut User>, Option<&'l mut User>) {
    let same = a == b;
    let (ka, kb) = (alias_key(a), alias_key(b));
    let (mut first, mut second) = (None, None);
    for u in users.iter_mut() {
        if first.is_none() && u.is(a, ka) {
            first = Some(u);
        } else if !same && second.is_none() && u.is(b, kb) {
            second = Some(u);
        }
        if first.is_some() && (same || second.is_some()) {
            break;
        }
    }
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)
    }

    fn connected(store: &Store, alias: &str) {
        assert_eq!(store.register("", alias, "").0, RegisterStatus::Ok);
        let (status, epoch) = store.connect(alias, addr(9));
        assert_eq!(status, ConnectStatus::Ok);
        let _ = store.activate(alias, epoch);
    }

    #[test]
    fn ids_start_at_one_and_wrap_to_one() {
        assert_eq!(next_id(0), 1);
        assert_eq!(next_id(41), 42);
        assert_eq!(next_id(u32::MAX - 1), u32::MAX);
        assert_eq!(next_id(u32::MAX), 1);
    }

    #[test]
    fn send_after_the_last_id_wraps_to_one() {
        let store = Store::new(10);
        connected(&store, "a");
        store.lock().front_mut().unwrap().last_id = u32::MAX;
        assert_eq!(store.send("a", "a", "x").unwrap().id, 1);
        assert_eq!(store.snapshot()[0].last_id, 1);
    }

    #[test]
    fn only_one_ticket_per_user_at_a_time() {
        let store = Store::new(10);
        connected(&store, "a");
        let first = store.send("a", "a", "1").unwrap().ticket;
        assert!(first.is_some(), "idle and connected: the sender thread delivers");
        assert!(store.send("a", "a", "2").unwrap().ticket.is_none(), "a deliverer is already at work");
        let ticket = first.unwrap();
        let job = store.next_job(&ticket).unwrap();
        assert_eq!(job.entry, Entry::Message { sender: "a".into(), id: 1, text: "1".into() });
        // Delivering to oneself queues the ack behind message 2, and the same ticket goes on.
        assert!(store.delivered(&ticket, &job).ack_ticket.is_none());
        let ids: Vec<_> = store.snapshot()[0].queue.to_vec();
        assert_eq!(ids, [Entry::Message { sender: "a".into(), id: 2, text: "2".into() }, Entry::Ack { id: 1 }]);
    }

    #[test]
    fn a_failed_push_keeps_the_head_and_disconnects_only_the_same_connection() {
        let store = Store::new(10);
        connected(&store, "a");
        let ticket = store.send("a", "a", "m").unwrap().ticket.unwrap();
        let job = store.next_job(&ticket).unwrap();
        // The user reconnects meanwhile: the old connection's failure must not disconnect the new one.
        assert_eq!(store.disconnect("a", Ipv4Addr::LOCALHOST.into(), true), DisconnectStatus::Ok);
        let (_, epoch) = store.connect("a", addr(10));
        let _ = store.activate("a", epoch);
        assert!(store.failed(&ticket, &job), "the deliverer goes on with the new listener");
        assert_eq!(store.is_connected("a"), Some(true));
        let retry = store.next_job(&ticket).unwrap();
        assert_eq!(retry.addr, addr(10));
        assert!(!store.failed(&ticket, &retry));
        assert_eq!(store.is_connected("a"), Some(false));
        assert_eq!(store.snapshot()[0].queue.len(), 1, "the message stays queued");
    }

    #[test]
    fn a_poisoned_lock_does_not_stop_the_registry() {
        let store = Store::new(10);
        let clone = store.clone();
        let _ = std::thread::spawn(move || {
            let _guard = clone.lock();
            panic!("a connection thread dies holding the lock");
        })
        .join();
        assert_eq!(store.register("", "a", "").0, RegisterStatus::Ok);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_ticket_carries_its_first_job_and_delivered_answers_the_next_one() {
        let store = Store::new(10);
        connected(&store, "a");
        connected(&store, "b");
        let mut ticket = store.send("a", "b", "1").unwrap().ticket.unwrap();
        assert!(store.send("a", "b", "2").unwrap().ticket.is_none());
        let job = ticket.take_job().expect("the first push comes with the ticket, without another walk");
        assert_eq!(job.entry, Entry::Message { sender: "a".into(), id: 1, text: "1".into() });
        let done = store.delivered(&ticket, &job);
        let mut ack = done.ack_ticket.expect("the sender is idle: its acknowledgement needs a deliverer");
        assert_eq!(ack.take_job().map(|j| j.entry), Some(Entry::Ack { id: 1 }));
        let next = done.next.expect("message 2 is next, found in the same walk");
        assert_eq!(next.entry, Entry::Message { sender: "a".into(), id: 2, text: "2".into() });
        assert!(store.delivered(&ticket, &next).next.is_none(), "queue empty: the delivery is over");
        // The ticket was released: the next message hands out a new one.
        assert!(store.send("a", "b", "3").unwrap().ticket.is_some());
    }

    #[test]
    fn lookups_tell_apart_aliases_whatever_their_keys() {
        let store = Store::new(10);
        for alias in ["a", "b", "ab", "ba", "a\n"] {
            assert_eq!(store.register("", alias, "").0, RegisterStatus::Ok);
        }
        assert_eq!(store.register("", "ab", "").0, RegisterStatus::AliasInUse);
        assert_eq!(store.unregister("ba").0, UnregisterStatus::Ok);
        assert_eq!(store.is_connected("ba"), None);
        assert_eq!(store.is_connected("ab"), Some(false));
        assert_ne!(alias_key("ab"), alias_key("ba"));
    }
}
