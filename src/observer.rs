//! Telemetry callbacks: what happened, as it happens.

use std::time::Duration;

use crate::sink::FlushReason;

/// A flush is about to call the sink.
#[derive(Debug, Clone)]
pub struct FlushStart<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// Why it flushes.
    pub reason: FlushReason,
    /// 0 on the first try.
    pub attempt: u32,
    /// Items in the batch.
    pub items: usize,
}

/// A sink call returned (or panicked).
#[derive(Debug, Clone)]
pub struct FlushEnd<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// Why it flushed.
    pub reason: FlushReason,
    /// 0 on the first try.
    pub attempt: u32,
    /// Items in the batch.
    pub items: usize,
    /// How long the sink took.
    pub duration: Duration,
    /// `None` when the sink accepted the batch, else its error message.
    pub error: Option<&'a str>,
    /// The call ran past `flush_timeout`.
    pub timed_out: bool,
}

/// A failed batch will be tried again.
#[derive(Debug, Clone)]
pub struct RetryEvent<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// The attempt that comes next (1 for the first retry).
    pub attempt: u32,
    /// How long the buffer waits before it.
    pub backoff: Duration,
    /// Items in the batch.
    pub items: usize,
}

/// Why items were given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// `overflow: drop_newest` refused a new item.
    DropNewest,
    /// `overflow: drop_oldest` evicted a buffered item.
    DropOldest,
    /// `overflow: drop_oldest` found every item held already in flight, so
    /// nothing was left to evict and the new item was refused (and counted
    /// inserted and dropped, as under `drop_newest`).
    NothingToEvict,
    /// The sink failed the batch `max_retries + 1` times.
    SinkFailed,
    /// The buffer closed before the items could be delivered.
    Closed,
    /// Spooled records that could not be decoded back into items.
    Corrupt,
}

/// Items were given up; they are counted in `dropped`.
#[derive(Debug, Clone)]
pub struct DropEvent<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// How many items.
    pub count: usize,
    /// Why.
    pub reason: DropReason,
}

/// A partition was full when an item came.
#[derive(Debug, Clone)]
pub struct OverflowEvent<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// The configured `overflow` policy that now decides.
    pub policy: crate::config::Overflow,
}

/// Why items went to the disk spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpillReason {
    /// `overflow: spill` met a full partition.
    Overflow,
    /// The sink failed a batch `max_retries + 1` times.
    SinkFailed,
    /// The buffer closed with items it could not deliver in time.
    Close,
}

/// Items were written to the disk spool, to be delivered from there later.
#[derive(Debug, Clone)]
pub struct SpillEvent<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// How many items.
    pub items: usize,
    /// Their encoded size in bytes.
    pub bytes: u64,
    /// Why.
    pub reason: SpillReason,
}

/// A spool operation failed. Counted in `spool_errors`; what it means for
/// the items involved is reported by the events and counters that follow
/// (a drop, or items kept in memory).
#[derive(Debug, Clone)]
pub struct SpoolErrorEvent<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// The operation, such as `"push"`, `"remove"`, `"sync"` or `"close"`.
    pub operation: &'static str,
    /// The spool's error message.
    pub error: &'a str,
}

/// A sink call ran past `flush_timeout`. Usually it is abandoned: the
/// attempt counts as failed, its thread is replaced, and the batch is
/// retried or spilled as usual once the call returns, so it may arrive twice
/// if the abandoned call succeeded. When the engine already has `workers`
/// abandoned calls, the call is not abandoned (`abandoned` is false): it
/// keeps its thread, the partition waits for it, and it is counted in
/// `flush_timeouts` when it returns.
#[derive(Debug, Clone)]
pub struct FlushTimeoutEvent<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// Why it flushed.
    pub reason: FlushReason,
    /// The abandoned attempt, 0 on the first try.
    pub attempt: u32,
    /// Items in the batch.
    pub items: usize,
    /// How long the call had run when it passed its deadline.
    pub duration: Duration,
    /// Whether it was abandoned (false: kept, past the engine's bound).
    pub abandoned: bool,
}

/// An abandoned sink call returned at last. Its result is ignored (the
/// batch was already retried or spilled) and only counted.
#[derive(Debug, Clone)]
pub struct AbandonedReturnEvent<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// The attempt that was abandoned.
    pub attempt: u32,
    /// Items in the batch.
    pub items: usize,
    /// How long the call ran in all.
    pub duration: Duration,
    /// `None` when the late call accepted the batch, else its error message.
    pub error: Option<&'a str>,
}

/// An item was inserted. Sent only to an observer whose
/// [`wants_inserts`](Observer::wants_inserts) is true.
#[derive(Debug, Clone)]
pub struct InsertEvent<'a> {
    /// The buffer's name.
    pub buffer: &'a str,
    /// The partition, 0-based.
    pub partition: u32,
    /// The item's weight in bytes.
    pub bytes: u64,
}

/// Callbacks for telemetry. Every method has an empty default, so implement
/// only what you need. They run on the thread where the event happens (a
/// flusher, or the inserting thread for overflow and drop-newest), never with
/// a lock held; keep them short. A panic in a callback is caught and ignored,
/// so telemetry can never stop a flush.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use spillway::observer::{DropEvent, Observer};
/// #[derive(Default)]
/// struct CountDrops(AtomicUsize);
/// impl Observer for CountDrops {
///     fn on_drop(&self, e: &DropEvent<'_>) {
///         self.0.fetch_add(e.count, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait Observer: Send + Sync + 'static {
    /// A sink call starts.
    fn on_flush_start(&self, _event: &FlushStart<'_>) {}
    /// A sink call ended.
    fn on_flush_end(&self, _event: &FlushEnd<'_>) {}
    /// A failed batch is scheduled again.
    fn on_retry(&self, _event: &RetryEvent<'_>) {}
    /// Items were given up.
    fn on_drop(&self, _event: &DropEvent<'_>) {}
    /// A partition was full when an item came.
    fn on_overflow(&self, _event: &OverflowEvent<'_>) {}
    /// Items went to the disk spool.
    fn on_spill(&self, _event: &SpillEvent<'_>) {}
    /// A spool operation failed.
    fn on_spool_error(&self, _event: &SpoolErrorEvent<'_>) {}
    /// A sink call passed `flush_timeout` and was abandoned.
    fn on_flush_timeout(&self, _event: &FlushTimeoutEvent<'_>) {}
    /// An abandoned sink call returned.
    fn on_abandoned_return(&self, _event: &AbandonedReturnEvent<'_>) {}
    /// Whether [`on_insert`](Self::on_insert) should be called. Asked once,
    /// when the observer is set, so an observer that says no costs the insert
    /// path one predictable branch.
    fn wants_inserts(&self) -> bool {
        false
    }
    /// An item was inserted (only if [`wants_inserts`](Self::wants_inserts)).
    fn on_insert(&self, _event: &InsertEvent<'_>) {}
}
