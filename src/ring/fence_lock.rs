//! A mutex whose unlock is a plain store, and the condition it waits on.
//!
//! A `parking_lot` mutex takes and releases its lock with two locked
//! read-modify-writes. In the locking ring both sit on the per-item path
//! (every push takes the tail lock, every pop the cache's), and an idle
//! profile of the insert path put most of its samples on those two
//! instructions. [`FenceLock`] takes the lock with one compare-and-swap and
//! releases it with a release store and the light half of the asymmetric
//! fence pair of `crate::sync` (a compiler fence where `membarrier` is
//! there), then reads a count of sleeping waiters on the same cache line.
//! Waiters pay instead: they poll, then, before they sleep, count
//! themselves and run the heavy fence.
//!
//! # Why no unlock is missed
//!
//! ```text
//! waiter W, holding `park`             unlocker U
//! W1 sleepers += 1                     U1 locked = false (Release)
//! W2 heavy_fence()                     U2 light_fence()
//! W3 try the lock; got it? done        U3 if sleepers > 0:
//! W4 else wait on `unparked`              lock `park`; notify one
//!    (releases `park`), then W3 again
//! ```
//!
//! Read both fences as `fence(SeqCst)` (what they are under loom and without
//! `membarrier`; the asymmetric pair orders the same two cases, as
//! `ring/spsc/parking.rs` sets out). Take the last unlock U before the lock
//! is free for good. If U2 comes after W2 in the SeqCst order, U3 sees W1's
//! count (W counts itself until it holds the lock), and U's notify, which
//! needs `park`, reaches W in W4: W holds `park` from W1 until it is inside
//! the wait, and again from each wake-up until the next wait. If U2 comes
//! first, every load W makes after W2 sees U1's store or a later one; U is
//! the last unlock, so W3 finds the lock free. So a sleeper sleeps only while
//! an unlock that will wake it is still to come; one heavy fence per sleep
//! covers every later retry. `notify_one` is enough: the woken waiter tries
//! the lock, and if another thread took it first, that thread's unlock is a
//! later U.
//!
//! # The condition: an event count
//!
//! A condition variable must release the lock and sleep in one step, which
//! this lock cannot offer. [`Event`] gets the same effect with a counter:
//! a waiter reads the counter while it holds the lock (after finding its
//! condition unmet), releases the lock, and sleeps only while the counter
//! still has that value, checked under the event's own parking mutex. A
//! notifier that changed the state under the lock bumps the counter after
//! unlocking, then takes the parking mutex to notify. The bump is ordered
//! after the waiter's read (the notifier took the lock after the waiter
//! released it), so either the waiter's check under the parking mutex sees
//! the new count, or the waiter is asleep before the notifier can take
//! that mutex, and the notify reaches it.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use crate::backoff::{back_off_then_yield, PARK_AFTER};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{
    light_fence, lock_heavy_fence, prepare_asymmetric_fences, Condvar, Mutex, UnsafeCell,
};

/// A mutual-exclusion lock for a hot path with one uncontended owner most
/// of the time: one locked instruction per lock-unlock pair instead of two.
/// A thread that finds it held polls (spinning, then yielding) for up to
/// `backoff::PARK_AFTER`, then sleeps. No poisoning: a panic while held
/// unlocks it, as with `parking_lot`.
pub struct FenceLock<T> {
    locked: AtomicBool,
    /// Threads asleep in [`lock`](Self::lock) (or woken and not yet
    /// holding the lock). On the lock's own line: every unlock reads it.
    sleepers: AtomicUsize,
    park: Mutex<()>,
    unparked: Condvar,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands `&mut T` to one thread at a time (the holder of
// `locked`), so sharing the lock moves `T` between threads, as
// `std::sync::Mutex` does: `T: Send` is what that needs.
unsafe impl<T: Send> Sync for FenceLock<T> {}
// SAFETY: owning the lock is owning the `T`.
unsafe impl<T: Send> Send for FenceLock<T> {}

/// Proof that the lock is held; unlocks when dropped.
pub struct FenceGuard<'a, T> {
    lock: &'a FenceLock<T>,
    /// Makes the guard `Sync` only for `T: Sync` (it hands out `&T`) and
    /// `Send` only for `T: Send`, as `&mut T` is.
    _data: PhantomData<&'a mut T>,
}

impl<T> FenceLock<T> {
    /// An unlocked lock around `value`.
    pub fn new(value: T) -> Self {
        // Decided here so that no unlock pays for the decision.
        prepare_asymmetric_fences();
        Self {
            locked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            park: Mutex::new(()),
            unparked: Condvar::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, waiting as long as it takes.
    #[inline]
    pub fn lock(&self) -> FenceGuard<'_, T> {
        if !self.try_acquire() {
            self.lock_slow();
        }
        FenceGuard {
            lock: self,
            _data: PhantomData,
        }
    }

    #[inline]
    fn try_acquire(&self) -> bool {
        // Acquire: the holder sees everything the last holder wrote.
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[cold]
    fn lock_slow(&self) {
        // Poll with loads, trying the swap only when the lock looks free,
        // so a waiter does not take the line from the holder on every round.
        // Not under loom, where polling adds only interleavings (see
        // `backoff.rs`); the loop below tries the lock before it sleeps.
        if !cfg!(loom)
            && back_off_then_yield(PARK_AFTER, None, || {
                !self.locked.load(Ordering::Relaxed) && self.try_acquire()
            })
        {
            return;
        }
        // W1-W4 of the module docs.
        let mut park = self.park.lock();
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        lock_heavy_fence();
        while !self.try_acquire() {
            self.unparked.wait(&mut park);
        }
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    /// U1-U3 of the module docs.
    #[inline]
    fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
        light_fence();
        // Relaxed: the fence pair orders it (see the module docs).
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        let _park = self.park.lock();
        self.unparked.notify_one();
    }
}

impl<T> FenceGuard<'_, T> {
    /// Releases the lock, sleeps until `event` is notified (or `deadline`
    /// passes), and takes the lock again. Returns whether the deadline had
    /// passed. May return early (a notification meant for another waiter,
    /// or a spurious wake-up): the caller re-checks its condition, as with
    /// any condition variable.
    pub fn wait(&mut self, event: &Event, deadline: Option<Instant>) -> bool {
        // Read under the lock: see "The condition" in the module docs.
        let seen = event.count.load(Ordering::Relaxed);
        self.lock.unlock();
        let mut timed_out = false;
        {
            let mut park = event.park.lock();
            while event.count.load(Ordering::Relaxed) == seen && !timed_out {
                timed_out = match deadline {
                    Some(at) => event.cv.wait_until(&mut park, at).timed_out(),
                    None => {
                        event.cv.wait(&mut park);
                        false
                    }
                };
            }
        }
        if !self.lock.try_acquire() {
            self.lock.lock_slow();
        }
        timed_out
    }
}

impl<T> Deref for FenceGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no `&mut T` exists elsewhere,
        // and the `&T` cannot outlive the guard (its lifetime is `&self`'s).
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T> DerefMut for FenceGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock and is borrowed mutably, so this
        // is the only reference to `T` until it is dropped.
        self.lock.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T> Drop for FenceGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

/// A condition threads wait for while holding a [`FenceLock`], with
/// [`FenceGuard::wait`]: the lock's condition variable. Notify after the
/// state change it announces, made under the lock; notifying after the
/// lock is released lets the woken thread take it at once.
pub struct Event {
    /// Bumped by every notify; a waiter sleeps only while it is unchanged.
    count: AtomicUsize,
    park: Mutex<()>,
    cv: Condvar,
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Event {
    /// An event nobody waits for yet.
    pub fn new() -> Self {
        Self {
            count: AtomicUsize::new(0),
            park: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Wakes at least one waiter, if any.
    pub fn notify_one(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let _park = self.park.lock();
        self.cv.notify_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let _park = self.park.lock();
        self.cv.notify_all();
    }
}
