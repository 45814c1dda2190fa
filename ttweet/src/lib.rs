//! The ttweet board: a public board that keeps one message, the last one posted.
//!
//! Wire protocol of the original ttweet programs (a client connection carries one request, then closes):
//!
//! - post: `u\n` followed by the message as UTF-8, ended by the client closing its side (the original client
//!   sends no terminator and closes right after writing). Nothing is answered. An empty message resets the board.
//! - read: `d\n`. The server answers with the last message as UTF-8 text, or `Empty Message` when there is none,
//!   without a terminator, and closes.
//!
//! A post of more than [`MAX_CHARS`] characters is refused and logged, never stored; so is one that is not UTF-8
//! or whose end never arrives.
//!
//! This crate holds the board, its wire protocol ([`serve`], one connection) and its client (the `ttweet`
//! binary). The message server runs the board beside itself with `--ttweet-port`: its accept loop owns the
//! sockets and threads, with the same connection cap, timeouts and orderly stop, and calls [`serve`] for each
//! connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

/// Longest message the board accepts, in characters (Unicode scalar values).
pub const MAX_CHARS: usize = 150;
/// What a read returns while no message is on the board (and after an empty post).
pub const EMPTY_BOARD: &str = "Empty Message";
/// Most bytes a post may take: [`MAX_CHARS`] characters of at most 4 UTF-8 bytes each. Reading stops one byte
/// beyond it, so a peer cannot make the server buffer more.
pub const MAX_POST_BYTES: usize = MAX_CHARS * 4;
/// Longest request line the server reads before deciding it is not a ttweet request (`u` and `d` are 1 byte).
const MAX_HEADER_LEN: usize = 8;
/// Read buffer per connection: a whole post fits in it.
const READ_BUFFER: usize = 1024;

/// The board: the last message posted, shared by every connection.
#[derive(Debug, Default)]
pub struct Board {
    /// `None` until a non-empty message is posted, and again after an empty one.
    last: Mutex<Option<String>>,
}

impl Board {
    /// An empty board.
    pub fn new() -> Board {
        Board::default()
    }

    /// Replaces the message; an empty one resets the board to [`EMPTY_BOARD`].
    pub fn post(&self, text: String) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = if text.is_empty() { None } else { Some(text) };
    }

    /// The text a read answers with.
    pub fn last(&self) -> String {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.clone().unwrap_or_else(|| EMPTY_BOARD.to_owned())
    }
}

/// What a connection asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Post,
    Read,
}

/// Timeouts of one board connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Idle time while reading the request.
    pub request: Duration,
    /// Writing the answer of a read.
    pub reply: Duration,
}

/// Serves one board connection: reads the request, posts or answers, and half-closes. Returns the reader when
/// the peer may still be sending, for the caller to drain (bounded) before it closes, so that the close does not
/// turn into a reset that destroys the answer. Never panics on anything the peer does.
pub fn serve<'s>(stream: &'s TcpStream, board: &Board, timeouts: Timeouts) -> Option<BufReader<&'s TcpStream>> {
    let peer = stream.peer_addr().ok()?;
    // Failing to set a timeout only happens on a dead socket; reading will then fail too.
    let _ = stream.set_read_timeout(Some(timeouts.request));
    let _ = stream.set_write_timeout(Some(timeouts.reply));
    let _ = stream.set_nodelay(true);

    let mut reader = BufReader::with_capacity(READ_BUFFER, stream);
    let request = match read_header(&mut reader) {
        Ok(Some(request)) => request,
        Ok(None) => return None, // closed before sending anything
        Err(Header::Unknown(line)) => {
            log::warn!("ttweet: unknown request {line:?} from {peer}: connection closed");
            return None;
        }
        Err(Header::Io(e)) => {
            log::debug!("ttweet: incomplete request from {peer} ({e}): closed");
            return None;
        }
    };
    match request {
        Request::Post => {
            match read_post(&mut reader) {
                Ok(text) => {
                    log::info!("s> TTWEET UPLOAD OK: {}", shown(&text));
                    board.post(text);
                }
                Err(reason) => log::info!("s> TTWEET UPLOAD FAIL ({reason}) from {peer}"),
            }
            // Nothing is answered to a post: closing tells the client the board has it. A refused post may still
            // be arriving: the caller drains it so that the client sees that close rather than a reset.
        }
        Request::Read => {
            let text = board.last();
            match (&*stream).write_all(text.as_bytes()) {
                Ok(()) => log::info!("s> TTWEET DOWNLOAD OK"),
                Err(e) => log::info!("s> TTWEET DOWNLOAD FAIL ({e}) to {peer}"),
            }
            // The original client never half-closes: the caller drains so the close does not reset the reply.
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    Some(reader)
}

/// Why the request line was not `u` or `d`.
#[derive(Debug)]
enum Header {
    Unknown(String),
    Io(io::Error),
}

/// Reads the request line (`u` or `d`, ended by `\n` or by the end of the stream). `Ok(None)`: nothing was sent.
fn read_header<R: BufRead>(reader: &mut R) -> Result<Option<Request>, Header> {
    let mut line = Vec::with_capacity(MAX_HEADER_LEN + 1);
    let n = reader.take(MAX_HEADER_LEN as u64 + 1).read_until(b'\n', &mut line).map_err(Header::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > MAX_HEADER_LEN {
        return Err(Header::Unknown(format!("{}…", String::from_utf8_lossy(&line))));
    }
    match &line[..] {
        b"u" => Ok(Some(Request::Post)),
        b"d" => Ok(Some(Request::Read)),
        other => Err(Header::Unknown(String::from_utf8_lossy(other).into_owned())),
    }
}

/// Why a post was refused (logged; the board keeps its last message).
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// The stream failed before its end.
    #[error("the message did not end: {0}")]
    NotEnded(#[source] io::Error),
    /// More bytes than [`MAX_CHARS`] characters can take.
    #[error("message over {MAX_CHARS} characters")]
    TooManyBytes,
    #[error("message is not UTF-8")]
    NotUtf8,
    /// This many characters, over [`MAX_CHARS`].
    #[error("message of {0} characters, at most {MAX_CHARS}")]
    TooManyChars(usize),
}

/// Reads a post's message up to the end of the stream and checks it.
fn read_post<R: Read>(reader: &mut R) -> Result<String, Refused> {
    let mut body = Vec::with_capacity(MAX_POST_BYTES);
    reader.take(MAX_POST_BYTES as u64 + 1).read_to_end(&mut body).map_err(Refused::NotEnded)?;
    if body.len() > MAX_POST_BYTES {
        return Err(Refused::TooManyBytes);
    }
    let text = String::from_utf8(body).map_err(|_| Refused::NotUtf8)?;
    let chars = text.chars().count();
    if chars > MAX_CHARS {
        return Err(Refused::TooManyChars(chars));
    }
    Ok(text)
}

/// A message as one console line: line breaks and control characters escaped.
fn shown(text: &str) -> String {
    if text.is_empty() {
        format!("(empty: the board shows {EMPTY_BOARD:?})")
    } else {
        text.escape_debug().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn header(bytes: &[u8]) -> Result<Option<Request>, Header> {
        read_header(&mut Cursor::new(bytes.to_vec()))
    }

    #[test]
    fn request_lines() {
        assert_eq!(header(b"u\nhello").unwrap(), Some(Request::Post));
        assert_eq!(header(b"d\n").unwrap(), Some(Request::Read));
        // The end of the stream also ends the line.
        assert_eq!(header(b"d").unwrap(), Some(Request::Read));
        assert_eq!(header(b"").unwrap(), None);
        for bad in [&b"x\n"[..], b"U\n", b"d \n", b"\n", b"download please\n", &[b'u'; 100]] {
            assert!(matches!(header(bad), Err(Header::Unknown(_))), "{bad:?}");
        }
    }

    #[test]
    fn the_header_read_stops_after_its_line() {
        let mut r = Cursor::new(b"u\nline one\nline two".to_vec());
        assert_eq!(read_header(&mut r).unwrap(), Some(Request::Post));
        assert_eq!(read_post(&mut r).unwrap(), "line one\nline two");
    }

    #[test]
    fn posts_are_checked_in_characters() {
        let post = |s: &[u8]| read_post(&mut Cursor::new(s.to_vec()));
        assert_eq!(post(b"").unwrap(), "");
        let max = "é".repeat(MAX_CHARS); // 300 bytes, 150 characters
        assert_eq!(post(max.as_bytes()).unwrap(), max);
        assert!(post(format!("{max}x").as_bytes()).unwrap_err().to_string().contains("151 characters"));
        assert!(post(&vec![b'a'; 10 * MAX_POST_BYTES]).is_err());
        assert!(post(b"caf\xe9").unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn the_board_resets_on_an_empty_post() {
        let board = Board::new();
        assert_eq!(board.last(), EMPTY_BOARD);
        board.post("hi".into());
        assert_eq!(board.last(), "hi");
        board.post(String::new());
        assert_eq!(board.last(), EMPTY_BOARD);
    }

    #[test]
    fn console_lines_stay_one_line() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert!(shown("").contains(EMPTY_BOARD));
    }
}
