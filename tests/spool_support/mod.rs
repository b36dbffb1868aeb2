//! Helpers shared by the spool tests.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("spillway-spool-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A record that names itself: `n` as 8 bytes, then `len - 8` bytes derived
/// from `n`, so a reader can tell a real record from anything else.
pub fn record(n: u64, len: usize) -> Vec<u8> {
    let len = len.max(8);
    let mut r = n.to_le_bytes().to_vec();
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while r.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.push(x as u8);
    }
    r
}

/// The number inside a record made by [`record`], if the record is intact.
pub fn number(r: &[u8]) -> Option<u64> {
    if r.len() < 8 {
        return None;
    }
    let n = u64::from_le_bytes(r[..8].try_into().ok()?);
    (record(n, r.len()) == r).then_some(n)
}

/// Small seedable generator for test choices.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// A [`Storage`] that passes everything to another and counts the bytes
/// read from segments and from the position, so tests can measure the work
/// of an open without timing it.
pub struct Counting<S> {
    pub inner: S,
    pub read: std::sync::Arc<AtomicU64>,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> (Self, std::sync::Arc<AtomicU64>) {
        let read = std::sync::Arc::new(AtomicU64::new(0));
        (
            Counting {
                inner,
                read: read.clone(),
            },
            read,
        )
    }
}

use spillway::spool::{IoError, Storage};

impl<S: Storage> Storage for Counting<S> {
    fn list(&mut self) -> Result<Vec<u64>, IoError> {
        self.inner.list()
    }
    fn create(&mut self, id: u64) -> Result<(), IoError> {
        self.inner.create(id)
    }
    fn create_with(&mut self, id: u64, data: &[u8]) -> Result<(), IoError> {
        self.inner.create_with(id, data)
    }
    fn size(&mut self, id: u64) -> Result<u64, IoError> {
        self.inner.size(id)
    }
    fn read_at(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> Result<usize, IoError> {
        let n = self.inner.read_at(id, offset, buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn write_at(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<(), IoError> {
        self.inner.write_at(id, offset, data)
    }
    fn truncate(&mut self, id: u64, len: u64) -> Result<(), IoError> {
        self.inner.truncate(id, len)
    }
    fn sync(&mut self, id: u64) -> Result<(), IoError> {
        self.inner.sync(id)
    }
    fn remove(&mut self, id: u64) -> Result<(), IoError> {
        self.inner.remove(id)
    }
    fn sync_dir(&mut self) -> Result<(), IoError> {
        self.inner.sync_dir()
    }
    fn load_position(&mut self) -> Result<Option<Vec<u8>>, IoError> {
        let p = self.inner.load_position()?;
        let n = p.as_ref().map_or(0, |p| p.len() as u64);
        self.read.fetch_add(n, Ordering::Relaxed);
        Ok(p)
    }
    fn store_position(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        self.inner.store_position(bytes)
    }
}
