//! One registered user and what a deliverer is handed: the queue entry, the listener's address, the claim.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After a CONNECT reply, a refused push to that listener is retried during this long (docs/protocol.md 5.4).
pub const GRACE_PERIOD: Duration = Duration::from_secs(2);

/// One pending push for a user: a message addressed to it, or an acknowledgement owed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Message { sender: Arc<str>, id: u32, text: Box<str> },
    Ack { id: u32 },
}

impl Entry {
    /// About the bytes this entry takes in a snapshot (see [`SNAPSHOT_ITEM_COST`]).
    pub(crate) fn snapshot_bytes(&self) -> u64 {
        let strings = match self {
            Entry::Message { sender, text, .. } => sender.len() + text.len(),
            Entry::Ack { .. } => 0,
        };
        (SNAPSHOT_ITEM_COST + strings) as u64
    }
}

/// Fixed bytes of one user or one queued entry in a snapshot (frame header, tag, lengths, numbers).
pub const SNAPSHOT_ITEM_COST: usize = 32;

/// Where a connected user's listener is.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub addr: SocketAddr,
    /// Distinguishes this connection from earlier ones of the same user.
    pub epoch: u64,
    /// When the CONNECT reply was written; `None` until then, and no push goes out before it.
    pub ready_at: Option<Instant>,
}

/// One registered user. Lives in the registry's slab; the index and the set of connected users point at it.
#[derive(Debug)]
pub(crate) struct User {
    /// Registration number: unique per registration (a re-registered alias gets a new one, so a deliverer never
    /// mistakes it for the user it served), and its order is the registration order CONNECTEDUSERS lists in.
    pub seq: u64,
    pub alias: Arc<str>,
    pub full_name: Box<str>,
    pub birth_date: Box<str>,
    pub last_id: u32,
    pub link: Option<Box<Link>>,
    pub queue: VecDeque<Entry>,
    /// Number of the entry at the head of `queue`; the entries behind it are numbered on. A journal `Pop` names
    /// the number it removes, so a replay can never remove the wrong entry.
    pub queue_head: u64,
    /// Journal position of the last message queued here: a deliverer makes the journal durable up to it before
    /// pushing, so a message whose SEND may still fail is never pushed. 0: nothing to wait for.
    pub queue_pos: u64,
    /// Non-zero while a deliverer holds this user's claim: the claim's token (one push in flight per listener).
    pub claim: u64,
    /// The snapshot round this user was last written out for (see `registry::Capture`).
    pub captured: u64,
}

impl User {
    pub fn new(seq: u64, alias: Arc<str>, full_name: &str, birth_date: &str) -> User {
        User {
            seq,
            alias,
            full_name: full_name.into(),
            birth_date: birth_date.into(),
            last_id: 0,
            link: None,
            queue: VecDeque::new(),
            queue_head: 0,
            queue_pos: 0,
            claim: 0,
            captured: 0,
        }
    }

    /// Appends to the queue. The first entry gets room for exactly one: most users who have anything queued have
    /// one message, and a default allocation would hold four.
    pub fn enqueue(&mut self, entry: Entry) {
        if self.queue.capacity() == 0 {
            self.queue.reserve_exact(1);
        }
        self.queue.push_back(entry);
    }

    /// The number the next queued entry gets.
    pub fn queue_tail(&self) -> u64 {
        self.queue_head + self.queue.len() as u64
    }

    /// About the bytes this user and its queue take in a snapshot.
    pub fn snapshot_bytes(&self) -> u64 {
        let own = SNAPSHOT_ITEM_COST + self.alias.len() + self.full_name.len() + self.birth_date.len();
        own as u64 + self.queue.iter().map(Entry::snapshot_bytes).sum::<u64>()
    }

    /// The push to attempt now: the head of the queue, if the listener is ready for pushes.
    pub fn job(&self) -> Option<Job> {
        let link = self.link.as_deref()?;
        let ready_at = link.ready_at?;
        let entry = self.queue.front()?.clone();
        Some(Job {
            addr: link.addr,
            entry,
            epoch: link.epoch,
            ready_at,
            number: self.queue_head,
            durable_at: self.queue_pos,
        })
    }
}

/// The next push a deliverer should attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub addr: SocketAddr,
    pub entry: Entry,
    pub(crate) epoch: u64,
    pub(crate) ready_at: Instant,
    /// The entry's number in its queue.
    pub(crate) number: u64,
    /// The journal must be durable up to here before this push goes out (0: it is).
    pub durable_at: u64,
}

impl Job {
    /// True while a refused connection is still within the start-up grace period of 5.4.
    pub fn in_grace(&self, now: Instant) -> bool {
        now.duration_since(self.ready_at) < GRACE_PERIOD
    }
}

/// A snapshot of one user, for tests, tools (`bench populate`) and recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    pub alias: String,
    pub full_name: String,
    pub birth_date: String,
    pub last_id: u32,
    pub connected: bool,
    pub queue: Vec<Entry>,
}

/// A user as a snapshot writes it, borrowed from the registry under its lock.
#[derive(Debug)]
pub struct UserView<'a> {
    pub seq: u64,
    pub alias: &'a str,
    pub full_name: &'a str,
    pub birth_date: &'a str,
    pub last_id: u32,
    pub queue_head: u64,
    pub queue: &'a VecDeque<Entry>,
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(u: &'a User) -> UserView<'a> {
        UserView {
            seq: u.seq,
            alias: &u.alias,
            full_name: &u.full_name,
            birth_date: &u.birth_date,
            last_id: u.last_id,
            queue_head: u.queue_head,
            queue: &u.queue,
        }
    }
}
