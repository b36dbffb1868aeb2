//! The locking ring's calls that move many items at once: batch pops
//! (`pop_batch`, and `pop_batch_timeout`, which waits for a whole batch)
//! and `take_all`. The waiting batch pop's protocol is in the parent
//! module's docs, its loop in `halves.rs`.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Blocked, LockingRing};
use crate::ring::{PopTimeoutError, TryPopError};

impl<T> LockingRing<T> {
    /// Moves up to `max` of the oldest items to the back of `out`, in order,
    /// under one lock acquisition. Never blocks.
    ///
    /// Returns how many items were moved: at least 1 unless `max` is 0, and
    /// possibly fewer than `max` while the ring holds more. It takes what
    /// the consumers' cache holds, and the producers' lock only when the
    /// cache is empty (to swap the whole tail in), so a consumer that keeps
    /// up takes that lock once per swap, not once per call. A caller that
    /// wants `max` items calls again. Blocked pushers are woken for the
    /// slots freed.
    ///
    /// # Errors
    ///
    /// [`TryPopError::Empty`] if the ring holds nothing right now,
    /// [`TryPopError::Closed`] if it is closed and drained (a closed ring
    /// that still holds items returns them first). `out` is untouched then.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{LockingRing, TryPopError};
    ///
    /// let ring = LockingRing::new(8);
    /// for i in 0..5 {
    ///     ring.push(i).unwrap();
    /// }
    /// let mut out = Vec::new();
    /// assert_eq!(ring.pop_batch(&mut out, 3), Ok(3));
    /// assert_eq!(ring.pop_batch(&mut out, 3), Ok(2));
    /// assert_eq!(out, [0, 1, 2, 3, 4]);
    /// assert_eq!(ring.pop_batch(&mut out, 3), Err(TryPopError::Empty));
    /// ```
    pub fn pop_batch(&self, out: &mut Vec<T>, max: usize) -> Result<usize, TryPopError> {
        let mut cache = self.cache.lock();
        if cache.is_empty() {
            self.refill_for_pop(&mut cache)?;
        }
        let n = max.min(cache.len());
        out.extend(cache.drain(..n));
        self.cache.set_cached(&cache);
        drop(cache);
        self.wake_pushers(n);
        Ok(n)
    }

    /// Moves up to `n` of the oldest items to the back of `out`, in order,
    /// once the ring holds `n`, waiting for at most `timeout`: a batch
    /// consumer's pop, in the spirit of Guava's `Queues.drain`.
    ///
    /// Returns as soon as the ring holds `n` items (or `capacity`, if that
    /// is fewer: a full ring never grows), with exactly that many moved;
    /// at the deadline, or once the ring is closed, it moves what there
    /// is (fewer than `n`, at least 1). While it waits, each push pays one
    /// compare for it, and the push that completes the batch wakes it.
    /// Unlike [`pop`](Self::pop), it sleeps at once rather than polling
    /// first: the wait is for many items, so one wake-up per batch costs
    /// less than a core kept busy for the whole batch. For that reason a
    /// small `n` pays a wake-up for every few items; `pop` and
    /// [`pop_batch`](Self::pop_batch) suit single items. The deadline is
    /// fixed when the call first finds too few items; a zero timeout takes
    /// what is there without waiting. `n == 0` returns `Ok(0)` at once.
    /// Blocked pushers are woken for the slots freed.
    ///
    /// # Errors
    ///
    /// [`PopTimeoutError::Timeout`] if the ring was still empty at the
    /// deadline, [`PopTimeoutError::Closed`] once it is closed and drained.
    /// `out` is untouched then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use spillway::ring::{LockingRing, PopTimeoutError};
    ///
    /// let ring = Arc::new(LockingRing::new(16));
    /// let producer = {
    ///     let ring = Arc::clone(&ring);
    ///     std::thread::spawn(move || {
    ///         for i in 0..10 {
    ///             ring.push(i).unwrap();
    ///         }
    ///         ring.close();
    ///     })
    /// };
    /// let mut out = Vec::new();
    /// let wait = Duration::from_secs(10);
    /// // The first call returns once 4 items are there: never fewer,
    /// // since the producer closes only after its last push.
    /// assert_eq!(ring.pop_batch_timeout(&mut out, 4, wait), Ok(4));
    /// assert_eq!(ring.pop_batch_timeout(&mut out, 4, wait), Ok(4));
    /// // 2 are left; the close ends the wait for the other 2.
    /// assert_eq!(ring.pop_batch_timeout(&mut out, 4, wait), Ok(2));
    /// assert_eq!(
    ///     ring.pop_batch_timeout(&mut out, 4, wait),
    ///     Err(PopTimeoutError::Closed)
    /// );
    /// producer.join().unwrap();
    /// assert_eq!(out, (0..10).collect::<Vec<_>>());
    /// ```
    pub fn pop_batch_timeout(
        &self,
        out: &mut Vec<T>,
        n: usize,
        timeout: Duration,
    ) -> Result<usize, PopTimeoutError> {
        if n == 0 {
            return Ok(0);
        }
        self.pop_batch_blocking(out, n, Some(timeout))
            .map_err(|why| match why {
                Blocked::Closed => PopTimeoutError::Closed,
                Blocked::Timeout => PopTimeoutError::Timeout,
            })
    }

    /// Removes every item at once and returns them, oldest first.
    ///
    /// When the items are all on one side (producers' tail or consumers'
    /// cache) that side's storage is swapped out in O(1), leaving it with no
    /// allocation; its next use allocates again. Otherwise the tail's items
    /// are appended to the cache's (O(tail)). To reuse one allocation in
    /// a steady state, use [`take_all_into`](Self::take_all_into).
    /// Works on a closed ring too (it drains it). Blocked pushers are woken.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::LockingRing;
    ///
    /// let ring = LockingRing::new(4);
    /// ring.push(1).unwrap();
    /// ring.push(2).unwrap();
    /// assert_eq!(ring.take_all(), [1, 2]);
    /// assert!(ring.is_empty());
    /// ```
    #[must_use = "the items taken out are dropped if the result is ignored"]
    pub fn take_all(&self) -> VecDeque<T> {
        let mut taken = VecDeque::new();
        self.take_all_into(&mut taken);
        taken
    }

    /// Moves every item to the back of `spare`, oldest first, and returns
    /// how many moved.
    ///
    /// If `spare` is empty and the items are all on one side of the ring
    /// (see the module docs) this is an O(1) swap: the ring keeps `spare`'s
    /// allocation and `spare` receives the ring's. If both sides hold items,
    /// the newer (tail) side is appended after the swap, O(tail). A consumer that empties
    /// `spare` (e.g. with `drain(..)`) and hands it back each time keeps two
    /// allocations in circulation and never allocates in a steady state. If
    /// `spare` is not empty, its items stay in front and the ring's items are
    /// appended (O(n)). Blocked pushers are woken.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use spillway::ring::LockingRing;
    ///
    /// let ring = LockingRing::new(4);
    /// let mut spare = VecDeque::with_capacity(4);
    /// for round in 0..3 {
    ///     ring.push(round).unwrap();
    ///     assert_eq!(ring.take_all_into(&mut spare), 1);
    ///     assert_eq!(spare.drain(..).collect::<Vec<_>>(), [round]);
    /// }
    /// ```
    pub fn take_all_into(&self, spare: &mut VecDeque<T>) -> usize {
        let mut cache = self.cache.lock();
        let mut st = self.tail.lock();
        let n = cache.len() + st.items.len();
        if n == 0 {
            return 0;
        }
        for side in [&mut *cache, &mut st.items] {
            if spare.is_empty() {
                std::mem::swap(side, spare);
            } else {
                spare.extend(side.drain(..));
            }
        }
        self.cache.set_cached(&cache);
        st.cache_bound = 0;
        self.note_tail_empty(&st);
        drop(st);
        drop(cache);
        self.wake_pushers(n);
        n
    }
}
