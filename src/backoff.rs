//! The wait loop in front of every park: spin a little, then yield, then
//! tell the caller to block (the shape of crossbeam's `Backoff`). Used by
//! the SPSC ring's parking and by the locking ring's blocking calls.
//!
//! Under loom there is nothing to gain from spinning, and every extra check
//! multiplies the interleavings (a spinning thread would always see the
//! change it waits for, so the park-and-notify protocols the models are
//! there for would go unchecked): a backoff is completed from the start.

use crate::sync::{spin_loop, thread};

/// Spin, then yield, then block.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    /// Rounds of exponential spinning (2^0 .. 2^SPIN_LIMIT spin hints).
    const SPIN_LIMIT: u32 = 6;
    /// Rounds after which blocking beats yielding.
    const YIELD_LIMIT: u32 = 10;

    /// A fresh backoff.
    pub(crate) fn new() -> Self {
        Self { step: 0 }
    }

    /// A backoff that is completed already: for a wait that must not spin
    /// (a zero timeout).
    pub(crate) fn completed() -> Self {
        Self {
            step: Self::YIELD_LIMIT + 1,
        }
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
        if self.step <= Self::YIELD_LIMIT {
            self.step += 1;
        }
    }

    /// True once waiting longer should block instead of burning CPU; always
    /// under loom.
    #[inline]
    pub(crate) fn is_completed(&self) -> bool {
        cfg!(loom) || self.step > Self::YIELD_LIMIT
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Backoff;

    #[test]
    fn completes_after_the_spin_and_yield_rounds() {
        let mut b = Backoff::new();
        let mut rounds = 0;
        while !b.is_completed() {
            b.snooze();
            rounds += 1;
        }
        assert_eq!(rounds, Backoff::YIELD_LIMIT + 1);
        assert!(Backoff::completed().is_completed());
    }
}
