//! Durability: with a data directory, every durable change is journalled, and nothing the server acknowledged
//! is lost, even after `kill -9` (docs/operations.md).
//!
//! # The directory
//!
//! ```text
//! LOCK                              held (flock) by the running server: a second server is refused
//! snapshot-<gen>.snap               the whole registry as it was when journal-<gen> was started
//! journal-<gen>.log, ...            the changes since, in order, one segment per generation
//! *.tmp                             a file being written; never read, removed at start-up
//! ```
//!
//! `<gen>` is a 20-digit decimal generation. The state is the newest snapshot (or nothing, before the first
//! compaction) followed by every journal segment from that generation on. Older files are garbage.
//!
//! # The modules
//!
//! - `writer`: [`FileJournal`]: appends under the registry lock, the group commit, what a failure does.
//! - `compaction`: snapshots written while requests go on, and the rewrite from memory after a failure.
//! - `recovery`: rebuilding the registry at start-up, strictly.
//! - `format`: the bytes of a frame and of each record. `files`: names, the lock, creating files safely.
//! - `faults`: disk failures injected by the tests.

mod compaction;
mod faults;
mod files;
mod format;
mod recovery;
mod writer;

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::store::{ReplayError, Store, UserState, UserView};

pub use faults::Faults;
pub use files::{segment_name, snapshot_name};
pub use format::{Damage, MAX_RECORD_LEN};
pub use writer::FileJournal;

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "LOCK";
/// Default for [`Options::compact_min_bytes`]: below this, a data directory is too small to be worth compacting.
pub const DEFAULT_COMPACT_MIN_BYTES: u64 = 1024 * 1024;
/// The directory is compacted once its files (snapshot and segments) are this many times the size of the live
/// state, so that the work of rewriting the live state is paid for by at least as much history. The comparison
/// costs nothing (the registry keeps the live size up to date), so it is made at every append: after a backlog is
/// delivered, the directory shrinks back to what is left without waiting for more traffic.
pub const COMPACT_FACTOR: u64 = 2;
/// Smallest effective [`Options::compact_min_bytes`].
pub const COMPACT_MIN_BYTES_FLOOR: u64 = 4096;
/// After a failed compaction (disk full, ...) the next attempt waits this long, doubling after each further
/// failure up to [`COMPACT_RETRY_MAX`]: every attempt starts a new segment, so a persistent failure must not turn
/// into a stream of files.
pub const COMPACT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest wait between two failed compactions.
pub const COMPACT_RETRY_MAX: Duration = Duration::from_secs(60);
/// Longest wait between two attempts to rewrite the journal from memory after a failure: while it is not done,
/// every change is refused, so it is retried often.
pub const RESYNC_RETRY_MAX: Duration = Duration::from_secs(5);

/// Tunables of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Directory bytes below which no compaction happens; raised to [`COMPACT_MIN_BYTES_FLOOR`] if lower.
    pub compact_min_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { compact_min_bytes: DEFAULT_COMPACT_MIN_BYTES }
    }
}

/// Why the journal cannot be opened, recovered or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Another process holds the data directory's lock file.
    #[error("the data directory is in use by another server (lock file {} is held{})", .path.display(), by(.holder))]
    Locked { path: PathBuf, holder: Option<String> },
    /// An operating-system error on a file or directory.
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    /// Damage that a crash cannot explain: the file cannot be trusted from `offset` on.
    #[error("{} is damaged at offset {offset} ({reason}); {see}", .path.display(), see = REFUSING)]
    Corrupt { path: PathBuf, offset: u64, reason: Damage },
    /// An intact record that does not fit the state built so far: the files are not what this server wrote.
    #[error(
        "{}: the record at offset {offset} does not fit the state before it ({reason}); {see}",
        .path.display(),
        see = REFUSING
    )]
    Inconsistent {
        path: PathBuf,
        offset: u64,
        #[source]
        reason: ReplayError,
    },
    /// A file that must exist is missing.
    #[error("{} is missing: {reason}", .path.display())]
    Missing { path: PathBuf, reason: Gap },
    /// `populate` was given a directory that already holds journal files.
    #[error("{} already holds journal files", .path.display())]
    NotEmpty { path: PathBuf },
    /// An earlier write or sync failed, and the journal has not yet been rewritten from memory: changes are
    /// refused until it has (this happens by itself once the disk works again).
    #[error("the journal refuses changes after a failure ({reason}) until it is rewritten from memory")]
    Diverged {
        #[source]
        reason: Failure,
    },
}

/// The end of the message of a journal that cannot be trusted.
const REFUSING: &str = "refusing to start with part of the data (see docs/operations.md, \"A damaged journal\")";

/// " by HOLDER" when the lock file names its holder.
fn by(holder: &Option<String>) -> String {
    match holder {
        Some(h) if !h.is_empty() => format!(" by {h}"),
        _ => String::new(),
    }
}

/// What made the files stop describing memory (the reason of [`JournalError::Diverged`]). Every change refused
/// afterwards reports the same failure, so its cause is shared.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// A write failed, and cutting its partial record off failed too.
    #[error("a failed write ({write}) could not be rolled back ({rollback})")]
    Rollback {
        write: Arc<io::Error>,
        #[source]
        rollback: Arc<io::Error>,
    },
    /// A delivery happened in memory (the push went out) but its record could not be written.
    #[error("a delivery could not be recorded ({0})")]
    Delivery(#[source] Arc<io::Error>),
    /// `fdatasync` failed: what was written since the last sync may not be on disk.
    #[error("sync failed: {0}")]
    Sync(#[source] Arc<io::Error>),
    /// Rewriting the journal from memory failed.
    #[error("rewriting the journal failed: {0}")]
    Rewrite(#[source] Arc<JournalError>),
}

/// Why a missing segment means data would be lost (the reason of [`JournalError::Missing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Gap {
    /// Later segments exist, so the changes the missing one held would be lost.
    #[error("later segments exist, so the changes it held would be lost")]
    LaterSegmentsExist,
    /// The snapshot of the same generation exists, and the changes made after it would be lost.
    #[error("the snapshot of the same generation exists, and the changes made after it would be lost")]
    SnapshotWithoutSegment,
}

impl JournalError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
        move |source| JournalError::Io { path: path.to_owned(), source }
    }
}

/// The points of a compaction, in order. [`FileJournal::compact_until`] stops right after one of them, leaving
/// the directory as a crash there would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompactStep {
    /// The next segment exists as a synced temporary file.
    SegmentWritten,
    /// The next segment has its real name (the directory is synced).
    SegmentInPlace,
    /// Appends go to the next segment; the snapshot has not been written.
    Rotated,
    /// Half of the snapshot is in its temporary file.
    SnapshotPartial,
    /// The whole snapshot is in its temporary file, synced.
    SnapshotSynced,
    /// The snapshot has its real name (the directory is synced).
    SnapshotInPlace,
    /// The older segments are deleted.
    OldSegmentsRemoved,
    /// The older snapshot is deleted too: compaction is complete.
    Done,
}

impl CompactStep {
    /// Every step, in order.
    pub const ALL: [CompactStep; 8] = [
        CompactStep::SegmentWritten,
        CompactStep::SegmentInPlace,
        CompactStep::Rotated,
        CompactStep::SnapshotPartial,
        CompactStep::SnapshotSynced,
        CompactStep::SnapshotInPlace,
        CompactStep::OldSegmentsRemoved,
        CompactStep::Done,
    ];
}

/// Writes a new data directory (absent or empty) holding exactly `users`, registered in that order, as a
/// snapshot the server recovers from. For tools that prepare large test populations without a running server
/// (`bench populate`); the users are streamed, never all in memory at once.
pub fn populate(dir: &Path, users: impl IntoIterator<Item = UserState>) -> Result<(), JournalError> {
    fs::create_dir_all(dir).map_err(JournalError::io(dir))?;
    let _lock = files::lock_dir(dir)?;
    let occupied = fs::read_dir(dir)
        .map_err(JournalError::io(dir))?
        .flatten()
        .any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("journal-") || n.starts_with("snapshot-")));
    if occupied {
        return Err(JournalError::NotEmpty { path: dir.to_owned() });
    }
    const GEN: u64 = 1;
    let tmp = dir.join(files::tmp_name(&snapshot_name(GEN)));
    let file = File::create(&tmp).map_err(JournalError::io(&tmp))?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let mut frame = Vec::with_capacity(4096);
    let too_long = |tmp: &Path| JournalError::Io { path: tmp.to_owned(), source: format::TooLong.into() };
    let (mut count, mut entries) = (0u64, 0u64);
    out.write_all(&format::file_header(format::SNAPSHOT_MAGIC, GEN)).map_err(JournalError::io(&tmp))?;
    for user in users {
        count += 1;
        let queue: VecDeque<_> = user.queue.into();
        let view = UserView {
            seq: count,
            alias: &user.alias,
            full_name: &user.full_name,
            birth_date: &user.birth_date,
            last_id: user.last_id,
            queue_head: 0,
            queue: &queue,
        };
        frame.clear();
        format::encode_user_and_queue(&view, &mut frame).map_err(|_| too_long(&tmp))?;
        entries += queue.len() as u64;
        out.write_all(&frame).map_err(JournalError::io(&tmp))?;
    }
    frame.clear();
    format::encode_end(count, entries, &mut frame).map_err(|_| too_long(&tmp))?;
    out.write_all(&frame).map_err(JournalError::io(&tmp))?;
    let file = out.into_inner().map_err(|e| JournalError::Io { path: tmp.clone(), source: e.into_error() })?;
    file.sync_all().map_err(JournalError::io(&tmp))?;
    let path = dir.join(snapshot_name(GEN));
    fs::rename(&tmp, &path).map_err(JournalError::io(&path))?;
    files::write_segment_tmp(dir, GEN)?;
    files::install_segment(dir, GEN)?;
    Ok(())
}

/// A journal attached to a registry, with its compactor thread. This is what a server holds: dropping it (after
/// the last request) stops the compactor, compacts if due, and makes everything appended durable, so a clean stop
/// leaves a small directory and repeats no push at the next start.
pub struct Durability {
    journal: Arc<FileJournal>,
    store: Store,
    compactor: Option<JoinHandle<()>>,
}

impl fmt::Debug for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Durability").field("journal", &self.journal).finish_non_exhaustive()
    }
}

impl Durability {
    /// Opens and recovers `dir` into `store` (empty, without a journal), and returns the store journalling into
    /// it, with a compactor thread running.
    pub fn open(dir: &Path, store: Store, options: Options) -> Result<(Store, Durability), JournalError> {
        let journal = Arc::new(FileJournal::open(dir, &store, options)?);
        let store = store.with_journal(journal.clone());
        let (j, s) = (journal.clone(), store.clone());
        let compactor = thread::Builder::new()
            .name("journal-compactor".into())
            .spawn(move || j.compactor(&s))
            .map_err(JournalError::io(dir))?;
        Ok((store.clone(), Durability { journal, store, compactor: Some(compactor) }))
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<FileJournal> {
        &self.journal
    }
}

impl Drop for Durability {
    fn drop(&mut self) {
        self.journal.stop_compactor();
        if let Some(t) = self.compactor.take() {
            let _ = t.join();
        }
        if self.journal.wants_compaction() {
            if let Err(e) = self.journal.compact(&self.store) {
                log::error!("journal: compaction at stop failed: {e}");
            }
        }
        if let Err(e) = self.journal.sync_all() {
            log::error!("journal: final sync failed: {e}");
        }
    }
}
