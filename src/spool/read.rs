//! Taking records out: the read-ahead window at the old end, the newest
//! records at the other, and deleting segments nobody needs any more.

use std::collections::VecDeque;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use super::error::IoError;
use super::frame;
use super::report::{SkipReason, Skipped};
use super::scan::{Item, Scan};
use super::segment::Pos;
use super::{Entry, Spool};

impl Spool {
    /// Where the log ends: the end of the last segment, or where the next
    /// segment will start.
    pub(super) fn disk_end(&self) -> Pos {
        match self.segments.last_key_value() {
            Some((&seg, s)) => Pos { seg, off: s.end },
            None => Pos {
                seg: self.next_segment,
                off: 0,
            },
        }
    }

    /// `p` moved past segment ends (and vanished segments) to the next place a
    /// record can start, or to the end of the log.
    pub(super) fn norm(&self, mut p: Pos) -> Pos {
        loop {
            match self.segments.get(&p.seg) {
                Some(s) if p.off < s.end => return p,
                Some(s) => match self.segments.range((Excluded(p.seg), Unbounded)).next() {
                    Some((&next, _)) => p = Pos { seg: next, off: 0 },
                    None => {
                        return Pos {
                            seg: p.seg,
                            off: s.end,
                        }
                    }
                },
                None => match self.segments.range(p.seg..).next() {
                    Some((&next, _)) => p = Pos { seg: next, off: 0 },
                    None => return self.disk_end(),
                },
            }
        }
    }

    /// Where reading ahead from disk must stop: the first record that is
    /// already in memory at the tail, or the end of the log.
    pub(super) fn unread_limit(&self) -> Pos {
        if self.tail_written > 0 {
            if let Some(Entry { at: Some(p), .. }) = self.tail.front() {
                return *p;
            }
        }
        self.disk_end()
    }

    /// Whether there are records on disk that are in neither memory window.
    fn has_uncached(&self) -> bool {
        self.norm(self.cursor) < self.unread_limit()
    }

    /// The next record on disk from `*pos`, stopping before `limit`; moves
    /// `*pos` past it. Known-bad ranges are stepped over; new damage is
    /// remembered and reported once.
    pub(super) fn read_next(
        &mut self,
        pos: &mut Pos,
        limit: Pos,
        after_seq: u64,
    ) -> Result<Option<Entry>, IoError> {
        loop {
            *pos = self.norm(*pos);
            if *pos >= limit {
                return Ok(None);
            }
            let Some(seg) = self.segments.get(&pos.seg) else {
                return Ok(None);
            };
            let seg_end = seg.end;
            if let Some(end) = seg.skip_at(pos.off) {
                pos.off = end;
                continue;
            }
            let mut scan = Scan {
                st: &mut *self.storage,
                rb: &mut self.rb,
                seg: pos.seg,
                limit: seg_end,
                max_record: self.config.max_record,
            };
            match scan.next_item(pos.off, Some(after_seq))? {
                None => pos.off = seg_end,
                Some(Item::Record { off, seq, len }) if seq > after_seq => {
                    let data = scan.payload(off, len)?.to_vec();
                    let at = Pos { seg: pos.seg, off };
                    pos.off = off + frame::frame_len(len as usize);
                    return Ok(Some(Entry {
                        seq,
                        data,
                        at: Some(at),
                    }));
                }
                Some(Item::Record { off, seq, len }) => {
                    let end = off + frame::frame_len(len as usize);
                    self.note_damage(pos.seg, off, end, SkipReason::Duplicate { seq });
                    pos.off = end;
                }
                Some(Item::Junk { off, end, reason }) => {
                    self.note_damage(pos.seg, off, end, reason);
                    pos.off = end;
                }
            }
        }
    }

    fn note_damage(&mut self, seg: u64, off: u64, end: u64, reason: SkipReason) {
        if let Some(s) = self.segments.get_mut(&seg) {
            s.add_skip(off, end);
            s.meta = None;
        }
        self.report.add_skip(Skipped {
            segment: seg,
            offset: off,
            bytes: end - off,
            reason,
        });
    }

    /// Reads ahead from disk into the head window (at least one record if
    /// there is one, then up to `memory_bytes`).
    fn refill_head(&mut self) -> Result<(), IoError> {
        let limit = self.unread_limit();
        while self.head.is_empty() || self.head_bytes < self.config.memory_bytes {
            let mut pos = self.cursor;
            let next = self.read_next(&mut pos, limit, self.read_seq)?;
            self.cursor = self.norm(pos);
            let Some(e) = next else { break };
            self.read_seq = e.seq;
            self.head_bytes += e.data.len();
            self.head.push_back(e);
        }
        Ok(())
    }

    pub(super) fn fill_head_if_empty(&mut self) -> Result<(), IoError> {
        if self.head.is_empty() && self.has_uncached() {
            self.refill_head()?;
        }
        Ok(())
    }

    /// Removes the oldest record.
    pub(super) fn take_oldest(&mut self) -> Result<Option<Entry>, IoError> {
        if self.live == 0 {
            return Ok(None);
        }
        self.fill_head_if_empty()?;
        let e = if let Some(e) = self.head.pop_front() {
            self.head_bytes -= e.data.len();
            e
        } else if let Some(e) = self.tail.pop_front() {
            self.tail_bytes -= e.data.len();
            match e.at {
                Some(at) => {
                    // The read-ahead stopped here, so this frame is next on disk.
                    self.tail_written -= 1;
                    self.cursor = self.norm(Pos {
                        seg: at.seg,
                        off: at.off + frame::frame_len(e.data.len()),
                    });
                }
                None => self.pending_bytes -= frame::frame_len(e.data.len()),
            }
            self.read_seq = e.seq;
            e
        } else {
            // Everything left was lost to damage found while reading.
            self.live = 0;
            return Ok(None);
        };
        self.live -= 1;
        // Sequence numbers are at most MAX_SEQ (frames above it are damage).
        self.consumed_below = e.seq.saturating_add(1);
        Ok(Some(e))
    }

    /// Loads the newest records on disk into the tail window (which is empty),
    /// from the newest segment that holds any (some may hold only damage).
    fn load_tail(&mut self) -> Result<(), IoError> {
        let cursor = self.norm(self.cursor);
        let candidates: Vec<u64> = self
            .segments
            .range(cursor.seg..)
            .rev()
            .filter(|(&id, s)| s.end > if id == cursor.seg { cursor.off } else { 0 })
            .map(|(&id, _)| id)
            .collect();
        for seg in candidates {
            let mut pos = if seg == cursor.seg {
                cursor
            } else {
                Pos { seg, off: 0 }
            };
            let limit = Pos {
                seg,
                off: self.segments.get(&seg).map_or(0, |s| s.end),
            };
            let mut bytes = 0;
            let mut after = self.read_seq;
            let mut loaded = std::collections::VecDeque::new();
            while let Some(e) = self.read_next(&mut pos, limit, after)? {
                after = e.seq;
                bytes += e.data.len();
                loaded.push_back(e);
                while bytes > self.config.memory_bytes && loaded.len() > 1 {
                    if let Some(old) = loaded.pop_front() {
                        bytes -= old.data.len();
                    }
                }
            }
            if !loaded.is_empty() {
                self.tail_written = loaded.len();
                self.tail_bytes = bytes;
                self.tail = loaded;
                return Ok(());
            }
        }
        Ok(())
    }

    pub(super) fn fill_tail_if_empty(&mut self) -> Result<(), IoError> {
        if self.tail.is_empty() && self.has_uncached() {
            self.load_tail()?;
        }
        Ok(())
    }

    /// Removes the newest record.
    pub(super) fn take_newest(&mut self) -> Result<Option<Entry>, IoError> {
        if self.live == 0 {
            return Ok(None);
        }
        self.fill_tail_if_empty()?;
        let e = if let Some(e) = self.tail.pop_back() {
            self.tail_bytes -= e.data.len();
            match e.at {
                Some(at) => {
                    self.tail_written -= 1;
                    self.cut_at(at);
                }
                None => self.pending_bytes -= frame::frame_len(e.data.len()),
            }
            e
        } else if let Some(e) = self.head.pop_back() {
            self.head_bytes -= e.data.len();
            if let Some(at) = e.at {
                self.cut_at(at);
                self.cursor = self.norm(at);
            }
            // New frames after the cut have higher sequence numbers.
            self.read_seq = e.seq.saturating_sub(1);
            e
        } else {
            // Everything left was lost to damage found while reading.
            self.live = 0;
            return Ok(None);
        };
        self.live -= 1;
        Ok(Some(e))
    }

    /// Ends the log at `at` (the start of its newest frame). Sequence numbers
    /// are not reused, so a cut that a crash undoes only brings back a record
    /// that was pushed (at-least-once). If the file cannot be cut, it takes no
    /// more appends.
    pub(super) fn cut_at(&mut self, at: Pos) {
        let Some(seg) = self.segments.get_mut(&at.seg) else {
            return;
        };
        if !seg.poisoned {
            match self.storage.truncate(at.seg, at.off) {
                Ok(()) => {
                    self.disk_bytes -= seg.size.saturating_sub(at.off);
                    seg.size = at.off;
                    seg.truncated = true;
                }
                Err(_) => seg.sealed = true,
            }
        }
        seg.end = at.off;
        seg.synced = seg.synced.min(at.off);
        seg.meta = None;
        seg.skips.retain(|r| r.0 < at.off);
        self.rb.invalidate();
    }

    /// Copies of the oldest `n` records, without taking them.
    pub(super) fn read_oldest(&mut self, n: usize) -> Result<Vec<Vec<u8>>, IoError> {
        let mut out: Vec<Vec<u8>> = self.head.iter().take(n).map(|e| e.data.clone()).collect();
        if out.len() < n {
            let limit = self.unread_limit();
            let mut pos = self.cursor;
            let mut after = self.read_seq;
            while out.len() < n {
                let Some(e) = self.read_next(&mut pos, limit, after)? else {
                    break;
                };
                after = e.seq;
                out.push(e.data);
            }
        }
        let more = n - out.len();
        out.extend(self.tail.iter().take(more).map(|e| e.data.clone()));
        Ok(out)
    }

    /// Copies of the newest `n` records, newest first, without taking them:
    /// the tail window, then the records on disk in neither window (a
    /// segment at a time, newest segment first, keeping at most the `n`
    /// still wanted), then the head window.
    pub(super) fn read_newest_n(&mut self, n: usize) -> Result<Vec<Vec<u8>>, IoError> {
        let from_tail: Vec<&Entry> = self.tail.iter().rev().take(n).collect();
        let mut oldest = from_tail.last().map(|e| e.seq);
        let mut out: Vec<Vec<u8>> = from_tail.iter().map(|e| e.data.clone()).collect();
        let cursor = self.norm(self.cursor);
        let limit = self.unread_limit();
        if out.len() < n && cursor < limit {
            let ids: Vec<u64> = self
                .segments
                .range(cursor.seg..=limit.seg)
                .rev()
                .map(|(&id, _)| id)
                .collect();
            for seg in ids {
                let need = n - out.len();
                if need == 0 {
                    break;
                }
                let mut pos = if seg == cursor.seg {
                    cursor
                } else {
                    Pos { seg, off: 0 }
                };
                let seg_limit = if seg == limit.seg {
                    limit
                } else {
                    Pos {
                        seg,
                        off: self.segments.get(&seg).map_or(0, |s| s.end),
                    }
                };
                let mut after = self.read_seq;
                let mut kept = VecDeque::new();
                while let Some(e) = self.read_next(&mut pos, seg_limit, after)? {
                    // A copy of a record already taken from a newer place.
                    if oldest.is_some_and(|o| e.seq >= o) {
                        break;
                    }
                    after = e.seq;
                    kept.push_back(e);
                    if kept.len() > need {
                        kept.pop_front();
                    }
                }
                if let Some(e) = kept.front() {
                    oldest = Some(e.seq);
                }
                out.extend(kept.into_iter().rev().map(|e| e.data));
            }
        }
        let more = n - out.len();
        out.extend(self.head.iter().rev().take(more).map(|e| e.data.clone()));
        Ok(out)
    }

    /// Where the oldest unconsumed record on disk is, if any is.
    pub(super) fn oldest_on_disk(&self) -> Option<Pos> {
        if let Some(e) = self.head.front() {
            return e.at;
        }
        let c = self.norm(self.cursor);
        (c < self.disk_end()).then_some(c)
    }

    /// Segments that hold no unconsumed record and will not be appended to:
    /// everything before the oldest record on disk, and the last segment too
    /// when it holds nothing and is full or retired, or (with `pressed`, to
    /// make room under `max_bytes`) in any case.
    pub(super) fn dead_segments(&self, pressed: bool) -> Vec<u64> {
        let dead_to: Bound<u64> = match self.oldest_on_disk() {
            Some(p) => Excluded(p.seg),
            None => match self.segments.last_key_value() {
                Some((&id, s)) => {
                    let done = s.sealed || s.poisoned || s.end >= self.config.segment_bytes;
                    if done || pressed {
                        Included(id)
                    } else {
                        Excluded(id)
                    }
                }
                None => return Vec::new(),
            },
        };
        self.segments
            .range((Unbounded, dead_to))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Deletes `dead` segments. Callers have made the read position that
    /// consumed them durable first (data, then position, then directory).
    pub(super) fn delete_segments(&mut self, dead: Vec<u64>) -> Result<(), IoError> {
        for id in dead {
            self.storage.remove(id)?;
            if let Some(s) = self.segments.remove(&id) {
                self.disk_bytes -= s.size;
            }
            self.dir_dirty = true;
            self.rb.invalidate();
        }
        self.cursor = self.norm(self.cursor);
        Ok(())
    }
}
