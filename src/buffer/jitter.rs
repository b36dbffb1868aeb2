//! A tiny per-partition random source for jitter (splitmix64). Jitter only
//! needs to spread flushes apart, not to be unpredictable, so no crate.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Self {
        // std's per-process random keys, stepped on every call: a different
        // seed per partition without a static atomic (which loom cannot
        // build in a `static`).
        Self(RandomState::new().build_hasher().finish())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    pub(crate) fn upto(&mut self, max: u64) -> u64 {
        if max == 0 {
            0
        } else if max == u64::MAX {
            self.next()
        } else {
            self.next() % (max + 1)
        }
    }

    /// Uniform in `0..=max`, at microsecond resolution.
    pub(crate) fn duration_upto(&mut self, max: Duration) -> Duration {
        let us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.upto(us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_in_range_and_varies() {
        let mut j = Jitter::new();
        let draws: Vec<u64> = (0..1000).map(|_| j.upto(10)).collect();
        assert!(draws.iter().all(|&d| d <= 10));
        assert!(draws.contains(&0) && draws.contains(&10));
        assert_eq!(j.upto(0), 0);
        assert!(j.duration_upto(Duration::from_millis(5)) <= Duration::from_millis(5));
    }
}
