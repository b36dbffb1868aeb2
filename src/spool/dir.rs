//! Segment files in one directory, kept to one process by a lock file.
//!
//! Layout: `{id:016x}.seg` segment files, `position` (the read position,
//! replaced through `position.tmp`), and `lock`, which an open spool holds
//! an exclusive lock on. A segment rewritten after a failed fsync is built
//! as `{id:016x}.seg.tmp` and renamed into place; leftovers of an
//! interrupted one are deleted at open. Other files are ignored.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{IoError, SpoolError};
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
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| IoError::new("open", &lock_path, e))?;
        #[allow(clippy::incompatible_msrv)]
        // File::try_lock is stable since 1.89; the toolchain is 1.95
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(SpoolError::Locked { path: lock_path }),
            Err(TryLockError::Error(e)) => return Err(IoError::new("lock", &lock_path, e).into()),
        }
        // An interrupted rewrite left a temporary file: it was never part of
        // the log.
        if let Ok(rd) = fs::read_dir(&dir) {
            for entry in rd.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name
                    .strip_suffix(TMP_EXT)
                    .and_then(Self::parse_segment_name)
                    .is_some()
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

    fn parse_segment_name(name: &str) -> Option<u64> {
        let hex = name.strip_suffix(SEGMENT_EXT)?;
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
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
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| IoError::new(op, &path, e))?;
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
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(Self::parse_segment_name)
            else {
                continue;
            };
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    fn create(&mut self, id: u64) -> Result<(), IoError> {
        let path = self.segment_path(id);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
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
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| IoError::new("create", &tmp, e))?;
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
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IoError::new("read", path, e)),
        }
    }

    fn store_position(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        let tmp = self.dir.join(POSITION_TMP);
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| IoError::new("create", &tmp, e))?;
        f.write_all_at(bytes, 0)
            .map_err(|e| IoError::new("write", &tmp, e))?;
        f.sync_data().map_err(|e| IoError::new("fsync", &tmp, e))?;
        let dest = self.dir.join(POSITION_FILE);
        fs::rename(&tmp, &dest).map_err(|e| IoError::new("rename", &dest, e))
    }
}
