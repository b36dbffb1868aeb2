//! Reading frames back from a segment: a read-ahead buffer, a frame check
//! that bounds the length before reading the payload, and resynchronisation
//! past damaged bytes.

use super::crc_range::{Prefix, BLOCK};
use super::error::IoError;
use super::frame::{self, HEADER};
use super::report::SkipReason;
use super::storage::Storage;

/// Bytes kept behind the start of a request when the window slides: the
/// checkpoints of a resync look up to two blocks back.
const BACK: u64 = 4 * BLOCK;

/// Frames whose checksummed part is at most this long are checked by hashing
/// it; longer ones go through the checkpoints once a segment has had damage.
const SHORT: usize = 64;

/// A window of one segment's bytes, read in large chunks and reused, plus
/// the checkpoints that make checking frames after damage linear.
pub(crate) struct ReadBuf {
    seg: u64,
    start: u64,
    filled: usize,
    valid: bool,
    buf: Vec<u8>,
    chunk: usize,
    prefix: Prefix,
}

impl ReadBuf {
    pub(crate) fn new(chunk: usize) -> Self {
        Self {
            seg: 0,
            start: 0,
            filled: 0,
            valid: false,
            buf: Vec::new(),
            chunk: chunk.max(HEADER),
            prefix: Prefix::default(),
        }
    }

    /// Forgets what it holds (after a truncation, or when a segment goes).
    pub(crate) fn invalidate(&mut self) {
        self.valid = false;
        self.prefix.invalidate();
    }

    /// Whether damage was met in segment `seg` (since the last
    /// [`invalidate`](Self::invalidate)): its frames are then checked through
    /// the checkpoints, so that no byte is hashed twice.
    pub(crate) fn damaged(&self, seg: u64) -> bool {
        self.prefix.on(seg)
    }

    /// Bytes of segment `seg` from `off` up to at most `limit`: at least
    /// `need` of them unless the segment ends first.
    ///
    /// Moving forward through a segment reads each byte from storage once:
    /// what the window already holds from `off` on (and [`BACK`] bytes
    /// before it) is kept, and only the rest is read. The window reads ahead
    /// by half of `need` beyond it (or a chunk), so that a scan asking for
    /// long spans at every byte moves the kept bytes rarely.
    pub(crate) fn fetch(
        &mut self,
        st: &mut dyn Storage,
        seg: u64,
        off: u64,
        need: usize,
        limit: u64,
    ) -> Result<&[u8], IoError> {
        if off >= limit {
            return Ok(&[]);
        }
        let want_end = off.saturating_add(need as u64).min(limit);
        let have_end = self.start + self.filled as u64;
        let same = self.valid && self.seg == seg;
        if !(same && off >= self.start && want_end <= have_end) {
            if same && off >= self.start && off <= have_end {
                let keep = off.saturating_sub(BACK).max(self.start);
                let from = (keep - self.start) as usize;
                self.buf.copy_within(from..self.filled, 0);
                self.filled -= from;
                self.start = keep;
            } else {
                self.start = off;
                self.filled = 0;
            }
            let ahead = self.chunk.max(need.saturating_add(need / 2)) as u64;
            let end = off.saturating_add(ahead).min(limit);
            let len = (end - self.start) as usize;
            if self.buf.len() < len {
                self.buf.resize(len, 0);
            }
            self.seg = seg;
            self.valid = false;
            while self.filled < len {
                let at = self.start + self.filled as u64;
                let n = st.read_at(seg, at, &mut self.buf[self.filled..len])?;
                if n == 0 {
                    break;
                }
                self.filled += n;
            }
            self.valid = true;
        }
        let from = (off - self.start) as usize;
        let to = self.filled.min((limit - self.start) as usize);
        Ok(self.buf.get(from..to).unwrap_or(&[]))
    }

    /// Whether the frame at `off` of segment `seg`, with header `h` (whose
    /// length the caller has bounded), carries a matching checksum. `gap`
    /// bounds how far ahead of the checkpoints it may start and still extend
    /// them (beyond that they start afresh at `off`).
    fn frame_ok(
        &mut self,
        st: &mut dyn Storage,
        seg: u64,
        off: u64,
        h: frame::Header,
        limit: u64,
        gap: u64,
    ) -> Result<bool, IoError> {
        let total = HEADER + h.len as usize;
        let crc = h.crc;
        let (a, b) = (off + 4, off + total as u64);
        if total - 4 <= SHORT || !self.prefix.on(seg) {
            let bytes = self.fetch(st, seg, off, total, limit)?;
            #[cfg(test)]
            crate::spool::crc_range::tests::HASHED.with(|c| c.set(c.get() + total as u64 - 4));
            return Ok(bytes.len() >= total && crc32c::crc32c(&bytes[4..total]) == crc);
        }
        if a < self.prefix.lo() || self.prefix.floor(a) > self.prefix.frontier().saturating_add(gap)
        {
            self.prefix.reset(seg, off);
        }
        let at = self.prefix.frontier().min(self.prefix.floor(a));
        self.fetch(st, seg, at, (b - at) as usize, limit)?;
        let Self {
            buf, start, prefix, ..
        } = self;
        let bytes = buf.get((at - *start) as usize..).unwrap_or(&[]);
        Ok(prefix.range(bytes, at, a, b) == Some(crc))
    }

    /// Resynchronisation is about to scan segment `seg` from `off`: keep (or
    /// start) checkpoints from there.
    fn anchor(&mut self, seg: u64, off: u64) {
        self.prefix.anchor(seg, off);
    }

    /// Keeps the checkpoints up with a scan at `o` (within a block), so that
    /// checking a long candidate there never has to reach far back.
    fn keep_up(
        &mut self,
        st: &mut dyn Storage,
        seg: u64,
        o: u64,
        limit: u64,
    ) -> Result<(), IoError> {
        if self.prefix.on(seg) {
            // Drops what lies wholly behind the scan.
            self.prefix.anchor(seg, o.min(self.prefix.frontier()));
        } else {
            self.prefix.reset(seg, o);
        }
        let f = self.prefix.frontier();
        if f + BLOCK > o {
            return Ok(());
        }
        self.fetch(st, seg, f, (o - f) as usize, limit)?;
        let Self {
            buf, start, prefix, ..
        } = self;
        let bytes = buf.get((f - *start) as usize..).unwrap_or(&[]);
        prefix.extend(bytes, f, o);
        Ok(())
    }
}

/// What lies at one offset.
enum Probe {
    Record {
        seq: u64,
        len: u32,
    },
    Bad {
        reason: SkipReason,
        next: Option<u64>,
    },
    End,
}

/// A frame or a damaged range found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    /// An intact frame at `off` (`len` payload bytes).
    Record { off: u64, seq: u64, len: u32 },
    /// Bytes `[off, end)` that hold no frame the reader could trust.
    Junk {
        off: u64,
        end: u64,
        reason: SkipReason,
    },
}

/// Reads frames of one segment, up to `limit`.
pub(crate) struct Scan<'a> {
    pub(crate) st: &'a mut dyn Storage,
    pub(crate) rb: &'a mut ReadBuf,
    pub(crate) seg: u64,
    pub(crate) limit: u64,
    pub(crate) max_record: usize,
}

/// How far ahead of the checkpoints a frame may start and still extend them.
const NEAR: u64 = 2 * BLOCK;

/// Slices smaller than this are verified on one thread.
const PARALLEL_MIN: usize = 256 << 10;

/// The whole frames at the start of `buf` that check out (length within
/// `max_record`, checksum matching), following the chain of lengths from the
/// first byte, as `(seq, len)`; it stops before the first that does not.
/// Used at open, where checksums are most of the work: a large slice is
/// verified in two halves on two threads.
pub(crate) fn verified_frames(buf: &[u8], max_record: usize) -> Vec<(u64, u32)> {
    let mut frames: Vec<(usize, u64, u32)> = Vec::new(); // (start, seq, len)
    let mut o = 0;
    while o + HEADER <= buf.len() {
        let h = frame::header(&buf[o..]);
        // The careful path reports what stops the walk.
        if h.len as usize > max_record || h.seq > frame::MAX_SEQ {
            break;
        }
        let end = o + HEADER + h.len as usize;
        if end > buf.len() {
            break;
        }
        frames.push((o, h.seq, h.len));
        o = end;
    }
    // How many frames of `part` check out before one fails.
    let good = |part: &[(usize, u64, u32)]| -> usize {
        part.iter()
            .position(|&(start, _, len)| {
                let f = &buf[start..start + HEADER + len as usize];
                !frame::verify(f, &frame::header(f))
            })
            .unwrap_or(part.len())
    };
    let n = frames.len();
    let ok = if o < PARALLEL_MIN || n < 2 {
        good(&frames)
    } else {
        let half = frames.partition_point(|f| f.0 < o / 2).clamp(1, n - 1);
        let (left, right) = frames.split_at(half);
        let (l, r) = crate::join::join(|| good(left), || good(right));
        if l < half {
            l
        } else {
            half + r
        }
    };
    frames.truncate(ok);
    frames.into_iter().map(|(_, seq, len)| (seq, len)).collect()
}

impl Scan<'_> {
    /// What lies at `off`. `gap` is passed to [`ReadBuf::frame_ok`].
    fn probe(&mut self, off: u64, gap: u64) -> Result<Probe, IoError> {
        if off >= self.limit {
            return Ok(Probe::End);
        }
        let b = self.rb.fetch(self.st, self.seg, off, HEADER, self.limit)?;
        if b.len() < HEADER {
            return Ok(Probe::Bad {
                reason: SkipReason::Truncated,
                next: None,
            });
        }
        let h = frame::header(b);
        // The length is bounded before anything is read or allocated for it.
        if h.len as usize > self.max_record {
            return Ok(Probe::Bad {
                reason: SkipReason::BadLength,
                next: None,
            });
        }
        let total = HEADER + h.len as usize;
        if off + total as u64 > self.limit {
            return Ok(Probe::Bad {
                reason: SkipReason::Truncated,
                next: None,
            });
        }
        let next = Some(off + total as u64);
        if !self
            .rb
            .frame_ok(self.st, self.seg, off, h, self.limit, gap)?
        {
            return Ok(Probe::Bad {
                reason: SkipReason::Checksum,
                next,
            });
        }
        if h.seq > frame::MAX_SEQ {
            return Ok(Probe::Bad {
                reason: SkipReason::BadSequence,
                next,
            });
        }
        Ok(Probe::Record {
            seq: h.seq,
            len: h.len,
        })
    }

    /// The item at `off`, or `None` at the limit. After damage, the next
    /// trusted frame is one that checks out and whose sequence number is
    /// above `after_seq`: first where the damaged frame's length points,
    /// then at every later byte.
    ///
    /// Linear in the damage: each candidate costs a header read and, for a
    /// long frame, two checkpoint lookups (see `crc_range.rs`); the window
    /// moves forward only, so each byte is read from storage once.
    pub(crate) fn next_item(
        &mut self,
        off: u64,
        after_seq: Option<u64>,
    ) -> Result<Option<Item>, IoError> {
        let (reason, next) = match self.probe(off, NEAR)? {
            Probe::End => return Ok(None),
            Probe::Record { seq, len } => return Ok(Some(Item::Record { off, seq, len })),
            Probe::Bad { reason, next } => (reason, next),
        };
        // From here on, this segment's frames are checked through
        // checkpoints kept from `off`, which the scan below reuses.
        self.rb.anchor(self.seg, off);
        let fits = |seq: u64| !matches!(after_seq, Some(a) if seq <= a);
        if let Some(n) = next {
            // The checkpoints from `off` reach `n`: the bytes between are
            // the ones scanned next, so extending over them is no waste.
            if let Probe::Record { seq, .. } = self.probe(n, u64::MAX)? {
                if fits(seq) {
                    return Ok(Some(Item::Junk {
                        off,
                        end: n,
                        reason,
                    }));
                }
            }
        }
        let mut o = off + 1;
        while o + HEADER as u64 <= self.limit {
            self.rb.keep_up(self.st, self.seg, o, self.limit)?;
            if let Probe::Record { seq, .. } = self.probe(o, NEAR)? {
                if fits(seq) {
                    return Ok(Some(Item::Junk {
                        off,
                        end: o,
                        reason,
                    }));
                }
            }
            o += 1;
        }
        Ok(Some(Item::Junk {
            off,
            end: self.limit,
            reason,
        }))
    }

    /// The payload of the record found at `off` with `len` bytes.
    pub(crate) fn payload(&mut self, off: u64, len: u32) -> Result<&[u8], IoError> {
        let total = HEADER + len as usize;
        let b = self.rb.fetch(self.st, self.seg, off, total, self.limit)?;
        Ok(b.get(HEADER..total).unwrap_or(&[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: u64, len: usize) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for seq in 1..=n {
            starts.push(buf.len());
            frame::encode(&mut buf, seq, &vec![seq as u8; len]);
        }
        (buf, starts)
    }

    /// Bytes hashed to scan 5 records, `damage` bytes of `00 00 3F 00`
    /// repeated (a header whose length fits at most offsets), 5 records.
    fn resync_work(damage: usize) -> u64 {
        use crate::spool::crc_range::tests::HASHED;
        use crate::spool::MemStorage;
        let mut seg = Vec::new();
        for s in 1..=5u64 {
            frame::encode(&mut seg, s, &[s as u8; 60]);
        }
        seg.extend((0..damage).map(|i| [0u8, 0, 0x3F, 0][i % 4]));
        for s in 6..=10u64 {
            frame::encode(&mut seg, s, &[s as u8; 60]);
        }
        let mut mem = MemStorage::new();
        mem.set_segment(1, seg.clone());
        let mut rb = ReadBuf::new(4 << 20);
        HASHED.with(|h| h.set(0));
        let mut scan = Scan {
            st: &mut mem,
            rb: &mut rb,
            seg: 1,
            limit: seg.len() as u64,
            max_record: 4 << 20,
        };
        let (mut pos, mut after, mut seqs, mut junk) = (0, None, Vec::new(), Vec::new());
        while let Some(item) = scan.next_item(pos, after).unwrap() {
            match item {
                Item::Record { off, seq, len } => {
                    after = Some(seq);
                    seqs.push(seq);
                    pos = off + frame::frame_len(len as usize);
                }
                Item::Junk { off, end, .. } => {
                    junk.push(end - off);
                    pos = end;
                }
            }
        }
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
        assert_eq!(junk, vec![damage as u64]);
        HASHED.with(|h| h.get())
    }

    #[test]
    fn resync_hashes_a_bounded_number_of_bytes_per_byte_of_damage() {
        // At most two partial blocks per candidate, plus each byte once into
        // the checkpoints (about 30 bytes per byte here). Checking each
        // candidate afresh would hash about 4 KiB per byte (a quarter of the
        // offsets claim 16 KiB).
        let small = resync_work(64 << 10);
        let large = resync_work(256 << 10);
        assert!(small <= 48 * (64 << 10), "{small} bytes hashed");
        assert!(large <= 48 * (256 << 10), "{large} bytes hashed");
        // Four times the damage, about four times the work.
        assert!(2 * large <= 9 * small, "{small} then {large}: not linear");
    }

    /// The resync as specified, checking every candidate afresh: the
    /// reference the linear one must agree with.
    fn naive_next(b: &[u8], off: usize, after: Option<u64>, max: usize) -> Option<Item> {
        let probe = |o: usize| -> Result<(u64, u32), (SkipReason, Option<usize>)> {
            if o + HEADER > b.len() {
                return Err((SkipReason::Truncated, None));
            }
            let h = frame::header(&b[o..]);
            if h.len as usize > max {
                return Err((SkipReason::BadLength, None));
            }
            let end = o + HEADER + h.len as usize;
            if end > b.len() {
                return Err((SkipReason::Truncated, None));
            }
            if !frame::verify(&b[o..end], &h) {
                return Err((SkipReason::Checksum, Some(end)));
            }
            if h.seq > frame::MAX_SEQ {
                return Err((SkipReason::BadSequence, Some(end)));
            }
            Ok((h.seq, h.len))
        };
        if off >= b.len() {
            return None;
        }
        let (reason, next) = match probe(off) {
            Ok((seq, len)) => {
                let off = off as u64;
                return Some(Item::Record { off, seq, len });
            }
            Err(e) => e,
        };
        let fits = |seq: u64| !matches!(after, Some(a) if seq <= a);
        let junk = |end: usize| {
            let (off, end) = (off as u64, end as u64);
            Some(Item::Junk { off, end, reason })
        };
        if let Some(n) = next {
            if matches!(probe(n), Ok((seq, _)) if fits(seq)) {
                return junk(n);
            }
        }
        let mut o = off + 1;
        while o + HEADER <= b.len() {
            if matches!(probe(o), Ok((seq, _)) if fits(seq)) {
                return junk(o);
            }
            o += 1;
        }
        junk(b.len())
    }

    #[test]
    fn the_linear_resync_finds_exactly_what_checking_every_candidate_finds() {
        use crate::spool::MemStorage;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n.max(1)
        };
        for case in 0..120 {
            let max = [300usize, 5000][case % 2];
            let mut seg = Vec::new();
            let mut seq = 1u64;
            while seg.len() < 12_000 {
                match rnd(10) {
                    // A frame (sometimes a long one), sequence numbers with gaps.
                    0..=5 => {
                        let len = if rnd(4) == 0 {
                            rnd(max as u64 + 1)
                        } else {
                            rnd(100)
                        };
                        let payload: Vec<u8> = (0..len).map(|_| rnd(256) as u8).collect();
                        frame::encode(&mut seg, seq, &payload);
                        seq += 1 + rnd(3);
                    }
                    // Garbage.
                    6 => seg.extend((0..rnd(200)).map(|_| rnd(256) as u8)),
                    // A header claiming a long frame, checksum wrong.
                    7 => {
                        let claim = rnd(max as u64 + 1) as u32;
                        seg.extend_from_slice(&(rnd(1 << 32) as u32).to_le_bytes());
                        seg.extend_from_slice(&claim.to_le_bytes());
                        seg.extend_from_slice(&seq.to_le_bytes());
                    }
                    // The crafted pattern.
                    8 => seg.extend((0..rnd(3000)).map(|i| [0u8, 0, 0x3F, 0][i as usize % 4])),
                    // An old frame again (a second copy).
                    _ => frame::encode(&mut seg, seq.saturating_sub(5).max(1), b"again"),
                }
            }
            for _ in 0..rnd(20) {
                let at = rnd(seg.len() as u64) as usize;
                seg[at] ^= 1 << rnd(8);
            }
            let chunk = [64usize, 300, 4096][case % 3];
            let mut mem = MemStorage::new();
            mem.set_segment(1, seg.clone());
            let mut rb = ReadBuf::new(chunk);
            let mut scan = Scan {
                st: &mut mem,
                rb: &mut rb,
                seg: 1,
                limit: seg.len() as u64,
                max_record: max,
            };
            let (mut pos, mut after) = (0u64, None);
            loop {
                let got = scan.next_item(pos, after).unwrap();
                let want = naive_next(&seg, pos as usize, after, max);
                assert_eq!(got, want, "case {case} at {pos}");
                match got {
                    None => break,
                    Some(Item::Record { off, seq, len }) => {
                        if after.is_none_or(|a| seq > a) {
                            after = Some(seq);
                        }
                        pos = off + frame::frame_len(len as usize);
                    }
                    Some(Item::Junk { end, .. }) => pos = end,
                }
            }
        }
    }

    #[test]
    fn verified_frames_stop_before_the_first_bad_one_in_either_half() {
        let (buf, starts) = frames(1000, 500); // ~500 KiB: two threads
        assert!(buf.len() > PARALLEL_MIN);
        let all = verified_frames(&buf, 1000);
        assert_eq!(all.len(), 1000);
        assert_eq!(all[999], (1000, 500));
        for bad in [3usize, 700, 999] {
            let mut b = buf.clone();
            b[starts[bad] + HEADER + 7] ^= 1;
            let got = verified_frames(&b, 1000);
            assert_eq!(got.len(), bad, "damage in frame {bad}");
        }
        // A cut frame at the end and a length above the limit stop the walk.
        assert_eq!(verified_frames(&buf[..buf.len() - 1], 1000).len(), 999);
        assert_eq!(verified_frames(&buf, 499).len(), 0);
    }
}
