//! Start-up: rebuild the registry from the data directory.
//!
//! The newest snapshot (if any) is loaded, then every segment from its generation on is replayed in order.
//! Only the last segment may end in a torn record: a crash interrupts at most the write in progress, and a new
//! segment only starts after the previous one was complete. That record was never acknowledged (its sync had not
//! returned), so it is logged with its offset and cut off. Anything else that does not check out — a bad CRC
//! before the end, a damaged length, a record that does not fit the state, a missing segment, a damaged
//! snapshot — stops the start-up with the file and the offset: a server that loaded half of its data and went on
//! would silently lose acknowledged messages. Only after everything loaded are leftovers deleted: temporary files
//! and the files older than the snapshot (a compaction that crashed before deleting them).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::{install_segment, parse_gen, segment_name, snapshot_name, sync_dir, write_segment_tmp};
use super::format::{self, Damage, Decoded, Frame, FrameReader, FILE_HEADER_LEN};
use super::{Gap, JournalError, LOCK_FILE};
use crate::store::{Entry, RestoredUser, Store};

/// Read buffer for snapshots and segments: large sequential reads.
const READ_BUFFER: usize = 1 << 20;

/// What recovery found, for the journal that continues from it.
#[derive(Debug)]
pub(super) struct Found {
    /// The generation appends continue in.
    pub next_gen: u64,
    /// The last segment present, with its length after any torn tail was cut.
    pub last_segment: Option<(u64, u64)>,
    /// Record bytes in the segments since the snapshot.
    pub journal_bytes: u64,
    /// Size of the snapshot loaded (0: none).
    pub snapshot_bytes: u64,
}

/// The journal files of a directory.
#[derive(Debug, Default)]
struct Listing {
    snapshots: BTreeSet<u64>,
    segments: BTreeSet<u64>,
    tmps: Vec<PathBuf>,
}

fn list(dir: &Path) -> Result<Listing, JournalError> {
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir).map_err(JournalError::io(dir))? {
        let entry = entry.map_err(JournalError::io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == LOCK_FILE {
            continue;
        }
        if name.ends_with(".tmp") && (name.starts_with("journal-") || name.starts_with("snapshot-")) {
            listing.tmps.push(entry.path());
        } else if let Some(gen) = parse_gen(name, "journal-", ".log") {
            listing.segments.insert(gen);
        } else if let Some(gen) = parse_gen(name, "snapshot-", ".snap") {
            listing.snapshots.insert(gen);
        } else {
            log::debug!("journal: ignoring {name} in the data directory");
        }
    }
    Ok(listing)
}

/// Replays `dir` into `store` (empty) and tidies the directory.
pub(super) fn recover(dir: &Path, store: &Store) -> Result<Found, JournalError> {
    let mut listing = list(dir)?;
    let base = listing.snapshots.last().copied();
    let mut snapshot = Loaded::default();
    if let Some(gen) = base {
        snapshot = load_snapshot(&dir.join(snapshot_name(gen)), gen, store)?;
        if snapshot.resync && !listing.segments.contains(&gen) {
            // A rewrite from memory renames its segment into place after the snapshot; a crash in between loses
            // only records nobody was told were durable.
            log::warn!("journal: {} has no segment yet (a rewrite was interrupted): starting one", snapshot_name(gen));
            write_segment_tmp(dir, gen)?;
            drop(install_segment(dir, gen)?);
            listing.segments.insert(gen);
            listing.tmps.retain(|p| p.file_name().is_some_and(|n| *n != *super::files::tmp_name(&segment_name(gen))));
        }
    }
    // Without a snapshot, history must start at the very first segment.
    let first = base.unwrap_or(1);
    let live: Vec<u64> = listing.segments.range(first..).copied().collect();
    for (expected, &gen) in (first..).zip(&live) {
        if gen != expected {
            return Err(JournalError::Missing {
                path: dir.join(segment_name(expected)),
                reason: Gap::LaterSegmentsExist,
            });
        }
    }
    if let (Some(gen), true) = (base, live.is_empty()) {
        // The segment is created (and its name synced) before the snapshot is even written.
        return Err(JournalError::Missing { path: dir.join(segment_name(gen)), reason: Gap::SnapshotWithoutSegment });
    }
    let mut journal_bytes = 0;
    let mut last_segment = None;
    let mut records = 0u64;
    for (i, &gen) in live.iter().enumerate() {
        let is_last = i + 1 == live.len();
        let (len, n) = replay_segment(&dir.join(segment_name(gen)), gen, store, is_last)?;
        journal_bytes += len.saturating_sub(FILE_HEADER_LEN as u64);
        records += n;
        last_segment = Some((gen, len));
    }

    let stale = listing
        .tmps
        .into_iter()
        .chain(listing.segments.range(..first).map(|&g| dir.join(segment_name(g))))
        .chain(listing.snapshots.range(..first).map(|&g| dir.join(snapshot_name(g))));
    let mut removed = false;
    for path in stale {
        match fs::remove_file(&path) {
            Ok(()) => removed = true,
            Err(e) => log::warn!("journal: cannot delete the leftover {}: {e}", path.display()),
        }
    }
    if removed {
        sync_dir(dir)?;
    }

    log::info!(
        "journal: recovered {} users from {} ({}: {} users, {} queued; {records} records in {} segments)",
        store.len(),
        dir.display(),
        base.map_or("no snapshot".to_owned(), snapshot_name),
        snapshot.users,
        snapshot.entries,
        live.len(),
    );
    Ok(Found {
        next_gen: live.last().copied().unwrap_or(first),
        last_segment,
        journal_bytes,
        snapshot_bytes: snapshot.bytes,
    })
}

type Reader = FrameReader<BufReader<File>>;

/// Opens a file and checks its header against each of `magics`; returns the reader positioned after it, the
/// file's length and the index of the magic found.
fn open_checked(path: &Path, magics: &[[u8; 8]], gen: u64) -> Result<(Reader, u64, usize), JournalError> {
    let file = File::open(path).map_err(JournalError::io(path))?;
    let len = file.metadata().map_err(JournalError::io(path))?.len();
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let mut header = [0u8; FILE_HEADER_LEN];
    let got = format::read_full(&mut reader, &mut header).map_err(JournalError::io(path))?;
    // `magics` is never empty; were it so, no header would be the right one.
    let mut checked = Err(Damage::BadHeader);
    for (i, magic) in magics.iter().enumerate() {
        checked = format::check_file_header(&header[..got], *magic, gen).map(|()| i);
        if checked.is_ok() {
            break;
        }
    }
    let kind = checked.map_err(|reason| JournalError::Corrupt { path: path.to_owned(), offset: 0, reason })?;
    Ok((FrameReader::new(reader, FILE_HEADER_LEN as u64, len), len, kind))
}

/// Replays one segment; returns its valid length and how many records it held. A torn tail is cut off only in
/// the last segment.
fn replay_segment(path: &Path, gen: u64, store: &Store, is_last: bool) -> Result<(u64, u64), JournalError> {
    let (mut frames, len, _) = open_checked(path, &[format::JOURNAL_MAGIC], gen)?;
    let corrupt = |offset, reason| JournalError::Corrupt { path: path.to_owned(), offset, reason };
    let mut records = 0;
    loop {
        match frames.next_frame().map_err(JournalError::io(path))? {
            Frame::Record { offset, record } => {
                let Some(change) = record.as_change() else {
                    return Err(corrupt(offset, Damage::SnapshotRecordInSegment));
                };
                store.replay(&change).map_err(|e| JournalError::Inconsistent {
                    path: path.to_owned(),
                    offset,
                    reason: e,
                })?;
                records += 1;
            }
            Frame::End => return Ok((len, records)),
            Frame::Torn { offset, reason } if is_last => {
                log::warn!(
                    "journal: {} ends in a torn record at offset {offset} ({reason}), left by a crash in the \
                     middle of a write and never acknowledged: cutting off its {} bytes",
                    path.display(),
                    len - offset
                );
                OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| {
                        f.set_len(offset)?;
                        f.sync_all()
                    })
                    .map_err(JournalError::io(path))?;
                return Ok((offset, records));
            }
            Frame::Torn { offset, .. } => {
                return Err(corrupt(offset, Damage::TornBeforeLaterSegments));
            }
            Frame::Corrupt { offset, reason } => return Err(corrupt(offset, reason)),
        }
    }
}

/// What a snapshot held.
#[derive(Debug, Default)]
struct Loaded {
    bytes: u64,
    users: u64,
    entries: u64,
    /// Written by a rewrite from memory: its segment may be missing.
    resync: bool,
}

/// Loads a snapshot into `store`, one user at a time. A snapshot is synced before it gets its name, so it is
/// whole or absent: any defect is damage.
fn load_snapshot(path: &Path, gen: u64, store: &Store) -> Result<Loaded, JournalError> {
    let magics = [format::SNAPSHOT_MAGIC, format::RESYNC_SNAPSHOT_MAGIC];
    let (mut frames, len, kind) = open_checked(path, &magics, gen)?;
    let corrupt = |offset, reason| JournalError::Corrupt { path: path.to_owned(), offset, reason };
    let restore = |user: Option<(u64, RestoredUser)>| match user {
        Some((offset, u)) => {
            store.restore_user(u).map_err(|reason| JournalError::Inconsistent { path: path.to_owned(), offset, reason })
        }
        None => Ok(()),
    };
    let mut loaded = Loaded { bytes: len, resync: kind == 1, ..Loaded::default() };
    let mut current: Option<(u64, RestoredUser)> = None;
    loop {
        let (offset, record) = match frames.next_frame().map_err(JournalError::io(path))? {
            Frame::Record { offset, record } => (offset, record),
            Frame::End => return Err(corrupt(len, Damage::NoEndRecord)),
            Frame::Torn { offset, reason } | Frame::Corrupt { offset, reason } => return Err(corrupt(offset, reason)),
        };
        let entry = match record {
            Decoded::User { seq, alias, full_name, birth_date, last_id, queue_head } => {
                restore(current.take())?;
                let user = RestoredUser { seq, alias, full_name, birth_date, last_id, queue_head, queue: Vec::new() };
                current = Some((offset, user));
                loaded.users += 1;
                continue;
            }
            Decoded::QueuedMessage { sender, id, text } => {
                Entry::Message { sender: Arc::from(sender), id, text: text.into_boxed_str() }
            }
            Decoded::QueuedAck { id } => Entry::Ack { id },
            Decoded::End { users, entries } => {
                if users != loaded.users || entries != loaded.entries {
                    return Err(corrupt(offset, Damage::EndCountsMismatch));
                }
                if !matches!(frames.next_frame().map_err(JournalError::io(path))?, Frame::End) {
                    return Err(corrupt(offset, Damage::AfterEndRecord));
                }
                restore(current.take())?;
                return Ok(loaded);
            }
            _ => return Err(corrupt(offset, Damage::JournalRecordInSnapshot)),
        };
        let (_, user) = current.as_mut().ok_or_else(|| corrupt(offset, Damage::QueueEntryBeforeUser))?;
        user.queue.push(entry);
        loaded.entries += 1;
    }
}
