//! `spw_ring`: the mutex-guarded ring of byte items, for any number of threads.

use core::ffi::c_void;

use super::bytes;
use super::error::Error;
use super::guard::{self, Fuse};
use super::ptr::{self, Handle};
use super::status::spw_status;
use super::wait::Wait;
use crate::ring::{LockingRing, PopTimeoutError, PushTimeoutError, TryPopError, TryPushError};

/// A bounded FIFO ring of byte items, guarded by a mutex.
///
/// Any number of threads may push and pop at once. Pushed bytes are copied
/// in; popped items are handed over and freed with `spw_bytes_free`.
/// Create with `spw_ring_new`, free with `spw_ring_free`.
pub struct spw_ring {
    fuse: Fuse,
    ring: LockingRing<Box<[u8]>>,
}

impl Handle for spw_ring {
    fn fuse(&self) -> &Fuse {
        &self.fuse
    }
}

impl spw_ring {
    fn push(&self, item: Box<[u8]>, wait: Wait) -> Result<(), Error> {
        match wait {
            Wait::No => self.ring.try_push(item).map_err(|e| match e {
                TryPushError::Full(_) => Error::new(
                    spw_status::SPW_ERR_FULL,
                    format!("ring is full (capacity {})", self.ring.capacity()),
                ),
                TryPushError::Closed(_) => Error::closed("ring is closed"),
            }),
            Wait::For(timeout) => self.ring.push_timeout(item, timeout).map_err(|e| match e {
                PushTimeoutError::Timeout(_) => Error::new(
                    spw_status::SPW_ERR_TIMEOUT,
                    format!("ring stayed full for {} ms", timeout.as_millis()),
                ),
                PushTimeoutError::Closed(_) => Error::closed("ring is closed"),
            }),
            Wait::Forever => self
                .ring
                .push(item)
                .map_err(|_| Error::closed("ring is closed")),
        }
    }

    fn pop(&self, wait: Wait) -> Result<Box<[u8]>, Error> {
        let drained = || Error::closed("ring is closed and drained");
        match wait {
            Wait::No => self.ring.try_pop().map_err(|e| match e {
                TryPopError::Empty => Error::new(spw_status::SPW_ERR_EMPTY, "ring is empty"),
                TryPopError::Closed => drained(),
            }),
            Wait::For(timeout) => self.ring.pop_timeout(timeout).map_err(|e| match e {
                PopTimeoutError::Timeout => Error::new(
                    spw_status::SPW_ERR_TIMEOUT,
                    format!("ring stayed empty for {} ms", timeout.as_millis()),
                ),
                PopTimeoutError::Closed => drained(),
            }),
            Wait::Forever => self.ring.pop().map_err(|_| drained()),
        }
    }
}

/// Creates a ring that holds up to `capacity` items (each any length, 0 included).
///
/// On `SPW_OK`, `*out` is the new ring; free it with `spw_ring_free`.
/// `capacity` may be as large as `SIZE_MAX`: room is allocated as items arrive.
///
/// Returns `SPW_ERR_NULL` if `out` is NULL, `SPW_ERR_INVALID` if `capacity` is 0.
///
/// # Safety
/// A non-NULL `out` is valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn spw_ring_new(capacity: usize, out: *mut *mut spw_ring) -> spw_status {
    guard::status("spw_ring_new", || {
        // SAFETY: the caller passes NULL or a pointer valid for writing one pointer.
        let out = unsafe { ptr::out(out, "out") }?;
        if capacity == 0 {
            return Err(Error::invalid("capacity must be at least 1"));
        }
        out.write(ptr::into_c(spw_ring {
            fuse: Fuse::new(),
            ring: LockingRing::new(capacity),
        }));
        Ok(())
    })
}

/// Appends a copy of the `len` bytes at `data` as one item.
///
/// `timeout_ms` says how long to wait while the ring is full: 0 = not at all
/// (`SPW_ERR_FULL`), `UINT64_MAX` = until there is room or the ring is closed,
/// otherwise up to that many milliseconds (`SPW_ERR_TIMEOUT`). `data` may be
/// NULL when `len` is 0 (an empty item). The caller keeps `data`.
///
/// Returns `SPW_OK`, `SPW_ERR_FULL`, `SPW_ERR_TIMEOUT`, `SPW_ERR_CLOSED` (after
/// `spw_ring_close`), `SPW_ERR_NULL` (`r`, or `data` with `len > 0`), or
/// `SPW_ERR_INVALID` (`len` larger than any object). Thread-safe.
///
/// # Safety
/// `r` is NULL or a live ring; a non-NULL `data` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn spw_ring_push(
    r: *mut spw_ring,
    data: *const c_void,
    len: usize,
    timeout_ms: u64,
) -> spw_status {
    guard::status("spw_ring_push", || {
        // SAFETY: the caller passes NULL or a live ring from spw_ring_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        // SAFETY: the caller passes NULL or a pointer readable for len bytes.
        let item = Box::<[u8]>::from(unsafe { ptr::bytes_in(data, len, "data") }?);
        ring.fuse.run(|| ring.push(item, Wait::from_ms(timeout_ms)))
    })
}

/// Removes the oldest item and hands it to the caller.
///
/// On `SPW_OK`, `*data` and `*len` are the item; free it with
/// `spw_bytes_free(*data, *len)`. An empty item comes back as `(NULL, 0)`.
/// `timeout_ms` says how long to wait while the ring is empty: 0 = not at all
/// (`SPW_ERR_EMPTY`), `UINT64_MAX` = until an item arrives or the ring is
/// closed, otherwise up to that many milliseconds (`SPW_ERR_TIMEOUT`). After
/// `spw_ring_close` the items still inside are popped as usual, then
/// `SPW_ERR_CLOSED`. On any failure `*data` and `*len` are left untouched and
/// no item is removed.
///
/// Returns `SPW_OK`, `SPW_ERR_EMPTY`, `SPW_ERR_TIMEOUT`, `SPW_ERR_CLOSED`, or
/// `SPW_ERR_NULL` (`r`, `data` or `len`). Thread-safe.
///
/// # Safety
/// `r` is NULL or a live ring; non-NULL `data` and `len` are valid for
/// writing a pointer and a `size_t`, and do not overlap.
#[no_mangle]
pub unsafe extern "C" fn spw_ring_pop(
    r: *mut spw_ring,
    data: *mut *mut u8,
    len: *mut usize,
    timeout_ms: u64,
) -> spw_status {
    guard::status("spw_ring_pop", || {
        // SAFETY: the caller passes NULL or a live ring from spw_ring_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        // SAFETY: the caller passes NULL or distinct pointers valid for one write.
        let (data_out, len_out) = unsafe { (ptr::out(data, "data")?, ptr::out(len, "len")?) };
        let item = ring.fuse.run(|| ring.pop(Wait::from_ms(timeout_ms)))?;
        let (p, n) = bytes::into_c(item);
        data_out.write(p);
        len_out.write(n);
        Ok(())
    })
}

/// The number of items in the ring: a snapshot that other threads may change
/// at once. 0 when `r` is NULL (`spw_last_error()` then says so).
///
/// # Safety
/// `r` is NULL or a live ring.
#[no_mangle]
pub unsafe extern "C" fn spw_ring_len(r: *const spw_ring) -> usize {
    guard::value("spw_ring_len", 0, || {
        // SAFETY: the caller passes NULL or a live ring from spw_ring_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        Ok(ring.fuse.run(|| ring.ring.len()))
    })
}

/// Closes the ring: later pushes return `SPW_ERR_CLOSED`; pops return the
/// items still inside, then `SPW_ERR_CLOSED`. Wakes every thread waiting in
/// `spw_ring_push`/`spw_ring_pop`. Idempotent; NULL is a no-op (reported by
/// `spw_last_error()`). Thread-safe. The ring must still be freed.
///
/// # Safety
/// `r` is NULL or a live ring.
#[no_mangle]
pub unsafe extern "C" fn spw_ring_close(r: *mut spw_ring) {
    guard::void("spw_ring_close", || {
        // SAFETY: the caller passes NULL or a live ring from spw_ring_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        ring.fuse.run(|| ring.ring.close());
        Ok(())
    });
}

/// Frees the ring and every item still in it. NULL is a no-op.
///
/// Must be the last call on `r`: no other thread may be using or waiting on
/// it (close it and join those threads first).
///
/// # Safety
/// `r` is NULL or a live ring that no other thread is using; it is invalid
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn spw_ring_free(r: *mut spw_ring) {
    guard::void("spw_ring_free", || {
        // SAFETY: the caller passes NULL or a live ring that nobody else uses.
        drop(unsafe { ptr::take(r) });
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::last_error_string;
    use core::ptr::null_mut;

    fn new_ring(capacity: usize) -> *mut spw_ring {
        let mut r = null_mut();
        // SAFETY: &mut r is valid for writing one pointer.
        let st = unsafe { spw_ring_new(capacity, &mut r) };
        assert_eq!(st, spw_status::SPW_OK);
        r
    }

    #[test]
    fn a_panic_inside_a_ring_call_closes_that_ring_only() {
        let (r, other) = (new_ring(2), new_ring(2));
        // SAFETY: r and other are live rings; items are freed with spw_bytes_free.
        unsafe {
            assert_eq!(
                spw_ring_push(r, b"x".as_ptr().cast(), 1, 0),
                spw_status::SPW_OK
            );
            let st = guard::status("spw_ring_push", || {
                let ring = ptr::handle(r, "r")?;
                ring.fuse.run(|| panic!("injected"))
            });
            assert_eq!(st, spw_status::SPW_ERR_PANIC);
            assert_eq!(
                last_error_string(),
                "spw_ring_push: internal panic: injected"
            );

            let st = spw_ring_push(r, b"y".as_ptr().cast(), 1, 0);
            assert_eq!(st, spw_status::SPW_ERR_CLOSED);
            assert!(last_error_string().contains("panicked"));
            let (mut p, mut n) = (null_mut(), 99);
            assert_eq!(
                spw_ring_pop(r, &mut p, &mut n, 0),
                spw_status::SPW_ERR_CLOSED
            );
            assert_eq!((p, n), (null_mut(), 99));
            assert_eq!(spw_ring_len(r), 0);
            assert!(last_error_string().starts_with("spw_ring_len: "));

            assert_eq!(spw_ring_push(other, null_mut(), 0, 0), spw_status::SPW_OK);
            assert_eq!(spw_ring_len(other), 1);

            spw_ring_free(r); // still frees the item inside
            assert_eq!(last_error_string(), "");
            spw_ring_free(other);
        }
    }

    #[test]
    fn items_round_trip_in_order() {
        let r = new_ring(3);
        // SAFETY: r is live; popped items are freed with what pop returned.
        unsafe {
            for item in [&b"one"[..], b"", b"three"] {
                let st = spw_ring_push(r, item.as_ptr().cast(), item.len(), 0);
                assert_eq!(st, spw_status::SPW_OK);
            }
            assert_eq!(
                spw_ring_push(r, b"4".as_ptr().cast(), 1, 0),
                spw_status::SPW_ERR_FULL
            );
            assert_eq!(
                last_error_string(),
                "spw_ring_push: ring is full (capacity 3)"
            );
            for want in [&b"one"[..], b"", b"three"] {
                let (mut p, mut n) = (null_mut(), 0);
                assert_eq!(spw_ring_pop(r, &mut p, &mut n, 0), spw_status::SPW_OK);
                let got = if n == 0 {
                    &[][..]
                } else {
                    core::slice::from_raw_parts(p, n)
                };
                assert_eq!(got, want);
                spw_bytes_free_for_test(p, n);
            }
            spw_ring_free(r);
        }
    }

    fn spw_bytes_free_for_test(p: *mut u8, n: usize) {
        // SAFETY: (p, n) is what spw_ring_pop returned.
        unsafe { crate::ffi::spw_bytes_free(p, n) };
    }
}
