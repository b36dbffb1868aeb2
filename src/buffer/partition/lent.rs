//! The items of a sink call, lent to the sink and shared with the
//! partition's watchdog, for buffers built with
//! `retry_abandoned_batches`: at `flush_timeout` the watchdog copies the
//! batch while the stuck call still reads it (both sides only read, hence
//! `T: Sync`), and the copy goes on under the usual policy.
//!
//! The buffer itself asks only `T: Send`, so the sharing type is built where
//! the builder knows `T: Clone + Sync` and stored as a plain function
//! pointer ([`LendFn`]); its trait object is `Send + Sync` whatever `T`.
//! The books keep a call's share in its record (`calls.rs`), with how the
//! call ended ([`Ended`]) for the flusher that settles it.

use crate::sync::rc::Arc;

use super::pending::Batch;

/// A batch's items, shared between the flusher thread inside the sink call
/// and the partition's books.
pub(crate) trait LentItems<T>: Send + Sync {
    /// The items, as the sink reads them.
    fn items(&self) -> &[T];

    /// A copy of the items (`T::clone`, user code: the caller catches a
    /// panic).
    fn copy(&self) -> Vec<T>;

    /// The items back, once the call returned and the books let go of their
    /// share. Should another share still be alive, a copy.
    fn into_items(self: Arc<Self>) -> Vec<T>;
}

/// Makes a batch's items shareable: `lend::<T>` where `T: Clone + Sync`.
pub(crate) type LendFn<T> = fn(Vec<T>) -> Arc<dyn LentItems<T>>;

/// The items a call reads, lent to the books, and its batch without them:
/// what a copy of the batch is made from at abandonment.
pub(crate) struct Lent<T> {
    pub(crate) items: Arc<dyn LentItems<T>>,
    pub(crate) shell: Batch<T>,
}

/// How a call ended, for the flusher that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Not abandoned: its result settles its batch.
    Settle,
    /// Abandoned, and its batch went on with it: settled now, as a late
    /// return.
    Late,
    /// Abandoned, and a copy of its batch went on at once: the batch is
    /// discarded, the return only counted.
    Copied,
}

/// The items of one call, for item types that can be copied and read from
/// two threads at once.
struct Copyable<T>(Vec<T>);

impl<T: Clone + Send + Sync> LentItems<T> for Copyable<T> {
    fn items(&self) -> &[T] {
        &self.0
    }

    fn copy(&self) -> Vec<T> {
        self.0.clone()
    }

    fn into_items(self: Arc<Self>) -> Vec<T> {
        Arc::try_unwrap(self).map_or_else(|shared| shared.0.clone(), |own| own.0)
    }
}

/// The [`LendFn`] of a `T: Clone + Sync`: one small allocation (the
/// `Arc`) per batch; the items move, they are not copied.
pub(crate) fn lend<T: Clone + Send + Sync + 'static>(items: Vec<T>) -> Arc<dyn LentItems<T>> {
    Arc::new(Copyable(items))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_items_come_back_without_a_copy_once_the_other_share_is_gone() {
        let items = vec![String::from("a"), String::from("b")];
        let at = items.as_ptr();
        let lent = lend(items);
        let books = Arc::clone(&lent);
        assert_eq!(books.copy(), ["a", "b"]);
        drop(books);
        let back = lent.into_items();
        assert_eq!(back, ["a", "b"]);
        assert_eq!(back.as_ptr(), at, "the very vector, not a copy");
    }

    #[test]
    fn a_share_still_alive_gets_a_copy_back() {
        let lent = lend(vec![1u32, 2, 3]);
        let other = Arc::clone(&lent);
        assert_eq!(lent.into_items(), [1, 2, 3]);
        assert_eq!(other.items(), [1, 2, 3]);
    }
}
