//! The shared core of a buffer: its partitions, and the protocols between
//! inserting threads, the flusher pool and the timer.
//!
//! Lock order: a partition's mutex, then the engine's queue or timer lock
//! (scheduling and arming happen under the partition lock). The sink and the
//! observer are always called with no lock held.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::config::{BufferConfig, Overflow};
use crate::engine::{Closable, Engine, Task, TimerKind};
use crate::observer::{
    DropEvent, DropReason, FlushEnd, FlushStart, Observer, OverflowEvent, RetryEvent,
};
use crate::ring::spsc;
use crate::sink::{FlushContext, FlushReason, Sink, SinkError};
use crate::stats::{LatencyHistogram, PartitionStats, Stats};
use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sync::heavy_fence;
use crate::sync::rc::{Arc, Weak};
use crate::sync::{Condvar, Mutex, MutexGuard};
use crate::weigh::Weigh;

use super::partition::{Batch, Chunk, Mark, Outcome, PartState, RingSlot, Source};
use super::producer::{Producer, RingShared};
use super::spill::PartSpool;
use super::{CloseReport, FlushReport, InsertError, PartitionFlush, SyncFlushError};
use crate::codec::SpillCodec;

pub(crate) struct Partition<T> {
    state: Mutex<PartState<T>>,
    /// Signalled when room is freed, a mark may be resolved, or close begins,
    /// and only when `waiters > 0`.
    changed: Condvar,
}

/// Observer events gathered under the lock, emitted after it is released.
struct Events<T> {
    overflow: bool,
    dropped: Option<(usize, DropReason)>,
    /// An evicted or failed item, dropped outside the lock (its `Drop` is
    /// user code).
    garbage: Option<T>,
}

impl<T> Events<T> {
    fn new() -> Self {
        Self {
            overflow: false,
            dropped: None,
            garbage: None,
        }
    }
}

pub(crate) struct Core<T: Weigh + Send + 'static> {
    pub(crate) name: String,
    pub(crate) config: BufferConfig,
    sink: Box<dyn Sink<T>>,
    observer: Option<Arc<dyn Observer>>,
    /// Present with `overflow: spill`: how items become spool records.
    codec: Option<SpillCodec<T>>,
    pub(crate) engine: Engine,
    private_engine: bool,
    parts: Vec<Partition<T>>,
    closed: AtomicBool,
    me: Weak<Core<T>>,
    next_partition: AtomicUsize,
    next_ring: AtomicU64,
    close_marks: Mutex<Vec<(u32, u64)>>,
    close_report: Mutex<Option<CloseReport>>,
}

fn weigh<T: Weigh>(item: &T) -> u64 {
    item.weight().map_or(0, |w| w as u64)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}

impl<T: Weigh + Send + 'static> Core<T> {
    pub(crate) fn new(
        config: BufferConfig,
        sink: Box<dyn Sink<T>>,
        observer: Option<Arc<dyn Observer>>,
        spill: Option<(SpillCodec<T>, Vec<PartSpool>)>,
        engine: Engine,
        private_engine: bool,
    ) -> Arc<Self> {
        let now = engine.handle.inner.now();
        let (codec, mut spools) = match spill {
            Some((codec, spools)) => (Some(codec), spools.into_iter().map(Some).collect()),
            None => (None, Vec::new()),
        };
        spools.resize_with(config.partitions, || None);
        let core = Arc::new_cyclic(|me| Core {
            name: config.name.clone(),
            parts: spools
                .into_iter()
                .map(|spool| {
                    let mut st = PartState::new(now);
                    if let Some(sp) = spool {
                        // Records left by an earlier run come first; they
                        // count as inserted, so the books balance.
                        let n = sp.spool.len();
                        st.counts.inserted += n;
                        st.next_seq = n;
                        st.spool = Some(sp);
                    }
                    Partition {
                        state: Mutex::new(st),
                        changed: Condvar::new(),
                    }
                })
                .collect(),
            config,
            sink,
            observer,
            codec,
            engine,
            private_engine,
            closed: AtomicBool::new(false),
            me: me.clone(),
            next_partition: AtomicUsize::new(0),
            next_ring: AtomicU64::new(0),
            close_marks: Mutex::new(Vec::new()),
            close_report: Mutex::new(None),
        });
        for p in 0..core.parts.len() {
            let mut st = core.parts[p].state.lock();
            core.restart_interval(&mut st, p as u32);
            core.kick(&mut st, p as u32); // replay what an earlier run spooled
        }
        core
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn is_manual(&self) -> bool {
        self.engine.handle.inner.is_manual()
    }

    /// Runs queued flushes on this thread when the engine has no workers.
    pub(crate) fn assist(&self) {
        self.engine.handle.inner.assist();
    }

    pub(crate) fn partitions(&self) -> u32 {
        self.parts.len() as u32
    }

    pub(crate) fn next_partition(&self) -> u32 {
        // One partition (the default): skip the shared counter, an atomic
        // read-modify-write per insert whose cache line every producer
        // thread would fight over.
        if self.parts.len() == 1 {
            return 0;
        }
        (self.next_partition.fetch_add(1, Ordering::Relaxed) % self.parts.len()) as u32
    }

    fn schedule(&self, p: u32) {
        if let Some(me) = self.me.upgrade() {
            self.engine.handle.inner.schedule(me, p);
        }
    }

    fn arm(&self, at: Instant, p: u32, kind: TimerKind, gen: u64) {
        let me: Weak<Core<T>> = self.me.clone();
        let task: Weak<dyn Task> = me;
        self.engine.handle.inner.arm(at, task, p, kind, gen);
    }

    /// Free room under `capacity` (what ring draining may move in).
    fn room(&self, st: &PartState<T>) -> usize {
        self.config.capacity.saturating_sub(st.held())
    }

    /// Moves producer-ring items into the partition: into memory, or into
    /// the spool while the partition's newest items are there. Returns
    /// whether a chunk was sealed by size.
    fn drain(&self, st: &mut PartState<T>, room: usize) -> bool {
        if st.rings.is_empty() {
            return false;
        }
        if st.final_drained {
            // Whatever a ring holds after close's final drain was pushed
            // after it, by a producer that will see `closed` and take it back
            // (`take_back`). Draining it here would put it in an open chunk
            // no flush takes any more, and let its producer return `Ok`.
            return false;
        }
        let spilling = st.spool.as_ref().is_some_and(|sp| sp.tail);
        if !spilling {
            let c = &self.config;
            return st.drain_rings(room, c.max_size, c.max_size_jitter, c.max_bytes, weigh::<T>);
        }
        let mut items = st.take_spare();
        st.pop_rings(usize::MAX, &mut items);
        let mut sealed = false;
        for item in items.drain(..) {
            if let Err(item) = self.spill_tail(st, item) {
                sealed |= self.append(st, item);
            }
        }
        st.recycle(items);
        sealed
    }

    fn append(&self, st: &mut PartState<T>, item: T) -> bool {
        let c = &self.config;
        let w = weigh(&item);
        st.append(item, w, c.max_size, c.max_size_jitter, c.max_bytes)
    }

    /// While the partition's newest items are in the spool, a new item must
    /// follow them there. Gives the item back if it belongs in memory (no
    /// spool tail, or the spool refused it: then memory takes over the tail,
    /// which keeps the order, as everything in the spool is older).
    fn spill_tail(&self, st: &mut PartState<T>, item: T) -> Result<(), T> {
        let (Some(codec), Some(sp)) = (&self.codec, st.spool.as_mut()) else {
            return Err(item);
        };
        if !sp.tail {
            return Err(item);
        }
        match sp.push(&item, st.next_seq, codec) {
            Ok(()) => {
                st.next_seq += 1;
                Ok(())
            }
            Err(_) => {
                sp.tail = false;
                Err(item)
            }
        }
    }

    /// `overflow: spill` on a full partition: moves every pending item to the
    /// spool, oldest first. Returns whether all of them went (then the spool
    /// holds the partition's tail).
    fn spill_pending(&self, st: &mut PartState<T>) -> bool {
        let (Some(codec), true) = (&self.codec, st.spool.is_some()) else {
            return false;
        };
        let chunks = st.take_chunks();
        let mut rest: Vec<Chunk<T>> = Vec::new();
        let mut failed = false;
        for mut chunk in chunks {
            if failed {
                rest.push(chunk);
                continue;
            }
            let Some(sp) = st.spool.as_mut() else {
                rest.push(chunk);
                continue;
            };
            let n = sp
                .push_all(&chunk.items, chunk.first_seq, codec)
                .unwrap_or(0);
            if n < chunk.items.len() {
                failed = true;
                chunk.items.drain(..n);
                chunk.first_seq += n as u64;
                chunk.bytes = chunk.items.iter().map(weigh::<T>).sum();
                rest.push(chunk);
            } else {
                st.recycle(chunk.items);
            }
        }
        // What did not fit stays in memory, in order, newer than the spool.
        for chunk in rest {
            st.pending += chunk.items.len();
            st.pending_bytes += chunk.bytes;
            st.chunks.push_back(chunk);
        }
        if let Some(sp) = st.spool.as_mut() {
            sp.tail = !failed;
        }
        !failed
    }

    /// Starts the flush interval afresh (with new jitter), arming the
    /// partition's one timer entry if it has none.
    fn restart_interval(&self, st: &mut PartState<T>, p: u32) {
        let jitter = st.jitter.duration_upto(self.config.flush_jitter);
        st.next_deadline = self.engine.handle.inner.now() + self.config.flush_interval + jitter;
        if st.armed.is_none() && !st.closing {
            st.armed = Some(st.next_deadline);
            self.arm(st.next_deadline, p, TimerKind::Interval, 0);
        }
    }

    /// Puts the partition in the pool's queue if it has something ready and
    /// no flush owns it yet. Returns whether it did.
    fn kick(&self, st: &mut PartState<T>, p: u32) -> bool {
        if st.has_ready() && !st.running {
            st.running = true;
            self.schedule(p);
            return true;
        }
        false
    }

    /// Calls the observer, if any. A panicking observer is caught and
    /// ignored: telemetry must never wedge a flush or an insert.
    fn observe(&self, f: impl FnOnce(&dyn Observer)) {
        if let Some(obs) = &self.observer {
            let _ = catch_unwind(AssertUnwindSafe(|| f(&**obs)));
        }
    }

    fn emit(&self, p: u32, events: Events<T>) {
        if events.overflow {
            self.observe(|obs| {
                obs.on_overflow(&OverflowEvent {
                    buffer: &self.name,
                    partition: p,
                    policy: self.config.overflow,
                })
            });
        }
        if let Some((count, reason)) = events.dropped {
            self.observe(|obs| {
                obs.on_drop(&DropEvent {
                    buffer: &self.name,
                    partition: p,
                    count,
                    reason,
                })
            });
        }
        drop(events.garbage);
    }

    /// Admits one item into partition `p` under its lock, applying the
    /// overflow policy when the partition is full.
    fn admit(
        &self,
        part: &Partition<T>,
        st: &mut MutexGuard<'_, PartState<T>>,
        p: u32,
        item: T,
        weight: u64,
        events: &mut Events<T>,
    ) -> Result<(), InsertError<T>> {
        let cfg = &self.config;
        let mut deadline = None;
        let mut item = item;
        let mut spill_failed = false;
        loop {
            if st.closing {
                return Err(InsertError::Closed(item));
            }
            // Only while the spool holds the partition's newest items.
            if st.spool.as_ref().is_some_and(|sp| sp.tail) {
                match self.spill_tail(st, item) {
                    Ok(()) => {
                        st.counts.inserted += 1;
                        return Ok(());
                    }
                    Err(back) => {
                        item = back;
                        // The spool refused it: do not try to spill again in
                        // this call, or a failing spool would make us spin.
                        spill_failed = true;
                    }
                }
            }
            if st.held() < cfg.capacity {
                break;
            }
            events.overflow = true;
            let policy = match cfg.overflow {
                Overflow::Spill if !spill_failed => {
                    if self.spill_pending(st) {
                        if st.waiters > 0 {
                            part.changed.notify_all();
                        }
                        continue; // the item follows its elders to the spool
                    }
                    spill_failed = true;
                    continue;
                }
                // The spool is full or failing: wait for room as `block` does.
                Overflow::Spill => Overflow::Block,
                other => other,
            };
            match policy {
                Overflow::Block => {
                    let dl = *deadline.get_or_insert_with(|| Instant::now() + cfg.block_timeout);
                    self.kick(st, p);
                    st.waiters += 1;
                    let timed_out = part.changed.wait_until(st, dl).timed_out();
                    st.waiters -= 1;
                    if timed_out && st.held() >= cfg.capacity && !st.closing {
                        return Err(InsertError::Timeout(item));
                    }
                }
                Overflow::DropOldest => match st.evict_oldest(weigh::<T>) {
                    Some(old) => {
                        events.garbage = Some(old);
                        events.dropped = Some((1, DropReason::DropOldest));
                        break;
                    }
                    // Everything held is in flight: nothing old to evict, so
                    // the new item is the one given up.
                    None => return Err(self.refuse_newest(st, item, events)),
                },
                Overflow::DropNewest => return Err(self.refuse_newest(st, item, events)),
                Overflow::Reject | Overflow::Spill => return Err(InsertError::Full(item)),
            }
        }
        st.counts.inserted += 1;
        let c = &self.config;
        if st.append(item, weight, c.max_size, c.max_size_jitter, c.max_bytes) {
            self.kick(st, p);
        }
        Ok(())
    }

    fn refuse_newest(
        &self,
        st: &mut PartState<T>,
        item: T,
        events: &mut Events<T>,
    ) -> InsertError<T> {
        st.counts.inserted += 1;
        st.counts.dropped += 1;
        events.dropped = Some((1, DropReason::DropNewest));
        InsertError::Full(item)
    }

    pub(crate) fn insert_to(&self, p: u32, item: T) -> Result<(), InsertError<T>> {
        if self.is_closed() {
            return Err(InsertError::Closed(item));
        }
        let w = weigh(&item);
        let part = &self.parts[p as usize];
        let mut events = Events::new();
        let mut st = part.state.lock();
        let result = self.admit(part, &mut st, p, item, w, &mut events);
        drop(st);
        self.emit(p, events);
        result
    }

    pub(crate) fn insert_batch_to<I: Iterator<Item = T>>(
        &self,
        p: u32,
        items: &mut I,
    ) -> Result<usize, (usize, InsertError<T>)> {
        let part = &self.parts[p as usize];
        let mut inserted = 0;
        let mut events = Events::new();
        let mut st = part.state.lock();
        for item in items.by_ref() {
            if self.is_closed() && !st.closing {
                // Close has begun but not reached this partition yet.
                drop(st);
                self.emit(p, events);
                return Err((inserted, InsertError::Closed(item)));
            }
            let w = weigh(&item);
            match self.admit(part, &mut st, p, item, w, &mut events) {
                Ok(()) => inserted += 1,
                Err(e) => {
                    drop(st);
                    self.emit(p, events);
                    return Err((inserted, e));
                }
            }
            // Emit as we go, so an observer sees each drop of a long batch.
            if events.overflow || events.dropped.is_some() || events.garbage.is_some() {
                let ev = std::mem::replace(&mut events, Events::new());
                drop(st);
                self.emit(p, ev);
                st = part.state.lock();
            }
        }
        drop(st);
        self.emit(p, events);
        Ok(inserted)
    }

    /// Asks partition `p` to check for work: drains its rings and, for
    /// anything but a size hint, seals the open chunk so it flushes now.
    pub(crate) fn request(&self, p: u32, reason: FlushReason) {
        let part = &self.parts[p as usize];
        let mut st = part.state.lock();
        let room = self.room(&st);
        self.drain(&mut st, room);
        if reason != FlushReason::Size {
            st.seal_open(reason);
        }
        self.kick(&mut st, p);
    }

    /// `overflow: spill` for a producer handle whose ring is full: makes the
    /// spool the partition's tail (moving pending items there) and drains
    /// the rings into it. Returns whether the spool took the tail.
    pub(crate) fn spill_rings(&self, p: u32) -> bool {
        let mut st = self.parts[p as usize].state.lock();
        let tail = st.spool.as_ref().is_some_and(|sp| sp.tail);
        if !tail && !self.spill_pending(&mut st) {
            return false;
        }
        self.drain(&mut st, 0);
        self.kick(&mut st, p);
        true
    }

    pub(crate) fn overflowed(&self, p: u32) {
        let mut ev = Events::new();
        ev.overflow = true;
        self.emit(p, ev);
    }

    pub(crate) fn dropped_newest(&self, p: u32) {
        let mut ev = Events::new();
        ev.dropped = Some((1, DropReason::DropNewest));
        self.emit(p, ev);
    }

    /// `drop_oldest` for a producer handle: evicts the oldest item of its
    /// ring (under the partition lock, which every consumer access holds).
    pub(crate) fn evict_from_ring(&self, p: u32, ring: u64) -> Option<T> {
        let mut st = self.parts[p as usize].state.lock();
        let slot = st.rings.iter_mut().find(|r| r.id == ring)?;
        let item = slot.consumer.try_pop().ok()?;
        slot.evicted += 1;
        st.counts.dropped += 1;
        drop(st);
        let mut ev = Events::new();
        ev.dropped = Some((1, DropReason::DropOldest));
        self.emit(p, ev);
        Some(item)
    }

    /// A producer saw `closed` right after pushing. If close's final drain
    /// has run, whatever is left in its ring was pushed after it (every
    /// earlier push saw `closed == false` and so was drained): hand it back.
    pub(crate) fn take_back(&self, p: u32, ring: u64) -> Option<T> {
        let mut st = self.parts[p as usize].state.lock();
        if !st.final_drained {
            return None; // the final drain is still to come and will see it
        }
        let slot = st.rings.iter_mut().find(|r| r.id == ring)?;
        slot.consumer.try_pop().ok()
    }

    pub(crate) fn producer(&self) -> Producer<T> {
        let c = &self.config;
        let ring_cap = c.max_size.saturating_mul(2).clamp(64, 64 * 1024);
        let hint_every = c.max_size.min(ring_cap / 2).max(1);
        let (tx, rx) = spsc::channel(ring_cap);
        let p = self.next_partition();
        let id = self.next_ring.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(RingShared::default());
        self.parts[p as usize].state.lock().rings.push(RingSlot {
            id,
            consumer: rx,
            shared: Arc::clone(&shared),
            drained: 0,
            evicted: 0,
        });
        let me = self
            .me
            .upgrade()
            .expect("a live buffer hands out producers");
        Producer::new(me, p, id, tx, shared, hint_every)
    }

    fn backoff(&self, st: &mut PartState<T>, attempt: u32) -> Duration {
        let c = &self.config;
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        let full = c
            .retry_backoff
            .saturating_mul(factor)
            .min(c.retry_backoff_max);
        // "Equal jitter": somewhere in [full/2, full], so retries of many
        // partitions do not hit a recovering sink at the same instant.
        let half = full / 2;
        half + st.jitter.duration_upto(full - half)
    }

    /// Reads the spool's oldest records (up to `max_size`) as a batch.
    fn read_spool(&self, st: &mut PartState<T>) -> Option<Batch<T>> {
        let codec = self.codec.as_ref()?;
        let sp = st.spool.as_mut()?;
        // A read error leaves the records in place; the next trigger tries
        // again.
        let (items, _corrupt) = sp.read_batch(self.config.max_size, codec).ok()?;
        let records = sp.reading;
        let first_seq = sp.first_seq;
        if records == 0 {
            return None;
        }
        st.in_flight += records;
        let bytes = items.iter().map(weigh::<T>).sum();
        Some(Batch {
            chunk: Chunk::sealed(items, first_seq, bytes),
            reason: FlushReason::Replay,
            attempt: 0,
            from_spool: true,
        })
    }

    /// A batch failed `max_retries + 1` times under `overflow: spill`.
    /// Returns true when it is settled; false when it must keep being
    /// retried (at the capped backoff) to keep the order: a spooled batch
    /// stays at the head of its spool, and a batch from memory goes only to
    /// an empty spool (anything there is newer).
    ///
    /// While closing, the spool is parked instead: what it holds (and a
    /// failed batch from memory, appended even behind newer records, since
    /// keeping it beats keeping its place) is left for the next run, and
    /// counted as spooled for the waiting close.
    fn spill_failed(&self, st: &mut PartState<T>, batch: &mut Batch<T>, held: usize) -> bool {
        let (Some(codec), Some(sp)) = (&self.codec, st.spool.as_mut()) else {
            return false;
        };
        let closing = st.closing;
        if batch.from_spool {
            if !closing {
                return false;
            }
            sp.reading = 0;
            st.in_flight -= held;
            batch.chunk.items.clear();
            self.park_spool(st);
            return true;
        }
        if !sp.is_empty() && !closing {
            return false;
        }
        let n = sp
            .push_all(&batch.chunk.items, batch.chunk.first_seq, codec)
            .unwrap_or(0);
        sp.tail = false; // memory holds everything newer
        let total = batch.chunk.items.len();
        st.in_flight -= total;
        if n < total {
            // The spool refused part of it (full or failing): that part is
            // given up, counted and reported.
            let lost = total - n;
            st.counts.dropped += lost as u64;
            st.resolve(
                batch.chunk.first_seq + n as u64,
                lost as u64,
                Outcome::Dropped,
            );
        }
        batch.chunk.items.clear();
        if closing {
            self.park_spool(st);
        }
        true
    }

    /// Stops reading the spool for the rest of this run and counts what it
    /// holds as spooled for the waiting marks (it is never delivered in this
    /// run, so nothing is counted twice).
    fn park_spool(&self, st: &mut PartState<T>) {
        let Some(sp) = st.spool.as_mut() else { return };
        if sp.parked {
            return;
        }
        sp.parked = true;
        let (first, len) = (sp.first_seq, sp.spool.len());
        st.resolve(first, len, Outcome::Spooled);
    }

    /// One flush of partition `p`: take the front ready batch under the
    /// lock, call the sink without it, account the result under it again.
    fn flush_one(&self, p: u32) {
        let part = &self.parts[p as usize];
        let cfg = &self.config;
        let mut st = part.state.lock();
        let room = self.room(&st);
        self.drain(&mut st, room);
        let batch = match st.next_source() {
            Some(Source::Retry) => st.take_retry(),
            Some(Source::Memory) => st.take_memory(),
            Some(Source::Spool) => self.read_spool(&mut st),
            None => None,
        };
        let Some(mut batch) = batch else {
            // Nothing ready; or a batch waits out its backoff, and then the
            // retry timer owns the partition (`running` stays set).
            if st.retry.is_none() {
                st.running = false;
            }
            return;
        };
        // A spooled batch holds its records until delivered: count them all
        // in flight, decodable or not.
        let held = if batch.from_spool {
            st.spool.as_ref().map_or(0, |sp| sp.reading)
        } else {
            batch.chunk.items.len()
        };
        drop(st);

        let n = batch.chunk.items.len();
        let first_seq = batch.chunk.first_seq;
        self.observe(|obs| {
            obs.on_flush_start(&FlushStart {
                buffer: &self.name,
                partition: p,
                reason: batch.reason,
                attempt: batch.attempt,
                items: n,
            })
        });
        let started = Instant::now();
        let ctx = FlushContext {
            buffer: &self.name,
            partition: p,
            reason: batch.reason,
            attempt: batch.attempt,
            deadline: started + cfg.flush_timeout,
            flush_meta: cfg.flush_meta.as_deref(),
            batch_bytes: batch.chunk.bytes,
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.sink.flush(&batch.chunk.items, &ctx)
        }))
        .unwrap_or_else(|payload| {
            Err(SinkError::msg(format!(
                "sink panicked: {}",
                panic_message(payload.as_ref())
            )))
        });
        let elapsed = started.elapsed();
        let timed_out = elapsed > cfg.flush_timeout;
        self.observe(|obs| {
            let msg = result.as_ref().err().map(ToString::to_string);
            obs.on_flush_end(&FlushEnd {
                buffer: &self.name,
                partition: p,
                reason: batch.reason,
                attempt: batch.attempt,
                items: n,
                duration: elapsed,
                error: msg.as_deref(),
                timed_out,
            })
        });

        let mut events = Events::new();
        let mut failed_items = None;
        let mut st = part.state.lock();
        st.latency.record(elapsed);
        if timed_out {
            st.counts.flush_timeouts += 1;
        }
        let spilling = self.codec.is_some() && st.spool.is_some();
        match result {
            Ok(()) => {
                st.counts.batches += 1;
                st.counts.delivered += n as u64;
                st.in_flight -= held;
                if batch.from_spool {
                    let corrupt = (held - n) as u64;
                    st.counts.dropped += corrupt;
                    if let Some(sp) = st.spool.as_mut() {
                        // A failed remove leaves the records to be sent
                        // again: at least once, never lost.
                        let _ = sp.remove_read();
                    }
                    if corrupt > 0 {
                        events.dropped = Some((corrupt as usize, DropReason::Corrupt));
                    }
                }
                st.resolve(first_seq, held as u64, Outcome::Delivered);
                st.recycle(batch.chunk.items);
            }
            Err(_) => {
                st.counts.failed_flushes += 1;
                // Under spill a batch is never dropped: it goes to the spool,
                // or is retried (at the capped backoff) until it can go.
                let retry = batch.attempt < cfg.max_retries
                    || (spilling && !self.spill_failed(&mut st, &mut batch, held));
                if retry {
                    st.counts.retries += 1;
                    let backoff = self.backoff(&mut st, batch.attempt);
                    batch.attempt += 1;
                    let attempt = batch.attempt;
                    st.retry = Some(batch);
                    st.retry_due = false;
                    st.retry_gen += 1;
                    let gen = st.retry_gen;
                    let at = self.engine.handle.inner.now() + backoff;
                    self.arm(at, p, TimerKind::Retry, gen);
                    drop(st);
                    self.observe(|obs| {
                        obs.on_retry(&RetryEvent {
                            buffer: &self.name,
                            partition: p,
                            attempt,
                            backoff,
                            items: n,
                        })
                    });
                    return;
                }
                if !spilling {
                    st.counts.dropped += n as u64;
                    st.in_flight -= n;
                    st.resolve(first_seq, n as u64, Outcome::Dropped);
                    events.dropped = Some((n, DropReason::SinkFailed));
                    failed_items = Some(batch.chunk.items);
                }
            }
        }
        self.restart_interval(&mut st, p);
        let room = self.room(&st);
        self.drain(&mut st, room);
        let more = st.has_ready();
        if more {
            self.schedule(p); // `running` stays set: the queue owns it
        } else {
            st.running = false;
        }
        if st.waiters > 0 {
            part.changed.notify_all();
        }
        drop(st);
        self.emit(p, events);
        drop(failed_items);
    }

    fn on_interval(&self, p: u32) {
        let mut st = self.parts[p as usize].state.lock();
        st.armed = None;
        if st.closing {
            return;
        }
        if let Some(sp) = st.spool.as_mut() {
            // The spool owns no thread; `spool_sync: interval` syncs here.
            let _ = sp.spool.sync_if_due();
        }
        let now = self.engine.handle.inner.now();
        if now < st.next_deadline {
            // A flush restarted the interval since this entry was armed.
            st.armed = Some(st.next_deadline);
            let at = st.next_deadline;
            self.arm(at, p, TimerKind::Interval, 0);
            return;
        }
        let room = self.room(&st);
        self.drain(&mut st, room);
        st.seal_open(FlushReason::Time);
        self.kick(&mut st, p);
        self.restart_interval(&mut st, p);
    }

    fn on_retry(&self, p: u32, gen: u64) {
        let mut st = self.parts[p as usize].state.lock();
        if st.retry.is_some() && st.retry_gen == gen {
            st.retry_due = true;
            // `running` is still set by the failed flush: we own the partition.
            self.schedule(p);
        }
    }

    /// Leaves a mark in every partition for what it holds now (rings
    /// drained, open chunk sealed with `reason`) and kicks the flushes.
    fn mark_all(&self, reason: FlushReason, closing: bool) -> Vec<(u32, u64)> {
        let mut marks = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            let p = i as u32;
            let mut st = part.state.lock();
            if closing {
                st.closing = true;
            }
            self.drain(&mut st, usize::MAX);
            if closing {
                st.final_drained = true;
            }
            st.seal_open(reason);
            if st.unresolved() > 0 {
                marks.push((p, st.add_mark()));
            }
            self.kick(&mut st, p);
            if closing && st.waiters > 0 {
                part.changed.notify_all();
            }
        }
        marks
    }

    /// Waits until mark `id` of partition `p` is resolved or `deadline`
    /// passes; returns it and whether it timed out.
    fn wait_mark(&self, p: u32, id: u64, deadline: Instant) -> (Option<Mark>, bool) {
        let part = &self.parts[p as usize];
        loop {
            self.assist();
            let mut st = part.state.lock();
            if let Some(m) = st.take_mark_if_done(id) {
                return (Some(m), false);
            }
            if Instant::now() >= deadline {
                return (st.remove_mark(id), true);
            }
            st.waiters += 1;
            // A manual engine progresses only on this thread: look again soon.
            let until = if self.is_manual() {
                deadline.min(Instant::now() + Duration::from_millis(1))
            } else {
                deadline
            };
            part.changed.wait_until(&mut st, until);
            st.waiters -= 1;
        }
    }

    fn collect(&self, marks: Vec<(u32, u64)>, deadline: Instant) -> (FlushReport, bool) {
        let mut report = FlushReport {
            partitions: Vec::new(),
        };
        let mut timed_out = false;
        for (p, id) in marks {
            let (mark, to) = self.wait_mark(p, id, deadline);
            timed_out |= to;
            if let Some(m) = mark {
                report.partitions.push(PartitionFlush {
                    partition: p,
                    delivered: m.delivered,
                    dropped: m.dropped,
                    dumped: m.dumped,
                    spooled: m.spooled,
                    undelivered: m.remaining,
                });
            }
        }
        (report, timed_out)
    }

    pub(crate) fn flush(&self) {
        for p in 0..self.partitions() {
            self.request(p, FlushReason::Manual);
        }
    }

    pub(crate) fn sync_flush(&self, timeout: Duration) -> Result<FlushReport, SyncFlushError> {
        if self.is_closed() {
            return Err(SyncFlushError::Closed);
        }
        let deadline = Instant::now() + timeout;
        let marks = self.mark_all(FlushReason::Manual, false);
        let (report, timed_out) = self.collect(marks, deadline);
        if timed_out {
            Err(SyncFlushError::Timeout(report))
        } else {
            Ok(report)
        }
    }

    pub(crate) fn dump(&self) -> Vec<T> {
        let mut out = Vec::new();
        for part in &self.parts {
            let mut st = part.state.lock();
            self.drain(&mut st, usize::MAX);
            st.take_pending(&mut out);
            if st.waiters > 0 {
                part.changed.notify_all();
            }
        }
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.parts
            .iter()
            .map(|part| {
                let st = part.state.lock();
                st.pending + st.in_flight + st.ring_items() as usize
            })
            .sum()
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        let mut all = LatencyHistogram::default();
        for (i, part) in self.parts.iter().enumerate() {
            let st = part.state.lock();
            let counts = st.counts();
            stats.counts.add(&counts);
            all.merge(&st.latency);
            stats.partitions.push(PartitionStats {
                partition: i as u32,
                counts,
                latency: st.latency.summary(),
            });
        }
        stats.latency = all.summary();
        stats
    }

    /// At the end of close, with `overflow: spill`: whatever is still in
    /// memory and not with the sink (a batch waiting for its retry, pending
    /// items) goes to the spool, which is then synced and closed, so the next
    /// buffer on the same `spool_dir` delivers it. A batch still with a sink
    /// that never returned stays with it; if that sink returns later, its
    /// records are delivered again by the next run (at least once).
    fn settle_spools(&self) {
        let Some(codec) = &self.codec else { return };
        for (i, part) in self.parts.iter().enumerate() {
            let mut st = part.state.lock();
            if st.spool.is_none() {
                continue;
            }
            let mut lost = 0u64;
            if let Some(batch) = st.retry.take() {
                st.retry_due = false;
                st.running = false;
                let Some(sp) = st.spool.as_mut() else {
                    continue;
                };
                if batch.from_spool {
                    // Its records never left the spool.
                    let held = sp.reading;
                    sp.reading = 0;
                    st.in_flight -= held;
                } else {
                    let n = batch.chunk.items.len();
                    let kept = sp.push_all(&batch.chunk.items, batch.chunk.first_seq, codec);
                    st.in_flight -= n;
                    lost += (n - kept.unwrap_or(0)) as u64;
                }
            }
            for chunk in st.take_chunks() {
                let Some(sp) = st.spool.as_mut() else { break };
                let kept = sp.push_all(&chunk.items, chunk.first_seq, codec);
                lost += (chunk.items.len() - kept.unwrap_or(0)) as u64;
            }
            if let Some(sp) = st.spool.as_mut() {
                let _ = sp.spool.flush();
                let _ = sp.spool.close();
            }
            st.counts.dropped += lost;
            drop(st);
            if lost > 0 {
                let mut ev = Events::new();
                ev.dropped = Some((lost as usize, DropReason::Closed));
                self.emit(i as u32, ev);
            }
        }
    }

    pub(crate) fn close(&self, timeout: Duration) -> CloseReport {
        let deadline = Instant::now() + timeout;
        self.begin_close();
        self.finish_close(deadline)
    }
}

impl<T: Weigh + Send + 'static> Task for Core<T> {
    fn run(&self, partition: u32) {
        self.flush_one(partition);
    }

    fn fire(&self, partition: u32, kind: TimerKind, gen: u64) {
        match kind {
            TimerKind::Interval => self.on_interval(partition),
            TimerKind::Retry => self.on_retry(partition, gen),
        }
    }
}

impl<T: Weigh + Send + 'static> Closable for Core<T> {
    fn begin_close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // The heavy half of the pair whose light half the producer handle's
        // push runs (the ring's publication fence): a push this drain does
        // not see is one whose producer will see `closed` and take its item
        // back. Close is rare, so it pays the process-wide barrier.
        heavy_fence();
        let marks = self.mark_all(FlushReason::Close, true);
        *self.close_marks.lock() = marks;
    }

    fn finish_close(&self, deadline: Instant) -> CloseReport {
        let mut done = self.close_report.lock();
        if let Some(r) = done.as_ref() {
            return r.clone();
        }
        let marks = std::mem::take(&mut *self.close_marks.lock());
        let (flushed, timed_out) = self.collect(marks, deadline);
        self.settle_spools();
        let counts = self.stats().counts;
        let report = CloseReport {
            delivered: flushed.delivered(),
            dropped: flushed.dropped(),
            undelivered: flushed.undelivered(),
            spooled: counts.spooled,
            timed_out,
            counts,
        };
        self.engine.unregister(&self.name, self.me.as_ptr().cast());
        if self.private_engine {
            self.engine.handle.inner.shutdown_threads(deadline);
        }
        *done = Some(report.clone());
        report
    }
}
