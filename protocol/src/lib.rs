//! Wire codecs of the message delivery service (see `docs/protocol.md`).
//!
//! Pure code: every decoder takes a [`std::io::BufRead`] wrapped in a [`field::FieldReader`] (which bounds how
//! much it may consume), every encoder appends to a `Vec<u8>` so that a caller writes a whole message at once.
//!
//! - [`field`]: the `\0`-terminated field, its limits and its errors.
//! - [`request`]: the six client → server operations.
//! - [`reply`]: the status codes of each operation and what follows them; auto-detects the legacy dialects.
//! - [`push`]: server → listener pushes (a message, an acknowledgement).
//! - [`dialect`]: the byte-level differences of the original implementations, as data.
//! - [`normalize`]: the whitespace rule applied to every message before it is sent.

pub mod dialect;
pub mod field;
pub mod normalize;
pub mod push;
pub mod reply;
pub mod request;

pub use dialect::{Dialect, Profile};
pub use field::{FieldError, FieldReader, MAX_FIELD_LEN, MAX_REQUEST_LEN};
pub use push::Push;
pub use reply::{ConnectStatus, DisconnectStatus, RegisterStatus, Reply, SendReply, UnregisterStatus, UsersReply};
pub use request::{Op, Request, RequestError};
