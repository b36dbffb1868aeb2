//! `spw_checkpoint`: per-source read positions saved to a YAML file.

use core::ffi::{c_char, c_int, c_void};
use std::ffi::CString;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::Error;
use super::guard::{self, Fuse};
use super::ptr::{self, Handle};
use super::status::spw_status;
use crate::checkpoint::{Checkpoint, CheckpointError, EventLogState};

/// The saved read position of each source (an event log, a file, ...): a
/// record number and that record's time, by source name.
///
/// `spw_checkpoint_persist` only updates memory; a background thread of the
/// checkpoint writes the whole state to its YAML file after `max_updates`
/// updates or `interval_ms`, whichever comes first, and
/// `spw_checkpoint_flush` / `spw_checkpoint_shutdown` write it at once.
///
/// **Durability.** Every write replaces the file atomically (a temporary file
/// in the same directory, synced, renamed over it, then the directory
/// synced): after a crash the file holds either the previous state or the
/// new one, whole. When `spw_checkpoint_flush` or `spw_checkpoint_shutdown`
/// returns `SPW_OK`, nothing persisted before the call can be lost; updates
/// persisted since the last write are lost by a crash. A file that is
/// damaged or cut short is detected by its checksum: `spw_checkpoint_open`
/// then fails with `SPW_ERR_CORRUPT` and never overwrites it.
///
/// **The file** has winlogbeat's layout: `update_time`, then `event_logs`, a
/// list of `name`, `record_number` and `timestamp` (RFC 3339, UTC), and a
/// final `# crc32c:` comment line that YAML readers ignore. One process at a
/// time may use a file.
///
/// **Threads.** Every `spw_checkpoint_*` function may be called from several
/// threads at once on the same checkpoint, except `spw_checkpoint_free`,
/// which must be the last call. Create with `spw_checkpoint_open`, free with
/// `spw_checkpoint_free`.
pub struct spw_checkpoint {
    fuse: Fuse,
    checkpoint: Checkpoint,
}

// C calls every function but free from many threads on one object; the Rust
// checkpoint takes care of that itself, so no lock of ours is needed.
const _: () = {
    const fn shared_between_threads<T: Sync + Send>() {}
    shared_between_threads::<spw_checkpoint>();
};

impl Handle for spw_checkpoint {
    fn fuse(&self) -> &Fuse {
        &self.fuse
    }
}

/// The status and message C gets for a checkpoint error (every message
/// about the disk names the file).
fn checkpoint_error(e: &CheckpointError) -> Error {
    let status = match e {
        CheckpointError::Io { .. } => spw_status::SPW_ERR_IO,
        CheckpointError::Corrupt { .. } => spw_status::SPW_ERR_CORRUPT,
        CheckpointError::Invalid { .. } => spw_status::SPW_ERR_INVALID,
        CheckpointError::Closed => spw_status::SPW_ERR_CLOSED,
    };
    Error::new(status, e.to_string())
}

/// The time `ms` milliseconds after (or, negative, before) 1970-01-01
/// 00:00:00 UTC; `None` when the system clock cannot represent it.
fn ms_to_time(ms: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// Milliseconds since 1970-01-01 00:00:00 UTC, rounded down (towards the
/// past, also before 1970); `None` when that does not fit an `int64_t`.
fn time_to_ms(t: SystemTime) -> Option<i64> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).ok(),
        Err(e) => {
            let before = e.duration();
            let partial = before.as_nanos() % 1_000_000 != 0;
            let ms = before.as_millis() + u128::from(partial);
            i64::try_from(-i128::try_from(ms).ok()?).ok()
        }
    }
}

/// Loads the checkpoint file at `path` (a missing file is an empty state;
/// missing parent directories are created) and starts its writer thread,
/// which saves the state after `max_updates` updates or `interval_ms`
/// milliseconds, whichever comes first (`interval_ms` = `UINT64_MAX`: never
/// by time). Temporary files a killed writer left beside `path` are removed.
///
/// On `SPW_OK`, `*out` is the new checkpoint; free it with
/// `spw_checkpoint_free`. `path` is only read during the call.
///
/// Returns `SPW_OK`; `SPW_ERR_CORRUPT` when the file exists but is not a
/// whole checkpoint (empty, cut short, changed, not the expected YAML): the
/// message names it, and it is left untouched (move or remove it to start
/// empty); `SPW_ERR_IO` when the file or its directory cannot be read or
/// created, or the thread cannot start (the message names the file);
/// `SPW_ERR_INVALID` for `max_updates` 0, `interval_ms` 0, a path without a
/// file name, or a path that is not UTF-8; `SPW_ERR_NULL` (`path` or `out`).
///
/// # Safety
/// A non-NULL `path` is a NUL-terminated string; a non-NULL `out` is valid
/// for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn spw_checkpoint_open(
    path: *const c_char,
    max_updates: u32,
    interval_ms: u64,
    out: *mut *mut spw_checkpoint,
) -> spw_status {
    guard::status("spw_checkpoint_open", || {
        // SAFETY: the caller passes NULL or a pointer valid for writing one pointer.
        let out = unsafe { ptr::out(out, "out") }?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let path = unsafe { ptr::str_in(path, "path") }?;
        let interval = match interval_ms {
            u64::MAX => Duration::MAX,
            ms => Duration::from_millis(ms),
        };
        let checkpoint =
            Checkpoint::open(path, max_updates, interval).map_err(|e| checkpoint_error(&e))?;
        out.write(ptr::into_c(spw_checkpoint {
            fuse: Fuse::new(),
            checkpoint,
        }));
        Ok(())
    })
}

/// Records that source `name` was read up to `record_number`, a record of
/// time `timestamp_ms` (milliseconds since 1970-01-01 00:00:00 UTC; negative
/// for earlier times). Only memory is updated: the writer thread, or
/// `spw_checkpoint_flush`, saves it. `name` (NUL-terminated UTF-8) is copied.
///
/// Returns `SPW_OK`; `SPW_ERR_CLOSED` after `spw_checkpoint_shutdown`;
/// `SPW_ERR_INVALID` for a time outside the years 0000-9999 (the file's
/// format cannot hold it) or a `name` that is not UTF-8; `SPW_ERR_NULL`
/// (`cp` or `name`). A refused update changes nothing. Thread-safe.
///
/// # Safety
/// `cp` is NULL or a live checkpoint; a non-NULL `name` is a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn spw_checkpoint_persist(
    cp: *mut spw_checkpoint,
    name: *const c_char,
    record_number: u64,
    timestamp_ms: i64,
) -> spw_status {
    guard::status("spw_checkpoint_persist", || {
        // SAFETY: the caller passes NULL or a live checkpoint from spw_checkpoint_open.
        let c = unsafe { ptr::handle(cp, "cp") }?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { ptr::str_in(name, "name") }?;
        let timestamp = ms_to_time(timestamp_ms).ok_or_else(|| {
            Error::invalid(format!(
                "timestamp_ms {timestamp_ms} is outside what the system clock can represent"
            ))
        })?;
        c.fuse
            .run(|| c.checkpoint.persist(name, record_number, timestamp))
            .map_err(|e| checkpoint_error(&e))
    })
}

/// The saved position of source `name`: what was loaded from the file or
/// persisted since. On `SPW_OK`, `*record_number` and `*timestamp_ms` (unix
/// milliseconds, rounded down when the file holds a finer time) are written;
/// on any failure neither is. Works after `spw_checkpoint_shutdown` too.
///
/// Returns `SPW_OK`; `SPW_ERR_EMPTY` for a name never persisted nor loaded;
/// `SPW_ERR_INVALID` for a `name` that is not UTF-8; `SPW_ERR_NULL` (`cp`,
/// `name`, `record_number` or `timestamp_ms`). Thread-safe.
///
/// # Safety
/// `cp` is NULL or a live checkpoint; a non-NULL `name` is a NUL-terminated
/// string; non-NULL `record_number` and `timestamp_ms` are valid for writing
/// a `uint64_t` and an `int64_t`.
#[no_mangle]
pub unsafe extern "C" fn spw_checkpoint_get(
    cp: *const spw_checkpoint,
    name: *const c_char,
    record_number: *mut u64,
    timestamp_ms: *mut i64,
) -> spw_status {
    guard::status("spw_checkpoint_get", || {
        // SAFETY: the caller passes NULL or a live checkpoint from spw_checkpoint_open.
        let c = unsafe { ptr::handle(cp, "cp") }?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { ptr::str_in(name, "name") }?;
        // SAFETY: the caller passes NULL or pointers valid for one write each.
        let (number_out, time_out) = unsafe {
            (
                ptr::out(record_number, "record_number")?,
                ptr::out(timestamp_ms, "timestamp_ms")?,
            )
        };
        let state = c.fuse.run(|| c.checkpoint.get(name)).ok_or_else(|| {
            Error::new(
                spw_status::SPW_ERR_EMPTY,
                format!("no position is saved for {name:?}"),
            )
        })?;
        // Persist and the file both keep to the years 0000-9999, which fit.
        let ms = time_to_ms(state.timestamp).ok_or_else(|| {
            Error::invalid(format!(
                "the timestamp of {name:?} does not fit in milliseconds"
            ))
        })?;
        number_out.write(state.record_number);
        time_out.write(ms);
        Ok(())
    })
}

/// Receives one entry of a checkpoint from `spw_checkpoint_each`: the
/// source's `name` (NUL-terminated UTF-8, valid only during the call; copy
/// it to keep it), its `record_number`, and `timestamp_ms` (unix
/// milliseconds, rounded down as `spw_checkpoint_get` does). Return 0 to go
/// on to the next entry, anything else to stop the walk.
///
/// Runs on the thread that called `spw_checkpoint_each`. It must not call
/// any `spw_checkpoint_*` function on the same checkpoint, and must return
/// normally: no C++ exception and no `longjmp` may leave it.
pub type spw_checkpoint_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        name: *const c_char,
        record_number: u64,
        timestamp_ms: i64,
    ) -> c_int,
>;

/// One entry as C receives it, converted before the first call so that a
/// bad entry fails the walk before it starts.
struct CEntry {
    name: CString,
    record_number: u64,
    timestamp_ms: i64,
}

impl CEntry {
    fn of(state: EventLogState) -> Result<Self, Error> {
        let timestamp_ms = time_to_ms(state.timestamp).ok_or_else(|| {
            Error::invalid(format!(
                "the timestamp of {:?} does not fit in milliseconds",
                state.name
            ))
        })?;
        let name = CString::new(state.name).map_err(|e| {
            let at = e.nul_position();
            Error::invalid(format!(
                "the name {:?} holds a NUL byte at offset {at}, which a C string cannot carry",
                String::from_utf8_lossy(&e.into_vec())
            ))
        })?;
        Ok(Self {
            name,
            record_number: state.record_number,
            timestamp_ms,
        })
    }
}

/// Calls `fn` once for each source's saved position (what was loaded from
/// the file or persisted since), sorted by name (byte order), on the calling
/// thread, with `user_data` passed through. A non-zero return from `fn`
/// stops the walk. The entries are a snapshot taken at the call: persists
/// from other threads during the walk are not seen. Works after
/// `spw_checkpoint_shutdown` too.
///
/// `fn` must not call into `cp` (see `spw_checkpoint_fn`).
///
/// Returns `SPW_OK` whether the walk ran to the end or `fn` stopped it, and
/// for a checkpoint with no entries (`fn` is then not called);
/// `SPW_ERR_INVALID`, before any call of `fn`, when an entry cannot be given
/// to C (a name holding a NUL byte, which only the file or the Rust API can
/// make: the message names it); `SPW_ERR_NULL` (`cp` or `fn`). Thread-safe.
///
/// # Safety
/// `cp` is NULL or a live checkpoint; a non-NULL `fn` is a function of the
/// `spw_checkpoint_fn` type that keeps its rules; `user_data` is whatever
/// `fn` expects.
#[no_mangle]
pub unsafe extern "C" fn spw_checkpoint_each(
    cp: *const spw_checkpoint,
    r#fn: spw_checkpoint_fn,
    user_data: *mut c_void,
) -> spw_status {
    guard::status("spw_checkpoint_each", || {
        // SAFETY: the caller passes NULL or a live checkpoint from spw_checkpoint_open.
        let c = unsafe { ptr::handle(cp, "cp") }?;
        let call = r#fn.ok_or_else(|| Error::null("fn"))?;
        let entries = c
            .fuse
            .run(|| c.checkpoint.states())
            .into_iter()
            .map(CEntry::of)
            .collect::<Result<Vec<_>, _>>()?;
        for e in &entries {
            // SAFETY: `call` has the spw_checkpoint_fn type and returns
            // normally (caller); the name lives until the walk ends, longer
            // than the call.
            let stop = unsafe { call(user_data, e.name.as_ptr(), e.record_number, e.timestamp_ms) };
            if stop != 0 {
                break;
            }
        }
        Ok(())
    })
}

/// Writes the state to the file and syncs it now, on the calling thread.
/// When it returns `SPW_OK`, a crash loses nothing persisted before the
/// call. Does nothing when the file already holds the state. Also works after
/// `spw_checkpoint_shutdown` (to retry a failed final write).
///
/// Returns `SPW_OK`; `SPW_ERR_IO` if a step of the write failed (the message
/// names the file and the step; the previous file stays whole and the state
/// stays in memory, so a later write tries again); `SPW_ERR_NULL`.
/// Thread-safe.
///
/// # Safety
/// `cp` is NULL or a live checkpoint.
#[no_mangle]
pub unsafe extern "C" fn spw_checkpoint_flush(cp: *mut spw_checkpoint) -> spw_status {
    guard::status("spw_checkpoint_flush", || {
        // SAFETY: the caller passes NULL or a live checkpoint from spw_checkpoint_open.
        let c = unsafe { ptr::handle(cp, "cp") }?;
        c.fuse
            .run(|| c.checkpoint.flush())
            .map_err(|e| checkpoint_error(&e))
    })
}

/// Stops the writer thread and writes what it had not written yet, waiting
/// for both. Later `spw_checkpoint_persist` calls return `SPW_ERR_CLOSED`;
/// `spw_checkpoint_get` and `spw_checkpoint_flush` still work. Idempotent: a
/// later call does nothing, unless the final write failed, which it then
/// tries again. The checkpoint must still be freed.
///
/// Returns `SPW_OK`; `SPW_ERR_IO` if the final write failed (as
/// `spw_checkpoint_flush`); `SPW_ERR_NULL`. Thread-safe.
///
/// # Safety
/// `cp` is NULL or a live checkpoint.
#[no_mangle]
pub unsafe extern "C" fn spw_checkpoint_shutdown(cp: *mut spw_checkpoint) -> spw_status {
    guard::status("spw_checkpoint_shutdown", || {
        // SAFETY: the caller passes NULL or a live checkpoint from spw_checkpoint_open.
        let c = unsafe { ptr::handle(cp, "cp") }?;
        c.fuse
            .run(|| c.checkpoint.shutdown())
            .map_err(|e| checkpoint_error(&e))
    })
}

/// Frees the checkpoint. NULL is a no-op. It is shut down first (as
/// `spw_checkpoint_shutdown`, writing what is unsaved); if that write fails,
/// `spw_last_error()` says why, and the updates it could not save are lost.
///
/// Must be the last call on `cp`: no other thread may be using it.
///
/// # Safety
/// `cp` is NULL or a live checkpoint that no other thread is using; it is
/// invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn spw_checkpoint_free(cp: *mut spw_checkpoint) {
    guard::void("spw_checkpoint_free", || {
        // SAFETY: the caller passes NULL or a live checkpoint that nobody else uses.
        match unsafe { ptr::take(cp) } {
            Some(c) => c.checkpoint.shutdown().map_err(|e| checkpoint_error(&e)),
            None => Ok(()),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::last_error_string;
    use core::ptr::null_mut;

    #[test]
    fn milliseconds_round_trip_both_sides_of_1970() {
        for ms in [0, 1, -1, 999, -999, 1_472_560_496_123, -62_167_219_200_000] {
            let t = ms_to_time(ms).unwrap();
            assert_eq!(time_to_ms(t), Some(ms), "{ms}");
        }
        assert_eq!(
            ms_to_time(1_500),
            UNIX_EPOCH.checked_add(Duration::from_millis(1_500))
        );
        assert_eq!(
            ms_to_time(-1_500),
            UNIX_EPOCH.checked_sub(Duration::from_millis(1_500))
        );
    }

    #[test]
    fn finer_times_round_down_towards_the_past() {
        let after = UNIX_EPOCH + Duration::from_micros(1_500);
        assert_eq!(time_to_ms(after), Some(1));
        let before = UNIX_EPOCH - Duration::from_micros(1_500);
        assert_eq!(time_to_ms(before), Some(-2));
        let just_before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(time_to_ms(just_before), Some(-1));
    }

    #[test]
    fn extremes_convert_or_say_they_cannot() {
        // Every int64 millisecond count is within a 64-bit clock's reach.
        for ms in [i64::MAX, i64::MIN] {
            let t = ms_to_time(ms).unwrap();
            assert_eq!(time_to_ms(t), Some(ms));
        }
        // Times whose millisecond count does not fit an int64.
        let far = Duration::from_secs(u64::MAX / 4);
        if let Some(t) = UNIX_EPOCH.checked_add(far) {
            assert_eq!(time_to_ms(t), None);
        }
        if let Some(t) = UNIX_EPOCH.checked_sub(far) {
            assert_eq!(time_to_ms(t), None);
        }
        // One millisecond below int64's range rounds down out of it.
        let below = Duration::from_millis(i64::MIN.unsigned_abs()) + Duration::from_nanos(1);
        if let Some(t) = UNIX_EPOCH.checked_sub(below) {
            assert_eq!(time_to_ms(t), None);
        }
    }

    #[test]
    fn checkpoint_errors_map_to_their_statuses() {
        let io = CheckpointError::io(
            "/var/lib/app/cp.yaml",
            "write temporary file",
            std::io::Error::from_raw_os_error(28),
        );
        let corrupt = CheckpointError::corrupt("/var/lib/app/cp.yaml", "bad checksum");
        let invalid = CheckpointError::invalid("max_updates must be at least 1");
        let cases = [
            (io, spw_status::SPW_ERR_IO, "/var/lib/app/cp.yaml"),
            (corrupt, spw_status::SPW_ERR_CORRUPT, "/var/lib/app/cp.yaml"),
            (invalid, spw_status::SPW_ERR_INVALID, "max_updates"),
            (
                CheckpointError::Closed,
                spw_status::SPW_ERR_CLOSED,
                "shut down",
            ),
        ];
        for (e, status, text) in cases {
            let got = checkpoint_error(&e);
            assert_eq!(got.status(), status, "{e:?}");
            assert!(got.detail().contains(text), "{e:?}: {}", got.detail());
            assert_eq!(got.detail(), e.to_string());
        }
    }

    /// What the walk hands a `spw_checkpoint_fn`, gathered by [`collect`].
    #[derive(Default)]
    struct Walk {
        seen: Vec<(String, u64, i64)>,
        stop_after: usize,
    }

    unsafe extern "C" fn collect(
        user_data: *mut c_void,
        name: *const c_char,
        record_number: u64,
        timestamp_ms: i64,
    ) -> c_int {
        // SAFETY: the tests pass a `Walk` as user_data and nothing else
        // touches it during the walk; the name is a C string for the call.
        let (walk, name) = unsafe {
            (
                &mut *user_data.cast::<Walk>(),
                core::ffi::CStr::from_ptr(name),
            )
        };
        let name = name.to_str().unwrap().to_owned();
        walk.seen.push((name, record_number, timestamp_ms));
        c_int::from(walk.seen.len() == walk.stop_after)
    }

    /// Walks `cp` with [`collect`], stopping after `stop_after` entries (0:
    /// never); the status and what was seen.
    fn walk(cp: *const spw_checkpoint, stop_after: usize) -> (spw_status, Vec<(String, u64, i64)>) {
        let mut walk = Walk {
            stop_after,
            ..Walk::default()
        };
        // SAFETY: cp is live; collect keeps the spw_checkpoint_fn rules and
        // gets the Walk it expects.
        let st = unsafe { spw_checkpoint_each(cp, Some(collect), (&mut walk as *mut Walk).cast()) };
        (st, walk.seen)
    }

    #[test]
    fn each_walks_every_entry_by_name_and_stops_when_told() {
        let dir = std::env::temp_dir().join(format!("spillway-ffi-cp-each-{}", std::process::id()));
        let path = std::ffi::CString::new(dir.join("cp.yaml").to_str().unwrap()).unwrap();
        let mut cp = null_mut();
        // SAFETY: the strings are NUL-terminated; cp is valid for one pointer
        // and freed once, at the end.
        unsafe {
            let st = spw_checkpoint_open(path.as_ptr(), 10, u64::MAX, &mut cp);
            assert_eq!(st, spw_status::SPW_OK, "{}", last_error_string());
            assert_eq!(walk(cp, 0), (spw_status::SPW_OK, vec![]));
            assert_eq!(last_error_string(), "");

            for (name, n, ms) in [
                (c"System", 3, 1_000),
                (c"Application", 1, -1_500),
                (c"Security", 2, 7),
            ] {
                assert_eq!(
                    spw_checkpoint_persist(cp, name.as_ptr(), n, ms),
                    spw_status::SPW_OK
                );
            }
            let all = vec![
                ("Application".to_owned(), 1, -1_500),
                ("Security".to_owned(), 2, 7),
                ("System".to_owned(), 3, 1_000),
            ];
            assert_eq!(walk(cp, 0), (spw_status::SPW_OK, all.clone()));
            assert_eq!(walk(cp, 2), (spw_status::SPW_OK, all[..2].to_vec()));
            assert_eq!(walk(cp, 1), (spw_status::SPW_OK, all[..1].to_vec()));
            assert_eq!(last_error_string(), "");

            assert_eq!(
                spw_checkpoint_each(cp, None, null_mut()),
                spw_status::SPW_ERR_NULL
            );
            assert_eq!(last_error_string(), "spw_checkpoint_each: fn is NULL");
            assert_eq!(
                walk(core::ptr::null(), 0),
                (spw_status::SPW_ERR_NULL, vec![])
            );
            assert_eq!(last_error_string(), "spw_checkpoint_each: cp is NULL");

            // After shutdown the entries can still be walked.
            assert_eq!(spw_checkpoint_shutdown(cp), spw_status::SPW_OK);
            assert_eq!(walk(cp, 0), (spw_status::SPW_OK, all));
            spw_checkpoint_free(cp);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_refuses_a_name_c_cannot_receive_before_calling_anything() {
        let dir = std::env::temp_dir().join(format!("spillway-ffi-cp-nul-{}", std::process::id()));
        let path = std::ffi::CString::new(dir.join("cp.yaml").to_str().unwrap()).unwrap();
        let mut cp = null_mut();
        // SAFETY: the strings are NUL-terminated; cp is valid for one pointer
        // and freed once, at the end.
        unsafe {
            let st = spw_checkpoint_open(path.as_ptr(), 10, u64::MAX, &mut cp);
            assert_eq!(st, spw_status::SPW_OK, "{}", last_error_string());
            assert_eq!(
                spw_checkpoint_persist(cp, c"A".as_ptr(), 1, 0),
                spw_status::SPW_OK
            );
            // Only the Rust API (or a file) can make such a name.
            let c = ptr::handle(cp, "cp").unwrap();
            c.checkpoint.persist("B\0C", 2, UNIX_EPOCH).unwrap();
            assert_eq!(walk(cp, 0), (spw_status::SPW_ERR_INVALID, vec![]));
            assert_eq!(
                last_error_string(),
                "spw_checkpoint_each: the name \"B\\0C\" holds a NUL byte at offset 1, \
                 which a C string cannot carry"
            );
            spw_checkpoint_free(cp);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn out_of_range_times_are_invalid_and_change_nothing() {
        let dir = std::env::temp_dir().join(format!("spillway-ffi-cp-{}", std::process::id()));
        let path = std::ffi::CString::new(dir.join("cp.yaml").to_str().unwrap()).unwrap();
        let mut cp = null_mut();
        // SAFETY: the strings are NUL-terminated; cp is valid for one pointer
        // and freed once, at the end.
        unsafe {
            let st = spw_checkpoint_open(path.as_ptr(), 10, u64::MAX, &mut cp);
            assert_eq!(st, spw_status::SPW_OK, "{}", last_error_string());
            let name = c"System".as_ptr();
            assert_eq!(
                spw_checkpoint_persist(cp, name, 5, -1_000),
                spw_status::SPW_OK
            );
            // Year 10000 and year -1 cannot be written as RFC 3339.
            for ms in [253_402_300_800_000, -62_167_219_200_001, i64::MAX, i64::MIN] {
                let st = spw_checkpoint_persist(cp, name, 6, ms);
                assert_eq!(st, spw_status::SPW_ERR_INVALID, "{ms}");
                assert!(last_error_string().contains("0000-9999"));
            }
            let (mut n, mut ms) = (0, 0);
            assert_eq!(
                spw_checkpoint_get(cp, name, &mut n, &mut ms),
                spw_status::SPW_OK
            );
            assert_eq!((n, ms), (5, -1_000));
            spw_checkpoint_free(cp);
            assert_eq!(last_error_string(), "");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
