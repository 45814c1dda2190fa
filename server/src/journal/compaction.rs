//! Compaction: a snapshot of the registry and a fresh segment, written while requests go on.
//!
//! Under the registry lock only two constant-time things happen: appends switch to the new segment, and the
//! registry starts a *capture* (see `store::registry`). Then, without the lock, the compactor asks the registry
//! for a chunk of users at a time ([`CAPTURE_CHUNK`]), and writes what it gets to the snapshot file. A request
//! that changes a user the walk has not reached yet first hands that user over as it was (copy on write). So the
//! snapshot is exactly the state at the switch — the new segment holds every change after it — and no request
//! waits for more than one chunk's encoding.
//!
//! Steps: (1) create the next segment (temporary name, synced, renamed, directory synced); (2) switch and start
//! the capture; (3) write the snapshot to a temporary file, sync it, rename it, sync the directory; (4) delete
//! the older files. A crash at any point leaves either the old snapshot and every segment after it, or the new
//! snapshot and its segment: both recover to the same state.
//!
//! The rewrite from memory after a failure (`resync`) is the same walk with one difference: the new segment is
//! renamed into place only after the snapshot, because the older files no longer describe memory and must never
//! be followed by it. Its snapshot has a magic of its own that tells recovery its segment may be missing.

use std::fs::{self, File};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::files::{install_segment, write_segment_tmp};
use super::files::{open_for_append, remove_older, segment_name, snapshot_name, sync_dir, tmp_name};
use super::writer::{lock, FileJournal, Health};
use super::{format, CompactStep, Failure, JournalError, COMPACT_RETRY_DELAY, COMPACT_RETRY_MAX, RESYNC_RETRY_MAX};
use crate::store::{SnapshotSink, Store, UserView};

/// Users encoded per lock acquisition while a snapshot is written: about a tenth of a millisecond of work.
pub const CAPTURE_CHUNK: usize = 512;

/// Where the registry hands the users of a snapshot: frames encoded in memory, taken by the compactor.
#[derive(Default)]
struct SnapshotBuf {
    inner: Mutex<Encoded>,
}

#[derive(Default)]
struct Encoded {
    bytes: Vec<u8>,
    users: u64,
    entries: u64,
    too_long: bool,
}

impl SnapshotSink for SnapshotBuf {
    fn user(&self, user: &UserView<'_>) {
        let mut e = lock(&self.inner);
        if format::encode_user_and_queue(user, &mut e.bytes).is_err() {
            e.too_long = true;
        }
        e.users += 1;
        e.entries += user.queue.len() as u64;
    }
}

/// What a written snapshot holds.
struct Written {
    bytes: u64,
    users: u64,
    entries: u64,
}

enum Work {
    Compact,
    Resync,
}

impl FileJournal {
    /// Compacts: snapshot of the live state, a fresh segment, older files deleted.
    pub fn compact(&self, store: &Store) -> Result<(), JournalError> {
        self.compact_until(store, CompactStep::Done)
    }

    /// Fault injection for the tests: runs a compaction up to and including `last`, then returns as if the
    /// process had died there (nothing is cleaned up, and the in-memory accounting is only updated at
    /// [`CompactStep::Done`]). `store` must be the registry that journals into `self`.
    pub fn compact_until(&self, store: &Store, last: CompactStep) -> Result<(), JournalError> {
        let _one_at_a_time = lock(&self.compacting);
        let started = Instant::now();
        let new_gen = lock(&self.writer).gen + 1;
        self.check_files().map_err(JournalError::io(&self.dir))?;
        write_segment_tmp(&self.dir, new_gen)?;
        if last == CompactStep::SegmentWritten {
            return Ok(());
        }
        let file = install_segment(&self.dir, new_gen)?;
        if last == CompactStep::SegmentInPlace {
            return Ok(());
        }
        let sink = Arc::new(SnapshotBuf::default());
        let end = store.begin_snapshot(sink.clone(), || self.rotate(file, new_gen, false));
        if last == CompactStep::Rotated {
            store.abort_snapshot();
            return Ok(());
        }
        // The older segments are finished: sync them now, from this background thread, so their descriptors are
        // closed (a deleted file's space is only freed then) even when no request commits for a while.
        let path = self.dir.join(segment_name(new_gen - 1));
        crate::store::Journal::sync(self, end).map_err(|source| {
            store.abort_snapshot();
            JournalError::Io { path, source }
        })?;
        let written = self.write_snapshot(store, &sink, new_gen, format::SNAPSHOT_MAGIC, last)?;
        if last <= CompactStep::SnapshotInPlace {
            return Ok(());
        }
        remove_older(&self.dir, new_gen, "journal-", ".log");
        if last == CompactStep::OldSegmentsRemoved {
            return Ok(());
        }
        remove_older(&self.dir, new_gen, "snapshot-", ".snap");
        if let Err(e) = sync_dir(&self.dir) {
            log::warn!("journal compaction: {e}");
        }
        self.finished(&written);
        log::info!(
            "journal: compaction done in {} ms: {} ({} users, {} queued, {} bytes)",
            started.elapsed().as_millis(),
            snapshot_name(new_gen),
            written.users,
            written.entries,
            written.bytes
        );
        Ok(())
    }

    /// Rewrites the journal from memory after a failure (module documentation), as the compactor thread does
    /// by itself; on success, changes are accepted again and everything before the switch is durable. Does
    /// nothing when the journal has not diverged.
    pub fn rewrite(&self, store: &Store) -> Result<(), JournalError> {
        let _one_at_a_time = lock(&self.compacting);
        if !self.diverged() {
            return Ok(());
        }
        let started = Instant::now();
        let new_gen = lock(&self.writer).gen + 1;
        self.check_files().map_err(JournalError::io(&self.dir))?;
        write_segment_tmp(&self.dir, new_gen)?;
        let tmp = self.dir.join(tmp_name(&segment_name(new_gen)));
        let file = open_for_append(&tmp)?;
        let sink = Arc::new(SnapshotBuf::default());
        let from = store.begin_snapshot(sink.clone(), || self.rotate(file, new_gen, true));
        let result = self
            .check_files()
            .map_err(JournalError::io(&self.dir))
            .and_then(|()| self.write_snapshot(store, &sink, new_gen, format::RESYNC_SNAPSHOT_MAGIC, CompactStep::Done))
            .and_then(|written| {
                let path = self.dir.join(segment_name(new_gen));
                fs::rename(&tmp, &path).map_err(JournalError::io(&path))?;
                sync_dir(&self.dir)?;
                Ok(written)
            });
        let written = match result {
            Ok(w) => w,
            Err(e) => {
                store.abort_snapshot();
                let _ = fs::remove_file(&tmp);
                let at = self.durable.load(std::sync::atomic::Ordering::Acquire);
                // The failure is kept as the reason changes are refused, and returned as that refusal.
                let reason = Failure::Rewrite(Arc::new(e));
                self.diverge(&mut lock(&self.writer), at, reason.clone());
                return Err(JournalError::Diverged { reason });
            }
        };
        {
            let mut w = lock(&self.writer);
            if matches!(w.health, Health::Resyncing) {
                w.health = Health::Healthy;
            }
        }
        self.mark_durable(from);
        self.wake.notify_all();
        remove_older(&self.dir, new_gen, "journal-", ".log");
        remove_older(&self.dir, new_gen, "snapshot-", ".snap");
        let _ = sync_dir(&self.dir);
        self.finished(&written);
        log::warn!(
            "journal: rewritten from memory after a failure in {} ms ({} users, {} queued): changes are accepted again",
            started.elapsed().as_millis(),
            written.users,
            written.entries
        );
        Ok(())
    }

    /// Under the registry lock: appends switch to `file`, the segment of `gen`. Returns the position at the switch.
    fn rotate(&self, file: File, gen: u64, resync: bool) -> u64 {
        let mut w = lock(&self.writer);
        let old = std::mem::replace(&mut w.file, Arc::new(file));
        let end = w.written;
        if resync {
            // The older files are abandoned, never synced again; the snapshot replaces them.
            w.retired.clear();
            w.health = Health::Resyncing;
        } else {
            w.retired.push((old, end));
        }
        w.gen = gen;
        w.segment_len = format::FILE_HEADER_LEN as u64;
        w.at_rotation = w.since_snapshot;
        end
    }

    /// The accounting after a complete compaction or rewrite.
    fn finished(&self, written: &Written) {
        let mut w = lock(&self.writer);
        w.since_snapshot = w.since_snapshot.saturating_sub(w.at_rotation);
        w.snapshot_bytes = written.bytes;
        w.compactions += 1;
    }

    /// Step 3: walks the registry's capture into the snapshot file of `gen`, up to `last`.
    fn write_snapshot(
        &self,
        store: &Store,
        sink: &SnapshotBuf,
        gen: u64,
        magic: [u8; 8],
        last: CompactStep,
    ) -> Result<Written, JournalError> {
        let path = self.dir.join(snapshot_name(gen));
        let tmp = self.dir.join(tmp_name(&snapshot_name(gen)));
        let io_err = |source| JournalError::Io { path: tmp.clone(), source };
        let result = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(&format::file_header(magic, gen))?;
            let mut bytes = format::FILE_HEADER_LEN as u64;
            loop {
                let done = store.snapshot_step(CAPTURE_CHUNK);
                let chunk = std::mem::take(&mut lock(&sink.inner).bytes);
                file.write_all(&chunk)?;
                bytes += chunk.len() as u64;
                if done {
                    break;
                }
            }
            let e = lock(&sink.inner);
            if e.too_long {
                return Err(format::TooLong.into());
            }
            let mut end = Vec::new();
            format::encode_end(e.users, e.entries, &mut end)?;
            file.write_all(&end)?;
            bytes += end.len() as u64;
            if last == CompactStep::SnapshotPartial {
                file.set_len(bytes / 2)?;
            } else {
                file.sync_all()?;
            }
            Ok(Written { bytes, users: e.users, entries: e.entries })
        })();
        let written = match result {
            Ok(w) => w,
            Err(source) => {
                store.abort_snapshot();
                // Best effort: a leftover temporary file is also removed at the next start-up.
                let _ = fs::remove_file(&tmp);
                return Err(io_err(source));
            }
        };
        if last <= CompactStep::SnapshotSynced {
            return Ok(written);
        }
        fs::rename(&tmp, &path).map_err(JournalError::io(&path))?;
        sync_dir(&self.dir)?;
        Ok(written)
    }

    /// The compactor thread's loop: compacts when due or asked (SIGUSR1), rewrites the journal after a failure,
    /// until [`FileJournal::stop_compactor`].
    pub(super) fn compactor(&self, store: &Store) {
        let mut retry = COMPACT_RETRY_DELAY;
        loop {
            let work = {
                let mut w = lock(&self.writer);
                loop {
                    if w.stop {
                        return;
                    }
                    if matches!(w.health, Health::Diverged { .. }) {
                        break Work::Resync;
                    }
                    if w.requested {
                        w.requested = false;
                        break Work::Compact;
                    }
                    w = self.wake.wait(w).unwrap_or_else(|p| p.into_inner());
                }
            };
            let (result, max) = match work {
                Work::Compact => (self.compact(store), COMPACT_RETRY_MAX),
                Work::Resync => (self.rewrite(store), RESYNC_RETRY_MAX),
            };
            match result {
                Ok(()) => retry = COMPACT_RETRY_DELAY,
                Err(e) => {
                    log::error!("journal compaction failed: {e}; next attempt in {retry:?}");
                    let w = lock(&self.writer);
                    let (mut w, _) =
                        self.wake.wait_timeout_while(w, retry, |w| !w.stop).unwrap_or_else(|p| p.into_inner());
                    retry = (retry * 2).min(max);
                    w.requested = self.due(&w);
                }
            }
        }
    }

    pub(super) fn stop_compactor(&self) {
        lock(&self.writer).stop = true;
        self.wake.notify_all();
    }
}
