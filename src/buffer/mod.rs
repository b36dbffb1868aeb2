//! The batching buffer: insert from any thread, and a sink receives batches
//! when a partition reaches `max_size` items or `max_bytes`, when its
//! `flush_interval` runs out, when asked, and at close.
//!
//! ```
//! use spillway::{Buffer, BufferConfig, FlushContext, SinkError};
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! let got = Arc::new(Mutex::new(Vec::new()));
//! let sink_got = got.clone();
//! let buf = Buffer::new(
//!     BufferConfig::new().max_size(3).flush_interval(Duration::from_secs(60)),
//!     move |batch: &[u32], ctx: &FlushContext<'_>| -> Result<(), SinkError> {
//!         sink_got.lock().unwrap().push((ctx.reason.as_str(), batch.to_vec()));
//!         Ok(())
//!     },
//! )
//! .unwrap();
//! for i in 0..4 {
//!     buf.insert(i).unwrap();
//! }
//! let report = buf.sync_flush(Duration::from_secs(5)).unwrap();
//! assert_eq!(report.delivered(), 4);
//! assert_eq!(*got.lock().unwrap(), [("size", vec![0, 1, 2]), ("manual", vec![3])]);
//! ```

mod core;
mod jitter;
mod partition;
mod producer;
mod spill;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::codec::{Codec, SpillCodec};
use crate::config::{BufferConfig, ConfigError, Overflow};
use crate::engine::{Closable, Engine, EngineError};
use crate::observer::Observer;
use crate::sink::Sink;
use crate::spool::SpoolError;
use crate::stats::{Counts, Stats};
use crate::sync::rc::{Arc, Weak};
use crate::weigh::Weigh;

use self::core::Core;
pub use producer::Producer;

/// Why an insert did not take the item; the item comes back inside.
#[derive(PartialEq, Eq)]
pub enum InsertError<T> {
    /// The partition was full and `overflow` is `reject` or `drop_newest`
    /// (under `drop_newest` the item also counts as inserted and dropped).
    Full(T),
    /// The partition stayed full for `block_timeout` (`overflow: block`).
    Timeout(T),
    /// The buffer is closed.
    Closed(T),
}

impl<T> InsertError<T> {
    /// The item that was not inserted.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Timeout(v) | Self::Closed(v) => v,
        }
    }

    pub(crate) fn with_item<U>(self, item: U) -> InsertError<U> {
        match self {
            Self::Full(_) => InsertError::Full(item),
            Self::Timeout(_) => InsertError::Timeout(item),
            Self::Closed(_) => InsertError::Closed(item),
        }
    }
}

impl<T> fmt::Debug for InsertError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "Full(..)",
            Self::Timeout(_) => "Timeout(..)",
            Self::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for InsertError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "buffer partition is full",
            Self::Timeout(_) => "buffer partition stayed full until block_timeout",
            Self::Closed(_) => "buffer is closed",
        })
    }
}

impl<T> std::error::Error for InsertError<T> {}

/// `insert_batch` stopped at an item; the items before it are in.
pub struct BatchInsertError<T> {
    /// How many items were inserted before the failure.
    pub inserted: usize,
    /// Why the next one was not (it comes back inside).
    pub error: InsertError<T>,
}

impl<T> fmt::Debug for BatchInsertError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchInsertError")
            .field("inserted", &self.inserted)
            .field("error", &self.error)
            .finish()
    }
}

impl<T> fmt::Display for BatchInsertError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {} items", self.error, self.inserted)
    }
}

impl<T> std::error::Error for BatchInsertError<T> {}

/// Why a buffer could not be built.
#[derive(Debug)]
pub enum BufferError {
    /// The configuration is invalid (the message names the key).
    Config(ConfigError),
    /// The engine already has an open buffer of this name.
    NameTaken(String),
    /// The private engine could not start its threads.
    Engine(EngineError),
    /// A configured feature cannot be used as asked (the message says why).
    Unsupported(String),
    /// A partition's spool could not be opened (`spool_dir`).
    Spool {
        /// The partition's spool directory.
        dir: std::path::PathBuf,
        /// Why.
        error: SpoolError,
    },
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::NameTaken(n) => write!(f, "a buffer named `{n}` is already registered"),
            Self::Engine(e) => write!(f, "{e}"),
            Self::Unsupported(what) => f.write_str(what),
            Self::Spool { dir, error } => {
                write!(f, "cannot open the spool in {}: {error}", dir.display())
            }
        }
    }
}

impl std::error::Error for BufferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Engine(e) => Some(e),
            _ => None,
        }
    }
}

/// What became of one partition's items that were buffered when
/// `sync_flush` or `close` was called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionFlush {
    /// The partition, 0-based.
    pub partition: u32,
    /// Accepted by the sink.
    pub delivered: u64,
    /// Given up (sink failed after retries, or evicted by `drop_oldest`).
    pub dropped: u64,
    /// Taken out by `dump()` meanwhile.
    pub dumped: u64,
    /// Left in the disk spool for the next run (the sink failed while the
    /// buffer was closing).
    pub spooled: u64,
    /// Still buffered, in flight or spooled when the wait ended.
    pub undelivered: u64,
}

/// What `sync_flush` found, per partition (only partitions that held items).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// One entry per partition that held items at the call.
    pub partitions: Vec<PartitionFlush>,
}

impl FlushReport {
    /// Items the sink accepted.
    pub fn delivered(&self) -> u64 {
        self.partitions.iter().map(|p| p.delivered).sum()
    }
    /// Items given up.
    pub fn dropped(&self) -> u64 {
        self.partitions.iter().map(|p| p.dropped).sum()
    }
    /// Items dumped meanwhile.
    pub fn dumped(&self) -> u64 {
        self.partitions.iter().map(|p| p.dumped).sum()
    }
    /// Items left in the spool for the next run.
    pub fn spooled(&self) -> u64 {
        self.partitions.iter().map(|p| p.spooled).sum()
    }
    /// Items neither delivered nor given up when the wait ended.
    pub fn undelivered(&self) -> u64 {
        self.partitions.iter().map(|p| p.undelivered).sum()
    }
    /// Every item buffered at the call reached the sink.
    pub fn all_delivered(&self) -> bool {
        self.dropped() == 0 && self.dumped() == 0 && self.spooled() == 0 && self.undelivered() == 0
    }
}

/// Why `sync_flush` returned before everything was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFlushError {
    /// The timeout passed; the report says what was resolved by then.
    Timeout(FlushReport),
    /// The buffer is closed.
    Closed,
}

impl fmt::Display for SyncFlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(r) => write!(
                f,
                "sync_flush timed out with {} items undelivered",
                r.undelivered()
            ),
            Self::Closed => f.write_str("buffer is closed"),
        }
    }
}

impl std::error::Error for SyncFlushError {}

/// What `close` achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseReport {
    /// Items buffered at close that the sink accepted.
    pub delivered: u64,
    /// Items buffered at close that were given up.
    pub dropped: u64,
    /// Items buffered at close still undelivered when the timeout passed
    /// (a sink that never returned, or retries still running). With
    /// `overflow: spill`, those that could be are in the spool.
    pub undelivered: u64,
    /// Items left in the disk spool, delivered first by the next buffer
    /// opened on the same `spool_dir`.
    pub spooled: u64,
    /// The timeout passed before everything was resolved.
    pub timed_out: bool,
    /// The buffer's final counters.
    pub counts: Counts,
}

/// Keeps the buffer open; the last [`Buffer`] clone to go closes it.
pub(crate) struct BufferHandle<T: Weigh + Send + 'static> {
    core: Arc<Core<T>>,
}

impl<T: Weigh + Send + 'static> Drop for BufferHandle<T> {
    fn drop(&mut self) {
        self.core.close(self.core.config.flush_timeout);
    }
}

/// A batching buffer of items of type `T`. Cheap to clone: clones share the
/// buffer, and the last one to be dropped closes it (waiting up to
/// `flush_timeout` for the sink).
pub struct Buffer<T: Weigh + Send + 'static> {
    handle: Arc<BufferHandle<T>>,
}

impl<T: Weigh + Send + 'static> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        Self {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl<T: Weigh + Send + 'static> fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("name", &self.core().name)
            .field("partitions", &self.core().partitions())
            .finish_non_exhaustive()
    }
}

/// Opens one spool per partition under `spool_dir` (`p0`, `p1`, ...),
/// refusing a directory that holds more partitions than configured: their
/// records would never be delivered.
fn open_spools(config: &BufferConfig) -> Result<Vec<spill::PartSpool>, BufferError> {
    let Some(root) = config.spool_dir.as_deref() else {
        return Err(BufferError::Unsupported(
            "overflow `spill` needs `spool_dir`".to_string(),
        ));
    };
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let extra = name
                .to_str()
                .and_then(|n| n.strip_prefix('p'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&p| p >= config.partitions);
            if let Some(p) = extra {
                return Err(BufferError::Unsupported(format!(
                    "spool_dir {} holds a spool for partition {p}, but `partitions` is {}; \
                     use the partition count it was written with until it is drained",
                    root.display(),
                    config.partitions
                )));
            }
        }
    }
    (0..config.partitions)
        .map(|p| {
            spill::PartSpool::open(root, p, config).map_err(|error| BufferError::Spool {
                dir: spill::partition_dir(root, p),
                error,
            })
        })
        .collect()
}

impl<T: Weigh + Codec + Send + 'static> Buffer<T> {
    /// A buffer that may spill to disk: with `overflow: spill` and
    /// `spool_dir`, a full partition moves its items to its spool instead of
    /// waiting or dropping; a batch that still fails after `max_retries`
    /// goes to the spool instead of being dropped; the spool is drained back
    /// to the sink, oldest first, when the sink recovers; and items spooled
    /// by an earlier run on the same `spool_dir` are delivered before new
    /// ones. Within a partition the order holds across memory, disk and
    /// restarts. Without `overflow: spill` this is [`Buffer::new`].
    ///
    /// ```
    /// use spillway::{Buffer, BufferConfig, FlushContext, SinkError};
    /// use spillway::config::Overflow;
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-spill-{}", std::process::id()));
    /// let cfg = BufferConfig::new().overflow(Overflow::Spill).spool_dir(&dir).max_retries(0);
    /// let down = |_: &[String], _: &FlushContext<'_>| Err::<(), _>(SinkError::msg("down"));
    /// let buf = Buffer::spilling(cfg.clone(), down)?;
    /// buf.insert("kept on disk".to_string()).unwrap();
    /// let report = buf.close(std::time::Duration::from_secs(5));
    /// assert_eq!(report.spooled, 1);
    /// drop(buf);
    ///
    /// // The next run delivers it first.
    /// let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    /// let g = got.clone();
    /// let up = move |b: &[String], _: &FlushContext<'_>| {
    ///     g.lock().unwrap().extend_from_slice(b);
    ///     Ok::<(), SinkError>(())
    /// };
    /// let buf = Buffer::spilling(cfg, up)?;
    /// buf.close(std::time::Duration::from_secs(5));
    /// assert_eq!(*got.lock().unwrap(), ["kept on disk"]);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::buffer::BufferError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Buffer::new`], and [`BufferError::Spool`] when a spool cannot be
    /// opened (another process holds it, or the directory is unusable).
    pub fn spilling(config: BufferConfig, sink: impl Sink<T>) -> Result<Self, BufferError> {
        Self::build(config, Box::new(sink), None, Some(SpillCodec::of()), None)
    }

    /// Like [`spilling`](Self::spilling), with an [`Observer`].
    ///
    /// # Errors
    /// As [`spilling`](Self::spilling).
    pub fn spilling_with_observer(
        config: BufferConfig,
        sink: impl Sink<T>,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, BufferError> {
        Self::build(
            config,
            Box::new(sink),
            Some(observer),
            Some(SpillCodec::of()),
            None,
        )
    }
}

impl<T: Weigh + Send + 'static> Buffer<T> {
    /// A buffer with its own private engine (`workers` flusher threads and a
    /// timer thread), stopped when the buffer closes.
    ///
    /// # Errors
    /// An invalid configuration (the message names the key), or threads
    /// that cannot be started.
    pub fn new(config: BufferConfig, sink: impl Sink<T>) -> Result<Self, BufferError> {
        Self::build(config, Box::new(sink), None, None, None)
    }

    /// Like [`new`](Self::new), with an [`Observer`] for telemetry.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_observer(
        config: BufferConfig,
        sink: impl Sink<T>,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, BufferError> {
        Self::build(config, Box::new(sink), Some(observer), None, None)
    }

    pub(crate) fn build(
        config: BufferConfig,
        sink: Box<dyn Sink<T>>,
        observer: Option<Arc<dyn Observer>>,
        codec: Option<SpillCodec<T>>,
        engine: Option<Engine>,
    ) -> Result<Self, BufferError> {
        config.validate().map_err(BufferError::Config)?;
        let spill = match (config.overflow, codec) {
            (Overflow::Spill, None) => {
                return Err(BufferError::Unsupported(
                    "overflow `spill` needs items that implement spillway::Codec: \
                     build the buffer with Buffer::spilling"
                        .to_string(),
                ))
            }
            (Overflow::Spill, Some(codec)) => Some((codec, open_spools(&config)?)),
            (_, _) => None,
        };
        let (engine, private) = match engine {
            Some(e) => (e, false),
            None => (
                Engine::new(config.workers).map_err(BufferError::Engine)?,
                true,
            ),
        };
        let name = config.name.clone();
        let core = Core::new(config, sink, observer, spill, engine.clone(), private);
        let handle = Arc::new(BufferHandle { core });
        let closer: Weak<dyn Closable> = {
            let c: Weak<Core<T>> = Arc::downgrade(&handle.core);
            c
        };
        if let Err(e) = engine.register(&name, Arc::downgrade(&handle), closer) {
            // Nothing was inserted; closing the unregistered core is instant.
            handle.core.close(Duration::ZERO);
            return Err(e);
        }
        Ok(Self { handle })
    }

    pub(crate) fn from_handle(handle: Arc<BufferHandle<T>>) -> Self {
        Self { handle }
    }

    fn core(&self) -> &Core<T> {
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

    /// Inserts one item into the next partition (round-robin).
    ///
    /// The insert that brings a partition to `max_size` items (or
    /// `max_bytes`) fires its flush. Producers never wait on the sink; they
    /// wait only under `overflow: block` when a partition holds `capacity`
    /// items, in flight included.
    ///
    /// # Errors
    /// [`InsertError::Closed`] after close; [`InsertError::Full`] under
    /// `reject` and `drop_newest`; [`InsertError::Timeout`] under `block`
    /// after `block_timeout`. The item comes back inside.
    pub fn insert(&self, item: T) -> Result<(), InsertError<T>> {
        let p = self.core().next_partition();
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

    /// Inserts many items into one partition (round-robin) under one lock.
    /// Stops at the first item that is refused; pass `iter.by_ref()` to keep
    /// the rest.
    ///
    /// # Errors
    /// [`BatchInsertError`] with how many went in and the refused item.
    pub fn insert_batch<I: IntoIterator<Item = T>>(
        &self,
        items: I,
    ) -> Result<usize, BatchInsertError<T>> {
        let p = self.core().next_partition();
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
        self.core().producer()
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
    pub fn close(&self, timeout: Duration) -> CloseReport {
        self.core().close(timeout)
    }

    /// Whether `close` has begun.
    pub fn is_closed(&self) -> bool {
        self.core().is_closed()
    }
}
