//! Segment files in one directory, kept to one process by a lock file.
//!
//! Layout: `{id:016x}.seg` segment files, `position` (the read position,
//! replaced through `position.tmp`), and `lock`, which an open spool holds
//! an exclusive lock on. A segment rewritten after a failed fsync is built
//! as `{id:016x}.seg.tmp` and renamed into place; leftovers of an
//! interrupted one are deleted at open.
//!
//! # Names, and what is refused
//!
//! A segment name is exactly what the spool writes: 16 lower-case hex
//! digits and `.seg`, with an id from 1 to [`MAX_ID`](super::segment::MAX_ID).
//! - A name of that shape with an id outside the range (say
//!   `ffffffffffffffff.seg`) is refused at open with an error naming the
//!   file: the spool never wrote it, and trusting it would break the order
//!   of the log.
//! - Any other name, upper-case hex included (`00000000000000AB.seg`), is
//!   not the spool's and is left alone, like any unrelated file.
//! - Where the spool keeps a regular file (a segment, `position`,
//!   `position.tmp`, `lock`), anything else (a symbolic link, directory,
//!   FIFO, socket or device) is refused at open with a one-line error
//!   naming it. Files are opened with `O_NOFOLLOW | O_NONBLOCK` and checked
//!   to be regular after opening, so a link or FIFO put there later is an
//!   error too, never followed and never waited on; new files are created
//!   with `O_CREAT | O_EXCL | O_NOFOLLOW`.
//! - `position` is read through a bound that fits its format, so a huge
//!   file costs no memory (it is then ignored as damaged, like any bad
//!   position: the read position is recovered from the segments).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, FileType, OpenOptions, TryLockError};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::{IoError, SpoolError};
use super::position;
use super::segment::MAX_ID;
use super::storage::Storage;

/// How many segment files stay open at once, beyond those with unsynced writes
/// (which must stay open so a failed writeback is reported to us on fsync).
const MAX_OPEN: usize = 8;

const LOCK_FILE: &str = "lock";
const POSITION_FILE: &str = "position";
const POSITION_TMP: &str = "position.tmp";
const SEGMENT_EXT: &str = ".seg";
const TMP_EXT: &str = ".tmp";

/// A directory of segment files: the storage of [`Spool::open`](super::Spool::open).
#[derive(Debug)]
pub struct DirStorage {
    dir: PathBuf,
    // Held for the lifetime of the storage; dropping it releases the lock.
    _lock: File,
    files: HashMap<u64, File>,
    unsynced: HashSet<u64>,
    poisoned: HashSet<u64>,
}

impl DirStorage {
    /// Opens `dir` (creating it and its parents if needed) and takes its lock.
    ///
    /// # Errors
    /// [`SpoolError::Locked`] if another process (or another open storage in
    /// this one) holds the directory; [`SpoolError::Io`] if it cannot be
    /// created or the lock file cannot be opened.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, SpoolError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| IoError::new("create directory", &dir, e))?;
            // Make the new directory's own entry durable, best effort: the
            // spool syncs the directory itself whenever it matters after this.
            if let Some(parent) = dir.parent() {
                let _ = File::open(parent).and_then(|f| f.sync_all());
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = open_regular(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            &lock_path,
            "open",
        )?;
        #[allow(clippy::incompatible_msrv)]
        // File::try_lock is stable since 1.89; the toolchain is 1.95
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(SpoolError::Locked { path: lock_path }),
            Err(TryLockError::Error(e)) => return Err(IoError::new("lock", &lock_path, e).into()),
        }
        // The position files must be regular files if they exist: refuse
        // anything else now, with the lock held, rather than fail at every
        // later save (or follow a link).
        for name in [POSITION_FILE, POSITION_TMP] {
            let path = dir.join(name);
            match fs::symlink_metadata(&path) {
                Ok(m) if !m.file_type().is_file() => {
                    return Err(not_regular("open", &path, m.file_type()).into())
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(IoError::new("stat", &path, e).into()),
            }
        }
        // An interrupted rewrite left a temporary file: it was never part of
        // the log. (Removing a name never follows a link.)
        if let Ok(rd) = fs::read_dir(&dir) {
            for entry in rd.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name
                    .strip_suffix(TMP_EXT)
                    .and_then(parse_segment_name)
                    .is_some_and(id_in_range)
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(Self {
            dir,
            _lock: lock,
            files: HashMap::new(),
            unsynced: HashSet::new(),
            poisoned: HashSet::new(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of segment `id`.
    pub fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}{SEGMENT_EXT}"))
    }

    fn handle(&mut self, id: u64, op: &'static str) -> Result<&File, IoError> {
        // Callers build the path for their own messages first: the returned
        // reference keeps `self` borrowed.
        if !self.files.contains_key(&id) {
            if self.files.len() >= MAX_OPEN {
                let clean: Vec<u64> = self
                    .files
                    .keys()
                    .copied()
                    .filter(|k| !self.unsynced.contains(k))
                    .collect();
                for k in clean {
                    self.files.remove(&k);
                }
            }
            let path = self.segment_path(id);
            let f = open_regular(OpenOptions::new().read(true).write(true), &path, op)?;
            self.files.insert(id, f);
        }
        match self.files.get(&id) {
            Some(f) => Ok(f),
            None => Err(IoError::new(
                op,
                self.segment_path(id),
                io::Error::other("segment handle vanished"),
            )),
        }
    }

    fn refuse_poisoned(&self, id: u64, op: &'static str) -> Result<(), IoError> {
        if self.poisoned.contains(&id) {
            return Err(IoError::new(
                op,
                self.segment_path(id),
                io::Error::other("segment was retired after a failed fsync"),
            ));
        }
        Ok(())
    }
}

impl Storage for DirStorage {
    fn list(&mut self) -> Result<Vec<u64>, IoError> {
        let rd = fs::read_dir(&self.dir).map_err(|e| IoError::new("list", &self.dir, e))?;
        let mut ids = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| IoError::new("list", &self.dir, e))?;
            let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) else {
                continue;
            };
            let path = entry.path();
            if !id_in_range(id) {
                return Err(IoError::new(
                    "open",
                    path,
                    io::Error::new(
                        ErrorKind::InvalidData,
                        format!(
                            "not a segment this spool wrote (its ids run from \
                             0000000000000001 to {MAX_ID:016x}); move the file out of the directory"
                        ),
                    ),
                ));
            }
            // file_type() does not follow a symbolic link.
            let ft = entry
                .file_type()
                .map_err(|e| IoError::new("stat", &path, e))?;
            if !ft.is_file() {
                return Err(not_regular("open", &path, ft));
            }
            ids.push(id);
        }
        Ok(ids)
    }

    fn create(&mut self, id: u64) -> Result<(), IoError> {
        let path = self.segment_path(id);
        // A new segment is a new file: whatever stands at its name (a link
        // planted there, a file the listing did not show) is an error.
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| IoError::new("create", &path, e))?;
        self.poisoned.remove(&id);
        self.files.insert(id, f);
        Ok(())
    }

    fn create_with(&mut self, id: u64, data: &[u8]) -> Result<(), IoError> {
        let path = self.segment_path(id);
        let tmp = self.dir.join(format!("{id:016x}{SEGMENT_EXT}{TMP_EXT}"));
        let result = (|| {
            let f = create_fresh(&tmp)?;
            f.write_all_at(data, 0)
                .map_err(|e| IoError::new("write", &tmp, e))?;
            f.sync_data().map_err(|e| IoError::new("fsync", &tmp, e))?;
            fs::rename(&tmp, &path).map_err(|e| IoError::new("rename", &path, e))?;
            Ok(f)
        })();
        match result {
            Ok(f) => {
                self.poisoned.remove(&id);
                self.files.insert(id, f);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn size(&mut self, id: u64) -> Result<u64, IoError> {
        let path = self.segment_path(id);
        let f = self.handle(id, "stat")?;
        f.metadata()
            .map(|m| m.len())
            .map_err(|e| IoError::new("stat", path, e))
    }

    fn read_at(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> Result<usize, IoError> {
        let path = self.segment_path(id);
        let f = self.handle(id, "read")?;
        loop {
            match f.read_at(buf, offset) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(IoError::new("read", path, e)),
            }
        }
    }

    fn write_at(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<(), IoError> {
        self.refuse_poisoned(id, "write")?;
        self.unsynced.insert(id);
        let path = self.segment_path(id);
        let f = self.handle(id, "write")?;
        f.write_all_at(data, offset)
            .map_err(|e| IoError::new("write", path, e))
    }

    fn truncate(&mut self, id: u64, len: u64) -> Result<(), IoError> {
        self.refuse_poisoned(id, "truncate")?;
        self.unsynced.insert(id);
        let path = self.segment_path(id);
        let f = self.handle(id, "truncate")?;
        f.set_len(len)
            .map_err(|e| IoError::new("truncate", path, e))
    }

    fn sync(&mut self, id: u64) -> Result<(), IoError> {
        self.refuse_poisoned(id, "fsync")?;
        let path = self.segment_path(id);
        let f = self.handle(id, "fsync")?;
        match f.sync_data() {
            Ok(()) => {
                self.unsynced.remove(&id);
                Ok(())
            }
            Err(e) => {
                // The kernel may have dropped the dirty pages and cleared the
                // error: a second fsync could succeed without the data. Retire
                // the file for writing.
                self.poisoned.insert(id);
                self.unsynced.remove(&id);
                self.files.remove(&id);
                Err(IoError::new("fsync", path, e))
            }
        }
    }

    fn remove(&mut self, id: u64) -> Result<(), IoError> {
        self.files.remove(&id);
        self.unsynced.remove(&id);
        self.poisoned.remove(&id);
        let path = self.segment_path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(IoError::new("delete", path, e)),
        }
    }

    fn sync_dir(&mut self) -> Result<(), IoError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| IoError::new("fsync directory", &self.dir, e))
    }

    fn load_position(&mut self) -> Result<Option<Vec<u8>>, IoError> {
        let path = self.dir.join(POSITION_FILE);
        let f = match open_regular(OpenOptions::new().read(true), &path, "read") {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // One byte more than the format allows tells a too-long file apart
        // without reading (or allocating) the rest of it.
        let mut buf = vec![0u8; position::MAX_LEN + 1];
        let mut filled = 0;
        while filled < buf.len() {
            match f.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(IoError::new("read", path, e)),
            }
        }
        buf.truncate(filled);
        Ok(Some(buf))
    }

    fn store_position(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        let tmp = self.dir.join(POSITION_TMP);
        let f = create_fresh(&tmp)?;
        f.write_all_at(bytes, 0)
            .map_err(|e| IoError::new("write", &tmp, e))?;
        f.sync_data().map_err(|e| IoError::new("fsync", &tmp, e))?;
        let dest = self.dir.join(POSITION_FILE);
        fs::rename(&tmp, &dest).map_err(|e| IoError::new("rename", &dest, e))
    }
}

/// The id in `name` if it is exactly a segment name the spool writes: 16
/// lower-case hex digits and `.seg` (the id may still be out of range).
fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SEGMENT_EXT)?;
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hex.len() != 16 || !hex.bytes().all(lower_hex) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Whether the spool could have written segment `id`.
fn id_in_range(id: u64) -> bool {
    (1..=MAX_ID).contains(&id)
}

/// What a file type is, for an error message.
fn type_name(ft: FileType) -> &'static str {
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

fn not_regular(op: &'static str, path: &Path, ft: FileType) -> IoError {
    IoError::new(
        op,
        path,
        io::Error::new(
            ErrorKind::InvalidData,
            format!(
                "{} where the spool keeps a regular file; remove it",
                type_name(ft)
            ),
        ),
    )
}

/// Opens `path` with `opts`, never following a symbolic link and never
/// waiting on a FIFO, and refuses anything but a regular file.
fn open_regular(opts: &mut OpenOptions, path: &Path, op: &'static str) -> Result<File, IoError> {
    let f = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW on a link; the message would say "too many levels".
            Some(libc::ELOOP) => match fs::symlink_metadata(path) {
                Ok(m) => not_regular(op, path, m.file_type()),
                Err(_) => IoError::new(op, path, e),
            },
            _ => IoError::new(op, path, e),
        })?;
    let ft = f
        .metadata()
        .map_err(|e| IoError::new("stat", path, e))?
        .file_type();
    if !ft.is_file() {
        return Err(not_regular(op, path, ft));
    }
    Ok(f)
}

/// Creates `path` as a new, empty regular file: a leftover of an earlier
/// attempt is removed first (removing a link does not follow it), and the
/// creation itself refuses anything standing at the name.
fn create_fresh(path: &Path) -> Result<File, IoError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(IoError::new("delete", path, e)),
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| IoError::new("create", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_names_the_spool_writes_are_segments() {
        assert_eq!(parse_segment_name("00000000000000ab.seg"), Some(0xab));
        assert_eq!(parse_segment_name("ffffffffffffffff.seg"), Some(u64::MAX));
        for other in [
            "00000000000000AB.seg",
            "00000000000000ab.SEG",
            "0000000000000ab.seg",
            "000000000000000ab.seg",
            "+000000000000ab.seg",
            "00000000000000ab.seg.tmp",
            "position",
        ] {
            assert_eq!(parse_segment_name(other), None, "{other}");
        }
        assert!(!id_in_range(0));
        assert!(id_in_range(1) && id_in_range(MAX_ID));
        assert!(!id_in_range(MAX_ID + 1));
    }
}
