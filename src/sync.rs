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

/// Asymmetric fences: a pair of barriers that together order like one
/// `fence(SeqCst)` on each side, for a protocol where one side runs on every
/// operation and the other rarely (a publisher against a side about to
/// sleep, a producer handle against `close`).
///
/// [`light_fence`] is what the frequent side runs: with `membarrier` it is a
/// compiler fence, free at run time. [`heavy_fence`] is what the rare side
/// runs: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every
/// running thread of the process execute a full memory barrier before it
/// returns (an interrupt on each CPU that runs one), and is itself a full
/// barrier for the caller. So whatever a light side did before its compiler
/// fence is visible to the heavy side after its barrier, or the light side's
/// loads after its compiler fence run after the barrier and see what the
/// heavy side stored before it: the two cases a pair of `SeqCst` fences
/// gives, and the only property the protocols here rely on.
///
/// Without `membarrier` (not Linux, a kernel before 4.14, or a seccomp
/// filter that refuses it) both are `fence(SeqCst)`. The choice is made once
/// per process, by [`prepare_asymmetric_fences`] (each ring calls it when
/// made, so hot paths find it decided) or by the first heavy fence, and never
/// changes back: a light side that still sees "undecided" runs a full fence,
/// which pairs with either kind of heavy fence.
#[cfg(not(loom))]
mod asymmetric {
    use core::sync::atomic::{compiler_fence, fence, AtomicU8, Ordering};
    use std::sync::Once;

    const UNDECIDED: u8 = 0;
    const MEMBARRIER: u8 = 1;
    const FENCES: u8 = 2;

    static MODE: AtomicU8 = AtomicU8::new(UNDECIDED);
    static DECIDE: Once = Once::new();

    /// The frequent side's half: a compiler fence once `membarrier` is
    /// registered, else a full fence.
    #[inline(always)]
    pub(crate) fn light_fence() {
        // Relaxed: the value only picks which fence runs. MEMBARRIER is
        // stored once registration succeeded and never changes, and every
        // heavy fence decides (or waits for the decision) before it runs,
        // so a light side that reads MEMBARRIER pairs with a membarrier.
        if MODE.load(Ordering::Relaxed) == MEMBARRIER {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The rare side's half: `membarrier` once registered, else a full fence.
    #[inline]
    pub(crate) fn heavy_fence() {
        prepare_asymmetric_fences();
        if MODE.load(Ordering::Relaxed) == MEMBARRIER && expedited_barrier() {
            return;
        }
        fence(Ordering::SeqCst);
    }

    /// Decides once per process whether `membarrier` is there to use.
    pub(crate) fn prepare_asymmetric_fences() {
        DECIDE.call_once(|| {
            let mode = if register() { MEMBARRIER } else { FENCES };
            MODE.store(mode, Ordering::Relaxed);
        });
    }

    #[cfg(target_os = "linux")]
    fn register() -> bool {
        use rustix::thread::{membarrier, membarrier_query, MembarrierCommand, MembarrierQuery};
        let supported = membarrier_query();
        supported.contains(
            MembarrierQuery::PRIVATE_EXPEDITED | MembarrierQuery::REGISTER_PRIVATE_EXPEDITED,
        ) && membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
    }

    #[cfg(not(target_os = "linux"))]
    fn register() -> bool {
        false
    }

    /// The barrier itself. After a successful registration the kernel has no
    /// reason to refuse it (its errors are "not registered" and "unknown
    /// command"); if it ever did, light sides may already have run bare
    /// compiler fences, so nothing short of the barrier is sound: say so
    /// loudly rather than return as if ordered.
    #[cfg(target_os = "linux")]
    fn expedited_barrier() -> bool {
        use rustix::thread::{membarrier, MembarrierCommand};
        match membarrier(MembarrierCommand::PrivateExpedited) {
            Ok(()) => true,
            Err(e) => panic!("membarrier(PRIVATE_EXPEDITED) failed after registration: {e}"),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn expedited_barrier() -> bool {
        false
    }

    /// Which fences this process uses, for tests and benchmarks.
    #[cfg(test)]
    pub(crate) fn uses_membarrier() -> bool {
        prepare_asymmetric_fences();
        MODE.load(Ordering::Relaxed) == MEMBARRIER
    }
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

    pub(crate) use super::asymmetric::{heavy_fence, light_fence, prepare_asymmetric_fences};

    /// The lock's own heavy fence; the same as [`heavy_fence`] outside
    /// loom (under loom the breakage check tells them apart).
    #[inline]
    pub(crate) fn lock_heavy_fence() {
        heavy_fence();
    }

    pub(crate) mod thread {
        pub(crate) use std::thread::{
            current, panicking, spawn, yield_now, Builder, JoinHandle, ThreadId,
        };
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
        pub(crate) use loom::thread::{current, spawn, yield_now, Builder, JoinHandle, ThreadId};
        pub(crate) use std::thread::panicking;
    }

    /// Both halves of the asymmetric pair are a full fence under loom: loom
    /// cannot model `membarrier`, and a `SeqCst` fence on each side is the
    /// ordering the pair stands for, so the models prove the same protocol.
    #[inline]
    pub(crate) fn light_fence() {
        loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
    }

    /// See [`light_fence`]. Built with `--cfg spillway_break_heavy_fence`,
    /// it does nothing: the test command checks that loom then finds the
    /// lost wake-up, so the models are known to depend on this fence.
    #[inline]
    pub(crate) fn heavy_fence() {
        if !broken(false) {
            loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
        }
    }

    /// [`heavy_fence`] for `ring::fence_lock`, which nearly every protocol
    /// runs on: breaking it makes any model with a contended lock deadlock,
    /// whatever else it checks. So the breakage check takes the two apart:
    /// with `SPILLWAY_BROKEN_FENCE=lock` in the environment only this one
    /// does nothing, without it every other one.
    #[inline]
    pub(crate) fn lock_heavy_fence() {
        if !broken(true) {
            loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Whether the heavy fence of the lock (`lock`) or of the other
    /// protocols is left out in this build and run.
    fn broken(lock: bool) -> bool {
        if !cfg!(spillway_break_heavy_fence) {
            return false;
        }
        let lock_broken = std::env::var_os("SPILLWAY_BROKEN_FENCE").is_some_and(|v| v == "lock");
        lock == lock_broken
    }

    /// Nothing to decide under loom.
    pub(crate) fn prepare_asymmetric_fences() {}

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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::asymmetric::uses_membarrier;
    use super::{heavy_fence, light_fence};

    /// The mode is decided once and stays; both halves run in either mode.
    /// Where the kernel offers membarrier (Linux 4.14+ without a seccomp
    /// filter against it), the test command sets SPILLWAY_EXPECT_MEMBARRIER
    /// so that a silent fallback to full fences cannot go unnoticed.
    #[test]
    fn fence_mode_is_decided_once() {
        let first = uses_membarrier();
        heavy_fence();
        light_fence();
        assert_eq!(uses_membarrier(), first);
        if std::env::var_os("SPILLWAY_EXPECT_MEMBARRIER").is_some() {
            assert!(first, "membarrier(PRIVATE_EXPEDITED) is not available here");
        }
    }
}
