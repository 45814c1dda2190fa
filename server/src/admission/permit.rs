//! What a connection holds: its [`Permit`] (a connection slot) and, once its reply is written, a
//! [`DeliverySlot`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::{Admission, State};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Its request is still being read; it can be shed.
    Pending,
    /// Its request is complete; it is being answered.
    Complete,
    /// Its slot has been given back.
    Released,
}

/// A connection slot, held from accept until the reply has been written and the stream closed. Dropping it
/// gives the slot back, on every path, a panic included.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    peer: IpAddr,
    serial: u64,
    accepted: Instant,
    stage: Stage,
}

impl Permit {
    /// The permit of a connection just admitted: its request is still to be read.
    pub(super) fn pending(admission: Arc<Admission>, peer: IpAddr, serial: u64, accepted: Instant) -> Permit {
        Permit { admission, peer, serial, accepted, stage: Stage::Pending }
    }

    /// When the connection was accepted: the whole-request deadline counts from here.
    pub fn accepted(&self) -> Instant {
        self.accepted
    }

    /// Records that the request has been read in full: from now on the connection is no longer pending, and
    /// cannot be shed. `false` when it was shed meanwhile: the caller closes without reply.
    pub fn request_complete(&mut self) -> bool {
        if self.stage != Stage::Pending {
            return self.stage == Stage::Complete;
        }
        let mut st = self.admission.lock();
        if st.take_pending(self.peer, self.serial).is_none() {
            return false;
        }
        self.stage = Stage::Complete;
        true
    }

    /// Gives the connection slot back and takes a delivery slot instead, waiting while every delivery slot is
    /// taken (the connection slot is kept meanwhile, which bounds the number of threads). Call it once the reply
    /// has been written and the stream closed, before pushing; the delivery slot is given back when the
    /// returned value is dropped.
    pub fn into_delivery(mut self) -> DeliverySlot {
        let admission = self.admission.clone();
        let mut st = admission.lock();
        while st.deliveries >= admission.limits.max_deliveries {
            st = admission.delivery_freed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.deliveries += 1;
        self.release(&mut st);
        drop(st);
        DeliverySlot { admission }
    }

    /// The admission control this permit belongs to.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// Like [`Permit::into_delivery`], but never waits: `Err` gives the permit back when every delivery slot is
    /// taken, for a caller that would rather leave the work queued than hold its connection slot meanwhile.
    pub fn try_into_delivery(mut self) -> Result<DeliverySlot, Permit> {
        let admission = self.admission.clone();
        let mut st = admission.lock();
        if st.deliveries >= admission.limits.max_deliveries {
            drop(st);
            return Err(self);
        }
        st.deliveries += 1;
        self.release(&mut st);
        drop(st);
        Ok(DeliverySlot { admission })
    }

    fn release(&mut self, st: &mut State) {
        match self.stage {
            Stage::Released => return,
            Stage::Complete => {}
            Stage::Pending => {
                if st.take_pending(self.peer, self.serial).is_none() {
                    // It was shed: the accept loop counted it as about to give its slot back.
                    st.shedding -= 1;
                }
            }
        }
        self.stage = Stage::Released;
        // Only a full count has a waiter, so only then is a wake-up (a futex syscall) worth its cost.
        let was_full = st.in_use >= self.admission.limits.max_connections;
        st.in_use -= 1;
        if was_full {
            self.admission.slot_freed.notify_all();
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.stage == Stage::Released {
            return;
        }
        let admission = self.admission.clone();
        let mut st = admission.lock();
        self.release(&mut st);
    }
}

/// A delivery slot ([`Permit::into_delivery`]); dropping it gives the slot back.
#[derive(Debug)]
pub struct DeliverySlot {
    admission: Arc<Admission>,
}

impl DeliverySlot {
    /// The admission control this slot belongs to.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// A delivery slot for a thread that holds no connection, when one is free.
    pub fn try_take(admission: &Arc<Admission>) -> Option<DeliverySlot> {
        let mut st = admission.lock();
        if st.deliveries >= admission.limits.max_deliveries {
            return None;
        }
        st.deliveries += 1;
        Some(DeliverySlot { admission: admission.clone() })
    }
}

impl Drop for DeliverySlot {
    fn drop(&mut self) {
        let mut st = self.admission.lock();
        let was_full = st.deliveries >= self.admission.limits.max_deliveries;
        st.deliveries -= 1;
        if was_full {
            // All waiters re-check, so that none stays asleep beside a free slot.
            self.admission.delivery_freed.notify_all();
        }
    }
}
