//! The one way to build a buffer: [`Buffer::builder`] with a sink, and
//! optionally an observer, a spill codec and a shared engine.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::codec::SpillCodec;
use crate::config::{BufferConfig, Overflow};
use crate::engine::{Closable, Engine};
use crate::observer::Observer;
use crate::sink::Sink;
use crate::spool::{Spool, SpoolConfig, SpoolError, Storage};
use crate::sync::rc::{Arc, Weak};
use crate::weigh::Weigh;

use super::error::BufferError;
use super::handle::{Buffer, BufferHandle};
use super::partition::{lend, partition_dir, LendFn, PartSpool};
use super::shared::Shared;

/// The sink of a [`BufferBuilder`] before [`sink`](BufferBuilder::sink) is
/// called: a builder without a sink has no `build`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

/// Builds a [`Buffer`]: `Buffer::builder(config).sink(s)`, then any of
/// `.observer(o)`, `.spill(codec)`, `.engine(&engine)`,
/// `.retry_abandoned_batches()`, then `.build()`.
///
/// ```
/// use spillway::{Buffer, BufferConfig, Engine, FlushContext, SinkError, SpillCodec};
/// use spillway::config::Overflow;
/// # let dir = std::env::temp_dir().join(format!("spillway-doc-builder-{}", std::process::id()));
/// let engine = Engine::new(1)?;
/// let cfg = BufferConfig::new().name("lines").overflow(Overflow::Spill).spool_dir(&dir);
/// let buf = Buffer::builder(cfg)
///     .sink(|b: &[String], _: &FlushContext<'_>| Ok::<(), SinkError>(println!("{} lines", b.len())))
///     .spill(SpillCodec::of()) // String implements spillway::Codec
///     .engine(&engine)
///     .build()?;
/// buf.insert("hello".to_string()).unwrap();
/// assert_eq!(buf.close(std::time::Duration::from_secs(5)).counts.delivered, 1);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct BufferBuilder<T, S = NoSink> {
    config: BufferConfig,
    sink: S,
    observer: Option<Arc<dyn Observer>>,
    codec: Option<SpillCodec<T>>,
    engine: Option<Engine>,
    storage: Option<OpenSpool>,
    lend: Option<LendFn<T>>,
    item: PhantomData<fn(T)>,
}

/// Opens partition `p`'s spool with the given configuration.
type OpenSpool = Box<dyn FnMut(usize, SpoolConfig) -> Result<Spool, SpoolError>>;

impl<T, S> fmt::Debug for BufferBuilder<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferBuilder")
            .field("name", &self.config.name)
            .field("observer", &self.observer.is_some())
            .field("spill", &self.codec.is_some())
            .field("engine", &self.engine)
            .field("spool_storage", &self.storage.is_some())
            .field("retry_abandoned_batches", &self.lend.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Weigh + Send + 'static> Buffer<T> {
    /// A buffer with its own private engine (`workers` flusher threads and a
    /// timer thread), stopped when the buffer closes: the short form of
    /// `Buffer::builder(config).sink(sink).build()`.
    ///
    /// # Errors
    /// An invalid configuration (the message names the key), or threads
    /// that cannot be started.
    pub fn new(config: BufferConfig, sink: impl Sink<T>) -> Result<Self, BufferError> {
        Self::builder(config).sink(sink).build()
    }

    /// A builder for a buffer with more than a sink: an
    /// [`observer`](BufferBuilder::observer), [`spill`](BufferBuilder::spill)
    /// to disk, or a shared [`engine`](BufferBuilder::engine).
    pub fn builder(config: BufferConfig) -> BufferBuilder<T, NoSink> {
        BufferBuilder::new(config)
    }
}

impl<T> BufferBuilder<T, NoSink> {
    pub(super) fn new(config: BufferConfig) -> Self {
        Self {
            config,
            sink: NoSink,
            observer: None,
            codec: None,
            engine: None,
            storage: None,
            lend: None,
            item: PhantomData,
        }
    }
}

impl<T, S> BufferBuilder<T, S> {
    /// The sink that receives the batches (required).
    pub fn sink<S2: Sink<T>>(self, sink: S2) -> BufferBuilder<T, S2> {
        BufferBuilder {
            config: self.config,
            sink,
            observer: self.observer,
            codec: self.codec,
            engine: self.engine,
            storage: self.storage,
            lend: self.lend,
            item: PhantomData,
        }
    }

    /// An [`Observer`] for telemetry (flushes, retries, drops, overflow).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// How items become spool records, for `overflow: spill` (required by
    /// it; without it, ignored): while the sink is failing, a full
    /// partition moves its items to its spool under `spool_dir` instead of
    /// waiting or dropping (while it is healthy, the insert waits as under
    /// `block`); a batch that
    /// still fails after `max_retries` goes to the spool instead of being
    /// dropped; the spool is drained back to the sink, oldest first, when
    /// it recovers; and items spooled by an earlier run on the same
    /// `spool_dir` are delivered before new ones. Within a partition the
    /// order holds across memory, disk and restarts.
    pub fn spill(mut self, codec: SpillCodec<T>) -> Self {
        self.codec = Some(codec);
        self
    }

    /// With `overflow: spill`, keeps partition `p`'s spool on the
    /// [`Storage`] that `storage(p)` returns instead of in a directory under
    /// `spool_dir` (which must still be set, and is then not touched): for
    /// tests, with a [`MemStorage`](crate::spool::MemStorage) that injects
    /// faults, or for an embedding that keeps its records elsewhere.
    ///
    /// ```
    /// use spillway::config::Overflow;
    /// use spillway::spool::MemStorage;
    /// use spillway::{Buffer, BufferConfig, FlushContext, SinkError, SpillCodec};
    /// let mem = MemStorage::new();
    /// let disk = mem.clone();
    /// let cfg = BufferConfig::new().overflow(Overflow::Spill).spool_dir("unused");
    /// let buf = Buffer::builder(cfg)
    ///     .sink(|_: &[u64], _: &FlushContext<'_>| Ok::<(), SinkError>(()))
    ///     .spill(SpillCodec::of())
    ///     .spool_storage(move |_partition| disk.clone())
    ///     .build()?;
    /// buf.close(std::time::Duration::from_secs(5));
    /// assert!(mem.violations().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spool_storage<St: Storage + 'static>(
        mut self,
        mut storage: impl FnMut(usize) -> St + 'static,
    ) -> Self {
        self.storage = Some(Box::new(move |p, cfg| Spool::open_with(storage(p), cfg)));
        self
    }

    /// Runs the buffer on `engine` (registered under `config.name`) instead
    /// of a private engine of `workers` threads.
    pub fn engine(mut self, engine: &Engine) -> Self {
        self.engine = Some(engine.clone());
        self
    }
}

impl<T: Clone + Send + Sync + 'static, S> BufferBuilder<T, S> {
    /// Retries or spills the batch of a sink call abandoned at
    /// `flush_timeout` at once, from a copy, instead of waiting for the call
    /// to return (which a call that never returns never does).
    ///
    /// Without it, an abandoned call keeps its batch, because the sink still
    /// reads the items: the partition flushes on, but that batch goes again
    /// only when the call returns, and stays in memory for as long as it
    /// does not. With it, at abandonment the buffer copies the batch
    /// (`T::clone`, while the stuck call may still be reading the items,
    /// hence `T: Sync`) and settles the copy as the failed attempt: queued
    /// again ahead of anything newer while `max_retries` allows, else
    /// spilled under `overflow: spill`, else dropped (`DropReason::SinkFailed`).
    /// When the abandoned call returns, its result is only counted
    /// (`Observer::on_abandoned_return`) and its batch is discarded.
    ///
    /// At least once: if the abandoned call returns `Ok`, its items arrive
    /// twice (once from it, once from the copy). The books count them once:
    /// while the call runs, the copy stands for the batch (in `in_flight`,
    /// then delivered, spooled or dropped), and `close` no longer counts
    /// them undelivered once the copy is settled (it still counts the
    /// running call in `running_calls`). While both exist the batch is in
    /// memory twice, and `capacity` counts it once.
    ///
    /// Nothing is copied on the normal path: each batch's items move into
    /// one shared allocation for the call (an `Arc`) and back after it; the
    /// copy is made only for a call that is abandoned. A manual engine
    /// abandons nothing, so there the option does nothing. The C ABI turns
    /// it on for every buffer.
    ///
    /// ```
    /// use spillway::{Buffer, BufferConfig, FlushContext, SinkError};
    /// use std::time::Duration;
    /// let buf = Buffer::builder(BufferConfig::new().flush_timeout(Duration::from_secs(5)))
    ///     .sink(|b: &[String], _: &FlushContext<'_>| Ok::<(), SinkError>(println!("{b:?}")))
    ///     .retry_abandoned_batches() // String: Clone + Sync
    ///     .build()?;
    /// buf.insert("hello".to_string()).unwrap();
    /// assert_eq!(buf.close(Duration::from_secs(5)).counts.delivered, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_abandoned_batches(mut self) -> Self {
        self.lend = Some(lend::<T>);
        self
    }
}

impl<T: Weigh + Send + 'static, S: Sink<T>> BufferBuilder<T, S> {
    /// Builds the buffer.
    ///
    /// # Errors
    /// [`BufferError::Config`] for an invalid configuration (the message
    /// names the key); [`BufferError::Unsupported`] for `overflow: spill`
    /// without a codec or `spool_dir`; [`BufferError::Spool`] when a spool
    /// cannot be opened (another process holds it, or the directory is
    /// unusable); [`BufferError::NameTaken`] when the engine already has an
    /// open buffer of this name; [`BufferError::Engine`] when the private
    /// engine's threads cannot be started.
    pub fn build(self) -> Result<Buffer<T>, BufferError> {
        let config = self.config;
        config.validate().map_err(BufferError::Config)?;
        let spill = match (config.overflow, self.codec) {
            (Overflow::Spill, None) => {
                return Err(BufferError::Unsupported(
                    "overflow `spill` needs a codec for the items: build the buffer with \
                     Buffer::builder(config).spill(SpillCodec::of())"
                        .to_string(),
                ))
            }
            (Overflow::Spill, Some(codec)) => Some((codec, open_spools(&config, self.storage)?)),
            (_, _) => None,
        };
        let (engine, private) = match self.engine {
            Some(e) => (e, false),
            None => (
                Engine::new(config.workers).map_err(BufferError::Engine)?,
                true,
            ),
        };
        let name = config.name.clone();
        let sink: Box<dyn Sink<T>> = Box::new(self.sink);
        let core = Shared::new(
            config,
            sink,
            self.observer,
            spill,
            self.lend,
            engine.clone(),
            private,
        );
        let closer: Arc<dyn Closable> = Arc::clone(&core) as Arc<dyn Closable>;
        let weak_closer = Arc::downgrade(&closer);
        let handle = Arc::new(BufferHandle { core, closer });
        let typed: Weak<BufferHandle<T>> = Arc::downgrade(&handle);
        if let Err(e) = engine.register(&name, Box::new(typed), weak_closer) {
            // Nothing was inserted; closing the unregistered buffer is instant.
            handle.core.close(Duration::ZERO);
            return Err(e.into());
        }
        Ok(Buffer::from_handle(handle))
    }
}

/// Opens one spool per partition under `spool_dir` (`p0`, `p1`, ...),
/// refusing a directory that holds more partitions than configured: their
/// records would never be delivered.
fn open_spools(
    config: &BufferConfig,
    storage: Option<OpenSpool>,
) -> Result<Vec<PartSpool>, BufferError> {
    let Some(root) = config.spool_dir.as_deref() else {
        return Err(BufferError::Unsupported(
            "overflow `spill` needs `spool_dir`".to_string(),
        ));
    };
    if let Some(mut open) = storage {
        return (0..config.partitions)
            .map(|p| {
                PartSpool::open_with(p, config, &mut open).map_err(|error| BufferError::Spool {
                    dir: partition_dir(root, p),
                    error,
                })
            })
            .collect();
    }
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
            PartSpool::open(root, p, config).map_err(|error| BufferError::Spool {
                dir: partition_dir(root, p),
                error,
            })
        })
        .collect()
}
