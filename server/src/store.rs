//! The registry and every state transition.
//!
//! `Store` is a cloneable handle over `Arc<Mutex<LinkedList<User>>>`. Its methods are the only code that takes
//! the lock; each one walks the list at most once, computes the transition, and returns plain data (a status,
//! a [`Ticket`] to deliver, a journal position to make durable) that the caller acts on after the lock is gone.
//! So no network or disk wait ever happens under the lock (a journal append is a buffered write).
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

/// Durability hook. `append` runs with the registry lock held, so it may only buffer; `sync` runs without it.
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
            alias: alias.to_owned(),
            full_name: full_name.to_owned(),
            birth_date: birth_date.to_owned(),
            last_id: 0,
            link: None,
            queue: VecDeque::new(),
            delivering: false,
        }
    }

    /// Claims delivery of this user's queue if a push could go out now and nobody else is pushing.
    fn claim_delivery(&mut self) -> Option<Ticket> {
        let ready = self.link.as_ref().is_some_and(|l| l.ready_at.is_some());
        if ready && !self.delivering && !self.queue.is_empty() {
            self.delivering = true;
            Some(Ticket { alias: self.alias.clone(), uid: self.uid })
        } else {
            None
        }
    }
}

/// The right to deliver one user's queue, handed out to exactly one thread at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub alias: String,
    uid: u64,
}

/// The next push a deliverer should attempt.
#[derive(Debug, Clone)]
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

    /// Per-user queue cap.
    pub fn max_queue(&self) -> usize {
        self.max_queue
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
        if users.iter().any(|u| u.alias == alias) {
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
        let Some(index) = users.iter().position(|u| u.alias == alias) else {
            return (UnregisterStatus::NoSuchUser, None);
        };
        match self.append(&Record::Unregister { alias }) {
            Ok(pos) => {
                // std's LinkedList has no stable remove-at: split at the node, drop it, join the halves.
                let mut tail = users.split_off(index);
                tail.pop_front();
                users.append(&mut tail);
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
        let Some(user) = users.iter_mut().find(|u| u.alias == alias) else {
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
        let user = users.iter_mut().find(|u| u.alias == alias)?;
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
        let Some(user) = users.iter_mut().find(|u| u.alias == alias) else {
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
        for u in users.iter() {
            if u.alias == requester {
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
        let user = users.iter_mut().find(|u| u.alias == ticket.alias && u.uid == ticket.uid)?;
        let job = match (&user.link, user.queue.front()) {
            (Some(Link { addr, epoch, ready_at: Some(ready_at) }), Some(entry)) => {
                Some(Job { addr: *addr, entry: entry.clone(), epoch: *epoch, ready_at: *ready_at })
            }
            _ => None,
        };
        if job.is_none() {
            user.delivering = false;
        }
        job
    }

    /// Records a successful push of `job`: removes the head and, for a message, queues the acknowledgement to
    /// its sender (if still registered) and hands out the sender's ticket when the sender needs a deliverer.
    pub fn delivered(&self, ticket: &Ticket, job: &Job) -> Delivered {
        let mut users = self.lock();
        let (ack_to, id) = match &job.entry {
            Entry::Message { sender, id, .. } => (Some(sender.clone()), *id),
            Entry::Ack { id } => (None, *id),
        };
        let other = ack_to.as_deref().unwrap_or(&ticket.alias);
        let (r, s) = find_pair(&mut users, &ticket.alias, other);
        let Some(r) = r.filter(|r| r.uid == ticket.uid && r.queue.front() == Some(&job.entry)) else {
            return Delivered::default();
        };
        if let Err(e) = self.append(&Record::Pop { alias: &ticket.alias }) {
            // The push already happened; keeping the entry would deliver it twice. Without the record a
            // restart may repeat this one push (at-least-once), which is the documented worst case.
            log::error!("journal append failed: {e}");
        }
        r.queue.pop_front();
        let Some(to) = ack_to else { return Delivered::default() };
        // The sender may be the recipient itself, or gone (unregistered): then the acknowledgement is dropped.
        let s = match s {
            Some(s) => s,
            None if *to == *ticket.alias => r,
            None => return Delivered::default(),
        };
        if s.queue.len() >= self.max_queue {
            return Delivered { ack_ticket: None, ack_dropped: true };
        }
        if let Err(e) = self.append(&Record::Ack { to: &to, id }) {
            log::error!("journal append failed: {e}");
            return Delivered { ack_ticket: None, ack_dropped: true };
        }
        s.queue.push_back(Entry::Ack { id });
        Delivered { ack_ticket: s.claim_delivery(), ack_dropped: false }
    }

    /// Records a failed push: the entry stays at the head, the user is marked disconnected (unless it has
    /// reconnected since the job was planned), and the ticket is released unless a new connection can be tried.
    /// Returns true when the deliverer should go on (the user reconnected meanwhile).
    pub fn failed(&self, ticket: &Ticket, job: &Job) -> bool {
        let mut users = self.lock();
        let Some(user) = users.iter_mut().find(|u| u.alias == ticket.alias && u.uid == ticket.uid) else {
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
        self.lock().iter().find(|u| u.alias == alias).map(|u| u.link.is_some())
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
        self.lock()
            .iter()
            .map(|u| UserState {
                alias: u.alias.clone(),
                full_name: u.full_name.clone(),
                birth_date: u.birth_date.clone(),
                last_id: u.last_id,
                connected: u.link.is_some(),
                queue: u.queue.iter().cloned().collect(),
            })
            .collect()
    }
}

/// Finds `a` and `b` in one walk. When `a == b` only the first slot is filled: one node cannot be borrowed
/// mutably twice, and the caller knows the second is the first.
fn find_pair<'l>(users: &'l mut LinkedList<User>, a: &str, b: &str) -> (Option<&'l mut User>, Option<&'l mut User>) {
    let same = a == b;
    let (mut first, mut second) = (None, None);
    for u in users.iter_mut() {
        if first.is_none() && u.alias == a {
            first = Some(u);
        } else if !same && second.is_none() && u.alias == b {
            second = Some(u);
        }
        if first.is_some() && (same || second.is_some()) {
            break;
        }
    }
    (first, second)
}
