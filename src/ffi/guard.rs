//! The panic boundary every entry point runs inside, and the per-object fuse
//! that closes an object whose call panicked.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{clear_last_error, set_last_error, Error};
use super::status::spw_status;
use crate::panic::panic_message;
use crate::sync::atomic::{AtomicBool, Ordering};

/// Runs the body of the entry point `func` and returns its status to C.
///
/// `Ok` clears the thread's last error; `Err` records `"{func}: {detail}"`;
/// a panic becomes `SPW_ERR_PANIC` with the panic's message, and never
/// unwinds into C.
pub(crate) fn status(func: &'static str, body: impl FnOnce() -> Result<(), Error>) -> spw_status {
    match run(func, body) {
        Ok(()) => spw_status::SPW_OK,
        Err(status) => status,
    }
}

/// Like [`status`] for an entry point that returns a value (a count, a
/// length): `on_error` is what C gets when the body fails or panics, and
/// `spw_last_error` tells the two apart.
pub(crate) fn value<T>(
    func: &'static str,
    on_error: T,
    body: impl FnOnce() -> Result<T, Error>,
) -> T {
    run(func, body).unwrap_or(on_error)
}

/// Like [`status`] for an entry point that returns nothing (`*_free`,
/// `*_close`): a failure is only visible through `spw_last_error`.
pub(crate) fn void(func: &'static str, body: impl FnOnce() -> Result<(), Error>) {
    let _ = run(func, body);
}

fn run<T>(func: &'static str, body: impl FnOnce() -> Result<T, Error>) -> Result<T, spw_status> {
    // AssertUnwindSafe: a panic that escapes an object's code blows that
    // object's fuse (see `Fuse::run`), so no later call sees the state the
    // panic left behind; anything else the body touched is local to it.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => {
            clear_last_error();
            Ok(value)
        }
        Ok(Err(error)) => {
            set_last_error(&format!("{func}: {}", error.detail()));
            Err(error.status())
        }
        Err(payload) => {
            set_last_error(&format!(
                "{func}: internal panic: {}",
                panic_message(payload.as_ref())
            ));
            // A payload's destructor could panic in turn; keep that inside too.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Err(spw_status::SPW_ERR_PANIC)
        }
    }
}

/// Marks an object closed for good once one of its calls panicked: its state
/// may be half-updated, so every later call gets `SPW_ERR_CLOSED` instead.
#[derive(Debug)]
pub(crate) struct Fuse {
    blown: AtomicBool,
}

impl Fuse {
    pub(crate) fn new() -> Self {
        Self {
            blown: AtomicBool::new(false),
        }
    }

    /// `SPW_ERR_CLOSED` once a call on the object has panicked.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.blown.load(Ordering::Acquire) {
            Err(Error::closed(
                "the object was closed because an earlier call on it panicked",
            ))
        } else {
            Ok(())
        }
    }

    /// Runs `f` on the object; if it panics, the fuse blows and the panic
    /// carries on to the entry point's guard.
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        struct BlowOnUnwind<'a>(&'a AtomicBool);
        impl Drop for BlowOnUnwind<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let armed = BlowOnUnwind(&self.blown);
        let result = f();
        core::mem::forget(armed);
        result
    }

    #[cfg(test)]
    pub(crate) fn is_blown(&self) -> bool {
        self.blown.load(Ordering::Acquire)
    }
}

/// The real panic boundary and [`Fuse`], for the loom models in
/// `loom-tests/` (a separate crate, which sees only public items).
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model {
    use super::{status, Fuse};
    use crate::ffi::spw_status;

    /// One object's fuse, called the way every entry point calls it.
    #[derive(Debug)]
    pub struct Object(Fuse);

    impl Default for Object {
        fn default() -> Self {
            Self(Fuse::new())
        }
    }

    impl Object {
        /// What an entry point on this object returns when its work is
        /// `work`: `SPW_ERR_CLOSED` once an earlier call panicked,
        /// `SPW_ERR_PANIC` when `work` panics, else `SPW_OK`.
        pub fn call(&self, work: impl FnOnce()) -> spw_status {
            status("spw_loom_call", || {
                self.0.check()?;
                self.0.run(work);
                Ok(())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::last_error_string;

    #[test]
    fn ok_returns_ok_and_clears_the_last_error() {
        set_last_error("stale");
        assert_eq!(status("spw_t", || Ok(())), spw_status::SPW_OK);
        assert_eq!(last_error_string(), "");
    }

    #[test]
    fn error_returns_its_status_and_a_message_naming_the_function() {
        let st = status("spw_t_push", || Err(Error::null("r")));
        assert_eq!(st, spw_status::SPW_ERR_NULL);
        assert_eq!(last_error_string(), "spw_t_push: r is NULL");
    }

    #[test]
    fn panic_is_caught_and_reported() {
        let st = status("spw_t_boom", || panic!("kaboom {}", 42));
        assert_eq!(st, spw_status::SPW_ERR_PANIC);
        assert_eq!(last_error_string(), "spw_t_boom: internal panic: kaboom 42");

        let st = status("spw_t_static", || panic!("static text"));
        assert_eq!(st, spw_status::SPW_ERR_PANIC);
        assert_eq!(
            last_error_string(),
            "spw_t_static: internal panic: static text"
        );

        let st = status("spw_t_any", || std::panic::panic_any(7_u32));
        assert_eq!(st, spw_status::SPW_ERR_PANIC);
        assert_eq!(
            last_error_string(),
            "spw_t_any: internal panic: (no message)"
        );
    }

    #[test]
    fn value_and_void_report_like_status() {
        assert_eq!(value("spw_t_len", 0_usize, || Ok(5)), 5);
        assert_eq!(last_error_string(), "");
        assert_eq!(value("spw_t_len", 0_usize, || Err(Error::null("r"))), 0);
        assert_eq!(last_error_string(), "spw_t_len: r is NULL");
        assert_eq!(value::<usize>("spw_t_len", 9, || panic!("p")), 9);
        assert_eq!(last_error_string(), "spw_t_len: internal panic: p");

        void("spw_t_free", || Ok(()));
        assert_eq!(last_error_string(), "");
        void("spw_t_free", || panic!("in free"));
        assert_eq!(last_error_string(), "spw_t_free: internal panic: in free");
        void("spw_t_free", || Ok(()));
    }

    #[test]
    fn a_panic_inside_fuse_run_closes_the_object_for_later_calls() {
        let fuse = Fuse::new();
        assert_eq!(status("spw_t_a", || fuse.check()), spw_status::SPW_OK);
        assert_eq!(fuse.run(|| 3), 3);
        assert!(!fuse.is_blown());

        let st = status("spw_t_a", || {
            fuse.check()?;
            fuse.run(|| panic!("half-updated"))
        });
        assert_eq!(st, spw_status::SPW_ERR_PANIC);
        assert!(fuse.is_blown());

        let st = status("spw_t_a", || fuse.check());
        assert_eq!(st, spw_status::SPW_ERR_CLOSED);
        let msg = last_error_string();
        assert!(msg.starts_with("spw_t_a: "), "{msg}");
        assert!(msg.contains("panicked"), "{msg}");
    }

    #[test]
    fn an_error_inside_fuse_run_does_not_close_the_object() {
        let fuse = Fuse::new();
        let st = status("spw_t_a", || fuse.run(|| Err(Error::invalid("bad"))));
        assert_eq!(st, spw_status::SPW_ERR_INVALID);
        assert!(!fuse.is_blown());
    }
}
