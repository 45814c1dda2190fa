//! One request: read it, apply it to the store, reply, then do the deliveries the request made possible.

use std::io::{BufReader, Cursor, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use protocol::request::Invalid;
use protocol::{ConnectStatus, Dialect, FieldError, FieldReader, Op, Reply, Request, RequestError};
use protocol::{MAX_FIELD_LEN, MAX_REQUEST_LEN};

use crate::admission::Permit;
use crate::deadline::DeadlineReader;
use crate::delivery;
use crate::net::{drain, DRAIN_TIMEOUT, REPLY_WRITE_TIMEOUT, UNBLOCKED_WRITE};
use crate::store::{Backend, Store};

/// Read buffer per connection: a whole ordinary request arrives in one read.
const READ_BUFFER: usize = 1024;
/// How long the first field of a REGISTER may stand alone before, with `accept_short_register`, it is taken as a
/// one-field REGISTER (docs/protocol.md A.3): the client that sends one waits for the reply, while every other client
/// sends its next field at once.
pub const SHORT_REGISTER_WAIT: Duration = Duration::from_millis(250);

/// What every connection thread needs (`B`: the store interface's implementation).
#[derive(Debug, Clone)]
pub struct Context<B: Backend = Store> {
    pub store: B,
    pub dialect: Dialect,
    pub request_timeout: Duration,
    /// Whole-request deadline, counted from accept.
    pub request_deadline: Duration,
    pub ip_check: bool,
    /// Accept the one-field REGISTER of A.3.
    pub accept_short_register: bool,
    /// Users waiting for a deliverer.
    pub waiting: delivery::Waiting<B::Ticket>,
}

/// Work that must wait until the reply has been written.
enum After<T> {
    Nothing,
    /// A CONNECT succeeded: open the listener to pushes, then flush the queue.
    Activate {
        alias: String,
        epoch: u64,
    },
    /// A SEND made a connected recipient deliverable.
    Deliver(T),
}

/// Serves one connection to its end. Never panics on anything the peer does.
///
/// `permit` is the connection's slot ([`crate::admission`]): it is marked complete once the whole request has
/// been read, and given back once the reply is written and the stream closed, before any delivery, which takes
/// a delivery slot instead ([`Permit::into_delivery`]).
pub fn handle<B: Backend>(stream: TcpStream, ctx: &Context<B>, mut permit: Permit) {
    let peer = match stream.peer_addr() {
        Ok(addr) => addr,
        Err(_) => return, // already gone
    };
    // Reads end at the idle timeout and at the whole-request deadline, whichever comes first (the reader sets the
    // socket timeout). No `set_nodelay`: the reply is one write followed by a half-close, and the FIN pushes out
    // anything Nagle would hold back.
    let deadline = permit.accepted() + ctx.request_deadline;
    let timed = DeadlineReader::new(&stream, deadline, ctx.request_timeout);
    let mut reader = FieldReader::new(BufReader::with_capacity(READ_BUFFER, timed));
    let request = read_request(&mut reader, ctx);
    reader.get_mut().get_mut().disarm();
    // A request that is complete (answered, even with a failure) can no longer be shed; one that was shed in the
    // meantime is closed without reply (docs/protocol.md 2.5).
    if matches!(request, Ok(_) | Err(RequestError::Invalid { .. })) && !permit.request_complete() {
        log::debug!("request from {peer} completed after it was shed: closed without reply");
        return;
    }
    let (reply, after) = match request {
        Ok(request) => apply(request, peer, ctx),
        Err(RequestError::Empty) => return,
        Err(RequestError::UnknownOp(name)) => {
            log::warn!("unknown operation {name:?} from {peer}: connection closed");
            return;
        }
        Err(RequestError::Incomplete { op, cause }) => {
            log::debug!(
                "incomplete {} request from {peer} ({cause}): closed without reply",
                op.map_or("?", |o| o.name())
            );
            return;
        }
        Err(RequestError::Invalid { op, reason }) => {
            log::info!("s> {op} FAIL ({reason})");
            (Reply::generic_failure(op), After::Nothing)
        }
    };

    let mut out = Vec::with_capacity(32);
    reply.encode(ctx.dialect, &mut out);
    // A reply that fits the empty send buffer of a fresh socket is written without blocking whatever the peer
    // does, so only a long one (a big CONNECTEDUSERS list) needs the write timeout, and its syscall.
    if out.len() > UNBLOCKED_WRITE {
        let _ = stream.set_write_timeout(Some(REPLY_WRITE_TIMEOUT));
    }
    if let Err(e) = (&stream).write_all(&out) {
        log::debug!("reply to {peer} not written: {e}");
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(DRAIN_TIMEOUT));
    drain(reader.into_inner());
    drop(stream);

    // The connection is over: its slot goes to the next client, and deliveries count against their own cap.
    let ticket = match after {
        After::Nothing => None,
        After::Activate { alias, epoch } => ctx.store.activate(&alias, epoch),
        After::Deliver(ticket) => Some(ticket),
    };
    let Some(ticket) = ticket else { return };
    match permit.try_into_delivery() {
        Ok(slot) => {
            delivery::run(&ctx.store, ctx.dialect.push, Some(ticket), &ctx.waiting);
            let admission = slot.admission().clone();
            drop(slot);
            help_deliver(ctx, &admission);
        }
        Err(permit) => {
            // Every delivery slot is busy: the claim waits for the next free deliverer, and this thread goes back
            // to serving requests.
            ctx.waiting.put(ticket);
            let admission = permit.admission().clone();
            drop(permit);
            help_deliver(ctx, &admission);
        }
    }
}

/// Serves the claims waiting for a deliverer while a delivery slot is free. Whoever leaves a claim waiting, or
/// gives a delivery slot back, looks again afterwards: so a claim is never left waiting with nobody to take it.
fn help_deliver<B: Backend>(ctx: &Context<B>, admission: &std::sync::Arc<crate::admission::Admission>) {
    while !ctx.waiting.is_empty() {
        let Some(slot) = crate::admission::DeliverySlot::try_take(admission) else { return };
        delivery::run(&ctx.store, ctx.dialect.push, None, &ctx.waiting);
        drop(slot);
    }
}

/// Applies a well-formed request and decides the reply and what comes after it.
fn apply<B: Backend>(request: Request, peer: SocketAddr, ctx: &Context<B>) -> (Reply, After<B::Ticket>) {
    let store = &ctx.store;
    let peer_ip: IpAddr = peer.ip().to_canonical();
    // The address requests acting for a connected user must come from (docs/protocol.md 4.2, 4.4, 4.5).
    let origin = ctx.ip_check.then_some(peer_ip);
    match request {
        Request::Register { full_name, alias, birth_date } => {
            let (status, position) = store.register(&full_name, &alias, &birth_date);
            let status = durable(store, position, status, protocol::RegisterStatus::Fail);
            log::info!("s> REGISTER {alias} {}", ok(status.code()));
            (Reply::Register(status), After::Nothing)
        }
        Request::Unregister { alias } => {
            let (status, position) = store.unregister(&alias, origin);
            let status = durable(store, position, status, protocol::UnregisterStatus::Fail);
            log::info!("s> UNREGISTER {alias} {}", ok(status.code()));
            (Reply::Unregister(status), After::Nothing)
        }
        Request::Connect { alias, port } => {
            let (status, epoch) = connect(store, &alias, SocketAddr::new(peer_ip, port));
            log::info!("s> CONNECT {alias} {}", ok(status.code()));
            let after = if status == ConnectStatus::Ok { After::Activate { alias, epoch } } else { After::Nothing };
            (Reply::Connect(status), after)
        }
        Request::Disconnect { alias } => {
            let status = store.disconnect(&alias, origin);
            log::info!("s> DISCONNECT {alias} {}", ok(status.code()));
            (Reply::Disconnect(status), After::Nothing)
        }
        Request::Send { sender, recipient, text } => match store.send(&sender, &recipient, &text, origin) {
            Ok(accepted) => {
                if let Err(e) = store.commit(accepted.position) {
                    log::error!("journal sync failed, SEND from {sender} refused: {e}");
                    return (Reply::Send(protocol::SendReply::Fail), After::Nothing);
                }
                if accepted.stored {
                    log::info!("s> MESSAGE {} FROM {sender} TO {recipient} STORED", accepted.id);
                }
                let after = accepted.ticket.map_or(After::Nothing, After::Deliver);
                (Reply::Send(protocol::SendReply::Accepted(accepted.id)), after)
            }
            Err(reply) => {
                log::info!("s> SEND FROM {sender} TO {recipient} FAIL");
                (Reply::Send(reply), After::Nothing)
            }
        },
        Request::ConnectedUsers { alias } => {
            let reply = Reply::ConnectedUsers(store.connected_users_for(&alias));
            log::info!("s> CONNECTEDUSERS {}", ok(reply.code()));
            (reply, After::Nothing)
        }
    }
}

/// CONNECT (4.3). A user the registry believes connected may have crashed without DISCONNECT: when its recorded
/// listener no longer accepts connections, that session is dead and the new one takes its place.
fn connect<B: Backend>(store: &B, alias: &str, addr: SocketAddr) -> (ConnectStatus, u64) {
    let (status, epoch) = store.connect(alias, addr);
    if status != ConnectStatus::AlreadyConnected {
        return (status, epoch);
    }
    let Some((old, old_epoch)) = store.link_of(alias) else { return store.connect(alias, addr) };
    if delivery::listener_alive(old) {
        return (status, epoch);
    }
    log::info!("s> CONNECT {alias}: the listener of the previous session ({old}) is gone; replacing it");
    store.take_over(alias, old_epoch, addr)
}

/// Makes a journalled change durable before its success is reported; a failed sync turns it into `fail`.
fn durable<B: Backend, S: Copy>(store: &B, position: Option<u64>, status: S, fail: S) -> S {
    match store.commit(position) {
        Ok(()) => status,
        Err(e) => {
            log::error!("journal sync failed: {e}");
            fail
        }
    }
}

fn ok(code: u8) -> &'static str {
    if code == 0 {
        "OK"
    } else {
        "FAIL"
    }
}

/// Reads one request; with `accept_short_register`, a REGISTER whose first field is followed by nothing within
/// [`SHORT_REGISTER_WAIT`] registers that field as the alias, with full name = alias and an empty date (A.3).
fn read_request<B: Backend>(
    reader: &mut FieldReader<BufReader<DeadlineReader>>,
    ctx: &Context<B>,
) -> Result<Request, RequestError> {
    let op = Request::read_op(reader)?;
    if op != Op::Register || !ctx.accept_short_register {
        return Request::read_fields(op, reader);
    }
    let incomplete = |cause| RequestError::Incomplete { op: Some(op), cause };
    let invalid = |reason| RequestError::Invalid { op, reason };
    let first = match reader.read_field(MAX_FIELD_LEN) {
        Ok(raw) => Some(raw),
        Err(FieldError::TooLong) => None,
        Err(cause) => return Err(incomplete(cause)),
    };
    // Only this wait is shortened; the rest of the request gets the ordinary idle timeout again.
    reader.get_mut().get_mut().set_idle(SHORT_REGISTER_WAIT);
    let next = reader.peek_byte();
    reader.get_mut().get_mut().set_idle(ctx.request_timeout);
    match (next, first) {
        (Err(FieldError::Timeout), Some(raw)) => {
            let alias = String::from_utf8(raw).map_err(|_| invalid(Invalid::NotUtf8))?;
            if alias.is_empty() {
                return Err(invalid(Invalid::EmptyAlias));
            }
            log::debug!("one-field REGISTER of {alias:?}: full name = alias, empty date");
            Ok(Request::Register { full_name: alias.clone(), alias, birth_date: String::new() })
        }
        (Err(FieldError::Timeout), None) => Err(invalid(Invalid::FieldTooLong)),
        (Err(cause), _) => Err(incomplete(cause)),
        // A peer that closes after one field is a truncated request, as without the option (2.4).
        (Ok(None), _) => Err(incomplete(FieldError::Eof)),
        (Ok(Some(_)), Some(mut head)) => {
            // An ordinary REGISTER: decode it as usual, with the first field put back in front of the rest.
            head.push(0);
            let cap = MAX_REQUEST_LEN.saturating_sub(reader.consumed()) + head.len();
            let mut whole = FieldReader::with_cap(Cursor::new(head).chain(reader.get_mut()), cap);
            Request::read_fields(op, &mut whole)
        }
        (Ok(Some(_)), None) => {
            // An over-long full name: the failure is answered once the other two fields have arrived.
            for _ in 0..2 {
                match reader.read_field(MAX_FIELD_LEN) {
                    Ok(_) | Err(FieldError::TooLong) => {}
                    Err(cause) => return Err(incomplete(cause)),
                }
            }
            Err(invalid(Invalid::FieldTooLong))
        }
    }
}
