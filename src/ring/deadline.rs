//! The deadline of a blocking call of the locking ring, and whether it may
//! poll before parking.

use std::time::{Duration, Instant};

use super::fence_lock::{Event, FenceGuard};

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

    /// Whether to poll before parking: not for a zero timeout, which means
    /// "do not wait", and not under loom (see `backoff.rs`).
    pub(super) fn may_poll(&self) -> bool {
        !cfg!(loom) && self.timeout != Some(Duration::ZERO)
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

    /// Waits for `event`; returns whether the deadline has passed.
    pub(super) fn wait<S>(&mut self, event: &Event, guard: &mut FenceGuard<'_, S>) -> bool {
        let at = self.start();
        guard.wait(event, at)
    }
}
