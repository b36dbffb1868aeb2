//! How one record is laid out in a segment file.
//!
//! # On-disk format, version 1
//!
//! A segment file is a plain concatenation of frames, with no file header.
//! Every integer is little-endian:
//!
//! ```text
//! offset  size  field
//!      0     4  crc   CRC32C (Castagnoli) of bytes 4..16+len: length, sequence, payload
//!      4     4  len   payload length in bytes (u32), at most max_record
//!      8     8  seq   sequence number (u64), strictly increasing along the log
//!     16   len  payload
//! ```
//!
//! The checksum comes first so that what it covers is contiguous: one pass
//! over each frame when a spool is opened.
//!
//! Because the checksum covers the length, a damaged length is caught like
//! damaged data; the length is compared with `max_record` and with the bytes
//! left in the file before anything is allocated for it. Sequence numbers are
//! never reused in one directory, may have gaps (a record consumed before it
//! was ever written), and let a reader drop a second copy of a record (written
//! again after a failed fsync) and check the read-position hint.
//!
//! Segment files are named `{id:016x}.seg` (16 lower-case hex digits, an id
//! from 1 to `MAX_ID`) and their ids increase along the log. A new format
//! would use a new extension.

/// The largest sequence number the spool writes or trusts. Numbers start at 1
/// and grow by one per record, so it is out of reach, and it leaves room
/// above every number for the arithmetic on them. A frame or read position
/// with a larger number was not written by the spool: it counts as damage.
pub(crate) const MAX_SEQ: u64 = 1 << 62;

/// Bytes before the payload.
pub(crate) const HEADER: usize = 16;

/// The largest payload the format can describe while keeping a frame's
/// length representable in a `u32`.
pub(crate) const MAX_PAYLOAD: usize = u32::MAX as usize - HEADER;

/// The bytes a frame of a `payload_len`-byte record takes on disk.
pub(crate) fn frame_len(payload_len: usize) -> u64 {
    (HEADER + payload_len) as u64
}

/// Appends the frame of `payload` with sequence number `seq` to `out`.
/// The caller has checked `payload.len() <= MAX_PAYLOAD`.
pub(crate) fn encode(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The fields of a frame header, not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) crc: u32,
    pub(crate) len: u32,
    pub(crate) seq: u64,
}

/// Reads the header at the start of `b`, which holds at least [`HEADER`] bytes.
pub(crate) fn header(b: &[u8]) -> Header {
    let mut crc = [0u8; 4];
    let mut len = [0u8; 4];
    let mut seq = [0u8; 8];
    crc.copy_from_slice(&b[0..4]);
    len.copy_from_slice(&b[4..8]);
    seq.copy_from_slice(&b[8..16]);
    Header {
        crc: u32::from_le_bytes(crc),
        len: u32::from_le_bytes(len),
        seq: u64::from_le_bytes(seq),
    }
}

/// Whether `frame` (header and payload, exactly) carries a matching checksum.
pub(crate) fn verify(frame: &[u8], h: &Header) -> bool {
    crc32c::crc32c(&frame[4..]) == h.crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_read_back() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, b"hello");
        assert_eq!(buf.len() as u64, frame_len(5));
        let h = header(&buf);
        assert_eq!((h.len, h.seq), (5, 7));
        assert!(verify(&buf, &h));
        assert_eq!(&buf[HEADER..], b"hello");
    }

    #[test]
    fn checksum_covers_length_sequence_and_payload() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, b"abc");
        for i in 0..buf.len() {
            if i < 4 {
                continue; // the checksum itself
            }
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            let h = header(&bad);
            if h.len as usize + HEADER != bad.len() {
                continue; // a reader rejects it for its length before the checksum
            }
            assert!(!verify(&bad, &h), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn zeros_are_not_a_frame() {
        let zeros = [0u8; HEADER];
        assert!(!verify(&zeros, &header(&zeros)));
    }
}
