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

    /// Appends one item to the open chunk (starting one if needed). Returns
    /// true when this item sealed the chunk by size or bytes: the insert
    /// that reaches the threshold fires the flush.
    pub(crate) fn append(
        &mut self,
        item: T,
        weight: u64,
        max_size: usize,
        jitter: usize,
        max_bytes: u64,
    ) -> bool {
        let open = matches!(self.chunks.back(), Some(c) if c.sealed.is_none());
        if !open {
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

    /// Moves up to `room` items out of the producer rings into `out`, oldest
    /// first per ring. Rings whose producer is gone are removed once empty,
    /// their counts kept.
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
            let slot = &self.rings[i];
            if slot.consumer.is_abandoned() && slot.consumer.is_empty() {
                let slot = self.rings.swap_remove(i);
                let c = slot.shared.counts();
                self.counts.inserted += c.pushed + c.refused;
                self.counts.dropped += c.refused;
                continue;
            }
            i += 1;
        }
    }

    /// Takes an emptied vector from the spares, for scratch use.
    pub(crate) fn take_spare(&mut self) -> Vec<T> {
        self.spare.pop().unwrap_or_default()
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
