//! Where the segment files and the read position live.
//!
//! The spool keeps its log in numbered segments plus one small position
//! record, and needs only the operations below. [`DirStorage`](super::DirStorage)
//! is a directory of files; [`MemStorage`](super::MemStorage) is an in-memory
//! store for tests that can simulate a crash.

use super::error::IoError;

/// The backing store of a [`Spool`](super::Spool).
///
/// Durability contract, which the spool relies on:
/// - bytes written to a segment are durable once [`sync`](Self::sync) of that
///   segment returns `Ok`, except that a segment [`create`](Self::create)d
///   (or a removal, or a position stored) since the last
///   [`sync_dir`](Self::sync_dir) may be undone by a crash;
/// - after `sync` of a segment fails, the implementation refuses every later
///   `write_at` and `sync` of that segment (never report a retried fsync as
///   success): the spool rewrites what it still has elsewhere;
/// - `store_position` replaces the position atomically: after a crash it
///   reads back as the old or the new bytes, never a mix.
pub trait Storage: Send {
    /// Ids of the segments present, in any order. The spool only ever
    /// creates ids from 1 to 2^48 − 1; open refuses a listing with any other
    /// id (it was not written by the spool, and is never trusted).
    ///
    /// # Errors
    /// The listing failed.
    fn list(&mut self) -> Result<Vec<u64>, IoError>;

    /// Creates segment `id`, empty. It must be a new file: if anything
    /// stands at its name already (even a link), this fails and changes
    /// nothing.
    ///
    /// # Errors
    /// The segment could not be created, or already exists.
    fn create(&mut self, id: u64) -> Result<(), IoError>;

    /// Creates segment `id` holding exactly `data`, synced, atomically:
    /// after a crash it is absent or complete, never partial (a temporary
    /// file renamed into place; the rename is durable after
    /// [`sync_dir`](Self::sync_dir)). The spool rewrites records here after a
    /// failed fsync, and at open such a segment supersedes earlier copies.
    ///
    /// # Errors
    /// Nothing was created.
    fn create_with(&mut self, id: u64, data: &[u8]) -> Result<(), IoError>;

    /// Current length of segment `id` in bytes.
    ///
    /// # Errors
    /// The segment could not be inspected.
    fn size(&mut self, id: u64) -> Result<u64, IoError>;

    /// Reads from segment `id` at `offset` into `buf`; returns how many bytes
    /// were read, 0 at the end of the segment.
    ///
    /// # Errors
    /// The read failed.
    fn read_at(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> Result<usize, IoError>;

    /// Writes all of `data` to segment `id` at `offset`.
    ///
    /// # Errors
    /// The write failed (part of `data` may have been written).
    fn write_at(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<(), IoError>;

    /// Cuts segment `id` to `len` bytes.
    ///
    /// # Errors
    /// The truncation failed.
    fn truncate(&mut self, id: u64, len: u64) -> Result<(), IoError>;

    /// Makes the data and length of segment `id` durable.
    ///
    /// # Errors
    /// The sync failed; the segment must not be written or synced again.
    fn sync(&mut self, id: u64) -> Result<(), IoError>;

    /// Deletes segment `id`.
    ///
    /// # Errors
    /// The deletion failed.
    fn remove(&mut self, id: u64) -> Result<(), IoError>;

    /// Makes segment creations, removals and the stored position durable.
    ///
    /// # Errors
    /// The sync failed.
    fn sync_dir(&mut self) -> Result<(), IoError>;

    /// The stored read position, if any. Its format is at most about 50 KiB
    /// (1024 seals of 48 bytes); an implementation may return just over
    /// that much of a longer one, which is then ignored as damaged.
    ///
    /// # Errors
    /// It exists but could not be read.
    fn load_position(&mut self) -> Result<Option<Vec<u8>>, IoError>;

    /// Atomically replaces the stored read position with `bytes`, with its
    /// data synced; it survives a crash once `sync_dir` returns.
    ///
    /// # Errors
    /// The replacement failed; the old position is still in place.
    fn store_position(&mut self, bytes: &[u8]) -> Result<(), IoError>;
}

/// Stands in for the storage of a closed spool, so the real one (and its
/// directory lock) is released at close.
pub(crate) struct Released;

impl Released {
    fn err() -> IoError {
        IoError::new(
            "use",
            "closed spool",
            std::io::Error::other("the spool is closed"),
        )
    }
}

impl Storage for Released {
    fn list(&mut self) -> Result<Vec<u64>, IoError> {
        Err(Self::err())
    }
    fn create(&mut self, _: u64) -> Result<(), IoError> {
        Err(Self::err())
    }
    fn create_with(&mut self, _: u64, _: &[u8]) -> Result<(), IoError> {
        Err(Self::err())
    }
    fn size(&mut self, _: u64) -> Result<u64, IoError> {
        Err(Self::err())
    }
    fn read_at(&mut self, _: u64, _: u64, _: &mut [u8]) -> Result<usize, IoError> {
        Err(Self::err())
    }
    fn write_at(&mut self, _: u64, _: u64, _: &[u8]) -> Result<(), IoError> {
        Err(Self::err())
    }
    fn truncate(&mut self, _: u64, _: u64) -> Result<(), IoError> {
        Err(Self::err())
    }
    fn sync(&mut self, _: u64) -> Result<(), IoError> {
        Err(Self::err())
    }
    fn remove(&mut self, _: u64) -> Result<(), IoError> {
        Err(Self::err())
    }
    fn sync_dir(&mut self) -> Result<(), IoError> {
        Err(Self::err())
    }
    fn load_position(&mut self) -> Result<Option<Vec<u8>>, IoError> {
        Err(Self::err())
    }
    fn store_position(&mut self, _: &[u8]) -> Result<(), IoError> {
        Err(Self::err())
    }
}
