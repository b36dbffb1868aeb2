//! The read-position file: where reading resumes after a restart.
//!
//! It is a hint. Open checks it against the records really on disk: records
//! with a sequence number below `seq` count as consumed; `segment`/`offset`
//! say where the first record at or after `seq` was, and only serve to report
//! whether the hint matched. A missing or damaged file means nothing was
//! consumed yet (records may be delivered again, never lost).
//!
//! Format (36 bytes, little-endian): magic `b"SPWPOS01"`, `seq` u64,
//! `segment` u64, `offset` u64, then CRC32C of the 32 bytes before it.
//! It is replaced atomically (temporary file, sync, rename; the directory is
//! synced with the spool's next directory sync).

use super::frame::MAX_SEQ;
use super::segment::{Pos, MAX_ID};

const MAGIC: &[u8; 8] = b"SPWPOS01";
const LEN: usize = 36;

/// The longest position file the format allows; a reader reads no more.
pub(crate) const MAX_LEN: usize = LEN;

/// A decoded read position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// Every record with a smaller sequence number was consumed.
    pub(crate) seq: u64,
    /// Where the oldest unconsumed record was (or the end of the log).
    pub(crate) at: Pos,
}

impl Position {
    pub(crate) fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.at.seg.to_le_bytes());
        b[24..32].copy_from_slice(&self.at.off.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` when the bytes are not a position this version wrote intact.
    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != LEN || &b[0..8] != MAGIC {
            return None;
        }
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&b[32..36]);
        if crc32c::crc32c(&b[0..32]) != u32::from_le_bytes(crc) {
            return None;
        }
        let p = Self {
            seq: u64_at(8),
            at: Pos {
                seg: u64_at(16),
                off: u64_at(24),
            },
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

    #[test]
    fn round_trip_and_damage() {
        let p = Position {
            seq: 42,
            at: Pos { seg: 3, off: 4096 },
        };
        let b = p.encode();
        assert_eq!(Position::decode(&b), Some(p));
        for i in 0..LEN {
            let mut bad = b;
            bad[i] ^= 0x80;
            assert_eq!(Position::decode(&bad), None, "flip at {i}");
        }
        assert_eq!(Position::decode(&b[..LEN - 1]), None);
        assert_eq!(Position::decode(&[]), None);
    }
}
