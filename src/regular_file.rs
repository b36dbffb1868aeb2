//! Reading a small file that must be a regular file: with a size bound, and
//! never blocking on a FIFO or a device that stands where the file belongs.
//!
//! The checkpoint, YAML configuration files and the agent's files are read
//! through [`read`]. It opens the path with `O_NONBLOCK` (opening a FIFO
//! without a writer would otherwise wait forever), checks the type of what it
//! opened with `fstat` on that descriptor (so a swap between a check and the
//! open cannot slip a FIFO or a device in), and reads at most `limit` bytes
//! (so `/dev/zero` or a runaway file cannot exhaust memory).
//!
//! ```
//! use spillway::regular_file::{self, ReadFileError, Symlinks};
//!
//! let dir = std::env::temp_dir();
//! let err = regular_file::read(&dir, 1024, Symlinks::Follow).unwrap_err();
//! assert!(matches!(err, ReadFileError::NotRegular { .. }));
//! assert_eq!(err.to_string(), "it is a directory, not a regular file");
//! ```

use std::fmt;
use std::fs::{self, File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What to do when the path itself is a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlinks {
    /// Read the file the link points to (it must be a regular file too).
    /// For paths a user names, such as `--config`.
    Follow,
    /// Refuse the link (`O_NOFOLLOW`). For files a program keeps in its own
    /// state directory, where a link is never one it made.
    Refuse,
}

/// What stands at a path instead of a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A named pipe.
    Fifo,
    /// A character device, such as `/dev/zero`.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix domain socket.
    Socket,
    /// A symbolic link, with [`Symlinks::Refuse`].
    Symlink,
    /// Anything else the file system may hold.
    Other,
}

impl FileKind {
    fn of(t: FileType) -> Self {
        if t.is_dir() {
            Self::Directory
        } else if t.is_fifo() {
            Self::Fifo
        } else if t.is_char_device() {
            Self::CharDevice
        } else if t.is_block_device() {
            Self::BlockDevice
        } else if t.is_socket() {
            Self::Socket
        } else if t.is_symlink() {
            Self::Symlink
        } else {
            Self::Other
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Directory => "a directory",
            Self::Fifo => "a FIFO",
            Self::CharDevice => "a character device",
            Self::BlockDevice => "a block device",
            Self::Socket => "a socket",
            Self::Symlink => "a symbolic link",
            Self::Other => "not a file",
        })
    }
}

/// Why [`read`] returned no content. The messages do not name the file:
/// the caller knows what the file is for and says so.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadFileError {
    /// Nothing exists at the path (`ENOENT`).
    NotFound(io::Error),
    /// Something other than a regular file stands at the path.
    NotRegular {
        /// What it is.
        kind: FileKind,
    },
    /// The file holds more than `limit` bytes.
    TooLarge {
        /// The bound the caller gave.
        limit: u64,
    },
    /// The operating system refused to open or read it.
    Io {
        /// `"open"` or `"read"`.
        op: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
}

impl fmt::Display for ReadFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(source) => write!(f, "cannot open: {source}"),
            Self::NotRegular { kind } => write!(f, "it is {kind}, not a regular file"),
            Self::TooLarge { limit } => {
                write!(f, "it is larger than the {limit} bytes it may have")
            }
            Self::Io { op, source } => write!(f, "cannot {op}: {source}"),
        }
    }
}

impl std::error::Error for ReadFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NotFound(source) | Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// For APIs that carry an `io::Error`: the operating system's own error
/// where there is one (its code survives), otherwise `InvalidInput` (not a
/// regular file) or `InvalidData` (too large) with this error's message.
impl From<ReadFileError> for io::Error {
    fn from(e: ReadFileError) -> Self {
        match e {
            ReadFileError::NotFound(source) | ReadFileError::Io { source, .. } => source,
            other @ ReadFileError::NotRegular { .. } => {
                io::Error::new(io::ErrorKind::InvalidInput, other.to_string())
            }
            other @ ReadFileError::TooLarge { .. } => {
                io::Error::new(io::ErrorKind::InvalidData, other.to_string())
            }
        }
    }
}

/// The whole content of the regular file at `path`, at most `limit` bytes.
///
/// Never blocks on what stands at the path: a FIFO, a device, a socket or a
/// directory is [`ReadFileError::NotRegular`], found by `fstat` on the
/// opened descriptor. A file longer than `limit` (also one that grows past it
/// while being read) is [`ReadFileError::TooLarge`]; at most `limit + 1`
/// bytes are ever held.
///
/// # Errors
///
/// [`ReadFileError::NotFound`] when nothing is there, the other variants as
/// above, and [`ReadFileError::Io`] when opening or reading fails.
///
/// ```
/// use spillway::regular_file::{self, ReadFileError, Symlinks};
///
/// # let dir = std::env::temp_dir().join(format!("spillway-doc-rf-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("small.txt");
/// std::fs::write(&path, "twelve bytes").unwrap();
/// assert_eq!(regular_file::read(&path, 12, Symlinks::Refuse)?, b"twelve bytes");
/// let err = regular_file::read(&path, 11, Symlinks::Refuse).unwrap_err();
/// assert!(matches!(err, ReadFileError::TooLarge { limit: 11 }));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), ReadFileError>(())
/// ```
pub fn read(path: &Path, limit: u64, symlinks: Symlinks) -> Result<Vec<u8>, ReadFileError> {
    let file = open(path, symlinks)?;
    let meta = file
        .metadata()
        .map_err(|source| ReadFileError::Io { op: "read", source })?;
    if !meta.is_file() {
        return Err(ReadFileError::NotRegular {
            kind: FileKind::of(meta.file_type()),
        });
    }
    if meta.len() > limit {
        return Err(ReadFileError::TooLarge { limit });
    }
    // The size can change between fstat and the read; `take` holds the
    // bound whatever happens meanwhile.
    let capacity = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| ReadFileError::Io { op: "read", source })?;
    if bytes.len() as u64 > limit {
        return Err(ReadFileError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Opens the regular file at `path` for reading and writing, creating it
/// (mode 0o666 less the umask) if nothing is there: for a file a program
/// keeps in its own directory, such as a lock file. A symbolic link is
/// refused (`O_NOFOLLOW`), and a FIFO, a device or a directory is
/// [`ReadFileError::NotRegular`] without blocking (`O_NONBLOCK`; opening a
/// FIFO for writing would otherwise wait for a reader).
///
/// # Errors
///
/// [`ReadFileError::NotRegular`] as above, [`ReadFileError::Io`] when the
/// file cannot be opened or created.
///
/// ```
/// use spillway::regular_file;
///
/// # let dir = std::env::temp_dir().join(format!("spillway-doc-rfc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let lock = regular_file::open_or_create(&dir.join("lock"))?;
/// assert!(lock.metadata().unwrap().is_file());
/// assert!(regular_file::open_or_create(&dir).is_err()); // a directory
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), spillway::regular_file::ReadFileError>(())
/// ```
pub fn open_or_create(path: &Path) -> Result<File, ReadFileError> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) => return Err(classify_open_error(path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|source| ReadFileError::Io { op: "open", source })?;
    if meta.is_file() {
        Ok(file)
    } else {
        Err(ReadFileError::NotRegular {
            kind: FileKind::of(meta.file_type()),
        })
    }
}

/// Opens for reading without blocking; a refused link and an unopenable
/// special file (a socket gives `ENXIO`) are told apart from other errors.
fn open(path: &Path, symlinks: Symlinks) -> Result<File, ReadFileError> {
    let mut flags = libc::O_NONBLOCK;
    if symlinks == Symlinks::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| classify_open_error(path, e))
}

/// A failed open as a [`ReadFileError`]: `ELOOP` (a refused link), `ENXIO`
/// (a socket, or a FIFO without a reader opened for writing) and `EISDIR`
/// name what stands at the path.
fn classify_open_error(path: &Path, e: io::Error) -> ReadFileError {
    if e.kind() == io::ErrorKind::NotFound {
        return ReadFileError::NotFound(e);
    }
    let special = matches!(
        e.raw_os_error(),
        Some(libc::ELOOP | libc::ENXIO | libc::EISDIR)
    );
    let kind = fs::symlink_metadata(path)
        .ok()
        .map(|m| FileKind::of(m.file_type()))
        .filter(|k| special && *k != FileKind::Other);
    match kind {
        Some(kind) => ReadFileError::NotRegular { kind },
        None => ReadFileError::Io {
            op: "open",
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "spillway-regular-file-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mkfifo(path: &Path) {
        let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
        assert!(ok, "mkfifo {}", path.display());
    }

    fn kind_of(e: ReadFileError) -> FileKind {
        match e {
            ReadFileError::NotRegular { kind } => kind,
            other => panic!("expected NotRegular, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_regular_file_up_to_its_limit() {
        let dir = scratch("regular");
        let path = dir.join("f");
        fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read(&path, 10, Symlinks::Refuse).unwrap(), b"0123456789");
        assert_eq!(
            read(&path, u64::MAX, Symlinks::Follow).unwrap(),
            b"0123456789"
        );
        assert!(matches!(
            read(&path, 9, Symlinks::Refuse),
            Err(ReadFileError::TooLarge { limit: 9 })
        ));
        fs::write(&path, b"").unwrap();
        assert_eq!(read(&path, 0, Symlinks::Refuse).unwrap(), b"");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = scratch("fifo");
        let path = dir.join("f");
        mkfifo(&path);
        // No writer: a blocking open would wait here forever.
        let err = read(&path, 1 << 20, Symlinks::Refuse).unwrap_err();
        assert_eq!(err.to_string(), "it is a FIFO, not a regular file");
        assert_eq!(kind_of(err), FileKind::Fifo);
        assert_eq!(
            kind_of(read(&path, 1 << 20, Symlinks::Follow).unwrap_err()),
            FileKind::Fifo
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_and_directories_are_refused() {
        // /dev/zero would otherwise be read without end.
        let err = read(Path::new("/dev/zero"), 1 << 20, Symlinks::Follow).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is a character device, not a regular file"
        );
        let dir = scratch("dir");
        assert_eq!(
            kind_of(read(&dir, 1 << 20, Symlinks::Refuse).unwrap_err()),
            FileKind::Directory
        );
        // A socket cannot be opened at all (ENXIO); it is still named.
        let socket = dir.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(
            kind_of(read(&socket, 1 << 20, Symlinks::Refuse).unwrap_err()),
            FileKind::Socket
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinks_are_followed_or_refused_as_asked() {
        let dir = scratch("symlink");
        let target = dir.join("target");
        fs::write(&target, b"x").unwrap();
        let link = dir.join("link");
        symlink(&target, &link).unwrap();
        assert_eq!(read(&link, 10, Symlinks::Follow).unwrap(), b"x");
        let err = read(&link, 10, Symlinks::Refuse).unwrap_err();
        assert_eq!(err.to_string(), "it is a symbolic link, not a regular file");
        // Following a link to a device still finds the device.
        let zero = dir.join("zero");
        symlink("/dev/zero", &zero).unwrap();
        assert_eq!(
            kind_of(read(&zero, 10, Symlinks::Follow).unwrap_err()),
            FileKind::CharDevice
        );
        assert_eq!(
            kind_of(read(&zero, 10, Symlinks::Refuse).unwrap_err()),
            FileKind::Symlink
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn open_or_create_makes_a_file_and_refuses_special_ones() {
        let dir = scratch("create");
        let path = dir.join("lock");
        open_or_create(&path).unwrap();
        assert!(fs::metadata(&path).unwrap().is_file());
        fs::write(&path, b"kept").unwrap();
        drop(open_or_create(&path).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"kept", "never truncated");

        let fifo = dir.join("fifo");
        mkfifo(&fifo);
        // No reader: a blocking open for writing would wait here forever.
        assert_eq!(kind_of(open_or_create(&fifo).unwrap_err()), FileKind::Fifo);
        assert_eq!(
            kind_of(open_or_create(&dir).unwrap_err()),
            FileKind::Directory
        );
        let link = dir.join("link");
        symlink(&path, &link).unwrap();
        assert_eq!(
            kind_of(open_or_create(&link).unwrap_err()),
            FileKind::Symlink
        );
        let dangling = dir.join("dangling");
        symlink(dir.join("nowhere"), &dangling).unwrap();
        assert_eq!(
            kind_of(open_or_create(&dangling).unwrap_err()),
            FileKind::Symlink
        );
        assert!(!dir.join("nowhere").exists(), "a link is never followed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_files_and_io_errors_keep_the_os_error() {
        let dir = scratch("missing");
        let err = read(&dir.join("none"), 10, Symlinks::Refuse).unwrap_err();
        assert!(matches!(err, ReadFileError::NotFound(_)));
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        let too_large: io::Error = ReadFileError::TooLarge { limit: 5 }.into();
        assert_eq!(too_large.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            too_large.to_string(),
            "it is larger than the 5 bytes it may have"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
