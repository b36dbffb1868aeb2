//! `spw_buffer_insert_keyed`: inserts that keep their order per key.

use core::ffi::c_void;

use super::buffer::spw_buffer;
use super::guard;
use super::outcome::insert_error;
use super::ptr::{self, Handle};
use super::status::spw_status;

/// Inserts a copy of the `len` bytes at `data` as one item into the
/// partition that the `key_len` bytes at `key` map to, so that items with
/// the same key stay in one partition and arrive in the order they were
/// inserted. The mapping is stable for the buffer's life (not across
/// different `partitions` settings). `key` and `data` may be NULL when their
/// length is 0 (the empty key is a key like any other). The caller keeps
/// both.
///
/// Returns what `spw_buffer_insert` returns, for the same reasons;
/// `SPW_ERR_NULL` also for `key` NULL with `key_len > 0`. Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer; a non-NULL `key` is readable for
/// `key_len` bytes and a non-NULL `data` for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_insert_keyed(
    buf: *mut spw_buffer,
    key: *const c_void,
    key_len: usize,
    data: *const c_void,
    len: usize,
) -> spw_status {
    guard::status("spw_buffer_insert_keyed", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        // SAFETY: the caller passes NULL or a pointer readable for key_len bytes.
        let key = unsafe { ptr::bytes_in(key, key_len, "key") }?;
        // SAFETY: the caller passes NULL or a pointer readable for len bytes.
        let item = Box::<[u8]>::from(unsafe { ptr::bytes_in(data, len, "data") }?);
        let buffer = b.buffer();
        b.fuse().run(|| {
            buffer
                .insert_keyed(key, item)
                .map_err(|e| insert_error(&e, buffer.config()))
        })
    })
}
