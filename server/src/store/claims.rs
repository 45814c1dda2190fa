//! Delivery claims: the [`Ticket`] that lets one thread push one user's queue, and the store's side of each
//! push (the next job, a success, a failure).

use std::cell::Cell;
use std::sync::Arc;

use super::registry::Registry;
use super::user::{Entry, Job};
use super::{Record, Store};

/// The right to deliver one user's queue, held by exactly one thread at a time. Dropping it releases the claim
/// if the store has not already done so, on every path, panics included.
pub struct Ticket {
    pub alias: Arc<str>,
    seq: u64,
    /// This claim's token: a stale ticket can never act on a later claim of the same user.
    token: u64,
    /// The first push, read under the same lock that handed out the ticket; `None`: ask [`Store::next_job`].
    job: Option<Job>,
    released: Cell<bool>,
    store: Store,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("alias", &self.alias).field("token", &self.token).finish_non_exhaustive()
    }
}

impl Ticket {
    /// Takes the prepared first push, if any.
    pub(crate) fn take_job(&mut self) -> Option<Job> {
        self.job.take()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.released.get() {
            let mut reg = self.store.lock();
            if let Some(key) = reg.find_seq(&self.alias, self.seq) {
                if reg.users[key].claim == self.token {
                    reg.users[key].claim = 0;
                }
            }
        }
    }
}

/// What became of a successful push (`T`: the backend's ticket).
#[derive(Debug)]
pub struct Delivered<T = Ticket> {
    /// The acknowledgement's recipient now needs a deliverer.
    pub ack_ticket: Option<T>,
    /// The sender of the pushed message was still registered but its queue was full: the ack was dropped.
    pub ack_dropped: bool,
    /// The next push for the same ticket, found under the same lock; `None`: the delivery is over.
    pub next: Option<Job>,
}

impl<T> Default for Delivered<T> {
    fn default() -> Self {
        Delivered { ack_ticket: None, ack_dropped: false, next: None }
    }
}

impl Store {
    pub(super) fn ticket(&self, reg: &mut Registry, key: usize) -> Option<Ticket> {
        let user = &reg.users[key];
        let ready = user.link.as_ref().is_some_and(|l| l.ready_at.is_some());
        if !ready || user.claim != 0 || user.queue.is_empty() {
            return None;
        }
        let token = reg.token();
        let user = &mut reg.users[key];
        user.claim = token;
        let (alias, seq, job) = (user.alias.clone(), user.seq, user.job());
        Some(Ticket { alias, seq, token, job, released: Cell::new(false), store: self.clone() })
    }

    /// The slab key of the user `ticket` holds the claim of; `None` when the user is gone or the claim is no
    /// longer this ticket's (then the ticket has nothing left to release).
    fn claimed(reg: &mut Registry, ticket: &Ticket) -> Option<usize> {
        let key = reg.find_seq(&ticket.alias, ticket.seq).filter(|&k| reg.users[k].claim == ticket.token);
        if key.is_none() {
            ticket.released.set(true);
        }
        key
    }

    /// The next push of a claimed user; none releases the claim.
    fn job_or_release(reg: &mut Registry, key: usize, ticket: &Ticket) -> Option<Job> {
        let job = reg.users[key].job();
        if job.is_none() {
            reg.users[key].claim = 0;
            ticket.released.set(true);
        }
        job
    }

    /// The next push for the holder of `ticket`, or `None` when its delivery is over (queue empty, user gone,
    /// disconnected or not yet ready). Returning `None` releases the claim.
    pub fn next_job(&self, ticket: &Ticket) -> Option<Job> {
        let mut reg = self.lock();
        let key = Store::claimed(&mut reg, ticket)?;
        Store::job_or_release(&mut reg, key, ticket)
    }

    /// Records a successful push of `job`: removes the head and, for a message, queues the acknowledgement to
    /// its sender (if still registered) and hands out the sender's ticket when the sender needs a deliverer.
    /// Also answers, under the same lock, the ticket's next push ([`Delivered::next`]).
    pub fn delivered(&self, ticket: &Ticket, job: &Job) -> Delivered {
        let mut reg = self.lock();
        let Some(key) = Store::claimed(&mut reg, ticket) else { return Delivered::default() };
        if reg.users[key].queue_head != job.number {
            return Delivered { next: Store::job_or_release(&mut reg, key, ticket), ..Delivered::default() };
        }
        if let Err(e) = self.append(&Record::Pop { alias: &ticket.alias, number: job.number }) {
            // The push happened: memory is the truth, and the journal rewrites itself from memory before it
            // acknowledges anything else (journal::FileJournal, "After a failure").
            log::error!("journal append failed: {e}");
        }
        reg.pop(key);
        let mut done = Delivered::default();
        if let Entry::Message { sender, id, .. } = &job.entry {
            // The sender may be the recipient itself, or gone (unregistered): then the acknowledgement is dropped.
            if let Some(s) = reg.find(sender) {
                if reg.users[s].queue.len() >= self.max_queue {
                    done.ack_dropped = true;
                } else {
                    if let Err(e) = self.append(&Record::Ack { to: sender, id: *id }) {
                        log::error!("journal append failed: {e}");
                    }
                    reg.enqueue(s, Entry::Ack { id: *id });
                    if s != key {
                        done.ack_ticket = self.ticket(&mut reg, s);
                    }
                }
            }
        }
        done.next = Store::job_or_release(&mut reg, key, ticket);
        done
    }

    /// Records a failed push: the entry stays at the head, the user is marked disconnected (unless it has
    /// reconnected since the job was planned), and the claim is released unless a new connection can be tried.
    /// Returns true when the deliverer should go on (the user reconnected meanwhile).
    pub fn failed(&self, ticket: &Ticket, job: &Job) -> bool {
        let mut reg = self.lock();
        let Some(key) = Store::claimed(&mut reg, ticket) else { return false };
        if reg.users[key].link.as_ref().is_some_and(|l| l.epoch == job.epoch) {
            reg.users[key].link = None;
            reg.set_online(key, false);
        }
        if reg.users[key].link.is_some() {
            return true;
        }
        reg.users[key].claim = 0;
        ticket.released.set(true);
        false
    }
}
