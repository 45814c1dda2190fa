//! Ordered pushes to listeners (docs/protocol.md 5.3–5.5).
//!
//! A deliverer holds a user's [`Ticket`] (the store hands out at most one per user), takes the head of the
//! queue without removing it, pushes it with the lock released, and only then tells the store whether it went
//! out. A successful message push queues an acknowledgement for its sender, whose delivery this same thread then
//! takes on. The work list is bounded by what the queues hold, and each queue is capped.
//!
//! A push counts as delivered only when the listener has read it: after writing, the server half-closes and
//! waits (at most [`PUSH_CONFIRM_TIMEOUT`]) for the listener's orderly close. A reset or a timeout means not
//! delivered: the entry stays at the head, no acknowledgement is sent, and it goes out again at the next CONNECT
//! (at least once; docs/protocol.md, "Delivered means read").

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use protocol::dialect::PushForm;
use protocol::push;

use crate::net;
use crate::store::{Backend, Claim, Entry, GRACE_RETRY};

/// Connect timeout for one push (5.3).
pub const PUSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Write timeout for one push (5.3).
pub const PUSH_WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the listener has, after the push is written, to read it and close its side.
pub const PUSH_CONFIRM_TIMEOUT: Duration = Duration::from_secs(3);
/// Bytes a listener may send back before its close; more is not a listener of this protocol.
pub const PUSH_CONFIRM_LIMIT: u64 = 4096;
/// Failed journal syncs a deliverer tolerates before it lets the claim go (the queue is delivered at the next
/// SEND or CONNECT).
const MAX_REFUSED_SYNCS: u32 = 3;
/// Connect timeout of the probe that tells whether a recorded listener is still there (a CONNECT of a user the
/// server believes connected, docs/protocol.md 4.3).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Pushes one user gets before its deliverer serves another user who is waiting: a busy recipient never holds up
/// another user's pushes for longer than this many round trips.
pub const TURN: usize = 16;

/// Users waiting for a deliverer (their claims), served in turn by every thread that delivers.
///
/// An acknowledgement makes its sender deliverable while another user's queue is being pushed; instead of the
/// pushing thread keeping that claim until its own queue is empty (which, under steady traffic, may be never),
/// the claim waits here and the next free deliverer takes it. A deliverer only stops when its own work is done
/// and nobody is waiting, and only deliverers put claims here, so no claim is ever left behind.
#[derive(Debug, Clone)]
pub struct Waiting<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
}

impl<T> Default for Waiting<T> {
    fn default() -> Waiting<T> {
        let (tx, rx) = unbounded();
        Waiting { tx, rx }
    }
}

impl<T: Claim> Waiting<T> {
    /// Whether no claim waits.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Leaves a claim for the next free deliverer.
    pub fn put(&self, mut ticket: T) {
        // A prepared job is only as fresh as the lock it was read under: a waiting claim reads its next one anew.
        ticket.take_job();
        // Both ends live in `self`: the channel cannot be closed.
        let _ = self.tx.send(ticket);
    }
}

/// How a turn ended.
enum Turn<T> {
    /// The user's queue is done (or it went offline) and its claim is released.
    Done,
    /// The turn is over but the user has more to push.
    More,
    /// Done, and the last push made its sender deliverable: serve that claim next, with its prepared job.
    Next(T),
}

/// Delivers everything that `first` (and the acknowledgements it causes) makes deliverable, taking turns with
/// the other users waiting in `waiting`, until nobody waits.
pub fn run<B: Backend>(store: &B, form: PushForm, first: Option<B::Ticket>, waiting: &Waiting<B::Ticket>) {
    let mut current = first;
    while let Some(mut ticket) = current.take().or_else(|| waiting.rx.try_recv().ok()) {
        current = match serve_turn(store, form, &mut ticket, waiting) {
            Turn::Done => None,
            Turn::Next(ack) => Some(ack),
            Turn::More if waiting.rx.is_empty() => Some(ticket),
            Turn::More => {
                waiting.put(ticket);
                None
            }
        };
    }
}

/// Pushes up to [`TURN`] entries of one user's queue. Each step takes the registry lock once: the first job comes
/// with the ticket, and every successful push's bookkeeping answers the next job under the same lock.
fn serve_turn<B: Backend>(
    store: &B,
    form: PushForm,
    ticket: &mut B::Ticket,
    waiting: &Waiting<B::Ticket>,
) -> Turn<B::Ticket> {
    let mut buf = Vec::with_capacity(64);
    let mut next = ticket.take_job().or_else(|| store.next_job(ticket));
    let (mut pushes, mut refused) = (0, 0);
    while let Some(job) = next {
        if pushes == TURN {
            return Turn::More;
        }
        pushes += 1;
        // A message whose SEND is not yet durable could still be refused: never push it before. A failed sync
        // takes such messages back, so the next job is durable; the count only guards against a loop.
        if store.commit((job.durable_at > 0).then_some(job.durable_at)).is_err() {
            refused += 1;
            if refused > MAX_REFUSED_SYNCS {
                return Turn::Done;
            }
            next = store.next_job(ticket);
            continue;
        }
        buf.clear();
        match &job.entry {
            Entry::Message { sender, id, text } => push::encode_message(form, sender, *id, text, &mut buf),
            Entry::Ack { id } => push::encode_ack(*id, &mut buf),
        }
        next = match push(job.addr, &buf) {
            Ok(()) => {
                let done = store.delivered(ticket, &job);
                log_success(ticket.alias(), &job.entry);
                if done.ack_dropped {
                    log::warn!("acknowledgement dropped: the sender's queue is full");
                }
                match (done.ack_ticket, &done.next) {
                    (Some(ack), None) if waiting.rx.is_empty() => return Turn::Next(ack),
                    (Some(ack), _) => waiting.put(ack),
                    (None, _) => {}
                }
                done.next
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && job.in_grace(Instant::now()) => {
                // The client may bind its listener before CONNECT but accept only after reading the reply. Others
                // waiting are served meanwhile; alone, this thread waits for the retry.
                if !waiting.rx.is_empty() {
                    return Turn::More;
                }
                thread::sleep(GRACE_RETRY);
                store.next_job(ticket)
            }
            Err(e) => {
                log::info!("s> push to {} at {} failed ({e}): user marked disconnected", ticket.alias(), job.addr);
                if !store.failed(ticket, &job) {
                    return Turn::Done;
                }
                store.next_job(ticket)
            }
        };
    }
    Turn::Done
}

fn log_success(recipient: &str, entry: &Entry) {
    match entry {
        Entry::Message { sender, id, .. } => log::info!("s> SEND MESSAGE {id} FROM {sender} TO {recipient}"),
        Entry::Ack { id } => log::debug!("s> SEND MESS ACK {id} TO {recipient}"),
    }
}

/// One push: connect, write everything at once, half-close, then wait for the listener's orderly close.
///
/// A push is at most `MAX_PUSH_LEN` (1 KiB), which the empty send buffer of a new connection always takes: the
/// write cannot block, so the write timeout is only set for a longer one.
fn push(addr: SocketAddr, bytes: &[u8]) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, PUSH_CONNECT_TIMEOUT)?;
    if bytes.len() > net::UNBLOCKED_WRITE {
        stream.set_write_timeout(Some(PUSH_WRITE_TIMEOUT))?;
    }
    stream.write_all(bytes)?;
    await_close(stream, PUSH_CONFIRM_TIMEOUT)
}

/// Half-closes and waits, at most `timeout`, for the peer's orderly close.
fn await_close(stream: TcpStream, timeout: Duration) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(timeout))?;
    let deadline = Instant::now() + timeout;
    let mut rest = (&stream).take(PUSH_CONFIRM_LIMIT);
    // A listener may answer (nothing of this protocol does) but must close; more than the limit is not one.
    let mut sink = [0u8; 256];
    loop {
        match rest.read(&mut sink) {
            Ok(0) if rest.limit() > 0 => return Ok(()),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::InvalidData, "the listener answers instead of closing")),
            Ok(_) if Instant::now() >= deadline => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the listener did not close in time"))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether a listener still serves at `addr`: it is sent one field, `PROBE` (an operation no listener shows), and
/// must read it and close in order within [`PROBE_TIMEOUT`]. An empty connection or a reset would hang or kill
/// the original clients' listeners; this one leaves every one of them listening (docs/compatibility.md).
pub fn listener_alive(addr: SocketAddr) -> bool {
    let probe = || -> io::Result<()> {
        let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
        let mut bytes = push::PROBE_OP.to_vec();
        bytes.push(0);
        stream.write_all(&bytes)?;
        await_close(stream, PROBE_TIMEOUT)
    };
    // Refused, unreachable, no close in time: nobody serves there any more.
    probe().is_ok()
}
