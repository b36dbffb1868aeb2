//! From flags and `--config` to the buffer's configuration and the agent's
//! own settings.

use std::time::Duration;

use spillway::config::{ConfigError, Overflow};
use spillway::BufferConfig;

use crate::cli::ShipArgs;
use crate::error::AgentError;
use crate::record::RECORD_OVERHEAD;

/// Records per batch unless configured: with 100-byte lines, a 2 MB batch,
/// so each batch's syncs are paid for by enough data.
pub const DEFAULT_MAX_SIZE: usize = 20_000;
/// Bytes per batch unless configured.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 20;
/// Flusher threads unless configured. The agent's buffer has one partition,
/// whose batches go out one at a time, so a second thread only waits; and
/// each thread that sends batches keeps a malloc arena of its own (3.7 MB
/// of the NATS bench's peak memory). A call stuck past `flush_timeout` is
/// still replaced by a new thread.
pub const DEFAULT_WORKERS: usize = 1;
/// The least memory records may hold before the reader waits.
pub const MIN_BUDGET: u64 = 16 << 20;

/// Everything `ship` runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The buffer's configuration, as the buffer gets it.
    pub buffer: BufferConfig,
    /// Failed attempts (after the first) of one batch after which the output
    /// counts as down: without `--follow` the agent then stops reading.
    pub max_retries: u32,
    /// Bytes of records in memory at which the reader waits.
    pub budget: u64,
    /// `--stats`.
    pub stats: Option<Duration>,
    /// `--follow`.
    pub follow: bool,
    /// `--stdin-chunk`: most bytes read from stdin before they are synced.
    pub stdin_chunk: usize,
}

impl Settings {
    /// Reads the flags and the configuration file.
    ///
    /// # Errors
    /// [`AgentError::Input`] naming the flag, key or file, and what it accepts.
    pub fn from_args(args: &ShipArgs) -> Result<Self, AgentError> {
        let mut cfg = BufferConfig::new()
            .name("spillway-agent")
            .max_size(DEFAULT_MAX_SIZE)
            .max_bytes(DEFAULT_MAX_BYTES)
            .workers(DEFAULT_WORKERS);
        if let Some(path) = &args.config {
            cfg.merge_yaml_file(path)
                .map_err(|e| AgentError::input(e.to_string()))?;
        }
        let flags = [
            ("--max-size", "max_size", &args.max_size),
            ("--max-bytes", "max_bytes", &args.max_bytes),
            ("--flush-interval", "flush_interval", &args.flush_interval),
            ("--spool-max", "spool_max_bytes", &args.spool_max),
        ];
        for (flag, key, value) in flags {
            if let Some(value) = value {
                cfg.set(key, value).map_err(|e| flag_error(flag, e))?;
            }
        }
        let stdin_chunk = match &args.stdin_chunk {
            Some(v) => parse_chunk(v)?,
            None => crate::input::DEFAULT_STDIN_CHUNK,
        };
        let stats = match &args.stats {
            Some(v) => Some(parse_duration("--stats", v)?),
            None => None,
        };

        if cfg.partitions != 1 {
            return Err(AgentError::input(format!(
                "partitions is {} in the configuration, but the agent ships records in \
                 order: it must be 1",
                cfg.partitions
            )));
        }
        if !matches!(cfg.overflow, Overflow::Block | Overflow::Spill) {
            return Err(AgentError::input(
                "overflow in the configuration would drop records: the agent accepts only \
                 block or spill",
            ));
        }
        if let Some(dir) = &cfg.spool_dir {
            return Err(AgentError::input(format!(
                "spool_dir is {} in the configuration, but the agent keeps its spool in \
                 --state: leave it unset",
                dir.display()
            )));
        }
        let budget = cfg.max_bytes.saturating_mul(4).max(MIN_BUDGET);
        // The reader waits on its memory budget, so a partition never fills
        // while the output keeps up: records spill to disk only when the
        // output fails, never just because it is slower than the reader.
        let most_in_memory = usize::try_from(budget / RECORD_OVERHEAD).unwrap_or(usize::MAX);
        let largest = cfg.max_size.saturating_add(cfg.max_size_jitter);
        cfg.capacity = cfg
            .capacity
            .max(largest.saturating_mul(2))
            .max(most_in_memory.saturating_add(largest));
        let max_retries = cfg.max_retries;
        // Only bounds how long one insert waits before the reader looks at
        // signals again.
        cfg.block_timeout = Duration::from_millis(200);
        // The library's message already says what it is about ("invalid
        // configuration: ..."); a prefix here would say it twice.
        cfg.validate()
            .map_err(|e| AgentError::input(e.to_string()))?;
        Ok(Self {
            buffer: cfg,
            max_retries,
            budget,
            stats,
            follow: args.follow,
            stdin_chunk,
        })
    }
}

fn flag_error(flag: &str, e: ConfigError) -> AgentError {
    match e {
        ConfigError::InvalidValue {
            value, expected, ..
        } => AgentError::input(format!(
            "invalid value \"{value}\" for {flag}: expected {expected}"
        )),
        other => AgentError::input(format!("{flag}: {other}")),
    }
}

/// A duration in the configuration's syntax (`250ms`, `2s`), above zero.
fn parse_duration(flag: &str, value: &str) -> Result<Duration, AgentError> {
    let mut scratch = BufferConfig::new();
    scratch
        .set("flush_interval", value)
        .map_err(|e| flag_error(flag, e))?;
    Ok(scratch.flush_interval)
}

/// The largest `--stdin-chunk`: a chunk is one record of the stdin spool,
/// whose largest record is 4 MiB (with the chunk's header).
pub const MAX_STDIN_CHUNK: u64 = 4 << 20;

/// `--stdin-chunk SIZE`: from 1 byte to [`MAX_STDIN_CHUNK`].
fn parse_chunk(value: &str) -> Result<usize, AgentError> {
    let mut scratch = BufferConfig::new();
    scratch
        .set("max_bytes", value)
        .map_err(|e| flag_error("--stdin-chunk", e))?;
    let n = scratch.max_bytes;
    if n == 0 || n > MAX_STDIN_CHUNK {
        return Err(AgentError::input(format!(
            "invalid value \"{value}\" for --stdin-chunk: expected a size from 1 to 4MiB"
        )));
    }
    usize::try_from(n).map_err(|_| AgentError::input("--stdin-chunk does not fit this machine"))
}

impl Settings {
    /// The buffer for a file input: failed batches spill to `spool_dir`
    /// after `max_retries` (the file itself keeps everything after the
    /// checkpoint, so the spool only has to hold what is in memory).
    pub fn spilling(&self, spool_dir: &std::path::Path) -> BufferConfig {
        let mut cfg = self.buffer.clone();
        cfg.overflow = Overflow::Spill;
        cfg.spool_dir = Some(spool_dir.to_path_buf());
        cfg
    }

    /// The buffer for stdin, whose records are already in the stdin spool:
    /// no second spool, and a batch is retried until it is delivered or the
    /// agent stops.
    pub fn retrying(&self) -> BufferConfig {
        let mut cfg = self.buffer.clone();
        cfg.overflow = Overflow::Block;
        cfg.max_retries = u32::MAX;
        cfg
    }
}
