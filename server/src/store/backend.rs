//! The store interface: every operation the handler and the deliverer need, with two implementations — the
//! in-memory [`Store`] (with its journal, `--data-dir`) and `cluster::RedisStore` (`--cluster`, the state in
//! Redis). The handler and the deliverer are generic over it, so neither knows which one it talks to
//! (docs/architecture.md, "The store interface").
//!
//! The contract both implementations keep (docs/protocol.md, "Semantics in brief"):
//! - each method is one atomic transition per user, and none waits on a lock while it talks to a peer;
//! - at most one [`Backend::Ticket`] per user exists at a time (one push in flight per listener), and dropping a
//!   ticket releases its claim on every path;
//! - a queue entry is removed only by [`Backend::delivered`] for the ticket that holds the claim.

use std::io;
use std::net::{IpAddr, SocketAddr};

use protocol::{ConnectStatus, DisconnectStatus, RegisterStatus, SendReply, UnregisterStatus, UsersReply};

use super::{Accepted, Delivered, Job, Store, Ticket};

/// The right to deliver one user's queue, as a backend hands it out.
pub trait Claim: Send + 'static {
    /// The user whose queue this claim delivers.
    fn alias(&self) -> &str;
    /// The first push, when the backend prepared it together with the claim.
    fn take_job(&mut self) -> Option<Job>;
}

/// The operations of docs/protocol.md 4.1–4.6 and of the delivery procedure (5.3–5.4). Statuses are the reply
/// codes; `from` is the request's address when the IP check is on (None: no check); a position is what
/// [`Backend::commit`] must make durable before a success is reported (None: nothing to wait for).
pub trait Backend: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// A claim on one user's deliveries; dropping it releases the claim.
    type Ticket: Claim;

    fn register(&self, full_name: &str, alias: &str, birth_date: &str) -> (RegisterStatus, Option<u64>);
    fn unregister(&self, alias: &str, from: Option<IpAddr>) -> (UnregisterStatus, Option<u64>);
    /// CONNECT: records the listener and returns the connection's epoch; pushes wait for `activate`.
    fn connect(&self, alias: &str, addr: SocketAddr) -> (ConnectStatus, u64);
    /// The listener address and epoch of a connected user.
    fn link_of(&self, alias: &str) -> Option<(SocketAddr, u64)>;
    /// CONNECT of a user whose session `epoch` was found dead: the new listener replaces it.
    fn take_over(&self, alias: &str, epoch: u64, addr: SocketAddr) -> (ConnectStatus, u64);
    /// The CONNECT reply is out: pushes may start; a ticket when this thread should flush the queue.
    fn activate(&self, alias: &str, epoch: u64) -> Option<Self::Ticket>;
    fn disconnect(&self, alias: &str, from: Option<IpAddr>) -> DisconnectStatus;
    fn send(
        &self,
        sender: &str,
        recipient: &str,
        text: &str,
        from: Option<IpAddr>,
    ) -> Result<Accepted<Self::Ticket>, SendReply>;
    fn connected_users_for(&self, requester: &str) -> UsersReply;
    /// Makes every change up to `position` durable; an error turns the request into its generic failure.
    fn commit(&self, position: Option<u64>) -> io::Result<()>;
    /// The next push for the holder of `ticket`; `None` ends the delivery and releases the claim.
    fn next_job(&self, ticket: &Self::Ticket) -> Option<Job>;
    /// `job` was pushed and read: remove it, queue its acknowledgement, and say what comes next.
    fn delivered(&self, ticket: &Self::Ticket, job: &Job) -> Delivered<Self::Ticket>;
    /// `job`'s push failed: the entry stays, the user is marked disconnected; true when the user reconnected
    /// meanwhile and the deliverer should go on.
    fn failed(&self, ticket: &Self::Ticket, job: &Job) -> bool;
}

impl Claim for Ticket {
    fn alias(&self) -> &str {
        &self.alias
    }

    fn take_job(&mut self) -> Option<Job> {
        Ticket::take_job(self)
    }
}

/// The in-memory store: every method is the inherent one of the same name.
impl Backend for Store {
    type Ticket = Ticket;

    fn register(&self, full_name: &str, alias: &str, birth_date: &str) -> (RegisterStatus, Option<u64>) {
        Store::register(self, full_name, alias, birth_date)
    }

    fn unregister(&self, alias: &str, from: Option<IpAddr>) -> (UnregisterStatus, Option<u64>) {
        Store::unregister(self, alias, from)
    }

    fn connect(&self, alias: &str, addr: SocketAddr) -> (ConnectStatus, u64) {
        Store::connect(self, alias, addr)
    }

    fn link_of(&self, alias: &str) -> Option<(SocketAddr, u64)> {
        Store::link_of(self, alias)
    }

    fn take_over(&self, alias: &str, epoch: u64, addr: SocketAddr) -> (ConnectStatus, u64) {
        Store::take_over(self, alias, epoch, addr)
    }

    fn activate(&self, alias: &str, epoch: u64) -> Option<Ticket> {
        Store::activate(self, alias, epoch)
    }

    fn disconnect(&self, alias: &str, from: Option<IpAddr>) -> DisconnectStatus {
        Store::disconnect(self, alias, from)
    }

    fn send(&self, sender: &str, recipient: &str, text: &str, from: Option<IpAddr>) -> Result<Accepted, SendReply> {
        Store::send(self, sender, recipient, text, from)
    }

    fn connected_users_for(&self, requester: &str) -> UsersReply {
        Store::connected_users_for(self, requester)
    }

    fn commit(&self, position: Option<u64>) -> io::Result<()> {
        Store::commit(self, position)
    }

    fn next_job(&self, ticket: &Ticket) -> Option<Job> {
        Store::next_job(self, ticket)
    }

    fn delivered(&self, ticket: &Ticket, job: &Job) -> Delivered {
        Store::delivered(self, ticket, job)
    }

    fn failed(&self, ticket: &Ticket, job: &Job) -> bool {
        Store::failed(self, ticket, job)
    }
}
