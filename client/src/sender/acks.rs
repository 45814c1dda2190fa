//! The acknowledgements a session still waits for, so that DISCONNECT and QUIT can wait for them briefly.

use std::collections::HashSet;
use std::time::Instant;

use crossbeam_channel::Receiver;

use super::ACK_GRACE;

/// Most acknowledgements tracked at once (messages to users who stay offline are never acknowledged).
pub(super) const MAX_TRACKED_ACKS: usize = 10_000;

/// The acknowledgements still expected for messages this session sent while connected.
pub(super) struct AckTracker {
    rx: Option<Receiver<u32>>,
    outstanding: HashSet<u32>,
    last_send: Option<Instant>,
}

impl AckTracker {
    pub(super) fn new() -> AckTracker {
        AckTracker { rx: None, outstanding: HashSet::new(), last_send: None }
    }

    /// Starts tracking for a new listener, whose acknowledgements arrive on `rx`.
    pub(super) fn reset(&mut self, rx: Receiver<u32>) {
        self.clear();
        self.rx = Some(rx);
    }

    pub(super) fn clear(&mut self) {
        self.rx = None;
        self.outstanding.clear();
        self.last_send = None;
    }

    pub(super) fn sent(&mut self, id: u32) {
        if self.outstanding.len() < MAX_TRACKED_ACKS {
            self.outstanding.insert(id);
        }
        self.last_send = Some(Instant::now());
    }

    /// Forgets the acknowledgements that already arrived.
    pub(super) fn drain(&mut self) {
        if let Some(rx) = &self.rx {
            for id in rx.try_iter() {
                self.outstanding.remove(&id);
            }
        }
    }

    /// Waits, at most until [`ACK_GRACE`] after the last SEND, for the outstanding acknowledgements.
    pub(super) fn wait(&mut self) {
        self.drain();
        let (Some(rx), Some(last)) = (&self.rx, self.last_send) else { return };
        let deadline = last + ACK_GRACE;
        while !self.outstanding.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(id) => {
                    self.outstanding.remove(&id);
                }
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_wait_is_bounded_and_ends_early_when_all_arrived() {
        let mut acks = AckTracker::new();
        let (tx, rx) = crossbeam_channel::unbounded();
        acks.reset(rx);
        acks.sent(1);
        acks.sent(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let started = Instant::now();
        acks.wait();
        assert!(started.elapsed() < ACK_GRACE / 2);
        acks.sent(3);
        let started = Instant::now();
        acks.wait();
        assert!(started.elapsed() >= ACK_GRACE / 2 && started.elapsed() < ACK_GRACE * 2);
    }
}
