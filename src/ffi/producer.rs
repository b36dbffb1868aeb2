//! `spw_producer`: a lock-free insert handle for one thread, feeding a buffer.

use core::ffi::c_void;

use super::buffer::spw_buffer;
use super::error::Error;
use super::guard::{self, Fuse};
use super::outcome::insert_error;
use super::ptr::{self, Handle};
use super::status::spw_status;
use crate::buffer::Producer;
use crate::config::BufferConfig;
use crate::sync::UnsafeCell;

/// A handle that inserts into a buffer without taking a lock, for exactly
/// one thread at a time.
///
/// Items go into the handle's own ring, which one partition's flusher
/// drains; items from one producer reach the callback in the order they
/// were inserted. Never call `spw_producer_insert` on one producer from two
/// threads at once: it takes no lock, and that is undefined behaviour. A
/// producer may move to another thread only after its last call on the old
/// thread happens-before the first on the new one (a join, a mutex, ...).
///
/// A producer may outlive its buffer: its inserts then return
/// `SPW_ERR_CLOSED`. Create with `spw_buffer_producer`, free with
/// `spw_producer_free`.
pub struct spw_producer {
    fuse: Fuse,
    /// For error messages; the buffer's configuration does not change.
    config: BufferConfig,
    // SAFETY (of handing out `&mut`): only one thread calls
    // spw_producer_insert at a time, the C contract of this type, so each
    // `&mut` made in `with_producer` is unique for as long as it lives.
    producer: UnsafeCell<Producer<Box<[u8]>>>,
}

impl Handle for spw_producer {
    fn fuse(&self) -> &Fuse {
        &self.fuse
    }
}

impl spw_producer {
    /// Runs `f` with the producer.
    ///
    /// # Safety
    /// Called by one thread at a time, never re-entrantly.
    unsafe fn with_producer<R>(&self, f: impl FnOnce(&mut Producer<Box<[u8]>>) -> R) -> R {
        self.fuse.run(|| {
            self.producer.with_mut(|p| {
                // SAFETY: one thread at a time (see the field).
                f(unsafe { &mut *p })
            })
        })
    }
}

/// Creates a producer feeding `buf` (one of its partitions, chosen
/// round-robin).
///
/// On `SPW_OK`, `*out` is the new producer; free it with `spw_producer_free`.
///
/// Returns `SPW_OK`, `SPW_ERR_CLOSED` after `spw_buffer_close`, or
/// `SPW_ERR_NULL` (`buf` or `out`). Thread-safe (on `buf`).
///
/// # Safety
/// `buf` is NULL or a live buffer; a non-NULL `out` is valid for writing one
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_producer(
    buf: *mut spw_buffer,
    out: *mut *mut spw_producer,
) -> spw_status {
    guard::status("spw_buffer_producer", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        // SAFETY: the caller passes NULL or a pointer valid for writing one pointer.
        let out = unsafe { ptr::out(out, "out") }?;
        let buffer = b.buffer();
        if buffer.is_closed() {
            return Err(Error::closed("buffer is closed"));
        }
        let producer = b.fuse().run(|| buffer.producer());
        out.write(ptr::into_c(spw_producer {
            fuse: Fuse::new(),
            config: buffer.config().clone(),
            producer: UnsafeCell::new(producer),
        }));
        Ok(())
    })
}

/// Inserts a copy of the `len` bytes at `data` as one item, without taking a
/// lock (unless the producer's ring is full and `overflow` needs one).
/// `data` may be NULL when `len` is 0. The caller keeps `data`.
///
/// Returns as `spw_buffer_insert` does: `SPW_OK`; `SPW_ERR_FULL` (`reject`,
/// `drop_newest`); `SPW_ERR_TIMEOUT` (`block`); `SPW_ERR_CLOSED` once the
/// buffer is closed or freed; `SPW_ERR_NULL` (`p`, or `data` with `len > 0`);
/// `SPW_ERR_INVALID` (`len` larger than any object). One thread at a time.
///
/// # Safety
/// `p` is NULL or a live producer used by no other thread during the call;
/// a non-NULL `data` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn spw_producer_insert(
    p: *mut spw_producer,
    data: *const c_void,
    len: usize,
) -> spw_status {
    guard::status("spw_producer_insert", || {
        // SAFETY: the caller passes NULL or a live producer from spw_buffer_producer.
        let producer = unsafe { ptr::handle(p, "p") }?;
        // SAFETY: the caller passes NULL or a pointer readable for len bytes.
        let item = Box::<[u8]>::from(unsafe { ptr::bytes_in(data, len, "data") }?);
        let insert = |h: &mut Producer<Box<[u8]>>| {
            h.insert(item)
                .map_err(|e| insert_error(&e, &producer.config))
        };
        // SAFETY: the caller is the one thread using this producer now.
        unsafe { producer.with_producer(insert) }
    })
}

/// Frees the producer. NULL is a no-op. What it holds is still delivered:
/// the items stay with the buffer, which flushes them as usual.
///
/// # Safety
/// `p` is NULL or a live producer that no other thread is using; it is
/// invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn spw_producer_free(p: *mut spw_producer) {
    guard::void("spw_producer_free", || {
        // SAFETY: the caller passes NULL or a live producer that nobody else uses.
        drop(unsafe { ptr::take(p) });
        Ok(())
    });
}
