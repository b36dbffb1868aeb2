//! A bounded FIFO ring behind one mutex, for any number of producers and
//! consumers, with blocking, deadlines, `force_push`, batch pops and an O(1)
//! `take_all`.
//!
//! # Wake-up protocol (why no wake-up is lost)
//!
//! All state lives under one [`Mutex`]: the items, the closed flag and two
//! waiter counts. A thread that must block increments its count and calls
//! `Condvar::wait` *while still holding the lock*; the condition variable
//! enqueues it before releasing the mutex. Any thread that later makes
//! progress possible (adds an item, frees a slot, closes) does so under the
//! same lock, so it either ran before the waiter's check (and the waiter saw
//! its effect and did not block) or after the waiter was enqueued, in which
//! case it reads a non-zero count under the lock and notifies after
//! unlocking, which reaches the enqueued waiter. The count is decremented only
//! by the waiter itself, after it has re-acquired the lock, so a non-zero
//! count can over-approximate (a notified waiter not yet running makes us
//! notify once more, which costs nothing when the queue is empty) but never
//! under-approximate.
//!
//! One `notify_one` per item added (or slot freed) is enough because a woken
//! thread always re-checks its condition first and takes the item (slot) if
//! it is there; if it finds nothing, another thread consumed that very unit,
//! so no unit is left with a sleeping waiter and no pending wake-up. Timed
//! waiters re-check before reporting a timeout for the same reason: a
//! notification that raced with the deadline is not thrown away. Operations
//! that free many slots at once (`pop_batch`, `take_all`) or change the state
//! for everyone (`close`) use `notify_all`.
//!
//! The fast path (room to push, an item to pop, nobody waiting) takes the lock
//! once and makes no notify call at all.
//!
//! # Spinning before parking
//!
//! A thread that finds the ring full (or empty) first backs off a few rounds
//! (brief spins, then yields) with the lock released, re-checking under the
//! lock after each, and only then registers as a waiter and parks. While it
//! spins it is not counted, so the other side pays no wake-up system call for
//! it; that is what keeps a ring that runs full or empty under load from
//! costing one futex wake per item. It changes nothing in the argument above:
//! a spinning thread re-checks the state itself, and it counts itself before
//! its final check-then-park.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use super::deadline::Deadline;
use super::error::{
    ClosedError, PopClosedError, PopTimeoutError, PushTimeoutError, TryPopError, TryPushError,
};
use crate::sync::{Condvar, Mutex, MutexGuard};

/// Rings larger than this start with this many slots allocated and grow on
/// demand, so `LockingRing::new(usize::MAX)` ("practically unbounded") does
/// not try to allocate the whole capacity up front.
const MAX_PREALLOCATED_SLOTS: usize = 64 * 1024;

/// Everything the mutex guards.
struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// Threads blocked in `push`/`push_timeout` (or woken and not yet back).
    waiting_pushers: usize,
    /// Threads blocked in `pop`/`pop_timeout` (or woken and not yet back).
    waiting_poppers: usize,
}

/// A bounded FIFO ring guarded by a mutex, for any number of producer and
/// consumer threads.
///
/// Every method takes `&self`; share the ring with an `Arc` (or scoped
/// threads). Items leave in the order they entered. A full ring refuses
/// ([`try_push`](Self::try_push)), blocks ([`push`](Self::push),
/// [`push_timeout`](Self::push_timeout)) or overwrites its oldest item
/// ([`force_push`](Self::force_push)); an empty one says so
/// ([`try_pop`](Self::try_pop)) or blocks ([`pop`](Self::pop),
/// [`pop_timeout`](Self::pop_timeout)). After [`close`](Self::close) pushes
/// fail and give the item back, while pops drain what is left and only then
/// report that the ring is closed. A call that has to block spins briefly
/// before it sleeps, and wakes the other side only if that side sleeps.
///
/// Items still inside when the ring is dropped are dropped with it, each
/// exactly once.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use spillway::ring::LockingRing;
///
/// let ring = Arc::new(LockingRing::new(4));
/// let producer = {
///     let ring = Arc::clone(&ring);
///     std::thread::spawn(move || {
///         for i in 0..10 {
///             ring.push(i).unwrap();
///         }
///         ring.close();
///     })
/// };
/// let mut got = Vec::new();
/// while let Ok(v) = ring.pop() {
///     got.push(v);
/// }
/// producer.join().unwrap();
/// assert_eq!(got, (0..10).collect::<Vec<_>>());
/// ```
pub struct LockingRing<T> {
    state: Mutex<State<T>>,
    /// Signalled when a slot frees up (or on close); pushers wait here.
    not_full: Condvar,
    /// Signalled when an item arrives (or on close); poppers wait here.
    not_empty: Condvar,
    capacity: usize,
}

/// How a blocking operation ended without doing its job.
enum Blocked {
    Closed,
    Timeout,
}

impl<T> LockingRing<T> {
    /// Creates an empty ring that holds at most `capacity` items.
    ///
    /// Up to 65 536 slots are allocated at once; larger rings grow their
    /// storage as they fill.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0: a ring that can hold nothing could never accept a
    /// push.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::LockingRing;
    ///
    /// let ring = LockingRing::<u64>::new(8);
    /// assert_eq!(ring.capacity(), 8);
    /// assert!(ring.is_empty());
    /// ```
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "LockingRing capacity must be at least 1");
        Self {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(MAX_PREALLOCATED_SLOTS)),
                closed: false,
                waiting_pushers: 0,
                waiting_poppers: 0,
            }),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
            capacity,
        }
    }

    /// Appends `v` if there is room, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryPushError::Full`] if the ring holds `capacity` items,
    /// [`TryPushError::Closed`] if it was closed; both give `v` back.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{LockingRing, TryPushError};
    ///
    /// let ring = LockingRing::new(1);
    /// assert_eq!(ring.try_push(1), Ok(()));
    /// assert_eq!(ring.try_push(2), Err(TryPushError::Full(2)));
    /// ring.close();
    /// assert_eq!(ring.try_push(3), Err(TryPushError::Closed(3)));
    /// ```
    pub fn try_push(&self, v: T) -> Result<(), TryPushError<T>> {
        let st = self.state.lock();
        if st.closed {
            return Err(TryPushError::Closed(v));
        }
        if st.items.len() == self.capacity {
            return Err(TryPushError::Full(v));
        }
        self.push_back_and_wake(st, v);
        Ok(())
    }

    /// Appends `v`, blocking while the ring is full.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] (with `v` inside) if the ring is closed before or
    /// while this call waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::LockingRing;
    ///
    /// let ring = LockingRing::new(2);
    /// ring.push("a").unwrap();
    /// ring.close();
    /// assert_eq!(ring.push("b").unwrap_err().into_inner(), "b");
    /// ```
    pub fn push(&self, v: T) -> Result<(), ClosedError<T>> {
        self.push_blocking(v, None).map_err(|(_, v)| ClosedError(v))
    }

    /// Appends `v`, blocking while the ring is full, for at most `timeout`.
    ///
    /// The deadline is fixed when the call first finds the ring full; spurious
    /// wake-ups do not extend it. A zero timeout behaves like
    /// [`try_push`](Self::try_push).
    ///
    /// # Errors
    ///
    /// [`PushTimeoutError::Timeout`] if the ring was still full at the
    /// deadline, [`PushTimeoutError::Closed`] if it was closed; both give `v`
    /// back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spillway::ring::{LockingRing, PushTimeoutError};
    ///
    /// let ring = LockingRing::new(1);
    /// ring.push_timeout(1, Duration::from_millis(10)).unwrap();
    /// assert_eq!(
    ///     ring.push_timeout(2, Duration::from_millis(10)),
    ///     Err(PushTimeoutError::Timeout(2))
    /// );
    /// ```
    pub fn push_timeout(&self, v: T, timeout: Duration) -> Result<(), PushTimeoutError<T>> {
        self.push_blocking(v, Some(timeout))
            .map_err(|(why, v)| match why {
                Blocked::Closed => PushTimeoutError::Closed(v),
                Blocked::Timeout => PushTimeoutError::Timeout(v),
            })
    }

    /// Appends `v`; if the ring is full, first removes the oldest item and
    /// returns it. Never blocks.
    ///
    /// This is the drop-oldest overflow policy: the newest data wins.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] (with `v` inside) if the ring was closed; nothing is
    /// evicted then.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::LockingRing;
    ///
    /// let ring = LockingRing::new(2);
    /// assert_eq!(ring.force_push(1).unwrap(), None);
    /// assert_eq!(ring.force_push(2).unwrap(), None);
    /// assert_eq!(ring.force_push(3).unwrap(), Some(1));
    /// assert_eq!(ring.take_all(), [2, 3]);
    /// ```
    pub fn force_push(&self, v: T) -> Result<Option<T>, ClosedError<T>> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(ClosedError(v));
        }
        if st.items.len() == self.capacity {
            // The length does not change, so no waiter's condition changes
            // either: a full ring has no waiting poppers to wake, and
            // pushers still find it full.
            let evicted = st.items.pop_front();
            st.items.push_back(v);
            return Ok(evicted);
        }
        self.push_back_and_wake(st, v);
        Ok(None)
    }

    /// Removes the oldest item without blocking.
    ///
    /// # Errors
    ///
    /// [`TryPopError::Empty`] if there is nothing to pop right now,
    /// [`TryPopError::Closed`] if the ring is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{LockingRing, TryPopError};
    ///
    /// let ring = LockingRing::new(2);
    /// assert_eq!(ring.try_pop(), Err(TryPopError::Empty));
    /// ring.push(7).unwrap();
    /// ring.close();
    /// assert_eq!(ring.try_pop(), Ok(7)); // closed, but not yet drained
    /// assert_eq!(ring.try_pop(), Err(TryPopError::Closed));
    /// ```
    pub fn try_pop(&self) -> Result<T, TryPopError> {
        let mut st = self.state.lock();
        match st.items.pop_front() {
            Some(v) => {
                self.wake_pushers(st, 1);
                Ok(v)
            }
            None if st.closed => Err(TryPopError::Closed),
            None => Err(TryPopError::Empty),
        }
    }

    /// Removes the oldest item, blocking while the ring is empty.
    ///
    /// # Errors
    ///
    /// [`PopClosedError`] once the ring is closed and drained; items pushed
    /// before the close are still returned first.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{LockingRing, PopClosedError};
    ///
    /// let ring = LockingRing::new(2);
    /// ring.push(1).unwrap();
    /// ring.close();
    /// assert_eq!(ring.pop(), Ok(1));
    /// assert_eq!(ring.pop(), Err(PopClosedError));
    /// ```
    pub fn pop(&self) -> Result<T, PopClosedError> {
        self.pop_blocking(None).map_err(|_| PopClosedError)
    }

    /// Removes the oldest item, blocking while the ring is empty, for at most
    /// `timeout`.
    ///
    /// The deadline is fixed when the call first finds the ring empty;
    /// spurious wake-ups do not extend it.
    ///
    /// # Errors
    ///
    /// [`PopTimeoutError::Timeout`] if the ring was still empty at the
    /// deadline, [`PopTimeoutError::Closed`] once it is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spillway::ring::{LockingRing, PopTimeoutError};
    ///
    /// let ring = LockingRing::<u32>::new(2);
    /// assert_eq!(
    ///     ring.pop_timeout(Duration::from_millis(10)),
    ///     Err(PopTimeoutError::Timeout)
    /// );
    /// ```
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopTimeoutError> {
        self.pop_blocking(Some(timeout)).map_err(|why| match why {
            Blocked::Closed => PopTimeoutError::Closed,
            Blocked::Timeout => PopTimeoutError::Timeout,
        })
    }

    /// Moves up to `max` of the oldest items to the back of `out`, in order,
    /// under one lock acquisition. Never blocks.
    ///
    /// Returns how many items were moved: at least 1 unless `max` is 0.
    /// Blocked pushers are woken for the slots freed.
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
        let mut st = self.state.lock();
        if st.items.is_empty() {
            return Err(if st.closed {
                TryPopError::Closed
            } else {
                TryPopError::Empty
            });
        }
        let n = max.min(st.items.len());
        out.extend(st.items.drain(..n));
        self.wake_pushers(st, n);
        Ok(n)
    }

    /// Removes every item at once and returns them, oldest first.
    ///
    /// The ring's storage is swapped out in O(1), leaving the ring with no
    /// allocation; its next push allocates again. To reuse one allocation in
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
    /// If `spare` is empty this is an O(1) swap: the ring keeps `spare`'s
    /// allocation and `spare` receives the ring's. A consumer that empties
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
        let mut st = self.state.lock();
        let n = st.items.len();
        if n == 0 {
            return 0;
        }
        if spare.is_empty() {
            std::mem::swap(&mut st.items, spare);
        } else {
            spare.extend(st.items.drain(..));
        }
        self.wake_pushers(st, n);
        n
    }

    /// How many items the ring holds now (a snapshot; other threads may
    /// change it as soon as this returns).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::LockingRing;
    ///
    /// let ring = LockingRing::new(4);
    /// ring.push('x').unwrap();
    /// assert_eq!(ring.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.state.lock().items.len()
    }

    /// The most items the ring holds, as given to [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::LockingRing;
    ///
    /// assert_eq!(LockingRing::<u8>::new(3).capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the ring holds no item now (a snapshot, like [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::LockingRing;
    ///
    /// let ring = LockingRing::new(4);
    /// assert!(ring.is_empty());
    /// ring.push(1).unwrap();
    /// assert!(!ring.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.state.lock().items.is_empty()
    }

    /// Whether [`close`](Self::close) has been called. Once true it stays
    /// true.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::LockingRing;
    ///
    /// let ring = LockingRing::<u8>::new(1);
    /// assert!(!ring.is_closed());
    /// ring.close();
    /// assert!(ring.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Closes the ring: every later push fails and gives its item back,
    /// pops return what is left and then report closed. Every blocked pusher
    /// and popper is woken. Calling it again does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::ring::{LockingRing, TryPopError};
    ///
    /// let ring = LockingRing::new(2);
    /// ring.push(1).unwrap();
    /// ring.close();
    /// ring.close();
    /// assert!(ring.push(2).is_err());
    /// assert_eq!(ring.try_pop(), Ok(1));
    /// assert_eq!(ring.try_pop(), Err(TryPopError::Closed));
    /// ```
    pub fn close(&self) {
        let mut st = self.state.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        let wake_pushers = st.waiting_pushers > 0;
        let wake_poppers = st.waiting_poppers > 0;
        drop(st);
        if wake_pushers {
            self.not_full.notify_all();
        }
        if wake_poppers {
            self.not_empty.notify_all();
        }
    }

    /// The blocking push behind `push` and `push_timeout` (`None`: no
    /// deadline). Gives `v` back with the reason on failure.
    fn push_blocking(&self, v: T, timeout: Option<Duration>) -> Result<(), (Blocked, T)> {
        let mut st = self.state.lock();
        let mut deadline = Deadline::new(timeout);
        let mut expired = false;
        let mut backoff = deadline.backoff();
        loop {
            if st.closed {
                return Err((Blocked::Closed, v));
            }
            if st.items.len() < self.capacity {
                self.push_back_and_wake(st, v);
                return Ok(());
            }
            // Checked only after the condition, so a wake-up that raced with
            // the deadline is used rather than lost (see the module docs).
            if expired {
                return Err((Blocked::Timeout, v));
            }
            deadline.start();
            if !backoff.is_completed() {
                // One round with the lock released (see the module docs).
                drop(st);
                backoff.snooze();
                st = self.state.lock();
                continue;
            }
            st.waiting_pushers += 1;
            expired = deadline.wait(&self.not_full, &mut st);
            st.waiting_pushers -= 1;
        }
    }

    /// The blocking pop behind `pop` and `pop_timeout` (`None`: no deadline).
    fn pop_blocking(&self, timeout: Option<Duration>) -> Result<T, Blocked> {
        let mut st = self.state.lock();
        let mut deadline = Deadline::new(timeout);
        let mut expired = false;
        let mut backoff = deadline.backoff();
        loop {
            if let Some(v) = st.items.pop_front() {
                self.wake_pushers(st, 1);
                return Ok(v);
            }
            if st.closed {
                return Err(Blocked::Closed);
            }
            if expired {
                return Err(Blocked::Timeout);
            }
            deadline.start();
            if !backoff.is_completed() {
                // One round with the lock released (see the module docs).
                drop(st);
                backoff.snooze();
                st = self.state.lock();
                continue;
            }
            st.waiting_poppers += 1;
            expired = deadline.wait(&self.not_empty, &mut st);
            st.waiting_poppers -= 1;
        }
    }

    /// Appends under the held lock, releases it, then wakes one popper if
    /// any waits. The ring must have room and be open.
    fn push_back_and_wake(&self, mut st: MutexGuard<'_, State<T>>, v: T) {
        st.items.push_back(v);
        let wake = st.waiting_poppers > 0;
        // Notifying after unlocking lets the woken thread take the lock
        // at once instead of blocking on it again.
        drop(st);
        if wake {
            self.not_empty.notify_one();
        }
    }

    /// Releases the lock after `freed` slots were freed and wakes as many
    /// blocked pushers as could now succeed.
    fn wake_pushers(&self, st: MutexGuard<'_, State<T>>, freed: usize) {
        let waiting = st.waiting_pushers;
        drop(st);
        if waiting == 0 || freed == 0 {
            return;
        }
        if freed == 1 || waiting == 1 {
            self.not_full.notify_one();
        } else {
            self.not_full.notify_all();
        }
    }
}

impl<T> fmt::Debug for LockingRing<T> {
    /// Shows the occupancy, not the items, so `T` need not be `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("LockingRing")
            .field("len", &st.items.len())
            .field("capacity", &self.capacity)
            .field("closed", &st.closed)
            .finish_non_exhaustive()
    }
}
