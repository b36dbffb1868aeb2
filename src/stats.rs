//! Counters and gauges of a buffer and of each of its partitions, and the
//! report of a close: the leaf types that the buffer and the engine share.

use std::time::Duration;

/// A snapshot of counters (ever) and gauges (now).
///
/// When nothing is moving (after `sync_flush` or `close`), the conservation
/// invariant holds:
/// `inserted == delivered + dropped + dumped + buffered + in_flight + spooled`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Items accepted by an insert, ever (also those refused and counted
    /// dropped: by `drop_newest`, or by `drop_oldest` with nothing to evict).
    pub inserted: u64,
    /// Items the sink accepted, ever.
    pub delivered: u64,
    /// Items given up (overflow policy, sink failure after retries), ever.
    pub dropped: u64,
    /// Items taken out by `dump()`, ever.
    pub dumped: u64,
    /// Items in memory now, not handed to the sink.
    pub buffered: u64,
    /// Items handed to the sink now, or waiting for a retry.
    pub in_flight: u64,
    /// Items on disk now, awaiting delivery.
    pub spooled: u64,
    /// Successful sink calls, ever.
    pub batches: u64,
    /// Failed sink calls (errors and panics), ever.
    pub failed_flushes: u64,
    /// Retry attempts, ever.
    pub retries: u64,
    /// Sink calls that ran past `flush_timeout` and were abandoned, ever.
    pub flush_timeouts: u64,
    /// Abandoned sink calls that are still running, now.
    pub abandoned: u64,
    /// Spool operations that failed, ever.
    pub spool_errors: u64,
}

impl Counts {
    /// Whether `inserted == delivered + dropped + dumped + buffered + in_flight + spooled`.
    pub fn is_conserved(&self) -> bool {
        self.inserted
            == self.delivered
                + self.dropped
                + self.dumped
                + self.buffered
                + self.in_flight
                + self.spooled
    }

    pub(crate) fn add(&mut self, o: &Counts) {
        self.inserted += o.inserted;
        self.delivered += o.delivered;
        self.dropped += o.dropped;
        self.dumped += o.dumped;
        self.buffered += o.buffered;
        self.in_flight += o.in_flight;
        self.spooled += o.spooled;
        self.batches += o.batches;
        self.failed_flushes += o.failed_flushes;
        self.retries += o.retries;
        self.flush_timeouts += o.flush_timeouts;
        self.abandoned += o.abandoned;
        self.spool_errors += o.spool_errors;
    }
}

/// How long sink calls took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// The most recent call.
    pub last: Duration,
    /// The slowest call.
    pub max: Duration,
    /// Median, to within a factor of 2 (log-scale histogram).
    pub p50: Duration,
    /// 99th percentile, to within a factor of 2.
    pub p99: Duration,
}

/// Statistics of one partition.
#[derive(Debug, Clone, Default)]
pub struct PartitionStats {
    /// The partition, 0-based.
    pub partition: u32,
    /// Its counters and gauges.
    pub counts: Counts,
    /// Its sink-call latency.
    pub latency: Latency,
}

/// Statistics of a buffer: the sums, and each partition.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Sums over every partition.
    pub counts: Counts,
    /// Sink-call latency over every partition.
    pub latency: Latency,
    /// One entry per partition.
    pub partitions: Vec<PartitionStats>,
}

/// What `close` achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseReport {
    /// Items buffered at close that the sink accepted.
    pub delivered: u64,
    /// Items buffered at close that were given up.
    pub dropped: u64,
    /// Items buffered at close still undelivered when the timeout passed
    /// (a sink that never returned, or retries still running). With
    /// `overflow: spill`, those that could be are in the spool.
    pub undelivered: u64,
    /// Items left in the disk spool and known to be durable, delivered
    /// first by the next buffer opened on the same `spool_dir`.
    pub spooled: u64,
    /// Items that exist only in memory and are lost if the process dies
    /// now: still buffered or with a sink when close gave up (no spool, or
    /// a sink that never returned), plus spooled records whose final flush
    /// failed (counted here, not in `spooled`; `counts.spooled` still books
    /// them). 0 means everything is delivered, given up, or durable on disk.
    pub not_durable: u64,
    /// The timeout passed before everything was resolved.
    pub timed_out: bool,
    /// Sink calls still running when close returned, abandoned ones (past
    /// `flush_timeout`) included: their batches are among `undelivered`,
    /// except an abandoned call's whose copy (`retry_abandoned_batches`)
    /// was delivered, spooled or dropped.
    pub running_calls: u64,
    /// The buffer's final counters.
    pub counts: Counts,
}

/// Log2 histogram of durations in microseconds: bucket `i` holds durations
/// below `2^i` µs. Cheap to record under a lock, mergeable across partitions.
#[derive(Debug, Clone)]
pub(crate) struct LatencyHistogram {
    buckets: [u64; 40],
    last: Duration,
    max: Duration,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: [0; 40],
            last: Duration::ZERO,
            max: Duration::ZERO,
        }
    }
}

impl LatencyHistogram {
    pub(crate) fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let bucket = (64 - us.leading_zeros() as usize).min(self.buckets.len() - 1);
        self.buckets[bucket] += 1;
        self.last = d;
        self.max = self.max.max(d);
    }

    pub(crate) fn merge(&mut self, o: &LatencyHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a += b;
        }
        self.max = self.max.max(o.max);
        self.last = o.last;
    }

    fn quantile(&self, q: f64) -> Duration {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                // Upper bound of the bucket, but never above the real maximum.
                let upper = Duration::from_micros(1u64 << i);
                return upper.min(self.max);
            }
        }
        self.max
    }

    pub(crate) fn summary(&self) -> Latency {
        Latency {
            last: self.last,
            max: self.max,
            p50: self.quantile(0.50),
            p99: self.quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_fall_in_the_right_bucket() {
        let mut h = LatencyHistogram::default();
        for _ in 0..98 {
            h.record(Duration::from_micros(100));
        }
        h.record(Duration::from_millis(50));
        h.record(Duration::from_millis(60));
        let s = h.summary();
        assert_eq!(s.max, Duration::from_millis(60));
        assert_eq!(s.last, Duration::from_millis(60));
        assert!(s.p50 >= Duration::from_micros(100) && s.p50 <= Duration::from_micros(128));
        assert!(s.p99 >= Duration::from_millis(50) && s.p99 <= Duration::from_millis(60));
    }

    #[test]
    fn empty_histogram_is_zero() {
        assert_eq!(LatencyHistogram::default().summary(), Latency::default());
    }

    #[test]
    fn conservation_check() {
        let c = Counts {
            inserted: 10,
            delivered: 4,
            dropped: 1,
            dumped: 1,
            buffered: 2,
            in_flight: 1,
            spooled: 1,
            ..Counts::default()
        };
        assert!(c.is_conserved());
        assert!(!Counts {
            inserted: 1,
            ..Counts::default()
        }
        .is_conserved());
    }
}
