//! Waiting without parking.
//!
//! - [`spin_then_yield`]: poll one spin hint apart for a moment, then with a
//!   yield between polls until a time budget ([`PARK_AFTER`]) is spent; the
//!   step in front of every park (the SPSC ring's, the locking ring's, a
//!   flusher thread's), so that a hand-off that is only briefly late never
//!   parks.
//! - [`Backoff`]: spin with growing pauses, then yield, for a wait that is
//!   known to end within a few instructions of another thread's (the C SPSC
//!   consumer settling a push under way).
//!
//! Under loom there is nothing to gain from spinning, and every extra check
//! multiplies the interleavings (a spinning thread would always see the
//! change it waits for, so the park-and-notify protocols the models are
//! there for would go unchecked): `spin_then_yield` polls once, and the
//! callers skip it.

use std::time::{Duration, Instant};

use crate::sync::{spin_loop, thread};

/// Spin with growing pauses, then yield: for a wait known to be a few
/// instructions of another thread's (it never blocks).
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    /// Rounds of exponential spinning (2^0 .. 2^SPIN_LIMIT spin hints).
    const SPIN_LIMIT: u32 = 6;

    /// A fresh backoff.
    pub(crate) fn new() -> Self {
        Self { step: 0 }
    }

    /// Waits a little longer than last time: spin hints first, then
    /// `yield_now` once spinning has gone on for a while (which matters when
    /// the thread we wait for shares our core).
    #[inline]
    pub(crate) fn snooze(&mut self) {
        if self.step <= Self::SPIN_LIMIT {
            for _ in 0..1u32 << self.step {
                spin_loop();
            }
        } else {
            thread::yield_now();
        }
        if self.step <= Self::SPIN_LIMIT {
            self.step += 1;
        }
    }
}

/// How long a waiter polls (yielding its core between polls) before it
/// parks, where parking is costly: the SPSC ring's heavy fence
/// (`membarrier` interrupts every CPU running the other side, tens of
/// microseconds on a virtual machine and up to milliseconds in the tail),
/// or a futex wake-up the other side pays and a thread switch. A waiter
/// that parks within microseconds does so thousands of times a second in a
/// busy hand-off, and each park stalls the side it waits for; past this
/// budget the wait is long enough for the park to pay for itself.
pub(crate) const PARK_AFTER: Duration = Duration::from_micros(50);

/// Polls before the first yield, one spin hint apart: a hand-off that runs
/// full or empty mostly waits for the other side's very next step, a few
/// hundred cycles away.
const EAGER_POLLS: u32 = 64;

/// Polls between two looks at the clock while yielding.
const POLLS_PER_CLOCK: u32 = 8;

/// Waits for `ready` without parking: polls it one spin hint apart a few
/// dozen times, then with a `yield_now` between polls until `budget` has
/// passed (or `deadline`, if sooner). Returns whether `ready` said yes; the
/// caller parks if not. Under loom it polls once.
pub(crate) fn spin_then_yield(
    budget: Duration,
    deadline: Option<Instant>,
    ready: impl FnMut() -> bool,
) -> bool {
    poll_then_yield(budget, deadline, EAGER_POLLS, |_| 1, ready)
}

/// [`spin_then_yield`] with growing pauses (1, 2, 4 .. 64 spin hints)
/// between the first polls: for a waiter whose every poll reads a line the
/// other side writes on each step (a lock word, a counter bumped under a
/// lock). Each read takes that line away from the writer, whose next locked
/// instruction then waits for it; polling one hint apart made a consumer of
/// the locking ring cost its producer a cache miss per item (`perf
/// record`, 2026-12-03: most of `push_blocking`'s samples on the lock's
/// compare-and-swap).
pub(crate) fn back_off_then_yield(
    budget: Duration,
    deadline: Option<Instant>,
    ready: impl FnMut() -> bool,
) -> bool {
    poll_then_yield(
        budget,
        deadline,
        Backoff::SPIN_LIMIT + 1,
        |round| 1 << round,
        ready,
    )
}

/// Both of the above: `eager` polls, `pause(round)` spin hints after the
/// poll of each round, then the yielding phase.
fn poll_then_yield(
    budget: Duration,
    deadline: Option<Instant>,
    eager: u32,
    pause: impl Fn(u32) -> u32,
    mut ready: impl FnMut() -> bool,
) -> bool {
    if cfg!(loom) {
        return ready();
    }
    for round in 0..eager {
        if ready() {
            return true;
        }
        for _ in 0..pause(round) {
            spin_loop();
        }
    }
    yield_until(budget, deadline, ready)
}

/// The yielding phase: polls with a `yield_now` between polls until
/// `budget` from now (or `deadline`, if sooner).
fn yield_until(
    budget: Duration,
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> bool,
) -> bool {
    let start = Instant::now();
    let end = start.checked_add(budget).unwrap_or(start);
    let until = deadline.map_or(end, |d| d.min(end));
    loop {
        for _ in 0..POLLS_PER_CLOCK {
            if ready() {
                return true;
            }
            thread::yield_now();
        }
        if Instant::now() >= until {
            return ready();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use super::{back_off_then_yield, spin_then_yield, Backoff};

    #[test]
    fn spins_longer_each_round_then_only_yields() {
        let mut b = Backoff::new();
        for round in 0..=Backoff::SPIN_LIMIT {
            assert_eq!(b.step, round);
            b.snooze();
        }
        b.snooze();
        assert_eq!(
            b.step,
            Backoff::SPIN_LIMIT + 1,
            "the yield rounds do not grow"
        );
    }

    #[test]
    fn spin_then_yield_returns_as_soon_as_ready_and_gives_up_after_the_budget() {
        let mut polls = 0;
        assert!(spin_then_yield(Duration::from_secs(60), None, || {
            polls += 1;
            polls == 100
        }));
        assert_eq!(polls, 100, "kept polling after ready");

        let start = Instant::now();
        assert!(!spin_then_yield(Duration::from_millis(2), None, || false));
        assert!(start.elapsed() >= Duration::from_millis(2));

        // A deadline sooner than the budget ends the wait.
        let start = Instant::now();
        let deadline = Some(start + Duration::from_millis(1));
        assert!(!spin_then_yield(Duration::from_secs(60), deadline, || {
            false
        }));
        assert!(start.elapsed() < Duration::from_secs(60));
    }

    /// The backing-off variant polls 7 times while spinning (after 1, 2 ..
    /// 64 hints), then keeps polling while it yields, and ends the same way.
    #[test]
    fn back_off_then_yield_returns_as_soon_as_ready_and_gives_up_after_the_budget() {
        for ready_at in [3, 7, 8, 40] {
            let mut polls = 0;
            assert!(back_off_then_yield(Duration::from_secs(60), None, || {
                polls += 1;
                polls == ready_at
            }));
            assert_eq!(polls, ready_at, "kept polling after ready");
        }
        let start = Instant::now();
        assert!(!back_off_then_yield(Duration::from_millis(2), None, || {
            false
        }));
        assert!(start.elapsed() >= Duration::from_millis(2));
        let deadline = Some(Instant::now() + Duration::from_millis(1));
        assert!(!back_off_then_yield(
            Duration::from_secs(60),
            deadline,
            || false
        ));
    }
}
