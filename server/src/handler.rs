//! One request: read it, apply it to the store, reply, then do the deliveries the request made possible.

use std::io::{BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use protocol::{ConnectStatus, Dialect, FieldReader, Reply, Request, RequestError};

use crate::delivery;
use crate::store::{Store, Ticket};

/// Write timeout for a reply: a client that does not read its one-line reply cannot hold a thread longer.
pub const REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// After replying, unread input is drained for at most this long, so that closing does not turn into a reset
/// that destroys the reply in flight (PROTOCOL.md 2.1).
pub const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);
/// At most this many unread bytes are drained after a reply.
pub const DRAIN_LIMIT: u64 = 64 * 1024;
/// Read buffer per connection: a whole ordinary request arrives in one read.
const READ_BUFFER: usize = 1024;

/// What every connection thread needs.
#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    pub dialect: Dialect,
    pub request_timeout: Duration,
    pub ip_check: bool,
}

/// Work that must wait until the reply has been written.
enum After {
    Nothing,
    /// A CONNECT succeeded: open the listener to pushes, then flush the queue.
    Activate {
        alias: String,
        epoch: u64,
    },
    /// A SEND made a connected recipient deliverable.
    Deliver(Ticket),
}

/// Serves one connection to its end. Never panics on anything the peer does.
pub fn handle(stream: TcpStream, ctx: &Context) {
    let peer = match stream.peer_addr() {
        Ok(addr) => addr,
        Err(_) => return, // already gone
    };
    // Failing to set a timeout only happens on a dead socket; reading will then fail too.
    let _ = stream.set_read_timeout(Some(ctx.request_timeout));
    let _ = stream.set_write_timeout(Some(REPLY_WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);

    let mut reader = FieldReader::new(BufReader::with_capacity(READ_BUFFER, &stream));
    let (reply, after) = match Request::read_from(&mut reader) {
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
    if let Err(e) = (&stream).write_all(&out) {
        log::debug!("reply to {peer} not written: {e}");
    }
    let _ = stream.shutdown(Shutdown::Write);

    match after {
        After::Nothing => {}
        After::Activate { alias, epoch } => {
            if let Some(ticket) = ctx.store.activate(&alias, epoch) {
                delivery::run(&ctx.store, ctx.dialect.push, ticket);
            }
        }
        After::Deliver(ticket) => delivery::run(&ctx.store, ctx.dialect.push, ticket),
    }
    let _ = stream.set_read_timeout(Some(DRAIN_TIMEOUT));
    drain(reader.into_inner());
}

/// Applies a well-formed request and decides the reply and what comes after it.
fn apply(request: Request, peer: SocketAddr, ctx: &Context) -> (Reply, After) {
    let store = &ctx.store;
    let peer_ip: IpAddr = peer.ip().to_canonical();
    match request {
        Request::Register { full_name, alias, birth_date } => {
            let (status, position) = store.register(&full_name, &alias, &birth_date);
            let status = durable(store, position, status, protocol::RegisterStatus::Fail);
            log::info!("s> REGISTER {alias} {}", ok(status.code()));
            (Reply::Register(status), After::Nothing)
        }
        Request::Unregister { alias } => {
            let (status, position) = store.unregister(&alias);
            let status = durable(store, position, status, protocol::UnregisterStatus::Fail);
            log::info!("s> UNREGISTER {alias} {}", ok(status.code()));
            (Reply::Unregister(status), After::Nothing)
        }
        Request::Connect { alias, port } => {
            let (status, epoch) = store.connect(&alias, SocketAddr::new(peer_ip, port));
            log::info!("s> CONNECT {alias} {}", ok(status.code()));
            let after = if status == ConnectStatus::Ok { After::Activate { alias, epoch } } else { After::Nothing };
            (Reply::Connect(status), after)
        }
        Request::Disconnect { alias } => {
            let status = store.disconnect(&alias, peer_ip, ctx.ip_check);
            log::info!("s> DISCONNECT {alias} {}", ok(status.code()));
            (Reply::Disconnect(status), After::Nothing)
        }
        Request::Send { sender, recipient, text } => match store.send(&sender, &recipient, &text) {
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
            let reply = store.connected_users_for(&alias);
            let code = Reply::ConnectedUsers(reply.clone()).code();
            log::info!("s> CONNECTEDUSERS {}", ok(code));
            (Reply::ConnectedUsers(reply), After::Nothing)
        }
    }
}

/// Makes a journalled change durable before its success is reported; a failed sync turns it into `fail`.
fn durable<S: Copy>(store: &Store, position: Option<u64>, status: S, fail: S) -> S {
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

/// Reads and discards what the peer still sends, until it closes, bounded in bytes and time.
fn drain<R: Read>(reader: BufReader<R>) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut rest = reader.take(DRAIN_LIMIT);
    let mut sink = [0u8; 512];
    while Instant::now() < deadline {
        match rest.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
