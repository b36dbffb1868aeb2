//! Configuration of a buffer: [`BufferConfig`], built in code, read from
//! YAML, or set key by key from C, all through one parser.
//!
//! Every key is listed, with its default and what it accepts, by
//! [`documented_keys`]. Values are text in one syntax wherever they come from:
//!
//! - whole numbers: ASCII digits only (`1000`); no sign, spaces or separators;
//! - durations: a whole number and a unit, `ns`, `us`, `ms`, `s`, `m` or `h`
//!   (`250ms`, `2s`, `1m`, `1h`), or a bare whole number of milliseconds
//!   (`250`); at most `8760h` (365 days), so a deadline computed from any
//!   duration cannot overflow; no fractions or compound forms (`1h30m`);
//! - sizes: a whole number and a unit, `B`, binary `KiB`, `MiB`, `GiB`, `TiB`
//!   (powers of 1024) or decimal `kB`/`KB`, `MB`, `GB`, `TB` (powers of
//!   1000), or a bare number of bytes (`512`); units are case-sensitive;
//! - policies: their snake_case names (`drop_oldest`);
//! - strings: as given; never empty.
//!
//! Everything else (signs, spaces, trailing junk, a number that overflows) is
//! an error naming the key, the value and what the key accepts. A refused
//! `set`, or a refused YAML file, leaves the configuration as it was.
//!
//! Single values are checked when they are set; combinations (say `capacity`
//! below `max_size`) by [`BufferConfig::validate`], which the buffer runs
//! when it is built.

mod error;
mod keys;
mod policy;
mod spool;
mod value;
mod yaml;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::spool::SyncMode;
pub use error::ConfigError;
pub use keys::{documented_keys, KeyDoc};
pub use policy::Overflow;

/// How a buffer batches, flushes, retries, overflows and spools.
///
/// Build it in code with [`new`](Self::new) and one setter per key, or read
/// it with [`set`](Self::set), [`from_yaml_str`](Self::from_yaml_str) and
/// [`from_yaml_file`](Self::from_yaml_file). Each field's key is its name.
///
/// ```
/// use std::time::Duration;
/// use spillway::config::{BufferConfig, Overflow};
///
/// let mut cfg = BufferConfig::new()
///     .name("events")
///     .max_size(500)
///     .flush_interval(Duration::from_millis(250))
///     .overflow(Overflow::DropOldest);
///
/// // The same keys as text, as YAML and C give them:
/// cfg.set("capacity", "20000")?;
/// cfg.set("max_bytes", "4MiB")?;
/// cfg.set("flush_timeout", "2s")?;
/// assert_eq!(cfg.max_bytes, 4 << 20);
/// assert_eq!(cfg.get("flush_interval")?.as_deref(), Some("250ms"));
///
/// // A bad value is refused with a message and changes nothing.
/// let err = cfg.set("max_size", "abc").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid value "abc" for `max_size`: expected a whole number >= 1"#
/// );
/// assert_eq!(cfg.max_size, 500);
///
/// cfg.validate()?;
/// # Ok::<(), spillway::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BufferConfig {
    /// Name of the buffer, for lookup in an engine, logs and events.
    /// Default `"spillway"`; never empty, no control characters.
    pub name: String,
    /// Items buffered in a partition that trigger a flush: the batch size.
    /// Default 1000 items; at least 1.
    pub max_size: usize,
    /// Up to this many items, drawn at random afresh each cycle, are added
    /// to `max_size`, so that many buffers do not flush in step.
    /// Default 0 items (no jitter).
    pub max_size_jitter: usize,
    /// Bytes buffered in a partition that trigger a flush, for items whose
    /// size is known (byte items always). Default 1 MiB; 0 = no byte trigger.
    pub max_bytes: u64,
    /// Longest time an item waits in a partition before a flush; the timer
    /// restarts after each flush of that partition. Default 1 s; above 0.
    pub flush_interval: Duration,
    /// Up to this much time, drawn at random afresh each cycle, is added to
    /// `flush_interval`. Default 0 (no jitter).
    pub flush_jitter: Duration,
    /// Time a sink call may take. Past it, on an engine with threads, the
    /// call is abandoned: the attempt counts as failed (`failed_flushes`,
    /// `flush_timeouts`, `Observer::on_flush_timeout`), the engine replaces
    /// the flusher thread stuck in it (at most `workers` abandoned calls per
    /// engine; past that the partition waits for the call), and the
    /// partition flushes on. The call keeps its batch; when it returns, its
    /// result is only counted (`Observer::on_abandoned_return`) and the batch
    /// is retried, spilled or dropped as usual, so it may be delivered twice
    /// (at least once). With
    /// [`retry_abandoned_batches`](crate::BufferBuilder::retry_abandoned_batches)
    /// (for `T: Clone + Sync`; always on in the C ABI) a copy of the batch is
    /// retried, spilled or dropped at once instead, and the batch the call
    /// returns with is discarded: still at least once, since a call that
    /// returns `Ok` late delivered it too. The sink sees the deadline as
    /// [`FlushContext::deadline`](crate::FlushContext::deadline). On a manual
    /// engine a call past it is only counted. Default 30 s; above 0.
    pub flush_timeout: Duration,
    /// Opaque text handed to every sink call, like a destination or a
    /// priority. Default unset.
    pub flush_meta: Option<String>,
    /// Independent partitions, each with its own items, timer and lock;
    /// each inserting thread gets a home partition (round-robin, when it
    /// first inserts), or `insert_keyed` picks one by key.
    /// Default 1; from 1 to 65536.
    pub partitions: usize,
    /// Items one partition holds at most, those in flight to the sink
    /// included; an insert beyond it meets the `overflow` policy.
    /// Default 10 000 items; at least `max_size + max_size_jitter`.
    pub capacity: usize,
    /// Bytes one partition holds at most (the items' [`Weigh`] weights),
    /// those in flight included; an insert beyond it meets the `overflow`
    /// policy, as beyond `capacity`. An item heavier than the whole bound is
    /// still taken into an empty partition, so it cannot wait forever.
    /// Items without a weight count 0. Default 0: no byte bound.
    ///
    /// Like `capacity`, it bounds the partition. Each
    /// [`producer`](crate::Buffer::producer) handle has a ring of its own
    /// (2 × `max_size` items, from 64 to 65,536) on top, where its items
    /// wait until the partition has room.
    ///
    /// [`Weigh`]: crate::Weigh
    pub capacity_bytes: u64,
    /// What an insert into a full partition does. Default
    /// [`Overflow::Block`]. [`Overflow::Spill`] spills only while the sink
    /// is failing, and waits as `Block` does while it is healthy.
    pub overflow: Overflow,
    /// With [`Overflow::Block`] (and [`Overflow::Spill`] while the sink is
    /// healthy or the spool full), how long an insert waits for room before
    /// it fails with a timeout; 0 = fail at once. Default 5 s.
    pub block_timeout: Duration,
    /// Retries of a failed flush (a sink error or panic) before its items are
    /// spilled (with a spool) or dropped and counted. Default 3; 0 = no retry.
    pub max_retries: u32,
    /// Wait before the first retry; each further retry waits twice as long
    /// as the one before, up to `retry_backoff_max`. Default 100 ms.
    pub retry_backoff: Duration,
    /// The longest wait between retries. Default 10 s; at least
    /// `retry_backoff`.
    pub retry_backoff_max: Duration,
    /// Directory of the disk spool. Default unset: no spool, and
    /// [`Overflow::Spill`] is refused by [`validate`](Self::validate).
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool keeps on disk. Default 1 GiB; above 0.
    pub spool_max_bytes: u64,
    /// When the spool syncs its writes to disk. Default [`SyncMode::Batch`].
    pub spool_sync: SyncMode,
    /// With [`SyncMode::Interval`], the longest time between syncs.
    /// Default 1 s; above 0.
    pub spool_sync_interval: Duration,
    /// Flusher threads of the buffer's private engine; a buffer registered in
    /// a shared engine uses the engine's pool instead. Default 2; from 1 to
    /// 1024.
    pub workers: usize,
}

impl Default for BufferConfig {
    /// The defaults listed on each field and by [`documented_keys`].
    fn default() -> Self {
        Self {
            name: "spillway".to_owned(),
            max_size: 1000,
            max_size_jitter: 0,
            max_bytes: 1 << 20,
            flush_interval: Duration::from_secs(1),
            flush_jitter: Duration::ZERO,
            flush_timeout: Duration::from_secs(30),
            flush_meta: None,
            partitions: 1,
            capacity: 10_000,
            capacity_bytes: 0,
            overflow: Overflow::Block,
            block_timeout: Duration::from_secs(5),
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(10),
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            spool_sync: SyncMode::Batch,
            spool_sync_interval: Duration::from_secs(1),
            workers: 2,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $field(mut self, value: $ty) -> Self {
                self.$field = value;
                self
            }
        )*
    };
}

impl BufferConfig {
    /// The defaults; the same as [`Default::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets `flush_meta`.
    #[must_use]
    pub fn flush_meta(mut self, meta: impl Into<String>) -> Self {
        self.flush_meta = Some(meta.into());
        self
    }

    /// Sets `spool_dir`.
    #[must_use]
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    setters! {
        /// Sets `max_size`, in items.
        max_size: usize;
        /// Sets `max_size_jitter`, in items.
        max_size_jitter: usize;
        /// Sets `max_bytes`, in bytes (0 = no byte trigger).
        max_bytes: u64;
        /// Sets `flush_interval`.
        flush_interval: Duration;
        /// Sets `flush_jitter`.
        flush_jitter: Duration;
        /// Sets `flush_timeout`.
        flush_timeout: Duration;
        /// Sets `partitions`.
        partitions: usize;
        /// Sets `capacity`, in items per partition.
        capacity: usize;
        /// Sets `capacity_bytes`, in bytes per partition (0 = no byte bound).
        capacity_bytes: u64;
        /// Sets `overflow`.
        overflow: Overflow;
        /// Sets `block_timeout`.
        block_timeout: Duration;
        /// Sets `max_retries`.
        max_retries: u32;
        /// Sets `retry_backoff`.
        retry_backoff: Duration;
        /// Sets `retry_backoff_max`.
        retry_backoff_max: Duration;
        /// Sets `spool_max_bytes`, in bytes.
        spool_max_bytes: u64;
        /// Sets `spool_sync`.
        spool_sync: SyncMode;
        /// Sets `spool_sync_interval`.
        spool_sync_interval: Duration;
        /// Sets `workers`.
        workers: usize;
    }

    /// Sets one key from text: the parser behind YAML files and C's
    /// `spw_config_set`. The syntax of each kind of value is in the
    /// [module documentation](self); [`documented_keys`] says what each key
    /// accepts.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownKey`] for a key that does not exist and
    /// [`ConfigError::InvalidValue`] for a value the key does not accept.
    /// Either way the configuration is unchanged.
    ///
    /// ```
    /// use spillway::config::BufferConfig;
    ///
    /// let mut cfg = BufferConfig::new();
    /// cfg.set("overflow", "spill")?;
    /// cfg.set("spool_dir", "/var/spool/app")?;
    /// cfg.set("spool_max_bytes", "10GiB")?;
    /// assert!(cfg.set("max_sise", "10").is_err());
    /// # Ok::<(), spillway::config::ConfigError>(())
    /// ```
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let doc = keys::find(key).ok_or_else(|| ConfigError::UnknownKey {
            key: key.to_owned(),
        })?;
        // Each row parses fully before it assigns, so a refusal changes nothing.
        (doc.set)(self, value).map_err(|expected| ConfigError::InvalidValue {
            key: doc.key,
            value: value.to_owned(),
            expected,
        })
    }

    /// The value of one key in the syntax [`set`](Self::set) reads, or
    /// `None` for an optional key that is unset.
    ///
    /// Durations and sizes come back in their largest exact unit (`1m`,
    /// `1500ms`, `1MiB`). A `spool_dir` that is not UTF-8 comes back with
    /// replacement characters.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownKey`] for a key that does not exist.
    ///
    /// ```
    /// use spillway::config::BufferConfig;
    ///
    /// let cfg = BufferConfig::new();
    /// assert_eq!(cfg.get("max_bytes")?.as_deref(), Some("1MiB"));
    /// assert_eq!(cfg.get("spool_dir")?, None);
    /// # Ok::<(), spillway::config::ConfigError>(())
    /// ```
    pub fn get(&self, key: &str) -> Result<Option<String>, ConfigError> {
        keys::find(key)
            .map(|doc| (doc.get)(self))
            .ok_or_else(|| ConfigError::UnknownKey {
                key: key.to_owned(),
            })
    }

    /// Puts one key back to its default (unsets an optional key such as
    /// `spool_dir`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownKey`] for a key that does not exist.
    ///
    /// ```
    /// use spillway::config::BufferConfig;
    ///
    /// let mut cfg = BufferConfig::new().spool_dir("/tmp/spool").max_size(5);
    /// cfg.reset("spool_dir")?;
    /// cfg.reset("max_size")?;
    /// assert_eq!(cfg, BufferConfig::new());
    /// # Ok::<(), spillway::config::ConfigError>(())
    /// ```
    pub fn reset(&mut self, key: &str) -> Result<(), ConfigError> {
        let doc = keys::find(key).ok_or_else(|| ConfigError::UnknownKey {
            key: key.to_owned(),
        })?;
        let mut fresh = self.clone();
        match ((doc.get)(&Self::default()), doc.clear) {
            (Some(default), _) => {
                (doc.set)(&mut fresh, &default).map_err(|expected| ConfigError::InvalidValue {
                    key: doc.key,
                    value: default,
                    expected,
                })?
            }
            (None, Some(clear)) => clear(&mut fresh),
            (None, None) => {}
        }
        *self = fresh;
        Ok(())
    }

    /// Checks what [`set`](Self::set) cannot: every value, including those
    /// assigned in code, and the combinations of values.
    ///
    /// Single values are held to the rules `set` applies (a zero `max_size`,
    /// `partitions`, `workers` or `flush_interval`, an empty `name`, a
    /// duration beyond 8760h). Then the combinations:
    ///
    /// - `capacity` at least `max_size`, and at least `max_size +
    ///   max_size_jitter`, so a partition can hold the largest batch;
    /// - `capacity_bytes`, when set, at least `max_bytes` (when set);
    /// - `retry_backoff` at most `retry_backoff_max`;
    /// - `overflow = spill` only with a `spool_dir`.
    ///
    /// # Errors
    ///
    /// The first problem found: [`ConfigError::InvalidValue`] naming a
    /// single key, or [`ConfigError::Invalid`] naming the keys that
    /// conflict.
    ///
    /// ```
    /// use spillway::config::{BufferConfig, ConfigError};
    ///
    /// let cfg = BufferConfig::new().max_size(500).capacity(100);
    /// let err = cfg.validate().unwrap_err();
    /// assert!(matches!(err, ConfigError::Invalid { keys: ["capacity", "max_size"], .. }));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Reading each value back through its own parser holds fields set in
        // code to exactly the rules of `set`, with no second copy of them.
        for doc in documented_keys() {
            if let Some(text) = (doc.get)(self) {
                let mut scratch = self.clone();
                (doc.set)(&mut scratch, &text).map_err(|expected| ConfigError::InvalidValue {
                    key: doc.key,
                    value: text,
                    expected,
                })?;
            }
        }
        self.validate_combinations()
    }

    fn validate_combinations(&self) -> Result<(), ConfigError> {
        if self.capacity < self.max_size {
            return Err(ConfigError::Invalid {
                keys: &["capacity", "max_size"],
                reason: format!(
                    "`capacity` ({}) is less than `max_size` ({}); a partition must be \
                     able to hold a whole batch",
                    self.capacity, self.max_size
                ),
            });
        }
        if self
            .max_size
            .checked_add(self.max_size_jitter)
            .is_none_or(|largest| largest > self.capacity)
        {
            return Err(ConfigError::Invalid {
                keys: &["max_size", "max_size_jitter", "capacity"],
                reason: format!(
                    "`max_size` + `max_size_jitter` ({} + {}) is more than `capacity` ({}); \
                     a partition must be able to hold the largest batch",
                    self.max_size, self.max_size_jitter, self.capacity
                ),
            });
        }
        if self.capacity_bytes > 0 && self.capacity_bytes < self.max_bytes {
            return Err(ConfigError::Invalid {
                keys: &["capacity_bytes", "max_bytes"],
                reason: format!(
                    "`capacity_bytes` ({}) is less than `max_bytes` ({}); a partition must \
                     be able to hold a whole batch",
                    value::render_size(self.capacity_bytes),
                    value::render_size(self.max_bytes)
                ),
            });
        }
        if self.retry_backoff > self.retry_backoff_max {
            return Err(ConfigError::Invalid {
                keys: &["retry_backoff", "retry_backoff_max"],
                reason: format!(
                    "`retry_backoff` ({}) is more than `retry_backoff_max` ({})",
                    value::render_duration(self.retry_backoff),
                    value::render_duration(self.retry_backoff_max)
                ),
            });
        }
        if self.overflow == Overflow::Spill && self.spool_dir.is_none() {
            return Err(ConfigError::Invalid {
                keys: &["overflow", "spool_dir"],
                reason: "`overflow` is spill but `spool_dir` is not set; spilling needs \
                         a spool directory"
                    .to_owned(),
            });
        }
        Ok(())
    }
}
