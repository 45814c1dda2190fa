//! The data behind the registry lock: users in a slab, a hash index by alias, the connected users in
//! registration order, the snapshot being written, and the undo log of changes not yet durable.
//!
//! Every lookup is a hash probe and every insertion or removal touches a constant number of places, so the cost of
//! a request does not grow with the number of registered users; listing the connected users walks only them
//! (docs/architecture.md, "The registry").

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use slab::Slab;

use super::user::{Entry, User, UserView};

/// Receives the users of a snapshot as they were when the snapshot started (see [`Registry::begin_capture`]).
/// Called with the registry lock held: it may only encode into memory.
pub trait SnapshotSink: Send + Sync {
    fn user(&self, user: &UserView<'_>);
}

/// A snapshot being written: every user that existed when it started is handed to `sink` exactly once, in the
/// state it had then — by the compactor walking the slab a chunk at a time, or, for a user about to change
/// before the walk reached it, by the change itself (copy on write).
struct Capture {
    round: u64,
    /// Next slab key the walk looks at.
    cursor: usize,
    /// Slab keys at or beyond this did not exist when the snapshot started.
    end: usize,
    sink: Arc<dyn SnapshotSink>,
}

/// A journalled change not yet known to be durable, and how to take it back if its sync fails.
#[derive(Debug)]
pub(crate) enum Undo {
    Register { alias: Arc<str>, seq: u64 },
    Unregister { user: Box<User> },
    Message { recipient: Arc<str>, seq: u64, number: u64 },
}

/// Steps counted by the registry, for the test that a request's cost does not grow with the number of users.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    /// Users looked at by lookups and walks.
    pub visited: u64,
}

pub(crate) struct Registry {
    pub users: Slab<User>,
    index: HashMap<Arc<str>, usize>,
    /// Connected users by registration number: CONNECTEDUSERS lists them in that order.
    online: BTreeMap<u64, usize>,
    pub next_seq: u64,
    next_token: u64,
    /// Bytes a snapshot of the live state would take, kept up to date by every change; shared with the journal,
    /// which compares it with the size of its files.
    live: Arc<AtomicU64>,
    capture: Option<Capture>,
    rounds: u64,
    undo: VecDeque<(u64, Undo)>,
    pub steps: Steps,
}

impl Registry {
    pub fn new(live: Arc<AtomicU64>) -> Registry {
        Registry {
            users: Slab::new(),
            index: HashMap::new(),
            online: BTreeMap::new(),
            next_seq: 1,
            next_token: 1,
            live,
            capture: None,
            rounds: 0,
            undo: VecDeque::new(),
            steps: Steps::default(),
        }
    }

    /// A fresh number for a connection epoch or a delivery claim.
    pub fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    pub fn find(&mut self, alias: &str) -> Option<usize> {
        self.steps.visited += 1;
        self.index.get(alias).copied()
    }

    /// The slab key of the user registered as `seq`, if it is still registered under that registration.
    pub fn find_seq(&mut self, alias: &str, seq: u64) -> Option<usize> {
        self.find(alias).filter(|&k| self.users[k].seq == seq)
    }

    /// The alias as the registry holds it, so that a queued message shares its sender's string.
    pub fn shared_alias(&self, alias: &str) -> Arc<str> {
        self.index.get_key_value(alias).map_or_else(|| Arc::from(alias), |(k, _)| k.clone())
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Adds a user; it is not part of a snapshot already under way (it did not exist when it started).
    pub fn insert(&mut self, mut user: User) -> usize {
        user.captured = self.rounds;
        self.live.fetch_add(user.snapshot_bytes(), Ordering::Relaxed);
        let alias = user.alias.clone();
        let connected = user.link.is_some().then_some(user.seq);
        let key = self.users.insert(user);
        if let Some(seq) = connected {
            self.online.insert(seq, key);
        }
        self.index.insert(alias, key);
        key
    }

    /// Removes a user (written out first if a snapshot needs its earlier state).
    pub fn remove(&mut self, key: usize) -> User {
        self.touch(key);
        let user = self.users.remove(key);
        self.index.remove(&user.alias);
        self.online.remove(&user.seq);
        self.live.fetch_sub(user.snapshot_bytes(), Ordering::Relaxed);
        user
    }

    /// Mutable access for a change of durable state: if a snapshot is under way and has not written this user
    /// yet, the user is written out first, as it was.
    pub fn touch(&mut self, key: usize) -> &mut User {
        let user = &mut self.users[key];
        if let Some(c) = &self.capture {
            if user.captured < c.round {
                c.sink.user(&UserView::from(&*user));
                user.captured = c.round;
            }
        }
        user
    }

    /// Appends to a user's queue, keeping the live size.
    pub fn enqueue(&mut self, key: usize, entry: Entry) {
        self.live.fetch_add(entry.snapshot_bytes(), Ordering::Relaxed);
        self.touch(key).enqueue(entry);
    }

    /// Removes the head of a user's queue, keeping the live size.
    pub fn pop(&mut self, key: usize) -> Option<Entry> {
        let user = self.touch(key);
        let entry = user.queue.pop_front()?;
        user.queue_head += 1;
        if user.queue.is_empty() {
            // A drained backlog gives its memory back.
            user.queue.shrink_to(0);
        }
        self.live.fetch_sub(entry.snapshot_bytes(), Ordering::Relaxed);
        Some(entry)
    }

    /// Records whether a user is connected, for CONNECTEDUSERS.
    pub fn set_online(&mut self, key: usize, online: bool) {
        let seq = self.users[key].seq;
        if online {
            self.online.insert(seq, key);
        } else {
            self.online.remove(&seq);
        }
    }

    /// The connected users, in registration order.
    pub fn online(&mut self) -> impl Iterator<Item = &User> + '_ {
        self.steps.visited += self.online.len() as u64;
        self.online.values().map(|&k| &self.users[k])
    }

    /// Remembers how to take back a change written to the journal at `position`, until it is durable.
    pub fn log_undo(&mut self, position: u64, durable: u64, undo: Undo) {
        while self.undo.front().is_some_and(|(p, _)| *p <= durable) {
            self.undo.pop_front();
        }
        self.undo.push_back((position, undo));
    }

    /// Takes back, newest first, every change written after `durable`. Returns how many.
    pub fn roll_back(&mut self, durable: u64) -> usize {
        let mut undone = 0;
        while let Some((position, _)) = self.undo.back() {
            if *position <= durable {
                break;
            }
            let (_, undo) = self.undo.pop_back().expect("just looked");
            undone += 1;
            match undo {
                Undo::Register { alias, seq } => {
                    if let Some(key) = self.find_seq(&alias, seq) {
                        self.remove(key);
                    }
                }
                Undo::Unregister { mut user } => {
                    user.claim = 0;
                    if !self.index.contains_key(&user.alias) {
                        self.insert(*user);
                    }
                }
                Undo::Message { recipient, seq, number } => {
                    if let Some(key) = self.find_seq(&recipient, seq) {
                        let user = self.touch(key);
                        let Some(index) = number.checked_sub(user.queue_head) else { continue };
                        if let Some(entry) = user.queue.remove(index as usize) {
                            self.live.fetch_sub(entry.snapshot_bytes(), Ordering::Relaxed);
                        }
                        // What is left was queued by durable changes.
                        self.users[key].queue_pos = 0;
                    }
                }
            }
        }
        // Entries behind a removed one changed number: the journal is rewritten from memory before anything
        // else is written (see journal::FileJournal, "After a failure").
        undone
    }

    /// Starts a snapshot handing every user that exists now to `sink`, exactly once, as it is now.
    pub fn begin_capture(&mut self, sink: Arc<dyn SnapshotSink>) {
        self.rounds += 1;
        let end = self.users.capacity();
        self.capture = Some(Capture { round: self.rounds, cursor: 0, end, sink });
    }

    /// Writes out up to `chunk` users the snapshot has not seen yet. Returns true when every user is written; the
    /// capture is then over.
    pub fn capture_step(&mut self, chunk: usize) -> bool {
        let Some(c) = &mut self.capture else { return true };
        let mut done = 0;
        while c.cursor < c.end && done < chunk {
            if let Some(user) = self.users.get_mut(c.cursor) {
                if user.captured < c.round {
                    c.sink.user(&UserView::from(&*user));
                    user.captured = c.round;
                    done += 1;
                }
            }
            c.cursor += 1;
        }
        if c.cursor >= c.end {
            self.capture = None;
            return true;
        }
        false
    }

    /// Abandons a snapshot under way.
    pub fn abort_capture(&mut self) {
        self.capture = None;
    }
}
