//! A bounded FIFO ring behind two mutexes, for any number of producers and
//! consumers, with blocking, deadlines, `force_push`, batch pops and an O(1)
//! `take_all`.
//!
//! # Two halves: the pushers' tail and the consumers' cache
//!
//! The items live in two deques, each behind its own mutex: the *tail*,
//! where pushes append, and the *cache*, from which pops take. A pop that
//! finds the cache empty takes the tail lock once and swaps the whole tail
//! into the cache (O(1)); the pops after it take the cache's lock only,
//! which producers never touch. So a consumer keeping up with producers
//! pays one contended lock per batch of waiting items instead of one per
//! item, and producers fight only each other for the tail lock. Every cached
//! item is older than every tail item (the cache is refilled only when
//! empty, from the whole tail), so the ring stays one FIFO: `len`,
//! `try_pop` and the rest keep their MPMC meaning (see the methods' docs for
//! the little that changes: `take_all`'s O(1) swap, storage, `force_push`).
//!
//! Lock order: the cache's lock, then the tail's. The tail lock also guards
//! the closed flag and the count of waiting poppers; the number of cached
//! items is an atomic (`cached`) written only by the cache lock's holder and
//! raised only while the tail lock is held too. A pusher checks for room
//! against `tail.len() + cache_bound`, where `cache_bound` (under the tail
//! lock) is `cached` as last read: `cached` only falls between refills, so
//! the bound is safe, and the pusher re-reads `cached` (the consumers' line)
//! only when the bound says full.
//!
//! # Wake-up protocol (why no wake-up is lost)
//!
//! Both locks are `FenceLock`s (`ring/fence_lock.rs`): one locked
//! instruction per lock-unlock pair, where a `parking_lot` mutex takes two.
//! Their condition variables are event counts (`fence_lock::Event`): a
//! waiter reads the count under the lock and sleeps only while it is
//! unchanged, and a notify bumps it; for the argument below that is a
//! condition variable's "release the lock and sleep in one step".
//!
//! *Poppers* wait on the tail lock's condition, as in a one-lock queue: a
//! popper that finds the cache and the tail empty (`cached == 0` read under
//! the tail lock, where it can only rise) increments its count and waits
//! on `not_empty` while still holding the tail lock, and every push happens
//! under that lock and notifies after unlocking if the count is non-zero;
//! so the push either ran before the check (the popper saw it) or after the
//! popper read the event count (the notify reaches it).
//!
//! *Batch poppers* (`pop_batch_timeout`, waiting for `n` items) wait on a
//! condition of their own, `batch_ready`, so that pushes do not wake them
//! item by item: under both locks a batch popper finds fewer than `n`
//! items, sets the tail's `batch_want` to at most `n` and `cache_bound` to
//! the cache's exact length, and waits holding the tail lock. Every push
//! happens under that lock and compares `items.len() + cache_bound` (at
//! least the ring's length, since `cache_bound` bounds the cache from
//! above until a refill updates it) with `batch_want`; the push that
//! reaches it resets `batch_want` and notifies every batch popper after
//! unlocking. Only a push raises the count, so the argument is the
//! poppers' one: the count was reached either before the check (the popper
//! saw it) or by a push after the popper read the event count (the notify
//! reaches it). Poppers with different `n` share the smallest; each woken
//! one that is still short registers again.
//!
//! *Pushers* wait for slots that consumers free under the cache lock
//! without touching the tail lock, so their count (`waiting_pushers`) is an
//! atomic the consumer reads with no lock, with an asymmetric fence pair
//! (`crate::sync`):
//!
//! ```text
//! pusher, holding the tail lock          consumer, after freeing slots
//! P1 waiting_pushers += 1                C1 cached = new, lower count
//! P2 heavy_fence()                       C2 light_fence()
//! P3 re-read cached; room? take it       C3 if waiting_pushers > 0:
//! P4 else wait on not_full (unlocks)        lock tail; unlock; notify
//! ```
//!
//! With both fences read as `fence(SeqCst)` (what they are under loom and
//! without `membarrier`): if P2 comes first in the SeqCst order, C3 sees
//! P1's count; the consumer then takes the tail lock, which the pusher holds
//! from P1 until P4 has read the event count, so the notify reaches it. If C2 comes
//! first, P3 sees C1's lower count and the pusher does not sleep. The
//! asymmetric pair gives the same two cases for the reason set out in
//! `ring/spsc/parking.rs`; the consumer's per-item cost is then a compiler
//! fence and a load from a line pushers write only when they go to sleep.
//! Without the heavy half loom finds the lost wake-up (`loom-tests/breakage.sh`).
//!
//! A non-zero count can over-approximate (a woken pusher not yet back makes
//! us notify once more, which costs one lock) but never under-approximate.
//! One `notify_one` per item added (or slot freed) is enough because a woken
//! thread always re-checks its condition first and takes the item (slot) if
//! it is there; if it finds nothing, another thread consumed that very unit,
//! so no unit is left with a sleeping waiter and no pending wake-up. Timed
//! waiters re-check before reporting a timeout for the same reason: a
//! notification that raced with the deadline is not thrown away. Operations
//! that free many slots at once (`pop_batch`, `take_all`) or change the state
//! for everyone (`close`) use `notify_all`.
//!
//! The fast paths (room to push, an item to pop, nobody waiting) take one
//! lock and make no notify call at all.
//!
//! # Spinning before parking
//!
//! A thread that finds the ring full (or empty) first polls with the locks
//! released (spins with growing pauses, then yields, for up to
//! `backoff::PARK_AFTER`), re-checks under the locks once something moved,
//! and only then registers as a waiter and parks. (Batch poppers park at
//! once: they wait for many items, and one wake-up per batch costs less
//! than polling through it.) While it polls it is not
//! counted, so the other side pays no wake-up system call for it; that is
//! what keeps a ring that runs full or empty under load from costing one
//! futex wake per item. A popper watches the tail's arrivals counter (on a
//! line of its own, bumped when an item lands in an empty tail) and a
//! pusher the cache's length (`cached`, which every pop and refill moves),
//! so neither takes the other side's lock on every round, and a popper's
//! polls do not take the lock's line from the pushers. The pauses matter
//! as much: a consumer polling one spin hint apart read the pushers' line
//! between every two pushes, and each push then waited for that line.
//! None of this changes the argument above:
//! what they watch is only a hint, a polling thread re-checks the state
//! itself under the locks, and it counts itself before its final
//! check-then-park.

mod batch;
mod halves;

use std::fmt;
use std::time::Duration;

use super::error::{
    ClosedError, PopClosedError, PopTimeoutError, PushTimeoutError, TryPopError, TryPushError,
};
use halves::{Cache, Tail};

/// Rings larger than this start with this many slots allocated and grow on
/// demand, so `LockingRing::new(usize::MAX)` ("practically unbounded") does
/// not try to allocate the whole capacity up front.
const MAX_PREALLOCATED_SLOTS: usize = 64 * 1024;

/// A bounded FIFO ring guarded by two mutexes (one for pushers, one for
/// poppers), for any number of producer and consumer threads.
///
/// Every method takes `&self`; share the ring with an `Arc` (or scoped
/// threads). Items leave in the order they entered. A full ring refuses
/// ([`try_push`](Self::try_push)), blocks ([`push`](Self::push),
/// [`push_timeout`](Self::push_timeout)) or overwrites its oldest item
/// ([`force_push`](Self::force_push)); an empty one says so
/// ([`try_pop`](Self::try_pop)) or blocks ([`pop`](Self::pop),
/// [`pop_timeout`](Self::pop_timeout)). After [`close`](Self::close) pushes
/// fail and give the item back, while pops drain what is left and only then
/// report that the ring is closed. A call that has to block polls for up to
/// 50 µs (spinning briefly, then yielding its core) before it sleeps, and
/// wakes the other side only if that side sleeps.
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
    /// The consumers' half: the cached items and how many there are.
    cache: Cache<T>,
    /// The producers' half: the newest items, the closed flag, and the
    /// waiters on it.
    tail: Tail<T>,
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
    /// storage as they fill. The consumers' cache starts with no storage and
    /// then trades buffers with the tail, so a busy ring keeps two buffers
    /// in circulation (together up to twice the capacity's worth) and
    /// allocates nothing in a steady state.
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
            cache: Cache::new(),
            tail: Tail::new(capacity.min(MAX_PREALLOCATED_SLOTS)),
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
        let mut st = self.tail.lock();
        if st.closed {
            return Err(TryPushError::Closed(v));
        }
        if !self.tail.has_room(&mut st, &self.cache, self.capacity) {
            return Err(TryPushError::Full(v));
        }
        self.tail.push_back_and_wake(st, v);
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
    /// This is the drop-oldest overflow policy: the newest data wins. On a
    /// full ring it takes the consumers' lock as well as the producers' one,
    /// since the oldest item may be in the consumers' cache.
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
        {
            let mut st = self.tail.lock();
            if st.closed {
                return Err(ClosedError(v));
            }
            if self.tail.has_room(&mut st, &self.cache, self.capacity) {
                self.tail.push_back_and_wake(st, v);
                return Ok(None);
            }
        }
        // Full, as far as the tail can tell: the oldest item may be in the
        // cache, so take both locks (in their order) and look again.
        let mut cache = self.cache.lock();
        let mut st = self.tail.lock();
        if st.closed {
            return Err(ClosedError(v));
        }
        if cache.len() + st.items.len() < self.capacity {
            drop(cache);
            self.tail.push_back_and_wake(st, v);
            return Ok(None);
        }
        // The length does not change, so no waiter's condition changes
        // either: a full ring has no waiting poppers to wake, and pushers
        // still find it full.
        let evicted = match cache.pop_front() {
            Some(old) => {
                self.cache.set_cached(&cache);
                Some(old)
            }
            None => st.items.pop_front(),
        };
        self.tail.append(&mut st, v);
        Ok(evicted)
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
        let mut cache = self.cache.lock();
        if cache.is_empty() {
            self.refill_for_pop(&mut cache)?;
        }
        let v = cache.pop_front();
        self.cache.set_cached(&cache);
        drop(cache);
        self.wake_pushers(1);
        v.ok_or(TryPopError::Empty)
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
        let cache = self.cache.lock();
        cache.len() + self.tail.lock().items.len()
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
        self.len() == 0
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
        self.tail.lock().closed
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
        let mut st = self.tail.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        // Pollers look again at once rather than after their budget.
        self.tail.bump_arrivals(&st);
        // Pushers count themselves under this lock, so a plain read here
        // sees every pusher that is (or is about to be) asleep.
        let wake_pushers = self.tail.waiting_pushers() > 0;
        let wake_poppers = st.waiting_poppers > 0;
        let wake_batchers = st.waiting_batchers > 0;
        drop(st);
        if wake_pushers {
            self.tail.not_full.notify_all();
        }
        if wake_poppers {
            self.tail.not_empty.notify_all();
        }
        if wake_batchers {
            self.tail.batch_ready.notify_all();
        }
    }
}

impl<T> fmt::Debug for LockingRing<T> {
    /// Shows the occupancy, not the items, so `T` need not be `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = self.cache.lock();
        let st = self.tail.lock();
        f.debug_struct("LockingRing")
            .field("len", &(cache.len() + st.items.len()))
            .field("capacity", &self.capacity)
            .field("closed", &st.closed)
            .finish_non_exhaustive()
    }
}
