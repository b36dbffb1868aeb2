//! Checking the pointers C passes in: one helper per kind of pointer, each
//! turning NULL into `SPW_ERR_NULL` with the parameter's name and handing back
//! a Rust reference or slice.

use core::ffi::{c_char, c_void, CStr};
use core::mem::MaybeUninit;

use super::error::Error;
use super::guard::Fuse;

/// A library object C holds by pointer (`spw_ring`, `spw_spsc`, ...).
pub(crate) trait Handle {
    /// The fuse that closes the object once one of its calls panicked.
    fn fuse(&self) -> &Fuse;
}

/// Gives C a new object; it comes back through [`handle`] and [`take`].
pub(crate) fn into_c<T: Handle>(object: T) -> *mut T {
    Box::into_raw(Box::new(object))
}

/// The object behind `p`: `SPW_ERR_NULL` when NULL, `SPW_ERR_CLOSED` when a
/// call on it panicked earlier.
///
/// # Safety
/// A non-NULL `p` came from [`into_c`] and has not been passed to [`take`].
pub(crate) unsafe fn handle<'a, T: Handle>(p: *const T, param: &str) -> Result<&'a T, Error> {
    // SAFETY: the caller promises a non-NULL p is a live object from into_c.
    let object = unsafe { p.as_ref() }.ok_or_else(|| Error::null(param))?;
    object.fuse().check()?;
    Ok(object)
}

/// Like [`handle`] for a parameter where NULL means "use the defaults":
/// `None` for NULL, `SPW_ERR_CLOSED` when a call on it panicked earlier.
///
/// # Safety
/// As [`handle`].
pub(crate) unsafe fn handle_opt<'a, T: Handle>(p: *const T) -> Result<Option<&'a T>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from this function's contract; p is not NULL.
    unsafe { handle(p, "") }.map(Some)
}

/// Takes back the object behind `p` to drop it; `None` for NULL.
///
/// # Safety
/// A non-NULL `p` came from [`into_c`], has not been taken before, and no
/// other call is using it.
pub(crate) unsafe fn take<T: Handle>(p: *mut T) -> Option<Box<T>> {
    // SAFETY: the caller promises p is NULL or the unique owner of a Box from into_c.
    (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
}

/// `len` bytes that C lends for the call. NULL is fine when `len` is 0.
///
/// # Safety
/// A non-NULL `data` is valid for reads of `len` bytes, not written during the call.
pub(crate) unsafe fn bytes_in<'a>(
    data: *const c_void,
    len: usize,
    param: &str,
) -> Result<&'a [u8], Error> {
    if data.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::null(param))
        };
    }
    check_slice_len(len, param)?;
    // SAFETY: non-NULL, valid for len bytes (caller), len <= isize::MAX (checked).
    Ok(unsafe { core::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// `len` bytes of C memory the call may write. NULL is fine when `len` is 0.
///
/// # Safety
/// A non-NULL `out` is valid for writes of `len` bytes, and nothing else
/// reads or writes it during the call.
pub(crate) unsafe fn bytes_out<'a>(
    out: *mut c_void,
    len: usize,
    param: &str,
) -> Result<&'a mut [u8], Error> {
    if out.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(Error::null(param))
        };
    }
    check_slice_len(len, param)?;
    // SAFETY: non-NULL, valid for writes of len bytes and not aliased (caller),
    // len <= isize::MAX (checked). Any bit pattern is a valid u8, and C memory
    // is never uninitialised from Rust's point of view.
    Ok(unsafe { core::slice::from_raw_parts_mut(out.cast::<u8>(), len) })
}

/// `len` values of `T` that C lends for the call. NULL is fine when `len` is 0.
///
/// # Safety
/// A non-NULL `data` is aligned and valid for reads of `len` values of `T`,
/// not written during the call.
pub(crate) unsafe fn slice_in<'a, T>(
    data: *const T,
    len: usize,
    param: &str,
) -> Result<&'a [T], Error> {
    if data.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::null(param))
        };
    }
    let fits = len
        .checked_mul(core::mem::size_of::<T>())
        .is_some_and(|bytes| isize::try_from(bytes).is_ok());
    if !fits {
        return Err(Error::invalid(format!(
            "{param}: {len} elements are larger than any object can be"
        )));
    }
    // SAFETY: non-NULL, aligned and valid for len values (caller), and the
    // whole slice is at most isize::MAX bytes (checked).
    Ok(unsafe { core::slice::from_raw_parts(data, len) })
}

fn check_slice_len(len: usize, param: &str) -> Result<(), Error> {
    if isize::try_from(len).is_err() {
        return Err(Error::invalid(format!(
            "{param}: length {len} is larger than any object can be"
        )));
    }
    Ok(())
}

/// A NUL-terminated UTF-8 string that C lends for the call: `SPW_ERR_NULL`
/// when NULL, `SPW_ERR_INVALID` (naming the parameter) when not UTF-8.
///
/// # Safety
/// A non-NULL `s` points at a NUL-terminated string, not written during the call.
pub(crate) unsafe fn str_in<'a>(s: *const c_char, param: &str) -> Result<&'a str, Error> {
    if s.is_null() {
        return Err(Error::null(param));
    }
    // SAFETY: non-NULL and NUL-terminated, unchanged during the call (caller).
    let c = unsafe { CStr::from_ptr(s) };
    c.to_str().map_err(|e| {
        Error::invalid(format!(
            "{param} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// Where a result goes; written only once the call has succeeded.
pub(crate) struct Out<'a, T>(&'a mut MaybeUninit<T>);

impl<T> Out<'_, T> {
    pub(crate) fn write(self, value: T) {
        self.0.write(value);
    }
}

/// An output parameter: `SPW_ERR_NULL` when NULL.
///
/// # Safety
/// A non-NULL `p` is valid and aligned for a write of `T` for the whole call.
pub(crate) unsafe fn out<'a, T>(p: *mut T, param: &str) -> Result<Out<'a, T>, Error> {
    // SAFETY: the caller promises a non-NULL p is valid and aligned for a T;
    // MaybeUninit<T> has T's layout and needs no initialised contents.
    let slot = unsafe { p.cast::<MaybeUninit<T>>().as_mut() };
    slot.map(Out).ok_or_else(|| Error::null(param))
}

/// An optional output parameter: `None` when NULL.
///
/// # Safety
/// As [`out`].
pub(crate) unsafe fn out_opt<'a, T>(p: *mut T) -> Option<Out<'a, T>> {
    // SAFETY: forwarded from this function's contract.
    unsafe { out(p, "") }.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::spw_status;

    #[test]
    fn null_byte_pointers_are_fine_only_for_zero_lengths() {
        // SAFETY: NULL pointers are never dereferenced.
        unsafe {
            assert_eq!(
                bytes_in(core::ptr::null(), 0, "data").unwrap(),
                &[] as &[u8]
            );
            let e = bytes_in(core::ptr::null(), 3, "data").unwrap_err();
            assert_eq!(
                (e.status(), e.detail()),
                (spw_status::SPW_ERR_NULL, "data is NULL")
            );
            assert!(bytes_out(core::ptr::null_mut(), 0, "out")
                .unwrap()
                .is_empty());
            let e = bytes_out(core::ptr::null_mut(), 1, "out").unwrap_err();
            assert_eq!(e.detail(), "out is NULL");
        }
    }

    #[test]
    fn lengths_beyond_isize_are_invalid() {
        let x = 0_u8;
        // SAFETY: the length check fails before the pointer is used.
        let e = unsafe { bytes_in((&x as *const u8).cast(), usize::MAX, "data") }.unwrap_err();
        assert_eq!(e.status(), spw_status::SPW_ERR_INVALID);
        assert!(e.detail().starts_with("data: length"), "{}", e.detail());
    }

    #[test]
    fn strings_must_be_non_null_utf8() {
        // SAFETY: each pointer is NULL or a NUL-terminated literal.
        unsafe {
            assert_eq!(str_in(c"max_size".as_ptr(), "key").unwrap(), "max_size");
            assert_eq!(str_in(c"".as_ptr(), "key").unwrap(), "");
            let e = str_in(core::ptr::null(), "key").unwrap_err();
            assert_eq!(
                (e.status(), e.detail()),
                (spw_status::SPW_ERR_NULL, "key is NULL")
            );
            let e = str_in(c"ab\xffc".as_ptr(), "value").unwrap_err();
            assert_eq!(
                (e.status(), e.detail()),
                (
                    spw_status::SPW_ERR_INVALID,
                    "value is not valid UTF-8 (invalid byte at offset 2)"
                )
            );
        }
    }

    #[test]
    fn out_writes_only_when_told() {
        let mut slot = 7_u32;
        // SAFETY: &mut slot is valid and aligned for a u32.
        let o = unsafe { out(&mut slot, "out") }.unwrap();
        o.write(9);
        assert_eq!(slot, 9);
        // SAFETY: NULL is never dereferenced.
        let e = unsafe { out::<u32>(core::ptr::null_mut(), "len") }
            .err()
            .unwrap();
        assert_eq!(e.detail(), "len is NULL");
    }
}
