//! The read-position file: where reading resumes after a restart, and which
//! sealed segments open may trust without reading them.
//!
//! It is a hint. Open checks it against the records really on disk: records
//! with a sequence number below `seq` count as consumed; `segment`/`offset`
//! say where the first record at or after `seq` was, and only serve to report
//! whether the hint matched. A missing or damaged file means nothing was
//! consumed yet (records may be delivered again, never lost), and every
//! segment is scanned.
//!
//! # Seals
//!
//! A seal describes a segment that takes no more appends, whose frames were
//! all intact and synced before the position was saved: its length, its
//! record count, the sequence numbers of its first and last records, and
//! where the last one starts. Open trusts a sealed segment without reading
//! it when the file still has that length and its last frame header (16
//! bytes) still says what the seal says; the records' checksums are checked
//! when they are read, as for any record, so damage is still found and
//! reported, only later. Anything that does not match is scanned as before.
//!
//! # Format
//!
//! Version 2 (written from this version on), little-endian:
//!
//! ```text
//! offset  size  field
//!      0     8  magic b"SPWPOS02"
//!      8     8  seq       every record below it was consumed
//!     16     8  segment   where the first unconsumed record was
//!     24     8  offset
//!     32     4  n         seals that follow (at most MAX_SEALS)
//!     36  48×n  seals: id, end, count, first_seq, last_seq, last_off (u64 each)
//!   36+48n   4  CRC32C of every byte before it
//! ```
//!
//! Version 1 (36 bytes: magic `b"SPWPOS01"`, `seq`, `segment`, `offset`,
//! CRC32C) is still read, as a position without seals: a spool written by an
//! older version opens (scanning everything once) and is upgraded at its
//! next save. An older version reading a version-2 file ignores it as
//! damaged and replays from the segments (at-least-once, nothing lost).
//!
//! The file is replaced atomically (temporary file, sync, rename; the
//! directory is synced with the spool's next directory sync).

use super::frame::MAX_SEQ;
use super::segment::{Pos, MAX_ID};

const MAGIC_V1: &[u8; 8] = b"SPWPOS01";
const MAGIC_V2: &[u8; 8] = b"SPWPOS02";
const LEN_V1: usize = 36;
const HEAD_V2: usize = 36;
const SEAL_LEN: usize = 48;

/// The most seals a position lists; segments beyond them are scanned at open.
/// It bounds the file (and the read of it) to under 50 KiB.
pub(crate) const MAX_SEALS: usize = 1024;

/// The longest position file the format allows; a reader reads no more.
pub(crate) const MAX_LEN: usize = HEAD_V2 + SEAL_LEN * MAX_SEALS + 4;

/// What open needs to trust a sealed segment without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seal {
    pub(crate) id: u64,
    /// Length of the file, and end of its last frame.
    pub(crate) end: u64,
    /// Records in it.
    pub(crate) count: u64,
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
    /// Where its last frame starts.
    pub(crate) last_off: u64,
}

impl Seal {
    /// Whether the numbers could describe a segment the spool wrote.
    fn plausible(&self) -> bool {
        (1..=MAX_ID).contains(&self.id)
            && self.count >= 1
            && self.first_seq <= self.last_seq
            && self.last_seq <= MAX_SEQ
            && self.last_seq - self.first_seq >= self.count - 1
            && self.last_off < self.end
    }
}

/// A decoded read position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    /// Every record with a smaller sequence number was consumed.
    pub(crate) seq: u64,
    /// Where the oldest unconsumed record was (or the end of the log).
    pub(crate) at: Pos,
    /// Sealed segments, by increasing id.
    pub(crate) seals: Vec<Seal>,
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(x)
}

impl Position {
    /// The file's bytes (version 2). At most [`MAX_SEALS`] seals are written.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let seals = &self.seals[..self.seals.len().min(MAX_SEALS)];
        let mut b = Vec::with_capacity(HEAD_V2 + SEAL_LEN * seals.len() + 4);
        b.extend_from_slice(MAGIC_V2);
        b.extend_from_slice(&self.seq.to_le_bytes());
        b.extend_from_slice(&self.at.seg.to_le_bytes());
        b.extend_from_slice(&self.at.off.to_le_bytes());
        b.extend_from_slice(&(seals.len() as u32).to_le_bytes());
        for s in seals {
            for v in [s.id, s.end, s.count, s.first_seq, s.last_seq, s.last_off] {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` when the bytes are not a position this version or the one
    /// before wrote intact.
    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < LEN_V1 || b.len() > MAX_LEN {
            return None;
        }
        let (body, crc) = b.split_at(b.len() - 4);
        let mut c = [0u8; 4];
        c.copy_from_slice(crc);
        if crc32c::crc32c(body) != u32::from_le_bytes(c) {
            return None;
        }
        let mut seals = Vec::new();
        match &body[0..8] {
            m if m == MAGIC_V1 && b.len() == LEN_V1 => {}
            m if m == MAGIC_V2 => {
                let mut n = [0u8; 4];
                n.copy_from_slice(&body[32..36]);
                let n = u32::from_le_bytes(n) as usize;
                if n > MAX_SEALS || body.len() != HEAD_V2 + SEAL_LEN * n {
                    return None;
                }
                for i in 0..n {
                    let o = HEAD_V2 + SEAL_LEN * i;
                    let s = Seal {
                        id: u64_at(body, o),
                        end: u64_at(body, o + 8),
                        count: u64_at(body, o + 16),
                        first_seq: u64_at(body, o + 24),
                        last_seq: u64_at(body, o + 32),
                        last_off: u64_at(body, o + 40),
                    };
                    // Not what the spool writes: no seal at all is safe.
                    if !s.plausible() || seals.last().is_some_and(|p: &Seal| p.id >= s.id) {
                        return None;
                    }
                    seals.push(s);
                }
            }
            _ => return None,
        }
        let p = Self {
            seq: u64_at(body, 8),
            at: Pos {
                seg: u64_at(body, 16),
                off: u64_at(body, 24),
            },
            seals,
        };
        // Numbers the spool never writes: not a position it saved.
        if p.seq > MAX_SEQ + 1 || p.at.seg > MAX_ID {
            return None;
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Position {
        Position {
            seq: 42,
            at: Pos { seg: 3, off: 4096 },
            seals: vec![
                Seal {
                    id: 3,
                    end: 8192,
                    count: 10,
                    first_seq: 30,
                    last_seq: 41,
                    last_off: 8000,
                },
                Seal {
                    id: 4,
                    end: 100,
                    count: 1,
                    first_seq: 42,
                    last_seq: 42,
                    last_off: 0,
                },
            ],
        }
    }

    #[test]
    fn round_trip_and_damage() {
        let p = sample();
        let b = p.encode();
        assert_eq!(b.len(), HEAD_V2 + 2 * SEAL_LEN + 4);
        assert_eq!(Position::decode(&b), Some(p));
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x80;
            assert_eq!(Position::decode(&bad), None, "flip at {i}");
        }
        assert_eq!(Position::decode(&b[..b.len() - 1]), None);
        assert_eq!(Position::decode(&[]), None);
    }

    #[test]
    fn version_1_still_reads_as_a_position_without_seals() {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC_V1);
        for v in [42u64, 3, 4096] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let p = Position::decode(&b).unwrap();
        assert_eq!(
            (p.seq, p.at, p.seals.len()),
            (42, Pos { seg: 3, off: 4096 }, 0)
        );
    }

    #[test]
    fn implausible_seals_are_refused_whole() {
        let mut p = sample();
        p.seals[1].id = p.seals[0].id; // not increasing
        assert_eq!(Position::decode(&p.encode()), None);
        let mut p = sample();
        p.seals[0].count = 0;
        assert_eq!(Position::decode(&p.encode()), None);
        let mut p = sample();
        p.seals[0].last_off = p.seals[0].end;
        assert_eq!(Position::decode(&p.encode()), None);
    }
}
