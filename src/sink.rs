//! Where batches go: the [`Sink`] trait and what each call is told.

use std::fmt;
use std::time::Instant;

/// Why a batch is being flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushReason {
    /// A partition reached `max_size` items (plus jitter) or `max_bytes`.
    Size,
    /// A partition's `flush_interval` (plus jitter) passed.
    Time,
    /// [`Buffer::flush`](crate::buffer::Buffer::flush) or `sync_flush` asked for it.
    Manual,
    /// The buffer is closing.
    Close,
    /// Items read back from the disk spool (`overflow: spill`), oldest first.
    Replay,
}

impl FlushReason {
    /// The C value of this reason (`SPW_FLUSH_SIZE` = 1 ... `SPW_FLUSH_CLOSE`
    /// = 4, `SPW_FLUSH_REPLAY` = 5).
    pub fn code(self) -> u32 {
        match self {
            Self::Size => 1,
            Self::Time => 2,
            Self::Manual => 3,
            Self::Close => 4,
            Self::Replay => 5,
        }
    }

    /// The lower-case name: `size`, `time`, `manual`, `close` or `replay`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Size => "size",
            Self::Time => "time",
            Self::Manual => "manual",
            Self::Close => "close",
            Self::Replay => "replay",
        }
    }
}

impl fmt::Display for FlushReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a sink is told about the batch it is given.
#[derive(Debug, Clone)]
pub struct FlushContext<'a> {
    /// The buffer's `name`.
    pub buffer: &'a str,
    /// The partition the batch comes from, 0-based.
    pub partition: u32,
    /// Why the batch is flushed now.
    pub reason: FlushReason,
    /// 0 on the first try, 1.. on retries of the same batch.
    pub attempt: u32,
    /// When `flush_timeout` runs out for this call. The sink is not
    /// interrupted, but past it the call is abandoned (see
    /// `BufferConfig::flush_timeout`): whatever it returns later, its batch
    /// goes again.
    pub deadline: Instant,
    /// The buffer's `flush_meta`, handed through unchanged.
    pub flush_meta: Option<&'a str>,
    /// Sum of the items' weights ([`Weigh`](crate::Weigh)); 0 when unknown.
    pub batch_bytes: u64,
}

/// A sink's failure: any error, or a message.
///
/// ```
/// use spillway::SinkError;
/// let e: SinkError = std::io::Error::other("disk gone").into();
/// assert_eq!(e.to_string(), "disk gone");
/// assert_eq!(SinkError::msg("HTTP 503").to_string(), "HTTP 503");
/// ```
pub struct SinkError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl SinkError {
    /// A failure described by a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(message.to_string().into())
    }

    /// The underlying error.
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

// Not `std::error::Error` itself, so that every error type converts with `?`
// (the same trick as `anyhow::Error`).
impl<E: std::error::Error + Send + Sync + 'static> From<E> for SinkError {
    fn from(e: E) -> Self {
        Self(Box::new(e))
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Receives batches. Called on a flusher thread with a borrowed batch; `Ok`
/// accepts it, `Err` fails this attempt (retried as configured). A panic is
/// caught and counts as a failure.
///
/// Flushes of different partitions may run at the same time, so a sink is
/// `Sync`; one partition never has two calls in flight, so each partition's
/// items arrive in insertion order.
///
/// Any `Fn(&[T], &FlushContext) -> Result<(), E>` closure is a sink:
///
/// ```
/// use spillway::{FlushContext, Sink, SinkError};
/// fn takes_sink<S: Sink<u32>>(_: S) {}
/// takes_sink(|batch: &[u32], ctx: &FlushContext<'_>| -> Result<(), SinkError> {
///     println!("{} items from partition {}", batch.len(), ctx.partition);
///     Ok(())
/// });
/// ```
pub trait Sink<T>: Send + Sync + 'static {
    /// Takes one batch.
    ///
    /// # Errors
    /// Any error fails this attempt; the buffer retries with backoff, then
    /// spills or drops the batch and reports it.
    fn flush(&self, batch: &[T], ctx: &FlushContext<'_>) -> Result<(), SinkError>;
}

impl<T, F, E> Sink<T> for F
where
    F: Fn(&[T], &FlushContext<'_>) -> Result<(), E> + Send + Sync + 'static,
    E: Into<SinkError>,
{
    fn flush(&self, batch: &[T], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        self(batch, ctx).map_err(Into::into)
    }
}
