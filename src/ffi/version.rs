//! `spw_version`.

use core::ffi::c_char;

/// The library's version, e.g. `"0.1.0"`.
///
/// The string is static: never free it. Thread-safe; does not change
/// `spw_last_error()`.
#[no_mangle]
pub extern "C" fn spw_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: spw_version returns a static NUL-terminated string.
        let v = unsafe { core::ffi::CStr::from_ptr(super::spw_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
