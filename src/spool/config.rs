//! How big, how durable, and how much memory a spool may use.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::error::SpoolConfigError;
use super::frame;

/// When the spool makes what it has written durable (fsync) on its own. The
/// one sync type of the crate: a buffer's `spool_sync` key holds it too.
///
/// [`Spool::flush`](super::Spool::flush) and [`Spool::close`](super::Spool::close)
/// always write and sync everything, whatever the mode.
///
/// ```
/// use spillway::spool::SyncMode;
/// assert_eq!("interval".parse::<SyncMode>().unwrap(), SyncMode::Interval);
/// assert_eq!(SyncMode::Never.to_string(), "never");
/// assert!("sometimes".parse::<SyncMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SyncMode {
    /// `always`: every `push` is written and synced before it returns; a
    /// `push_batch` is synced once, before it returns. Safest, slowest.
    Always,
    /// `batch`: group commit. `push` only buffers (writing when the memory
    /// window is full); the end of each `push_batch` writes and syncs
    /// everything pushed since the last sync, once.
    #[default]
    Batch,
    /// `interval`: sync when [`SpoolConfig::sync_interval`] has passed since
    /// the last sync; a crash may lose what was written since. The spool owns
    /// no thread: the check runs at the start of the next `push`,
    /// `push_batch`, `pop`, `pop_newest` or `remove`, and in
    /// [`Spool::sync_if_due`](super::Spool::sync_if_due), which an owner's
    /// timer may call.
    Interval,
    /// `never`: only `flush` and `close` sync; a crash may lose recent
    /// records.
    Never,
}

impl SyncMode {
    /// Every mode, in the order the documentation lists them.
    pub const fn all() -> [Self; 4] {
        [Self::Always, Self::Batch, Self::Interval, Self::Never]
    }

    /// The snake_case name that [`FromStr`] reads and that `set`, YAML and
    /// C use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Batch => "batch",
            Self::Interval => "interval",
            Self::Never => "never",
        }
    }
}

/// `"always"`, `"batch"`, `"interval"` or `"never"`; anything else is a
/// [`ParseSyncModeError`].
impl FromStr for SyncMode {
    type Err = ParseSyncModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::all()
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| ParseSyncModeError(s.to_owned()))
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the [`SyncMode`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSyncModeError(String);

impl fmt::Display for ParseSyncModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid spool sync mode {:?}: expected always | batch | interval | never",
            self.0
        )
    }
}

impl std::error::Error for ParseSyncModeError {}

/// Limits and durability of a [`Spool`](super::Spool).
///
/// ```
/// use spillway::spool::{SpoolConfig, SyncMode};
/// let cfg = SpoolConfig {
///     segment_bytes: 4096,
///     max_bytes: 64 * 1024,
///     max_record: 1024,
///     ..SpoolConfig::default()
/// };
/// assert!(cfg.validate().is_ok());
/// assert_eq!(cfg.sync, SyncMode::Batch);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Most bytes the segment files may take together; a push beyond it is
    /// [`SpoolError::Full`](super::SpoolError::Full). Records pushed but not
    /// yet written count too. Consumed space comes back a whole segment at a
    /// time. Default 1 GiB.
    pub max_bytes: u64,
    /// Size at which a segment file is closed and a new one started (a record
    /// larger than this gets a segment of its own). At least 64 bytes; a few
    /// KiB suits small devices. Default 32 MiB (each new segment costs one
    /// more fsync of the file and one of the directory).
    pub segment_bytes: u64,
    /// Longest record accepted, in bytes; also the longest length believed
    /// when reading a file back, so a damaged length never allocates more.
    /// At most `u32::MAX - 16`. Default 4 MiB.
    pub max_record: usize,
    /// When to sync on its own. Default [`SyncMode::Batch`].
    pub sync: SyncMode,
    /// With [`SyncMode::Interval`], the longest time between syncs. Above 0;
    /// default 1 s.
    pub sync_interval: Duration,
    /// Payload bytes kept in memory on each side: the newest records pushed
    /// (not written yet, or written and kept for a cheap pop), and the oldest
    /// records read ahead from disk. The spool holds at most about twice this
    /// plus one record. 0 writes every push through. Default 1 MiB.
    pub memory_bytes: usize,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 30,
            segment_bytes: 32 << 20,
            max_record: 4 << 20,
            sync: SyncMode::Batch,
            sync_interval: Duration::from_secs(1),
            memory_bytes: 1 << 20,
        }
    }
}

/// The smallest `segment_bytes` accepted. (Not public: cbindgen would put
/// every public constant into the C header.)
const MIN_SEGMENT_BYTES: u64 = 64;

impl SpoolConfig {
    /// Checks that the values can work together.
    ///
    /// # Errors
    /// A [`SpoolConfigError`] naming the first field that cannot work.
    ///
    /// ```
    /// use spillway::spool::SpoolConfig;
    /// let err = SpoolConfig { segment_bytes: 10, ..SpoolConfig::default() }.validate().unwrap_err();
    /// assert_eq!(err.field(), "segment_bytes");
    /// ```
    pub fn validate(&self) -> Result<(), SpoolConfigError> {
        if self.segment_bytes < MIN_SEGMENT_BYTES {
            return Err(SpoolConfigError::new(
                "segment_bytes",
                format!(
                    "{} is below the minimum of {MIN_SEGMENT_BYTES}",
                    self.segment_bytes
                ),
            ));
        }
        if self.max_record == 0 {
            return Err(SpoolConfigError::new("max_record", "must be at least 1"));
        }
        if self.max_record > frame::MAX_PAYLOAD {
            return Err(SpoolConfigError::new(
                "max_record",
                format!(
                    "{} is above the format's limit of {}",
                    self.max_record,
                    frame::MAX_PAYLOAD
                ),
            ));
        }
        if self.max_bytes < self.segment_bytes {
            return Err(SpoolConfigError::new(
                "max_bytes",
                format!(
                    "{} is smaller than segment_bytes ({})",
                    self.max_bytes, self.segment_bytes
                ),
            ));
        }
        if self.max_bytes < frame::frame_len(self.max_record) {
            return Err(SpoolConfigError::new(
                "max_bytes",
                format!(
                    "{} cannot hold one record of max_record ({}) bytes",
                    self.max_bytes, self.max_record
                ),
            ));
        }
        // Checked whatever the mode, so that switching a valid configuration
        // to `Interval` cannot make it invalid.
        if self.sync_interval.is_zero() {
            return Err(SpoolConfigError::new(
                "sync_interval",
                "must be longer than zero",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_mode_names_round_trip() {
        for mode in SyncMode::all() {
            assert_eq!(mode.as_str().parse::<SyncMode>(), Ok(mode));
            assert_eq!(mode.to_string(), mode.as_str());
        }
        let err = "Always".parse::<SyncMode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid spool sync mode \"Always\": expected always | batch | interval | never"
        );
    }

    #[test]
    fn validate_names_the_field() {
        let base = SpoolConfig::default();
        assert!(base.validate().is_ok());
        let cases = [
            (
                SpoolConfig {
                    max_record: 0,
                    ..base.clone()
                },
                "max_record",
            ),
            (
                SpoolConfig {
                    max_record: usize::MAX,
                    ..base.clone()
                },
                "max_record",
            ),
            (
                SpoolConfig {
                    max_bytes: 1024,
                    segment_bytes: 4096,
                    ..base.clone()
                },
                "max_bytes",
            ),
            (
                SpoolConfig {
                    max_bytes: 4096,
                    segment_bytes: 4096,
                    max_record: 4096,
                    ..base.clone()
                },
                "max_bytes",
            ),
            (
                SpoolConfig {
                    sync: SyncMode::Interval,
                    sync_interval: Duration::ZERO,
                    ..base.clone()
                },
                "sync_interval",
            ),
        ];
        for (cfg, field) in cases {
            let err = cfg.validate().unwrap_err();
            assert_eq!(err.field(), field, "{cfg:?}");
            assert!(err.to_string().contains(field), "{err}");
        }
    }
}
