//! The bytes on disk: file headers, frames and records. No file handling here, only encoding and decoding.
//!
//! A file is a header followed by frames. The header is a magic (which kind of file), the generation number
//! that is also in the file's name, and a CRC of both, so a file that was renamed, truncated to nothing or
//! overwritten is caught at once. A frame is
//!
//! ```text
//! len: u16 LE | !len: u16 LE | crc32(payload): u32 LE | payload (len bytes)
//! ```
//!
//! The length is stored with its complement so that a damaged length is recognised as damage, not mistaken for
//! a record cut short by a crash (which would be silently dropped). The payload is a tag byte and the record's
//! fields; strings are a u16 LE length and UTF-8 bytes, numbers are little-endian.

use std::io;

mod damage;
mod frames;
pub use damage::Damage;
pub use frames::{read_full, Frame, FrameReader};

use crate::store::{Entry, Record, UserView, POP_UNCHECKED};

/// Magic at the start of a journal segment (format version 1).
pub const JOURNAL_MAGIC: [u8; 8] = *b"MSGJRNL1";
/// Magic at the start of a snapshot (format version 1).
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"MSGSNAP1";
/// Magic of a snapshot written to recover from a failed write or sync: the journal segment of its generation is
/// renamed into place only after it, so recovery accepts this snapshot without that segment.
pub const RESYNC_SNAPSHOT_MAGIC: [u8; 8] = *b"MSGSNAPR";
/// Magic, generation (u64) and the CRC of both (u32).
pub const FILE_HEADER_LEN: usize = 8 + 8 + 4;
/// Length, its complement and the payload's CRC.
pub const FRAME_HEADER_LEN: usize = 2 + 2 + 4;
/// Largest payload of one frame. The largest record (four 255-byte fields and a few numbers) needs about 1 KiB;
/// anything longer is damage.
pub const MAX_RECORD_LEN: usize = 4096;

// Payload tags. 1–5 are changes (journal segments), 16–19 exist only in snapshots.
const TAG_REGISTER: u8 = 1;
const TAG_UNREGISTER: u8 = 2;
const TAG_MESSAGE: u8 = 3;
const TAG_ACK: u8 = 4;
/// A `Pop` of the first format, which did not name the entry it removed; still read, never written.
const TAG_POP_UNNUMBERED: u8 = 5;
const TAG_POP: u8 = 6;
/// A snapshot user of the first format, without registration and queue numbers; still read, never written.
const TAG_USER_UNNUMBERED: u8 = 16;
const TAG_QUEUED_MESSAGE: u8 = 17;
const TAG_QUEUED_ACK: u8 = 18;
const TAG_END: u8 = 19;
const TAG_USER: u8 = 20;

/// A record read back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Register {
        full_name: String,
        alias: String,
        birth_date: String,
    },
    Unregister {
        alias: String,
    },
    Message {
        sender: String,
        recipient: String,
        id: u32,
        text: String,
    },
    Ack {
        to: String,
        id: u32,
    },
    Pop {
        alias: String,
        /// The entry removed ([`POP_UNCHECKED`] in the first format).
        number: u64,
    },
    /// Snapshot: a user; the queue entries that follow belong to it.
    User {
        /// Registration number (`None` in the first format).
        seq: Option<u64>,
        alias: String,
        full_name: String,
        birth_date: String,
        last_id: u32,
        /// Number of the first queue entry that follows.
        queue_head: u64,
    },
    /// Snapshot: a message in the queue of the last user.
    QueuedMessage {
        sender: String,
        id: u32,
        text: String,
    },
    /// Snapshot: an acknowledgement in the queue of the last user.
    QueuedAck {
        id: u32,
    },
    /// Snapshot: the last frame, with the counts it must have seen (a snapshot cut short is damage).
    End {
        users: u64,
        entries: u64,
    },
}

impl Decoded {
    /// The journalled change this is, or `None` for a snapshot-only record.
    pub fn as_change(&self) -> Option<Record<'_>> {
        Some(match self {
            Decoded::Register { full_name, alias, birth_date } => Record::Register { full_name, alias, birth_date },
            Decoded::Unregister { alias } => Record::Unregister { alias },
            Decoded::Message { sender, recipient, id, text } => Record::Message { sender, recipient, id: *id, text },
            Decoded::Ack { to, id } => Record::Ack { to, id: *id },
            Decoded::Pop { alias, number } => Record::Pop { alias, number: *number },
            _ => return None,
        })
    }
}

/// A record that cannot be framed (a field or the whole payload is too long).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record longer than {MAX_RECORD_LEN} bytes")]
pub struct TooLong;

impl From<TooLong> for io::Error {
    fn from(e: TooLong) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// The header of a file of kind `magic` and generation `gen`.
pub fn file_header(magic: [u8; 8], gen: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&magic);
    h[8..16].copy_from_slice(&gen.to_le_bytes());
    let crc = crc32fast::hash(&h[..16]);
    h[16..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a header read from a file expected to be of kind `magic` and generation `gen`.
pub fn check_file_header(h: &[u8], magic: [u8; 8], gen: u64) -> Result<(), Damage> {
    if h.len() < FILE_HEADER_LEN {
        return Err(Damage::ShortHeader);
    }
    if h[..FILE_HEADER_LEN] != file_header(magic, gen) {
        return Err(Damage::BadHeader);
    }
    Ok(())
}

/// Appends one frame for a journalled change.
pub fn encode_change(record: &Record<'_>, out: &mut Vec<u8>) -> Result<(), TooLong> {
    frame(out, |p| match *record {
        Record::Register { full_name, alias, birth_date } => {
            p.push(TAG_REGISTER);
            put_str(p, full_name)?;
            put_str(p, alias)?;
            put_str(p, birth_date)
        }
        Record::Unregister { alias } => {
            p.push(TAG_UNREGISTER);
            put_str(p, alias)
        }
        Record::Message { sender, recipient, id, text } => {
            p.push(TAG_MESSAGE);
            put_str(p, sender)?;
            put_str(p, recipient)?;
            p.extend_from_slice(&id.to_le_bytes());
            put_str(p, text)
        }
        Record::Ack { to, id } => {
            p.push(TAG_ACK);
            put_str(p, to)?;
            p.extend_from_slice(&id.to_le_bytes());
            Ok(())
        }
        Record::Pop { alias, number } => {
            p.push(TAG_POP);
            put_str(p, alias)?;
            p.extend_from_slice(&number.to_le_bytes());
            Ok(())
        }
    })
}

/// Appends one snapshot frame for a user (its queue entries follow).
pub fn encode_user(user: &UserView<'_>, out: &mut Vec<u8>) -> Result<(), TooLong> {
    frame(out, |p| {
        p.push(TAG_USER);
        put_str(p, user.alias)?;
        put_str(p, user.full_name)?;
        put_str(p, user.birth_date)?;
        p.extend_from_slice(&user.last_id.to_le_bytes());
        p.extend_from_slice(&user.seq.to_le_bytes());
        p.extend_from_slice(&user.queue_head.to_le_bytes());
        Ok(())
    })
}

/// Appends a user's snapshot frame followed by one frame per queued entry.
pub fn encode_user_and_queue(user: &UserView<'_>, out: &mut Vec<u8>) -> Result<(), TooLong> {
    encode_user(user, out)?;
    for entry in user.queue {
        match entry {
            Entry::Message { sender, id, text } => encode_queued_message(sender, *id, text, out)?,
            Entry::Ack { id } => encode_queued_ack(*id, out)?,
        }
    }
    Ok(())
}

/// Appends one snapshot frame for a queued message of the last user.
pub fn encode_queued_message(sender: &str, id: u32, text: &str, out: &mut Vec<u8>) -> Result<(), TooLong> {
    frame(out, |p| {
        p.push(TAG_QUEUED_MESSAGE);
        put_str(p, sender)?;
        p.extend_from_slice(&id.to_le_bytes());
        put_str(p, text)
    })
}

/// Appends one snapshot frame for a queued acknowledgement of the last user.
pub fn encode_queued_ack(id: u32, out: &mut Vec<u8>) -> Result<(), TooLong> {
    frame(out, |p| {
        p.push(TAG_QUEUED_ACK);
        p.extend_from_slice(&id.to_le_bytes());
        Ok(())
    })
}

/// Appends the final snapshot frame.
pub fn encode_end(users: u64, entries: u64, out: &mut Vec<u8>) -> Result<(), TooLong> {
    frame(out, |p| {
        p.push(TAG_END);
        p.extend_from_slice(&users.to_le_bytes());
        p.extend_from_slice(&entries.to_le_bytes());
        Ok(())
    })
}

/// Writes a frame around the payload that `fill` appends; on error `out` is left as it was.
fn frame(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>) -> Result<(), TooLong>) -> Result<(), TooLong> {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    let filled = fill(out);
    let len = out.len() - start - FRAME_HEADER_LEN;
    let len16 = match (filled, u16::try_from(len)) {
        (Ok(()), Ok(l)) if len <= MAX_RECORD_LEN => l,
        _ => {
            out.truncate(start);
            return Err(TooLong);
        }
    };
    let crc = crc32fast::hash(&out[start + FRAME_HEADER_LEN..]);
    out[start..start + 2].copy_from_slice(&len16.to_le_bytes());
    out[start + 2..start + 4].copy_from_slice(&(!len16).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn put_str(p: &mut Vec<u8>, s: &str) -> Result<(), TooLong> {
    let len = u16::try_from(s.len()).map_err(|_| TooLong)?;
    p.extend_from_slice(&len.to_le_bytes());
    p.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Decodes one payload. Every byte must be used: trailing bytes are damage too.
pub fn decode(payload: &[u8]) -> Result<Decoded, Damage> {
    let mut c = Cursor(payload);
    let record = match c.u8()? {
        TAG_REGISTER => Decoded::Register { full_name: c.string()?, alias: c.string()?, birth_date: c.string()? },
        TAG_UNREGISTER => Decoded::Unregister { alias: c.string()? },
        TAG_MESSAGE => {
            Decoded::Message { sender: c.string()?, recipient: c.string()?, id: c.u32()?, text: c.string()? }
        }
        TAG_ACK => Decoded::Ack { to: c.string()?, id: c.u32()? },
        TAG_POP_UNNUMBERED => Decoded::Pop { alias: c.string()?, number: POP_UNCHECKED },
        TAG_POP => Decoded::Pop { alias: c.string()?, number: c.u64()? },
        TAG_USER_UNNUMBERED => Decoded::User {
            alias: c.string()?,
            full_name: c.string()?,
            birth_date: c.string()?,
            last_id: c.u32()?,
            seq: None,
            queue_head: 0,
        },
        TAG_USER => Decoded::User {
            alias: c.string()?,
            full_name: c.string()?,
            birth_date: c.string()?,
            last_id: c.u32()?,
            seq: Some(c.u64()?),
            queue_head: c.u64()?,
        },
        TAG_QUEUED_MESSAGE => Decoded::QueuedMessage { sender: c.string()?, id: c.u32()?, text: c.string()? },
        TAG_QUEUED_ACK => Decoded::QueuedAck { id: c.u32()? },
        TAG_END => Decoded::End { users: c.u64()?, entries: c.u64()? },
        _ => return Err(Damage::UnknownTag),
    };
    if !c.0.is_empty() {
        return Err(Damage::TrailingBytes);
    }
    Ok(record)
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Damage> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(Damage::EndsInField)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, Damage> {
        Ok(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Damage> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, Damage> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn string(&mut self) -> Result<String, Damage> {
        let len = usize::from(u16::from_le_bytes(self.take()?));
        if len > self.0.len() {
            return Err(Damage::EndsInString);
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(s.to_vec()).map_err(|_| Damage::NotUtf8)
    }
}

#[cfg(test)]
mod tests;
