//! Server → client replies: a status code and, for SEND and CONNECTEDUSERS, what follows it.
//!
//! Encoding follows a [`Dialect`]; decoding recognises every dialect of appendix A.1 by itself, so a client
//! built on this module works unchanged against a server of any profile.

use std::io::BufRead;

use crate::dialect::{Dialect, SendIdForm, StatusForm};
use crate::field::{parse_number, put_field, put_number, FieldError, FieldReader, MAX_FIELD_LEN};
use crate::request::Op;

/// Largest number of bytes a client reads for one reply (a CONNECTEDUSERS list of many users).
pub const MAX_REPLY_LEN: usize = 16 * 1024 * 1024;

macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant = $code),+ }

        impl $name {
            /// The wire code.
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The status with this wire code, if the operation defines one.
            pub fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

status_enum!(
    /// Status of REGISTER (table 4.1).
    RegisterStatus { Ok = 0, AliasInUse = 1, Fail = 2 }
);
status_enum!(
    /// Status of UNREGISTER (table 4.2).
    UnregisterStatus { Ok = 0, NoSuchUser = 1, Fail = 2 }
);
status_enum!(
    /// Status of CONNECT (table 4.3).
    ConnectStatus { Ok = 0, NoSuchUser = 1, AlreadyConnected = 2, Fail = 3 }
);
status_enum!(
    /// Status of DISCONNECT (table 4.4).
    DisconnectStatus { Ok = 0, NoSuchUser = 1, NotConnected = 2, Fail = 3 }
);

/// Reply to SEND (table 4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendReply {
    /// Status 0: accepted under this id.
    Accepted(u32),
    /// Status 1: sender or recipient not registered.
    NoSuchUser,
    /// Status 2: sender not connected, text too long, queue full, or another failure.
    Fail,
}

/// Reply to CONNECTEDUSERS (table 4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersReply {
    /// Status 0: the connected users.
    List(Vec<String>),
    /// Status 1: the requester is not connected.
    NotConnected,
    /// Status 2: the requester is not registered, or another failure.
    Fail,
}

/// A reply to any operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Register(RegisterStatus),
    Unregister(UnregisterStatus),
    Connect(ConnectStatus),
    Disconnect(DisconnectStatus),
    Send(SendReply),
    ConnectedUsers(UsersReply),
}

/// Why a reply could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A field or byte could not be read (end of stream, timeout, reset, cap).
    #[error("malformed reply: {0}")]
    Field(#[from] FieldError),
    /// The first byte is not a status of any dialect.
    #[error("malformed reply: byte {0:#04x} is not a status")]
    BadStatus(u8),
    /// A well-formed status code that this operation does not define.
    #[error("unexpected status code {0}")]
    UnexpectedStatus(u8),
    /// A number field (id, user count) that is not a decimal number in range.
    #[error("malformed reply: bad number field")]
    BadNumber,
}

impl Reply {
    /// The operation this reply answers.
    pub fn op(&self) -> Op {
        match self {
            Reply::Register(_) => Op::Register,
            Reply::Unregister(_) => Op::Unregister,
            Reply::Connect(_) => Op::Connect,
            Reply::Disconnect(_) => Op::Disconnect,
            Reply::Send(_) => Op::Send,
            Reply::ConnectedUsers(_) => Op::ConnectedUsers,
        }
    }

    /// The status code of this reply.
    pub fn code(&self) -> u8 {
        match self {
            Reply::Register(s) => s.code(),
            Reply::Unregister(s) => s.code(),
            Reply::Connect(s) => s.code(),
            Reply::Disconnect(s) => s.code(),
            Reply::Send(SendReply::Accepted(_)) | Reply::ConnectedUsers(UsersReply::List(_)) => 0,
            Reply::Send(SendReply::NoSuchUser) | Reply::ConnectedUsers(UsersReply::NotConnected) => 1,
            Reply::Send(SendReply::Fail) | Reply::ConnectedUsers(UsersReply::Fail) => 2,
        }
    }

    /// The generic failure reply of `op` (table 4.7).
    pub fn generic_failure(op: Op) -> Reply {
        match op {
            Op::Register => Reply::Register(RegisterStatus::Fail),
            Op::Unregister => Reply::Unregister(UnregisterStatus::Fail),
            Op::Connect => Reply::Connect(ConnectStatus::Fail),
            Op::Disconnect => Reply::Disconnect(DisconnectStatus::Fail),
            Op::Send => Reply::Send(SendReply::Fail),
            Op::ConnectedUsers => Reply::ConnectedUsers(UsersReply::Fail),
        }
    }

    /// Appends the wire form of this reply in `dialect`.
    pub fn encode(&self, dialect: Dialect, buf: &mut Vec<u8>) {
        match dialect.status {
            StatusForm::Raw => buf.push(self.code()),
            StatusForm::Ascii => buf.extend_from_slice(&[b'0' + self.code(), 0]),
        }
        match self {
            Reply::Send(reply) => match (dialect.send_id, reply) {
                (SendIdForm::Decimal, SendReply::Accepted(id)) => put_number(buf, u64::from(*id)),
                (SendIdForm::Decimal, _) => {}
                (SendIdForm::AlwaysU32, SendReply::Accepted(id)) => buf.extend_from_slice(&id.to_be_bytes()),
                (SendIdForm::AlwaysU32, _) => buf.extend_from_slice(&[0; 4]),
            },
            Reply::ConnectedUsers(UsersReply::List(users)) => {
                put_number(buf, users.len() as u64);
                for user in users {
                    put_field(buf, user.as_bytes());
                }
            }
            _ => {}
        }
    }

    /// The wire form of this reply in `dialect`.
    pub fn to_bytes(&self, dialect: Dialect) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16);
        self.encode(dialect, &mut buf);
        buf
    }

    /// Reads the reply to `op`, in whichever dialect the server speaks.
    ///
    /// A first byte 0–3 is a raw status; `'0'`–`'3'` followed by `0x00` is an ASCII status. After an ASCII
    /// SEND status 0, a next byte `0x00` announces the 4-byte big-endian id (unambiguous for ids below 2^24),
    /// anything else a decimal id field. After a non-zero status nothing more is read.
    pub fn read_from<R: BufRead>(op: Op, r: &mut FieldReader<R>) -> Result<Reply, ReplyError> {
        let (code, form) = read_status(r)?;
        let unexpected = || ReplyError::UnexpectedStatus(code);
        Ok(match op {
            Op::Register => Reply::Register(RegisterStatus::from_code(code).ok_or_else(unexpected)?),
            Op::Unregister => Reply::Unregister(UnregisterStatus::from_code(code).ok_or_else(unexpected)?),
            Op::Connect => Reply::Connect(ConnectStatus::from_code(code).ok_or_else(unexpected)?),
            Op::Disconnect => Reply::Disconnect(DisconnectStatus::from_code(code).ok_or_else(unexpected)?),
            Op::Send => Reply::Send(match code {
                0 => SendReply::Accepted(read_send_id(form, r)?),
                1 => SendReply::NoSuchUser,
                2 => SendReply::Fail,
                _ => return Err(unexpected()),
            }),
            Op::ConnectedUsers => Reply::ConnectedUsers(match code {
                0 => {
                    let count = read_number(r)?;
                    // The count comes from the peer: grow the list as fields arrive, never trust it up front.
                    let mut users = Vec::new();
                    for _ in 0..count {
                        users.push(r.read_lossy(MAX_FIELD_LEN)?);
                    }
                    UsersReply::List(users)
                }
                1 => UsersReply::NotConnected,
                2 => UsersReply::Fail,
                _ => return Err(unexpected()),
            }),
        })
    }
}

fn read_status<R: BufRead>(r: &mut FieldReader<R>) -> Result<(u8, StatusForm), ReplyError> {
    let first = r.read_byte()?;
    match first {
        0..=3 => Ok((first, StatusForm::Raw)),
        b'0'..=b'3' => match r.read_byte()? {
            0 => Ok((first - b'0', StatusForm::Ascii)),
            _ => Err(ReplyError::BadStatus(first)),
        },
        _ => Err(ReplyError::BadStatus(first)),
    }
}

fn read_send_id<R: BufRead>(form: StatusForm, r: &mut FieldReader<R>) -> Result<u32, ReplyError> {
    if form == StatusForm::Ascii && r.peek_byte()? == Some(0) {
        return Ok(u32::from_be_bytes(r.read_exact_bytes::<4>()?));
    }
    u32::try_from(read_number(r)?).map_err(|_| ReplyError::BadNumber)
}

fn read_number<R: BufRead>(r: &mut FieldReader<R>) -> Result<u64, ReplyError> {
    let raw = r.read_field(MAX_FIELD_LEN)?;
    parse_number(&raw, u64::from(u32::MAX)).ok_or(ReplyError::BadNumber)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Profile;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn decode(op: Op, bytes: &[u8]) -> Result<Reply, ReplyError> {
        Reply::read_from(op, &mut FieldReader::with_cap(Cursor::new(bytes.to_vec()), MAX_REPLY_LEN))
    }

    #[test]
    fn standard_bytes() {
        let d = Dialect::STANDARD;
        assert_eq!(Reply::Register(RegisterStatus::Ok).to_bytes(d), [0]);
        assert_eq!(Reply::Connect(ConnectStatus::Fail).to_bytes(d), [3]);
        assert_eq!(Reply::Send(SendReply::Accepted(7)).to_bytes(d), b"\x007\0");
        assert_eq!(Reply::Send(SendReply::Fail).to_bytes(d), [2]);
        assert_eq!(
            Reply::ConnectedUsers(UsersReply::List(vec!["alice".into(), "bob".into()])).to_bytes(d),
            b"\x002\0alice\0bob\0"
        );
    }

    #[test]
    fn legacy_bytes() {
        let ascii = Profile::Ascii.dialect();
        let u32d = Profile::AsciiU32.dialect();
        assert_eq!(Reply::Disconnect(DisconnectStatus::NotConnected).to_bytes(ascii), b"2\0");
        assert_eq!(Reply::Send(SendReply::Accepted(7)).to_bytes(ascii), b"0\x007\0");
        assert_eq!(Reply::Send(SendReply::Accepted(7)).to_bytes(u32d), b"0\0\0\0\0\x07");
        assert_eq!(Reply::Send(SendReply::NoSuchUser).to_bytes(u32d), b"1\0\0\0\0\0");
    }

    #[test]
    fn auto_detects_every_dialect() {
        for profile in Profile::ALL {
            let d = profile.dialect();
            for reply in [
                Reply::Send(SendReply::Accepted(4242)),
                Reply::Send(SendReply::Fail),
                Reply::Connect(ConnectStatus::AlreadyConnected),
                Reply::ConnectedUsers(UsersReply::List(vec!["x".into()])),
                Reply::ConnectedUsers(UsersReply::NotConnected),
            ] {
                assert_eq!(decode(reply.op(), &reply.to_bytes(d)).unwrap(), reply, "{profile:?}");
            }
        }
    }

    #[test]
    fn garbage_and_wrong_codes_are_errors() {
        assert!(matches!(decode(Op::Register, b"x"), Err(ReplyError::BadStatus(b'x'))));
        assert!(matches!(decode(Op::Register, b"0x"), Err(ReplyError::BadStatus(b'0'))));
        assert!(matches!(decode(Op::Register, &[3]), Err(ReplyError::UnexpectedStatus(3))));
        assert!(matches!(decode(Op::Send, &[0]), Err(ReplyError::Field(FieldError::Eof))));
        assert!(matches!(decode(Op::Send, b"\0abc\0"), Err(ReplyError::BadNumber)));
        assert!(matches!(decode(Op::Register, b""), Err(ReplyError::Field(FieldError::Eof))));
        assert!(matches!(decode(Op::ConnectedUsers, b"\x003\0a\0"), Err(ReplyError::Field(FieldError::Eof))));
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(
            id in 0u32..(1 << 24),
            users in proptest::collection::vec("[^\u{0}]{0,40}", 0..20),
            p in 0usize..3,
        ) {
            let d = Profile::ALL[p].dialect();
            for reply in [Reply::Send(SendReply::Accepted(id)), Reply::ConnectedUsers(UsersReply::List(users.clone()))] {
                prop_assert_eq!(decode(reply.op(), &reply.to_bytes(d)).unwrap(), reply);
            }
        }

        #[test]
        fn standard_ids_round_trip_over_the_whole_range(id in any::<u32>()) {
            let reply = Reply::Send(SendReply::Accepted(id));
            prop_assert_eq!(decode(Op::Send, &reply.to_bytes(Dialect::STANDARD)).unwrap(), reply);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024), op in 0usize..6) {
            let _ = decode(Op::ALL[op], &bytes);
        }
    }
}
