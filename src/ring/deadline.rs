//! The deadline of a blocking call of the locking ring, and the back-off
//! it spends before parking.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::sync::{Condvar, MutexGuard};

/// Resolves a relative timeout into an absolute deadline the first time an
/// operation finds itself blocked, so back-off rounds and later (spurious or
/// stolen) wake-ups wait only for what is left.
pub(super) struct Deadline {
    timeout: Option<Duration>,
    at: Option<Option<Instant>>,
}

impl Deadline {
    pub(super) fn new(timeout: Option<Duration>) -> Self {
        Self { timeout, at: None }
    }

    /// The back-off to spend before parking: a zero timeout means "do not
    /// wait", so it skips it.
    pub(super) fn backoff(&self) -> Backoff {
        match self.timeout {
            Some(t) if t.is_zero() => Backoff::completed(),
            _ => Backoff::new(),
        }
    }

    /// Fixes the deadline on the first call (when the operation first finds
    /// itself blocked) and returns it; `None` means no deadline, including
    /// one beyond what `Instant` can represent, which is as good as never.
    pub(super) fn start(&mut self) -> Option<Instant> {
        let timeout = self.timeout?;
        *self
            .at
            .get_or_insert_with(|| Instant::now().checked_add(timeout))
    }

    /// Waits on `cv`; returns whether the deadline has passed.
    pub(super) fn wait<S>(&mut self, cv: &Condvar, guard: &mut MutexGuard<'_, S>) -> bool {
        match self.start() {
            Some(at) => cv.wait_until(guard, at).timed_out(),
            None => {
                cv.wait(guard);
                false
            }
        }
    }
}
