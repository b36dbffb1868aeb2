//! The one error type of the checkpoint: every message names the file.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a [`Checkpoint`](super::Checkpoint) operation failed.
///
/// Every variant tied to the disk carries the path of the checkpoint file, and
/// its message names it, so a log line alone says which file to look at.
///
/// # Examples
///
/// ```
/// use spillway::checkpoint::{Checkpoint, CheckpointError};
/// use std::time::Duration;
///
/// let err = Checkpoint::open("/tmp/never-written.yaml", 0, Duration::from_secs(1)).unwrap_err();
/// assert!(matches!(err, CheckpointError::Invalid { .. }));
/// assert_eq!(err.to_string(), "invalid checkpoint argument: max_updates must be at least 1");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The operating system refused a file operation: a read at open, or any
    /// step of a write (disk full, `EFBIG`, permissions, a failed `fsync`).
    Io {
        /// The checkpoint file (also for steps on its temporary file or its
        /// directory: `op` says which).
        path: PathBuf,
        /// The step that failed, e.g. `"write temporary file"`.
        op: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file exists but is not a whole checkpoint written by spillway:
    /// empty, cut short, changed, or not YAML of the expected layout. It is
    /// left untouched; move or remove it to start from an empty state.
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument cannot be used: `max_updates` of 0, a zero interval, a
    /// path without a file name, or a timestamp outside the years 0000-9999
    /// that RFC 3339 can write.
    Invalid {
        /// Which argument and why.
        reason: String,
    },
    /// The checkpoint was shut down; it takes no more updates.
    Closed,
}

impl CheckpointError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            op,
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid {
            reason: reason.into(),
        }
    }
}

/// `io::Error` is not `Clone`; the copy keeps the OS error code when there is
/// one (so `raw_os_error()` still answers), otherwise the kind and the text.
impl Clone for CheckpointError {
    fn clone(&self) -> Self {
        match self {
            Self::Io { path, op, source } => Self::Io {
                path: path.clone(),
                op,
                source: match source.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(source.kind(), source.to_string()),
                },
            },
            Self::Corrupt { path, reason } => Self::Corrupt {
                path: path.clone(),
                reason: reason.clone(),
            },
            Self::Invalid { reason } => Self::Invalid {
                reason: reason.clone(),
            },
            Self::Closed => Self::Closed,
        }
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, op, source } => {
                write!(f, "checkpoint file {}: cannot {op}: {source}", path.display())
            }
            Self::Corrupt { path, reason } => write!(
                f,
                "checkpoint file {} is corrupt: {reason} (left untouched; move or remove it to start empty)",
                path.display()
            ),
            Self::Invalid { reason } => write!(f, "invalid checkpoint argument: {reason}"),
            Self::Closed => f.write_str("checkpoint is shut down"),
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
