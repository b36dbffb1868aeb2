//! The partition's side of `overflow: spill`: moving items between memory
//! and its disk spool without losing their order or their count.
//!
//! Each partition keeps two FIFOs: pending chunks in memory and records in
//! its spool. The two never interleave: the spool holds older items than
//! memory, or (once `tail` is set) every item newer than memory's. The
//! flusher always takes whichever front is older, so the sink sees one order
//! across memory, disk and restarts.

use crate::codec::SpillCodec;
use crate::observer::SpillReason;
use crate::sink::FlushReason;
use crate::weigh::Weigh;

use super::mark::Outcome;
use super::pending::{Batch, Chunk, Limits};
use super::spool::Pushed;
use super::{weigh, PartState};

/// What the end of close did with a partition's spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    /// Items the spool refused, counted dropped.
    pub(crate) lost: u64,
    /// Records in the spool not known to be durable: its final flush
    /// failed.
    pub(crate) not_durable: u64,
}

impl<T> PartState<T> {
    /// Whether the spool holds the partition's newest items (new ones must
    /// follow them there).
    pub(crate) fn spool_tail(&self) -> bool {
        self.spool.as_ref().is_some_and(|sp| sp.tail)
    }

    /// Whether this partition has a spool.
    pub(crate) fn has_spool(&self) -> bool {
        self.spool.is_some()
    }

    /// The interval timer's care of the spool, which owns no thread: retries
    /// removing a delivered batch whose removal failed, and syncs under
    /// `spool_sync: interval`. Returns whether a pending removal completed
    /// (the spool can be read again).
    pub(crate) fn sync_spool_if_due(&mut self) -> bool {
        let removed = self.retry_remove();
        if let Some(Err(e)) = self.spool.as_mut().map(|sp| sp.sync_if_due()) {
            self.note_spool_error("sync", &e);
        }
        removed
    }

    /// Whether delivered records wait for a failed removal to be retried
    /// (the spool's records behind them wait with them).
    pub(crate) fn spool_remove_pending(&self) -> bool {
        self.spool.as_ref().is_some_and(|sp| sp.remove_pending())
    }

    /// Retries a failed removal of delivered records. Returns whether one
    /// was pending and is now done.
    pub(crate) fn retry_remove(&mut self) -> bool {
        let Some(sp) = self.spool.as_mut().filter(|sp| sp.remove_pending()) else {
            return false;
        };
        match sp.remove_read() {
            Ok(()) => true,
            Err(e) => {
                self.note_spool_error("remove", &e);
                false
            }
        }
    }

    /// Books a group push: the items it took went to the spool for
    /// `reason`; its error, if any, is a spool error. Returns how many it
    /// took.
    fn book_push(&mut self, pushed: Pushed, reason: SpillReason) -> usize {
        self.note_spill(pushed.taken, pushed.bytes, reason);
        if let Some(e) = &pushed.error {
            self.note_spool_error("push", e);
        }
        pushed.taken
    }

    /// While the spool holds the tail, a new item follows it there (counted
    /// inserted). Gives the item back if it belongs in memory: no spool
    /// tail, or the spool refused it (then memory takes over the tail, which
    /// keeps the order, as everything in the spool is older).
    pub(crate) fn admit_to_spool(&mut self, item: T, codec: &SpillCodec<T>) -> Result<(), T> {
        self.push_tail(item, codec)?;
        self.counts.inserted += 1;
        self.check();
        Ok(())
    }

    /// Pushes `item` behind the spool's tail with the next sequence number.
    fn push_tail(&mut self, item: T, codec: &SpillCodec<T>) -> Result<(), T> {
        let Some(sp) = self.spool.as_mut().filter(|sp| sp.tail) else {
            return Err(item);
        };
        match sp.push(&item, self.pending.next_seq(), codec) {
            Ok(bytes) => {
                self.pending.skip_seq();
                self.note_spill(1, bytes, SpillReason::Overflow);
                Ok(())
            }
            Err(e) => {
                sp.tail = false;
                self.note_spool_error("push", &e);
                Err(item)
            }
        }
    }

    /// Moves a chunk's items to the spool, oldest first. Gives back the part
    /// that did not fit (the spool is full or failing), starting where the
    /// spool stopped.
    fn spill_chunk(&mut self, mut chunk: Chunk<T>, codec: &SpillCodec<T>) -> Result<(), Chunk<T>>
    where
        T: Weigh,
    {
        let Some(sp) = self.spool.as_mut() else {
            return Err(chunk);
        };
        let pushed = sp.push_all(&chunk.items, chunk.first_seq, codec);
        let n = self.book_push(pushed, SpillReason::Overflow);
        if n < chunk.items.len() {
            chunk.skip(n, weigh::<T>);
            return Err(chunk);
        }
        self.pending.recycle(chunk.items);
        Ok(())
    }

    /// `overflow: spill` on a full partition: moves every pending item to the
    /// spool, oldest first. Returns whether all of them went (then the spool
    /// holds the partition's tail); what did not fit stays in memory, in
    /// order, newer than the spool.
    pub(crate) fn spill_pending(&mut self, codec: &SpillCodec<T>) -> bool
    where
        T: Weigh,
    {
        if self.spool.is_none() {
            return false;
        }
        let mut failed = false;
        for chunk in self.pending.take_all() {
            if failed {
                self.pending.put_back(chunk);
            } else if let Err(rest) = self.spill_chunk(chunk, codec) {
                failed = true;
                self.pending.put_back(rest);
            }
        }
        if let Some(sp) = self.spool.as_mut() {
            sp.tail = !failed;
        }
        self.check();
        !failed
    }

    /// Drains the producer rings while the spool holds the tail: each item
    /// follows it to the spool, or to memory once the spool refuses one.
    /// Returns whether a chunk was sealed by size.
    pub(crate) fn drain_rings_to_spool(&mut self, codec: &SpillCodec<T>, limits: Limits) -> bool
    where
        T: Weigh,
    {
        let mut items = self.pending.take_spare();
        self.rings.pop_all(&mut items);
        // The popped items are counted inserted by their ring already.
        let mut sealed = false;
        for item in items.drain(..) {
            if let Err(item) = self.push_tail(item, codec) {
                let w = weigh(&item);
                sealed |= self.pending.append(item, w, limits);
            }
        }
        self.pending.recycle(items);
        self.check();
        sealed
    }

    /// Reads the spool's oldest records (up to `max`) as a batch. Every
    /// record read is in flight until the batch is settled, decodable or
    /// not.
    pub(crate) fn read_spool(&mut self, max: usize, codec: &SpillCodec<T>) -> Option<Batch<T>>
    where
        T: Weigh,
    {
        let sp = self.spool.as_mut()?;
        // A read error leaves the records in place; the next trigger tries
        // again.
        let (items, _corrupt) = match sp.read_batch(max, codec) {
            Ok(read) => read,
            Err(e) => {
                self.note_spool_error("read", &e);
                return None;
            }
        };
        let sp = self.spool.as_mut()?;
        let held = sp.reading;
        let first_seq = sp.first_seq;
        if held == 0 {
            return None;
        }
        self.in_flight += held;
        let bytes = items.iter().map(weigh::<T>).sum();
        self.in_flight_bytes += bytes;
        self.check();
        Some(Batch {
            chunk: Chunk::sealed(items, first_seq, bytes),
            reason: FlushReason::Replay,
            attempt: 0,
            from_spool: true,
            held,
        })
    }

    /// A batch failed `max_retries + 1` times under `overflow: spill`.
    /// Returns `None` when it is settled (spooled, or given up as far as the
    /// spool refused it); gives it back when it must keep being retried (at
    /// the capped backoff) to keep the order: a spooled batch stays at the
    /// head of its spool, and a batch from memory goes only to an empty
    /// spool (anything there is newer).
    ///
    /// While closing, the spool is parked instead: what it holds (and a
    /// failed batch from memory, appended even behind newer records, since
    /// keeping it beats keeping its place) is left for the next run, and
    /// counted as spooled for the waiting close.
    pub(crate) fn spill_batch(
        &mut self,
        batch: Batch<T>,
        codec: &SpillCodec<T>,
    ) -> Result<(), Batch<T>> {
        let closing = self.flow.closing;
        let Some(sp) = self.spool.as_mut() else {
            return Err(batch);
        };
        if batch.from_spool {
            if !closing {
                return Err(batch);
            }
            // Its records never left the spool.
            sp.reading = 0;
            self.in_flight -= batch.held;
            self.in_flight_bytes = self.in_flight_bytes.saturating_sub(batch.chunk.bytes);
            self.park_spool();
            self.check();
            return Ok(());
        }
        if !sp.is_empty() && !closing {
            return Err(batch);
        }
        let pushed = sp.push_all(&batch.chunk.items, batch.chunk.first_seq, codec);
        sp.tail = false; // memory holds everything newer
        let n = self.book_push(pushed, SpillReason::SinkFailed);
        let total = batch.len();
        self.in_flight -= total;
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(batch.chunk.bytes);
        if n < total {
            // The spool refused part of it (full or failing): that part is
            // given up, counted and reported.
            let lost = total - n;
            self.counts.dropped += lost as u64;
            let from = batch.chunk.first_seq + n as u64;
            self.resolve(from, lost as u64, Outcome::Dropped);
        }
        self.pending.recycle(batch.chunk.items);
        if closing {
            self.park_spool();
        }
        self.check();
        Ok(())
    }

    /// Stops reading the spool for the rest of this run and counts what it
    /// holds as spooled for the waiting marks (it is never delivered in this
    /// run, so nothing is counted twice).
    fn park_spool(&mut self) {
        let Some(sp) = self.spool.as_mut() else {
            return;
        };
        if sp.parked {
            return;
        }
        sp.parked = true;
        let (first, len) = (sp.first_seq, sp.spool.len());
        self.resolve(first, len, Outcome::Spooled);
    }

    /// At the end of close: whatever is still in memory and not with the
    /// sink (a batch waiting for its retry, batches requeued after an
    /// abandoned call, pending items) goes to the spool, oldest first, which
    /// is then synced and closed. Returns how many items the
    /// spool refused (counted dropped) and how many of its records are not
    /// known to be durable (its final flush failed).
    pub(crate) fn settle_spool(&mut self, codec: &SpillCodec<T>) -> Settled {
        if self.spool.is_none() {
            return Settled::default();
        }
        // Delivered records still in the spool would be sent again by the
        // next run (at least once); a last try to remove them.
        self.retry_remove();
        let mut lost = 0u64;
        // Requeued copies of abandoned calls wait only until a flusher takes
        // them: at close that means every flusher was stuck. Those read from
        // the spool stay there, their records still on disk.
        let (mut waiting, from_spool): (Vec<_>, Vec<_>) = std::mem::take(&mut self.late)
            .into_iter()
            .partition(|b| !b.from_spool);
        self.late = from_spool;
        if let Some(batch) = self.retry.take() {
            self.retry_due = false;
            self.flow.running = false;
            if batch.from_spool {
                // Its records never left the spool.
                self.in_flight_bytes = self.in_flight_bytes.saturating_sub(batch.chunk.bytes);
                if let Some(sp) = self.spool.as_mut() {
                    sp.reading = 0;
                }
                self.in_flight -= batch.held;
            } else {
                waiting.push(batch);
            }
        }
        waiting.sort_by_key(|b| b.chunk.first_seq);
        for batch in waiting {
            let Some(sp) = self.spool.as_mut() else { break };
            let n = batch.len();
            self.in_flight_bytes = self.in_flight_bytes.saturating_sub(batch.chunk.bytes);
            let pushed = sp.push_all(&batch.chunk.items, batch.chunk.first_seq, codec);
            self.in_flight -= n;
            lost += (n - self.book_push(pushed, SpillReason::Close)) as u64;
        }
        for chunk in self.pending.take_all() {
            let Some(sp) = self.spool.as_mut() else { break };
            let pushed = sp.push_all(&chunk.items, chunk.first_seq, codec);
            lost += (chunk.items.len() - self.book_push(pushed, SpillReason::Close)) as u64;
        }
        let mut not_durable = 0;
        if let Some((n, failed)) = self.spool.as_mut().map(|sp| sp.finish()) {
            not_durable = n;
            if let Some((operation, e)) = failed {
                self.note_spool_error(operation, &e);
            }
        }
        self.counts.dropped += lost;
        self.check();
        Settled { lost, not_durable }
    }
}
