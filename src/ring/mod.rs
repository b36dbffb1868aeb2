//! Bounded FIFO rings: the buffers everything else is built on.
//!
//! - [`LockingRing`]: a mutex-guarded ring for any number of producers and
//!   consumers, with blocking, deadlines, `force_push` and an O(1) `take_all`.
//! - [`spsc`]: a lock-free ring for exactly one producer thread and one
//!   consumer thread, split into [`spsc::Producer`] and [`spsc::Consumer`].
//!
//! Both know nothing of batches or sinks, and both drop every item still inside
//! exactly once when they go.

mod deadline;
mod error;
#[cfg(not(loom))]
pub(crate) mod fence_lock;
/// Public only under loom, for the lock's own models in `loom-tests/`.
#[cfg(loom)]
#[doc(hidden)]
pub mod fence_lock;
mod locking;
pub mod spsc;

pub use error::{
    ClosedError, PopClosedError, PopTimeoutError, PushTimeoutError, TryPopError, TryPushError,
    WaitError,
};
pub use locking::LockingRing;
