//! The lock-free producer path: a per-thread handle that pushes into its own
//! SPSC ring, which the partition's flusher drains.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::Overflow;
use crate::observer::DropReason;
use crate::ring::spsc;
use crate::ring::{TryPushError, WaitError};
use crate::sink::FlushReason;
use crate::sync::atomic::Ordering;
use crate::sync::rc::Arc;
use crate::weigh::Weigh;

use super::error::InsertError;
use super::partition::{weigh, RingShared};
use super::shared::{Events, Shared};

/// A handle for one thread that inserts into a [`Buffer`](super::Buffer)
/// without taking a lock: items go into the handle's own lock-free ring, and
/// the partition's flusher drains it. Items from one handle reach the sink
/// in the order they were inserted.
///
/// Every `max_size` items the handle asks a flusher to drain its ring (the
/// handle's thread does not drain it itself, unless the engine is manual);
/// the flush interval covers the rest. Dropping the handle is fine at any
/// moment: what it holds is still delivered.
///
/// ```
/// use spillway::{Buffer, BufferConfig, FlushContext, SinkError};
/// let buf = Buffer::new(BufferConfig::new().max_size(64), |b: &[u64], _: &FlushContext<'_>| {
///     Ok::<(), SinkError>(())
/// })
/// .unwrap();
/// let mut p = buf.producer();
/// for i in 0..1000 {
///     p.insert(i).unwrap();
/// }
/// drop(p);
/// let report = buf.close(std::time::Duration::from_secs(5));
/// assert_eq!(report.counts.delivered, 1000);
/// ```
pub struct Producer<T> {
    core: Arc<Shared<T>>,
    partition: u32,
    id: u64,
    ring: spsc::Producer<T>,
    shared: Arc<RingShared>,
    pushed: u64,
    refused: u64,
    since_hint: usize,
    hint_every: usize,
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("buffer", &self.core.name)
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

impl<T: Weigh + Send + 'static> Producer<T> {
    /// The partition this handle feeds.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Inserts one item without taking a lock (unless the ring is full and
    /// the overflow policy needs one).
    ///
    /// # Errors
    /// As [`Buffer::insert`](super::Buffer::insert): `Closed` after close,
    /// `Full` under `reject`/`drop_newest` (and `spill` when the spool is
    /// full or failing), `Timeout` under `block`, or `spill` while the sink
    /// is healthy, when the ring stayed full for `block_timeout`. The item
    /// comes back inside.
    #[inline]
    pub fn insert(&mut self, item: T) -> Result<(), InsertError<T>> {
        // The common case inlined into the caller: open, room in the ring,
        // no observer asking for inserts, no drain to ask for. The rest is
        // out of line, so the call site stays small and keeps its
        // registers; an out-of-line `insert` spent much of its time
        // saving them.
        // `is_full`, not `slots() == 0`: it reads the flusher's position
        // (a line the flusher writes on every drain) only when the position
        // it read last says the ring is full, not on every insert.
        if self.core.wants_inserts
            || self.since_hint + 1 >= self.hint_every
            || self.core.is_closed()
            || self.ring.is_full()
        {
            return self.insert_general(item);
        }
        self.push_counted(item)?;
        self.since_hint += 1;
        Ok(())
    }

    /// Every case of [`insert`](Self::insert): a full ring, an observer, a
    /// drain to ask for, a closed buffer.
    #[cold]
    #[inline(never)]
    fn insert_general(&mut self, item: T) -> Result<(), InsertError<T>> {
        if self.core.is_closed() {
            return Err(InsertError::Closed(item));
        }
        if self.ring.is_full() {
            if let Err(e) = self.make_room() {
                return Err(e.with_item(item));
            }
        }
        // Weighed only for an observer that asked for inserts.
        let insert_event = self.core.wants_inserts.then(|| weigh(&item));
        self.push_counted(item)?;
        if let Some(bytes) = insert_event {
            self.core.emit_insert(self.partition, bytes);
        }
        self.since_hint += 1;
        if self.since_hint >= self.hint_every {
            self.since_hint = 0;
            self.core.nudge(self.partition);
        }
        Ok(())
    }

    /// Counts `item` and pushes it into the ring, which has room.
    #[inline(always)]
    fn push_counted(&mut self, item: T) -> Result<(), InsertError<T>> {
        // Count before queueing: whoever sees the item also sees the count.
        self.pushed += 1;
        self.shared.set_pushed(self.pushed);
        if let Err(TryPushError::Full(item) | TryPushError::Closed(item)) = self.ring.try_push(item)
        {
            return Err(self.uncount(item));
        }
        // No fence of our own here: `try_push` published the tail and then
        // ran the light half of the ring's fence pair (the publisher fences
        // before it looks for a sleeping consumer). It pairs with the heavy
        // half in close (`Shared::begin_close`): either close's drain sees our
        // item in the ring, or we see `closed` below.
        if self.core.is_closed() {
            return self.after_close_race();
        }
        Ok(())
    }

    /// The ring refused an item it had room for. Unreachable while the
    /// partition keeps the consumer (it drops it only after this handle is
    /// gone), but never lose the count.
    #[cold]
    #[inline(never)]
    fn uncount(&mut self, item: T) -> InsertError<T> {
        self.pushed -= 1;
        self.shared.set_pushed(self.pushed);
        InsertError::Closed(item)
    }

    /// Close started while we pushed. If its final drain already ran, our
    /// item may still be in the ring: take it back and report `Closed`.
    #[cold]
    #[inline(never)]
    fn after_close_race(&mut self) -> Result<(), InsertError<T>> {
        match self.core.take_back(self.partition, self.id) {
            Some(item) => {
                self.pushed -= 1;
                self.shared.set_pushed(self.pushed);
                Err(InsertError::Closed(item))
            }
            None => Ok(()),
        }
    }

    /// The ring is full: apply the overflow policy until there is a slot.
    fn make_room(&mut self) -> Result<(), InsertError<()>> {
        self.core.overflowed(self.partition);
        // Whatever the policy, the flusher should drain us now.
        self.core.request(self.partition, FlushReason::Size);
        match self.core.config.overflow {
            Overflow::Block => self.wait_for_room(),
            Overflow::DropNewest => {
                self.refused += 1;
                self.shared.set_refused(self.refused);
                self.core
                    .emit(self.partition, Events::dropped(1, DropReason::DropNewest));
                Err(InsertError::Full(()))
            }
            Overflow::DropOldest => {
                if let Some(old) = self.core.evict_from_ring(self.partition, self.id) {
                    drop(old);
                    return Ok(());
                }
                // The flusher emptied the ring meanwhile.
                if self.ring.slots() > 0 {
                    Ok(())
                } else {
                    Err(InsertError::Full(()))
                }
            }
            // A healthy sink is backpressure: wait as `block` does. Spill
            // only while it fails.
            Overflow::Spill if !self.core.sink_failing(self.partition) => self.wait_for_room(),
            Overflow::Spill => {
                if self.core.spill_rings(self.partition) && self.ring.slots() > 0 {
                    Ok(())
                } else {
                    // The spool is full or failing: refuse rather than block
                    // a producer that chose the lock-free path.
                    Err(InsertError::Full(()))
                }
            }
            Overflow::Reject => Err(InsertError::Full(())),
        }
    }

    /// `block`: waits until the ring has a slot, at most `block_timeout`.
    fn wait_for_room(&mut self) -> Result<(), InsertError<()>> {
        let deadline = Instant::now() + self.core.config.block_timeout;
        loop {
            self.core.engine.assist();
            if self.ring.slots() > 0 {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(InsertError::Timeout(()));
            }
            // A manual engine drains only when someone runs it.
            let wait = if self.core.engine.is_manual() {
                left.min(Duration::from_millis(1))
            } else {
                left
            };
            match self.ring.wait_for_slots(1, Some(wait)) {
                Ok(()) => return Ok(()),
                Err(WaitError::Timeout) => {}
                Err(WaitError::Closed) => return Err(InsertError::Closed(())),
            }
            if self.core.is_closed() {
                return Err(InsertError::Closed(()));
            }
        }
    }
}

/// The partition's side of the producer handles.
impl<T: Weigh + Send + 'static> Shared<T> {
    /// A new handle with its own ring, on the next partition (round-robin).
    pub(crate) fn producer(self: &Arc<Self>) -> Producer<T> {
        let c = &self.config;
        let ring_cap = c.max_size.saturating_mul(2).clamp(64, 64 * 1024);
        let hint_every = c.max_size.min(ring_cap / 2).max(1);
        let (tx, rx) = spsc::channel(ring_cap);
        let partition = self.next_partition();
        let id = self.next_ring.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(RingShared::default());
        self.parts[partition as usize]
            .state
            .lock()
            .add_ring(id, rx, Arc::clone(&shared));
        Producer {
            core: Arc::clone(self),
            partition,
            id,
            ring: tx,
            shared,
            pushed: 0,
            refused: 0,
            since_hint: 0,
            hint_every,
        }
    }

    /// `overflow: spill` for a producer handle whose ring is full: makes the
    /// spool the partition's tail (moving pending items there) and drains
    /// the rings into it. Returns whether the spool took the tail.
    fn spill_rings(&self, p: u32) -> bool {
        let Some(codec) = &self.codec else {
            return false;
        };
        let mut st = self.parts[p as usize].state.lock();
        if !st.spool_tail() && !st.spill_pending(codec) {
            return false;
        }
        self.drain(&mut st, 0);
        self.kick(&mut st, p);
        true
    }

    /// Whether the sink's last attempt on partition `p` failed.
    fn sink_failing(&self, p: u32) -> bool {
        self.parts[p as usize].state.lock().sink_failing()
    }

    fn overflowed(&self, p: u32) {
        let mut ev = Events::new();
        ev.overflow = true;
        self.emit(p, ev);
    }

    /// `drop_oldest` for a producer handle: evicts the oldest item of its
    /// ring (under the partition lock, which every consumer access holds).
    fn evict_from_ring(&self, p: u32, ring: u64) -> Option<T> {
        let item = self.parts[p as usize].state.lock().evict_from_ring(ring)?;
        self.emit(p, Events::dropped(1, DropReason::DropOldest));
        Some(item)
    }

    /// A producer saw `closed` right after pushing. If close's final drain
    /// has run, whatever is left in its ring was pushed after it (every
    /// earlier push saw `closed == false` and so was drained): hand it back.
    fn take_back(&self, p: u32, ring: u64) -> Option<T> {
        let mut st = self.parts[p as usize].state.lock();
        if !st.flow().final_drained {
            return None; // the final drain is still to come and will see it
        }
        st.take_back(ring)
    }
}
