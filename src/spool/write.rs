//! Putting records in and making them durable: appending frames to the
//! active segment, rolling to a new one, group syncs, the read position, and
//! what happens when a write or an fsync fails.

use std::io;
use std::ops::Bound::{Excluded, Unbounded};
use std::time::Instant;

use super::config::SyncMode;
use super::error::{IoError, SpoolError};
use super::frame;
use super::position::{Position, Seal, MAX_SEALS};
use super::segment::{Pos, Segment, MAX_ID};
use super::{Entry, Spool};

impl Spool {
    /// Takes one record; `sync_now` makes it durable before returning.
    pub(super) fn push_one(&mut self, record: Vec<u8>, sync_now: bool) -> Result<(), SpoolError> {
        if record.len() > self.config.max_record {
            return Err(SpoolError::TooLarge {
                record,
                max_record: self.config.max_record,
            });
        }
        if let Err(error) = self.maybe_sync() {
            return Err(SpoolError::NotStored { record, error });
        }
        if self.next_seq > frame::MAX_SEQ {
            let error = IoError::new(
                "push",
                "spool",
                io::Error::other("sequence numbers are exhausted"),
            );
            return Err(SpoolError::NotStored { record, error });
        }
        let need = frame::frame_len(record.len());
        if self.disk_bytes + self.pending_bytes + need > self.config.max_bytes {
            // Consumed segments count until they are deleted; delete now.
            let _ = self.reclaim(true);
            if self.disk_bytes + self.pending_bytes + need > self.config.max_bytes {
                return Err(SpoolError::Full(record));
            }
        }
        self.tail_bytes += record.len();
        self.pending_bytes += need;
        self.tail.push_back(Entry {
            seq: self.next_seq,
            data: record,
            at: None,
        });
        self.next_seq += 1;
        self.live += 1;
        let result = if sync_now {
            self.sync_all(false)
        } else if self.pending_bytes > self.config.memory_bytes as u64 {
            self.write_pending()
        } else {
            Ok(())
        };
        match result {
            Ok(()) => {
                self.trim_tail();
                Ok(())
            }
            Err(error) => {
                let record = self.retract_newest();
                self.trim_tail();
                Err(SpoolError::NotStored { record, error })
            }
        }
    }

    /// Undoes the push of the newest record after its write or sync failed.
    /// Its sequence number is not reused: its frame may be on disk.
    fn retract_newest(&mut self) -> Vec<u8> {
        let Some(e) = self.tail.pop_back() else {
            return Vec::new();
        };
        self.tail_bytes -= e.data.len();
        self.live -= 1;
        match e.at {
            Some(at) => {
                self.tail_written -= 1;
                self.cut_at(at);
            }
            None => self.pending_bytes -= frame::frame_len(e.data.len()),
        }
        e.data
    }

    /// Drops written records from the tail window beyond `memory_bytes`; they
    /// stay on disk and are read back when their turn comes.
    fn trim_tail(&mut self) {
        while self.tail_bytes > self.config.memory_bytes && self.tail_written > 0 {
            if let Some(e) = self.tail.pop_front() {
                self.tail_bytes -= e.data.len();
                self.tail_written -= 1;
            }
        }
    }

    /// For [`SyncMode::Interval`]: a full sync if the interval has passed and
    /// something is not durable yet. Returns whether it synced.
    pub(super) fn maybe_sync(&mut self) -> Result<bool, IoError> {
        if self.config.sync != SyncMode::Interval {
            return Ok(false);
        }
        if self.last_sync.elapsed() < self.config.sync_interval || !self.has_unsynced() {
            return Ok(false);
        }
        self.sync_all(true)?;
        Ok(true)
    }

    fn has_unsynced(&self) -> bool {
        self.tail_written < self.tail.len()
            || self.dir_dirty
            || self.position_changed()
            || self.segments.values().any(|s| s.needs_sync())
            || self.seals_changed()
    }

    /// Writes everything pending, syncs every segment that needs it, then
    /// (with `position`) saves the read position, then syncs the directory.
    /// Consumed segments are deleted here too, once the position that
    /// consumed them is durable.
    pub(super) fn sync_all(&mut self, position: bool) -> Result<(), IoError> {
        self.write_pending()?;
        self.sync_segments()?;
        if position {
            self.save_position()?;
        }
        self.reclaim(false)?;
        self.sync_dir_if_needed()?;
        self.last_sync = Instant::now();
        Ok(())
    }

    fn sync_dir_if_needed(&mut self) -> Result<(), IoError> {
        if self.dir_dirty {
            self.storage.sync_dir()?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Deletes segments nobody needs any more, in the order of durability:
    /// the read position that consumed them is saved and the directory
    /// synced first, so after a crash the position and the files agree.
    pub(super) fn reclaim(&mut self, pressed: bool) -> Result<(), IoError> {
        let dead = self.dead_segments(pressed);
        if dead.is_empty() {
            return Ok(());
        }
        self.save_position()?;
        self.sync_dir_if_needed()?;
        self.delete_segments(dead)
    }

    fn current_position(&self) -> Position {
        Position {
            seq: self.consumed_below,
            at: self.oldest_on_disk().unwrap_or_else(|| self.disk_end()),
            seals: self.seals().collect(),
        }
    }

    /// The seals to save: segments open may trust without reading them.
    fn seals(&self) -> impl Iterator<Item = Seal> + '_ {
        self.segments
            .iter()
            .filter_map(|(&id, s)| s.seal(id))
            .take(MAX_SEALS)
    }

    /// Whether records were consumed since the position was last saved.
    /// Only the sequence number carries meaning; the place is a cross-check.
    fn position_changed(&self) -> bool {
        self.saved.as_ref().map_or(0, |p| p.seq) != self.consumed_below
    }

    /// Whether a segment became trustworthy since the position was last
    /// saved. (Seals of segments since deleted or cut need no save: open
    /// checks each seal against its file.)
    fn seals_changed(&self) -> bool {
        let saved = self.saved.as_ref().map_or(&[][..], |p| &p.seals[..]);
        self.seals()
            .any(|s| saved.binary_search_by_key(&s.id, |x| x.id).is_err())
    }

    fn save_position(&mut self) -> Result<(), IoError> {
        if !self.position_changed() && !self.seals_changed() {
            return Ok(());
        }
        let p = self.current_position();
        self.storage.store_position(&p.encode())?;
        self.saved = Some(p);
        self.dir_dirty = true;
        Ok(())
    }

    /// The id for a new segment: never above [`MAX_ID`], so `id + 1` cannot
    /// overflow.
    fn new_segment_id(&self) -> Result<u64, IoError> {
        if self.next_segment > MAX_ID {
            return Err(IoError::new(
                "create",
                format!("segment {:016x}", self.next_segment),
                io::Error::other("segment ids are exhausted"),
            ));
        }
        Ok(self.next_segment)
    }

    /// The segment to append to, creating one if the last is full or retired.
    fn active_for_append(&mut self) -> Result<u64, IoError> {
        if let Some((&id, s)) = self.segments.last_key_value() {
            if !s.sealed && !s.poisoned {
                return Ok(id);
            }
        }
        let id = self.new_segment_id()?;
        self.storage.create(id)?;
        self.next_segment = id + 1;
        self.segments.insert(id, Segment::new_empty());
        self.dir_dirty = true;
        self.cursor = self.norm(self.cursor);
        Ok(id)
    }

    /// Writes the records of the tail that are not on disk yet, in order,
    /// rolling to new segments as they fill.
    pub(super) fn write_pending(&mut self) -> Result<(), IoError> {
        while self.tail_written < self.tail.len() {
            let id = self.active_for_append()?;
            let start = self.segments.get(&id).map_or(0, |s| s.end);
            let mut buf = std::mem::take(&mut self.scratch);
            buf.clear();
            let mut count = 0;
            for e in self.tail.iter().skip(self.tail_written) {
                let len = frame::frame_len(e.data.len());
                let fits = start + buf.len() as u64 + len <= self.config.segment_bytes;
                // An oversized record gets an empty segment to itself.
                let alone = start == 0 && buf.is_empty();
                if !(fits || alone) {
                    break;
                }
                frame::encode(&mut buf, e.seq, &e.data);
                count += 1;
            }
            if count == 0 {
                self.scratch = buf;
                self.roll(id)?;
                continue;
            }
            let written = self.storage.write_at(id, start, &buf);
            let len = buf.len() as u64;
            self.scratch = buf;
            if let Err(e) = written {
                // Put the file back as we know it; if even that fails, append
                // no more to it (what follows our end is not ours).
                let cut = self.storage.truncate(id, start);
                if let Some(s) = self.segments.get_mut(&id) {
                    if cut.is_err() {
                        s.sealed = true;
                    }
                }
                self.rb.invalidate();
                return Err(e);
            }
            let mut off = start;
            let mut seg = self.segments.get_mut(&id);
            for e in self.tail.iter_mut().skip(self.tail_written).take(count) {
                e.at = Some(Pos { seg: id, off });
                if let Some(s) = seg.as_deref_mut() {
                    s.note_frame(off, e.seq);
                }
                off += frame::frame_len(e.data.len());
            }
            self.tail_written += count;
            self.pending_bytes -= len;
            if let Some(s) = self.segments.get_mut(&id) {
                s.end = start + len;
                if s.end > s.size {
                    self.disk_bytes += s.end - s.size;
                    s.size = s.end;
                }
            }
        }
        Ok(())
    }

    /// Closes segment `id` for appends, syncing it first unless the mode is
    /// [`SyncMode::Never`] (so at most one segment waits for a sync, and a
    /// failed sync can be repaired by rewriting into the next segment).
    fn roll(&mut self, id: u64) -> Result<(), IoError> {
        if self.config.sync != SyncMode::Never
            && self.segments.get(&id).is_some_and(|s| s.needs_sync())
        {
            self.sync_one(id)?;
        }
        if let Some(s) = self.segments.get_mut(&id) {
            s.sealed = true;
        }
        Ok(())
    }

    /// Syncs every segment that needs it, oldest first; returns the first error.
    fn sync_segments(&mut self) -> Result<(), IoError> {
        let ids: Vec<u64> = self
            .segments
            .iter()
            .filter(|(_, s)| s.needs_sync())
            .map(|(&id, _)| id)
            .collect();
        let mut first_err = None;
        for id in ids {
            if let Err(e) = self.sync_one(id) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn sync_one(&mut self, id: u64) -> Result<(), IoError> {
        let Some(s) = self.segments.get(&id) else {
            return Ok(());
        };
        if !s.poisoned {
            match self.storage.sync(id) {
                Ok(()) => {
                    if let Some(s) = self.segments.get_mut(&id) {
                        s.synced = s.end;
                        s.truncated = false;
                    }
                    return Ok(());
                }
                Err(e) => {
                    if let Some(s) = self.segments.get_mut(&id) {
                        s.poisoned = true;
                        s.sealed = true;
                    }
                    return self.resolve_poisoned(id, Some(e));
                }
            }
        }
        self.resolve_poisoned(id, None)
    }

    /// Segment `id` failed an fsync: what it holds after its last good sync
    /// may not be on disk. Unconsumed records there that are still in memory
    /// are written to a new segment and synced; if some are not in memory, or
    /// later segments already hold records, the error goes to the caller.
    fn resolve_poisoned(&mut self, id: u64, cause: Option<IoError>) -> Result<(), IoError> {
        let Some(s) = self.segments.get_mut(&id) else {
            return Ok(());
        };
        s.truncated = false;
        let from = Pos {
            seg: id,
            off: s.synced,
        };
        let to = Pos {
            seg: id,
            off: s.end,
        };
        if from >= to {
            return Ok(());
        }
        let doubtful = |p: &Option<Pos>| p.is_some_and(|p| p >= from && p < to);
        let in_head = self.head.iter().filter(|e| doubtful(&e.at)).count();
        let in_tail = self
            .tail
            .iter()
            .take(self.tail_written)
            .filter(|e| doubtful(&e.at))
            .count();
        let cursor = self.norm(self.cursor);
        let uncached_lo = cursor.max(from);
        let uncached_hi = self.unread_limit().min(to);
        let fail = |why: &str, cause: Option<IoError>| {
            cause.unwrap_or_else(|| {
                IoError::new(
                    "fsync",
                    format!("segment {id:016x}"),
                    io::Error::other(why.to_owned()),
                )
            })
        };
        if uncached_lo < uncached_hi {
            return Err(fail(
                "records written after the last good sync are no longer in memory",
                cause,
            ));
        }
        if in_head == 0 && in_tail == 0 {
            // Nothing unconsumed was there: forget those bytes.
            if let Some(s) = self.segments.get_mut(&id) {
                s.end = s.synced;
                s.meta = None;
            }
            if cursor > from {
                self.cursor = self.norm(from);
            }
            self.rb.invalidate();
            return Ok(());
        }
        if self
            .segments
            .range((Excluded(id), Unbounded))
            .any(|(_, s)| s.end > 0)
        {
            return Err(fail(
                "later segments already hold records, so they cannot be rewritten in order",
                cause,
            ));
        }
        // Rewrite, oldest first: head entries, then written tail entries, into
        // a segment that appears complete and synced or not at all.
        let new_id = self.new_segment_id()?;
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let tw = self.tail_written;
        let mut head_end = 0;
        for e in self.head.iter().filter(|e| doubtful(&e.at)) {
            frame::encode(&mut buf, e.seq, &e.data);
            head_end = buf.len() as u64;
        }
        for e in self.tail.iter().take(tw).filter(|e| doubtful(&e.at)) {
            frame::encode(&mut buf, e.seq, &e.data);
        }
        let len = buf.len() as u64;
        let created = self.storage.create_with(new_id, &buf);
        self.scratch = buf;
        created?;
        self.next_segment = new_id + 1;
        self.segments.insert(new_id, Segment::new_empty());
        self.dir_dirty = true;
        let mut off = 0;
        for e in self
            .head
            .iter_mut()
            .chain(self.tail.iter_mut().take(tw))
            .filter(|e| doubtful(&e.at))
        {
            e.at = Some(Pos { seg: new_id, off });
            off += frame::frame_len(e.data.len());
        }
        if let Some(s) = self.segments.get_mut(&id) {
            s.end = s.synced;
            s.meta = None;
        }
        if let Some(s) = self.segments.get_mut(&new_id) {
            s.end = len;
            s.synced = len;
            s.size = len;
            s.meta = None;
        }
        self.disk_bytes += len;
        if cursor >= from {
            self.cursor = Pos {
                seg: new_id,
                off: head_end,
            };
        }
        self.rb.invalidate();
        Ok(())
    }
}
