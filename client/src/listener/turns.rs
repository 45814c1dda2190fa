//! The printing order of pushes: they reach the callback in the order their connections were accepted.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use log::warn;

use super::ORDER_WAIT;

/// Bound on a push's whole wait for its turn, including earlier pushes being printed (printing waits for the
/// result line of a request in flight, itself bounded by the request's timeouts).
const MAX_TURN_WAIT: Duration = Duration::from_secs(60);

/// The printing order of pushes: one ticket per accepted connection, in acceptance order.
#[derive(Default)]
pub(super) struct Turns {
    state: Mutex<TurnState>,
    changed: Condvar,
}

#[derive(Default)]
struct TurnState {
    next: u64,
    /// Connections that hold a ticket, by ticket number.
    open: BTreeMap<u64, Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The push is being read.
    Reading,
    /// Read completely, waiting for its turn.
    Ready,
    /// Being handed to the callback.
    Printing,
}

impl Turns {
    fn state(&self) -> MutexGuard<'_, TurnState> {
        // A counter and a map, consistent whatever panicked while holding them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A ticket for a connection just accepted.
    pub(super) fn take(self: &Arc<Self>) -> Ticket {
        let mut st = self.state();
        let number = st.next;
        st.next += 1;
        st.open.insert(number, Stage::Reading);
        Ticket { turns: Arc::clone(self), number }
    }

    /// Runs `print` once `ticket`'s turn has come: no push is printing, no earlier push is waiting to print, and
    /// no earlier connection is still being read — that last condition for at most [`ORDER_WAIT`] after this push
    /// was read.
    pub(super) fn print_in_turn(&self, ticket: &Ticket, print: impl FnOnce()) {
        let ready_at = Instant::now();
        let mut st = self.state();
        st.open.insert(ticket.number, Stage::Ready);
        loop {
            let earlier = || st.open.range(..ticket.number).map(|(_, stage)| *stage);
            let behind_a_push =
                earlier().any(|s| s != Stage::Reading) || st.open.values().any(|s| *s == Stage::Printing);
            let behind_a_reader = earlier().any(|s| s == Stage::Reading);
            let now = Instant::now();
            let waited = now.duration_since(ready_at);
            if waited >= MAX_TURN_WAIT {
                warn!("listener: a push waited {waited:?} for its turn; printing it now");
                break;
            }
            let wait = if behind_a_push {
                MAX_TURN_WAIT - waited
            } else if behind_a_reader && waited < ORDER_WAIT {
                ORDER_WAIT - waited
            } else {
                break;
            };
            st = self.changed.wait_timeout(st, wait).unwrap_or_else(PoisonError::into_inner).0;
        }
        st.open.insert(ticket.number, Stage::Printing);
        drop(st);
        print();
    }
}

/// A connection's place in the printing order, given up on drop (printed, dropped, or its thread died).
pub(super) struct Ticket {
    turns: Arc<Turns>,
    number: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.turns.state().open.remove(&self.number);
        self.turns.changed.notify_all();
    }
}
