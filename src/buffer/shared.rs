//! The state a buffer's handles, producer handles and the engine share: its
//! partitions, and the plumbing every protocol uses (routing, scheduling,
//! observer calls).
//!
//! The protocols live beside it, one file each: admission and overflow
//! (`admit.rs`), flush and retry (`flush.rs`), timers (`timers.rs`), spill
//! (`spill.rs`), marks and close (`marks.rs`), producer handles
//! (`producer.rs`).
//!
//! Lock order: a partition's mutex, then the engine's queue or timer lock
//! (scheduling and arming happen under the partition lock). The sink and the
//! observer are always called with no lock held.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::codec::SpillCodec;
use crate::config::BufferConfig;
use crate::engine::{Engine, Task, TimerKind};
use crate::observer::{
    DropEvent, DropReason, InsertEvent, Observer, OverflowEvent, SpillEvent, SpoolErrorEvent,
};
use crate::ring::fence_lock::{Event, FenceLock};
use crate::sink::Sink;
use crate::stats::{CloseReport, LatencyHistogram, PartitionStats, Stats};
use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sync::rc::{Arc, Weak};
use crate::sync::Mutex;
use crate::weigh::Weigh;

use super::partition::{LendFn, Limits, Note, Notes, PartSpool, PartState};

/// One partition: its state and the event its waiters sleep on. The lock is
/// a `FenceLock` (`ring/fence_lock.rs`): every `insert` takes it, and its
/// unlock is a store where a `parking_lot` mutex's is a compare-and-swap.
pub(crate) struct Partition<T> {
    pub(super) state: FenceLock<PartState<T>>,
    /// Signalled when room is freed, a mark may be resolved, or close begins,
    /// and only when `waiters > 0`.
    pub(super) changed: Event,
    /// The spool's events for the observer, noted under the lock.
    pub(super) notes: Arc<Notes>,
}

impl<T> Partition<T> {
    /// Wakes the partition's waiters, if any.
    pub(super) fn notify(&self, st: &PartState<T>) {
        if st.flow().waiters > 0 {
            self.changed.notify_all();
        }
    }
}

/// Observer events gathered under the lock, emitted after it is released.
pub(super) struct Events<T> {
    pub(super) overflow: bool,
    /// Items given up, by reason, in the order it happened (an insert under
    /// `drop_oldest` may evict some, then find nothing more to evict).
    pub(super) dropped: Vec<(usize, DropReason)>,
    /// Evicted or failed items, dropped outside the lock (their `Drop` is
    /// user code).
    pub(super) garbage: Vec<T>,
}

impl<T> Events<T> {
    pub(super) fn new() -> Self {
        Self {
            overflow: false,
            dropped: Vec::new(),
            garbage: Vec::new(),
        }
    }

    /// Events of `count` items dropped for `reason`.
    pub(super) fn dropped(count: usize, reason: DropReason) -> Self {
        let mut ev = Self::new();
        if count > 0 {
            ev.dropped.push((count, reason));
        }
        ev
    }

    /// Whether there is anything to emit.
    pub(super) fn any(&self) -> bool {
        self.overflow || !self.dropped.is_empty() || !self.garbage.is_empty()
    }
}

/// The shared state of one buffer.
pub(crate) struct Shared<T> {
    pub(super) name: String,
    pub(super) config: BufferConfig,
    /// The chunk sizes, from `config`.
    pub(super) limits: Limits,
    pub(super) sink: Box<dyn Sink<T>>,
    pub(super) observer: Option<Arc<dyn Observer>>,
    /// The observer asked for insert events: asked once, at build, so the
    /// insert path pays one predictable branch when it did not.
    pub(super) wants_inserts: bool,
    /// Present with `overflow: spill`: how items become spool records.
    pub(super) codec: Option<SpillCodec<T>>,
    /// Present with `retry_abandoned_batches`: how a sink call lends its
    /// items to the books, so an abandoned call's batch can be copied.
    pub(super) lend: Option<LendFn<T>>,
    pub(super) engine: Engine,
    /// The engine is this buffer's own: stopped when it closes.
    pub(super) private_engine: bool,
    /// Each on cache lines of its own: a partition's lock word and hot
    /// fields are written on every insert into it, and two partitions on
    /// one line would make threads with different home partitions fight
    /// over it.
    pub(super) parts: Vec<CachePadded<Partition<T>>>,
    pub(super) closed: AtomicBool,
    pub(super) me: Weak<Shared<T>>,
    next_partition: AtomicUsize,
    pub(super) next_ring: AtomicU64,
    pub(super) close_marks: Mutex<Vec<(u32, u64)>>,
    pub(super) close_report: Mutex<Option<CloseReport>>,
}

impl<T> Shared<T> {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
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

    /// The calling thread's home partition, where `insert` and
    /// `insert_batch` put its items: so one thread's items stay in order
    /// (one partition) and threads spread over the partitions without a
    /// shared counter touched per item (see [`home_slot`]).
    pub(crate) fn home_partition(&self) -> u32 {
        if self.parts.len() == 1 {
            return 0;
        }
        (home_slot() % self.parts.len()) as u32
    }
}

/// The calling thread's slot: 0 for the first thread that inserts into any
/// buffer, 1 for the next, and so on, fixed for the thread's life. Taken
/// modulo a buffer's partitions it gives each thread a home partition,
/// assigned round-robin in the order threads first insert; a thread then
/// pays one thread-local read per insert and touches the shared counter
/// once in its life.
///
/// The counter is a process-wide `static` and hands out ids only (it guards
/// no data), so it is std's atomic in every configuration, like `sync::rc`.
fn home_slot() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

    static NEXT_SLOT: StdAtomicUsize = StdAtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
    }
    SLOT.with(|slot| {
        slot.get().unwrap_or_else(|| {
            let mine = NEXT_SLOT.fetch_add(1, StdOrdering::Relaxed);
            slot.set(Some(mine));
            mine
        })
    })
}

impl<T: Weigh + Send + 'static> Shared<T> {
    /// The shared state, with one partition per spool slot (`None`: no
    /// spool); then every partition starts its interval and replays what an
    /// earlier run spooled.
    pub(super) fn new(
        config: BufferConfig,
        sink: Box<dyn Sink<T>>,
        observer: Option<Arc<dyn Observer>>,
        spill: Option<(SpillCodec<T>, Vec<PartSpool>)>,
        lend: Option<LendFn<T>>,
        engine: Engine,
        private_engine: bool,
    ) -> Arc<Self> {
        let now = engine.now();
        let (codec, mut spools) = match spill {
            Some((codec, spools)) => (Some(codec), spools.into_iter().map(Some).collect()),
            None => (None, Vec::new()),
        };
        spools.resize_with(config.partitions, || None);
        let shared = Arc::new_cyclic(|me| Shared {
            name: config.name.clone(),
            limits: Limits {
                max_size: config.max_size,
                jitter: config.max_size_jitter,
                max_bytes: config.max_bytes,
            },
            parts: spools
                .into_iter()
                .map(|spool| {
                    let state = PartState::new(now, spool);
                    CachePadded::new(Partition {
                        notes: state.notes(),
                        state: FenceLock::new(state),
                        changed: Event::new(),
                    })
                })
                .collect(),
            wants_inserts: observer.as_ref().is_some_and(|o| {
                catch_unwind(AssertUnwindSafe(|| o.wants_inserts())).unwrap_or(false)
            }),
            config,
            sink,
            observer,
            codec,
            lend,
            engine,
            private_engine,
            closed: AtomicBool::new(false),
            me: me.clone(),
            next_partition: AtomicUsize::new(0),
            next_ring: AtomicU64::new(0),
            close_marks: Mutex::new(Vec::new()),
            close_report: Mutex::new(None),
        });
        for p in 0..shared.parts.len() {
            let mut st = shared.parts[p].state.lock();
            shared.restart_interval(&mut st, p as u32);
            shared.kick(&mut st, p as u32); // replay what an earlier run spooled
        }
        shared
    }

    /// Queues a flush of partition `p` (whose state is `st`) on the engine.
    /// A partition fed by producer handles asks its flusher to poll for the
    /// next run before sleeping: a handle's ring holds two batches, so a
    /// drain that comes late stalls the handle.
    pub(super) fn schedule(&self, st: &PartState<T>, p: u32) {
        if let Some(me) = self.me.upgrade() {
            self.engine.schedule(me, p, st.has_rings());
        }
    }

    /// Arms a deadline of partition `p` on the engine's timer.
    pub(super) fn arm(&self, at: Instant, p: u32, kind: TimerKind, gen: u64) {
        let me: Weak<Shared<T>> = self.me.clone();
        let task: Weak<dyn Task> = me;
        self.engine.arm(at, task, p, kind, gen);
    }

    /// Free room under `capacity` (what ring draining may move in).
    pub(super) fn room(&self, st: &PartState<T>) -> usize {
        self.config.capacity.saturating_sub(st.held())
    }

    /// Moves producer-ring items into the partition (up to `room`): into
    /// memory, or into the spool while the partition's newest items are
    /// there. Returns whether a chunk was sealed by size.
    pub(super) fn drain(&self, st: &mut PartState<T>, room: usize) -> bool {
        if !st.has_rings() {
            return false;
        }
        if st.flow().final_drained {
            // Whatever a ring holds after close's final drain was pushed
            // after it, by a producer that will see `closed` and take it back
            // (`take_back`). Draining it here would put it in an open chunk
            // no flush takes any more, and let its producer return `Ok`.
            return false;
        }
        match &self.codec {
            Some(codec) if st.spool_tail() => st.drain_rings_to_spool(codec, self.limits),
            _ => st.drain_rings(room, self.limits),
        }
    }

    /// Puts the partition in the pool's queue if it has something ready and
    /// no flush owns it yet. Returns whether it did.
    pub(super) fn kick(&self, st: &mut PartState<T>, p: u32) -> bool {
        if st.has_ready() && !st.flow().running {
            st.flow_mut().running = true;
            self.schedule(st, p);
            return true;
        }
        false
    }

    /// Calls the observer, if any. A panicking observer is caught and
    /// ignored: telemetry must never wedge a flush or an insert.
    pub(super) fn observe(&self, f: impl FnOnce(&dyn Observer)) {
        if let Some(obs) = &self.observer {
            let _ = catch_unwind(AssertUnwindSafe(|| f(&**obs)));
        }
    }

    /// Emits what was gathered under the lock (call without it).
    ///
    /// Inlined down to two checks, since every insert ends here and almost
    /// never has anything to say.
    #[inline]
    pub(super) fn emit(&self, p: u32, events: Events<T>) {
        if events.any() {
            self.emit_events(p, events);
        }
        self.emit_notes(p);
    }

    #[cold]
    fn emit_events(&self, p: u32, events: Events<T>) {
        if events.overflow {
            self.observe(|obs| {
                obs.on_overflow(&OverflowEvent {
                    buffer: &self.name,
                    partition: p,
                    policy: self.config.overflow,
                })
            });
        }
        for &(count, reason) in &events.dropped {
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

    /// Emits what partition `p`'s spool noted (call without its lock): one
    /// relaxed load when nothing was.
    #[inline]
    pub(super) fn emit_notes(&self, p: u32) {
        if self.parts[p as usize].notes.pending() {
            self.emit_noted(p);
        }
    }

    #[cold]
    fn emit_noted(&self, p: u32) {
        let notes = self.parts[p as usize].notes.take();
        for note in notes {
            match note {
                Note::Spill {
                    items,
                    bytes,
                    reason,
                } => self.observe(|obs| {
                    obs.on_spill(&SpillEvent {
                        buffer: &self.name,
                        partition: p,
                        items,
                        bytes,
                        reason,
                    })
                }),
                Note::SpoolError { operation, error } => self.observe(|obs| {
                    obs.on_spool_error(&SpoolErrorEvent {
                        buffer: &self.name,
                        partition: p,
                        operation,
                        error: &error,
                    })
                }),
            }
        }
    }

    /// Tells an observer that wants it of an insert into partition `p`.
    /// The caller checks `wants_inserts` first: the one branch an insert
    /// pays without such an observer.
    pub(super) fn emit_insert(&self, p: u32, bytes: u64) {
        self.observe(|obs| {
            obs.on_insert(&InsertEvent {
                buffer: &self.name,
                partition: p,
                bytes,
            })
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(|part| part.state.lock().len()).sum()
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        let mut all = LatencyHistogram::default();
        for (i, part) in self.parts.iter().enumerate() {
            let st = part.state.lock();
            let counts = st.counts();
            stats.counts.add(&counts);
            all.merge(st.latency());
            stats.partitions.push(PartitionStats {
                partition: i as u32,
                counts,
                latency: st.latency().summary(),
            });
        }
        stats.latency = all.summary();
        stats
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::buffer::shared::home_slot;

    #[test]
    fn a_thread_keeps_its_home_slot_and_threads_get_distinct_ones() {
        let mine = home_slot();
        assert_eq!(home_slot(), mine);
        let other = std::thread::spawn(|| (home_slot(), home_slot()))
            .join()
            .unwrap();
        assert_eq!(other.0, other.1);
        assert_ne!(other.0, mine);
    }
}
