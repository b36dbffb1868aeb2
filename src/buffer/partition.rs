//! One partition's state, guarded by its mutex: pending items in chunks,
//! what is in flight, the producer rings it drains, and its counters.
//!
//! Pending items live in a queue of chunks. Every chunk but the last is
//! sealed (full by `max_size`/`max_bytes`, or sealed by a time, manual or
//! close trigger); a flush takes the front sealed chunk whole, so the hand-off
//! to the flusher is O(1) under the lock and batches never exceed
//! `max_size` (+ jitter) items.
//!
//! Every item gets a sequence number when it enters the pending queue, and
//! items are resolved (delivered, dropped, dumped) in contiguous ranges. A
//! `sync_flush` or `close` leaves a [`Mark`] that counts down the items that
//! were buffered at its call, so it can report exactly what became of them.

use std::collections::VecDeque;
use std::time::Instant;

use crate::ring::spsc;
use crate::sink::FlushReason;
use crate::stats::{Counts, LatencyHistogram};
use crate::sync::rc::Arc;

use super::jitter::Jitter;
use super::producer::RingShared;
use super::spill::PartSpool;

pub(crate) struct Chunk<T> {
    pub(crate) items: Vec<T>,
    pub(crate) bytes: u64,
    /// Sequence number of `items[0]`; the rest follow contiguously.
    pub(crate) first_seq: u64,
    pub(crate) sealed: Option<FlushReason>,
    limit: usize,
}

/// A batch handed to the sink, or waiting for its retry.
pub(crate) struct Batch<T> {
    pub(crate) chunk: Chunk<T>,
    pub(crate) reason: FlushReason,
    pub(crate) attempt: u32,
    /// Read from the spool (its records are removed once delivered).
    pub(crate) from_spool: bool,
}

impl<T> Chunk<T> {
    /// A sealed chunk holding `items`, for batches read back from the spool.
    pub(crate) fn sealed(items: Vec<T>, first_seq: u64, bytes: u64) -> Self {
        let limit = items.len();
        Self {
            items,
            bytes,
            first_seq,
            sealed: Some(FlushReason::Replay),
            limit,
        }
    }
}

/// Where the next batch of a partition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The failed batch whose backoff has run out.
    Retry,
    /// The front chunk in memory.
    Memory,
    /// The oldest records of the spool.
    Spool,
}

/// What became of resolved items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    Dropped,
    Dumped,
    /// Left in the spool for the next run (the sink failed while closing).
    Spooled,
}

/// What a `sync_flush` or `close` waits for in one partition.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub(crate) id: u64,
    /// Items with a sequence number below this were buffered at the call.
    target: u64,
    /// How many of them are not resolved yet.
    pub(crate) remaining: u64,
    pub(crate) delivered: u64,
    pub(crate) dropped: u64,
    pub(crate) dumped: u64,
    pub(crate) spooled: u64,
}

/// A producer handle's ring, as the partition sees it.
pub(crate) struct RingSlot<T> {
    pub(crate) id: u64,
    pub(crate) consumer: spsc::Consumer<T>,
    pub(crate) shared: Arc<RingShared>,
    /// Items moved into the pending queue, ever.
    pub(crate) drained: u64,
    /// Items evicted by `drop_oldest` straight from the ring, ever.
    pub(crate) evicted: u64,
}

impl<T> RingSlot<T> {
    /// Items in the ring now, from the counts (an item is counted before it
    /// is queued, so this never goes negative).
    fn queued(&self, pushed: u64) -> u64 {
        pushed.saturating_sub(self.drained + self.evicted)
    }
}

pub(crate) struct PartState<T> {
    pub(crate) chunks: VecDeque<Chunk<T>>,
    pub(crate) pending: usize,
    pub(crate) pending_bytes: u64,
    /// Items handed to the sink now, or waiting for a retry.
    pub(crate) in_flight: usize,
    /// Owned by the flush machinery: queued, running, or a batch in backoff.
    /// At most one flush per partition, so the sink sees items in order.
    pub(crate) running: bool,
    pub(crate) retry: Option<Batch<T>>,
    pub(crate) retry_due: bool,
    pub(crate) retry_gen: u64,
    pub(crate) rings: Vec<RingSlot<T>>,
    pub(crate) next_seq: u64,
    pub(crate) marks: Vec<Mark>,
    next_mark: u64,
    /// When the flush interval next runs out (restarted after each flush).
    pub(crate) next_deadline: Instant,
    /// The deadline of the one interval entry this partition has in the
    /// engine's timer heap, if any.
    pub(crate) armed: Option<Instant>,
    /// Threads waiting on the partition's condvar (inserters, sync waiters).
    pub(crate) waiters: usize,
    pub(crate) closing: bool,
    /// `close` has moved every ring's items into the pending queue; a producer
    /// that pushed after that takes its item back.
    pub(crate) final_drained: bool,
    /// Counters of the mutex path; ring counts are added in [`Self::counts`].
    pub(crate) counts: Counts,
    pub(crate) latency: LatencyHistogram,
    spare: Vec<Vec<T>>,
    pub(crate) jitter: Jitter,
    /// The partition's disk spool, with `overflow: spill`.
    pub(crate) spool: Option<PartSpool>,
}

/// How many emptied batch vectors a partition keeps for reuse.
const SPARE_VECS: usize = 4;

impl<T> PartState<T> {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            chunks: VecDeque::new(),
            pending: 0,
            pending_bytes: 0,
            in_flight: 0,
            running: false,
            retry: None,
            retry_due: false,
            retry_gen: 0,
            rings: Vec::new(),
            next_seq: 0,
            marks: Vec::new(),
            next_mark: 0,
            next_deadline: now,
            armed: None,
            waiters: 0,
            closing: false,
            final_drained: false,
            counts: Counts::default(),
            latency: LatencyHistogram::default(),
            spare: Vec::new(),
            jitter: Jitter::new(),
            spool: None,
        }
    }

    /// Items this partition holds in memory, in flight included: what
    /// `capacity` bounds.
    pub(crate) fn held(&self) -> usize {
        self.pending + self.in_flight
    }

    /// Makes sure the back chunk is open, starting one if needed. On every
    /// item's path, hence inline, with the once-a-batch part out of line.
    #[inline]
    fn ensure_open(&mut self, max_size: usize, jitter: usize) {
        if !matches!(self.chunks.back(), Some(c) if c.sealed.is_none()) {
            self.start_chunk(max_size, jitter);
        }
    }

    /// Starts a chunk with a fresh size jitter.
    #[cold]
    fn start_chunk(&mut self, max_size: usize, jitter: usize) {
        let limit = max_size.saturating_add(self.jitter.upto(jitter as u64) as usize);
        let mut items = self.spare.pop().unwrap_or_default();
        items.reserve(limit.min(64 * 1024));
        self.chunks.push_back(Chunk {
            items,
            bytes: 0,
            first_seq: self.next_seq,
            sealed: None,
            limit,
        });
    }

    /// Appends one item to the open chunk (starting one if needed). Returns
    /// true when this item sealed the chunk by size or bytes: the insert
    /// that reaches the threshold fires the flush.
    #[inline]
    pub(crate) fn append(
        &mut self,
        item: T,
        weight: u64,
        max_size: usize,
        jitter: usize,
        max_bytes: u64,
    ) -> bool {
        self.ensure_open(max_size, jitter);
        let Some(chunk) = self.chunks.back_mut() else {
            unreachable!("a chunk was just ensured")
        };
        chunk.items.push(item);
        chunk.bytes += weight;
        self.pending += 1;
        self.pending_bytes += weight;
        self.next_seq += 1;
        if chunk.items.len() >= chunk.limit || (max_bytes > 0 && chunk.bytes >= max_bytes) {
            chunk.sealed = Some(FlushReason::Size);
            return true;
        }
        false
    }

    /// Seals the open chunk (if it has items) with `reason`, so the next
    /// flush takes it although it is not full.
    pub(crate) fn seal_open(&mut self, reason: FlushReason) {
        if let Some(c) = self.chunks.back_mut() {
            if c.sealed.is_none() && !c.items.is_empty() {
                c.sealed = Some(reason);
            }
        }
    }

    /// Where the next flush takes its batch from, if anything is ready.
    /// Memory and spool never interleave, so the older front goes first; an
    /// unsealed memory front that is older than the spool makes both wait.
    pub(crate) fn next_source(&self) -> Option<Source> {
        if self.retry.is_some() {
            return self.retry_due.then_some(Source::Retry);
        }
        let spool_seq = self
            .spool
            .as_ref()
            .filter(|sp| !sp.is_empty() && sp.reading == 0 && !sp.parked)
            .map(|sp| sp.first_seq);
        let memory = self
            .chunks
            .front()
            .map(|c| (c.first_seq, c.sealed.is_some()));
        match (memory, spool_seq) {
            (Some((m, sealed)), Some(s)) if m < s => sealed.then_some(Source::Memory),
            (_, Some(_)) => Some(Source::Spool),
            (Some((_, true)), None) => Some(Source::Memory),
            _ => None,
        }
    }

    /// Whether a flush has something to take now.
    pub(crate) fn has_ready(&self) -> bool {
        self.next_source().is_some()
    }

    /// Takes the front sealed chunk as a batch, moving its items to in flight.
    pub(crate) fn take_memory(&mut self) -> Option<Batch<T>> {
        let reason = self.chunks.front()?.sealed?;
        let chunk = self.chunks.pop_front()?;
        self.pending -= chunk.items.len();
        self.pending_bytes -= chunk.bytes;
        self.in_flight += chunk.items.len();
        Some(Batch {
            chunk,
            reason,
            attempt: 0,
            from_spool: false,
        })
    }

    /// Takes the retry batch whose backoff ran out.
    pub(crate) fn take_retry(&mut self) -> Option<Batch<T>> {
        if !self.retry_due {
            return None;
        }
        self.retry_due = false;
        self.retry.take()
    }

    /// Takes every pending chunk out (oldest first), for spilling.
    pub(crate) fn take_chunks(&mut self) -> Vec<Chunk<T>> {
        self.pending = 0;
        self.pending_bytes = 0;
        self.chunks.drain(..).collect()
    }

    /// Evicts the oldest pending item (`drop_oldest`). Returns it, to be
    /// dropped by the caller after the lock is released.
    pub(crate) fn evict_oldest(&mut self, weigh: impl Fn(&T) -> u64) -> Option<T> {
        let chunk = self.chunks.front_mut()?;
        if chunk.items.is_empty() {
            return None;
        }
        // O(batch) move, on the overflow path only.
        let item = chunk.items.remove(0);
        let w = weigh(&item);
        let seq = chunk.first_seq;
        chunk.first_seq += 1;
        chunk.bytes -= w;
        if chunk.items.is_empty() {
            if let Some(c) = self.chunks.pop_front() {
                self.recycle(c.items);
            }
        }
        self.pending -= 1;
        self.pending_bytes -= w;
        self.counts.dropped += 1;
        self.resolve(seq, 1, Outcome::Dropped);
        Some(item)
    }

    /// Takes every pending item out (for `dump`), oldest first.
    pub(crate) fn take_pending(&mut self, out: &mut Vec<T>) {
        while let Some(mut c) = self.chunks.pop_front() {
            let n = c.items.len() as u64;
            self.resolve(c.first_seq, n, Outcome::Dumped);
            self.counts.dumped += n;
            out.append(&mut c.items);
            self.recycle(c.items);
        }
        self.pending = 0;
        self.pending_bytes = 0;
    }

    /// Keeps an emptied batch vector for the next chunk.
    pub(crate) fn recycle(&mut self, mut items: Vec<T>) {
        items.clear();
        if self.spare.len() < SPARE_VECS {
            self.spare.push(items);
        }
    }

    /// Counts `n` items from `first_seq` on as resolved, for every mark.
    pub(crate) fn resolve(&mut self, first_seq: u64, n: u64, outcome: Outcome) {
        for m in self.marks.iter_mut() {
            let overlap = m.target.min(first_seq + n).saturating_sub(first_seq);
            if overlap == 0 {
                continue;
            }
            m.remaining = m.remaining.saturating_sub(overlap);
            match outcome {
                Outcome::Delivered => m.delivered += overlap,
                Outcome::Dropped => m.dropped += overlap,
                Outcome::Dumped => m.dumped += overlap,
                Outcome::Spooled => m.spooled += overlap,
            }
        }
    }

    /// Items not yet delivered, dropped or dumped: pending, in flight, and
    /// waiting in the spool (the batch being read from it is in flight).
    pub(crate) fn unresolved(&self) -> u64 {
        (self.pending + self.in_flight) as u64 + self.spool.as_ref().map_or(0, PartSpool::waiting)
    }

    /// Leaves a mark for everything buffered now (call after draining the
    /// rings and sealing the open chunk). Returns its id.
    pub(crate) fn add_mark(&mut self) -> u64 {
        let id = self.next_mark;
        self.next_mark += 1;
        self.marks.push(Mark {
            id,
            target: self.next_seq,
            remaining: self.unresolved(),
            delivered: 0,
            dropped: 0,
            dumped: 0,
            spooled: 0,
        });
        id
    }

    /// The mark `id` if it is resolved (removing it), or `None`.
    pub(crate) fn take_mark_if_done(&mut self, id: u64) -> Option<Mark> {
        let i = self.marks.iter().position(|m| m.id == id)?;
        if self.marks[i].remaining == 0 {
            Some(self.marks.swap_remove(i))
        } else {
            None
        }
    }

    /// Removes the mark `id` whatever its state (a waiter gave up).
    pub(crate) fn remove_mark(&mut self, id: u64) -> Option<Mark> {
        let i = self.marks.iter().position(|m| m.id == id)?;
        Some(self.marks.swap_remove(i))
    }

    /// Moves items from the producer rings into the pending queue, as long as
    /// `room` allows (`usize::MAX` ignores `capacity`: close and sync_flush).
    /// Rings whose producer is gone are removed once empty, their counts kept.
    pub(crate) fn drain_rings(
        &mut self,
        mut room: usize,
        max_size: usize,
        jitter: usize,
        max_bytes: u64,
        weigh: impl Fn(&T) -> u64,
    ) -> bool {
        let mut sealed = false;
        let mut i = 0;
        while i < self.rings.len() {
            while room > 0 {
                let (got, sealed_one) =
                    self.drain_into_open_chunk(i, room, max_size, jitter, max_bytes, &weigh);
                if got == 0 {
                    break;
                }
                sealed |= sealed_one;
                room = room.saturating_sub(got);
            }
            if !self.retire_ring_if_done(i) {
                i += 1;
            }
        }
        sealed
    }

    /// Moves up to `room` items out of the producer rings into `out`, oldest
    /// first per ring (for spilling them, where they do not go to memory).
    pub(crate) fn pop_rings(&mut self, mut room: usize, out: &mut Vec<T>) {
        let mut i = 0;
        while i < self.rings.len() {
            while room > 0 {
                let got = self.rings[i].consumer.pop_batch(out, room.min(256));
                if got == 0 {
                    break;
                }
                self.rings[i].drained += got as u64;
                room = room.saturating_sub(got);
            }
            if !self.retire_ring_if_done(i) {
                i += 1;
            }
        }
    }

    /// Removes ring `i` if its producer is gone and it is empty, keeping its
    /// counts. Returns whether it did.
    fn retire_ring_if_done(&mut self, i: usize) -> bool {
        let slot = &self.rings[i];
        if !(slot.consumer.is_abandoned() && slot.consumer.is_empty()) {
            return false;
        }
        let slot = self.rings.swap_remove(i);
        let c = slot.shared.counts();
        self.counts.inserted += c.pushed + c.refused;
        self.counts.dropped += c.refused;
        true
    }

    /// Takes an emptied vector from the spares, for scratch use.
    pub(crate) fn take_spare(&mut self) -> Vec<T> {
        self.spare.pop().unwrap_or_default()
    }

    /// Pops up to `room` items of ring `i` straight into the open chunk, at
    /// most what it still takes by count, so items move once and the
    /// per-item work is only weighing them. Returns how many moved and
    /// whether a chunk was sealed.
    fn drain_into_open_chunk(
        &mut self,
        i: usize,
        room: usize,
        max_size: usize,
        jitter: usize,
        max_bytes: u64,
        weigh: &impl Fn(&T) -> u64,
    ) -> (usize, bool) {
        if self.rings[i].consumer.is_empty() {
            return (0, false); // start no chunk for nothing
        }
        self.ensure_open(max_size, jitter);
        let Some(chunk) = self.chunks.back_mut() else {
            unreachable!("a chunk was just ensured")
        };
        let start = chunk.items.len();
        // An open chunk is below its limit (it is sealed when it reaches it).
        let want = room.min(chunk.limit.saturating_sub(start).max(1));
        let got = self.rings[i].consumer.pop_batch(&mut chunk.items, want);
        // Counted at once, so the counts stay true even if a `Weigh` below
        // panics (then only the bytes go uncounted, on both sides).
        self.rings[i].drained += got as u64;
        self.pending += got;
        self.next_seq += got as u64;
        // The item that reaches `max_bytes` seals the chunk; any after it go
        // on through `append`, into the next chunk.
        let mut bytes = 0;
        let mut keep = got;
        for (k, item) in chunk.items[start..].iter().enumerate() {
            bytes += weigh(item);
            if max_bytes > 0 && chunk.bytes + bytes >= max_bytes {
                keep = k + 1;
                break;
            }
        }
        chunk.bytes += bytes;
        self.pending_bytes += bytes;
        let rest = (keep < got).then(|| chunk.items.split_off(start + keep));
        self.pending -= got - keep;
        self.next_seq -= (got - keep) as u64;
        let mut sealed =
            chunk.items.len() >= chunk.limit || (max_bytes > 0 && chunk.bytes >= max_bytes);
        if sealed {
            chunk.sealed = Some(FlushReason::Size);
        }
        for item in rest.into_iter().flatten() {
            let w = weigh(&item);
            sealed |= self.append(item, w, max_size, jitter, max_bytes);
        }
        (got, sealed)
    }

    /// Items still in producer rings (not yet drained).
    pub(crate) fn ring_items(&self) -> u64 {
        self.rings
            .iter()
            .map(|r| r.queued(r.shared.counts().pushed))
            .sum()
    }

    /// This partition's counters and gauges, ring handles included.
    pub(crate) fn counts(&self) -> Counts {
        let mut c = self.counts.clone();
        c.buffered = self.pending as u64;
        c.in_flight = self.in_flight as u64;
        c.spooled = self.spool.as_ref().map_or(0, PartSpool::waiting);
        for r in &self.rings {
            let rc = r.shared.counts();
            c.inserted += rc.pushed + rc.refused;
            c.dropped += rc.refused;
            c.buffered += r.queued(rc.pushed);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ring(values: &[u64]) -> (PartState<u64>, spsc::Producer<u64>) {
        let (mut tx, rx) = spsc::channel(64);
        for &v in values {
            assert!(tx.try_push(v).is_ok());
        }
        let mut st = PartState::new(Instant::now());
        st.rings.push(RingSlot {
            id: 0,
            consumer: rx,
            shared: Arc::new(RingShared::default()),
            drained: 0,
            evicted: 0,
        });
        (st, tx)
    }

    fn chunks(st: &PartState<u64>) -> Vec<(Vec<u64>, u64, u64, Option<FlushReason>)> {
        st.chunks
            .iter()
            .map(|c| (c.items.clone(), c.bytes, c.first_seq, c.sealed))
            .collect()
    }

    #[test]
    fn draining_fills_chunks_up_to_max_size_in_order_within_room() {
        let (mut st, _tx) = with_ring(&(0..25).collect::<Vec<_>>());
        assert!(st.drain_rings(22, 10, 0, 0, |_| 8));
        let size = Some(FlushReason::Size);
        assert_eq!(
            chunks(&st),
            [
                ((0..10).collect(), 80, 0, size),
                ((10..20).collect(), 80, 10, size),
                (vec![20, 21], 16, 20, None),
            ]
        );
        assert_eq!((st.pending, st.pending_bytes, st.next_seq), (22, 176, 22));
        assert_eq!((st.rings[0].drained, st.rings[0].consumer.len()), (22, 3));

        assert!(!st.drain_rings(usize::MAX, 10, 0, 0, |_| 8));
        assert_eq!(chunks(&st)[2], ((20..25).collect(), 40, 20, None));
        assert_eq!((st.pending, st.pending_bytes, st.next_seq), (25, 200, 25));
        // An empty ring starts no chunk.
        st.seal_open(FlushReason::Manual);
        assert!(!st.drain_rings(usize::MAX, 10, 0, 0, |_| 8));
        assert_eq!(st.chunks.len(), 3);
    }

    #[test]
    fn the_item_that_reaches_max_bytes_seals_and_the_rest_start_the_next_chunk() {
        let (mut st, _tx) = with_ring(&[5, 5, 5, 1, 1, 1, 9, 1]);
        // Each item weighs its value; 10 bytes seal a chunk.
        assert!(st.drain_rings(usize::MAX, 100, 0, 10, |v| *v));
        let size = Some(FlushReason::Size);
        assert_eq!(
            chunks(&st),
            [
                (vec![5, 5], 10, 0, size),
                (vec![5, 1, 1, 1, 9], 17, 2, size),
                (vec![1], 1, 7, None),
            ]
        );
        assert_eq!((st.pending, st.pending_bytes, st.next_seq), (8, 28, 8));
        assert_eq!(st.rings[0].drained, 8);
    }
}
