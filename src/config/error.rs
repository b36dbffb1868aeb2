//! The one error type of configuration: every message names the key (or the
//! keys, or the file) and says what would have been accepted.

use std::fmt;
use std::path::PathBuf;

use super::keys::suggest_key;

/// Why a configuration key, value, file or combination was refused.
///
/// Every message names what it is about, so it can be shown to a user as is
/// (the C ABI hands it out through `spw_last_error`).
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// No key has this name. The message lists the known keys and, for a
    /// likely typo, the closest one.
    UnknownKey {
        /// The key as given.
        key: String,
    },
    /// The value does not fit the key.
    InvalidValue {
        /// The key (always a known one).
        key: &'static str,
        /// The value as given.
        value: String,
        /// What the key accepts, e.g. "a whole number >= 1".
        expected: String,
    },
    /// Each value is fine alone but together they cannot work; found by
    /// [`BufferConfig::validate`](super::BufferConfig::validate).
    Invalid {
        /// The keys involved, in the order the reason mentions them.
        keys: &'static [&'static str],
        /// What is wrong, naming the keys and their values.
        reason: String,
    },
    /// YAML text could not be read as a flat mapping of key to scalar value.
    Yaml {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// What is wrong (the YAML parser's message, or which key holds a
        /// value of the wrong shape).
        reason: String,
    },
    /// A key or value inside a YAML file was refused; `source` says which.
    InFile {
        /// The file.
        path: PathBuf,
        /// The refusal, as [`BufferConfig::set`](super::BufferConfig::set)
        /// reported it.
        source: Box<ConfigError>,
    },
    /// A file could not be read: it is missing or unreadable, it is not a
    /// regular file (a FIFO, a device or a directory; `InvalidInput`), or it
    /// holds more than the 1 MiB a configuration file may have
    /// (`InvalidData`).
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said, or which of the above it is.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// The key this error is about, when it is about exactly one key
    /// (looking through [`InFile`](Self::InFile)).
    ///
    /// ```
    /// use spillway::config::BufferConfig;
    ///
    /// let err = BufferConfig::new().set("capacity", "lots").unwrap_err();
    /// assert_eq!(err.key(), Some("capacity"));
    /// ```
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::UnknownKey { key } => Some(key),
            Self::InvalidValue { key, .. } => Some(key),
            Self::Invalid { keys, .. } if keys.len() == 1 => Some(keys[0]),
            Self::InFile { source, .. } => source.key(),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey { key } => {
                // Escaped: a key from a file may hold line breaks, and the
                // message must stay on one line.
                write!(f, "unknown key `{}`", key.escape_debug())?;
                if let Some(near) = suggest_key(key) {
                    write!(f, ", did you mean `{near}`?")?;
                }
                f.write_str(" (known keys: ")?;
                for (i, doc) in super::documented_keys().iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(doc.key)?;
                }
                f.write_str(")")
            }
            Self::InvalidValue {
                key,
                value,
                expected,
            } => write!(
                f,
                "invalid value {value:?} for `{key}`: expected {expected}"
            ),
            Self::Invalid { reason, .. } => write!(f, "invalid configuration: {reason}"),
            Self::Yaml {
                path: Some(path),
                reason,
            } => write!(f, "{}: {reason}", path.display()),
            Self::Yaml { path: None, reason } => write!(f, "YAML configuration: {reason}"),
            Self::InFile { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
        }
    }
}

// The messages already include the underlying error (the C ABI shows only
// `Display`), so `source()` stays empty to keep error chains from printing it
// twice; the typed cause is still in the variant's `source` field.
impl std::error::Error for ConfigError {}
