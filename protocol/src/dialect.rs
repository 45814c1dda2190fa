//! The byte-level dialects of the original implementations (docs/protocol.md, appendix A).
//!
//! The requests are the same everywhere; what differs is how a status, a SEND id and a message push are written.
//! A server picks one [`Profile`] at start-up and hands its [`Dialect`] to every encoder, so the difference is
//! data, not branches in the handlers. Decoders accept every dialect (see [`crate::reply`]).

use std::fmt;
use std::str::FromStr;

/// How a status code is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusForm {
    /// One raw byte 0–3.
    Raw,
    /// The ASCII digit followed by `0x00`.
    Ascii,
}

/// How the id of a SEND reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendIdForm {
    /// A decimal number field, only after status 0.
    Decimal,
    /// Four bytes, big-endian, after every SEND reply (0 when the SEND failed).
    AlwaysU32,
}

/// Which push carries a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushForm {
    /// `SEND_MESSAGE`, sender, id, text.
    SendMessage,
    /// `RECEIVE_MESS`, id, sender, text (molinalg).
    ReceiveMess,
}

/// Everything an encoder needs to know about the peer's dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub status: StatusForm,
    pub send_id: SendIdForm,
    pub push: PushForm,
}

impl Dialect {
    /// The dialect of this specification.
    pub const STANDARD: Dialect =
        Dialect { status: StatusForm::Raw, send_id: SendIdForm::Decimal, push: PushForm::SendMessage };
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect::STANDARD
    }
}

/// The named server profiles of table A.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Raw status byte, decimal id, SEND_MESSAGE (carlosiborra, sunniAngela).
    #[default]
    Standard,
    /// ASCII status, decimal id, RECEIVE_MESS (molinalg).
    Ascii,
    /// ASCII status, always a 4-byte id, SEND_MESSAGE (AngelMancha).
    AsciiU32,
}

impl Profile {
    /// Every profile, for help texts and tests.
    pub const ALL: [Profile; 3] = [Profile::Standard, Profile::Ascii, Profile::AsciiU32];

    /// The dialect this profile speaks.
    pub fn dialect(self) -> Dialect {
        match self {
            Profile::Standard => Dialect::STANDARD,
            Profile::Ascii => {
                Dialect { status: StatusForm::Ascii, send_id: SendIdForm::Decimal, push: PushForm::ReceiveMess }
            }
            Profile::AsciiU32 => {
                Dialect { status: StatusForm::Ascii, send_id: SendIdForm::AlwaysU32, push: PushForm::SendMessage }
            }
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Standard => "standard",
            Profile::Ascii => "ascii",
            Profile::AsciiU32 => "ascii-u32",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown profile {s:?} (expected standard, ascii or ascii-u32)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
        assert!("ASCII".parse::<Profile>().is_err());
    }
}
