//! The files of a data directory: their names, the lock, creating a segment safely, syncing the directory.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use super::{format, JournalError, LOCK_FILE};

/// Name of the segment of generation `gen`.
pub fn segment_name(gen: u64) -> String {
    format!("journal-{gen:020}.log")
}

/// Name of the snapshot of generation `gen`.
pub fn snapshot_name(gen: u64) -> String {
    format!("snapshot-{gen:020}.snap")
}

/// The temporary name a file is written under before it is renamed into place.
pub(super) fn tmp_name(name: &str) -> String {
    format!("{name}.tmp")
}

/// The generation in a file name `<prefix><20 digits><suffix>`.
pub(super) fn parse_gen(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Makes a directory's entries (creations, renames, deletions) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(JournalError::io(dir))
}

/// First half of creating the segment of generation `gen`: its header under a temporary name, synced. With
/// [`install_segment`], a segment never exists under its real name without its whole header.
pub(super) fn write_segment_tmp(dir: &Path, gen: u64) -> Result<(), JournalError> {
    let tmp = dir.join(tmp_name(&segment_name(gen)));
    let mut file = File::create(&tmp).map_err(JournalError::io(&tmp))?;
    file.write_all(&format::file_header(format::JOURNAL_MAGIC, gen))
        .and_then(|()| file.sync_all())
        .map_err(JournalError::io(&tmp))
}

/// Second half: the real name, the directory synced, and the segment opened for appending.
pub(super) fn install_segment(dir: &Path, gen: u64) -> Result<File, JournalError> {
    let path = dir.join(segment_name(gen));
    fs::rename(dir.join(tmp_name(&segment_name(gen))), &path).map_err(JournalError::io(&path))?;
    sync_dir(dir)?;
    open_for_append(&path)
}

pub(super) fn open_for_append(path: &Path) -> Result<File, JournalError> {
    OpenOptions::new().append(true).open(path).map_err(JournalError::io(path))
}

/// Takes the data directory's lock, or says who holds it.
pub(super) fn lock_dir(dir: &Path) -> Result<File, JournalError> {
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

/// Deletes the files `<prefix><gen><suffix>` older than `keep`. Failing to delete one costs space, not
/// correctness: the next start-up or compaction deletes it.
pub(super) fn remove_older(dir: &Path, keep: u64, prefix: &str, suffix: &str) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            log::warn!("journal compaction: cannot list {}: {e}", dir.display());
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(gen) = name.to_str().and_then(|n| parse_gen(n, prefix, suffix)) else { continue };
        if gen < keep {
            if let Err(e) = fs::remove_file(entry.path()) {
                log::warn!("journal compaction: cannot delete {}: {e}", entry.path().display());
            }
        }
    }
}
