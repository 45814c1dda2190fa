//! Durability (DESIGN.md invariant 3): with a data directory, every durable change is journalled, and nothing the
//! server acknowledged is lost, even after `kill -9`.
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
//! # Writing
//!
//! [`Store`] calls [`Journal::append`] with the registry lock held: the record is framed (length and CRC, see
//! the `format` module) and written into the OS with one `write`, never synced there, so the lock is never held
//! across a disk wait. Because the bytes are in the kernel at once, a `kill -9` never loses them; only a power loss
//! can.
//! The handler then calls [`Journal::sync`] without the lock and before writing its reply. That is the group
//! commit: one thread runs `sync_data` for everything written so far while the others wait on a condition
//! variable; a sync that started after a record was written covers it, so nobody replies before the sync that
//! covers its request, and N concurrent requests cost about one sync instead of N.
//!
//! # Recovery
//!
//! See the `recovery` module: a torn final record (a crash in the middle of a write) is logged and cut away;
//! damage anywhere else stops the start-up with the file and offset, never a silent half-load.
//!
//! # Compaction
//!
//! When the segments since the last snapshot have grown past [`Options::compact_min_bytes`] and past
//! [`COMPACT_FACTOR`] times the live state, a background thread (1) creates the next segment, (2) under the
//! registry lock copies the registry and switches appends to the new segment, (3) without the lock writes the
//! copy to a temporary file, syncs it, renames it into place and syncs the directory, and (4) deletes the older
//! files. A crash at any point leaves either the old snapshot and every segment after it, or the new snapshot and
//! its segment: both recover to the same state. [`FileJournal::compact_until`] stops after any step, which is how
//! the tests crash it.

mod format;
mod recovery;

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::store::{Entry, Journal, Record, Store, UserState};

pub use format::MAX_RECORD_LEN;

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "LOCK";
/// Default for [`Options::compact_min_bytes`]: below this, a journal is too small to be worth compacting.
pub const DEFAULT_COMPACT_MIN_BYTES: u64 = 1024 * 1024;
/// Compaction also waits until the segments are this many times the size of the live state, so that the work of
/// rewriting the live state is paid for by at least as much history. The live state is measured now, not taken
/// from the last snapshot: after a large backlog is delivered, the journal is compacted down to the small state
/// that is left instead of waiting for the history to outgrow the old, large snapshot.
pub const COMPACT_FACTOR: u64 = 2;
/// Smallest effective [`Options::compact_min_bytes`].
pub const COMPACT_MIN_BYTES_FLOOR: u64 = 4096;
/// Measuring the live state walks the registry under its lock, so the compactor does it only after the journal
/// grew by a quarter of the minimum or an eighth of the live state since the last look: amortised, a constant
/// cost per journalled byte.
const CHECK_STEP_DIVISOR_MIN: u64 = 4;
const CHECK_STEP_DIVISOR_LIVE: u64 = 8;
/// After a failed compaction (disk full, ...) the next attempt waits this long, doubling after each further
/// failure up to [`COMPACT_RETRY_MAX`]: every attempt starts a new segment, so a persistent failure must not
/// turn into a stream of files.
pub const COMPACT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest wait between two failed compactions.
pub const COMPACT_RETRY_MAX: Duration = Duration::from_secs(60);

/// Tunables of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Journal bytes since the last snapshot below which no compaction happens; raised to
    /// [`COMPACT_MIN_BYTES_FLOOR`] if lower (with 0 and an empty registry, every look would find a compaction
    /// due, and the compactor would never rest).
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
    Corrupt { path: PathBuf, offset: u64, reason: &'static str },
    /// An intact record that does not fit the state built so far: the files are not what this server wrote.
    Inconsistent { path: PathBuf, offset: u64, reason: &'static str },
    /// A file that must exist is missing.
    Missing { path: PathBuf, reason: &'static str },
    /// An earlier write or sync failed; the journal refuses further changes until the server is restarted.
    Broken { reason: String },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Locked { path, holder } => {
                write!(f, "the data directory is in use by another server (lock file {} is held", path.display())?;
                match holder {
                    Some(h) if !h.is_empty() => write!(f, " by {h})"),
                    _ => f.write_str(")"),
                }
            }
            JournalError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            JournalError::Corrupt { path, offset, reason } => write!(
                f,
                "{} is damaged at offset {offset} ({reason}); refusing to start with part of the data \
                 (see docs/operations.md, \"A damaged journal\")",
                path.display()
            ),
            JournalError::Inconsistent { path, offset, reason } => write!(
                f,
                "{}: the record at offset {offset} does not fit the state before it ({reason}); refusing to start \
                 with part of the data (see docs/operations.md, \"A damaged journal\")",
                path.display()
            ),
            JournalError::Missing { path, reason } => write!(f, "{} is missing: {reason}", path.display()),
            JournalError::Broken { reason } => {
                write!(f, "the journal refuses changes after an earlier failure ({reason}); restart the server")
            }
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(source),
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
    /// Appends go to the next segment; the registry copy is in memory only.
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

/// The append side: the current segment and what the compactor needs to decide.
struct Writer {
    file: Arc<File>,
    gen: u64,
    /// Length of the current segment file: a failed write is rolled back to it.
    segment_len: u64,
    /// Bytes appended since this journal was opened: the positions handed out to callers.
    written: u64,
    /// Earlier segments that may still hold unsynced bytes, with the position their last byte has.
    retired: Vec<(Arc<File>, u64)>,
    /// Bytes in the segments since the last snapshot (what compaction would remove).
    since_snapshot: u64,
    /// `since_snapshot` at the moment appends switched to the segment being compacted into.
    at_rotation: u64,
    /// When `since_snapshot` reaches this, the compactor looks at whether a compaction is due.
    next_check: u64,
    /// The compactor has been woken and has not looked yet.
    check_requested: bool,
    /// A write could not be rolled back, or a sync failed: no more changes are accepted.
    broken: Option<String>,
    /// The compactor thread must end.
    stop: bool,
    /// Encoding buffer, kept to avoid an allocation per record.
    buf: Vec<u8>,
    compactions: u64,
}

impl Writer {
    fn check_due(&self) -> bool {
        self.broken.is_none() && self.since_snapshot >= self.next_check
    }
}

/// The sync side of the group commit.
struct SyncState {
    /// Every position up to this one is on disk.
    synced: u64,
    /// A thread is running `sync_data` right now.
    syncing: bool,
    /// A sync failed. After a failed fsync the kernel may have dropped the dirty pages and a retry can falsely
    /// succeed, so the journal never claims durability again (PostgreSQL learned this in 2018).
    failed: Option<String>,
}

/// The journal of one data directory. Holding it holds the directory's lock.
pub struct FileJournal {
    dir: PathBuf,
    options: Options,
    /// Never read: the open file is what holds the lock, until the journal is dropped (or the process dies).
    _lock: File,
    writer: Mutex<Writer>,
    /// Wakes the compactor (paired with `writer`).
    compact_wake: Condvar,
    sync: Mutex<SyncState>,
    /// Wakes the threads waiting for a sync (paired with `sync`).
    synced: Condvar,
    /// One compaction at a time, whoever starts it.
    compacting: Mutex<()>,
}

impl fmt::Debug for FileJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileJournal").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Name of the segment of generation `gen`.
pub fn segment_name(gen: u64) -> String {
    format!("journal-{gen:020}.log")
}

/// Name of the snapshot of generation `gen`.
pub fn snapshot_name(gen: u64) -> String {
    format!("snapshot-{gen:020}.snap")
}

fn tmp_name(name: &str) -> String {
    format!("{name}.tmp")
}

/// Locks a mutex whose holder may have panicked: every critical section here leaves the state consistent
/// between statements, so the data is still good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes a directory's entries (creations, renames, deletions) durable.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(JournalError::io(dir))
}

/// First half of creating the segment of generation `gen`: its header under a temporary name, synced. With
/// [`install_segment`], a segment never exists under its real name without its whole header.
fn write_segment_tmp(dir: &Path, gen: u64) -> Result<(), JournalError> {
    let tmp = dir.join(tmp_name(&segment_name(gen)));
    let mut file = File::create(&tmp).map_err(JournalError::io(&tmp))?;
    file.write_all(&format::file_header(format::JOURNAL_MAGIC, gen))
        .and_then(|()| file.sync_all())
        .map_err(JournalError::io(&tmp))
}

/// Second half: the real name, the directory synced, and the segment opened for appending.
fn install_segment(dir: &Path, gen: u64) -> Result<File, JournalError> {
    let path = dir.join(segment_name(gen));
    fs::rename(dir.join(tmp_name(&segment_name(gen))), &path).map_err(JournalError::io(&path))?;
    sync_dir(dir)?;
    open_for_append(&path)
}

fn open_for_append(path: &Path) -> Result<File, JournalError> {
    OpenOptions::new().append(true).open(path).map_err(JournalError::io(path))
}

/// Takes the data directory's lock, or says who holds it.
fn lock_dir(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(JournalError::io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).ok().map(|s| s.trim().to_owned());
            return Err(JournalError::Locked { path, holder });
        }
        Err(TryLockError::Error(source)) => return Err(JournalError::Io { path, source }),
    }
    // For the operator only: the lock is the flock, which the kernel releases when the process dies, so a
    // stale pid here after a crash is harmless.
    let pid = format!("pid {}\n", std::process::id());
    file.set_len(0).and_then(|()| file.write_all(pid.as_bytes())).map_err(JournalError::io(&path))?;
    Ok(file)
}

impl FileJournal {
    /// Locks `dir` (creating it if needed), replays its snapshot and journal into `store` (which must be empty
    /// and have no journal yet), and returns the journal positioned to append after the last intact record.
    pub fn open(dir: &Path, store: &Store, options: Options) -> Result<FileJournal, JournalError> {
        fs::create_dir_all(dir).map_err(JournalError::io(dir))?;
        let lock_file = lock_dir(dir)?;
        let found = recovery::recover(dir, store)?;
        let (file, segment_len) = match found.last_segment {
            Some((gen, len)) if gen == found.next_gen => (open_for_append(&dir.join(segment_name(gen)))?, len),
            _ => {
                // A fresh directory (recovery refuses a snapshot without its segment).
                write_segment_tmp(dir, found.next_gen)?;
                (install_segment(dir, found.next_gen)?, format::FILE_HEADER_LEN as u64)
            }
        };
        let writer = Writer {
            file: Arc::new(file),
            gen: found.next_gen,
            segment_len,
            written: 0,
            retired: Vec::new(),
            since_snapshot: found.journal_bytes,
            at_rotation: 0,
            // Look at once: the recovered journal may already be due.
            next_check: 0,
            check_requested: false,
            broken: None,
            stop: false,
            buf: Vec::with_capacity(MAX_RECORD_LEN),
            compactions: 0,
        };
        Ok(FileJournal {
            dir: dir.to_owned(),
            options,
            _lock: lock_file,
            writer: Mutex::new(writer),
            compact_wake: Condvar::new(),
            sync: Mutex::new(SyncState { synced: 0, syncing: false, failed: None }),
            synced: Condvar::new(),
            compacting: Mutex::new(()),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compactions completed since this journal was opened.
    pub fn compactions(&self) -> u64 {
        lock(&self.writer).compactions
    }

    /// True when the journal has grown enough, compared with the live state of `store`, that a compaction is due.
    pub fn wants_compaction(&self, store: &Store) -> bool {
        self.due(store.live_bytes()).is_none()
    }

    /// `None` when a compaction is due for a live state of `live` bytes, else when to look again.
    fn due(&self, live: u64) -> Option<u64> {
        let w = lock(&self.writer);
        let min = self.options.compact_min_bytes.max(COMPACT_MIN_BYTES_FLOOR);
        let threshold = min.max(live.saturating_mul(COMPACT_FACTOR));
        if w.broken.is_none() && w.since_snapshot >= threshold {
            return None;
        }
        let step = (min / CHECK_STEP_DIVISOR_MIN).max(live / CHECK_STEP_DIVISOR_LIVE);
        Some(w.since_snapshot.saturating_add(step.max(1)).min(threshold))
    }

    /// Makes everything appended so far durable.
    pub fn sync_all(&self) -> io::Result<()> {
        let written = lock(&self.writer).written;
        self.sync(written)
    }

    /// Compacts: snapshot of the live state, a fresh segment, older files deleted.
    pub fn compact(&self, store: &Store) -> Result<(), JournalError> {
        self.compact_until(store, CompactStep::Done)
    }

    /// Fault injection for the tests: runs a compaction up to and including `last`, then returns as if the
    /// process had died there (nothing is cleaned up, and the in-memory accounting is only updated at
    /// [`CompactStep::Done`]). `store` must be the registry that journals into `self`.
    pub fn compact_until(&self, store: &Store, last: CompactStep) -> Result<(), JournalError> {
        let _one_at_a_time = lock(&self.compacting);
        let new_gen = lock(&self.writer).gen + 1;

        // 1. The next segment. If an earlier compaction failed after this step, the file is recreated empty:
        //    no append ever went to it, since appends switch only at step 2.
        write_segment_tmp(&self.dir, new_gen)?;
        if last == CompactStep::SegmentWritten {
            return Ok(());
        }
        let file = install_segment(&self.dir, new_gen)?;
        if last == CompactStep::SegmentInPlace {
            return Ok(());
        }

        // 2. Under the registry lock: copy the state and switch appends, so the copy is exactly the state the
        //    new segment starts from. Both are memory work; the file was opened above.
        let (users, end) = store.snapshot_then(|| {
            let mut w = lock(&self.writer);
            let old = std::mem::replace(&mut w.file, Arc::new(file));
            let end = w.written;
            w.retired.push((old, end));
            w.gen = new_gen;
            w.segment_len = format::FILE_HEADER_LEN as u64;
            w.at_rotation = w.since_snapshot;
            end
        });
        if last == CompactStep::Rotated {
            return Ok(());
        }
        // The older segments are finished: sync them now, from this background thread, so their descriptors
        // are closed (a deleted file's space is only freed then) even when no request commits for a while.
        self.sync(end).map_err(|source| JournalError::Io { path: self.dir.join(segment_name(new_gen - 1)), source })?;

        // 3. The snapshot, without the lock: temporary file, sync, rename, sync the directory.
        let bytes = encode_snapshot(new_gen, &users).map_err(|source| JournalError::Io {
            path: self.dir.join(snapshot_name(new_gen)),
            source: source.into(),
        })?;
        let path = self.dir.join(snapshot_name(new_gen));
        let tmp = self.dir.join(tmp_name(&snapshot_name(new_gen)));
        let content = if last == CompactStep::SnapshotPartial { &bytes[..bytes.len() / 2] } else { &bytes[..] };
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(content)?;
            if last != CompactStep::SnapshotPartial {
                f.sync_all()?;
            }
            Ok(())
        });
        if let Err(source) = written {
            // Best effort: a leftover temporary file is also removed at the next start-up.
            let _ = fs::remove_file(&tmp);
            return Err(JournalError::Io { path: tmp, source });
        }
        if last <= CompactStep::SnapshotSynced {
            return Ok(());
        }
        fs::rename(&tmp, &path).map_err(JournalError::io(&path))?;
        sync_dir(&self.dir)?;
        if last == CompactStep::SnapshotInPlace {
            return Ok(());
        }

        // 4. The older files are garbage now. Failing to delete one costs space, not correctness: the next
        //    start-up or compaction deletes it.
        remove_older(&self.dir, new_gen, "journal-", ".log");
        if last == CompactStep::OldSegmentsRemoved {
            return Ok(());
        }
        remove_older(&self.dir, new_gen, "snapshot-", ".snap");
        if let Err(e) = sync_dir(&self.dir) {
            log::warn!("journal compaction: {e}");
        }

        let mut w = lock(&self.writer);
        w.since_snapshot = w.since_snapshot.saturating_sub(w.at_rotation);
        w.compactions += 1;
        log::debug!("journal compacted into {} ({} users, {} bytes)", snapshot_name(new_gen), users.len(), bytes.len());
        Ok(())
    }

    /// Runs `sync_data` on every file that may hold unsynced bytes; returns the position now durable.
    fn sync_files(&self) -> io::Result<u64> {
        let (target, files) = {
            let w = lock(&self.writer);
            let mut files: Vec<Arc<File>> = w.retired.iter().map(|(f, _)| f.clone()).collect();
            files.push(w.file.clone());
            (w.written, files)
        };
        // Older segments first: bytes of a newer segment are never durable while older ones are not.
        for f in &files {
            f.sync_data()?;
        }
        lock(&self.writer).retired.retain(|(_, end)| *end > target);
        Ok(target)
    }

    /// The compactor thread's loop: waits until the journal has grown enough to look, measures the live state
    /// (without holding the writer: the registry lock comes first), compacts when due, until
    /// [`FileJournal::stop_compactor`].
    fn compactor(&self, store: &Store) {
        let mut retry = COMPACT_RETRY_DELAY;
        loop {
            {
                let mut w = lock(&self.writer);
                while !w.stop && !w.check_due() {
                    w = self.compact_wake.wait(w).unwrap_or_else(|p| p.into_inner());
                }
                if w.stop {
                    return;
                }
            }
            let result = match self.due(store.live_bytes()) {
                Some(next_check) => {
                    lock(&self.writer).next_check = next_check;
                    Ok(())
                }
                None => self.compact(store),
            };
            let mut w = lock(&self.writer);
            w.check_requested = false;
            match result {
                Ok(()) => retry = COMPACT_RETRY_DELAY,
                Err(e) => {
                    log::error!("journal compaction failed: {e}; next attempt in {retry:?}");
                    let _ = self.compact_wake.wait_timeout_while(w, retry, |w| !w.stop);
                    retry = (retry * 2).min(COMPACT_RETRY_MAX);
                }
            }
        }
    }

    fn stop_compactor(&self) {
        lock(&self.writer).stop = true;
        self.compact_wake.notify_all();
    }
}

impl Journal for FileJournal {
    fn append(&self, record: &Record<'_>) -> io::Result<u64> {
        let mut w = lock(&self.writer);
        if let Some(reason) = &w.broken {
            return Err(io::Error::other(JournalError::Broken { reason: reason.clone() }));
        }
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        let result = match format::encode_change(record, &mut buf) {
            Err(e) => Err(e.into()),
            Ok(()) => match (&*w.file).write_all(&buf) {
                Ok(()) => {
                    let n = buf.len() as u64;
                    w.segment_len += n;
                    w.written += n;
                    w.since_snapshot += n;
                    Ok(w.written)
                }
                Err(e) => {
                    // A partial record in the middle of the journal would stop the next start-up: cut it off.
                    if let Err(e2) = w.file.set_len(w.segment_len) {
                        w.broken = Some(format!("a failed write ({e}) could not be rolled back ({e2})"));
                    }
                    Err(e)
                }
            },
        };
        w.buf = buf;
        if !w.check_requested && w.check_due() {
            w.check_requested = true;
            self.compact_wake.notify_all();
        }
        result
    }

    fn sync(&self, position: u64) -> io::Result<()> {
        let mut s = lock(&self.sync);
        loop {
            if let Some(reason) = &s.failed {
                return Err(io::Error::other(JournalError::Broken { reason: reason.clone() }));
            }
            if s.synced >= position {
                return Ok(());
            }
            if !s.syncing {
                break;
            }
            s = self.synced.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        // This thread syncs for everyone who has written so far.
        s.syncing = true;
        drop(s);
        let result = self.sync_files();
        if let Err(e) = &result {
            lock(&self.writer).broken = Some(format!("sync failed: {e}"));
        }
        let mut s = lock(&self.sync);
        s.syncing = false;
        match result {
            Ok(target) => s.synced = s.synced.max(target),
            Err(e) => s.failed = Some(format!("sync failed: {e}")),
        }
        self.synced.notify_all();
        // Our own position was written before the sync started, so a successful sync covers it.
        match &s.failed {
            Some(reason) => Err(io::Error::other(JournalError::Broken { reason: reason.clone() })),
            None => Ok(()),
        }
    }
}

/// The snapshot file of generation `gen` holding `users`.
fn encode_snapshot(gen: u64, users: &[UserState]) -> Result<Vec<u8>, format::TooLong> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(&format::file_header(format::SNAPSHOT_MAGIC, gen));
    let mut entries = 0u64;
    for u in users {
        format::encode_user(&u.alias, &u.full_name, &u.birth_date, u.last_id, &mut out)?;
        for e in &u.queue {
            match e {
                Entry::Message { sender, id, text } => format::encode_queued_message(sender, *id, text, &mut out)?,
                Entry::Ack { id } => format::encode_queued_ack(*id, &mut out)?,
            }
            entries += 1;
        }
    }
    format::encode_end(users.len() as u64, entries, &mut out)?;
    Ok(out)
}

/// Deletes the files `<prefix><gen><suffix>` older than `keep`.
fn remove_older(dir: &Path, keep: u64, prefix: &str, suffix: &str) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            log::warn!("journal compaction: cannot list {}: {e}", dir.display());
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(gen) = name.to_str().and_then(|n| recovery::parse_gen(n, prefix, suffix)) else { continue };
        if gen < keep {
            if let Err(e) = fs::remove_file(entry.path()) {
                log::warn!("journal compaction: cannot delete {}: {e}", entry.path().display());
            }
        }
    }
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
        // The compactor looks only every so often; a backlog delivered just before the stop is compacted here.
        if self.journal.wants_compaction(&self.store) {
            if let Err(e) = self.journal.compact(&self.store) {
                log::error!("journal: compaction at stop failed: {e}");
            }
        }
        if let Err(e) = self.journal.sync_all() {
            log::error!("journal: final sync failed: {e}");
        }
    }
}
