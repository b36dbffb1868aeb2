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

//!
//! The files, by concept (see `docs/architecture.md`): `handle.rs` (the
//! [`Buffer`] users hold), `builder.rs` (building one), `shared.rs` (the
//! state its handles, producers and the engine share), `admit.rs`
//! (admission and overflow), `flush.rs` (flush, retry, backoff),
//! `timers.rs`, `marks.rs` (`sync_flush`, close), `producer.rs` (lock-free
//! producer handles), and `partition/` (one partition's state and books,
//! its rings and its spool).

mod abandon;
mod admit;
mod builder;
mod error;
mod flush;
mod handle;
mod jitter;
mod marks;
mod partition;
mod producer;
mod report;
mod shared;
mod timers;

pub use builder::{BufferBuilder, NoSink};
pub use error::{BatchInsertError, BufferError, InsertError, SyncFlushError};
pub use handle::Buffer;
pub use producer::Producer;
pub use report::{FlushReport, PartitionFlush};

pub use crate::codec::SpillCodec;
pub use crate::stats::CloseReport;
