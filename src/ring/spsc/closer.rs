//! Closing a ring from a thread that holds neither half.

use core::fmt;

use super::shared::Shared;
use crate::sync::Arc;

/// Closes a ring, and nothing else: it can reach the ring's flags and
/// parking spot but no slot and no index, so any thread may hold and use it
/// while the two halves stay with their own threads.
///
/// This is for an owner that keeps both halves where only their own threads
/// may touch them (the C ring keeps each in an `UnsafeCell`): a third
/// thread must not make a reference to either half just to close the ring.
/// Made by [`Producer::closer`](super::Producer::closer).
pub(crate) struct Closer<T> {
    shared: Arc<Shared<T>>,
}

// SAFETY: a `Closer` only ever touches `Shared::control` (atomics, a mutex
// and condition variables, all made for use from many threads); it never
// reads or writes a slot, so it hands no `T` between threads. Keeping the
// allocation alive from another thread is what the `Arc` is for; the items
// inside are dropped by whichever handle goes last, hence `T: Send`.
unsafe impl<T: Send> Send for Closer<T> {}
// SAFETY: as for `Send`: every method takes `&self` and touches only
// thread-safe state.
unsafe impl<T: Send> Sync for Closer<T> {}

impl<T> Closer<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        Self { shared }
    }

    /// Closes the ring and wakes both halves if they sleep: pushes fail from
    /// now on, pops drain what is left and then report `Closed`. Closing
    /// again does nothing more.
    ///
    /// A push that is under way on the producer's thread at this moment may
    /// still complete; what it publishes stays poppable. (The C ring counts
    /// its pushes so that its consumer can wait for such a push to settle.)
    pub(crate) fn close(&self) {
        self.shared.close_both();
    }

    /// Whether the ring is closed (by this handle, either half's `close`,
    /// or the drop of either half).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl<T> fmt::Debug for Closer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closer")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::ring::spsc::channel;
    use crate::ring::{PopTimeoutError, PushTimeoutError, TryPopError, TryPushError};
    use std::time::Duration;

    #[test]
    fn a_closer_on_another_thread_ends_both_halves() {
        let (mut tx, mut rx) = channel(2);
        let closer = tx.closer();
        tx.try_push(1).unwrap();
        std::thread::spawn(move || {
            closer.close();
            closer.close(); // twice is fine
            assert!(closer.is_closed());
        })
        .join()
        .unwrap();
        assert!(tx.is_closed() && rx.is_closed());
        assert_eq!(tx.try_push(2), Err(TryPushError::Closed(2)));
        assert_eq!(rx.try_pop(), Ok(1));
        assert_eq!(rx.try_pop(), Err(TryPopError::Closed));
    }

    #[test]
    fn a_close_ends_the_waits_of_both_halves() {
        // A full ring, so the producer waits; an empty one, so the consumer
        // waits. Each waiter ends with `Closed` whether the close comes
        // before or during its wait; a lost wake-up would hang until the
        // generous timeout and fail the assertion.
        let (mut full_tx, mut full_rx) = channel::<u32>(1);
        full_tx.try_push(7).unwrap();
        let (empty_tx, mut empty_rx) = channel::<u32>(1);
        let closers = [full_tx.closer(), empty_tx.closer()];
        let producer = std::thread::spawn(move || full_tx.push_timeout(8, WAIT));
        let consumer = std::thread::spawn(move || empty_rx.pop_timeout(WAIT));
        for closer in &closers {
            closer.close();
        }
        assert_eq!(producer.join().unwrap(), Err(PushTimeoutError::Closed(8)));
        assert_eq!(consumer.join().unwrap(), Err(PopTimeoutError::Closed));
        assert_eq!(full_rx.try_pop(), Ok(7));
        assert_eq!(full_rx.try_pop(), Err(TryPopError::Closed));
    }

    const WAIT: Duration = Duration::from_secs(60);
}
