//! One partition's state, guarded by its mutex: pending items in chunks,
//! what is in flight, the producer rings it drains, its spool, and its
//! counters.
//!
//! The fields are private: every change of the books goes through one of the
//! operations below (`admit`, `take_memory`, `deliver`, `retry_later`,
//! `drop_batch`, `spill_chunk`, ...), each of which keeps the counters right
//! in one place, and debug builds check the conservation invariant
//! (`inserted == delivered + dropped + dumped + buffered + in_flight +
//! spooled`) after each.
//!
//! Every item gets a sequence number when it enters (memory or spool), and
//! items are resolved (delivered, dropped, dumped, spooled) in contiguous
//! ranges. A `sync_flush` or `close` leaves a mark that counts down the
//! items that were buffered at its call, so it can report exactly what
//! became of them.

mod books;
mod calls;
mod lent;
mod mark;
mod notes;
mod pending;
mod rings;
mod spill;
mod spool;

use std::time::{Duration, Instant};

use crate::ring::spsc;
use crate::sink::FlushReason;
use crate::stats::{Counts, LatencyHistogram};
use crate::sync::rc::Arc;
use crate::weigh::Weigh;

use super::jitter::Jitter;

use self::mark::{Marks, Outcome};
use self::pending::Pending;

pub(crate) use self::lent::{lend, Ended, LendFn, Lent, LentItems};
pub(crate) use self::mark::Mark;
pub(crate) use self::notes::{Note, Notes};
pub(crate) use self::pending::{Batch, Limits};
pub(crate) use self::rings::RingShared;
pub(crate) use self::spool::{partition_dir, PartSpool};

/// An item's weight in bytes for `max_bytes` (0 when it has none).
pub(crate) fn weigh<T: Weigh>(item: &T) -> u64 {
    item.weight().map_or(0, |w| w as u64)
}

/// Where the next batch of a partition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The failed batch whose backoff has run out.
    Retry,
    /// The batch of an abandoned call that returned.
    Late,
    /// The front chunk in memory.
    Memory,
    /// The oldest records of the spool.
    Spool,
}

/// The partition's scheduling flags, owned by the flush machinery and the
/// waiters. They carry no count, so they are open to the buffer's code.
#[derive(Debug)]
pub(crate) struct Flow {
    /// Queued, running, or a batch in backoff. At most one flush per
    /// partition, so the sink sees items in order.
    pub(crate) running: bool,
    /// When the flush interval next runs out (restarted after each flush).
    pub(crate) next_deadline: Instant,
    /// The deadline of the one interval entry this partition has in the
    /// engine's timer heap, if any.
    pub(crate) armed: Option<Instant>,
    /// Threads waiting on the partition's event (inserters, sync waiters).
    pub(crate) waiters: usize,
    /// `close` has begun for this partition.
    pub(crate) closing: bool,
    /// `close` has moved every ring's items into the pending queue; a
    /// producer that pushed after that takes its item back.
    pub(crate) final_drained: bool,
    /// The deadline of the one watchdog entry this partition has in the
    /// engine's timer heap, if any (`abandon.rs`).
    pub(crate) watchdog: Option<Instant>,
}

pub(crate) struct PartState<T> {
    pending: Pending<T>,
    /// Items handed to the sink now, or waiting for a retry.
    in_flight: usize,
    retry: Option<Batch<T>>,
    retry_due: bool,
    retry_gen: u64,
    /// Batches of abandoned calls that returned, oldest first (`calls.rs`).
    late: Vec<Batch<T>>,
    /// The sink calls running now.
    calls: Vec<calls::Call<T>>,
    next_call: u64,
    rings: rings::Rings<T>,
    marks: Marks,
    /// Counters of the mutex path; ring and gauge counts are added in
    /// [`Self::counts`].
    counts: Counts,
    latency: LatencyHistogram,
    /// The partition's disk spool, with `overflow: spill`.
    spool: Option<PartSpool>,
    flow: Flow,
    /// Spreads flush intervals and retry backoffs apart.
    jitter: Jitter,
    /// Observer events of the spool, emitted after the lock is released.
    notes: Arc<Notes>,
    /// The sink's last attempt on this partition failed.
    sink_failing: bool,
    /// Weight of the items in flight, for `capacity_bytes`.
    in_flight_bytes: u64,
}

impl<T> PartState<T> {
    /// A partition at `now`. Records an earlier run left in `spool` come
    /// first; they count as inserted, so the books balance.
    pub(crate) fn new(now: Instant, spool: Option<PartSpool>) -> Self {
        let replay = spool.as_ref().map_or(0, |sp| sp.spool.len());
        let st = Self {
            pending: Pending::new(replay),
            in_flight: 0,
            retry: None,
            retry_due: false,
            retry_gen: 0,
            late: Vec::new(),
            calls: Vec::new(),
            next_call: 0,
            rings: rings::Rings::new(),
            marks: Marks::default(),
            counts: Counts {
                inserted: replay,
                ..Counts::default()
            },
            latency: LatencyHistogram::default(),
            spool,
            flow: Flow {
                running: false,
                next_deadline: now,
                armed: None,
                waiters: 0,
                closing: false,
                final_drained: false,
                watchdog: None,
            },
            jitter: Jitter::new(),
            notes: Arc::new(Notes::new()),
            sink_failing: false,
            in_flight_bytes: 0,
        };
        st.check();
        st
    }

    /// The conservation invariant, in debug builds.
    #[inline]
    fn check(&self) {
        #[cfg(debug_assertions)]
        {
            let c = self.counts();
            debug_assert!(c.is_conserved(), "partition books do not balance: {c:?}");
        }
    }

    pub(crate) fn flow(&self) -> &Flow {
        &self.flow
    }

    pub(crate) fn flow_mut(&mut self) -> &mut Flow {
        &mut self.flow
    }

    /// Items this partition holds in memory, in flight included: what
    /// `capacity` bounds.
    pub(crate) fn held(&self) -> usize {
        self.pending.len() + self.in_flight
    }

    /// Weight of the items held in memory, in flight included: what
    /// `capacity_bytes` bounds.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.pending.bytes() + self.in_flight_bytes
    }

    /// Items buffered or in flight, producer rings included (`len`).
    pub(crate) fn len(&self) -> usize {
        self.held() + self.rings.books().queued as usize
    }

    /// Items not yet delivered, dropped or dumped: pending, in flight, and
    /// waiting in the spool (the batch being read from it is in flight).
    pub(crate) fn unresolved(&self) -> u64 {
        self.held() as u64 + self.spool.as_ref().map_or(0, PartSpool::waiting)
    }

    /// This partition's counters and gauges, ring handles included.
    pub(crate) fn counts(&self) -> Counts {
        let mut c = self.counts.clone();
        let r = self.rings.books();
        c.inserted += r.inserted;
        c.dropped += r.refused + r.evicted;
        c.buffered = self.pending.len() as u64 + r.queued;
        c.in_flight = self.in_flight as u64;
        c.spooled = self.spool.as_ref().map_or(0, PartSpool::waiting);
        c
    }

    /// A random duration in `0..=max`, for interval and backoff jitter.
    pub(crate) fn jitter(&mut self, max: Duration) -> Duration {
        self.jitter.duration_upto(max)
    }

    pub(crate) fn latency(&self) -> &LatencyHistogram {
        &self.latency
    }

    /// Records a sink call's duration, and whether it ran past
    /// `flush_timeout`.
    pub(crate) fn record_call(&mut self, elapsed: Duration, timed_out: bool) {
        self.latency.record(elapsed);
        if timed_out {
            self.counts.flush_timeouts += 1;
        }
    }

    /// Seals the open chunk (if it has items) with `reason`.
    pub(crate) fn seal_open(&mut self, reason: FlushReason) {
        self.pending.seal_open(reason);
    }

    /// Adds the consumer end of a producer handle's ring.
    pub(crate) fn add_ring(&mut self, id: u64, rx: spsc::Consumer<T>, shared: Arc<RingShared>) {
        self.rings.add(id, rx, shared);
    }

    /// Whether any producer handle feeds this partition.
    pub(crate) fn has_rings(&self) -> bool {
        !self.rings.is_empty()
    }

    /// Refuses an item under `drop_newest`: it counts as inserted and dropped.
    pub(crate) fn refuse_newest(&mut self) {
        self.counts.inserted += 1;
        self.counts.dropped += 1;
        self.check();
    }

    /// `drop_oldest` for a producer handle: evicts the oldest item of ring
    /// `id` (counted dropped), to be dropped after the lock is released.
    pub(crate) fn evict_from_ring(&mut self, id: u64) -> Option<T> {
        let item = self.rings.evict(id);
        self.check();
        item
    }

    /// Hands back what ring `id` holds after close's final drain (pushed
    /// after it); its producer uncounts it.
    pub(crate) fn take_back(&mut self, id: u64) -> Option<T> {
        self.rings.take_back(id)
    }

    /// Where the next flush takes its batch from, if anything is ready.
    /// Memory and spool never interleave, so the older front goes first; an
    /// unsealed memory front that is older than the spool makes both wait.
    fn next_source(&self) -> Option<Source> {
        if self.retry.is_some() {
            return self.retry_due.then_some(Source::Retry);
        }
        if !self.late.is_empty() {
            return Some(Source::Late);
        }
        let spool = self.spool.as_ref().and_then(PartSpool::front);
        match (self.pending.front(), spool) {
            (Some((m, sealed)), Some((s, _))) if m < s => sealed.then_some(Source::Memory),
            (_, Some((_, readable))) => readable.then_some(Source::Spool),
            (Some((_, true)), None) => Some(Source::Memory),
            _ => None,
        }
    }

    /// Whether a flush has something to take now.
    pub(crate) fn has_ready(&self) -> bool {
        self.next_source().is_some()
    }

    /// A batch waits out its backoff: the retry timer owns the partition.
    pub(crate) fn has_retry(&self) -> bool {
        self.retry.is_some()
    }

    /// Takes the front sealed chunk as a batch, moving its items to in flight.
    fn take_memory(&mut self) -> Option<Batch<T>> {
        let (chunk, reason) = self.pending.take_sealed()?;
        let held = chunk.items.len();
        self.in_flight += held;
        self.in_flight_bytes += chunk.bytes;
        self.check();
        Some(Batch {
            chunk,
            reason,
            attempt: 0,
            from_spool: false,
            held,
        })
    }

    /// Takes the retry batch whose backoff ran out.
    fn take_retry(&mut self) -> Option<Batch<T>> {
        if !self.retry_due {
            return None;
        }
        self.retry_due = false;
        self.retry.take()
    }

    /// The sink accepted `batch`: its items are delivered (and for a
    /// spooled batch, its undecodable records dropped and its records
    /// removed from the spool). Returns how many records were undecodable.
    pub(crate) fn deliver(&mut self, batch: Batch<T>) -> usize {
        let n = batch.len();
        self.counts.batches += 1;
        self.counts.delivered += n as u64;
        self.in_flight -= batch.held;
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(batch.chunk.bytes);
        self.sink_failing = false;
        let corrupt = batch.held - n;
        if batch.from_spool {
            self.counts.dropped += corrupt as u64;
            // A failed remove leaves the records to be sent again: at least
            // once, never lost; but the caller hears of it.
            if let Some(Err(e)) = self.spool.as_mut().map(PartSpool::remove_read) {
                self.note_spool_error("remove", &e);
            }
        }
        self.resolve(batch.chunk.first_seq, batch.held as u64, Outcome::Delivered);
        self.pending.recycle(batch.chunk.items);
        self.check();
        corrupt
    }

    /// Counts a failed sink call.
    pub(crate) fn count_failure(&mut self) {
        self.counts.failed_flushes += 1;
        self.sink_failing = true;
    }

    /// Keeps a failed batch for its next attempt, which the retry timer
    /// armed with the returned generation releases.
    pub(crate) fn retry_later(&mut self, mut batch: Batch<T>) -> u64 {
        self.counts.retries += 1;
        batch.attempt += 1;
        self.retry = Some(batch);
        self.retry_due = false;
        self.retry_gen += 1;
        self.check();
        self.retry_gen
    }

    /// The retry timer of generation `gen` fired: releases the batch, if it
    /// is still the one waiting. Returns whether it did.
    pub(crate) fn retry_due(&mut self, gen: u64) -> bool {
        if self.retry.is_some() && self.retry_gen == gen {
            self.retry_due = true;
            return true;
        }
        false
    }

    /// Gives up a failed batch: its items are dropped. Returns them, to be
    /// dropped by the caller after the lock is released.
    pub(crate) fn drop_batch(&mut self, batch: Batch<T>) -> Vec<T> {
        let n = batch.held;
        self.counts.dropped += n as u64;
        self.in_flight -= n;
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(batch.chunk.bytes);
        self.resolve(batch.chunk.first_seq, n as u64, Outcome::Dropped);
        self.check();
        batch.chunk.items
    }

    /// Evicts the oldest pending item (`drop_oldest`), counted dropped.
    /// Returns it, to be dropped by the caller after the lock is released.
    pub(crate) fn evict_oldest(&mut self) -> Option<T>
    where
        T: Weigh,
    {
        let (item, seq) = self.pending.pop_oldest(weigh::<T>)?;
        self.counts.dropped += 1;
        self.resolve(seq, 1, Outcome::Dropped);
        self.check();
        Some(item)
    }

    /// Takes every pending item out (for `dump`), oldest first.
    pub(crate) fn take_pending(&mut self, out: &mut Vec<T>) {
        for mut c in self.pending.take_all() {
            let n = c.items.len() as u64;
            self.resolve(c.first_seq, n, Outcome::Dumped);
            self.counts.dumped += n;
            out.append(&mut c.items);
            self.pending.recycle(c.items);
        }
        self.check();
    }
}

impl<T: Weigh> PartState<T> {
    /// Admits one item into memory: counted inserted, appended to the open
    /// chunk. Returns true when it sealed the chunk by size or bytes.
    #[inline]
    pub(crate) fn admit(&mut self, item: T, weight: u64, limits: Limits) -> bool {
        self.counts.inserted += 1;
        let sealed = self.pending.append(item, weight, limits);
        self.check();
        sealed
    }

    /// Moves items from the producer rings into memory, as long as `room`
    /// allows (`usize::MAX` ignores `capacity`: close and sync_flush).
    /// Returns whether a chunk was sealed by size.
    pub(crate) fn drain_rings(&mut self, room: usize, limits: Limits) -> bool {
        let sealed = self
            .rings
            .drain_into(&mut self.pending, room, limits, weigh::<T>);
        self.check();
        sealed
    }

    /// Takes the next ready batch (a retry due, the front sealed chunk, or
    /// the spool's oldest records, whichever is older), moving it in flight.
    pub(crate) fn take_batch(
        &mut self,
        max_size: usize,
        codec: Option<&crate::codec::SpillCodec<T>>,
    ) -> Option<Batch<T>> {
        match self.next_source()? {
            Source::Retry => self.take_retry(),
            Source::Late => self.take_late(),
            Source::Memory => self.take_memory(),
            Source::Spool => self.read_spool(max_size, codec?),
        }
    }
}
