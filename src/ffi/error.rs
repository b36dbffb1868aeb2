//! Failures of C entry points and the per-thread "last error" message that
//! `spw_last_error` hands to C.

use core::cell::RefCell;
use core::ffi::c_char;
use core::fmt;
use std::ffi::CString;

use super::status::spw_status;

/// Why an entry point failed: the status C gets back and the detail that
/// `spw_last_error` shows. The guard prefixes the function's name, so the
/// detail names only the parameter or the condition ("r is NULL").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    status: spw_status,
    detail: String,
}

impl Error {
    pub(crate) fn new(status: spw_status, detail: impl Into<String>) -> Self {
        debug_assert_ne!(
            status,
            spw_status::SPW_OK,
            "an error needs a failing status"
        );
        Self {
            status,
            detail: detail.into(),
        }
    }

    /// A required pointer parameter was NULL.
    pub(crate) fn null(param: &str) -> Self {
        Self::new(spw_status::SPW_ERR_NULL, format!("{param} is NULL"))
    }

    /// An argument was out of its range.
    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        Self::new(spw_status::SPW_ERR_INVALID, detail)
    }

    /// The object was closed.
    pub(crate) fn closed(detail: impl Into<String>) -> Self {
        Self::new(spw_status::SPW_ERR_CLOSED, detail)
    }

    pub(crate) fn status(&self) -> spw_status {
        self.status
    }

    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for Error {}

thread_local! {
    /// `None` means "no error": `spw_last_error` then returns a static "".
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records `message` as this thread's last error, replacing the previous one.
///
/// Never panics: interior NULs become U+FFFD (C would stop reading there), and
/// a thread whose locals are being destroyed simply keeps no message.
pub(crate) fn set_last_error(message: &str) {
    let message = CString::new(message.replace('\0', "\u{fffd}"))
        .unwrap_or_else(|_| CString::from(c"(unprintable error message)"));
    let _ = LAST_ERROR.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = Some(message);
        }
    });
}

/// Forgets this thread's last error (what a successful call does).
pub(crate) fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            // Most calls succeed: keep the fast path free of a deallocation.
            if slot.is_some() {
                *slot = None;
            }
        }
    });
}

/// This thread's last error as Rust text ("" when none); for tests.
#[cfg(test)]
pub(crate) fn last_error_string() -> String {
    // SAFETY: spw_last_error returns a NUL-terminated string that stays valid
    // until this thread's next spw_ call; it is copied out right away.
    unsafe { core::ffi::CStr::from_ptr(spw_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// The message describing the last failure of a `spw_` call on this thread.
///
/// Never NULL: `""` when the thread's last call succeeded or it has made
/// none. UTF-8, NUL-terminated, owned by the library: do not free it. It stays
/// valid until this thread's next `spw_` call, so copy it if you need it
/// longer. Each thread has its own message.
///
/// Every function replaces the calling thread's message (with `""` when it
/// succeeds) except `spw_last_error`, `spw_status_name` and `spw_version`,
/// so `printf("%s: %s", spw_status_name(st), spw_last_error())` is safe.
#[no_mangle]
pub extern "C" fn spw_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|cell| match cell.try_borrow() {
            // The CString's heap buffer does not move while it stays in the
            // slot, i.e. until this thread's next set/clear.
            Ok(slot) => slot.as_deref().map_or(c"".as_ptr(), |s| s.as_ptr()),
            Err(_) => c"".as_ptr(),
        })
        .unwrap_or(c"".as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_and_read_back() {
        clear_last_error();
        assert_eq!(last_error_string(), "");
        set_last_error("spw_x: r is NULL");
        assert_eq!(last_error_string(), "spw_x: r is NULL");
        set_last_error("second");
        assert_eq!(last_error_string(), "second");
        clear_last_error();
        assert_eq!(last_error_string(), "");
    }

    #[test]
    fn interior_nul_does_not_truncate_or_panic() {
        set_last_error("a\0b");
        assert_eq!(last_error_string(), "a\u{fffd}b");
        clear_last_error();
    }

    #[test]
    fn each_thread_has_its_own_message() {
        set_last_error("main thread");
        let other = std::thread::spawn(|| {
            let before = last_error_string();
            set_last_error("other thread");
            (before, last_error_string())
        })
        .join()
        .unwrap();
        assert_eq!(other, (String::new(), "other thread".to_owned()));
        assert_eq!(last_error_string(), "main thread");
        clear_last_error();
    }

    #[test]
    fn error_constructors_carry_status_and_detail() {
        let e = Error::null("out");
        assert_eq!(e.status(), spw_status::SPW_ERR_NULL);
        assert_eq!(e.detail(), "out is NULL");
        assert_eq!(e.to_string(), "out is NULL");
        assert_eq!(
            Error::invalid("capacity must be at least 1").status(),
            spw_status::SPW_ERR_INVALID
        );
        assert_eq!(
            Error::closed("ring is closed").status(),
            spw_status::SPW_ERR_CLOSED
        );
    }
}
