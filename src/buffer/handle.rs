//! [`Buffer`], the handle users hold: cheap to clone, and the last clone to
//! go closes the buffer.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use crate::config::BufferConfig;
use crate::engine::{Closable, Engine};
use crate::stats::{CloseReport, Stats};
use crate::sync::rc::{Arc, Weak};
use crate::weigh::Weigh;

use super::error::{BatchInsertError, InsertError, SyncFlushError};
use super::producer::Producer;
use super::report::FlushReport;
use super::shared::Shared;

/// Keeps the buffer open; the last [`Buffer`] clone to go closes it.
pub(crate) struct BufferHandle<T> {
    pub(super) core: Arc<Shared<T>>,
    /// `core` as the engine closes it: the close needs no bound on `T` here.
    pub(super) closer: Arc<dyn Closable>,
}

impl<T> Drop for BufferHandle<T> {
    fn drop(&mut self) {
        let deadline = Instant::now() + self.core.config.flush_timeout;
        self.closer.begin_close();
        self.closer.finish_close(deadline);
    }
}

/// A batching buffer of items of type `T`. Cheap to clone: clones share the
/// buffer, and the last one to be dropped closes it (waiting up to
/// `flush_timeout` for the sink).
///
/// Build one with [`Buffer::new`] (a sink, nothing else) or
/// [`Buffer::builder`] (an observer, spilling to disk, a shared engine).
pub struct Buffer<T> {
    handle: Arc<BufferHandle<T>>,
}

impl<T> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        Self {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl<T> fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = &self.handle.core;
        f.debug_struct("Buffer")
            .field("name", &core.name)
            .field("partitions", &core.partitions())
            .finish_non_exhaustive()
    }
}

impl<T: Weigh + Send + 'static> Buffer<T> {
    pub(super) fn from_handle(handle: Arc<BufferHandle<T>>) -> Self {
        Self { handle }
    }

    fn core(&self) -> &Shared<T> {
        &self.handle.core
    }

    /// The buffer's name (`name` in the configuration).
    pub fn name(&self) -> &str {
        &self.core().name
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &BufferConfig {
        &self.core().config
    }

    /// Inserts one item into the calling thread's home partition.
    ///
    /// Each thread that inserts gets a home partition the first time it
    /// inserts, round-robin over the partitions in the order threads first
    /// insert (into any buffer), and keeps it for its life. So the items
    /// one thread inserts reach the sink in the order it inserted them, and
    /// several threads spread over the partitions; one thread alone fills
    /// one partition. Use [`insert_keyed`](Self::insert_keyed) to choose the
    /// partition, or one [`producer`](Self::producer) handle per thread.
    ///
    /// The insert that brings a partition to `max_size` items (or
    /// `max_bytes`) fires its flush. Producers never wait on the sink; they
    /// wait only when a partition holds `capacity` items or `capacity_bytes`
    /// bytes, in flight included, under `overflow: block`, or under `spill`
    /// while the sink is healthy (backpressure) or the spool is full.
    ///
    /// # Errors
    /// [`InsertError::Closed`] after close; [`InsertError::Full`] under
    /// `reject` and `drop_newest`, and under `drop_oldest` when every item
    /// held is in flight; [`InsertError::Timeout`] under `block` (or
    /// `spill`, as above) after `block_timeout`. The item comes back inside.
    pub fn insert(&self, item: T) -> Result<(), InsertError<T>> {
        let p = self.core().home_partition();
        self.core().insert_to(p, item)
    }

    /// Inserts into the partition that `key` hashes to, so that every item
    /// with the same key keeps its order.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn insert_keyed<K: Hash + ?Sized>(&self, key: &K, item: T) -> Result<(), InsertError<T>> {
        let p = self.partition_of(key);
        self.core().insert_to(p, item)
    }

    /// The partition `key` maps to (stable for the buffer's life).
    pub fn partition_of<K: Hash + ?Sized>(&self, key: &K) -> u32 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % u64::from(self.core().partitions())) as u32
    }

    /// Inserts many items into the calling thread's home partition (the one
    /// [`insert`](Self::insert) uses, so they keep their order with the
    /// thread's single inserts) under one lock.
    /// Stops at the first item that is refused; pass `iter.by_ref()` to keep
    /// the rest.
    ///
    /// # Errors
    /// [`BatchInsertError`] with how many went in and the refused item.
    pub fn insert_batch<I: IntoIterator<Item = T>>(
        &self,
        items: I,
    ) -> Result<usize, BatchInsertError<T>> {
        let p = self.core().home_partition();
        let mut iter = items.into_iter();
        if self.core().is_closed() {
            return match iter.next() {
                Some(item) => Err(BatchInsertError {
                    inserted: 0,
                    error: InsertError::Closed(item),
                }),
                None => Ok(0),
            };
        }
        self.core()
            .insert_batch_to(p, &mut iter)
            .map_err(|(inserted, error)| BatchInsertError { inserted, error })
    }

    /// A lock-free handle for one thread (see [`Producer`]).
    pub fn producer(&self) -> Producer<T> {
        self.handle.core.producer()
    }

    /// Asks every partition to flush what it holds; returns at once.
    pub fn flush(&self) {
        self.core().flush();
    }

    /// Flushes everything buffered at the call and waits until the sink
    /// accepted it, or it was given up, or `timeout` passed.
    ///
    /// # Errors
    /// [`SyncFlushError::Timeout`] with what was resolved by then, or
    /// [`SyncFlushError::Closed`]. `Ok` does not mean nothing failed: check
    /// [`FlushReport::all_delivered`].
    pub fn sync_flush(&self, timeout: Duration) -> Result<FlushReport, SyncFlushError> {
        self.core().sync_flush(timeout)
    }

    /// Takes every buffered item out without flushing it (items in flight
    /// stay with the sink). Counted as `dumped`.
    pub fn dump(&self) -> Vec<T> {
        self.core().dump()
    }

    /// Items buffered or in flight now.
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// No item is buffered or in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters and gauges, summed and per partition.
    pub fn stats(&self) -> Stats {
        self.core().stats()
    }

    /// Stops accepting items, flushes everything, and waits up to `timeout`
    /// for the sink; then releases the buffer's threads (a private engine's
    /// are stopped; a sink that never returns is left behind, not waited
    /// for). Idempotent: later calls return the first report.
    ///
    /// Returns within `timeout` even when sink calls are stuck: the report
    /// counts them (`running_calls`; their items are `undelivered`, unless
    /// a copy of an abandoned call's batch was settled: see
    /// [`retry_abandoned_batches`](crate::BufferBuilder::retry_abandoned_batches)).
    /// Called from inside this buffer's own sink, it begins the close but
    /// returns at once (it would wait for itself), with `timed_out` set;
    /// that report is not kept, so a later close from outside still waits.
    pub fn close(&self, timeout: Duration) -> CloseReport {
        self.core().close(timeout)
    }

    /// Whether `close` has begun.
    pub fn is_closed(&self) -> bool {
        self.core().is_closed()
    }

    /// Whether the calling thread is inside one of this buffer's sink calls.
    pub(crate) fn in_own_sink(&self) -> bool {
        self.core().in_own_sink()
    }

    /// For `spw_buffer_free`, once the callback can never be called again:
    /// whatever is still undelivered in memory is dropped and counted.
    pub(crate) fn drop_undelivered(&self) {
        self.core().drop_undelivered();
    }

    /// After `close`, for a buffer with a private engine: waits until every
    /// one of its flusher threads has exited, those left in a call that
    /// outlived close's timeout included, and joins them. The caller must
    /// know that every such call returns (the C layer shuts its callback
    /// gate first).
    pub(crate) fn join_private_threads(&self) {
        let core = self.core();
        if core.private_engine {
            core.engine.join_threads();
        }
    }
}

impl Engine {
    /// The buffer registered on this engine as `name`, if it is open and
    /// holds items of type `T`.
    pub fn get<T: Weigh + Send + 'static>(&self, name: &str) -> Option<Buffer<T>> {
        let weak: Weak<BufferHandle<T>> = self.find(name)?;
        weak.upgrade().map(Buffer::from_handle)
    }
}
