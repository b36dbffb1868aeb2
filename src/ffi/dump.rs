//! `spw_buffer_dump` and `spw_items_free`: taking every buffered item out
//! of a buffer without flushing it.

use super::buffer::spw_buffer;
use super::bytes;
use super::callback::spw_item;
use super::error::Error;
use super::guard;
use super::ptr::{self, Handle};
use super::status::spw_status;

/// Takes every buffered item out of the buffer without flushing it, oldest
/// first within each partition, partition 0 first. Items in flight (handed
/// to the callback, or waiting for a retry) and items in the spool stay
/// where they are. The items are counted in `dumped` of `spw_buffer_stats`.
///
/// On `SPW_OK`, `*items` is an array of `*count` items that the library
/// allocated (each item's bytes too; an empty item is `(NULL, 0)`); free it
/// with `spw_items_free(*items, *count)`. When nothing is buffered,
/// `*count` is 0 and `*items` is NULL. Works after close too (a close that
/// timed out may leave items behind).
///
/// Returns `SPW_OK`; `SPW_ERR_NULL` (`buf`, `items` or `count`).
/// Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer; non-NULL `items` and `count` are valid
/// for writing a pointer and a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_dump(
    buf: *mut spw_buffer,
    items: *mut *mut spw_item,
    count: *mut usize,
) -> spw_status {
    guard::status("spw_buffer_dump", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        // SAFETY: the caller passes NULL or a pointer valid for writing one pointer.
        let items = unsafe { ptr::out(items, "items") }?;
        // SAFETY: the caller passes NULL or a pointer valid for writing a size_t.
        let count = unsafe { ptr::out(count, "count") }?;
        let dumped = b.fuse().run(|| b.buffer().dump());
        let (array, n) = into_c(dumped);
        items.write(array);
        count.write(n);
        Ok(())
    })
}

/// Hands the items to C as one allocated array of `spw_item`, each
/// pointing at its own allocation (see [`bytes::into_c`]); NULL when empty.
fn into_c(dumped: Vec<Box<[u8]>>) -> (*mut spw_item, usize) {
    if dumped.is_empty() {
        return (core::ptr::null_mut(), 0);
    }
    let array: Box<[spw_item]> = dumped
        .into_iter()
        .map(|b| {
            let (data, len) = bytes::into_c(b);
            spw_item {
                data: data.cast_const(),
                len,
            }
        })
        .collect();
    let n = array.len();
    (Box::into_raw(array).cast::<spw_item>(), n)
}

/// Frees an array of items that `spw_buffer_dump` returned: every item's
/// bytes, then the array. Pass exactly the pointer and count it returned.
/// `(NULL, 0)` is a no-op; `items` NULL with `count > 0` frees nothing and
/// sets `spw_last_error()`. Thread-safe.
///
/// # Safety
/// A non-NULL `items` with its `count` came from `spw_buffer_dump`, and
/// neither the array nor any item's bytes has been freed before.
#[no_mangle]
pub unsafe extern "C" fn spw_items_free(items: *mut spw_item, count: usize) {
    guard::void("spw_items_free", || {
        if items.is_null() {
            return if count == 0 {
                Ok(())
            } else {
                Err(Error::null(&format!("items (with count {count})")))
            };
        }
        let slice = core::ptr::slice_from_raw_parts_mut(items, count);
        // SAFETY: (items, count) is the Box<[spw_item]> that into_c leaked
        // (the caller promises), so the layout matches and this is its only
        // owner.
        let array = unsafe { Box::from_raw(slice) };
        for item in array.iter() {
            // SAFETY: each (data, len) is a Box<[u8]> that bytes::into_c
            // leaked, or (NULL, 0), freed once here.
            unsafe { bytes::spw_bytes_free(item.data.cast_mut(), item.len) };
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::last_error_string;

    #[test]
    fn items_round_trip_through_c_and_are_freed() {
        let (p, n) = into_c(vec![
            Box::from(&b"ab"[..]),
            Box::from(&b""[..]),
            Box::from(&b"c"[..]),
        ]);
        assert_eq!(n, 3);
        // SAFETY: p is the array of n items just leaked by into_c.
        let items = unsafe { core::slice::from_raw_parts(p, n) };
        // SAFETY: each non-empty item points at its leaked bytes.
        let first = unsafe { core::slice::from_raw_parts(items[0].data, items[0].len) };
        assert_eq!(first, b"ab");
        assert!(items[1].data.is_null());
        assert_eq!(items[1].len, 0);
        // SAFETY: (p, n) came from into_c and is freed once.
        unsafe { spw_items_free(p, n) };
        assert_eq!(last_error_string(), "");

        assert_eq!(into_c(Vec::new()), (core::ptr::null_mut(), 0));
        // SAFETY: (NULL, 0) is documented as a no-op.
        unsafe { spw_items_free(core::ptr::null_mut(), 0) };
        assert_eq!(last_error_string(), "");
        // SAFETY: NULL is never dereferenced.
        unsafe { spw_items_free(core::ptr::null_mut(), 2) };
        assert_eq!(
            last_error_string(),
            "spw_items_free: items (with count 2) is NULL"
        );
    }
}
