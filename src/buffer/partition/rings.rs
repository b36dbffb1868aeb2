//! The producer rings of one partition: each [`Producer`](crate::Producer)
//! handle pushes into its own SPSC ring, and the partition drains it under
//! its lock. The handle publishes its counts in a [`RingShared`], so the
//! partition's books include items still in the rings.

use crate::ring::spsc;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::rc::Arc;

use super::pending::{Limits, Pending};

/// Counters a producer handle publishes for the partition. Each has a single
/// writer (the handle), so publishing is a plain `Release` store.
#[derive(Default)]
pub(crate) struct RingShared {
    /// Items counted as inserted through the ring. Counted *before* the item
    /// is queued, so `pushed - drained` never underflows.
    pushed: AtomicU64,
    /// Items refused by `drop_newest` (counted inserted and dropped).
    refused: AtomicU64,
}

/// A snapshot of a [`RingShared`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RingCounts {
    pub(crate) pushed: u64,
    pub(crate) refused: u64,
}

impl RingShared {
    pub(crate) fn counts(&self) -> RingCounts {
        RingCounts {
            pushed: self.pushed.load(Ordering::Acquire),
            refused: self.refused.load(Ordering::Acquire),
        }
    }

    /// Publishes the handle's own count of pushed items.
    #[inline]
    pub(crate) fn set_pushed(&self, n: u64) {
        self.pushed.store(n, Ordering::Release);
    }

    /// Publishes the handle's own count of refused items.
    pub(crate) fn set_refused(&self, n: u64) {
        self.refused.store(n, Ordering::Release);
    }
}

/// A producer handle's ring, as the partition sees it.
struct RingSlot<T> {
    id: u64,
    consumer: spsc::Consumer<T>,
    shared: Arc<RingShared>,
    /// Items moved out of the ring into the partition, ever.
    drained: u64,
    /// Items evicted by `drop_oldest` straight from the ring, ever.
    evicted: u64,
}

impl<T> RingSlot<T> {
    /// Items in the ring now, from the counts (an item is counted before it
    /// is queued, so this never goes negative).
    fn queued(&self, pushed: u64) -> u64 {
        pushed.saturating_sub(self.drained + self.evicted)
    }
}

/// What the rings add to the partition's books.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RingBooks {
    /// Items inserted through the rings (pushed and refused).
    pub(crate) inserted: u64,
    /// Items refused by `drop_newest` (dropped without entering).
    pub(crate) refused: u64,
    /// Items evicted from the rings by `drop_oldest`.
    pub(crate) evicted: u64,
    /// Items in the rings now.
    pub(crate) queued: u64,
}

/// The rings of one partition, and the books of those already retired.
pub(crate) struct Rings<T> {
    slots: Vec<RingSlot<T>>,
    /// Counts of rings whose producer is gone and which were emptied.
    retired: RingBooks,
}

impl<T> Rings<T> {
    pub(crate) fn new() -> Self {
        Self {
            slots: Vec::new(),
            retired: RingBooks::default(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Adds the consumer end of producer handle `id`'s ring.
    pub(crate) fn add(&mut self, id: u64, consumer: spsc::Consumer<T>, shared: Arc<RingShared>) {
        self.slots.push(RingSlot {
            id,
            consumer,
            shared,
            drained: 0,
            evicted: 0,
        });
    }

    /// Moves items from the rings into `pending`, as long as `room` allows
    /// (`usize::MAX` ignores `capacity`: close and sync_flush). Returns
    /// whether a chunk was sealed by size.
    pub(crate) fn drain_into(
        &mut self,
        pending: &mut Pending<T>,
        mut room: usize,
        limits: Limits,
        weigh: impl Fn(&T) -> u64,
    ) -> bool {
        let mut sealed = false;
        let mut i = 0;
        while i < self.slots.len() {
            while room > 0 {
                let slot = &mut self.slots[i];
                let (got, sealed_one) =
                    pending.fill_from(&mut slot.consumer, &mut slot.drained, room, limits, &weigh);
                if got == 0 {
                    break;
                }
                sealed |= sealed_one;
                room = room.saturating_sub(got);
            }
            if !self.retire_if_done(i) {
                i += 1;
            }
        }
        sealed
    }

    /// Moves every item out of the rings into `out`, oldest first per ring
    /// (for spilling them, where they do not go to memory).
    pub(crate) fn pop_all(&mut self, out: &mut Vec<T>) {
        let mut i = 0;
        while i < self.slots.len() {
            let slot = &mut self.slots[i];
            while let Ok(got) = slot.consumer.pop_batch(out, 256) {
                slot.drained += got as u64;
            }
            if !self.retire_if_done(i) {
                i += 1;
            }
        }
    }

    /// Removes ring `i` if its producer is gone and it is empty, keeping its
    /// counts. Returns whether it did.
    fn retire_if_done(&mut self, i: usize) -> bool {
        let slot = &self.slots[i];
        if !(slot.consumer.is_abandoned() && slot.consumer.is_empty()) {
            return false;
        }
        let slot = self.slots.swap_remove(i);
        let c = slot.shared.counts();
        self.retired.inserted += c.pushed + c.refused;
        self.retired.refused += c.refused;
        self.retired.evicted += slot.evicted;
        true
    }

    /// Pops the oldest item of ring `id` for `drop_oldest`: it is counted as
    /// evicted.
    pub(crate) fn evict(&mut self, id: u64) -> Option<T> {
        let slot = self.slots.iter_mut().find(|r| r.id == id)?;
        let item = slot.consumer.try_pop().ok()?;
        slot.evicted += 1;
        Some(item)
    }

    /// Pops the item ring `id`'s producer pushed after close's final drain;
    /// the producer takes it back and uncounts it.
    pub(crate) fn take_back(&mut self, id: u64) -> Option<T> {
        let slot = self.slots.iter_mut().find(|r| r.id == id)?;
        slot.consumer.try_pop().ok()
    }

    /// The rings' part of the partition's books, live and retired.
    pub(crate) fn books(&self) -> RingBooks {
        let mut b = self.retired;
        for r in &self.slots {
            let c = r.shared.counts();
            b.inserted += c.pushed + c.refused;
            b.refused += c.refused;
            b.evicted += r.evicted;
            b.queued += r.queued(c.pushed);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::FlushReason;

    fn with_ring(values: &[u64]) -> (Rings<u64>, Pending<u64>, spsc::Producer<u64>) {
        let (mut tx, rx) = spsc::channel(64);
        for &v in values {
            assert!(tx.try_push(v).is_ok());
        }
        let mut rings = Rings::new();
        rings.add(0, rx, Arc::new(RingShared::default()));
        (rings, Pending::new(0), tx)
    }

    fn limits(max_size: usize, max_bytes: u64) -> Limits {
        Limits {
            max_size,
            jitter: 0,
            max_bytes,
        }
    }

    fn chunks(p: &Pending<u64>) -> Vec<(Vec<u64>, u64, u64, Option<FlushReason>)> {
        p.chunks()
            .map(|c| (c.items.clone(), c.bytes, c.first_seq, c.sealed))
            .collect()
    }

    fn drained(r: &Rings<u64>) -> (u64, usize) {
        (r.slots[0].drained, r.slots[0].consumer.len())
    }

    #[test]
    fn draining_fills_chunks_up_to_max_size_in_order_within_room() {
        let (mut rings, mut p, _tx) = with_ring(&(0..25).collect::<Vec<_>>());
        assert!(rings.drain_into(&mut p, 22, limits(10, 0), |_| 8));
        let size = Some(FlushReason::Size);
        assert_eq!(
            chunks(&p),
            [
                ((0..10).collect(), 80, 0, size),
                ((10..20).collect(), 80, 10, size),
                (vec![20, 21], 16, 20, None),
            ]
        );
        assert_eq!((p.len(), p.bytes(), p.next_seq()), (22, 176, 22));
        assert_eq!(drained(&rings), (22, 3));

        assert!(!rings.drain_into(&mut p, usize::MAX, limits(10, 0), |_| 8));
        assert_eq!(chunks(&p)[2], ((20..25).collect(), 40, 20, None));
        assert_eq!((p.len(), p.bytes(), p.next_seq()), (25, 200, 25));
        // An empty ring starts no chunk.
        p.seal_open(FlushReason::Manual);
        assert!(!rings.drain_into(&mut p, usize::MAX, limits(10, 0), |_| 8));
        assert_eq!(p.chunks().count(), 3);
        assert_eq!(rings.books().queued, 0);
    }

    #[test]
    fn the_item_that_reaches_max_bytes_seals_and_the_rest_start_the_next_chunk() {
        let (mut rings, mut p, _tx) = with_ring(&[5, 5, 5, 1, 1, 1, 9, 1]);
        // Each item weighs its value; 10 bytes seal a chunk.
        assert!(rings.drain_into(&mut p, usize::MAX, limits(100, 10), |v| *v));
        let size = Some(FlushReason::Size);
        assert_eq!(
            chunks(&p),
            [
                (vec![5, 5], 10, 0, size),
                (vec![5, 1, 1, 1, 9], 17, 2, size),
                (vec![1], 1, 7, None),
            ]
        );
        assert_eq!((p.len(), p.bytes(), p.next_seq()), (8, 28, 8));
        assert_eq!(drained(&rings).0, 8);
    }

    #[test]
    fn a_ring_whose_producer_is_gone_is_retired_once_empty_with_its_counts() {
        let (mut rings, mut p, tx) = with_ring(&[1, 2, 3]);
        rings.slots[0].shared.set_pushed(3);
        assert_eq!(rings.evict(0), Some(1));
        drop(tx);
        let mut out = Vec::new();
        rings.pop_all(&mut out);
        assert_eq!(out, [2, 3]);
        assert!(rings.is_empty(), "abandoned and empty: retired");
        let b = rings.books();
        assert_eq!((b.inserted, b.evicted, b.queued), (3, 1, 0));
        assert_eq!(p.len(), 0);
        assert!(!rings.drain_into(&mut p, usize::MAX, limits(10, 0), |_| 1));
    }
}
