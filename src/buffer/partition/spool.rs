//! A partition's disk spool, for `overflow: spill`: the spool itself, and
//! where its records stand (see `spill.rs` for how items move to and from
//! it).

use std::path::{Path, PathBuf};

use crate::codec::SpillCodec;
use crate::config::BufferConfig;
use crate::spool::{Spool, SpoolConfig, SpoolError, SyncMode};

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
    /// `reading` counts records that were delivered but whose removal
    /// failed: retried by the interval timer and at close.
    remove_pending: bool,
    /// Records pushed since the spool last said they were durable: lost if
    /// the process dies now, and counted `not_durable` when the final flush
    /// fails.
    unsynced: u64,
    scratch: Vec<u8>,
}

/// What [`PartSpool::push_all`] took.
pub(crate) struct Pushed {
    /// How many items went in: a prefix of those given.
    pub(crate) taken: usize,
    /// Their encoded bytes.
    pub(crate) bytes: u64,
    /// Why the rest did not (or, with all taken, why they may not be
    /// durable).
    pub(crate) error: Option<SpoolError>,
}

/// The spool directory of partition `p`.
pub(crate) fn partition_dir(root: &Path, p: usize) -> PathBuf {
    root.join(format!("p{p}"))
}

impl PartSpool {
    pub(crate) fn open(root: &Path, p: usize, cfg: &BufferConfig) -> Result<Self, SpoolError> {
        Self::open_with(p, cfg, |p, spool_cfg| {
            Spool::open(partition_dir(root, p), spool_cfg)
        })
    }

    /// Opens partition `p`'s spool with `open` (given the partition and
    /// its spool configuration).
    pub(crate) fn open_with(
        p: usize,
        cfg: &BufferConfig,
        open: impl FnOnce(usize, SpoolConfig) -> Result<Spool, SpoolError>,
    ) -> Result<Self, SpoolError> {
        // The disk bound is shared evenly by the partitions.
        let share = (cfg.spool_max_bytes / cfg.partitions as u64).max(1);
        let spool = open(p, cfg.spool_config(share))?;
        let tail = !spool.is_empty();
        Ok(Self {
            spool,
            first_seq: 0,
            reading: 0,
            tail,
            parked: false,
            remove_pending: false,
            unsynced: 0,
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

    /// Appends one item with sequence number `seq`. Returns its encoded
    /// size.
    pub(crate) fn push<T>(
        &mut self,
        item: &T,
        seq: u64,
        codec: &SpillCodec<T>,
    ) -> Result<u64, SpoolError> {
        self.scratch.clear();
        (codec.encode)(item, &mut self.scratch);
        let was_empty = self.spool.is_empty();
        self.spool.push(self.scratch.as_slice())?;
        if was_empty {
            self.first_seq = seq;
        }
        self.unsynced = match self.spool.config().sync {
            SyncMode::Always => 0,
            _ => self.unsynced + 1,
        };
        Ok(self.scratch.len() as u64)
    }

    /// Records pushed that are not known to be durable.
    pub(crate) fn unsynced(&self) -> u64 {
        self.unsynced.min(self.spool.len())
    }

    /// `spool_sync: interval`: syncs if the interval has passed.
    pub(crate) fn sync_if_due(&mut self) -> Result<(), SpoolError> {
        if self.spool.sync_if_due()? {
            self.unsynced = 0;
        }
        Ok(())
    }

    /// The end of the run: flushes and closes the spool. Returns how many
    /// records are not known to be durable (0 unless it failed), and the
    /// error, named by its operation.
    pub(crate) fn finish(&mut self) -> (u64, Option<(&'static str, SpoolError)>) {
        let mut failed = self.spool.flush().err().map(|e| ("flush", e));
        if let Err(e) = self.spool.close() {
            failed = failed.or(Some(("close", e)));
        }
        match failed {
            None => {
                self.unsynced = 0;
                (0, None)
            }
            some => (self.unsynced(), some),
        }
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
    ) -> Pushed {
        if items.is_empty() {
            return Pushed {
                taken: 0,
                bytes: 0,
                error: None,
            };
        }
        let records: Vec<Vec<u8>> = items
            .iter()
            .map(|item| {
                let mut out = Vec::new();
                (codec.encode)(item, &mut out);
                out
            })
            .collect();
        let sizes: Vec<u64> = records.iter().map(|r| r.len() as u64).collect();
        let was_empty = self.spool.is_empty();
        let before = self.spool.len();
        let result = self.spool.push_batch(records);
        // The spool's length only grows by a push, so this is the count of
        // records taken; it fits, being at most `items.len()`.
        let grown = self.spool.len().saturating_sub(before);
        let taken = usize::try_from(grown).map_or(items.len(), |n| n.min(items.len()));
        if was_empty && taken > 0 {
            self.first_seq = first_seq;
        }
        let synced = result.is_ok()
            && matches!(self.spool.config().sync, SyncMode::Always | SyncMode::Batch);
        self.unsynced = if synced {
            0
        } else {
            self.unsynced + taken as u64
        };
        Pushed {
            taken,
            bytes: sizes[..taken].iter().sum(),
            error: result.err(),
        }
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

    /// The batch being read was delivered: remove its records. On an error,
    /// what was removed stays removed and `reading` keeps the rest, which
    /// are not read again (they are delivered) until a later call removes
    /// them ([`Self::remove_pending`]).
    pub(crate) fn remove_read(&mut self) -> Result<(), SpoolError> {
        let before = self.spool.len();
        let result = self.spool.remove(self.reading);
        let removed = usize::try_from(before.saturating_sub(self.spool.len()))
            .map_or(self.reading, |n| n.min(self.reading));
        self.reading = if result.is_ok() {
            0
        } else {
            self.reading - removed
        };
        self.first_seq += removed as u64;
        self.remove_pending = self.reading > 0;
        if self.spool.is_empty() {
            self.tail = false;
        }
        result.map(|_| ())
    }

    /// The spool's place in the partition's order, for choosing the next
    /// batch: the sequence number of its oldest record, and whether a flush
    /// may read it now. `None` when nothing in it waits for a flush (empty,
    /// parked, or what it holds is with the sink).
    pub(crate) fn front(&self) -> Option<(u64, bool)> {
        if self.parked || self.is_empty() {
            return None;
        }
        if self.reading == 0 {
            return Some((self.first_seq, true));
        }
        // Delivered records whose removal failed stay at the front until a
        // retry removes them; the records behind them are older than what
        // memory holds now, so memory waits for them too.
        (self.remove_pending && self.waiting() > 0).then_some((self.first_seq, false))
    }

    /// A delivered batch's records could not all be removed yet.
    pub(crate) fn remove_pending(&self) -> bool {
        self.remove_pending
    }
}
