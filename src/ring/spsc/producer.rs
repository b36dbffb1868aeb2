//! The writing half.

use core::cell::Cell;
use core::fmt;
use core::mem::MaybeUninit;
use std::time::Duration;

use super::closer::Closer;
use super::parking::{deadline_after, Poll, Side};
use super::positions::Positions;
use super::shared::{Shared, Slot};
use crate::ring::{ClosedError, PushTimeoutError, TryPushError, WaitError};
use crate::sync::atomic::Ordering;
use crate::sync::Arc;

/// The writing half of an SPSC ring, made by [`channel`](super::channel).
///
/// It can move to another thread (it is [`Send`] when `T` is) but not be
/// shared (`!Sync`): exactly one thread pushes at a time. Dropping it closes
/// the ring: the [`Consumer`](super::Consumer) drains what is left and then
/// gets `Closed`.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    positions: Positions,
    /// Always equal to `shared.tail`: only this handle stores it.
    tail: Cell<usize>,
    /// A past value of `shared.head`. Head only moves forward, so the room
    /// this copy implies is a lower bound; refreshed only when it is short.
    cached_head: Cell<usize>,
}

// SAFETY: the handle is the only writer of `tail` and of the slots in
// `tail..head + capacity`, wherever it lives; moving it to another thread
// keeps that (it is `!Sync`, so there is still one thread using it). Items
// cross to the consumer's thread, hence `T: Send`; no `&T` is ever shared,
// so `T: Sync` is not needed.
unsafe impl<T: Send> Send for Producer<T> {}

/// Writes into the slots behind the producer's tail without publishing
/// them; dropping it (normally, or while unwinding from a panicking
/// iterator) publishes what was written, so no item is lost or dropped twice.
struct Pending<'a, T> {
    producer: &'a Producer<T>,
    start: usize,
    written: usize,
}

impl<T> Drop for Pending<'_, T> {
    fn drop(&mut self) {
        if self.written > 0 {
            let p = self.producer;
            p.publish(p.positions.advance(self.start, self.written));
        }
    }
}

impl<T> Producer<T> {
    pub(super) fn new(shared: Arc<Shared<T>>, positions: Positions) -> Self {
        Self {
            shared,
            positions,
            tail: Cell::new(0),
            cached_head: Cell::new(0),
        }
    }

    /// Free slots by the cached head: never more than the truth.
    #[inline(always)]
    fn cached_slots(&self) -> usize {
        self.positions.capacity()
            - self
                .positions
                .distance(self.cached_head.get(), self.tail.get())
    }

    /// Free slots by a fresh look at the consumer's head.
    #[inline]
    fn fresh_slots(&self) -> usize {
        // Acquire: the consumer's reads of the slots it freed happen before
        // our writes into them.
        self.cached_head
            .set(self.shared.head.load(Ordering::Acquire));
        self.cached_slots()
    }

    /// Free slots, touching the consumer's line only if the cache shows
    /// fewer than `want`.
    #[inline(always)]
    fn slots_for(&self, want: usize) -> usize {
        let cached = self.cached_slots();
        if cached >= want {
            cached
        } else {
            self.fresh_slots()
        }
    }

    /// Makes everything before `tail` visible to the consumer: one Release
    /// store, then wake the consumer if it sleeps.
    #[inline(always)]
    fn publish(&self, tail: usize) {
        self.shared.tail.store(tail, Ordering::Release);
        self.tail.set(tail);
        self.shared.control.parking.wake(Side::Consumer);
    }

    #[inline(always)]
    fn slot(&self, pos: usize) -> &Slot<T> {
        &self.shared.slots[self.positions.slot(pos)]
    }

    /// Whether pushing is over; Relaxed is enough because nothing is read
    /// on the strength of it (a push racing with a close just leaves one
    /// more item for the drop of the ring).
    #[inline(always)]
    fn closed_now(&self) -> bool {
        self.shared.control.closed.load(Ordering::Relaxed)
    }

    /// Pushes `v` if there is room.
    ///
    /// # Errors
    ///
    /// [`TryPushError::Closed`] if the ring is closed (the consumer is gone,
    /// or either half called `close`), else [`TryPushError::Full`] if all
    /// `capacity` slots hold items; both give `v` back.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{spsc, TryPushError};
    ///
    /// let (mut tx, rx) = spsc::channel(1);
    /// assert_eq!(tx.try_push(1), Ok(()));
    /// assert_eq!(tx.try_push(2), Err(TryPushError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_push(3), Err(TryPushError::Closed(3)));
    /// ```
    #[inline]
    pub fn try_push(&mut self, v: T) -> Result<(), TryPushError<T>> {
        if self.closed_now() {
            return Err(TryPushError::Closed(v));
        }
        if self.slots_for(1) == 0 {
            return Err(TryPushError::Full(v));
        }
        let tail = self.tail.get();
        self.slot(tail).with_mut(|p| {
            // SAFETY: `tail` is free (fewer than `capacity` items, so it is
            // outside head..tail) and only this handle writes free slots;
            // the consumer reads it only after the publication below.
            unsafe { p.write(MaybeUninit::new(v)) }
        });
        self.publish(self.positions.advance(tail, 1));
        Ok(())
    }

    /// Pushes `v`, waiting as long as it takes for room: polls for up to
    /// 50 µs (spinning briefly, then yielding its core between polls), then
    /// sleeps until the consumer frees a slot.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] (with `v`) if the ring is closed, also while waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::spsc;
    ///
    /// let (mut tx, mut rx) = spsc::channel(2);
    /// let t = std::thread::spawn(move || {
    ///     for i in 0..10 {
    ///         tx.push(i).unwrap();
    ///     }
    /// });
    /// let got: Vec<i32> = (0..10).map(|_| rx.pop().unwrap()).collect();
    /// t.join().unwrap();
    /// assert_eq!(got, (0..10).collect::<Vec<_>>());
    /// ```
    #[inline]
    pub fn push(&mut self, v: T) -> Result<(), ClosedError<T>> {
        // The fast path is `try_push` inlined into the caller; only a full
        // ring calls out.
        match self.try_push(v) {
            Ok(()) => Ok(()),
            Err(TryPushError::Closed(back)) => Err(ClosedError(back)),
            Err(TryPushError::Full(back)) => self.push_waiting(back),
        }
    }

    #[cold]
    #[inline(never)]
    fn push_waiting(&mut self, mut v: T) -> Result<(), ClosedError<T>> {
        loop {
            if self.wait(1, None).is_err() {
                return Err(ClosedError(v));
            }
            match self.try_push(v) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(back)) => return Err(ClosedError(back)),
                Err(TryPushError::Full(back)) => v = back,
            }
        }
    }

    /// Pushes `v`, waiting up to `timeout` for room. The deadline is fixed
    /// on entry; time spent spinning counts.
    ///
    /// # Errors
    ///
    /// [`PushTimeoutError::Closed`] if the ring is closed,
    /// [`PushTimeoutError::Timeout`] if it stayed full until the deadline;
    /// both give `v` back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spillway::ring::{spsc, PushTimeoutError};
    ///
    /// let (mut tx, _rx) = spsc::channel(1);
    /// tx.push_timeout(1, Duration::from_millis(1)).unwrap();
    /// let err = tx.push_timeout(2, Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(err, PushTimeoutError::Timeout(2));
    /// ```
    pub fn push_timeout(&mut self, mut v: T, timeout: Duration) -> Result<(), PushTimeoutError<T>> {
        let deadline = deadline_after(timeout);
        loop {
            match self.try_push(v) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(back)) => return Err(PushTimeoutError::Closed(back)),
                Err(TryPushError::Full(back)) => v = back,
            }
            match self.wait(1, deadline) {
                Ok(()) => {}
                Err(WaitError::Closed) => return Err(PushTimeoutError::Closed(v)),
                Err(WaitError::Timeout) => return Err(PushTimeoutError::Timeout(v)),
            }
        }
    }

    /// Copies as many items from the front of `items` as fit, publishes
    /// them with a single index store, and returns how many went in (0 when
    /// full or closed; tell these apart with [`is_closed`](Self::is_closed)).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::spsc;
    ///
    /// let (mut tx, mut rx) = spsc::channel(4);
    /// assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5, 6]), 4);
    /// let mut out = [0; 8];
    /// assert_eq!(rx.pop_slice(&mut out), 4);
    /// assert_eq!(out[..4], [1, 2, 3, 4]);
    /// ```
    pub fn push_slice(&mut self, items: &[T]) -> usize
    where
        T: Copy,
    {
        if items.is_empty() || self.closed_now() {
            return 0;
        }
        let n = self.slots_for(items.len()).min(items.len());
        if n == 0 {
            return 0;
        }
        let tail = self.tail.get();
        let [run1, run2] = self.shared.runs(self.positions, tail, n);
        let (items1, items2) = items[..n].split_at(run1.len());
        for (run, items) in [(run1, items1), (run2, items2)] {
            for (slot, &item) in run.iter().zip(items) {
                slot.with_mut(|p| {
                    // SAFETY: the `n` slots from `tail` are free (n <= free
                    // slots) and only this handle writes free slots; the
                    // consumer reads them only after the publication below.
                    unsafe { p.write(MaybeUninit::new(item)) }
                });
            }
        }
        self.publish(self.positions.advance(tail, n));
        n
    }

    /// Moves items from `iter` into the ring while there is room, publishes
    /// them with a single index store, and returns how many went in. It
    /// never takes an item from `iter` that it cannot store, so what is
    /// left in `iter` is exactly what was not pushed. Returns 0 when full or
    /// closed.
    ///
    /// If `iter` panics, the items taken before the panic are published
    /// (the consumer gets them) and the panic continues.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::spsc;
    ///
    /// let (mut tx, mut rx) = spsc::channel(3);
    /// let mut words = ["a", "b", "c", "d"].into_iter().map(String::from);
    /// assert_eq!(tx.push_iter(&mut words), 3);
    /// assert_eq!(words.next().as_deref(), Some("d")); // not taken
    /// assert_eq!(rx.try_pop().unwrap(), "a");
    /// ```
    pub fn push_iter<I: Iterator<Item = T>>(&mut self, iter: &mut I) -> usize {
        if self.closed_now() {
            return 0;
        }
        let want = iter.size_hint().1.unwrap_or(usize::MAX);
        let n = self.slots_for(want.max(1)).min(want);
        if n == 0 {
            return 0;
        }
        let runs = self.shared.runs(self.positions, self.tail.get(), n);
        let mut pending = Pending {
            producer: self,
            start: self.tail.get(),
            written: 0,
        };
        'fill: for run in runs {
            for slot in run {
                let Some(item) = iter.next() else {
                    break 'fill;
                };
                slot.with_mut(|p| {
                    // SAFETY: as in `push_slice`: the slot is free, ours
                    // alone, and unpublished until `pending` is dropped.
                    unsafe { p.write(MaybeUninit::new(item)) }
                });
                pending.written += 1;
            }
        }
        pending.written
    }

    /// Free slots right now. Only the consumer can change it, and only
    /// upwards: if it says `n`, the next `n` pushes succeed (unless the
    /// ring is closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::spsc;
    ///
    /// let (mut tx, _rx) = spsc::channel(3);
    /// tx.try_push(1).unwrap();
    /// assert_eq!(tx.slots(), 2);
    /// ```
    pub fn slots(&self) -> usize {
        self.fresh_slots()
    }

    /// Whether the next push would find no free slot. Cheaper than
    /// [`slots`](Self::slots)`() == 0`: it answers from the consumer's
    /// position as last read, and reads the consumer's (contended) line
    /// again only when that old answer is "full". Like `slots`, a `false`
    /// stays true until this handle pushes.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::spsc;
    ///
    /// let (mut tx, mut rx) = spsc::channel(1);
    /// assert!(!tx.is_full());
    /// tx.try_push(1).unwrap();
    /// assert!(tx.is_full());
    /// rx.try_pop().unwrap();
    /// assert!(!tx.is_full());
    /// ```
    #[inline]
    pub fn is_full(&self) -> bool {
        self.slots_for(1) == 0
    }

    /// The number of items the ring holds when full.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = spillway::ring::spsc::channel::<u8>(5);
    /// assert_eq!(tx.capacity(), 5);
    /// ```
    pub fn capacity(&self) -> usize {
        self.positions.capacity()
    }

    /// Whether the [`Consumer`](super::Consumer) has been dropped. Once
    /// true it stays true, and pushes fail with `Closed`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = spillway::ring::spsc::channel::<u8>(1);
    /// assert!(!tx.is_abandoned());
    /// drop(rx);
    /// assert!(tx.is_abandoned());
    /// ```
    pub fn is_abandoned(&self) -> bool {
        self.shared.control.consumer_gone.load(Ordering::Acquire)
    }

    /// Whether the ring is closed (by either half's `close` or drop).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = spillway::ring::spsc::channel::<u8>(1);
    /// rx.close();
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Closes the ring: pushes fail from now on, a consumer waiting for
    /// items wakes up, drains what is left and then gets `Closed`.
    /// Dropping the producer does the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{spsc, TryPopError};
    ///
    /// let (mut tx, mut rx) = spsc::channel(2);
    /// tx.try_push(1).unwrap();
    /// tx.close();
    /// assert!(tx.try_push(2).is_err());
    /// assert_eq!(rx.try_pop(), Ok(1));
    /// assert_eq!(rx.try_pop(), Err(TryPopError::Closed));
    /// ```
    pub fn close(&self) {
        self.shared.close(Side::Consumer);
    }

    /// A handle that closes the ring (both halves wake) and does nothing
    /// else, for a thread that must not touch this half.
    pub(crate) fn closer(&self) -> Closer<T> {
        Closer::new(Arc::clone(&self.shared))
    }

    /// Blocks until at least `n` slots are free, or `timeout` (if any)
    /// passes.
    ///
    /// This is how fixed-size elements travel all-or-nothing through a
    /// byte ring (`channel::<u8>`, as the C ABI does with `elem_size`
    /// bytes per element): wait for `elem_size` slots, then
    /// [`push_slice`](Self::push_slice) the whole element, which then
    /// stores all of it and publishes it with one index store, so the
    /// consumer never sees part of an element. Once it returns `Ok`, only
    /// this handle can lower [`slots`](Self::slots).
    ///
    /// # Errors
    ///
    /// [`WaitError::Closed`] if the ring is closed (even if there is room:
    /// nothing may be pushed any more), [`WaitError::Timeout`] if fewer
    /// than `n` slots were free at the deadline.
    ///
    /// # Panics
    ///
    /// If `n > capacity`: the wait could never end.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spillway::ring::{spsc, WaitError};
    ///
    /// let (mut tx, mut rx) = spsc::channel::<u8>(8);
    /// let elem = [1u8, 2, 3, 4];
    /// tx.wait_for_slots(elem.len(), None).unwrap();
    /// assert_eq!(tx.push_slice(&elem), 4);
    /// tx.push_slice(&elem);
    /// let short = tx.wait_for_slots(4, Some(Duration::from_millis(1)));
    /// assert_eq!(short, Err(WaitError::Timeout));
    /// # drop(rx);
    /// ```
    pub fn wait_for_slots(&mut self, n: usize, timeout: Option<Duration>) -> Result<(), WaitError> {
        assert!(
            n <= self.capacity(),
            "spsc::Producer::wait_for_slots: {n} slots can never be free in a ring of capacity {}",
            self.capacity()
        );
        self.wait(n, timeout.and_then(deadline_after))
    }

    fn wait(&self, n: usize, deadline: Option<std::time::Instant>) -> Result<(), WaitError> {
        self.shared
            .control
            .parking
            .wait(Side::Producer, deadline, || {
                // Acquire: see the close of a consumer that then went away.
                if self.shared.is_closed() {
                    Poll::Closed
                } else if self.fresh_slots() >= n {
                    Poll::Ready
                } else {
                    Poll::Pending
                }
            })
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.shared
            .control
            .producer_gone
            .store(true, Ordering::Release);
        self.shared.close(Side::Consumer);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("slots", &self.cached_slots())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
