//! What `sync_flush` reports: per partition, what became of the items
//! buffered at the call.

/// What became of one partition's items that were buffered when
/// `sync_flush` or `close` was called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionFlush {
    /// The partition, 0-based.
    pub partition: u32,
    /// Accepted by the sink.
    pub delivered: u64,
    /// Given up (sink failed after retries, or evicted by `drop_oldest`).
    pub dropped: u64,
    /// Taken out by `dump()` meanwhile.
    pub dumped: u64,
    /// Left in the disk spool for the next run (the sink failed while the
    /// buffer was closing).
    pub spooled: u64,
    /// Still buffered, in flight or spooled when the wait ended.
    pub undelivered: u64,
}

/// What `sync_flush` found, per partition (only partitions that held items).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// One entry per partition that held items at the call.
    pub partitions: Vec<PartitionFlush>,
}

impl FlushReport {
    /// Items the sink accepted.
    pub fn delivered(&self) -> u64 {
        self.partitions.iter().map(|p| p.delivered).sum()
    }
    /// Items given up.
    pub fn dropped(&self) -> u64 {
        self.partitions.iter().map(|p| p.dropped).sum()
    }
    /// Items dumped meanwhile.
    pub fn dumped(&self) -> u64 {
        self.partitions.iter().map(|p| p.dumped).sum()
    }
    /// Items left in the spool for the next run.
    pub fn spooled(&self) -> u64 {
        self.partitions.iter().map(|p| p.spooled).sum()
    }
    /// Items neither delivered nor given up when the wait ended.
    pub fn undelivered(&self) -> u64 {
        self.partitions.iter().map(|p| p.undelivered).sum()
    }
    /// Every item buffered at the call reached the sink.
    pub fn all_delivered(&self) -> bool {
        self.dropped() == 0 && self.dumped() == 0 && self.spooled() == 0 && self.undelivered() == 0
    }
}
