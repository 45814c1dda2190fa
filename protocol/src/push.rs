//! Server → listener pushes: a delivered message or an acknowledgement.

use std::io::BufRead;

use crate::dialect::PushForm;
use crate::field::{parse_number, put_field, put_number, FieldError, FieldReader, MAX_FIELD_LEN};

/// The operation of a probe: the server asks whether a listener is still there (a CONNECT of a user it believes
/// connected, docs/protocol.md "Ghost sessions"). No original listener knows it, so each of them reads the field,
/// closes and goes on listening; a listener shows nothing for it.
pub const PROBE_OP: &[u8] = b"PROBE";

/// Longest push operation name (`SEND_MESS_ACK`); a longer first field is not a push.
pub const MAX_PUSH_OP_LEN: usize = 13;

/// Largest number of bytes a listener reads for one push.
pub const MAX_PUSH_LEN: usize = 4 * (MAX_FIELD_LEN + 1);

/// One push. Text is decoded lossily: a listener shows whatever arrives rather than dropping it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// A message for the listener's user.
    Message { sender: String, id: u32, text: String },
    /// The listener's user's message `id` was delivered.
    Ack { id: u32 },
}

/// Why a push could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// A field could not be read.
    #[error("malformed push: {0}")]
    Field(#[from] FieldError),
    /// Not a push operation this protocol knows.
    #[error("unknown push {0:?}")]
    UnknownOp(String),
    /// The id field is not a decimal number that fits 32 bits.
    #[error("push carries an id that is not a 32-bit decimal number")]
    BadId,
    /// Not a push: the server's liveness probe ([`PROBE_OP`]), to be closed without showing anything.
    #[error("the server's probe of this listener")]
    Probe,
}

impl Push {
    /// Appends the wire form of this push in the given form.
    pub fn encode(&self, form: PushForm, buf: &mut Vec<u8>) {
        match self {
            Push::Message { sender, id, text } => encode_message(form, sender, *id, text, buf),
            Push::Ack { id } => encode_ack(*id, buf),
        }
    }

    /// The wire form of this push.
    pub fn to_bytes(&self, form: PushForm) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64);
        self.encode(form, &mut buf);
        buf
    }

    /// Reads one push in any form (`SEND_MESSAGE`, `RECEIVE_MESS` or `SEND_MESS_ACK`).
    pub fn read_from<R: BufRead>(r: &mut FieldReader<R>) -> Result<Push, PushError> {
        let op = r.read_short_field(MAX_PUSH_OP_LEN).map_err(|e| match e {
            FieldError::TooLong => PushError::UnknownOp("(too long)".into()),
            e => PushError::Field(e),
        })?;
        let id = |r: &mut FieldReader<R>| -> Result<u32, PushError> {
            let raw = r.read_field(MAX_FIELD_LEN)?;
            parse_number(&raw, u64::from(u32::MAX)).map(|n| n as u32).ok_or(PushError::BadId)
        };
        match &op[..] {
            b"SEND_MESSAGE" => {
                let sender = r.read_lossy(MAX_FIELD_LEN)?;
                let id = id(r)?;
                let text = r.read_lossy(MAX_FIELD_LEN)?;
                Ok(Push::Message { sender, id, text })
            }
            b"RECEIVE_MESS" => {
                let id = id(r)?;
                let sender = r.read_lossy(MAX_FIELD_LEN)?;
                let text = r.read_lossy(MAX_FIELD_LEN)?;
                Ok(Push::Message { sender, id, text })
            }
            b"SEND_MESS_ACK" => Ok(Push::Ack { id: id(r)? }),
            PROBE_OP => Err(PushError::Probe),
            other => Err(PushError::UnknownOp(String::from_utf8_lossy(other).into_owned())),
        }
    }
}

/// Appends a message push without building a [`Push`] (the server's hot path borrows its queue entry).
pub fn encode_message(form: PushForm, sender: &str, id: u32, text: &str, buf: &mut Vec<u8>) {
    match form {
        PushForm::SendMessage => {
            put_field(buf, b"SEND_MESSAGE");
            put_field(buf, sender.as_bytes());
            put_number(buf, u64::from(id));
        }
        PushForm::ReceiveMess => {
            put_field(buf, b"RECEIVE_MESS");
            put_number(buf, u64::from(id));
            put_field(buf, sender.as_bytes());
        }
    }
    put_field(buf, text.as_bytes());
}

/// Appends an acknowledgement push (the same in every dialect).
pub fn encode_ack(id: u32, buf: &mut Vec<u8>) {
    put_field(buf, b"SEND_MESS_ACK");
    put_number(buf, u64::from(id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn decode(bytes: &[u8]) -> Result<Push, PushError> {
        Push::read_from(&mut FieldReader::with_cap(Cursor::new(bytes.to_vec()), MAX_PUSH_LEN))
    }

    #[test]
    fn spec_examples() {
        let m = Push::Message { sender: "alice".into(), id: 7, text: "hello bob".into() };
        assert_eq!(m.to_bytes(PushForm::SendMessage), b"SEND_MESSAGE\0alice\x007\0hello bob\0");
        assert_eq!(m.to_bytes(PushForm::ReceiveMess), b"RECEIVE_MESS\x007\0alice\0hello bob\0");
        assert_eq!(Push::Ack { id: 7 }.to_bytes(PushForm::SendMessage), b"SEND_MESS_ACK\x007\0");
        assert_eq!(decode(b"RECEIVE_MESS\x007\0alice\0hello bob\0").unwrap(), m);
    }

    #[test]
    fn bad_pushes_are_errors() {
        assert!(matches!(decode(b"HELLO\0"), Err(PushError::UnknownOp(_))));
        assert!(matches!(decode(b"PROBE\0"), Err(PushError::Probe)));
        assert!(matches!(decode(b"SEND_MESS_ACK\0x\0"), Err(PushError::BadId)));
        assert!(matches!(decode(b"SEND_MESS_ACK\x004294967296\0"), Err(PushError::BadId)));
        assert!(matches!(decode(b"SEND_MESSAGE\0a\0"), Err(PushError::Field(FieldError::Eof))));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let p = decode(b"SEND_MESSAGE\0b\xffob\x001\0caf\xe9\0").unwrap();
        assert_eq!(p, Push::Message { sender: "b\u{fffd}ob".into(), id: 1, text: "caf\u{fffd}".into() });
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(
            sender in "[^\u{0}]{0,60}", text in "[^\u{0}]{0,60}", id in any::<u32>(), legacy in any::<bool>(),
        ) {
            prop_assume!(sender.len() <= MAX_FIELD_LEN && text.len() <= MAX_FIELD_LEN);
            let form = if legacy { PushForm::ReceiveMess } else { PushForm::SendMessage };
            for push in [Push::Message { sender: sender.clone(), id, text: text.clone() }, Push::Ack { id }] {
                prop_assert_eq!(decode(&push.to_bytes(form)).unwrap(), push);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut r = FieldReader::with_cap(Cursor::new(bytes), MAX_PUSH_LEN);
            let _ = Push::read_from(&mut r);
            prop_assert!(r.consumed() <= MAX_PUSH_LEN);
        }
    }
}
