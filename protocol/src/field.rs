//! The field codec: a field is its content followed by one `0x00` byte, and ends at that byte only.
//!
//! A line break is ordinary content. Reading is bounded twice: each field's content by a per-call maximum
//! (normally [`MAX_FIELD_LEN`]) and the whole request by a cap ([`MAX_REQUEST_LEN`]), so a peer can never make
//! a reader buffer or scan more than the cap, whatever it sends.

use std::io::{self, BufRead, ErrorKind};

/// Largest content of one field, in bytes (the terminator not included).
pub const MAX_FIELD_LEN: usize = 255;
/// Largest number of bytes a server reads for one request, terminators included. An over-long field is skipped
/// up to its terminator, but never beyond this cap.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;
/// Longest operation name (`CONNECTEDUSERS`).
pub const MAX_OP_LEN: usize = 14;

/// Why a field could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The stream ended before the terminator.
    #[error("end of stream inside a field")]
    Eof,
    /// The content was longer than allowed; the field was consumed up to and including its terminator, so the
    /// stream is still in step and the next field can be read.
    #[error("field longer than {MAX_FIELD_LEN} bytes")]
    TooLong,
    /// The read cap was reached before the terminator; the stream is no longer usable.
    #[error("more than {MAX_REQUEST_LEN} bytes without a terminator")]
    CapReached,
    /// No byte arrived within the stream's read timeout.
    #[error("read timed out")]
    Timeout,
    /// Any other I/O error (reset, broken pipe, ...).
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for FieldError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            // A socket read timeout shows up as WouldBlock on Unix and TimedOut on Windows.
            ErrorKind::WouldBlock | ErrorKind::TimedOut => FieldError::Timeout,
            ErrorKind::UnexpectedEof => FieldError::Eof,
            _ => FieldError::Io(e),
        }
    }
}

/// Reads `\0`-terminated fields from a buffered stream while counting every byte against a cap.
#[derive(Debug)]
pub struct FieldReader<R> {
    inner: R,
    consumed: usize,
    cap: usize,
}

impl<R: BufRead> FieldReader<R> {
    /// A reader whose total consumption is capped at [`MAX_REQUEST_LEN`].
    pub fn new(inner: R) -> Self {
        Self::with_cap(inner, MAX_REQUEST_LEN)
    }

    /// A reader whose total consumption is capped at `cap` bytes.
    pub fn with_cap(inner: R, cap: usize) -> Self {
        FieldReader { inner, consumed: 0, cap }
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Mutable access to the wrapped reader (for example to change a socket timeout between fields).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Reads one field whose content may be at most `max` bytes.
    ///
    /// Longer content is consumed and discarded up to its terminator and reported as [`FieldError::TooLong`].
    pub fn read_field(&mut self, max: usize) -> Result<Vec<u8>, FieldError> {
        self.read_inner(max, true)
    }

    /// Reads one field of at most `max` bytes, but gives up with [`FieldError::TooLong`] as soon as `max + 1`
    /// bytes have arrived without a terminator, without consuming further (for operation names: an unknown
    /// name ends the conversation, so there is no point in reading on).
    pub fn read_short_field(&mut self, max: usize) -> Result<Vec<u8>, FieldError> {
        self.read_inner(max, false)
    }

    /// Reads one field and decodes it as UTF-8, replacing invalid sequences (for text shown to a person).
    pub fn read_lossy(&mut self, max: usize) -> Result<String, FieldError> {
        let raw = self.read_field(max)?;
        Ok(match String::from_utf8(raw) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads exactly `n` raw bytes (the 4-byte id of the `ascii-u32` dialect), counted against the cap.
    pub fn read_exact_bytes<const N: usize>(&mut self) -> Result<[u8; N], FieldError> {
        if self.consumed + N > self.cap {
            return Err(FieldError::CapReached);
        }
        let mut out = [0u8; N];
        self.inner.read_exact(&mut out)?;
        self.consumed += N;
        Ok(out)
    }

    /// Returns the next byte without consuming it, or `None` at end of stream.
    pub fn peek_byte(&mut self) -> Result<Option<u8>, FieldError> {
        loop {
            match self.inner.fill_buf() {
                Ok(buf) => return Ok(buf.first().copied()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Consumes one byte, or fails with [`FieldError::Eof`].
    pub fn read_byte(&mut self) -> Result<u8, FieldError> {
        let b = self.peek_byte()?.ok_or(FieldError::Eof)?;
        if self.consumed >= self.cap {
            return Err(FieldError::CapReached);
        }
        self.inner.consume(1);
        self.consumed += 1;
        Ok(b)
    }

    fn read_inner(&mut self, max: usize, discard_overflow: bool) -> Result<Vec<u8>, FieldError> {
        let mut out = Vec::new();
        let mut too_long = false;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if buf.is_empty() {
                return Err(FieldError::Eof);
            }
            let room = self.cap - self.consumed;
            if room == 0 {
                return Err(FieldError::CapReached);
            }
            let window = &buf[..buf.len().min(room)];
            let (chunk, done) = match window.iter().position(|&b| b == 0) {
                Some(i) => (&window[..i], i + 1),
                None => (window, 0),
            };
            if !too_long {
                let keep = chunk.len().min(max + 1 - out.len());
                out.extend_from_slice(&chunk[..keep]);
                if out.len() > max {
                    too_long = true;
                    out = Vec::new();
                    if !discard_overflow {
                        // Consume only what was looked at, so the caller sees a bounded read.
                        let used = keep;
                        self.inner.consume(used);
                        self.consumed += used;
                        return Err(FieldError::TooLong);
                    }
                }
            }
            if done > 0 {
                self.inner.consume(done);
                self.consumed += done;
                return if too_long { Err(FieldError::TooLong) } else { Ok(out) };
            }
            let used = window.len();
            self.inner.consume(used);
            self.consumed += used;
        }
    }
}

/// Appends `content` and its terminator to `buf`.
///
/// The content must not contain `0x00`: every value this crate encodes comes from a decoded field or from a
/// checked constructor, so a NUL here is a bug in the caller, caught in debug builds.
pub fn put_field(buf: &mut Vec<u8>, content: &[u8]) {
    debug_assert!(!content.contains(&0), "field content contains NUL");
    buf.extend_from_slice(content);
    buf.push(0);
}

/// Appends a number field: decimal ASCII digits and the terminator.
pub fn put_number(buf: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put_field(buf, &digits[i..]);
}

/// Parses the content of a number field: one or more ASCII digits, value at most `max`.
///
/// Leading zeros are accepted when reading (a lenient reader), never produced when writing.
pub fn parse_number(content: &[u8], max: u64) -> Option<u64> {
    if content.is_empty() || content.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in content {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (n <= max).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor, Read};

    fn reader(bytes: &[u8]) -> FieldReader<Cursor<Vec<u8>>> {
        FieldReader::new(Cursor::new(bytes.to_vec()))
    }

    #[test]
    fn reads_fields_in_order() {
        let mut r = reader(b"SEND\0alice\0\0x");
        assert_eq!(r.read_field(MAX_FIELD_LEN).unwrap(), b"SEND");
        assert_eq!(r.read_field(MAX_FIELD_LEN).unwrap(), b"alice");
        assert_eq!(r.read_field(MAX_FIELD_LEN).unwrap(), b"");
        assert!(matches!(r.read_field(MAX_FIELD_LEN), Err(FieldError::Eof)));
    }

    #[test]
    fn line_feed_is_content() {
        let mut r = reader(b"two\nlines\0");
        assert_eq!(r.read_field(MAX_FIELD_LEN).unwrap(), b"two\nlines");
    }

    #[test]
    fn exactly_max_is_accepted_one_more_is_too_long_and_stream_stays_in_step() {
        let mut bytes = vec![b'a'; MAX_FIELD_LEN];
        bytes.push(0);
        bytes.extend(vec![b'b'; MAX_FIELD_LEN + 1]);
        bytes.push(0);
        bytes.extend(b"next\0");
        let mut r = reader(&bytes);
        assert_eq!(r.read_field(MAX_FIELD_LEN).unwrap().len(), MAX_FIELD_LEN);
        assert!(matches!(r.read_field(MAX_FIELD_LEN), Err(FieldError::TooLong)));
        assert_eq!(r.read_field(MAX_FIELD_LEN).unwrap(), b"next");
    }

    #[test]
    fn cap_stops_an_endless_field() {
        let bytes = vec![b'x'; MAX_REQUEST_LEN * 2];
        let mut r = reader(&bytes);
        assert!(matches!(r.read_field(MAX_FIELD_LEN), Err(FieldError::CapReached)));
        assert_eq!(r.consumed(), MAX_REQUEST_LEN);
    }

    #[test]
    fn cap_counts_across_fields() {
        let mut r = FieldReader::with_cap(Cursor::new(b"abc\0def\0".to_vec()), 6);
        assert_eq!(r.read_field(10).unwrap(), b"abc");
        assert!(matches!(r.read_field(10), Err(FieldError::CapReached)));
    }

    #[test]
    fn short_field_stops_after_max_plus_one() {
        let mut r = reader(b"CONNECTEDUSERSX\0rest");
        assert!(matches!(r.read_short_field(MAX_OP_LEN), Err(FieldError::TooLong)));
        assert_eq!(r.consumed(), MAX_OP_LEN + 1);
    }

    #[test]
    fn works_across_tiny_buffers() {
        let inner = BufReader::with_capacity(1, Cursor::new(b"hello\0world\0".to_vec()));
        let mut r = FieldReader::new(inner);
        assert_eq!(r.read_field(5).unwrap(), b"hello");
        assert_eq!(r.read_field(5).unwrap(), b"world");
    }

    #[test]
    fn timeout_maps_to_timeout() {
        struct Slow;
        impl Read for Slow {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(ErrorKind::WouldBlock, "slow"))
            }
        }
        let mut r = FieldReader::new(BufReader::new(Slow));
        assert!(matches!(r.read_field(5), Err(FieldError::Timeout)));
    }

    #[test]
    fn numbers() {
        let mut buf = Vec::new();
        put_number(&mut buf, 0);
        put_number(&mut buf, 4294967295);
        assert_eq!(buf, b"0\x004294967295\0");
        assert_eq!(parse_number(b"65535", 65535), Some(65535));
        assert_eq!(parse_number(b"65536", 65535), None);
        assert_eq!(parse_number(b"", 10), None);
        assert_eq!(parse_number(b"-1", 10), None);
        assert_eq!(parse_number(b" 1", 10), None);
        assert_eq!(parse_number(b"007", 10), Some(7));
        assert_eq!(parse_number(b"99999999999999999999999", u64::MAX), None);
    }
}
