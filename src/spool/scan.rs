//! Reading frames back from a segment: a read-ahead buffer, a frame check
//! that bounds the length before reading the payload, and resynchronisation
//! past damaged bytes.

use super::error::IoError;
use super::frame::{self, HEADER};
use super::report::SkipReason;
use super::storage::Storage;

/// A window of one segment's bytes, read in large chunks and reused.
pub(crate) struct ReadBuf {
    seg: u64,
    start: u64,
    filled: usize,
    valid: bool,
    buf: Vec<u8>,
    chunk: usize,
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
        }
    }

    /// Forgets what it holds (after a truncation, or when a segment goes).
    pub(crate) fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Bytes of segment `seg` from `off` up to at most `limit`: at least
    /// `need` of them unless the segment ends first.
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
        if !(self.valid && self.seg == seg && off >= self.start && want_end <= have_end) {
            let len = (need.max(self.chunk) as u64).min(limit - off) as usize;
            if self.buf.len() < len {
                self.buf.resize(len, 0);
            }
            self.valid = false;
            let mut filled = 0;
            while filled < len {
                let n = st.read_at(seg, off + filled as u64, &mut self.buf[filled..len])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            self.seg = seg;
            self.start = off;
            self.filled = filled;
            self.valid = true;
        }
        let from = (off - self.start) as usize;
        let to = self.filled.min((limit - self.start) as usize);
        Ok(self.buf.get(from..to).unwrap_or(&[]))
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
        if h.len as usize > max_record {
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
    fn probe(&mut self, off: u64) -> Result<Probe, IoError> {
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
        let b = self.rb.fetch(self.st, self.seg, off, total, self.limit)?;
        if b.len() < total {
            return Ok(Probe::Bad {
                reason: SkipReason::Truncated,
                next: None,
            });
        }
        if !frame::verify(&b[..total], &h) {
            return Ok(Probe::Bad {
                reason: SkipReason::Checksum,
                next: Some(off + total as u64),
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
    pub(crate) fn next_item(
        &mut self,
        off: u64,
        after_seq: Option<u64>,
    ) -> Result<Option<Item>, IoError> {
        let (reason, next) = match self.probe(off)? {
            Probe::End => return Ok(None),
            Probe::Record { seq, len } => return Ok(Some(Item::Record { off, seq, len })),
            Probe::Bad { reason, next } => (reason, next),
        };
        let fits = |seq: u64| !matches!(after_seq, Some(a) if seq <= a);
        if let Some(n) = next {
            if let Probe::Record { seq, .. } = self.probe(n)? {
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
            if let Probe::Record { seq, .. } = self.probe(o)? {
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
