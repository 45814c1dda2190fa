//! What can be wrong with the bytes of a journal or snapshot file: one variant per finding, so recovery, its
//! error and its tests name the same cause.

use std::fmt;

/// Why a file, a frame or a record cannot be trusted (or, for a torn tail, why it was cut off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The file is shorter than its header.
    ShortHeader,
    /// The header names another kind of file, another generation than the file's name, or is damaged.
    BadHeader,
    /// The file ends with zeros where a frame should start (space allocated, never written).
    ZeroTail,
    /// The file ends inside a frame header.
    EndsInFrameHeader,
    /// A frame's length and its check do not agree.
    BadFrameLength,
    /// A frame's length is zero or beyond the longest record.
    ImpossibleFrameLength,
    /// The file ends inside a record.
    EndsInRecord,
    /// The last record of the file fails its checksum (a torn write).
    FinalChecksum,
    /// A record that other records follow fails its checksum.
    Checksum,
    /// A record starts with a tag this server does not know.
    UnknownTag,
    /// A record's payload goes on after its last field.
    TrailingBytes,
    /// A record ends inside a fixed-size field.
    EndsInField,
    /// A record ends inside a string.
    EndsInString,
    /// A string field is not UTF-8.
    NotUtf8,
    /// A journal segment holds a record only snapshots have.
    SnapshotRecordInSegment,
    /// A record is cut short in a segment that later segments follow (a crash tears only the last one).
    TornBeforeLaterSegments,
    /// A snapshot ends without its end record.
    NoEndRecord,
    /// A snapshot's end record counts other numbers of users and entries than the snapshot holds.
    EndCountsMismatch,
    /// A snapshot goes on after its end record.
    AfterEndRecord,
    /// A snapshot holds a record only journal segments have.
    JournalRecordInSnapshot,
    /// A snapshot holds a queue entry before any user.
    QueueEntryBeforeUser,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Damage::ShortHeader => "file shorter than its header",
            Damage::BadHeader => "bad file header (wrong kind of file, generation not matching its name, or damaged)",
            Damage::ZeroTail => "zero-filled tail",
            Damage::EndsInFrameHeader => "file ends inside a frame header",
            Damage::BadFrameLength => "damaged frame length",
            Damage::ImpossibleFrameLength => "impossible frame length",
            Damage::EndsInRecord => "file ends inside a record",
            Damage::FinalChecksum => "checksum mismatch in the final record",
            Damage::Checksum => "checksum mismatch",
            Damage::UnknownTag => "unknown record tag",
            Damage::TrailingBytes => "bytes left over after the record",
            Damage::EndsInField => "record ends inside a field",
            Damage::EndsInString => "record ends inside a string",
            Damage::NotUtf8 => "string is not UTF-8",
            Damage::SnapshotRecordInSegment => "a snapshot record inside a journal segment",
            Damage::TornBeforeLaterSegments => "a record cut short in a segment that later segments follow",
            Damage::NoEndRecord => "the snapshot ends without its end record",
            Damage::EndCountsMismatch => "the end record's counts do not match the snapshot",
            Damage::AfterEndRecord => "bytes after the end record",
            Damage::JournalRecordInSnapshot => "a journal record inside a snapshot",
            Damage::QueueEntryBeforeUser => "a queue entry before any user",
        })
    }
}

impl std::error::Error for Damage {}
