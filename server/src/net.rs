//! Socket policy shared by everything that answers a peer: the reply's write, and the drain before closing.
//!
//! The lowest module of the server: the handler, the deliverer and the ttweet board use it; it uses none of them.

use std::io::{BufReader, Read};
use std::time::{Duration, Instant};

/// Write timeout for a reply: a client that does not read its one-line reply cannot hold a thread longer.
pub const REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// After replying, unread input is drained for at most this long, so that closing does not turn into a reset
/// that destroys the reply in flight (docs/protocol.md 2.1).
pub const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);
/// At most this many unread bytes are drained after a reply.
pub const DRAIN_LIMIT: u64 = 64 * 1024;
/// Bytes that a write on a new connection always takes without blocking: well below the smallest default send
/// buffer (`net.ipv4.tcp_wmem`, 16 KiB), so replies and pushes up to this size need no write timeout.
pub const UNBLOCKED_WRITE: usize = 4096;

/// Reads and discards what the peer still sends, until it closes, bounded in bytes and time.
pub fn drain<R: Read>(reader: BufReader<R>) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut rest = reader.take(DRAIN_LIMIT);
    let mut sink = [0u8; 512];
    while Instant::now() < deadline {
        match rest.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
