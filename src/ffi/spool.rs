//! `spw_spool`: the durable FIFO of byte records in a directory.

use core::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};

use super::bytes;
use super::config::spw_config;
use super::error::Error;
use super::guard::{self, Fuse};
use super::ptr::{self, Handle};
use super::status::spw_status;
use crate::config::BufferConfig;
use crate::spool::{Spool, SpoolError};
use crate::sync::Mutex;

/// A durable FIFO of byte records, kept in segment files in one directory.
///
/// Records come out oldest first (`spw_spool_pop`, `spw_spool_peek`), or
/// newest first (`spw_spool_pop_newest`, `spw_spool_peek_newest`). Pushed
/// bytes are copied in; popped and peeked records are handed over and freed
/// with `spw_bytes_free`.
///
/// **Durability.** When `spw_spool_flush` (or `spw_spool_close`) returns
/// `SPW_OK`, a crash of the process or the machine loses no record pushed
/// before the call, and no record popped before it comes back. In between,
/// the configuration's `spool_sync` decides: `always` writes and syncs each
/// push before it returns; `batch` (the default) and `never` keep recent
/// pushes in memory (about 1 MiB) and write them as that fills, syncing only
/// on flush and close, so call `spw_spool_flush` after a group of pushes (a
/// group commit); `interval` also syncs once `spool_sync_interval` has passed,
/// checked at the next push or pop (the spool has no thread of its own).
/// Records popped after the last flush may come back after a crash
/// (at-least-once). A record is never returned damaged or in part: each is
/// checksummed; at open a write torn by a crash is cut off, and damaged
/// records are skipped (see `spw_spool_skipped`), never a reason to refuse
/// to open.
///
/// **Files.** The directory holds `*.seg` segment files, `position` (the
/// read position) and `lock`; nothing else should write there. One open
/// spool per directory: a second open, by another process or in this one,
/// fails with `SPW_ERR_IO` until the first is closed.
///
/// **Threads.** Every `spw_spool_*` function may be called from several
/// threads at once on the same spool (each call takes the spool's lock),
/// except `spw_spool_free`, which must be the last call.
/// Create with `spw_spool_open`, free with `spw_spool_free`.
pub struct spw_spool {
    fuse: Fuse,
    /// `None` once closed: every call but close and free is then refused.
    spool: Mutex<Option<Spool>>,
    dir: PathBuf,
}

// C calls every function but free from many threads on one object.
const _: () = {
    const fn shared_between_threads<T: Sync + Send>() {}
    shared_between_threads::<spw_spool>();
};

impl Handle for spw_spool {
    fn fuse(&self) -> &Fuse {
        &self.fuse
    }
}

impl spw_spool {
    /// Runs `f` on the open spool, under its lock.
    fn with<R>(&self, f: impl FnOnce(&mut Spool) -> Result<R, SpoolError>) -> Result<R, Error> {
        self.fuse.run(|| {
            let mut guard = self.spool.lock();
            let spool = guard
                .as_mut()
                .ok_or_else(|| Error::closed("spool is closed"))?;
            f(spool).map_err(|e| spool_error(&e, &self.dir))
        })
    }

    /// Closes the spool if it is still open; the first close's outcome is
    /// the only one that can fail.
    fn close(&self) -> Result<(), Error> {
        self.fuse.run(|| {
            let mut guard = self.spool.lock();
            match guard.take() {
                // Dropped right away, under the lock: the directory's lock
                // is free once this returns.
                Some(mut spool) => spool.close().map_err(|e| spool_error(&e, &self.dir)),
                None => Ok(()),
            }
        })
    }
}

/// The status and message C gets for a spool error.
///
/// `TooLarge` is `SPW_ERR_INVALID`, not `SPW_ERR_FULL`: the record can never
/// fit, while a full spool takes it again once records are popped.
fn spool_error(e: &SpoolError, dir: &Path) -> Error {
    let status = match e {
        SpoolError::Full(_) => spw_status::SPW_ERR_FULL,
        SpoolError::TooLarge { .. } | SpoolError::Config(_) => spw_status::SPW_ERR_INVALID,
        SpoolError::NotStored { .. } | SpoolError::Io(_) | SpoolError::Locked { .. } => {
            spw_status::SPW_ERR_IO
        }
        SpoolError::Closed => spw_status::SPW_ERR_CLOSED,
    };
    let detail = match e {
        SpoolError::Locked { path } => format!(
            "another process (or another open spw_spool) holds the spool directory {}: \
             its lock file {} is locked",
            dir.display(),
            path.display()
        ),
        SpoolError::Full(_) => format!("{e}; pop records to make room"),
        SpoolError::Config(_) => format!("spool configuration cannot work ({e})"),
        _ => e.to_string(),
    };
    Error::new(status, detail)
}

/// Hands a record to C, as `spw_spool_pop`, `spw_spool_peek` and their
/// newest-first twins return it.
fn record_out(
    record: Option<Box<[u8]>>,
    data: ptr::Out<'_, *mut u8>,
    len: ptr::Out<'_, usize>,
) -> Result<(), Error> {
    let record = record.ok_or_else(|| Error::new(spw_status::SPW_ERR_EMPTY, "spool is empty"))?;
    let (p, n) = bytes::into_c(record);
    data.write(p);
    len.write(n);
    Ok(())
}

/// Opens the spool in directory `dir`, creating the directory (and its
/// parents) if needed, and recovering what an earlier run left there.
///
/// `cfg` may be NULL for the defaults; otherwise its `spool_max_bytes`
/// (default 1 GiB), `spool_sync` (default `batch`) and `spool_sync_interval`
/// (default 1s) are used and every other key, `spool_dir` included, is
/// ignored; `cfg` is only read during the call. `spool_max_bytes` bounds the
/// bytes on disk, counting records still in memory: at least 64 bytes. A
/// record may be up to half of `spool_max_bytes`, at most 4 MiB.
///
/// On `SPW_OK`, `*out` is the new spool; free it with `spw_spool_free`.
/// Records skipped as damaged are not an error (`spw_spool_skipped` counts
/// them).
///
/// Returns `SPW_OK`; `SPW_ERR_IO` if the directory cannot be created, read
/// or repaired (the message names the operation and the file), or if another
/// process or another open `spw_spool` holds it (the message says so);
/// `SPW_ERR_INVALID` for an empty `dir`, a `dir` that is not UTF-8, or a
/// `spool_max_bytes` below 64 bytes; `SPW_ERR_NULL` (`dir` or `out`).
///
/// # Safety
/// A non-NULL `dir` is a NUL-terminated string; `cfg` is NULL or a live
/// configuration; a non-NULL `out` is valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_open(
    dir: *const c_char,
    cfg: *const spw_config,
    out: *mut *mut spw_spool,
) -> spw_status {
    guard::status("spw_spool_open", || {
        // SAFETY: the caller passes NULL or a pointer valid for writing one pointer.
        let out = unsafe { ptr::out(out, "out") }?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let dir = unsafe { ptr::str_in(dir, "dir") }?;
        if dir.is_empty() {
            return Err(Error::invalid("dir is empty"));
        }
        // SAFETY: the caller passes NULL or a live configuration from spw_config_new.
        let config = match unsafe { ptr::handle_opt(cfg) }? {
            Some(cfg) => cfg.snapshot(),
            None => BufferConfig::new(),
        };
        let dir = PathBuf::from(dir);
        let max_bytes = config.spool_max_bytes;
        let spool = Spool::open(&dir, config.spool_config(max_bytes)).map_err(|e| match e {
            // The other sizes follow spool_max_bytes: name the key C set.
            SpoolError::Config(c) => Error::invalid(format!(
                "spool_max_bytes ({max_bytes} bytes) cannot make a spool: {c}"
            )),
            e => spool_error(&e, &dir),
        })?;
        out.write(ptr::into_c(spw_spool {
            fuse: Fuse::new(),
            spool: Mutex::new(Some(spool)),
            dir,
        }));
        Ok(())
    })
}

/// Appends a copy of the `len` bytes at `data` as one record (the newest).
/// `data` may be NULL when `len` is 0 (an empty record). The caller keeps
/// `data`. How soon the record is on disk depends on `spool_sync` (see
/// `spw_spool`); `spw_spool_flush` makes sure.
///
/// Returns `SPW_OK`; `SPW_ERR_FULL` when the record would take the spool
/// past `spool_max_bytes` (pop records to make room); `SPW_ERR_INVALID` when
/// the record is longer than the largest record the spool takes (see
/// `spw_spool_open`) or `len` is larger than any object; `SPW_ERR_IO` when
/// the disk refused a write or sync this push needed (the record was not
/// taken); `SPW_ERR_CLOSED` after `spw_spool_close`; `SPW_ERR_NULL` (`s`, or
/// `data` with `len > 0`). A refused record is not in the spool. Thread-safe.
///
/// # Safety
/// `s` is NULL or a live spool; a non-NULL `data` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_push(
    s: *mut spw_spool,
    data: *const c_void,
    len: usize,
) -> spw_status {
    guard::status("spw_spool_push", || {
        // SAFETY: the caller passes NULL or a live spool from spw_spool_open.
        let spool = unsafe { ptr::handle(s, "s") }?;
        // SAFETY: the caller passes NULL or a pointer readable for len bytes.
        let record = unsafe { ptr::bytes_in(data, len, "data") }?;
        spool.with(|sp| sp.push(record))
    })
}

/// Removes the oldest record and hands it to the caller.
///
/// On `SPW_OK`, `*data` and `*len` are the record; free it with
/// `spw_bytes_free(*data, *len)`. An empty record comes back as `(NULL, 0)`.
/// The removal is durable at the next `spw_spool_flush`; until then a crash
/// may bring the record back. On any failure `*data` and `*len` are left
/// untouched and no record is removed.
///
/// Returns `SPW_OK`; `SPW_ERR_EMPTY` when the spool holds no record;
/// `SPW_ERR_IO` when reading fails, or a due `interval` sync fails (the
/// message names the operation and the file); `SPW_ERR_CLOSED` after
/// `spw_spool_close`; `SPW_ERR_NULL` (`s`, `data` or `len`). Thread-safe.
///
/// # Safety
/// `s` is NULL or a live spool; non-NULL `data` and `len` are valid for
/// writing a pointer and a `size_t`, and do not overlap.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_pop(
    s: *mut spw_spool,
    data: *mut *mut u8,
    len: *mut usize,
) -> spw_status {
    guard::status("spw_spool_pop", || {
        // SAFETY: the caller passes NULL or a live spool from spw_spool_open.
        let spool = unsafe { ptr::handle(s, "s") }?;
        // SAFETY: the caller passes NULL or distinct pointers valid for one write.
        let (data_out, len_out) = unsafe { (ptr::out(data, "data")?, ptr::out(len, "len")?) };
        let record = spool.with(|sp| sp.pop())?;
        record_out(record.map(Vec::into_boxed_slice), data_out, len_out)
    })
}

/// Hands the caller a copy of the oldest record, leaving it in the spool.
///
/// As `spw_spool_pop` otherwise: free the copy with
/// `spw_bytes_free(*data, *len)`; an empty record is `(NULL, 0)`; on failure
/// `*data` and `*len` are left untouched.
///
/// Returns `SPW_OK`, `SPW_ERR_EMPTY`, `SPW_ERR_IO` (reading failed),
/// `SPW_ERR_CLOSED`, or `SPW_ERR_NULL` (`s`, `data` or `len`). Thread-safe;
/// another thread may pop the record right after.
///
/// # Safety
/// As `spw_spool_pop`.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_peek(
    s: *mut spw_spool,
    data: *mut *mut u8,
    len: *mut usize,
) -> spw_status {
    guard::status("spw_spool_peek", || {
        // SAFETY: the caller passes NULL or a live spool from spw_spool_open.
        let spool = unsafe { ptr::handle(s, "s") }?;
        // SAFETY: the caller passes NULL or distinct pointers valid for one write.
        let (data_out, len_out) = unsafe { (ptr::out(data, "data")?, ptr::out(len, "len")?) };
        let record = spool.with(|sp| Ok(sp.peek()?.map(Box::<[u8]>::from)))?;
        record_out(record, data_out, len_out)
    })
}

/// Removes the newest record (the one pushed last) and hands it to the
/// caller: the spool used as a stack, for when the latest data matters most.
///
/// As `spw_spool_pop` otherwise: on `SPW_OK`, free `*data` with
/// `spw_bytes_free(*data, *len)`; an empty record is `(NULL, 0)`; on any
/// failure `*data` and `*len` are left untouched and no record is removed.
/// The removal is durable at the next `spw_spool_flush`; until then a crash
/// may bring the record back. Oldest-first and newest-first calls may be
/// mixed: each takes from its own end.
///
/// Returns `SPW_OK`; `SPW_ERR_EMPTY` when the spool holds no record;
/// `SPW_ERR_IO` when reading fails, or a due `interval` sync fails (the
/// message names the operation and the file); `SPW_ERR_CLOSED` after
/// `spw_spool_close`; `SPW_ERR_NULL` (`s`, `data` or `len`). Thread-safe.
///
/// # Safety
/// As `spw_spool_pop`.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_pop_newest(
    s: *mut spw_spool,
    data: *mut *mut u8,
    len: *mut usize,
) -> spw_status {
    guard::status("spw_spool_pop_newest", || {
        // SAFETY: the caller passes NULL or a live spool from spw_spool_open.
        let spool = unsafe { ptr::handle(s, "s") }?;
        // SAFETY: the caller passes NULL or distinct pointers valid for one write.
        let (data_out, len_out) = unsafe { (ptr::out(data, "data")?, ptr::out(len, "len")?) };
        let record = spool.with(|sp| sp.pop_newest())?;
        record_out(record.map(Vec::into_boxed_slice), data_out, len_out)
    })
}

/// Hands the caller a copy of the newest record (the one pushed last),
/// leaving it in the spool.
///
/// As `spw_spool_peek` otherwise: free the copy with
/// `spw_bytes_free(*data, *len)`; an empty record is `(NULL, 0)`; on failure
/// `*data` and `*len` are left untouched.
///
/// Returns `SPW_OK`, `SPW_ERR_EMPTY`, `SPW_ERR_IO` (reading failed),
/// `SPW_ERR_CLOSED`, or `SPW_ERR_NULL` (`s`, `data` or `len`). Thread-safe;
/// another thread may push a newer record, or pop this one, right after.
///
/// # Safety
/// As `spw_spool_pop`.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_peek_newest(
    s: *mut spw_spool,
    data: *mut *mut u8,
    len: *mut usize,
) -> spw_status {
    guard::status("spw_spool_peek_newest", || {
        // SAFETY: the caller passes NULL or a live spool from spw_spool_open.
        let spool = unsafe { ptr::handle(s, "s") }?;
        // SAFETY: the caller passes NULL or distinct pointers valid for one write.
        let (data_out, len_out) = unsafe { (ptr::out(data, "data")?, ptr::out(len, "len")?) };
        let record = spool.with(|sp| Ok(sp.peek_newest()?.map(Box::<[u8]>::from)))?;
        record_out(record, data_out, len_out)
    })
}

/// Writes and syncs everything pushed so far, saves the read position and
/// syncs the directory. When it returns `SPW_OK`, a crash loses no record
/// pushed before the call, and no record popped before it comes back.
///
/// Returns `SPW_OK`; `SPW_ERR_IO` naming the operation and the file that
/// failed (every record stays in the spool, but not all of it is known to be
/// on disk; a later flush tries again); `SPW_ERR_CLOSED` after
/// `spw_spool_close`; `SPW_ERR_NULL`. Thread-safe.
///
/// # Safety
/// `s` is NULL or a live spool.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_flush(s: *mut spw_spool) -> spw_status {
    guard::status("spw_spool_flush", || {
        // SAFETY: the caller passes NULL or a live spool from spw_spool_open.
        let spool = unsafe { ptr::handle(s, "s") }?;
        spool.with(Spool::flush)
    })
}

/// The number of records in the spool (pushed and not yet popped): a
/// snapshot that other threads may change at once.
///
/// Returns `SPW_OK` (`*out` written), `SPW_ERR_CLOSED` after
/// `spw_spool_close`, or `SPW_ERR_NULL` (`s` or `out`). Thread-safe.
///
/// # Safety
/// `s` is NULL or a live spool; a non-NULL `out` is valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_len(s: *const spw_spool, out: *mut u64) -> spw_status {
    guard::status("spw_spool_len", || {
        // SAFETY: the caller passes NULL or a live spool from spw_spool_open.
        let spool = unsafe { ptr::handle(s, "s") }?;
        // SAFETY: the caller passes NULL or a pointer valid for writing a uint64_t.
        let out = unsafe { ptr::out(out, "out") }?;
        out.write(spool.with(|sp| Ok(sp.len()))?);
        Ok(())
    })
}

/// How many damaged stretches of the files the spool has skipped: those
/// found at open, plus any met by later reads. Each stretch held one or more
/// records that failed their checksum (or a second copy of records written
/// again after a failed sync); they are never returned. A write torn by a
/// crash at the very end is cut off at open and not counted here. 0 for a
/// spool whose files were always intact.
///
/// Returns `SPW_OK` (`*out` written), `SPW_ERR_CLOSED` after
/// `spw_spool_close`, or `SPW_ERR_NULL` (`s` or `out`). Thread-safe.
///
/// # Safety
/// `s` is NULL or a live spool; a non-NULL `out` is valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_skipped(s: *const spw_spool, out: *mut u64) -> spw_status {
    guard::status("spw_spool_skipped", || {
        // SAFETY: the caller passes NULL or a live spool from spw_spool_open.
        let spool = unsafe { ptr::handle(s, "s") }?;
        // SAFETY: the caller passes NULL or a pointer valid for writing a uint64_t.
        let out = unsafe { ptr::out(out, "out") }?;
        out.write(spool.with(|sp| Ok(sp.report().skipped_total))?);
        Ok(())
    })
}

/// Flushes (as `spw_spool_flush`), then releases the files and the
/// directory, which another `spw_spool_open` may then take. Later calls on
/// `s` return `SPW_ERR_CLOSED`; closing again does nothing and returns
/// `SPW_OK`. The spool must still be freed.
///
/// Returns `SPW_OK`; `SPW_ERR_IO` if the final flush failed (the spool is
/// closed anyway, and records it could not write are lost); `SPW_ERR_NULL`.
/// Thread-safe: calls running on other threads finish first.
///
/// # Safety
/// `s` is NULL or a live spool.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_close(s: *mut spw_spool) -> spw_status {
    guard::status("spw_spool_close", || {
        // SAFETY: the caller passes NULL or a live spool from spw_spool_open.
        let spool = unsafe { ptr::handle(s, "s") }?;
        spool.close()
    })
}

/// Frees the spool. NULL is a no-op. A spool still open is closed first
/// (flushed, as `spw_spool_close`); if that fails, `spw_last_error()` says
/// why, and records it could not write are lost.
///
/// Must be the last call on `s`: no other thread may be using it.
///
/// # Safety
/// `s` is NULL or a live spool that no other thread is using; it is invalid
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn spw_spool_free(s: *mut spw_spool) {
    guard::void("spw_spool_free", || {
        // SAFETY: the caller passes NULL or a live spool that nobody else uses.
        match unsafe { ptr::take(s) } {
            Some(spool) => spool.close(),
            None => Ok(()),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::last_error_string;
    use crate::spool::{IoError, SpoolConfig};
    use core::ptr::null_mut;

    #[test]
    fn spool_errors_map_to_their_statuses() {
        let dir = Path::new("/var/spool/app");
        let cases = [
            (
                SpoolError::Full(vec![1, 2]),
                spw_status::SPW_ERR_FULL,
                "2-byte record",
            ),
            (
                SpoolError::TooLarge {
                    record: vec![0; 9],
                    max_record: 8,
                },
                spw_status::SPW_ERR_INVALID,
                "larger than max_record (8 bytes)",
            ),
            (
                SpoolError::NotStored {
                    record: vec![],
                    error: IoError::new(
                        "fsync",
                        "/var/spool/app/0000000000000001.seg",
                        std::io::Error::from_raw_os_error(5),
                    ),
                },
                spw_status::SPW_ERR_IO,
                "fsync /var/spool/app/0000000000000001.seg",
            ),
            (
                SpoolError::Io(IoError::new(
                    "read",
                    "/var/spool/app/position",
                    std::io::Error::from_raw_os_error(5),
                )),
                spw_status::SPW_ERR_IO,
                "read /var/spool/app/position",
            ),
            (
                SpoolError::Locked {
                    path: "/var/spool/app/lock".into(),
                },
                spw_status::SPW_ERR_IO,
                "another process (or another open spw_spool) holds the spool directory \
                 /var/spool/app: its lock file /var/spool/app/lock is locked",
            ),
            (
                SpoolError::Closed,
                spw_status::SPW_ERR_CLOSED,
                "spool is closed",
            ),
            (
                SpoolError::Config(
                    SpoolConfig {
                        max_bytes: 13,
                        segment_bytes: 64,
                        ..SpoolConfig::default()
                    }
                    .validate()
                    .unwrap_err(),
                ),
                spw_status::SPW_ERR_INVALID,
                "spool configuration cannot work (invalid spool config: max_bytes: 13",
            ),
        ];
        for (e, status, text) in cases {
            let got = spool_error(&e, dir);
            assert_eq!(got.status(), status, "{e:?}");
            assert!(got.detail().contains(text), "{e:?}: {}", got.detail());
        }
    }

    /// Takes a record out with `f` (a pop or a peek), checks the status, and
    /// returns the record's bytes (freed here).
    ///
    /// # Safety
    /// `s` is a live spool.
    unsafe fn take(
        f: unsafe extern "C" fn(*mut spw_spool, *mut *mut u8, *mut usize) -> spw_status,
        s: *mut spw_spool,
    ) -> Result<Vec<u8>, (spw_status, String)> {
        let (mut data, mut len) = (core::ptr::dangling_mut::<u8>(), 99_usize);
        // SAFETY: s is live (caller); data and len are valid for one write.
        match unsafe { f(s, &mut data, &mut len) } {
            spw_status::SPW_OK => {
                let bytes = if len == 0 {
                    assert!(data.is_null());
                    Vec::new()
                } else {
                    // SAFETY: on SPW_OK the library handed over len bytes at data.
                    unsafe { core::slice::from_raw_parts(data, len) }.to_vec()
                };
                // SAFETY: the pair the library returned, freed once.
                unsafe { crate::ffi::spw_bytes_free(data, len) };
                Ok(bytes)
            }
            st => {
                assert_eq!((data, len), (core::ptr::dangling_mut::<u8>(), 99));
                Err((st, last_error_string()))
            }
        }
    }

    #[test]
    fn newest_first_takes_from_the_other_end() {
        let dir = std::env::temp_dir().join(format!("spillway-ffi-newest-{}", std::process::id()));
        let c_dir = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
        let mut s = null_mut();
        // SAFETY: the strings are NUL-terminated; s is valid for one pointer
        // and is freed once, at the end.
        unsafe {
            let st = spw_spool_open(c_dir.as_ptr(), core::ptr::null(), &mut s);
            assert_eq!(st, spw_status::SPW_OK, "{}", last_error_string());
            let empty = Err((
                spw_status::SPW_ERR_EMPTY,
                "spw_spool_peek_newest: spool is empty".to_owned(),
            ));
            assert_eq!(take(spw_spool_peek_newest, s), empty);
            for rec in [&b"a"[..], b"", b"ccc", b"dd"] {
                let st = spw_spool_push(s, rec.as_ptr().cast(), rec.len());
                assert_eq!(st, spw_status::SPW_OK);
            }
            assert_eq!(take(spw_spool_peek_newest, s), Ok(b"dd".to_vec()));
            assert_eq!(take(spw_spool_pop_newest, s), Ok(b"dd".to_vec()));
            assert_eq!(take(spw_spool_pop, s), Ok(b"a".to_vec()));
            assert_eq!(take(spw_spool_pop_newest, s), Ok(b"ccc".to_vec()));
            // The empty record comes back as (NULL, 0).
            assert_eq!(take(spw_spool_peek_newest, s), Ok(Vec::new()));
            assert_eq!(take(spw_spool_pop_newest, s), Ok(Vec::new()));
            let mut n = 7;
            assert_eq!(spw_spool_len(s, &mut n), spw_status::SPW_OK);
            assert_eq!(n, 0);
            assert_eq!(
                take(spw_spool_pop_newest, s),
                Err((
                    spw_status::SPW_ERR_EMPTY,
                    "spw_spool_pop_newest: spool is empty".to_owned()
                ))
            );

            let (mut data, mut len) = (null_mut(), 0);
            let st = spw_spool_pop_newest(null_mut(), &mut data, &mut len);
            assert_eq!(st, spw_status::SPW_ERR_NULL);
            assert_eq!(last_error_string(), "spw_spool_pop_newest: s is NULL");
            let st = spw_spool_peek_newest(s, null_mut(), &mut len);
            assert_eq!(st, spw_status::SPW_ERR_NULL);
            assert_eq!(last_error_string(), "spw_spool_peek_newest: data is NULL");
            let st = spw_spool_pop_newest(s, &mut data, null_mut());
            assert_eq!(st, spw_status::SPW_ERR_NULL);
            assert_eq!(last_error_string(), "spw_spool_pop_newest: len is NULL");

            assert_eq!(spw_spool_close(s), spw_status::SPW_OK);
            for f in [spw_spool_pop_newest, spw_spool_peek_newest] {
                let (st, msg) = take(f, s).unwrap_err();
                assert_eq!(st, spw_status::SPW_ERR_CLOSED);
                assert!(msg.ends_with(": spool is closed"), "{msg}");
            }
            spw_spool_free(s);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_panic_inside_a_spool_call_closes_it_and_free_still_works() {
        let dir = std::env::temp_dir().join(format!("spillway-ffi-spool-{}", std::process::id()));
        let c_dir = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
        let mut s = null_mut();
        // SAFETY: the strings are NUL-terminated; s is valid for one pointer
        // and is freed once, at the end.
        unsafe {
            let st = spw_spool_open(c_dir.as_ptr(), core::ptr::null(), &mut s);
            assert_eq!(st, spw_status::SPW_OK, "{}", last_error_string());
            assert_eq!(
                spw_spool_push(s, b"a".as_ptr().cast(), 1),
                spw_status::SPW_OK
            );
            let st = guard::status("spw_spool_push", || {
                let spool = ptr::handle(s, "s")?;
                spool.with(|_| panic!("injected"))
            });
            assert_eq!(st, spw_status::SPW_ERR_PANIC);
            let mut n = 7;
            assert_eq!(spw_spool_len(s, &mut n), spw_status::SPW_ERR_CLOSED);
            assert!(last_error_string().contains("panicked"));
            assert_eq!(n, 7);
            spw_spool_free(s);
            assert_eq!(last_error_string(), "");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
