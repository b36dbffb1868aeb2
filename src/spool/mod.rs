//! A durable spool: an append-only log of byte records in segment files, with
//! a bounded in-memory window in front of it.
//!
//! The newest records pushed and the oldest records about to be read stay in
//! memory; everything else lives on disk. Records come out oldest first
//! ([`Spool::pop`]) or newest first ([`Spool::pop_newest`]).
//!
//! # Durability
//!
//! - After [`Spool::flush`] returns `Ok`, a crash loses nothing that was
//!   pushed before it, and nothing consumed before it comes back.
//! - [`SyncMode`] decides when the spool syncs on its own in between.
//! - Records consumed after the last flush may come back after a crash
//!   (at-least-once); records never pushed never appear.
//! - Each record is framed with its length, a sequence number and a CRC32C
//!   (see `frame.rs` for the format). At open, a torn tail of the newest
//!   segment is cut off; damaged records elsewhere are skipped and listed in
//!   the [`OpenReport`], never returned and never a reason to refuse to start.
//! - Open does not read the backlog. A segment that was full and synced
//!   when the read position was last saved (at a clean close, or after an
//!   earlier open) is *sealed*: the position file records its length, record
//!   count, first and last sequence numbers and where its last frame starts
//!   (see `position.rs`). Open trusts a sealed segment whose file still
//!   matches (its length and last frame header, 16 bytes) without reading
//!   it; only the rest (the unsealed tail) is scanned and cut. The records of
//!   a sealed segment are checked when they are read, like every record, and
//!   damage found then is skipped and added to the report the same way.
//!   Until reads reach such damage, [`len`](Spool::len) still counts the
//!   records it destroyed.
//! - The order of durability is: segment data, then the read position, then
//!   the directory (segment creations and deletions).
//! - A failed fsync is never retried on the same file: what is still in
//!   memory is written to a new segment and synced there, or the error goes
//!   to the caller.
//!
//! # Files
//!
//! A directory holds `{id:016x}.seg` segments, `position` (the read
//! position, a hint checked against the data at open) and `lock`. Consumed
//! segments are deleted whole, at the next sync, once the read position
//! that consumed them is durable. A second process opening the directory
//! gets [`SpoolError::Locked`].
//!
//! Open refuses, with a one-line [`SpoolError::Io`] naming the file, a
//! segment name with an id the spool never writes (`ffffffffffffffff.seg`)
//! and anything but a regular file where the spool keeps one (a symbolic
//! link, FIFO, directory or device as a segment, `position` or `lock`).
//! Names the spool does not write, upper-case hex included, are left alone.
//! Links are never followed; see [`DirStorage`].
//!
//! # Memory
//!
//! At most about `2 × memory_bytes` of records, plus one record, are held:
//! the newest pushed and the oldest read ahead.
//!
//! ```
//! use spillway::spool::{MemStorage, Spool, SpoolConfig};
//! let mut spool = Spool::open_with(MemStorage::new(), SpoolConfig::default()).unwrap();
//! spool.push(b"first".to_vec()).unwrap();
//! spool.push(b"second".to_vec()).unwrap();
//! spool.flush().unwrap();
//! assert_eq!(spool.pop().unwrap(), Some(b"first".to_vec()));
//! assert_eq!(spool.pop_newest().unwrap(), Some(b"second".to_vec()));
//! assert!(spool.is_empty());
//! ```

mod config;
mod crc_range;
mod dir;
mod error;
mod frame;
mod memory;
mod position;
mod read;
mod recover;
mod report;
mod scan;
mod segment;
mod storage;
mod write;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::time::Instant;

pub use config::{ParseSyncModeError, SpoolConfig, SyncMode};
pub use dir::DirStorage;
pub use error::{IoError, SpoolConfigError, SpoolError};
pub use memory::{Crash, MemStorage};
pub use report::{OpenReport, PositionStatus, SkipReason, Skipped};
pub use storage::Storage;

use position::Position;
use scan::ReadBuf;
use segment::{Pos, Segment};

/// One record in memory; `at` is where its frame is on disk, if written.
struct Entry {
    seq: u64,
    data: Vec<u8>,
    at: Option<Pos>,
}

/// A durable FIFO (and LIFO) of byte records. See the [module docs](self).
///
/// Methods take `&mut self`; share a spool between threads behind a mutex.
/// Dropping a spool without [`close`](Self::close) flushes it, best effort:
/// errors are lost (call `close` to see them), and nothing panics.
pub struct Spool {
    storage: Box<dyn Storage>,
    config: SpoolConfig,
    segments: BTreeMap<u64, Segment>,
    /// The id the next new segment gets; above every id in `segments`.
    next_segment: u64,
    /// Records read ahead from disk, oldest first; none of them is in `tail`.
    head: VecDeque<Entry>,
    head_bytes: usize,
    /// The newest records: first those written (`at` set, the last frames on
    /// disk, in order), then those not yet written.
    tail: VecDeque<Entry>,
    tail_written: usize,
    tail_bytes: usize,
    /// Frame bytes of the records in `tail` not yet written.
    pending_bytes: u64,
    /// Where the next record to read ahead from disk starts.
    cursor: Pos,
    /// The sequence number of the last record read ahead or consumed.
    read_seq: u64,
    next_seq: u64,
    /// Every record with a smaller sequence number was consumed.
    consumed_below: u64,
    live: u64,
    disk_bytes: u64,
    dir_dirty: bool,
    saved: Option<Position>,
    last_sync: Instant,
    rb: ReadBuf,
    scratch: Vec<u8>,
    report: OpenReport,
    closed: bool,
}

// Send is part of the contract: the C layer moves a spool behind a mutex.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Spool>();
};

impl Spool {
    /// Opens (or creates) the spool in directory `dir`, recovering what a
    /// previous run left. See [`report`](Self::report) for what was found.
    ///
    /// # Errors
    /// [`SpoolError::Config`] for an unusable `config` (checked before the
    /// disk is touched), [`SpoolError::Locked`] if another process has the
    /// directory open, [`SpoolError::Io`] if the directory cannot be read or
    /// repaired. Damaged records are never an error.
    pub fn open(dir: impl AsRef<Path>, config: SpoolConfig) -> Result<Spool, SpoolError> {
        config.validate()?;
        let storage = DirStorage::open(dir)?;
        Self::recover(Box::new(storage), config)
    }

    /// Opens a spool on any [`Storage`], e.g. a [`MemStorage`] in tests.
    ///
    /// # Errors
    /// As for [`open`](Self::open).
    ///
    /// ```
    /// use spillway::spool::{MemStorage, Spool, SpoolConfig};
    /// let spool = Spool::open_with(MemStorage::new(), SpoolConfig::default()).unwrap();
    /// assert!(spool.report().is_clean());
    /// ```
    pub fn open_with(
        storage: impl Storage + 'static,
        config: SpoolConfig,
    ) -> Result<Spool, SpoolError> {
        config.validate()?;
        Self::recover(Box::new(storage), config)
    }

    /// What open found (skipped ranges, torn tail, read position), plus any
    /// damage met by later reads.
    pub fn report(&self) -> &OpenReport {
        &self.report
    }

    /// The configuration in use.
    pub fn config(&self) -> &SpoolConfig {
        &self.config
    }

    /// Appends a record. With [`SyncMode::Always`] it is durable when this
    /// returns; otherwise it is kept in memory and written when the memory
    /// window fills, at the next sync, or at [`flush`](Self::flush).
    ///
    /// # Errors
    /// The record comes back inside [`SpoolError::Full`] (it would exceed
    /// `max_bytes`), [`SpoolError::TooLarge`] (above `max_record`) or
    /// [`SpoolError::NotStored`] (the disk refused a write or sync this push
    /// needed). After [`SpoolError::Closed`] it is dropped.
    ///
    /// ```
    /// use spillway::spool::{MemStorage, Spool, SpoolConfig, SpoolError};
    /// let cfg = SpoolConfig { max_record: 4, ..SpoolConfig::default() };
    /// let mut spool = Spool::open_with(MemStorage::new(), cfg).unwrap();
    /// spool.push("abcd").unwrap();
    /// match spool.push("abcde") {
    ///     Err(SpoolError::TooLarge { record, .. }) => assert_eq!(record, b"abcde"),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(spool.len(), 1);
    /// ```
    pub fn push(&mut self, record: impl Into<Vec<u8>>) -> Result<(), SpoolError> {
        if self.closed {
            return Err(SpoolError::Closed);
        }
        let always = self.config.sync == SyncMode::Always;
        self.push_one(record.into(), always)
    }

    /// Appends records in order, then (for [`SyncMode::Always`] and
    /// [`SyncMode::Batch`]) writes and syncs everything pushed since the last
    /// sync, once: a group commit. Returns how many records were taken.
    ///
    /// Pass `&mut iter` to keep the records that were not taken when it stops
    /// early.
    ///
    /// # Errors
    /// On a record it cannot take, it stops and returns that record as
    /// [`push`](Self::push) would; the records before it were taken but not
    /// synced yet (the next sync or `flush` does it). [`SpoolError::Io`] when
    /// the final sync fails: every record was taken and stays in the spool,
    /// but not all of it is known to be durable.
    ///
    /// ```
    /// use spillway::spool::{MemStorage, Spool, SpoolConfig, SpoolError};
    /// let cfg = SpoolConfig { max_bytes: 64, segment_bytes: 64, max_record: 16, ..SpoolConfig::default() };
    /// let mut spool = Spool::open_with(MemStorage::new(), cfg).unwrap();
    /// let mut records = vec![vec![1u8; 16], vec![2u8; 16], vec![3u8; 16]].into_iter();
    /// match spool.push_batch(&mut records) {
    ///     Err(SpoolError::Full(back)) => assert_eq!(back, vec![3u8; 16]),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(spool.len(), 2);
    /// assert_eq!(records.count(), 0); // the third came back in the error
    /// ```
    pub fn push_batch<I>(&mut self, records: I) -> Result<usize, SpoolError>
    where
        I: IntoIterator,
        I::Item: Into<Vec<u8>>,
    {
        if self.closed {
            return Err(SpoolError::Closed);
        }
        let mut taken = 0;
        for record in records {
            self.push_one(record.into(), false)?;
            taken += 1;
        }
        if matches!(self.config.sync, SyncMode::Always | SyncMode::Batch) {
            self.sync_all(false)?;
        }
        Ok(taken)
    }

    /// Removes and returns the oldest record.
    ///
    /// # Errors
    /// [`SpoolError::Io`] if reading fails (nothing is removed), or a due
    /// [`SyncMode::Interval`] sync fails; [`SpoolError::Closed`].
    pub fn pop(&mut self) -> Result<Option<Vec<u8>>, SpoolError> {
        self.ready()?;
        self.maybe_sync()?;
        Ok(self.take_oldest()?.map(|e| e.data))
    }

    /// The oldest record, left in place.
    ///
    /// # Errors
    /// [`SpoolError::Io`] if reading fails; [`SpoolError::Closed`].
    ///
    /// ```
    /// use spillway::spool::{MemStorage, Spool, SpoolConfig};
    /// let mut spool = Spool::open_with(MemStorage::new(), SpoolConfig::default()).unwrap();
    /// spool.push_batch(["a", "b"]).unwrap();
    /// assert_eq!(spool.peek().unwrap(), Some(&b"a"[..]));
    /// assert_eq!(spool.peek_newest().unwrap(), Some(&b"b"[..]));
    /// assert_eq!(spool.len(), 2);
    /// ```
    pub fn peek(&mut self) -> Result<Option<&[u8]>, SpoolError> {
        self.ready()?;
        self.fill_head_if_empty()?;
        let front = self.head.front().or_else(|| self.tail.front());
        Ok(front.map(|e| e.data.as_slice()))
    }

    /// Removes and returns the newest record (last in, first out).
    ///
    /// # Errors
    /// As for [`pop`](Self::pop).
    pub fn pop_newest(&mut self) -> Result<Option<Vec<u8>>, SpoolError> {
        self.ready()?;
        self.maybe_sync()?;
        Ok(self.take_newest()?.map(|e| e.data))
    }

    /// The newest record, left in place.
    ///
    /// # Errors
    /// As for [`peek`](Self::peek).
    pub fn peek_newest(&mut self) -> Result<Option<&[u8]>, SpoolError> {
        self.ready()?;
        self.fill_tail_if_empty()?;
        let back = self.tail.back().or_else(|| self.head.back());
        Ok(back.map(|e| e.data.as_slice()))
    }

    /// Copies of the oldest `n` records (fewer if there are fewer), oldest
    /// first, left in place.
    ///
    /// # Errors
    /// As for [`peek`](Self::peek).
    ///
    /// ```
    /// use spillway::spool::{MemStorage, Spool, SpoolConfig};
    /// let mut spool = Spool::open_with(MemStorage::new(), SpoolConfig::default()).unwrap();
    /// spool.push_batch(["a", "b", "c"]).unwrap();
    /// assert_eq!(spool.read(2).unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
    /// assert_eq!(spool.remove(2).unwrap(), 2);
    /// assert_eq!(spool.read(5).unwrap(), vec![b"c".to_vec()]);
    /// ```
    pub fn read(&mut self, n: usize) -> Result<Vec<Vec<u8>>, SpoolError> {
        self.ready()?;
        Ok(self.read_oldest(n)?)
    }

    /// Copies of the newest `n` records (fewer if there are fewer), newest
    /// first, left in place: what `n` calls of
    /// [`pop_newest`](Self::pop_newest) would return, in that order.
    ///
    /// Records on disk are read forward a segment at a time, newest segment
    /// first; at most `n` of them are held while reading.
    ///
    /// # Errors
    /// As for [`peek`](Self::peek).
    ///
    /// ```
    /// use spillway::spool::{MemStorage, Spool, SpoolConfig};
    /// let mut spool = Spool::open_with(MemStorage::new(), SpoolConfig::default()).unwrap();
    /// spool.push_batch(["a", "b", "c"]).unwrap();
    /// assert_eq!(spool.read_newest(2).unwrap(), vec![b"c".to_vec(), b"b".to_vec()]);
    /// assert_eq!(spool.remove_newest(2).unwrap(), 2);
    /// assert_eq!(spool.read_newest(5).unwrap(), vec![b"a".to_vec()]);
    /// ```
    pub fn read_newest(&mut self, n: usize) -> Result<Vec<Vec<u8>>, SpoolError> {
        self.ready()?;
        Ok(self.read_newest_n(n)?)
    }

    /// Removes the newest `n` records (fewer if there are fewer), as `n`
    /// calls of [`pop_newest`](Self::pop_newest) would; returns how many were
    /// removed.
    ///
    /// # Errors
    /// As for [`pop`](Self::pop); the records removed before the error stay removed.
    pub fn remove_newest(&mut self, n: usize) -> Result<usize, SpoolError> {
        self.ready()?;
        self.maybe_sync()?;
        let mut removed = 0;
        while removed < n && self.take_newest()?.is_some() {
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes the oldest `n` records (fewer if there are fewer); returns how
    /// many were removed.
    ///
    /// # Errors
    /// As for [`pop`](Self::pop); the records removed before the error stay removed.
    pub fn remove(&mut self, n: usize) -> Result<usize, SpoolError> {
        self.ready()?;
        self.maybe_sync()?;
        let mut removed = 0;
        while removed < n && self.take_oldest()?.is_some() {
            removed += 1;
        }
        Ok(removed)
    }

    /// Writes and syncs everything pushed, then saves the read position and
    /// syncs the directory. When it returns `Ok`, a crash loses nothing pushed
    /// before the call, and nothing consumed before it comes back.
    ///
    /// # Errors
    /// [`SpoolError::Io`] naming the operation and file that failed; every
    /// record stays in the spool, but not all of it is known to be durable.
    /// A later `flush` tries again (on a new segment where a sync failed).
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        self.ready()?;
        Ok(self.sync_all(true)?)
    }

    /// For [`SyncMode::Interval`]: if the interval has passed since the last
    /// sync and something is not yet durable, does what [`flush`](Self::flush)
    /// does and returns `true`. Other modes return `false`. An owner with a
    /// timer calls this; without one, the next push or pop does the same.
    ///
    /// # Errors
    /// As for [`flush`](Self::flush).
    pub fn sync_if_due(&mut self) -> Result<bool, SpoolError> {
        self.ready()?;
        Ok(self.maybe_sync()?)
    }

    /// Flushes, then releases the files (and the directory lock). Later calls
    /// return [`SpoolError::Closed`]; closing again is a no-op.
    ///
    /// # Errors
    /// As for [`flush`](Self::flush). The spool is closed either way, and
    /// records that the failed flush could not make durable are lost.
    pub fn close(&mut self) -> Result<(), SpoolError> {
        if self.closed {
            return Ok(());
        }
        let result = self.flush();
        self.closed = true;
        self.storage = Box::new(storage::Released);
        self.head.clear();
        self.tail.clear();
        self.tail_written = 0;
        result
    }

    /// Records held in memory right now (read ahead, or newest pushed).
    pub fn cached(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Records in the spool (pushed and not yet removed). Records lost to
    /// damage that only a later read finds (after open) still count until
    /// the reads reach the end.
    pub fn len(&self) -> u64 {
        self.live
    }

    /// Whether the spool holds no record.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Bytes the segment files take now (not counting records still only in
    /// memory, which `max_bytes` counts too).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    fn ready(&self) -> Result<(), SpoolError> {
        if self.closed {
            Err(SpoolError::Closed)
        } else {
            Ok(())
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.closed {
            // Best effort, documented: errors cannot be reported from drop.
            let _ = self.sync_all(true);
        }
    }
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("len", &self.live)
            .field("cached", &self.cached())
            .field("disk_bytes", &self.disk_bytes)
            .field("segments", &self.segments.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}
