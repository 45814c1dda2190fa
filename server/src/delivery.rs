//! Ordered pushes to listeners (PROTOCOL.md 5.3–5.5).
//!
//! A deliverer holds a user's [`Ticket`] (the store hands out at most one per user), takes the head of the
//! queue without removing it, pushes it with the lock released, and only then tells the store whether it went
//! out. A successful message push queues an acknowledgement for its sender, whose delivery this same thread then
//! takes on. The work list is bounded by what the queues hold, and each queue is capped.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use protocol::dialect::PushForm;
use protocol::push;

use crate::store::{Entry, Job, Store, Ticket};

/// Connect timeout for one push (5.3).
pub const PUSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Write timeout for one push (5.3).
pub const PUSH_WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between retries of a refused push during the grace period (5.4 asks for 100–200 ms).
pub const GRACE_RETRY: Duration = Duration::from_millis(150);

/// Delivers everything that `first` (and the acknowledgements it causes) makes deliverable.
pub fn run(store: &Store, form: PushForm, first: Ticket) {
    let mut work = VecDeque::from([first]);
    while let Some(mut ticket) = work.pop_front() {
        deliver_one_user(store, form, &mut ticket, &mut work);
    }
}

/// Pushes one user's queue while the store hands out jobs. Each step takes the registry lock once: the first
/// job comes with the ticket, and every successful push's bookkeeping answers the next job in the same walk, so
/// a live SEND walks the list three times in all (the SEND, its push, its acknowledgement's push), not seven.
fn deliver_one_user(store: &Store, form: PushForm, ticket: &mut Ticket, work: &mut VecDeque<Ticket>) {
    let mut buf = Vec::with_capacity(64);
    let mut next = ticket.take_job().or_else(|| store.next_job(ticket));
    while let Some(job) = next {
        buf.clear();
        match &job.entry {
            Entry::Message { sender, id, text } => push::encode_message(form, sender, *id, text, &mut buf),
            Entry::Ack { id } => push::encode_ack(*id, &mut buf),
        }
        next = match push(&job, &buf) {
            Ok(()) => {
                let done = store.delivered(ticket, &job);
                log_success(&ticket.alias, &job.entry);
                if done.ack_dropped {
                    log::warn!("acknowledgement dropped: the sender's queue is full");
                }
                // A prepared job is only as fresh as the lock it was read under: it is kept for a ticket served
                // right after this one, and re-read (`next_job`) for one that waits behind other pushes.
                let immediate = done.next.is_none() && work.is_empty();
                work.extend(done.ack_ticket.map(|mut t| {
                    if !immediate {
                        t.take_job();
                    }
                    t
                }));
                done.next
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && job.in_grace(Instant::now()) => {
                // The client may bind its listener before CONNECT but accept only after reading the reply.
                thread::sleep(GRACE_RETRY);
                store.next_job(ticket)
            }
            Err(e) => {
                log::info!("s> push to {} at {} failed ({e}): user marked disconnected", ticket.alias, job.addr);
                if !store.failed(ticket, &job) {
                    return;
                }
                store.next_job(ticket)
            }
        };
    }
}

fn log_success(recipient: &str, entry: &Entry) {
    match entry {
        Entry::Message { sender, id, .. } => log::info!("s> SEND MESSAGE {id} FROM {sender} TO {recipient}"),
        Entry::Ack { id } => log::debug!("s> SEND MESS ACK {id} TO {recipient}"),
    }
}

/// One push: connect, write everything at once, half-close, close. Nothing is read back.
///
/// A push is at most `MAX_PUSH_LEN` (1 KiB), which the empty send buffer of a new connection always takes: the
/// write cannot block, so the write timeout is only set for a longer one, and Nagle is left on because the
/// half-close pushes the data out at once. Two syscalls fewer per push, which is a third of our connections.
fn push(job: &Job, bytes: &[u8]) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&job.addr, PUSH_CONNECT_TIMEOUT)?;
    if bytes.len() > crate::handler::UNBLOCKED_WRITE {
        stream.set_write_timeout(Some(PUSH_WRITE_TIMEOUT))?;
    }
    stream.write_all(bytes)?;
    // Half-close first so that the listener sees a clean end of stream rather than a reset.
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}
