//! A lock-free bounded ring for exactly one producer thread and one consumer
//! thread.
//!
//! [`channel`] makes the ring and splits it into a [`Producer`] and a
//! [`Consumer`]. Each half is owned by one thread at a time; the only shared
//! writes on the fast path are the producer's `tail` and the consumer's
//! `head`, each on its own cache line, and each half keeps a copy of the
//! other's index so it reads the other's line only when its copy says "full"
//! (producer) or "empty" (consumer). Batch operations ([`Producer::push_slice`],
//! [`Producer::push_iter`], [`Consumer::pop_batch`], [`Consumer::pop_slice`])
//! publish their index once per batch.
//!
//! Blocking calls (`push`, `pop`, the `_timeout` variants, `wait_for_*`)
//! poll for up to 50 µs (spinning a little, then yielding between polls),
//! then sleep on a mutex and condition variable. The other
//! side takes that lock only when a waiter has announced itself, so the
//! non-blocking path stays lock-free; the `parking` module proves that no
//! wake-up is lost.
//!
//! Closing: [`Producer::close`], [`Consumer::close`] or dropping either half
//! closes the ring and wakes a blocked peer. Pushes then fail and give the
//! item back; pops drain what is left, then report `Closed`. Items still
//! inside when the second half goes are dropped then, each exactly once.
//!
//! # Fixed-size elements through a byte ring
//!
//! The C ABI moves elements of `elem_size` bytes through a `channel::<u8>`
//! all-or-nothing: the producer waits with [`Producer::wait_for_slots`] for
//! `elem_size` free bytes and then [`Producer::push_slice`]s the element,
//! which stores and publishes it whole; the consumer waits with
//! [`Consumer::wait_for_len`] for `elem_size` bytes and
//! [`Consumer::pop_slice`]s exactly one element. Since every publication is
//! a whole number of elements, a reader never sees part of one.
//!
//! # Example
//!
//! ```
//! use spillway::ring::spsc;
//!
//! let (mut tx, mut rx) = spsc::channel(64);
//! let producer = std::thread::spawn(move || {
//!     for i in 0..1000u64 {
//!         tx.push(i).unwrap();
//!     }
//! }); // dropping `tx` closes the ring
//! let mut sum = 0;
//! while let Ok(i) = rx.pop() {
//!     sum += i;
//! }
//! producer.join().unwrap();
//! assert_eq!(sum, 999 * 1000 / 2);
//! ```

mod closer;
mod consumer;
mod parking;
mod positions;
mod producer;
mod shared;

pub(crate) use closer::Closer;
pub use consumer::Consumer;
pub use producer::Producer;

use crate::sync::Arc;
use positions::Positions;
use shared::Shared;

/// Makes a ring that holds up to `capacity` items and returns its two
/// halves.
///
/// # Panics
///
/// If `capacity` is 0 (such a ring could never take an item) or larger
/// than `usize::MAX / 2`, or if the slots cannot be allocated.
///
/// # Examples
///
/// ```
/// let (mut tx, mut rx) = spillway::ring::spsc::channel(2);
/// tx.try_push('a').unwrap();
/// assert_eq!(rx.try_pop(), Ok('a'));
/// ```
///
/// ```should_panic
/// let _ = spillway::ring::spsc::channel::<u8>(0); // capacity must be at least 1
/// ```
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let positions = Positions::new(capacity);
    let shared = Arc::new(Shared::new(capacity));
    (
        Producer::new(Arc::clone(&shared), positions),
        Consumer::new(shared, positions),
    )
}
