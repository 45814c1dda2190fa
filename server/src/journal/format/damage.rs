//! What can be wrong with the bytes of a journal or snapshot file: one variant per finding, so recovery, its
//! error and its tests name the same cause.

/// Why a file, a frame or a record cannot be trusted (or, for a torn tail, why it was cut off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// The file is shorter than its header.
    #[error("file shorter than its header")]
    ShortHeader,
    /// The header names another kind of file, another generation than the file's name, or is damaged.
    #[error("bad file header (wrong kind of file, generation not matching its name, or damaged)")]
    BadHeader,
    /// The file ends with zeros where a frame should start (space allocated, never written).
    #[error("zero-filled tail")]
    ZeroTail,
    /// The file ends inside a frame header.
    #[error("file ends inside a frame header")]
    EndsInFrameHeader,
    /// A frame's length and its check do not agree.
    #[error("damaged frame length")]
    BadFrameLength,
    /// A frame's length is zero or beyond the longest record.
    #[error("impossible frame length")]
    ImpossibleFrameLength,
    /// The file ends inside a record.
    #[error("file ends inside a record")]
    EndsInRecord,
    /// The last record of the file fails its checksum (a torn write).
    #[error("checksum mismatch in the final record")]
    FinalChecksum,
    /// A record that other records follow fails its checksum.
    #[error("checksum mismatch")]
    Checksum,
    /// A record starts with a tag this server does not know.
    #[error("unknown record tag")]
    UnknownTag,
    /// A record's payload goes on after its last field.
    #[error("bytes left over after the record")]
    TrailingBytes,
    /// A record ends inside a fixed-size field.
    #[error("record ends inside a field")]
    EndsInField,
    /// A record ends inside a string.
    #[error("record ends inside a string")]
    EndsInString,
    /// A string field is not UTF-8.
    #[error("string is not UTF-8")]
    NotUtf8,
    /// A journal segment holds a record only snapshots have.
    #[error("a snapshot record inside a journal segment")]
    SnapshotRecordInSegment,
    /// A record is cut short in a segment that later segments follow (a crash tears only the last one).
    #[error("a record cut short in a segment that later segments follow")]
    TornBeforeLaterSegments,
    /// A snapshot ends without its end record.
    #[error("the snapshot ends without its end record")]
    NoEndRecord,
    /// A snapshot's end record counts other numbers of users and entries than the snapshot holds.
    #[error("the end record's counts do not match the snapshot")]
    EndCountsMismatch,
    /// A snapshot goes on after its end record.
    #[error("bytes after the end record")]
    AfterEndRecord,
    /// A snapshot holds a record only journal segments have.
    #[error("a journal record inside a snapshot")]
    JournalRecordInSnapshot,
    /// A snapshot holds a queue entry before any user.
    #[error("a queue entry before any user")]
    QueueEntryBeforeUser,
}
