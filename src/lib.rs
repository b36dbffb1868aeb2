//! spillway buffers data in memory and hands it to a sink in batches, on plain
//! threads, with no async runtime.
//!
//! The layers, bottom up (each uses only the ones below it):
//! - [`ring`]: bounded FIFO rings, a mutex-guarded one for any number of
//!   threads and a lock-free single-producer/single-consumer one.
//! - [`spool`]: a durable append-only log of byte records on disk, and
//!   [`checkpoint`]: per-source positions in an atomically replaced YAML file.
//! - [`engine`]: a scheduler (a flusher pool and a timer thread) that knows
//!   no buffer, and above it [`buffer`]: the batching buffer (size, byte and
//!   time triggers, partitions, overflow policies including spilling to the
//!   spool, retries, telemetry), built with [`Buffer::new`] or
//!   [`Buffer::builder`].
//! - [`config`]: [`BufferConfig`], one set of keys for code, YAML and C.
//! - [`ffi`]: the C ABI behind `include/spillway.h`.
//!
//! Everything concurrent is model-checked with loom (`loom-tests/`). The
//! repository's `docs/architecture.md` maps the layers, the threads and
//! where each concept lives.
//!
//! ```
//! use spillway::{Buffer, BufferConfig, FlushContext, SinkError};
//! let buf = Buffer::new(BufferConfig::new().max_size(2), |b: &[u32], _: &FlushContext<'_>| {
//!     assert!(b.len() <= 2);
//!     Ok::<(), SinkError>(())
//! })?;
//! buf.insert(1)?;
//! buf.insert(2)?; // reaches max_size: this insert fires the flush
//! let report = buf.close(std::time::Duration::from_secs(5));
//! assert_eq!(report.counts.delivered, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

mod backoff;
mod join;
mod sync;

pub mod buffer;
pub mod checkpoint;
mod codec;
pub mod config;
pub mod engine;
pub mod ffi;
pub mod observer;
mod panic;
pub mod ring;
pub mod sink;
pub mod spool;
pub mod stats;
mod weigh;

pub use buffer::{Buffer, BufferBuilder, InsertError, Producer};
pub use codec::{Codec, CodecError, SpillCodec};
pub use config::BufferConfig;
pub use engine::Engine;
pub use sink::{FlushContext, FlushReason, Sink, SinkError};
pub use stats::Stats;
pub use weigh::Weigh;

/// The README's Rust examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
