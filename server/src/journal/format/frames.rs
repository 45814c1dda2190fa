//! Reading a file's frames back, telling a torn tail (what a crash leaves) from damage (what it cannot).

use std::io::{self, Read};

use super::{decode, Damage, Decoded, FRAME_HEADER_LEN, MAX_RECORD_LEN};

/// One step of reading a file's frames.
#[derive(Debug)]
pub enum Frame {
    /// An intact record starting at `offset`.
    Record { offset: u64, record: Decoded },
    /// Clean end of the file.
    End,
    /// What a crash in the middle of a write leaves: the file ends inside the frame at `offset`, or the frame is
    /// the file's last and fails its CRC, or everything from `offset` on is zeros (a file extended but never
    /// written). Everything from `offset` on may be cut away.
    Torn { offset: u64, reason: Damage },
    /// Damage that a crash cannot explain, at `offset`; the file must not be trusted past it.
    Corrupt { offset: u64, reason: Damage },
}

/// Reads frames one at a time from a file whose header has already been consumed.
pub struct FrameReader<R> {
    inner: R,
    /// Offset in the file of the next frame.
    pub(in crate::journal) offset: u64,
    file_len: u64,
    payload: Vec<u8>,
}

impl<R: Read> FrameReader<R> {
    /// `inner` is positioned at `offset` of a file that is `file_len` bytes long.
    pub fn new(inner: R, offset: u64, file_len: u64) -> FrameReader<R> {
        FrameReader { inner, offset, file_len, payload: Vec::with_capacity(MAX_RECORD_LEN) }
    }

    /// The next frame. After `Torn` or `Corrupt` the reader must not be used further.
    pub fn next_frame(&mut self) -> io::Result<Frame> {
        let offset = self.offset;
        let mut header = [0u8; FRAME_HEADER_LEN];
        let got = read_full(&mut self.inner, &mut header)?;
        if got == 0 {
            return Ok(Frame::End);
        }
        if got < FRAME_HEADER_LEN {
            if header[..got].iter().all(|&b| b == 0) {
                return Ok(Frame::Torn { offset, reason: Damage::ZeroTail });
            }
            return Ok(Frame::Torn { offset, reason: Damage::EndsInFrameHeader });
        }
        let len = u16::from_le_bytes([header[0], header[1]]);
        let check = u16::from_le_bytes([header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len != !check {
            if header.iter().all(|&b| b == 0) && self.rest_is_zero()? {
                return Ok(Frame::Torn { offset, reason: Damage::ZeroTail });
            }
            return Ok(Frame::Corrupt { offset, reason: Damage::BadFrameLength });
        }
        let len = usize::from(len);
        if len == 0 || len > MAX_RECORD_LEN {
            return Ok(Frame::Corrupt { offset, reason: Damage::ImpossibleFrameLength });
        }
        self.payload.resize(len, 0);
        let got = read_full(&mut self.inner, &mut self.payload)?;
        if got < len {
            return Ok(Frame::Torn { offset, reason: Damage::EndsInRecord });
        }
        let end = offset + (FRAME_HEADER_LEN + len) as u64;
        if crc32fast::hash(&self.payload) != crc {
            if end == self.file_len {
                return Ok(Frame::Torn { offset, reason: Damage::FinalChecksum });
            }
            return Ok(Frame::Corrupt { offset, reason: Damage::Checksum });
        }
        match decode(&self.payload) {
            Ok(record) => {
                self.offset = end;
                Ok(Frame::Record { offset, record })
            }
            Err(reason) => Ok(Frame::Corrupt { offset, reason }),
        }
    }

    /// True when nothing but zeros is left (consumes the rest).
    fn rest_is_zero(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 4096];
        loop {
            match read_full(&mut self.inner, &mut buf)? {
                0 => return Ok(true),
                n if buf[..n].iter().any(|&b| b != 0) => return Ok(false),
                _ => {}
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
