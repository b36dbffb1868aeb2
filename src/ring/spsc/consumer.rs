//! The reading half.

use core::cell::Cell;
use core::fmt;
use std::time::{Duration, Instant};

use super::parking::{deadline_after, Poll, Side};
use super::positions::Positions;
use super::shared::{Shared, Slot};
use crate::ring::{PopClosedError, PopTimeoutError, TryPopError, WaitError};
use crate::sync::atomic::Ordering;
use crate::sync::Arc;

/// The reading half of an SPSC ring, made by [`channel`](super::channel).
///
/// It can move to another thread (it is [`Send`] when `T` is) but not be
/// shared (`!Sync`): exactly one thread pops at a time. Dropping it closes
/// the ring: the [`Producer`](super::Producer)'s pushes fail, and the items
/// still inside are dropped when the producer goes too.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    positions: Positions,
    /// Always equal to `shared.head`: only this handle stores it.
    head: Cell<usize>,
    /// A past value of `shared.tail`. Tail only moves forward, so the items
    /// this copy implies are a lower bound; refreshed only when it is short.
    cached_tail: Cell<usize>,
}

// SAFETY: the handle is the only reader of the slots in `head..tail` and the
// only writer of `head`, wherever it lives; moving it to another thread keeps
// that (it is `!Sync`, so one thread uses it). Items arrive from the
// producer's thread, hence `T: Send`; no `&T` is ever shared, so `T: Sync`
// is not needed.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Consumer<T> {
    pub(super) fn new(shared: Arc<Shared<T>>, positions: Positions) -> Self {
        Self {
            shared,
            positions,
            head: Cell::new(0),
            cached_tail: Cell::new(0),
        }
    }

    /// Items by the cached tail: never more than the truth.
    #[inline(always)]
    fn cached_len(&self) -> usize {
        self.positions
            .distance(self.head.get(), self.cached_tail.get())
    }

    /// Items by a fresh look at the producer's tail.
    #[inline]
    fn fresh_len(&self) -> usize {
        // Acquire: the producer's writes into the slots it published happen
        // before our reads of them.
        self.cached_tail
            .set(self.shared.tail.load(Ordering::Acquire));
        self.cached_len()
    }

    /// Items ready, touching the producer's line only if the cache shows
    /// fewer than `want`.
    #[inline(always)]
    fn len_for(&self, want: usize) -> usize {
        let cached = self.cached_len();
        if cached >= want {
            cached
        } else {
            self.fresh_len()
        }
    }

    /// Hands the slots before `head` back to the producer: one Release
    /// store, then wake the producer if it sleeps.
    #[inline(always)]
    fn publish(&self, head: usize) {
        self.shared.head.store(head, Ordering::Release);
        self.head.set(head);
        self.shared.control.parking.wake(Side::Producer);
    }

    #[inline(always)]
    fn slot(&self, pos: usize) -> &Slot<T> {
        &self.shared.slots[self.positions.slot(pos)]
    }

    /// After finding fewer than `n` items: can `n` still come?
    fn poll_len(&self, n: usize) -> Poll {
        if self.fresh_len() >= n {
            Poll::Ready
        } else if self.shared.is_closed() {
            // The close was stored after the producer's last publication
            // (Release/Acquire on `closed`), so this reload sees all of it.
            if self.fresh_len() >= n {
                Poll::Ready
            } else {
                Poll::Closed
            }
        } else {
            Poll::Pending
        }
    }

    /// Pops the oldest item if there is one.
    ///
    /// # Errors
    ///
    /// [`TryPopError::Empty`] if there is nothing to pop now,
    /// [`TryPopError::Closed`] if there is nothing and never will be (the
    /// ring is closed and drained).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{spsc, TryPopError};
    ///
    /// let (mut tx, mut rx) = spsc::channel(2);
    /// assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    /// tx.try_push(7).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_pop(), Ok(7));
    /// assert_eq!(rx.try_pop(), Err(TryPopError::Closed));
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        // `len_for` has just read `tail`: look only at `closed` before
        // saying "empty", so a polling consumer takes the producer's line
        // once per call, not twice.
        if self.len_for(1) == 0 {
            if !self.shared.is_closed() {
                return Err(TryPopError::Empty);
            }
            // The close was stored after the producer's last publication
            // (Release/Acquire on `closed`), so this reload sees all of it.
            if self.fresh_len() == 0 {
                return Err(TryPopError::Closed);
            }
        }
        let head = self.head.get();
        let v = self.slot(head).with(|p| {
            // SAFETY: `head` is in head..tail, so the slot holds an item the
            // producer published (Acquire on `tail`); we move it out and
            // publish `head` past it at once, so it is never read again.
            unsafe { p.read().assume_init() }
        });
        self.publish(self.positions.advance(head, 1));
        Ok(v)
    }

    /// Pops the oldest item, waiting as long as it takes: polls for up to
    /// 50 µs (spinning briefly, then yielding its core between polls), then
    /// sleeps until the producer publishes.
    ///
    /// # Errors
    ///
    /// [`PopClosedError`] once the ring is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{spsc, PopClosedError};
    ///
    /// let (mut tx, mut rx) = spsc::channel(4);
    /// std::thread::spawn(move || tx.push("hi").unwrap());
    /// assert_eq!(rx.pop(), Ok("hi"));
    /// assert_eq!(rx.pop(), Err(PopClosedError)); // producer gone
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Result<T, PopClosedError> {
        // The fast path is `try_pop` inlined into the caller; only an empty
        // ring calls out.
        match self.try_pop() {
            Ok(v) => Ok(v),
            Err(TryPopError::Closed) => Err(PopClosedError),
            Err(TryPopError::Empty) => self.pop_waiting(),
        }
    }

    #[cold]
    #[inline(never)]
    fn pop_waiting(&mut self) -> Result<T, PopClosedError> {
        loop {
            if self.wait(1, None).is_err() {
                return Err(PopClosedError);
            }
            match self.try_pop() {
                Ok(v) => return Ok(v),
                Err(TryPopError::Closed) => return Err(PopClosedError),
                Err(TryPopError::Empty) => {}
            }
        }
    }

    /// Pops the oldest item, waiting up to `timeout` for one. The deadline
    /// is fixed on entry; time spent spinning counts.
    ///
    /// # Errors
    ///
    /// [`PopTimeoutError::Timeout`] if still empty at the deadline,
    /// [`PopTimeoutError::Closed`] once closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spillway::ring::{spsc, PopTimeoutError};
    ///
    /// let (_tx, mut rx) = spsc::channel::<u32>(1);
    /// let err = rx.pop_timeout(Duration::from_millis(1));
    /// assert_eq!(err, Err(PopTimeoutError::Timeout));
    /// ```
    pub fn pop_timeout(&mut self, timeout: Duration) -> Result<T, PopTimeoutError> {
        let deadline = deadline_after(timeout);
        loop {
            match self.try_pop() {
                Ok(v) => return Ok(v),
                Err(TryPopError::Closed) => return Err(PopTimeoutError::Closed),
                Err(TryPopError::Empty) => {}
            }
            match self.wait(1, deadline) {
                Ok(()) => {}
                Err(WaitError::Closed) => return Err(PopTimeoutError::Closed),
                Err(WaitError::Timeout) => return Err(PopTimeoutError::Timeout),
            }
        }
    }

    /// Moves up to `max` items, oldest first, to the end of `out`, frees
    /// their slots with a single index store, and returns how many moved.
    /// The same contract as [`LockingRing::pop_batch`](crate::ring::LockingRing::pop_batch).
    ///
    /// # Errors
    /// [`TryPopError::Empty`] if the ring holds nothing right now,
    /// [`TryPopError::Closed`] if the producer is gone and the ring is
    /// drained (items published before it went are returned first). `out` is
    /// untouched then.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{spsc, TryPopError};
    ///
    /// let (mut tx, mut rx) = spsc::channel(4);
    /// tx.push_slice(&[1, 2, 3]);
    /// let mut out = vec![0];
    /// assert_eq!(rx.pop_batch(&mut out, 2), Ok(2));
    /// assert_eq!(out, [0, 1, 2]);
    /// drop(tx);
    /// assert_eq!(rx.pop_batch(&mut out, 2), Ok(1));
    /// assert_eq!(rx.pop_batch(&mut out, 2), Err(TryPopError::Closed));
    /// ```
    pub fn pop_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<usize, TryPopError> {
        let mut ready = self.len_for(max.max(1));
        if ready == 0 {
            // As in `try_pop`: look at `closed` only once the ring looks
            // empty, then reload, since the close follows the last publish.
            if !self.shared.is_closed() {
                return Err(TryPopError::Empty);
            }
            ready = self.fresh_len();
            if ready == 0 {
                return Err(TryPopError::Closed);
            }
        }
        let n = ready.min(max);
        if n == 0 {
            return Ok(0);
        }
        // Reserve first: nothing below can panic between moving items out
        // and publishing `head`, so no item is ever owned twice.
        out.reserve(n);
        let head = self.head.get();
        let [run1, run2] = self.shared.runs(self.positions, head, n);
        let (dst1, rest) = out.spare_capacity_mut().split_at_mut(run1.len());
        for (run, dst) in [(run1, dst1), (run2, &mut rest[..run2.len()])] {
            for (d, slot) in dst.iter_mut().zip(run) {
                *d = slot.with(|p| {
                    // SAFETY: the `n` slots from `head` hold published
                    // items (n <= items ready, Acquire on `tail`); each is
                    // moved out once and `head` is published past them
                    // below.
                    unsafe { p.read() }
                });
            }
        }
        // SAFETY: the loop initialised the first `n` spare elements (the
        // spare capacity is at least `n` after `reserve(n)`).
        unsafe { out.set_len(out.len() + n) };
        self.publish(self.positions.advance(head, n));
        Ok(n)
    }

    /// Copies up to `out.len()` items, oldest first, into `out`, frees their
    /// slots with a single index store, and returns how many were copied
    /// (0 when empty, or closed and drained).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::spsc;
    ///
    /// let (mut tx, mut rx) = spsc::channel(4);
    /// tx.push_slice(&[1u8, 2, 3]);
    /// let mut out = [0u8; 2];
    /// assert_eq!(rx.pop_slice(&mut out), 2);
    /// assert_eq!(out, [1, 2]);
    /// ```
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize
    where
        T: Copy,
    {
        let n = self.len_for(out.len()).min(out.len());
        if n == 0 {
            return 0;
        }
        let head = self.head.get();
        let [run1, run2] = self.shared.runs(self.positions, head, n);
        let (dst1, dst2) = out[..n].split_at_mut(run1.len());
        for (run, dst) in [(run1, dst1), (run2, dst2)] {
            for (d, slot) in dst.iter_mut().zip(run) {
                *d = slot.with(|p| {
                    // SAFETY: as in `pop_batch`: a published item, read
                    // once before `head` moves past it.
                    unsafe { p.read().assume_init() }
                });
            }
        }
        self.publish(self.positions.advance(head, n));
        n
    }

    /// Items ready to pop right now. Only the producer can change it, and
    /// only upwards: if it says `n`, the next `n` pops succeed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, rx) = spillway::ring::spsc::channel(3);
    /// tx.push_slice(&[1, 2]);
    /// assert_eq!(rx.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.fresh_len()
    }

    /// Whether there is nothing to pop right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = spillway::ring::spsc::channel::<u8>(3);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of items the ring holds when full.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = spillway::ring::spsc::channel::<u8>(5);
    /// assert_eq!(rx.capacity(), 5);
    /// ```
    pub fn capacity(&self) -> usize {
        self.positions.capacity()
    }

    /// Whether the [`Producer`](super::Producer) has been dropped. Once
    /// true it stays true; what it published can still be popped.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = spillway::ring::spsc::channel::<u8>(1);
    /// assert!(!rx.is_abandoned());
    /// drop(tx);
    /// assert!(rx.is_abandoned());
    /// ```
    pub fn is_abandoned(&self) -> bool {
        self.shared.control.producer_gone.load(Ordering::Acquire)
    }

    /// Whether the ring is closed (by either half's `close` or drop). Items
    /// may remain to be popped.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = spillway::ring::spsc::channel::<u8>(1);
    /// tx.close();
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Closes the ring from the reading side: the producer's pushes fail
    /// from now on (a blocked one wakes with `Closed`), while the items
    /// already inside can still be popped. Dropping the consumer does the
    /// same.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{spsc, TryPushError};
    ///
    /// let (mut tx, mut rx) = spsc::channel(2);
    /// tx.try_push(1).unwrap();
    /// rx.close();
    /// assert_eq!(tx.try_push(2), Err(TryPushError::Closed(2)));
    /// assert_eq!(rx.try_pop(), Ok(1));
    /// ```
    pub fn close(&self) {
        self.shared.close(Side::Producer);
    }

    /// Blocks until at least `n` items are ready, or `timeout` (if any)
    /// passes.
    ///
    /// With a byte ring carrying fixed-size elements (as the C ABI does:
    /// `channel::<u8>`, `elem_size` bytes each), the producer publishes
    /// whole elements only, so waiting for `elem_size` items and then
    /// [`pop_slice`](Self::pop_slice) into an `elem_size` buffer always
    /// takes exactly one element. Once it returns `Ok`, only this handle can
    /// lower [`len`](Self::len).
    ///
    /// # Errors
    ///
    /// [`WaitError::Closed`] if the ring is closed and fewer than `n` items
    /// are left (so there never will be `n`), [`WaitError::Timeout`] if
    /// fewer than `n` were ready at the deadline.
    ///
    /// # Panics
    ///
    /// If `n > capacity`: the wait could never end.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{spsc, WaitError};
    ///
    /// let (mut tx, mut rx) = spsc::channel::<u8>(8);
    /// std::thread::spawn(move || {
    ///     tx.wait_for_slots(4, None).unwrap();
    ///     tx.push_slice(&[1, 2, 3, 4]);
    /// });
    /// rx.wait_for_len(4, None).unwrap();
    /// let mut elem = [0u8; 4];
    /// assert_eq!(rx.pop_slice(&mut elem), 4);
    /// assert_eq!(elem, [1, 2, 3, 4]);
    /// assert_eq!(rx.wait_for_len(4, None), Err(WaitError::Closed));
    /// ```
    pub fn wait_for_len(&mut self, n: usize, timeout: Option<Duration>) -> Result<(), WaitError> {
        assert!(
            n <= self.capacity(),
            "spsc::Consumer::wait_for_len: {n} items can never be ready in a ring of capacity {}",
            self.capacity()
        );
        self.wait(n, timeout.and_then(deadline_after))
    }

    fn wait(&self, n: usize, deadline: Option<Instant>) -> Result<(), WaitError> {
        self.shared
            .control
            .parking
            .wait(Side::Consumer, deadline, || self.poll_len(n))
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.shared
            .control
            .consumer_gone
            .store(true, Ordering::Release);
        self.shared.close(Side::Producer);
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("len", &self.cached_len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
