//! The `spool_*` keys of a [`BufferConfig`] as the [`SpoolConfig`] of one
//! spool: the single mapping that the buffer's spill spools and the C
//! `spw_spool` both use.

use crate::spool::SpoolConfig;

use super::BufferConfig;

/// How many segment files a full spool is split into at least (until the
/// default segment size is reached). Consumed records only free room when
/// their whole segment is deleted, so one segment per spool would keep a full
/// spool full until it was drained completely.
const SEGMENTS_PER_SPOOL: u64 = 8;

impl BufferConfig {
    /// The configuration of one spool that may keep up to `max_bytes` on disk
    /// (all of `spool_max_bytes`, or a partition's share of it), syncing as
    /// `spool_sync` and `spool_sync_interval` say.
    ///
    /// The sizes the keys do not name follow `max_bytes`, so that any
    /// `spool_max_bytes` from 64 bytes up gives a spool that opens: segments
    /// of an eighth of it (at least 64 bytes, at most the spool's default),
    /// and records of at most half of it (at most the spool's default).
    pub(crate) fn spool_config(&self, max_bytes: u64) -> SpoolConfig {
        let defaults = SpoolConfig::default();
        let half = usize::try_from(max_bytes / 2).unwrap_or(usize::MAX);
        SpoolConfig {
            max_bytes,
            segment_bytes: (max_bytes / SEGMENTS_PER_SPOOL).clamp(64, defaults.segment_bytes),
            max_record: half.clamp(1, defaults.max_record),
            sync: self.spool_sync,
            sync_interval: self.spool_sync_interval,
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::SyncMode;
    use std::time::Duration;

    #[test]
    fn the_sync_keys_pass_through() {
        for mode in SyncMode::all() {
            let cfg = BufferConfig::new()
                .spool_sync(mode)
                .spool_sync_interval(Duration::from_millis(250))
                .spool_config(1 << 20);
            assert_eq!(cfg.sync, mode);
            assert_eq!(cfg.sync_interval, Duration::from_millis(250));
            assert_eq!(cfg.max_bytes, 1 << 20);
        }
    }

    #[test]
    fn the_default_size_keeps_the_spool_defaults() {
        let cfg = BufferConfig::new();
        let got = cfg.spool_config(cfg.spool_max_bytes);
        let defaults = SpoolConfig::default();
        assert_eq!(got.max_bytes, 1 << 30);
        assert_eq!(got.segment_bytes, defaults.segment_bytes);
        assert_eq!(got.max_record, defaults.max_record);
        assert_eq!(got.memory_bytes, defaults.memory_bytes);
        assert_eq!(got.sync, SyncMode::Batch);
    }

    #[test]
    fn every_size_from_64_bytes_up_is_a_valid_spool() {
        for max_bytes in [
            64,
            65,
            100,
            511,
            512,
            4096,
            10 << 20,
            100 << 20,
            1 << 40,
            u64::MAX,
        ] {
            let got = BufferConfig::new().spool_config(max_bytes);
            assert_eq!(got.validate(), Ok(()), "max_bytes {max_bytes}");
            assert!(got.segment_bytes <= max_bytes);
            assert!(got.max_record as u64 <= max_bytes / 2);
        }
        let small = BufferConfig::new().spool_config(10 << 20);
        assert_eq!(small.segment_bytes, (10 << 20) / 8);
        assert_eq!(small.max_record, 4 << 20);
        let tiny = BufferConfig::new().spool_config(512);
        assert_eq!((tiny.segment_bytes, tiny.max_record), (64, 256));
    }

    #[test]
    fn below_64_bytes_the_spool_names_the_problem() {
        let err = BufferConfig::new().spool_config(13).validate().unwrap_err();
        assert_eq!(err.field(), "max_bytes");
    }
}
