//! What can go wrong in the spool. Records that were not taken come back
//! inside the error, so the caller can apply its own overflow policy.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An operating-system error, with the operation and the file it was about,
/// so a message alone tells an operator what failed and where.
#[derive(Debug)]
pub struct IoError {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl IoError {
    /// Wraps `source`, the error of operation `op` (say `"fsync"`) on `path`.
    ///
    /// ```
    /// use spillway::spool::IoError;
    /// let e = IoError::new("fsync", "/var/spool/app/0000000000000001.seg",
    ///                      std::io::Error::from_raw_os_error(5));
    /// assert!(e.to_string().starts_with("fsync /var/spool/app/0000000000000001.seg: "));
    /// ```
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            op,
            path: path.into(),
            source,
        }
    }

    /// The operation that failed, e.g. `"write"`, `"fsync"`, `"rename"`.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The file or directory the operation was about.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kind of the underlying error.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The underlying error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A [`SpoolConfig`](super::SpoolConfig) value that cannot work; names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfigError {
    field: &'static str,
    reason: String,
}

impl SpoolConfigError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }

    /// The name of the offending field, e.g. `"segment_bytes"`.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for SpoolConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid spool config: {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for SpoolConfigError {}

/// Why a spool operation failed.
///
/// The variants that concern a record that was *not* taken carry it back
/// ([`Full`](Self::Full), [`TooLarge`](Self::TooLarge),
/// [`NotStored`](Self::NotStored)); [`into_record`](Self::into_record) gets it
/// out whatever the variant.
pub enum SpoolError {
    /// Taking the record would make the spool exceed `max_bytes` on disk.
    /// The record was not taken and comes back.
    Full(Vec<u8>),
    /// The record is longer than `max_record`. It was not taken and comes back.
    TooLarge {
        /// The record.
        record: Vec<u8>,
        /// The configured limit.
        max_record: usize,
    },
    /// The disk refused to write or sync what this push needed, so the record
    /// was not taken (nothing of it counts in [`len`](super::Spool::len)); it
    /// comes back. Records taken earlier are unaffected.
    NotStored {
        /// The record.
        record: Vec<u8>,
        /// What the operating system said, with operation and path.
        error: IoError,
    },
    /// The operating system refused a read, write, sync, rename or delete.
    /// For `flush` and the end of `push_batch`: every record taken so far is
    /// still in the spool, but not all of it is known to be durable.
    Io(IoError),
    /// Another process (or another `Spool` in this one) holds the directory.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The spool was closed.
    Closed,
    /// The configuration cannot work.
    Config(SpoolConfigError),
}

impl SpoolError {
    /// The record that was not taken, if this error carries one.
    ///
    /// ```
    /// use spillway::spool::SpoolError;
    /// assert_eq!(SpoolError::Full(b"x".to_vec()).into_record(), Some(b"x".to_vec()));
    /// assert_eq!(SpoolError::Closed.into_record(), None);
    /// ```
    pub fn into_record(self) -> Option<Vec<u8>> {
        match self {
            Self::Full(record) | Self::TooLarge { record, .. } | Self::NotStored { record, .. } => {
                Some(record)
            }
            _ => None,
        }
    }

    /// The operating-system error inside, if any.
    pub fn io_error(&self) -> Option<&IoError> {
        match self {
            Self::NotStored { error, .. } | Self::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<IoError> for SpoolError {
    fn from(e: IoError) -> Self {
        Self::Io(e)
    }
}

impl From<SpoolConfigError> for SpoolError {
    fn from(e: SpoolConfigError) -> Self {
        Self::Config(e)
    }
}

// Debug without dumping record contents, which may be large or private.
impl fmt::Debug for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(r) => write!(f, "Full({} bytes)", r.len()),
            Self::TooLarge { record, max_record } => f
                .debug_struct("TooLarge")
                .field("len", &record.len())
                .field("max_record", max_record)
                .finish(),
            Self::NotStored { record, error } => f
                .debug_struct("NotStored")
                .field("len", &record.len())
                .field("error", error)
                .finish(),
            Self::Io(e) => f.debug_tuple("Io").field(e).finish(),
            Self::Locked { path } => f.debug_struct("Locked").field("path", path).finish(),
            Self::Closed => f.write_str("Closed"),
            Self::Config(e) => f.debug_tuple("Config").field(e).finish(),
        }
    }
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(r) => write!(
                f,
                "spool is full (max_bytes reached); the {}-byte record was not stored",
                r.len()
            ),
            Self::TooLarge { record, max_record } => write!(
                f,
                "record of {} bytes is larger than max_record ({max_record} bytes)",
                record.len()
            ),
            Self::NotStored { record, error } => write!(
                f,
                "spool could not store a {}-byte record: {error}",
                record.len()
            ),
            Self::Io(e) => write!(f, "spool I/O error: {e}"),
            Self::Locked { path } => write!(
                f,
                "spool directory is in use by another process (lock held on {})",
                path.display()
            ),
            Self::Closed => f.write_str("spool is closed"),
            Self::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SpoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NotStored { error, .. } | Self::Io(error) => Some(error),
            Self::Config(e) => Some(e),
            _ => None,
        }
    }
}
