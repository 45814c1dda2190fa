//! [`FileJournal`]: appending, the group commit, and what a failed write or sync does.
//!
//! # Writing
//!
//! [`Store`] calls [`Journal::append`] with the registry lock held: the record is framed (length and CRC, see
//! `format`) and written into the OS with one `write`, never synced there, so the lock is never held across a
//! disk wait. A `kill -9` never loses those bytes; only a power loss can. The handler then calls
//! [`Journal::sync`] without the lock and before writing its reply. That is the group commit: one thread runs
//! `fdatasync` for everything written so far while the others wait; a sync that started after a record was
//! written covers it, so N concurrent requests cost about one sync instead of N.
//!
//! # After a failure
//!
//! The files must always describe a state the server was in. Two failures break that:
//! - a record that had to be written because memory changed anyway (a `Pop` after a push went out, an `Ack`)
//!   could not be written; or a failed write could not be cut off again;
//! - a sync failed: after that the kernel may have dropped the dirty pages, and a retry can falsely succeed
//!   (PostgreSQL's "fsyncgate"), so nothing written since the last good sync can be trusted.
//!
//! The journal then *diverges*: it refuses every append, and every sync of a position after the failure fails,
//! so the requests waiting for it are answered with their failure code and the store takes their changes back.
//! The compactor then rewrites the journal from memory — a new segment, a snapshot of the registry, both synced —
//! retrying until the disk works, and only then accepts changes again. Lock order: the registry lock, then
//! `writer`, then `sync`; `sync` is never held while taking `writer`.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::faults::{injected, Faults};
use super::files::{install_segment, lock_dir, open_for_append, segment_name, write_segment_tmp};
use super::{format, recovery, Failure, JournalError, Options, COMPACT_FACTOR, COMPACT_MIN_BYTES_FLOOR};
use crate::store::{Journal, Record, Store};

/// Whether the files describe the state in memory.
#[derive(Debug)]
pub(super) enum Health {
    Healthy,
    /// Positions after `at` cannot be made durable; appends are refused until the journal is rewritten.
    Diverged {
        at: u64,
        reason: Failure,
    },
    /// The journal is being rewritten from memory: appends go to the new segment, syncs wait for the end.
    Resyncing,
}

/// The append side: the current segment and what the compactor needs to decide.
pub(super) struct Writer {
    pub file: Arc<File>,
    pub gen: u64,
    /// Length of the current segment file: a failed write is rolled back to it.
    pub segment_len: u64,
    /// Bytes appended since this journal was opened: the positions handed out to callers.
    pub written: u64,
    /// Earlier segments that may still hold unsynced bytes, with the position their last byte has.
    pub retired: Vec<(Arc<File>, u64)>,
    /// Bytes in the segments since the last snapshot.
    pub since_snapshot: u64,
    /// Size of the last snapshot file.
    pub snapshot_bytes: u64,
    /// `since_snapshot` at the moment appends switched to the segment being compacted into.
    pub at_rotation: u64,
    pub health: Health,
    /// A compaction is due or was asked for (SIGUSR1), and the compactor has not started it yet.
    pub requested: bool,
    /// The compactor thread must end.
    pub stop: bool,
    /// Encoding buffer, kept to avoid an allocation per record.
    buf: Vec<u8>,
    pub compactions: u64,
    /// Failures injected by tests.
    pub faults: Faults,
}

/// The sync side of the group commit.
pub(super) struct SyncState {
    /// Every position up to this one is on disk.
    pub synced: u64,
    /// A thread is running `fdatasync` right now.
    pub syncing: bool,
}

/// The journal of one data directory. Holding it holds the directory's lock.
pub struct FileJournal {
    pub(super) dir: PathBuf,
    options: Options,
    /// Never read: the open file is what holds the lock, until the journal is dropped (or the process dies).
    _lock: File,
    pub(super) writer: Mutex<Writer>,
    /// Wakes the compactor, and the syncs waiting for a rewrite to end (paired with `writer`).
    pub(super) wake: Condvar,
    pub(super) sync: Mutex<SyncState>,
    /// Wakes the threads waiting for a sync (paired with `sync`).
    synced: Condvar,
    /// `sync.synced`, readable without a lock.
    pub(super) durable: AtomicU64,
    /// The registry's live size, kept up to date by the store.
    live: Arc<AtomicU64>,
    /// One compaction at a time, whoever starts it.
    pub(super) compacting: Mutex<()>,
}

impl std::fmt::Debug for FileJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileJournal").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Locks a mutex whose holder may have panicked: every critical section here leaves the state consistent
/// between statements, so the data is still good.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn refused(reason: &Failure) -> io::Error {
    io::Error::other(JournalError::Diverged { reason: reason.clone() })
}

/// A copy of `e` to keep as a [`Failure`]'s cause while `e` itself goes back to the caller: the same OS error
/// when it is one, else the same kind and message.
fn shared(e: &io::Error) -> Arc<io::Error> {
    Arc::new(match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    })
}

impl FileJournal {
    /// Locks `dir` (creating it if needed), replays its snapshot and journal into `store` (which must be empty
    /// and have no journal yet), and returns the journal positioned to append after the last intact record.
    pub fn open(dir: &Path, store: &Store, options: Options) -> Result<FileJournal, JournalError> {
        std::fs::create_dir_all(dir).map_err(JournalError::io(dir))?;
        let lock_file = lock_dir(dir)?;
        let found = recovery::recover(dir, store)?;
        let (file, segment_len) = match found.last_segment {
            Some((gen, len)) if gen == found.next_gen => (open_for_append(&dir.join(segment_name(gen)))?, len),
            _ => {
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
            snapshot_bytes: found.snapshot_bytes,
            at_rotation: 0,
            health: Health::Healthy,
            requested: false,
            stop: false,
            buf: Vec::with_capacity(format::MAX_RECORD_LEN),
            compactions: 0,
            faults: Faults::NONE,
        };
        let journal = FileJournal {
            dir: dir.to_owned(),
            options,
            _lock: lock_file,
            writer: Mutex::new(writer),
            wake: Condvar::new(),
            sync: Mutex::new(SyncState { synced: 0, syncing: false }),
            synced: Condvar::new(),
            durable: AtomicU64::new(0),
            live: store.live_counter(),
            compacting: Mutex::new(()),
        };
        // The recovered directory may already be due (a backlog delivered just before a crash).
        let mut w = lock(&journal.writer);
        w.requested = journal.due(&w);
        drop(w);
        Ok(journal)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compactions completed since this journal was opened.
    pub fn compactions(&self) -> u64 {
        lock(&self.writer).compactions
    }

    /// True when the files (snapshot and segments) have grown past [`COMPACT_FACTOR`] times the live state and
    /// past the minimum, and something changed since the last snapshot. Constant time.
    pub(super) fn due(&self, w: &Writer) -> bool {
        let min = self.options.compact_min_bytes.max(COMPACT_MIN_BYTES_FLOOR);
        let live = self.live.load(Ordering::Relaxed);
        let threshold = min.max(live.saturating_mul(COMPACT_FACTOR));
        matches!(w.health, Health::Healthy) && w.since_snapshot > 0 && w.snapshot_bytes + w.since_snapshot >= threshold
    }

    /// Whether a compaction is due now.
    pub fn wants_compaction(&self) -> bool {
        self.due(&lock(&self.writer))
    }

    /// Asks the compactor for a compaction now, due or not (SIGUSR1: operators use it before a backup).
    pub fn request_compaction(&self) {
        lock(&self.writer).requested = true;
        self.wake.notify_all();
    }

    /// Fault injection for the tests: from now on the operations `faults` names fail.
    pub fn inject(&self, faults: Faults) {
        lock(&self.writer).faults = faults;
    }

    /// Fails when the tests injected a failure of file creation.
    pub(super) fn check_files(&self) -> io::Result<()> {
        if lock(&self.writer).faults.files {
            return Err(injected());
        }
        Ok(())
    }

    /// True while the journal refuses changes after a failure.
    pub fn diverged(&self) -> bool {
        matches!(lock(&self.writer).health, Health::Diverged { .. })
    }

    /// Makes everything appended so far durable.
    pub fn sync_all(&self) -> io::Result<()> {
        let written = lock(&self.writer).written;
        self.sync(written)
    }

    /// Marks the journal diverged (see the module documentation) and wakes the compactor to rewrite it.
    pub(super) fn diverge(&self, w: &mut Writer, at: u64, reason: Failure) {
        match &mut w.health {
            Health::Diverged { at: earlier, .. } => *earlier = (*earlier).min(at),
            health => {
                log::error!("journal: {reason}; changes are refused until the journal is rewritten from memory");
                *health = Health::Diverged { at, reason };
            }
        }
        self.wake.notify_all();
    }

    /// Runs `fdatasync` on every file that may hold unsynced bytes; returns the position now durable.
    fn sync_files(&self) -> io::Result<u64> {
        let (target, files) = {
            let w = lock(&self.writer);
            if w.faults.sync {
                return Err(injected());
            }
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

    /// Waits while the journal is being rewritten (it ends either way: written, or failed and diverged again);
    /// an error when `position` can no longer be made durable.
    fn check_health(&self, position: u64) -> io::Result<()> {
        let mut w = lock(&self.writer);
        while matches!(w.health, Health::Resyncing) {
            w = self.wake.wait(w).unwrap_or_else(|p| p.into_inner());
        }
        match &w.health {
            Health::Diverged { at, reason } if position > *at => Err(refused(reason)),
            _ => Ok(()),
        }
    }

    /// The end of a rewrite from memory: everything before `from` is in the new snapshot, so it is durable.
    pub(super) fn mark_durable(&self, from: u64) {
        let mut s = lock(&self.sync);
        s.synced = s.synced.max(from);
        self.durable.store(s.synced, Ordering::Release);
        self.synced.notify_all();
    }
}

impl Journal for FileJournal {
    fn append(&self, record: &Record<'_>) -> io::Result<u64> {
        let mut w = lock(&self.writer);
        if let Health::Diverged { reason, .. } = &w.health {
            return Err(refused(reason));
        }
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        let result = match format::encode_change(record, &mut buf) {
            Err(e) => Err(e.into()),
            Ok(()) => match if w.faults.fails(record) { Err(injected()) } else { (&*w.file).write_all(&buf) } {
                Ok(()) => {
                    let n = buf.len() as u64;
                    w.segment_len += n;
                    w.written += n;
                    w.since_snapshot += n;
                    Ok(w.written)
                }
                Err(e) => {
                    // A partial record in the middle of the journal would stop the next start-up: cut it off.
                    let at = w.written;
                    if let Err(e2) = w.file.set_len(w.segment_len) {
                        let reason = Failure::Rollback { write: shared(&e), rollback: Arc::new(e2) };
                        self.diverge(&mut w, at, reason);
                    } else if matches!(record, Record::Pop { .. } | Record::Ack { .. }) {
                        // Memory changes anyway (the push went out): the files no longer describe it.
                        self.diverge(&mut w, at, Failure::Delivery(shared(&e)));
                    }
                    Err(e)
                }
            },
        };
        w.buf = buf;
        if !w.requested && self.due(&w) {
            w.requested = true;
            self.wake.notify_all();
        }
        result
    }

    fn sync(&self, position: u64) -> io::Result<()> {
        loop {
            self.check_health(position)?;
            let mut s = lock(&self.sync);
            while s.synced < position && s.syncing {
                s = self.synced.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            if s.synced >= position {
                return Ok(());
            }
            // This thread syncs for everyone who has written so far.
            s.syncing = true;
            drop(s);
            let result = self.sync_files();
            let mut s = lock(&self.sync);
            s.syncing = false;
            let synced = s.synced;
            if let Ok(target) = result {
                s.synced = synced.max(target);
                self.durable.store(s.synced, Ordering::Release);
            }
            self.synced.notify_all();
            drop(s);
            if let Err(e) = result {
                self.diverge(&mut lock(&self.writer), synced, Failure::Sync(shared(&e)));
                return Err(e);
            }
            // Our position was written before the sync started, so it is covered unless the journal was
            // rewritten meanwhile: then look again.
        }
    }

    fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    fn kept(&self) -> u64 {
        match &lock(&self.writer).health {
            Health::Diverged { at, .. } => *at,
            _ => self.durable(),
        }
    }
}
