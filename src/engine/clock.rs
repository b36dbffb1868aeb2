//! The engine's notion of "now": the real monotonic clock, or a manual one
//! that tests move forward by hand, so time triggers are tested exactly.

use std::time::{Duration, Instant};

use crate::sync::atomic::{AtomicU64, Ordering};

pub(crate) enum Clock {
    Real,
    Manual { base: Instant, offset_ns: AtomicU64 },
}

impl Clock {
    pub(crate) fn manual() -> Self {
        Clock::Manual {
            base: Instant::now(),
            offset_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::Real => Instant::now(),
            Clock::Manual { base, offset_ns } => {
                *base + Duration::from_nanos(offset_ns.load(Ordering::Acquire))
            }
        }
    }

    /// Moves a manual clock forward; a real clock cannot be moved.
    pub(crate) fn advance(&self, by: Duration) -> bool {
        match self {
            Clock::Real => false,
            Clock::Manual { offset_ns, .. } => {
                let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
                offset_ns.fetch_add(ns, Ordering::AcqRel);
                true
            }
        }
    }
}
