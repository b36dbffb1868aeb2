//! The buffer's errors: why an insert, a build or a `sync_flush` failed.

use std::fmt;

use crate::config::ConfigError;
use crate::engine::{EngineError, RegisterError};
use crate::spool::SpoolError;

use super::report::FlushReport;

/// Why an insert did not take the item; the item comes back inside.
#[derive(PartialEq, Eq)]
pub enum InsertError<T> {
    /// The partition was full and `overflow` is `reject` or `drop_newest`,
    /// or `drop_oldest` with every item held already in flight (nothing to
    /// evict). Under `drop_newest` and `drop_oldest` the item also counts as
    /// inserted and dropped.
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

impl From<RegisterError> for BufferError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::NameTaken(name) => Self::NameTaken(name),
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

/// Why `sync_flush` returned before everything was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFlushError {
    /// The timeout passed; the report says what was resolved by then.
    Timeout(FlushReport),
    /// The buffer is closed.
    Closed,
    /// Called from inside one of this buffer's own sink calls, where it
    /// would wait for itself; refused at once.
    InsideSink,
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
            Self::InsideSink => f.write_str(
                "sync_flush called from inside the buffer's own sink, where it would wait for itself",
            ),
        }
    }
}

impl std::error::Error for SyncFlushError {}
