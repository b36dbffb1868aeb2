//! Loom models of the C layer's gate: the guard every entry point runs in
//! and the per-object fuse that closes an object once one of its calls
//! panicked (`src/ffi/guard.rs`).
//!
//! The models run the real guard and fuse; a panic is injected into the
//! work of one call, as a bug in the library would panic there.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use spillway::ffi::loom_model::Object;
use spillway::ffi::spw_status;

/// Keeps the injected panics' messages out of the test output.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// A call that panics and a call racing it: the racing call either ran
/// (before the fuse blew) or was refused, never both, and once the panicking
/// call has returned every later call is refused.
#[test]
fn a_racing_call_runs_or_is_refused_and_later_calls_are_refused() {
    quiet_panics();
    loom::model(|| {
        let object = Arc::new(Object::default());
        let ran = Arc::new(AtomicUsize::new(0));
        let panicking = {
            let object = Arc::clone(&object);
            thread::spawn(move || object.call(|| panic!("injected")))
        };
        let racing = {
            let (object, ran) = (Arc::clone(&object), Arc::clone(&ran));
            thread::spawn(move || object.call(|| _ = ran.fetch_add(1, Ordering::Relaxed)))
        };
        assert_eq!(panicking.join().unwrap(), spw_status::SPW_ERR_PANIC);
        let raced = racing.join().unwrap();
        let ran = ran.load(Ordering::Relaxed);
        match raced {
            spw_status::SPW_OK => assert_eq!(ran, 1),
            spw_status::SPW_ERR_CLOSED => assert_eq!(ran, 0),
            other => panic!("the racing call returned {other:?}"),
        }
        assert_eq!(object.call(|| ()), spw_status::SPW_ERR_CLOSED);
    });
}

/// The fuse is blown before the panicking call returns to C: a thread that
/// learns of that return (here through a flag, in C through any
/// synchronisation) and then calls is refused, and its work never runs.
#[test]
fn a_call_after_the_panic_was_reported_is_refused() {
    quiet_panics();
    loom::model(|| {
        let object = Arc::new(Object::default());
        let reported = Arc::new(AtomicBool::new(false));
        let panicking = {
            let (object, reported) = (Arc::clone(&object), Arc::clone(&reported));
            thread::spawn(move || {
                let status = object.call(|| panic!("injected"));
                reported.store(true, Ordering::Release);
                status
            })
        };
        let later = {
            let (object, reported) = (Arc::clone(&object), Arc::clone(&reported));
            thread::spawn(move || {
                while !reported.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                object.call(|| panic!("work ran on a closed object"))
            })
        };
        assert_eq!(panicking.join().unwrap(), spw_status::SPW_ERR_PANIC);
        assert_eq!(later.join().unwrap(), spw_status::SPW_ERR_CLOSED);
    });
}
