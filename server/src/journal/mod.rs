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
#[derive(Debug)]
#[non_exhaustive]
pub enum JournalError {
    /// Another process holds the data directory's lock file.
    Locked { path: PathBuf, holder: Option<String> },
    /// An operating-system error on a file or directory.
    Io { path: PathBuf, source: io::Error },
    /// Damage that a crash cannot explain: the file cannot be trusted from `offset` on.
    Corrupt { path: PathBuf, offset: u64, reason: Damage },
    /// An intact record that does not fit the state built so far: the files are not what this server wrote.
    Inconsistent { path: PathBuf, offset: u64, reason: ReplayError },
    /// A file that must exist is missing.
    Missing { path: PathBuf, reason: Gap },
    /// `populate` was given a directory that already holds journal files.
    NotEmpty { path: PathBuf },
    /// An earlier write or sync failed, and the journal has not yet been rewritten from memory: changes are
    /// refused until it has (this happens by itself once the disk works again).
    Diverged { reason: Failure },
}

/// What made the files stop describing memory (the reason of [`JournalError::Diverged`]). Every change refused
/// afterwards reports the same failure, so its cause is shared.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Failure {
    /// A write failed, and cutting its partial record off failed too.
    Rollback { write: Arc<io::Error>, rollback: Arc<io::Error> },
    /// A delivery happened in memory (the push went out) but its record could not be written.
    Delivery(Arc<io::Error>),
    /// `fdatasync` failed: what was written since the last sync may not be on disk.
    Sync(Arc<io::Error>),
    /// Rewriting the journal from memory failed.
    Rewrite(Arc<JournalError>),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Rollback { write, rollback } => {
                write!(f, "a failed write ({write}) could not be rolled back ({rollback})")
            }
            Failure::Delivery(e) => write!(f, "a delivery could not be recorded ({e})"),
            Failure::Sync(e) => write!(f, "sync failed: {e}"),
            Failure::Rewrite(e) => write!(f, "rewriting the journal failed: {e}"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(match self {
            Failure::Rollback { rollback: e, .. } | Failure::Delivery(e) | Failure::Sync(e) => &**e,
            Failure::Rewrite(e) => &**e,
        })
    }
}

/// Why a missing segment means data would be lost (the reason of [`JournalError::Missing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gap {
    /// Later segments exist, so the changes the missing one held would be lost.
    LaterSegmentsExist,
    /// The snapshot of the same generation exists, and the changes made after it would be lost.
    SnapshotWithoutSegment,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Gap::LaterSegmentsExist => "later segments exist, so the changes it held would be lost",
            Gap::SnapshotWithoutSegment => {
                "the snapshot of the same generation exists, and the changes made after it would be lost"
            }
        })
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SEE: &str = "refusing to start with part of the data (see docs/operations.md, \"A damaged journal\")";
        match self {
            JournalError::Locked { path, holder } => {
                write!(f, "the data directory is in use by another server (lock file {} is held", path.display())?;
                match holder {
                    Some(h) if !h.is_empty() => write!(f, " by {h})"),
                    _ => f.write_str(")"),
                }
            }
            JournalError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            JournalError::Corrupt { path, offset, reason } => {
                write!(f, "{} is damaged at offset {offset} ({reason}); {SEE}", path.display())
            }
            JournalError::Inconsistent { path, offset, reason } => write!(
                f,
                "{}: the record at offset {offset} does not fit the state before it ({reason}); {SEE}",
                path.display()
            ),
            JournalError::Missing { path, reason } => write!(f, "{} is missing: {reason}", path.display()),
            JournalError::NotEmpty { path } => write!(f, "{} already holds journal files", path.display()),
            JournalError::Diverged { reason } => {
                write!(f, "the journal refuses changes after a failure ({reason}) until it is rewritten from memory")
            }
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(source),
            JournalError::Inconsistent { reason, .. } => Some(reason),
            JournalError::Diverged { reason } => Some(reason),
            _ => None,
        }
    }
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
