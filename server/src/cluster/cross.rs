//! The steps that reach beyond one user's slot: passing acknowledgements on from the recipient's slot to the
//! senders' (see "Steps that span two slots" in the module documentation of `cluster`), and keeping the order of
//! connected users (`msg:online`) in step with presence.

use redis::{ConnectionLike, RedisResult};

use super::backend::failure;
use super::ticket::RedisTicket;
use super::{keys, RedisStore, ONLINE_KEY};

/// Pending acknowledgements one delivery step passes on at most (normally one; more only after a crash).
pub const MAX_ACKS_PER_STEP: usize = 16;

impl RedisStore {
    /// The user left: drop it from the CONNECTEDUSERS order, unless it has connected again meanwhile.
    pub(super) fn offline(&self, con: &mut dyn ConnectionLike, alias: &str) -> RedisResult<()> {
        let [u, ..] = keys(alias);
        redis::cmd("ZREM").arg(ONLINE_KEY).arg(alias).query::<()>(con)?;
        let (reg, epoch): (Option<u64>, Option<String>) =
            redis::cmd("HMGET").arg(&u).arg("reg").arg("epoch").query(con)?;
        if let (Some(reg), Some(_)) = (reg, epoch) {
            redis::cmd("ZADD").arg(ONLINE_KEY).arg(reg).arg(alias).query::<()>(con)?;
        }
        Ok(())
    }

    /// Passes on the acknowledgements `ticket`'s user owes (at most [`MAX_ACKS_PER_STEP`]); returns the tickets
    /// of senders that now need a deliverer, and whether one was dropped for a full queue.
    /// `owed`: the first one, as the delivered script read it ('' for none).
    pub(super) fn pass_acks(
        &self,
        con: &mut dyn ConnectionLike,
        ticket: &RedisTicket,
        mut owed: String,
    ) -> RedisResult<(Vec<RedisTicket>, bool)> {
        let s = &self.inner;
        let [_, _, _, p] = keys(&ticket.alias);
        let (mut tickets, mut dropped) = (Vec::new(), false);
        for _ in 0..MAX_ACKS_PER_STEP {
            if owed.is_empty() {
                break;
            }
            if let Some((sender, id)) = owed.split_once('\0') {
                let sk = keys(sender);
                let out: Vec<String> = s
                    .scripts
                    .ack
                    .key(&sk[..3])
                    .arg(format!("A{id}"))
                    .arg(s.max_queue)
                    .arg(s.claim_ttl_ms)
                    .invoke(con)?;
                dropped |= out.first().is_some_and(|r| r == "full");
                // The sender may be the recipient itself, whose claim this thread holds: then no ticket.
                tickets.extend(out.get(1..).and_then(|f| self.parse_claim(sender, f)));
            }
            let next: Vec<String> = s.scripts.ack_passed.key(&p).arg(&owed).invoke(con)?;
            owed = next.into_iter().next().unwrap_or_default();
        }
        Ok((tickets, dropped))
    }
}

impl RedisStore {
    /// Passes on what the holder of `ticket` (a bare claim) owes, `owed` first; the senders' tickets.
    pub(super) fn pass_owed(&self, ticket: &RedisTicket, owed: String) -> Vec<RedisTicket> {
        match self.inner.pool.run(|con| self.pass_acks(con, ticket, owed)) {
            Ok((tickets, dropped)) => {
                if dropped {
                    log::warn!("acknowledgement dropped: the sender's queue is full");
                }
                tickets
            }
            Err(e) => {
                failure("passing acknowledgements on", &e);
                Vec::new()
            }
        }
    }
}
