//! What opening a spool found, and what it had to leave out.

/// Why a range of bytes in a segment was not returned as records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A frame's checksum did not match its length, sequence number and data.
    Checksum,
    /// A frame claimed a length above `max_record`.
    BadLength,
    /// A frame ran past the end of its file (a write that was cut short).
    Truncated,
    /// A frame whose checksum matched but whose sequence number is above any
    /// the spool writes: not a record of this spool.
    BadSequence,
    /// An intact record whose sequence number was not above the one before:
    /// a second copy (written again after a failed fsync) or a stale file.
    Duplicate {
        /// The sequence number of the first record in the range.
        seq: u64,
    },
}

/// A range of one segment file that was skipped, never returned as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Segment id (the file is `{segment:016x}.seg`).
    pub segment: u64,
    /// Offset of the first skipped byte in that file.
    pub offset: u64,
    /// How many bytes were skipped.
    pub bytes: u64,
    /// Why.
    pub reason: SkipReason,
}

/// What became of the saved read position at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionStatus {
    /// There was none: every record on disk is unconsumed.
    #[default]
    Missing,
    /// It was damaged or unreadable and was ignored: every record on disk is
    /// unconsumed (some may be delivered again).
    Invalid,
    /// It pointed exactly at the first unconsumed record (or the end).
    Matched,
    /// Its place did not match the data (files missing, added, or cut); its
    /// sequence number was used to find the first unconsumed record.
    Adjusted,
}

/// What [`Spool::open`](super::Spool::open) found, plus anything a later read
/// had to skip. Never a reason to refuse to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files found.
    pub segments: usize,
    /// Unconsumed records after open.
    pub records: u64,
    /// Intact records found before the read position (already consumed).
    pub consumed: u64,
    /// Segment files trusted without being read, by their seal (see
    /// [`Spool::open`](super::Spool::open)): their records are checked when
    /// read, and damage found then is added to this report.
    pub sealed_segments: usize,
    /// Segment files deleted because everything in them was consumed.
    pub deleted_segments: usize,
    /// Bytes cut from the end of the newest segment: a write torn by a crash.
    pub truncated_bytes: u64,
    /// Ranges skipped as damaged or duplicate (the first 1000 are listed;
    /// `skipped_total` counts all).
    pub skipped: Vec<Skipped>,
    /// How many ranges were skipped in all.
    pub skipped_total: u64,
    /// What became of the saved read position.
    pub position: PositionStatus,
}

/// How many skipped ranges are listed at most. (Not public: cbindgen would
/// put every public constant into the C header.)
const MAX_LISTED: usize = 1000;

impl OpenReport {
    /// Whether open found nothing wrong: no skipped range and no torn tail.
    pub fn is_clean(&self) -> bool {
        self.skipped_total == 0 && self.truncated_bytes == 0
    }

    pub(crate) fn add_skip(&mut self, s: Skipped) {
        self.skipped_total += 1;
        if self.skipped.len() < MAX_LISTED {
            self.skipped.push(s);
        }
    }
}
