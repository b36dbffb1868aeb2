//! Byte buffers the library allocates for C, and `spw_bytes_free`.

use super::error::Error;
use super::guard;

/// Hands an owned item to C as (pointer, length); C frees it with
/// `spw_bytes_free`. An empty item is (NULL, 0): there is nothing to free.
pub(crate) fn into_c(bytes: Box<[u8]>) -> (*mut u8, usize) {
    let len = bytes.len();
    if len == 0 {
        (core::ptr::null_mut(), 0)
    } else {
        (Box::into_raw(bytes).cast::<u8>(), len)
    }
}

/// Frees bytes the library returned (for example by `spw_ring_pop`).
///
/// Pass exactly the pointer and length you got. `(NULL, 0)`, which is how an
/// empty item comes back, is a no-op. `data == NULL` with `len > 0` frees
/// nothing and sets `spw_last_error()`. Thread-safe: the bytes may be freed
/// on any thread.
///
/// # Safety
/// A non-NULL `data` with its `len` came from this library and has not been
/// freed before.
#[no_mangle]
pub unsafe extern "C" fn spw_bytes_free(data: *mut u8, len: usize) {
    guard::void("spw_bytes_free", || {
        if data.is_null() {
            return if len == 0 {
                Ok(())
            } else {
                Err(Error::null(&format!("data (with len {len})")))
            };
        }
        let slice = core::ptr::slice_from_raw_parts_mut(data, len);
        // SAFETY: (data, len) is a Box<[u8]> that into_c leaked (the caller
        // promises), so the layout matches and this is its only owner.
        drop(unsafe { Box::from_raw(slice) });
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::last_error_string;

    #[test]
    fn round_trip_and_empty_items() {
        let (p, n) = into_c(Box::from(&b"abc"[..]));
        assert_eq!(n, 3);
        // SAFETY: p points at the 3 bytes just leaked by into_c.
        assert_eq!(unsafe { core::slice::from_raw_parts(p, n) }, b"abc");
        // SAFETY: (p, n) came from into_c and is freed once.
        unsafe { spw_bytes_free(p, n) };
        assert_eq!(last_error_string(), "");

        assert_eq!(into_c(Box::new([])), (core::ptr::null_mut(), 0));
        // SAFETY: (NULL, 0) is documented as a no-op.
        unsafe { spw_bytes_free(core::ptr::null_mut(), 0) };
        assert_eq!(last_error_string(), "");
    }

    #[test]
    fn null_with_a_length_is_reported_not_freed() {
        // SAFETY: NULL is never dereferenced.
        unsafe { spw_bytes_free(core::ptr::null_mut(), 4) };
        assert_eq!(
            last_error_string(),
            "spw_bytes_free: data (with len 4) is NULL"
        );
    }
}
