//! Blocking without taxing the fast path: a side that must wait raises a
//! flag and sleeps on a condition variable; the other side looks at the flag
//! after each publication and takes the lock only when it is raised.
//!
//! # Why no wake-up is lost
//!
//! Waiter W (say the consumer waiting for items) and publisher P (the
//! producer) run:
//!
//! ```text
//! W1  waiting = true                    P1  tail = new            (Release)
//! W2  heavy_fence()                     P2  light_fence()
//! W3  lock; check condition (reads tail)    P3  if waiting { lock; notify; unlock }
//! W4  if unmet: cv.wait (unlocks)
//! ```
//!
//! Read the fences as `fence(SeqCst)` first (which is what both are without
//! `membarrier`, and under loom). The two fences are then ordered one way or
//! the other in the single total order of SeqCst operations:
//!
//! - W2 before P2: P3 reads `waiting` after its fence, so it sees W1's `true`
//!   (C++ [atomics.fences]: a store before one SeqCst fence is visible to a
//!   load after a later one). P then locks. Either W still holds the lock,
//!   checking: P waits until W is inside `cv.wait` (which released it), and
//!   the notify wakes W. Or W has not locked yet: P's unlock happens-before
//!   W's lock, so W's check sees P1's tail and W does not sleep.
//! - P2 before W2: by the same rule W3's read of `tail` sees P1 (or later),
//!   so W's check finds the condition met and W does not sleep.
//!
//! # Why the asymmetric pair gives the same two cases
//!
//! P2 runs on every publication, W2 only on the way into the condition
//! variable, so P2 is the light half (a compiler fence: P1 and P3 stay in
//! program order in the instruction stream, but the CPU may still let the
//! load P3 pass the buffered store P1) and W2 the heavy half
//! (`membarrier(PRIVATE_EXPEDITED)`: every CPU running a thread of this
//! process executes a full barrier before W2 returns, and W2 is itself a
//! full barrier for W). Look at where P's CPU is when that barrier hits it:
//!
//! - P has not yet executed P3: P's CPU runs a full barrier at that point,
//!   after W1 became visible (W2 is a full barrier for W before it sends the
//!   interrupts), so P3, which comes later, reads `waiting == true`: the
//!   first case above.
//! - P has executed P3 (so P1, before it in the stream, too): the barrier
//!   drains P's store buffer, so P1 is visible to everyone before W2
//!   returns, and W3 reads the new tail: the second case. (If P3 read
//!   `true`, both happen; a stale wake-up is harmless, see below.)
//! - P is not running at all: the kernel ran a full barrier when it
//!   switched P out, which orders P as in one of the cases above.
//!
//! That is exactly what the argument above used of the SeqCst fences, so it
//! carries over, and loom checks it with both halves as `fence(SeqCst)`.
//! Without the heavy half (a compiler fence on both sides), loom finds the
//! lost wake-up: see `loom-tests/tests/spsc.rs`.
//!
//! A condition W waits for is only ever made true by a publication followed
//! by P2/P3, or by close/drop, which sets `closed` and then always locks and
//! notifies ([`Parking::wake_now`]): W checks `closed` under the lock, so it
//! either sees it or is already waiting when the notify comes. W re-checks
//! after every wake-up, so spurious or early wake-ups (e.g. when it waits for
//! `n` items and only one came) just send it back to sleep.
//!
//! Each side has one waiter at most (the handles are `&mut self`), hence one
//! flag and one condition variable per side and `notify_one`. A stale `true`
//! (W cleared it after P read it) costs P one useless lock, nothing more.
//!
//! W does not sleep as soon as its condition fails: the heavy fence is
//! costly (see `backoff::PARK_AFTER`), so W first polls, as the spinning peers do.

use std::time::Instant;

use crate::backoff::{spin_then_yield, PARK_AFTER};
use crate::ring::WaitError;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{heavy_fence, light_fence, prepare_asymmetric_fences, Condvar, Mutex};

/// Which half of the ring waits or is woken.
#[derive(Debug, Clone, Copy)]
pub(super) enum Side {
    /// The producer, waiting for free slots.
    Producer,
    /// The consumer, waiting for items.
    Consumer,
}

/// What a waiter's condition says right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Poll {
    /// Met: stop waiting.
    Ready,
    /// Not met yet.
    Pending,
    /// Can never be met any more.
    Closed,
}

/// One side's place to sleep.
#[derive(Debug)]
struct Sleeper {
    waiting: AtomicBool,
    cv: Condvar,
}

/// The slow path shared by both halves.
#[derive(Debug)]
pub(super) struct Parking {
    lock: Mutex<()>,
    producer: Sleeper,
    consumer: Sleeper,
}

impl Parking {
    pub(super) fn new() -> Self {
        // Decide the fences now, so no operation on the ring pays for it.
        prepare_asymmetric_fences();
        let sleeper = || Sleeper {
            waiting: AtomicBool::new(false),
            cv: Condvar::new(),
        };
        Self {
            lock: Mutex::new(()),
            producer: sleeper(),
            consumer: sleeper(),
        }
    }

    fn sleeper(&self, side: Side) -> &Sleeper {
        match side {
            Side::Producer => &self.producer,
            Side::Consumer => &self.consumer,
        }
    }

    /// Called by the publisher right after storing its index (P2, P3 above):
    /// wakes `side` if it announced that it sleeps.
    #[inline]
    pub(super) fn wake(&self, side: Side) {
        light_fence();
        let sleeper = self.sleeper(side);
        // Relaxed: the fence pair orders this load after the publication.
        if sleeper.waiting.load(Ordering::Relaxed) {
            self.notify(sleeper);
        }
    }

    /// Wakes `side` unconditionally; for close and drop, which are rare and
    /// must not depend on the flag (see the module docs).
    pub(super) fn wake_now(&self, side: Side) {
        self.notify(self.sleeper(side));
    }

    #[cold]
    fn notify(&self, sleeper: &Sleeper) {
        let _guard = self.lock.lock();
        sleeper.cv.notify_one();
    }

    /// Waits until `poll` says [`Poll::Ready`] (`Ok`) or [`Poll::Closed`]
    /// (`Err(Closed)`), or `deadline` passes (`Err(Timeout)`). Polls eagerly
    /// for a moment, then yields between polls for up to `PARK_AFTER`, then
    /// sleeps (W1..W4 above).
    pub(super) fn wait(
        &self,
        side: Side,
        deadline: Option<Instant>,
        mut poll: impl FnMut() -> Poll,
    ) -> Result<(), WaitError> {
        let mut last = Poll::Pending;
        spin_then_yield(PARK_AFTER, deadline, || {
            last = poll();
            last != Poll::Pending
        });
        match last {
            Poll::Ready => return Ok(()),
            Poll::Closed => return Err(WaitError::Closed),
            Poll::Pending => {}
        }

        let sleeper = self.sleeper(side);
        sleeper.waiting.store(true, Ordering::Relaxed);
        // Only the step into the condition variable pays the heavy half of
        // the pair; the spinning above never does.
        heavy_fence();
        let mut guard = self.lock.lock();
        let outcome = loop {
            match poll() {
                Poll::Ready => break Ok(()),
                Poll::Closed => break Err(WaitError::Closed),
                Poll::Pending => {}
            }
            match deadline {
                None => sleeper.cv.wait(&mut guard),
                Some(deadline) => {
                    if sleeper.cv.wait_until(&mut guard, deadline).timed_out() {
                        break match poll() {
                            Poll::Ready => Ok(()),
                            Poll::Closed => Err(WaitError::Closed),
                            Poll::Pending => Err(WaitError::Timeout),
                        };
                    }
                }
            }
        };
        sleeper.waiting.store(false, Ordering::Relaxed);
        drop(guard);
        outcome
    }
}

/// The instant `timeout` from now; `None` (wait forever) if that is beyond
/// what `Instant` can represent.
pub(super) fn deadline_after(timeout: std::time::Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
