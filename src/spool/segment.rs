//! What the spool knows about each segment file, and positions in the log.

use super::position::Seal;

/// The largest segment id the spool writes. Ids start at 1 and grow by one
/// per segment, so this is out of reach (a new segment every microsecond
/// would take nine years), and it leaves room above every id for the
/// arithmetic on ids. A file named with an id outside `1..=MAX_ID` was not
/// written by the spool and is refused at open.
pub(crate) const MAX_ID: u64 = (1 << 48) - 1;

/// A byte position in the log: a segment id and an offset in that file.
/// Positions order along the log because segment ids increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) seg: u64,
    pub(crate) off: u64,
}

/// One segment file.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// End of the frames that belong to the log; reading stops here. After a
    /// failed fsync or a failed truncate the file may hold more than this.
    pub(crate) end: u64,
    /// Bytes from the start known to be durable (synced since last changed).
    pub(crate) synced: u64,
    /// Length of the file, for the `max_bytes` account.
    pub(crate) size: u64,
    /// Cut shorter since the last sync (a `pop_newest`), so it needs one.
    pub(crate) truncated: bool,
    /// No more appends: full, or retired after an error.
    pub(crate) sealed: bool,
    /// An fsync of this file failed. It is never written or synced again;
    /// what it held after `synced` is rewritten elsewhere or reported.
    pub(crate) poisoned: bool,
    /// Byte ranges `[start, end)` known not to be records of the log
    /// (damage, or second copies), found by open or by a reader; sorted.
    pub(crate) skips: Vec<(u64, u64)>,
    /// What the frames in `[0, end)` are, when known exactly (written here,
    /// or scanned at open and every one intact): what a seal records.
    /// `None` once anything made it uncertain (a cut, damage, a rewrite).
    pub(crate) meta: Option<Meta>,
}

/// The records of a segment, for its seal.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Meta {
    pub(crate) count: u64,
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
    pub(crate) last_off: u64,
}

impl Segment {
    pub(crate) fn new_empty() -> Self {
        Self {
            end: 0,
            synced: 0,
            size: 0,
            truncated: false,
            sealed: false,
            poisoned: false,
            skips: Vec::new(),
            meta: Some(Meta::default()),
        }
    }

    /// Counts a frame written (or found intact) at `off` with `seq`, after
    /// every frame counted before it.
    pub(crate) fn note_frame(&mut self, off: u64, seq: u64) {
        if let Some(m) = &mut self.meta {
            if m.count == 0 {
                m.first_seq = seq;
            }
            m.count += 1;
            m.last_seq = seq;
            m.last_off = off;
        }
    }

    /// The seal of this segment (id `id`) if open may trust it without
    /// reading it: it takes no more appends, everything in it is synced and
    /// exactly its frames, all known intact.
    pub(crate) fn seal(&self, id: u64) -> Option<Seal> {
        let m = self.meta?;
        let settled = self.sealed
            && !self.poisoned
            && !self.truncated
            && self.synced >= self.end
            && self.size == self.end
            && self.skips.is_empty();
        (settled && m.count > 0).then_some(Seal {
            id,
            end: self.end,
            count: m.count,
            first_seq: m.first_seq,
            last_seq: m.last_seq,
            last_off: m.last_off,
        })
    }

    /// Whether a sync would change what is durable.
    pub(crate) fn needs_sync(&self) -> bool {
        self.synced < self.end || self.truncated
    }

    /// The end of the known-bad range starting exactly at `off`, if any.
    pub(crate) fn skip_at(&self, off: u64) -> Option<u64> {
        self.skips
            .binary_search_by_key(&off, |r| r.0)
            .ok()
            .map(|i| self.skips[i].1)
    }

    /// Remembers `[start, end)` as not part of the log.
    pub(crate) fn add_skip(&mut self, start: u64, end: u64) {
        if let Err(i) = self.skips.binary_search_by_key(&start, |r| r.0) {
            self.skips.insert(i, (start, end));
        }
    }
}
