//! The allocation both halves point to, and what happens to the items still
//! inside when the last half goes.

use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use super::parking::{Parking, Side};
use super::positions::Positions;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::UnsafeCell;

/// One slot: initialised exactly when its position lies in `head..tail`.
pub(super) type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// Shared state of one ring.
///
/// Layout: each index sits alone on its own cache line(s), written by one
/// side only; everything the other side reads on every operation but that is
/// written rarely (flags, the parking spot) sits on a third. Handles keep
/// their own copies of the indices, so a hot line is touched only when a
/// cached copy says "full" or "empty".
#[repr(C)]
pub(super) struct Shared<T> {
    /// Next position to write; stored only by the producer (Release, after
    /// the slot is written), read by the consumer (Acquire).
    pub(super) tail: CachePadded<AtomicUsize>,
    /// Next position to read; stored only by the consumer (Release, after
    /// the slot is read), read by the producer (Acquire).
    pub(super) head: CachePadded<AtomicUsize>,
    pub(super) control: CachePadded<Control>,
    pub(super) slots: Box<[Slot<T>]>,
}

/// Flags and the slow path.
pub(super) struct Control {
    /// Set by `close` or the drop of either half: no push succeeds any more.
    pub(super) closed: AtomicBool,
    pub(super) producer_gone: AtomicBool,
    pub(super) consumer_gone: AtomicBool,
    pub(super) parking: Parking,
}

impl<T> Shared<T> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            tail: CachePadded::new(AtomicUsize::new(0)),
            head: CachePadded::new(AtomicUsize::new(0)),
            control: CachePadded::new(Control {
                closed: AtomicBool::new(false),
                producer_gone: AtomicBool::new(false),
                consumer_gone: AtomicBool::new(false),
                parking: Parking::new(),
            }),
            slots: (0..capacity)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
        }
    }

    /// Closes the ring and wakes `peer` if it sleeps; used by `close` and
    /// by the drop of either half.
    pub(super) fn close(&self, peer: Side) {
        // Release: a consumer that sees `closed` and then reloads `tail`
        // sees every item published before the close.
        self.control.closed.store(true, Ordering::Release);
        self.control.parking.wake_now(peer);
    }

    /// Closes the ring and wakes both sides if they sleep; used by a
    /// [`Closer`](super::Closer), which belongs to neither side.
    pub(super) fn close_both(&self) {
        self.control.closed.store(true, Ordering::Release);
        self.control.parking.wake_now(Side::Producer);
        self.control.parking.wake_now(Side::Consumer);
    }

    /// The slots `n` items from position `pos` occupy: up to the end of the
    /// slots, then on from slot 0. Two plain slices, so loops over them
    /// compile to straight copies.
    #[inline(always)]
    pub(super) fn runs(&self, positions: Positions, pos: usize, n: usize) -> [&[Slot<T>]; 2] {
        let (first, len1, len2) = positions.runs(pos, n);
        [&self.slots[first..first + len1], &self.slots[..len2]]
    }

    pub(super) fn is_closed(&self) -> bool {
        self.control.closed.load(Ordering::Acquire)
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if !core::mem::needs_drop::<T>() {
            return;
        }
        // Both halves are gone and the `Arc` handed us their last writes.
        DropRange {
            slots: &self.slots,
            positions: Positions::new(self.slots.len()),
            head: self.head.load(Ordering::Relaxed),
            tail: self.tail.load(Ordering::Relaxed),
        }
        .drop_all();
    }
}

/// The items still in the ring. If one item's `drop` panics, the rest are
/// still dropped while unwinding (as `Vec` does), so none leaks.
struct DropRange<'a, T> {
    slots: &'a [Slot<T>],
    positions: Positions,
    head: usize,
    tail: usize,
}

impl<T> DropRange<'_, T> {
    fn drop_all(mut self) {
        while self.head != self.tail {
            let pos = self.head;
            self.head = self.positions.advance(pos, 1);
            self.slots[self.positions.slot(pos)].with_mut(|p| {
                // SAFETY: positions in head..tail hold initialised items that
                // no one else owns (the consumer publishes `head` only after
                // moving an item out), and `head` moved past `pos` above, so
                // no path visits it again.
                unsafe { (*p).assume_init_drop() }
            });
        }
        core::mem::forget(self);
    }
}

impl<T> Drop for DropRange<'_, T> {
    // Runs only while unwinding from a panicking item drop.
    fn drop(&mut self) {
        let rest = DropRange {
            slots: self.slots,
            positions: self.positions,
            head: self.head,
            tail: self.tail,
        };
        rest.drop_all();
    }
}
