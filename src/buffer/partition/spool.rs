//! A partition's disk spool, for `overflow: spill`: the spool itself, and
//! where its records stand (see `spill.rs` for how items move to and from
//! it).

use std::path::{Path, PathBuf};

use crate::codec::SpillCodec;
use crate::config::BufferConfig;
use crate::spool::{Spool, SpoolError};

pub(crate) struct PartSpool {
    pub(crate) spool: Spool,
    /// Sequence number of the oldest record in the spool.
    pub(crate) first_seq: u64,
    /// Records read for the batch now with the sink (removed on success).
    pub(crate) reading: usize,
    /// The partition's newest item is in the spool: new items must follow it
    /// there, not go to memory, to keep the order.
    pub(crate) tail: bool,
    /// The sink failed while the buffer was closing: the spool is left for
    /// the next run and no longer read in this one.
    pub(crate) parked: bool,
    scratch: Vec<u8>,
}

/// The spool directory of partition `p`.
pub(crate) fn partition_dir(root: &Path, p: usize) -> PathBuf {
    root.join(format!("p{p}"))
}

impl PartSpool {
    pub(crate) fn open(root: &Path, p: usize, cfg: &BufferConfig) -> Result<Self, SpoolError> {
        // The disk bound is shared evenly by the partitions.
        let share = (cfg.spool_max_bytes / cfg.partitions as u64).max(1);
        let spool = Spool::open(partition_dir(root, p), cfg.spool_config(share))?;
        let tail = !spool.is_empty();
        Ok(Self {
            spool,
            first_seq: 0,
            reading: 0,
            tail,
            parked: false,
            scratch: Vec::new(),
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.spool.is_empty()
    }

    /// Records on disk that are not with the sink right now.
    pub(crate) fn waiting(&self) -> u64 {
        self.spool.len().saturating_sub(self.reading as u64)
    }

    /// Appends one item with sequence number `seq`.
    pub(crate) fn push<T>(
        &mut self,
        item: &T,
        seq: u64,
        codec: &SpillCodec<T>,
    ) -> Result<(), SpoolError> {
        self.scratch.clear();
        (codec.encode)(item, &mut self.scratch);
        let was_empty = self.spool.is_empty();
        self.spool.push(self.scratch.as_slice())?;
        if was_empty {
            self.first_seq = seq;
        }
        Ok(())
    }

    /// Appends items whose sequence numbers start at `first_seq`, as one
    /// group commit. Returns how many went in: a prefix, all of them unless
    /// the spool is full or failing. Counted from the spool's length, since
    /// a push that fails part-way has still taken the records before the
    /// failure (and a failed final sync has taken them all).
    pub(crate) fn push_all<T>(
        &mut self,
        items: &[T],
        first_seq: u64,
        codec: &SpillCodec<T>,
    ) -> usize {
        if items.is_empty() {
            return 0;
        }
        let records: Vec<Vec<u8>> = items
            .iter()
            .map(|item| {
                let mut out = Vec::new();
                (codec.encode)(item, &mut out);
                out
            })
            .collect();
        let was_empty = self.spool.is_empty();
        let before = self.spool.len();
        let _ = self.spool.push_batch(records);
        let n = usize::try_from(self.spool.len() - before).unwrap_or(usize::MAX);
        if was_empty && n > 0 {
            self.first_seq = first_seq;
        }
        n.min(items.len())
    }

    /// Reads up to `max` of the oldest records and decodes them. Returns the
    /// items and how many records were undecodable (those are dropped when
    /// the batch is removed).
    pub(crate) fn read_batch<T>(
        &mut self,
        max: usize,
        codec: &SpillCodec<T>,
    ) -> Result<(Vec<T>, usize), SpoolError> {
        let records = self.spool.read(max)?;
        self.reading = records.len();
        let mut items = Vec::with_capacity(records.len());
        let mut corrupt = 0;
        for r in &records {
            match (codec.decode)(r) {
                Ok(item) => items.push(item),
                Err(_) => corrupt += 1,
            }
        }
        Ok((items, corrupt))
    }

    /// The batch being read was delivered: remove its records.
    pub(crate) fn remove_read(&mut self) -> Result<(), SpoolError> {
        let n = self.reading;
        self.spool.remove(n)?;
        self.reading = 0;
        self.first_seq += n as u64;
        if self.spool.is_empty() {
            self.tail = false;
        }
        Ok(())
    }
}
