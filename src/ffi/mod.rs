//! The C ABI. See `include/spillway.h` and the README's C section.
//!
//! Thin by design: each entry point checks its pointers, catches panics,
//! converts, and calls the Rust API. No logic of its own lives here.

#![allow(non_camel_case_types)]

use core::ffi::c_char;

/// The library's version, e.g. `"0.1.0"`. The string is static.
#[no_mangle]
pub extern "C" fn spw_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
