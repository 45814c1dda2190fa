//! The Redis side of a delivery claim ([`RedisTicket`]) and the encoding of queue entries in Redis lists.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{keys, RedisStore};
use crate::store::{Claim, Entry, Job};

/// The claim on one user's deliveries, held in Redis (`msg:{alias}:c`) with a fencing token. Dropping it
/// releases the claim if no script has; if even that fails (Redis gone), the claim lapses by its expiry.
pub struct RedisTicket {
    pub(super) alias: Arc<str>,
    /// Registration number of the user it was handed out for (a re-registered alias is another user).
    pub(super) reg: String,
    pub(super) token: String,
    pub(super) job: Option<Job>,
    pub(super) released: Cell<bool>,
    store: RedisStore,
}

impl std::fmt::Debug for RedisTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTicket").field("alias", &self.alias).field("token", &self.token).finish_non_exhaustive()
    }
}

impl Claim for RedisTicket {
    fn alias(&self) -> &str {
        &self.alias
    }

    fn take_job(&mut self) -> Option<Job> {
        self.job.take()
    }
}

impl Drop for RedisTicket {
    fn drop(&mut self) {
        if !self.released.get() {
            let [_, _, c, _] = keys(&self.alias);
            let s = &self.store.inner;
            let _ = s.pool.run(|con| s.scripts.release.key(c).arg(&self.token).invoke::<Vec<String>>(con));
        }
    }
}

pub(super) fn encode(entry: &Entry) -> String {
    match entry {
        Entry::Message { sender, id, text } => format!("M{sender}\0{id}\0{text}"),
        Entry::Ack { id } => format!("A{id}"),
    }
}

pub(super) fn decode(raw: &str) -> Option<Entry> {
    if let Some(rest) = raw.strip_prefix('M') {
        let mut parts = rest.splitn(3, '\0');
        let (sender, id, text) = (parts.next()?, parts.next()?.parse().ok()?, parts.next()?);
        return Some(Entry::Message { sender: sender.into(), id, text: text.into() });
    }
    Some(Entry::Ack { id: raw.strip_prefix('A')?.parse().ok()? })
}

/// A job from the script fields `ip, port, epoch, age_ms, head, entry`.
pub(super) fn parse_job(f: &[String]) -> Option<Job> {
    let [ip, port, epoch, age, head, entry] = f else { return None };
    let addr = SocketAddr::new(ip.parse().ok()?, port.parse().ok()?);
    let age = Duration::from_millis(age.parse().ok()?);
    let ready_at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
    let entry = decode(entry)?;
    Some(Job { addr, entry, epoch: epoch.parse().ok()?, ready_at, number: head.parse().ok()?, durable_at: 0 })
}

impl RedisStore {
    /// A claim with no push prepared (the sweeper's, to pass on acknowledgements left pending).
    pub(super) fn bare_ticket(&self, alias: &str, token: &str, reg: &str) -> RedisTicket {
        RedisTicket {
            alias: alias.into(),
            reg: reg.to_string(),
            token: token.to_string(),
            job: None,
            released: Cell::new(false),
            store: self.clone(),
        }
    }

    /// A ticket from the script fields `token, reg, <job>` (none: no claim was handed out).
    pub(super) fn parse_claim(&self, alias: &str, f: &[String]) -> Option<RedisTicket> {
        let [token, reg, job @ ..] = f else { return None };
        let mut ticket = self.bare_ticket(alias, token, reg);
        ticket.job = parse_job(job);
        if ticket.job.is_none() {
            log::error!("cluster: unreadable queue entry of {alias}; its delivery waits");
            return None; // dropping the ticket releases the claim
        }
        Some(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for entry in [
            Entry::Message { sender: "al{i}ce".into(), id: 7, text: "a\nb c".into() },
            Entry::Message { sender: "b".into(), id: u32::MAX, text: "".into() },
            Entry::Ack { id: 1 },
        ] {
            assert_eq!(decode(&encode(&entry)), Some(entry));
        }
        assert_eq!(decode("Mbad"), None);
        assert_eq!(decode("Ax"), None);
    }
}
