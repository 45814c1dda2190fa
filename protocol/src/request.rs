//! Client → server requests: one operation name and its fields.

use std::fmt;
use std::io::BufRead;

use crate::field::{parse_number, put_field, put_number, FieldError, FieldReader, MAX_FIELD_LEN, MAX_OP_LEN};

/// The six operations of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Register,
    Unregister,
    Connect,
    Disconnect,
    Send,
    ConnectedUsers,
}

impl Op {
    /// Every operation, in the order of the specification.
    pub const ALL: [Op; 6] = [Op::Register, Op::Unregister, Op::Connect, Op::Disconnect, Op::Send, Op::ConnectedUsers];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "REGISTER",
            Op::Unregister => "UNREGISTER",
            Op::Connect => "CONNECT",
            Op::Disconnect => "DISCONNECT",
            Op::Send => "SEND",
            Op::ConnectedUsers => "CONNECTEDUSERS",
        }
    }

    /// The operation with this exact (case-sensitive) wire name.
    pub fn from_name(name: &[u8]) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name().as_bytes() == name)
    }

    /// Number of fields after the name.
    pub fn field_count(self) -> usize {
        match self {
            Op::Register | Op::Send => 3,
            Op::Connect => 2,
            Op::Unregister | Op::Disconnect | Op::ConnectedUsers => 1,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Register { full_name: String, alias: String, birth_date: String },
    Unregister { alias: String },
    Connect { alias: String, port: u16 },
    Disconnect { alias: String },
    Send { sender: String, recipient: String, text: String },
    ConnectedUsers { alias: String },
}

/// Why a request field was rejected although the request arrived complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// A field's content exceeded [`MAX_FIELD_LEN`] bytes.
    FieldTooLong,
    /// A field was not valid UTF-8.
    NotUtf8,
    /// REGISTER with an empty alias.
    EmptyAlias,
    /// CONNECT with a port that is not a decimal number in 1–65535.
    BadPort,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invalid::FieldTooLong => "field longer than 255 bytes",
            Invalid::NotUtf8 => "field is not valid UTF-8",
            Invalid::EmptyAlias => "empty alias",
            Invalid::BadPort => "port is not a number in 1-65535",
        })
    }
}

/// Why no request could be decoded. Exhaustive on purpose: a server must decide what to do with each case.
#[derive(Debug)]
pub enum RequestError {
    /// The peer closed the connection without sending a byte: ignore silently.
    Empty,
    /// An operation name this protocol does not know (shown lossily, for the log): close without reply.
    UnknownOp(String),
    /// The request arrived complete but a field is unacceptable: answer the operation's generic failure.
    Invalid { op: Op, reason: Invalid },
    /// The request ended early (end of stream, timeout, reset, cap): close without reply and change nothing.
    Incomplete { op: Option<Op>, cause: FieldError },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Empty => f.write_str("connection closed before any byte"),
            RequestError::UnknownOp(name) => write!(f, "unknown operation {name:?}"),
            RequestError::Invalid { op, reason } => write!(f, "{op}: {reason}"),
            RequestError::Incomplete { op: Some(op), cause } => write!(f, "{op}: incomplete request: {cause}"),
            RequestError::Incomplete { op: None, cause } => write!(f, "incomplete operation name: {cause}"),
        }
    }
}

impl std::error::Error for RequestError {}

impl Request {
    /// The operation of this request.
    pub fn op(&self) -> Op {
        match self {
            Request::Register { .. } => Op::Register,
            Request::Unregister { .. } => Op::Unregister,
            Request::Connect { .. } => Op::Connect,
            Request::Disconnect { .. } => Op::Disconnect,
            Request::Send { .. } => Op::Send,
            Request::ConnectedUsers { .. } => Op::ConnectedUsers,
        }
    }

    /// Reads the operation name of a request. `Ok(None)` means the stream ended before any byte.
    pub fn read_op<R: BufRead>(r: &mut FieldReader<R>) -> Result<Op, RequestError> {
        let fresh = r.consumed() == 0;
        match r.read_short_field(MAX_OP_LEN) {
            Ok(name) => Op::from_name(&name).ok_or_else(|| RequestError::UnknownOp(lossy(&name))),
            Err(FieldError::Eof) if fresh && r.consumed() == 0 => Err(RequestError::Empty),
            Err(FieldError::TooLong) => Err(RequestError::UnknownOp(format!("(longer than {MAX_OP_LEN} bytes)"))),
            Err(cause) => Err(RequestError::Incomplete { op: None, cause }),
        }
    }

    /// Reads the fields of `op` after its name and builds the request.
    ///
    /// Every field is read even when an earlier one is unacceptable, so that the reply (a generic failure)
    /// is only written once the whole request has arrived.
    pub fn read_fields<R: BufRead>(op: Op, r: &mut FieldReader<R>) -> Result<Request, RequestError> {
        let mut fields: [String; 3] = Default::default();
        let mut invalid = None;
        for slot in fields.iter_mut().take(op.field_count()) {
            match r.read_field(MAX_FIELD_LEN) {
                Ok(raw) => match String::from_utf8(raw) {
                    Ok(s) => *slot = s,
                    Err(_) => {
                        invalid.get_or_insert(Invalid::NotUtf8);
                    }
                },
                Err(FieldError::TooLong) => {
                    invalid.get_or_insert(Invalid::FieldTooLong);
                }
                Err(cause) => return Err(RequestError::Incomplete { op: Some(op), cause }),
            }
        }
        if let Some(reason) = invalid {
            return Err(RequestError::Invalid { op, reason });
        }
        let [a, b, c] = fields;
        let invalid = |reason| Err(RequestError::Invalid { op, reason });
        Ok(match op {
            Op::Register if b.is_empty() => return invalid(Invalid::EmptyAlias),
            Op::Register => Request::Register { full_name: a, alias: b, birth_date: c },
            Op::Unregister => Request::Unregister { alias: a },
            Op::Connect => match parse_number(b.as_bytes(), u64::from(u16::MAX)) {
                Some(port) if port > 0 => Request::Connect { alias: a, port: port as u16 },
                _ => return invalid(Invalid::BadPort),
            },
            Op::Disconnect => Request::Disconnect { alias: a },
            Op::Send => Request::Send { sender: a, recipient: b, text: c },
            Op::ConnectedUsers => Request::ConnectedUsers { alias: a },
        })
    }

    /// Reads one whole request.
    pub fn read_from<R: BufRead>(r: &mut FieldReader<R>) -> Result<Request, RequestError> {
        let op = Request::read_op(r)?;
        Request::read_fields(op, r)
    }

    /// Appends the wire form of this request to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        put_field(buf, self.op().name().as_bytes());
        match self {
            Request::Register { full_name, alias, birth_date } => {
                put_field(buf, full_name.as_bytes());
                put_field(buf, alias.as_bytes());
                put_field(buf, birth_date.as_bytes());
            }
            Request::Connect { alias, port } => {
                put_field(buf, alias.as_bytes());
                put_number(buf, u64::from(*port));
            }
            Request::Send { sender, recipient, text } => {
                put_field(buf, sender.as_bytes());
                put_field(buf, recipient.as_bytes());
                put_field(buf, text.as_bytes());
            }
            Request::Unregister { alias } | Request::Disconnect { alias } | Request::ConnectedUsers { alias } => {
                put_field(buf, alias.as_bytes());
            }
        }
    }

    /// The wire form of this request.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64);
        self.encode(&mut buf);
        buf
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::MAX_REQUEST_LEN;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn decode(bytes: &[u8]) -> Result<Request, RequestError> {
        Request::read_from(&mut FieldReader::new(Cursor::new(bytes.to_vec())))
    }

    #[test]
    fn decodes_every_operation() {
        assert_eq!(
            decode(b"REGISTER\0Alice A\0alice\x0001/02/2000\0").unwrap(),
            Request::Register { full_name: "Alice A".into(), alias: "alice".into(), birth_date: "01/02/2000".into() }
        );
        assert_eq!(decode(b"UNREGISTER\0a\0").unwrap(), Request::Unregister { alias: "a".into() });
        assert_eq!(decode(b"CONNECT\0a\x008080\0").unwrap(), Request::Connect { alias: "a".into(), port: 8080 });
        assert_eq!(decode(b"DISCONNECT\0a\0").unwrap(), Request::Disconnect { alias: "a".into() });
        assert_eq!(
            decode(b"SEND\0a\0b\0hi\nthere\0").unwrap(),
            Request::Send { sender: "a".into(), recipient: "b".into(), text: "hi\nthere".into() }
        );
        assert_eq!(decode(b"CONNECTEDUSERS\0a\0").unwrap(), Request::ConnectedUsers { alias: "a".into() });
    }

    #[test]
    fn empty_connection_is_empty() {
        assert!(matches!(decode(b""), Err(RequestError::Empty)));
    }

    #[test]
    fn names_are_case_sensitive_and_unknown_names_are_refused() {
        assert!(matches!(decode(b"register\0a\0b\0c\0"), Err(RequestError::UnknownOp(_))));
        assert!(matches!(decode(b"SENDATTACH\0a\0"), Err(RequestError::UnknownOp(_))));
        assert!(matches!(decode(b"QUIT\0"), Err(RequestError::UnknownOp(_))));
        assert!(matches!(decode(&[b'X'; 1000]), Err(RequestError::UnknownOp(_))));
    }

    #[test]
    fn truncated_requests_are_incomplete() {
        for bytes in [&b"SEN"[..], b"SEND\0a\0b\0", b"SEND\0a\0b\0no terminator", b"CONNECT\0a\0"] {
            assert!(matches!(decode(bytes), Err(RequestError::Incomplete { .. })), "{bytes:?}");
        }
    }

    #[test]
    fn field_problems_are_invalid() {
        let mut long = b"SEND\0a\0b\0".to_vec();
        long.extend(vec![b'x'; 256]);
        long.push(0);
        assert!(matches!(decode(&long), Err(RequestError::Invalid { op: Op::Send, reason: Invalid::FieldTooLong })));
        assert!(matches!(
            decode(b"REGISTER\0n\0\0d\0"),
            Err(RequestError::Invalid { op: Op::Register, reason: Invalid::EmptyAlias })
        ));
        for port in [&b"0"[..], b"65536", b"-1", b"80a", b""] {
            let mut req = b"CONNECT\0a\0".to_vec();
            req.extend_from_slice(port);
            req.push(0);
            assert!(matches!(decode(&req), Err(RequestError::Invalid { reason: Invalid::BadPort, .. })));
        }
        assert!(matches!(
            decode(b"UNREGISTER\0\xff\xfe\0"),
            Err(RequestError::Invalid { op: Op::Unregister, reason: Invalid::NotUtf8 })
        ));
    }

    #[test]
    fn an_over_long_field_does_not_desynchronise_the_rest() {
        // The too-long field is skipped to its terminator, the remaining fields are still read.
        let mut req = b"REGISTER\0".to_vec();
        req.extend(vec![b'n'; 10_000]);
        req.extend(b"\0alias\0date\0");
        let mut r = FieldReader::new(Cursor::new(req.clone()));
        assert!(matches!(Request::read_from(&mut r), Err(RequestError::Invalid { .. })));
        assert_eq!(r.consumed(), req.len());
    }

    fn field() -> impl Strategy<Value = String> {
        // Valid content: no NUL, at most 255 bytes (multi-byte characters included).
        "[^\u{0}]{0,80}".prop_filter("fits in a field", |s| s.len() <= MAX_FIELD_LEN)
    }

    fn request() -> impl Strategy<Value = Request> {
        let alias = field().prop_filter("non-empty", |s| !s.is_empty());
        prop_oneof![
            (field(), alias, field()).prop_map(|(full_name, alias, birth_date)| Request::Register {
                full_name,
                alias,
                birth_date
            }),
            field().prop_map(|alias| Request::Unregister { alias }),
            (field(), 1u16..).prop_map(|(alias, port)| Request::Connect { alias, port }),
            field().prop_map(|alias| Request::Disconnect { alias }),
            (field(), field(), field()).prop_map(|(sender, recipient, text)| Request::Send { sender, recipient, text }),
            field().prop_map(|alias| Request::ConnectedUsers { alias }),
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(req in request()) {
            let bytes = req.to_bytes();
            let mut r = FieldReader::new(Cursor::new(bytes.clone()));
            prop_assert_eq!(Request::read_from(&mut r).unwrap(), req);
            prop_assert_eq!(r.consumed(), bytes.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic_nor_read_past_the_cap(
            prefix in prop_oneof![Just(&b""[..]), Just(&b"SEND\0"[..]), Just(&b"REGISTER\0"[..])],
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            filler in 0usize..(2 * MAX_REQUEST_LEN),
        ) {
            let mut bytes = prefix.to_vec();
            bytes.extend(body);
            bytes.extend(std::iter::repeat_n(b'z', filler));
            let mut r = FieldReader::new(Cursor::new(bytes));
            let _ = Request::read_from(&mut r);
            prop_assert!(r.consumed() <= MAX_REQUEST_LEN);
        }
    }
}
