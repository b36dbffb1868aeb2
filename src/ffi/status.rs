//! `spw_status`, the code every fallible C function returns, and its names.

use core::ffi::{c_char, c_int, CStr};

/// What a spillway function returns: `SPW_OK` (0) or the reason it failed.
///
/// After any status other than `SPW_OK`, `spw_last_error()` on the same thread
/// describes the failure. The library only ever returns these values; it never
/// takes a `spw_status` from C (see `spw_status_name`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum spw_status {
    /// Success.
    SPW_OK = 0,
    /// A required pointer was NULL.
    SPW_ERR_NULL = 1,
    /// An argument or configuration value is invalid.
    SPW_ERR_INVALID = 2,
    /// No room (non-blocking call, or overflow = reject/drop_newest).
    SPW_ERR_FULL = 3,
    /// Nothing to read, or an unknown name.
    SPW_ERR_EMPTY = 4,
    /// The deadline passed.
    SPW_ERR_TIMEOUT = 5,
    /// The object was closed (also after an internal panic in one of its calls).
    SPW_ERR_CLOSED = 6,
    /// The operating system refused (the message says what and where).
    SPW_ERR_IO = 7,
    /// Stored data failed its check (the message says where).
    SPW_ERR_CORRUPT = 8,
    /// The sink failed and the items were not delivered.
    SPW_ERR_SINK = 9,
    /// An internal panic was caught; the object it happened in is now closed.
    SPW_ERR_PANIC = 10,
}

/// Every status, in numeric order. (A free constant: cbindgen would export
/// an associated one into the header.)
const ALL: [spw_status; 11] = [
    spw_status::SPW_OK,
    spw_status::SPW_ERR_NULL,
    spw_status::SPW_ERR_INVALID,
    spw_status::SPW_ERR_FULL,
    spw_status::SPW_ERR_EMPTY,
    spw_status::SPW_ERR_TIMEOUT,
    spw_status::SPW_ERR_CLOSED,
    spw_status::SPW_ERR_IO,
    spw_status::SPW_ERR_CORRUPT,
    spw_status::SPW_ERR_SINK,
    spw_status::SPW_ERR_PANIC,
];

impl spw_status {
    /// The status with this numeric value, if there is one.
    pub fn from_code(code: c_int) -> Option<Self> {
        usize::try_from(code).ok().and_then(|i| ALL.get(i).copied())
    }

    /// The constant's name as C spells it, NUL-terminated.
    pub fn name(self) -> &'static CStr {
        match self {
            Self::SPW_OK => c"SPW_OK",
            Self::SPW_ERR_NULL => c"SPW_ERR_NULL",
            Self::SPW_ERR_INVALID => c"SPW_ERR_INVALID",
            Self::SPW_ERR_FULL => c"SPW_ERR_FULL",
            Self::SPW_ERR_EMPTY => c"SPW_ERR_EMPTY",
            Self::SPW_ERR_TIMEOUT => c"SPW_ERR_TIMEOUT",
            Self::SPW_ERR_CLOSED => c"SPW_ERR_CLOSED",
            Self::SPW_ERR_IO => c"SPW_ERR_IO",
            Self::SPW_ERR_CORRUPT => c"SPW_ERR_CORRUPT",
            Self::SPW_ERR_SINK => c"SPW_ERR_SINK",
            Self::SPW_ERR_PANIC => c"SPW_ERR_PANIC",
        }
    }
}

/// What `spw_status_name` returns for a value that is not a `spw_status`.
pub(crate) const UNKNOWN_NAME: &CStr = c"SPW_UNKNOWN";

/// The name of a status code, e.g. `"SPW_ERR_FULL"` for `SPW_ERR_FULL`.
///
/// The parameter is a plain `int` so that any value C passes is defined
/// behaviour: a value that is not a `spw_status` gives `"SPW_UNKNOWN"`.
/// The string is static: never free it. Thread-safe; does not change
/// `spw_last_error()`.
#[no_mangle]
pub extern "C" fn spw_status_name(status: c_int) -> *const c_char {
    spw_status::from_code(status)
        .map_or(UNKNOWN_NAME, spw_status::name)
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_contract_values_in_order() {
        for (i, s) in ALL.iter().enumerate() {
            assert_eq!(*s as c_int, i as c_int);
            assert_eq!(spw_status::from_code(i as c_int), Some(*s));
        }
        assert_eq!(spw_status::SPW_ERR_PANIC as c_int, 10);
    }

    #[test]
    fn names_match_the_constants_and_unknown_values_are_defined() {
        let name = |c: c_int| {
            // SAFETY: spw_status_name always returns a static NUL-terminated string.
            let s = unsafe { CStr::from_ptr(spw_status_name(c)) };
            s.to_str().unwrap()
        };
        assert_eq!(name(0), "SPW_OK");
        assert_eq!(name(3), "SPW_ERR_FULL");
        assert_eq!(name(10), "SPW_ERR_PANIC");
        for bad in [-1, 11, c_int::MAX, c_int::MIN] {
            assert_eq!(name(bad), "SPW_UNKNOWN");
        }
        for s in ALL {
            assert_eq!(format!("{s:?}"), s.name().to_str().unwrap());
        }
    }
}
