//! [`RedisStore`] as the store interface: each method is one or two scripts (see the module documentation of
//! `cluster` for which steps span two slots and why their order is safe). Any Redis error is logged and answered
//! with the operation's generic failure (docs/protocol.md 4.7); nothing Redis does can panic a thread.

use std::io;
use std::net::{IpAddr, SocketAddr};

use protocol::{ConnectStatus, DisconnectStatus, RegisterStatus, SendReply, UnregisterStatus, UsersReply};
use redis::{Script, ScriptInvocation};

use super::ticket::{encode, parse_job, RedisTicket};
use super::{keys, RedisStore, ONLINE_KEY, REG_KEY};
use crate::store::{Accepted, Backend, Delivered, Entry, Job};

/// Logs a Redis error of `op` (the request then gets its generic failure).
pub(super) fn failure(op: &str, e: &redis::RedisError) {
    log::error!("cluster: {op} failed on Redis: {e}");
}

/// The status a script's reply stands for: the one paired in `codes` with its first string, `fail` for any other
/// reply. A Redis error is logged as a failure of `op` and answered with `fail` too.
fn status_of<T: Copy>(op: &str, result: &redis::RedisResult<Vec<String>>, codes: &[(&str, T)], fail: T) -> T {
    match result {
        Ok(out) => {
            let first = out.first().map(String::as_str);
            codes.iter().find(|(code, _)| Some(*code) == first).map_or(fail, |&(_, status)| status)
        }
        Err(e) => {
            failure(op, e);
            fail
        }
    }
}

impl Backend for RedisStore {
    type Ticket = RedisTicket;

    fn register(&self, full_name: &str, alias: &str, birth_date: &str) -> (RegisterStatus, Option<u64>) {
        if alias.is_empty() {
            return (RegisterStatus::Fail, None);
        }
        let s = &self.inner;
        let result = s.pool.run(|con| {
            let reg: u64 = redis::cmd("INCR").arg(REG_KEY).query(con)?;
            let out: Vec<String> =
                s.scripts.register.key(&keys(alias)[..]).arg(full_name).arg(birth_date).arg(reg).invoke(con)?;
            Ok(out)
        });
        let codes = [("0", RegisterStatus::Ok), ("1", RegisterStatus::AliasInUse)];
        let status = status_of("REGISTER", &result, &codes, RegisterStatus::Fail);
        (status, None)
    }

    fn unregister(&self, alias: &str, from: Option<IpAddr>) -> (UnregisterStatus, Option<u64>) {
        let s = &self.inner;
        let origin = from.map(|ip| ip.to_string()).unwrap_or_default();
        let result = s.pool.run(|con| {
            let out: Vec<String> = s.scripts.unregister.key(&keys(alias)[..]).arg(&origin).invoke(con)?;
            if out.first().is_some_and(|r| r == "0") {
                self.offline(con, alias)?;
            }
            Ok(out)
        });
        let codes = [("0", UnregisterStatus::Ok), ("1", UnregisterStatus::NoSuchUser)];
        let status = status_of("UNREGISTER", &result, &codes, UnregisterStatus::Fail);
        (status, None)
    }

    fn connect(&self, alias: &str, addr: SocketAddr) -> (ConnectStatus, u64) {
        self.take_over_epoch(alias, None, addr)
    }

    fn link_of(&self, alias: &str) -> Option<(SocketAddr, u64)> {
        let [u, ..] = keys(alias);
        let result = self.inner.pool.run(|con| {
            redis::cmd("HMGET").arg(&u).arg("ip").arg("port").arg("epoch").query::<[Option<String>; 3]>(con)
        });
        match result {
            Ok([Some(ip), Some(port), Some(epoch)]) => {
                Some((SocketAddr::new(ip.parse().ok()?, port.parse().ok()?), epoch.parse().ok()?))
            }
            Ok(_) => None,
            Err(e) => {
                failure("CONNECT (reading the previous session)", &e);
                None
            }
        }
    }

    fn take_over(&self, alias: &str, epoch: u64, addr: SocketAddr) -> (ConnectStatus, u64) {
        self.take_over_epoch(alias, Some(epoch), addr)
    }

    fn activate(&self, alias: &str, epoch: u64) -> Option<RedisTicket> {
        let s = &self.inner;
        let result = s.pool.run(|con| {
            s.scripts.activate.key(&keys(alias)[..3]).arg(epoch).arg(s.claim_ttl_ms).invoke::<Option<Vec<String>>>(con)
        });
        match result {
            Ok(fields) => self.parse_claim(alias, &fields?),
            Err(e) => {
                failure("CONNECT (opening the listener to pushes)", &e);
                None
            }
        }
    }

    fn disconnect(&self, alias: &str, from: Option<IpAddr>) -> DisconnectStatus {
        let s = &self.inner;
        let origin = from.map(|ip| ip.to_string()).unwrap_or_default();
        let [u, ..] = keys(alias);
        let result = s.pool.run(|con| {
            let out: Vec<String> = s.scripts.disconnect.key(&u).arg(&origin).invoke(con)?;
            if out.first().is_some_and(|r| r == "0") {
                self.offline(con, alias)?;
            }
            Ok(out)
        });
        let codes =
            [("0", DisconnectStatus::Ok), ("1", DisconnectStatus::NoSuchUser), ("2", DisconnectStatus::NotConnected)];
        status_of("DISCONNECT", &result, &codes, DisconnectStatus::Fail)
    }

    fn send(
        &self,
        sender: &str,
        recipient: &str,
        text: &str,
        from: Option<IpAddr>,
    ) -> Result<Accepted<RedisTicket>, SendReply> {
        if text.len() > protocol::MAX_FIELD_LEN {
            return Err(SendReply::Fail);
        }
        let s = &self.inner;
        let origin = from.map(|ip| ip.to_string()).unwrap_or_default();
        let (rk, [su, ..]) = (keys(recipient), keys(sender));
        let result = s.pool.run(|con| {
            // A read first, so that a SEND refused for its recipient consumes no id.
            let (exists, len): (bool, usize) = s.scripts.peek.key(&rk[..2]).invoke(con)?;
            if !exists {
                return Ok(Err(SendReply::NoSuchUser));
            }
            let full = if len >= s.max_queue { "1" } else { "0" };
            // The sender's slot: the id is consumed here, before the message exists (see the module docs).
            let out: Vec<String> = s.scripts.next_id.key(&su).arg(&origin).arg(full).invoke(con)?;
            let id = match (out.first().map(String::as_str), out.get(1).and_then(|id| id.parse::<u32>().ok())) {
                (Some("0"), Some(id)) => id,
                (Some("1"), _) => return Ok(Err(SendReply::NoSuchUser)),
                _ => return Ok(Err(SendReply::Fail)),
            };
            let entry = encode(&Entry::Message { sender: sender.into(), id, text: text.into() });
            // The recipient's slot: queued under that id, and claimed for delivery when it is idle.
            let out: Vec<String> =
                s.scripts.enqueue.key(&rk[..3]).arg(entry).arg(s.max_queue).arg(s.claim_ttl_ms).invoke(con)?;
            Ok(match out.first().map(String::as_str) {
                Some("0") => Ok((id, out)),
                Some("1") => Err(SendReply::NoSuchUser),
                _ => Err(SendReply::Fail),
            })
        });
        match result {
            Ok(Ok((id, out))) => {
                let stored = out.get(1).is_some_and(|c| c == "0");
                let ticket = out.get(2..).and_then(|f| self.parse_claim(recipient, f));
                Ok(Accepted { id, ticket, stored, position: None })
            }
            Ok(Err(reply)) => Err(reply),
            Err(e) => {
                failure("SEND", &e);
                Err(SendReply::Fail)
            }
        }
    }

    fn connected_users_for(&self, requester: &str) -> UsersReply {
        let [u, ..] = keys(requester);
        let result = self.inner.pool.run(|con| {
            let (reg, epoch): (Option<String>, Option<String>) =
                redis::cmd("HMGET").arg(&u).arg("reg").arg("epoch").query(con)?;
            match (reg, epoch) {
                (None, _) => return Ok(Err(UsersReply::Fail)),
                (Some(_), None) => return Ok(Err(UsersReply::NotConnected)),
                _ => {}
            }
            let listed: Vec<String> = redis::cmd("ZRANGE").arg(ONLINE_KEY).arg(0).arg(-1).query(con)?;
            Ok(Ok(listed))
        });
        let listed = match result {
            Ok(Ok(listed)) => listed,
            Ok(Err(reply)) => return reply,
            Err(e) => {
                failure("CONNECTEDUSERS", &e);
                return UsersReply::Fail;
            }
        };
        if listed.is_empty() {
            return UsersReply::List(listed);
        }
        // Each entry is checked against its user's hash: one left behind by a dead node is not listed.
        let checks = listed.iter().map(|alias| redis::cmd("HEXISTS").arg(&keys(alias)[0]).arg("epoch").clone());
        match self.inner.pool.batch::<Vec<bool>>(checks.collect()) {
            Ok(online) => {
                UsersReply::List(listed.into_iter().zip(online).filter(|(_, on)| *on).map(|(a, _)| a).collect())
            }
            Err(e) => {
                failure("CONNECTEDUSERS", &e);
                UsersReply::Fail
            }
        }
    }

    fn commit(&self, _position: Option<u64>) -> io::Result<()> {
        // Every step is durable once Redis answered it (as far as its appendfsync allows: checked at start).
        Ok(())
    }

    fn next_job(&self, ticket: &RedisTicket) -> Option<Job> {
        let s = &self.inner;
        let result = s.pool.run(|con| {
            let out: Vec<String> =
                self.holder_call(&s.scripts.next_job, ticket, &keys(&ticket.alias)[..3]).invoke(con)?;
            Ok(out)
        });
        match result {
            Ok(out) if out.first().is_some_and(|r| r == "job") => {
                let job = parse_job(&out[1..]);
                if job.is_none() {
                    log::error!("cluster: unreadable queue entry of {}; its delivery waits", ticket.alias);
                }
                job
            }
            Ok(_) => {
                ticket.released.set(true);
                None
            }
            Err(e) => {
                failure("delivery", &e);
                None
            }
        }
    }

    fn delivered(&self, ticket: &RedisTicket, job: &Job) -> Delivered<RedisTicket> {
        let s = &self.inner;
        let owed = match &job.entry {
            Entry::Message { sender, id, .. } => format!("{sender}\0{id}"),
            Entry::Ack { .. } => String::new(),
        };
        let result = s.pool.run(|con| {
            let out: Vec<String> = self
                .holder_call(&s.scripts.delivered, ticket, &keys(&ticket.alias)[..])
                .arg(job.number)
                .arg(&owed)
                .invoke(con)?;
            if out.first().is_some_and(|r| r == "gone" || r == "released") {
                return Ok((out, Vec::new(), false));
            }
            // Still holding the claim: pass on what this user owes (this push's ack, and any a dead node left).
            let owed = out.last().cloned().unwrap_or_default();
            let (tickets, dropped) = self.pass_acks(con, ticket, owed)?;
            Ok((out, tickets, dropped))
        });
        match result {
            Ok((out, tickets, ack_dropped)) => {
                if out.first().is_some_and(|r| r == "gone" || r == "released") {
                    ticket.released.set(true);
                    return Delivered::default();
                }
                let next = match out.first().map(String::as_str) {
                    Some("job") => out.get(1..out.len().saturating_sub(1)).and_then(parse_job),
                    // The ack may have gone to this same user's queue: ask again, releasing when it is empty.
                    _ => self.next_job(ticket),
                };
                let ack_ticket = tickets.into_iter().next();
                Delivered { ack_ticket, ack_dropped, next }
            }
            Err(e) => {
                failure("delivery (recording a push)", &e);
                Delivered::default()
            }
        }
    }

    fn failed(&self, ticket: &RedisTicket, job: &Job) -> bool {
        let s = &self.inner;
        let result = s.pool.run(|con| {
            let out: Vec<String> =
                self.holder_call(&s.scripts.failed, ticket, &keys(&ticket.alias)[..3]).arg(job.epoch).invoke(con)?;
            if out.first().is_some_and(|r| r == "off") {
                self.offline(con, &ticket.alias)?;
            }
            Ok(out)
        });
        match result.as_deref().map(|o| o.first().map(String::as_str)) {
            Ok(Some("go")) => true,
            Ok(_) => {
                ticket.released.set(true);
                false
            }
            Err(e) => {
                failure("delivery (recording a failed push)", e);
                false
            }
        }
    }
}

impl RedisStore {
    /// A call of `script` by the holder of `ticket`: `keys`, then the claim (registration and token) and the
    /// claim's TTL; the caller adds the script's own arguments.
    fn holder_call<'a>(&self, script: &'a Script, ticket: &RedisTicket, keys: &[String]) -> ScriptInvocation<'a> {
        let mut call = script.prepare_invoke();
        call.key(keys).arg(&ticket.reg).arg(&ticket.token).arg(self.inner.claim_ttl_ms);
        call
    }

    /// CONNECT (`old` = None) or the take-over of the dead session `old`.
    fn take_over_epoch(&self, alias: &str, old: Option<u64>, addr: SocketAddr) -> (ConnectStatus, u64) {
        let s = &self.inner;
        let [u, ..] = keys(alias);
        let old = old.map(|e| e.to_string()).unwrap_or_default();
        let result = s.pool.run(|con| {
            let out: Vec<String> =
                s.scripts.connect.key(&u).arg(addr.ip().to_string()).arg(addr.port()).arg(&old).invoke(con)?;
            if let (Some("0"), Some(reg)) = (out.first().map(String::as_str), out.get(2)) {
                redis::cmd("ZADD").arg(ONLINE_KEY).arg(reg).arg(alias).query::<()>(con)?;
            }
            Ok(out)
        });
        match result.as_deref() {
            Ok([ok, epoch, ..]) if ok == "0" => match epoch.parse() {
                Ok(epoch) => (ConnectStatus::Ok, epoch),
                Err(_) => (ConnectStatus::Fail, 0),
            },
            Ok([code, ..]) if code == "1" => (ConnectStatus::NoSuchUser, 0),
            Ok([code, ..]) if code == "2" => (ConnectStatus::AlreadyConnected, 0),
            Ok(_) => (ConnectStatus::Fail, 0),
            Err(e) => {
                failure("CONNECT", e);
                (ConnectStatus::Fail, 0)
            }
        }
    }
}
