//! Disk failures injected by the tests of what a failure does (tests/faults.rs): the real journal, with chosen
//! writes, syncs or file creations failing as a full or failing disk would.

use std::io;

use crate::store::Record;

/// Disk failures to simulate, for the tests of what a failure does (see [`FileJournal::inject`]): each `true`
/// makes that operation fail as a full or failing disk would, until the plan is changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    pub register: bool,
    pub unregister: bool,
    pub message: bool,
    pub ack: bool,
    pub pop: bool,
    /// Every `fdatasync` of the segments.
    pub sync: bool,
    /// Creating a segment or a snapshot (so compaction and the rewrite from memory fail too).
    pub files: bool,
}

impl Faults {
    /// Nothing fails.
    pub const NONE: Faults = Faults {
        register: false,
        unregister: false,
        message: false,
        ack: false,
        pop: false,
        sync: false,
        files: false,
    };
    /// Every write and sync fails.
    pub const DISK_DOWN: Faults =
        Faults { register: true, unregister: true, message: true, ack: true, pop: true, sync: true, files: true };

    pub(super) fn fails(&self, record: &Record<'_>) -> bool {
        match record {
            Record::Register { .. } => self.register,
            Record::Unregister { .. } => self.unregister,
            Record::Message { .. } => self.message,
            Record::Ack { .. } => self.ack,
            Record::Pop { .. } => self.pop,
        }
    }
}

pub(super) fn injected() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "injected disk failure")
}
