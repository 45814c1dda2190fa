//! Rebuilding the registry at start-up: users from a snapshot, then journal records applied one by one.
//!
//! Replay is strict: a record that does not fit the state built so far (a message from an unknown sender, a
//! `Pop` naming an entry that is not the head of the queue, ...) means the files are not what this server wrote,
//! and recovery stops with that reason rather than guess. Queue caps are not applied: the cap may have been
//! lowered since the entries were accepted, and dropping them would lose acknowledged messages.

use std::sync::Arc;

use super::user::{Entry, User};
use super::{Record, Store};

/// The entry number of a `Pop` read from a file of the first format, which did not name the entry: the head is
/// removed unchecked.
pub const POP_UNCHECKED: u64 = u64::MAX;

/// Why recovery could not apply a snapshot user or a journal record to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A user or REGISTER with an empty alias.
    #[error("a user with an empty alias")]
    EmptyAlias,
    /// A user or REGISTER of an alias that is already registered.
    #[error("a user registered twice")]
    AliasTaken,
    /// A record names a user that is not registered (`role`: sender, recipient, user).
    #[error("the {role} is not registered")]
    UnknownUser { role: &'static str },
    /// A `Pop` of an empty queue.
    #[error("a delivery from an empty queue")]
    EmptyQueue,
    /// A `Pop` names an entry that is not the head of the queue.
    #[error("a delivery of queue entry {named}, but the head of the queue is entry {head}")]
    WrongEntry { head: u64, named: u64 },
}

/// A user as a snapshot holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredUser {
    /// Its registration number (`None` in files of the first format: the order of the file is used).
    pub seq: Option<u64>,
    pub alias: String,
    pub full_name: String,
    pub birth_date: String,
    pub last_id: u32,
    /// Number of the first entry of `queue`.
    pub queue_head: u64,
    pub queue: Vec<Entry>,
}

impl Store {
    /// Recovery: adds a user from a snapshot. Nobody is connected after a restart.
    pub fn restore_user(&self, restored: RestoredUser) -> Result<(), ReplayError> {
        if restored.alias.is_empty() {
            return Err(ReplayError::EmptyAlias);
        }
        let mut reg = self.lock();
        if reg.find(&restored.alias).is_some() {
            return Err(ReplayError::AliasTaken);
        }
        let seq = restored.seq.unwrap_or(reg.next_seq);
        reg.next_seq = reg.next_seq.max(seq + 1);
        let alias = reg.shared_alias(&restored.alias);
        let mut user = User::new(seq, alias, &restored.full_name, &restored.birth_date);
        user.last_id = restored.last_id;
        user.queue_head = restored.queue_head;
        // A queued message shares its sender's string when the sender is already loaded.
        user.queue = restored
            .queue
            .into_iter()
            .map(|entry| match entry {
                Entry::Message { sender, id, text } => Entry::Message { sender: reg.shared_alias(&sender), id, text },
                ack => ack,
            })
            .collect();
        reg.insert(user);
        Ok(())
    }

    /// Recovery: applies one journalled change without journalling it again.
    pub fn replay(&self, record: &Record<'_>) -> Result<(), ReplayError> {
        let mut reg = self.lock();
        let unknown = |role| ReplayError::UnknownUser { role };
        match *record {
            Record::Register { full_name, alias, birth_date } => {
                if alias.is_empty() {
                    return Err(ReplayError::EmptyAlias);
                }
                if reg.find(alias).is_some() {
                    return Err(ReplayError::AliasTaken);
                }
                let seq = reg.next_seq;
                reg.next_seq += 1;
                reg.insert(User::new(seq, Arc::from(alias), full_name, birth_date));
            }
            Record::Unregister { alias } => {
                let key = reg.find(alias).ok_or(unknown("user"))?;
                reg.remove(key);
            }
            Record::Message { sender, recipient, id, text } => {
                let s = reg.find(sender).ok_or(unknown("sender"))?;
                let r = reg.find(recipient).ok_or(unknown("recipient"))?;
                reg.users[s].last_id = id;
                let sender = reg.users[s].alias.clone();
                reg.enqueue(r, Entry::Message { sender, id, text: text.into() });
            }
            Record::Ack { to, id } => {
                let key = reg.find(to).ok_or(unknown("user"))?;
                reg.enqueue(key, Entry::Ack { id });
            }
            Record::Pop { alias, number } => {
                let key = reg.find(alias).ok_or(unknown("user"))?;
                let head = reg.users[key].queue_head;
                if reg.users[key].queue.is_empty() {
                    return Err(ReplayError::EmptyQueue);
                }
                if number != head && number != POP_UNCHECKED {
                    return Err(ReplayError::WrongEntry { head, named: number });
                }
                reg.pop(key);
            }
        }
        Ok(())
    }
}
