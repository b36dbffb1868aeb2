//! The one switch between real synchronisation primitives and loom's models.
//!
//! Every module of the crate takes its atomics, locks, cells and threads from
//! here, so that `RUSTFLAGS="--cfg loom"` model-checks the very code that ships.
//! Without `cfg(loom)` this is `core` atomics, `parking_lot` and `std::thread`;
//! with it, loom's counterparts wrapped to the same small API (parking_lot's
//! shape: no poisoning, `Condvar::wait(&mut guard)`).
//!
//! Nothing else in `src/` names loom. Policy built on these primitives
//! lives elsewhere (`backoff.rs`, `join.rs`).

#![allow(dead_code, unused_imports)] // not every primitive is used in every configuration

pub(crate) use imp::*;

/// Reference counting for long-lived objects handed around as trait objects
/// (engine tasks, timer entries, registry entries). loom's `Arc` has neither
/// `Weak` nor unsized coercion, and these counts guard no data hand-over, so
/// both configurations use std's here; the protocols they point at still use
/// the primitives above.
pub(crate) mod rc {
    pub(crate) use std::sync::{Arc, Weak};
}

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::Arc;

    pub(crate) mod atomic {
        pub(crate) use core::sync::atomic::{
            fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering,
        };
    }

    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};

    pub(crate) mod thread {
        pub(crate) use std::thread::{current, panicking, spawn, yield_now, Builder, JoinHandle};
    }

    /// A hint that we are busy-waiting; under loom it yields to other threads.
    #[inline]
    pub(crate) fn spin_loop() {
        core::hint::spin_loop();
    }

    /// `core::cell::UnsafeCell` with loom's closure-based access, so the same
    /// code compiles against both and loom can track every access.
    #[derive(Debug)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(core::cell::UnsafeCell::new(value))
        }

        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
mod imp {
    use std::time::{Duration, Instant};

    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::Arc;

    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{
            fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering,
        };
    }

    pub(crate) mod thread {
        pub(crate) use loom::thread::{current, spawn, yield_now, Builder, JoinHandle};
        pub(crate) use std::thread::panicking;
    }

    /// Under loom a spin is a yield, so busy loops do not explode the model.
    #[inline]
    pub(crate) fn spin_loop() {
        loom::hint::spin_loop();
    }

    /// loom's mutex with parking_lot's API: `lock()` returns the guard
    /// directly (a model that panics fails anyway, so poisoning is moot).
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// Guard of [`Mutex`]; the `Option` lets [`Condvar::wait`] hand the inner
    /// guard to loom and put the returned one back.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|g| MutexGuard(Some(g)))
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T> core::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0
                .as_ref()
                .expect("guard is only empty inside Condvar::wait")
        }
    }

    impl<T> core::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0
                .as_mut()
                .expect("guard is only empty inside Condvar::wait")
        }
    }

    /// Result of a timed wait, as parking_lot reports it.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    /// loom's condition variable with parking_lot's API. Loom does not model
    /// time: a timed wait is an untimed one, so no model may rely on a timeout
    /// to make progress.
    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard present");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }

        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }

        pub(crate) fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _timeout: Duration,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }
}
