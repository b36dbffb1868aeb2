//! Errors shared by both rings. Each operation has its own small type, and
//! every error from a push gives the item back.

use core::fmt;

/// Why [`try_push`](super::LockingRing::try_push) could not take the item;
/// the item comes back inside.
#[derive(PartialEq, Eq)]
pub enum TryPushError<T> {
    /// The ring holds `capacity` items.
    Full(T),
    /// The ring was closed (or, for SPSC, the consumer is gone).
    Closed(T),
}

/// Why a push with a deadline gave up; the item comes back inside.
#[derive(PartialEq, Eq)]
pub enum PushTimeoutError<T> {
    /// The ring stayed full until the deadline.
    Timeout(T),
    /// The ring was closed (or, for SPSC, the consumer is gone).
    Closed(T),
}

/// A blocking push failed because the ring was closed; the item comes back.
#[derive(PartialEq, Eq)]
pub struct ClosedError<T>(pub T);

/// Why [`try_pop`](super::LockingRing::try_pop) returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryPopError {
    /// Nothing to pop right now.
    Empty,
    /// Nothing to pop, and nothing will ever come: closed and drained.
    Closed,
}

/// Why a pop with a deadline returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopTimeoutError {
    /// Still empty at the deadline.
    Timeout,
    /// Closed and drained.
    Closed,
}

/// A blocking pop found the ring closed and drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopClosedError;

/// Why waiting for room or for items ended without the condition being met
/// ([`wait_for_slots`](super::spsc::Producer::wait_for_slots),
/// [`wait_for_len`](super::spsc::Consumer::wait_for_len)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError {
    /// The condition was still unmet at the deadline.
    Timeout,
    /// The condition can never be met: the ring is closed (for the producer:
    /// nothing more may be pushed; for the consumer: closed and fewer items
    /// left than asked for).
    Closed,
}

impl<T> TryPushError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Closed(v) => v,
        }
    }
}

impl<T> PushTimeoutError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Timeout(v) | Self::Closed(v) => v,
        }
    }
}

impl<T> ClosedError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        self.0
    }
}

// Debug without requiring `T: Debug`, so any item type can use `?`/`unwrap`.
impl<T> fmt::Debug for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "Full(..)",
            Self::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Debug for PushTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout(_) => "Timeout(..)",
            Self::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Debug for ClosedError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClosedError(..)")
    }
}

impl<T> fmt::Display for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "ring is full",
            Self::Closed(_) => "ring is closed",
        })
    }
}

impl<T> fmt::Display for PushTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout(_) => "ring stayed full until the deadline",
            Self::Closed(_) => "ring is closed",
        })
    }
}

impl<T> fmt::Display for ClosedError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring is closed")
    }
}

impl fmt::Display for TryPopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "ring is empty",
            Self::Closed => "ring is closed and drained",
        })
    }
}

impl fmt::Display for PopTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "ring stayed empty until the deadline",
            Self::Closed => "ring is closed and drained",
        })
    }
}

impl fmt::Display for PopClosedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring is closed and drained")
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "ring condition still unmet at the deadline",
            Self::Closed => "ring is closed",
        })
    }
}

impl<T> std::error::Error for TryPushError<T> {}
impl<T> std::error::Error for PushTimeoutError<T> {}
impl<T> std::error::Error for ClosedError<T> {}
impl std::error::Error for TryPopError {}
impl std::error::Error for PopTimeoutError {}
impl std::error::Error for PopClosedError {}
impl std::error::Error for WaitError {}

// The conversions crossbeam-channel offers between its matching errors
// (`SendError` into `TrySendError`/`SendTimeoutError`, `RecvError` into
// `TryRecvError`/`RecvTimeoutError`): a blocking call's "closed" is also
// the non-blocking and the timed call's "closed", so `?` can carry it.

impl<T> From<ClosedError<T>> for TryPushError<T> {
    fn from(e: ClosedError<T>) -> Self {
        Self::Closed(e.0)
    }
}

impl<T> From<ClosedError<T>> for PushTimeoutError<T> {
    fn from(e: ClosedError<T>) -> Self {
        Self::Closed(e.0)
    }
}

impl From<PopClosedError> for TryPopError {
    fn from(_: PopClosedError) -> Self {
        Self::Closed
    }
}

impl From<PopClosedError> for PopTimeoutError {
    fn from(_: PopClosedError) -> Self {
        Self::Closed
    }
}

impl From<PopClosedError> for WaitError {
    fn from(_: PopClosedError) -> Self {
        Self::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_error_converts_to_the_closed_case_of_every_matching_error() {
        assert_eq!(TryPushError::from(ClosedError(7)).into_inner(), 7);
        assert!(matches!(
            PushTimeoutError::from(ClosedError(8)),
            PushTimeoutError::Closed(8)
        ));
        assert_eq!(TryPopError::from(PopClosedError), TryPopError::Closed);
        assert_eq!(
            PopTimeoutError::from(PopClosedError),
            PopTimeoutError::Closed
        );
        assert_eq!(WaitError::from(PopClosedError), WaitError::Closed);
    }
}
