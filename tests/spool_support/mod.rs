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
