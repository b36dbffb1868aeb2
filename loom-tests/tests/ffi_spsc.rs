//! Loom model of the C SPSC ring's push-versus-close protocol
//! (`src/ffi/spsc.rs`, "A push racing a close"): a push counts itself and
//! runs the light half of the fence pair before the ring looks at `closed`;
//! a consumer that saw the ring closed and empty runs the heavy half once
//! and then reads the count. A push that returned `SPW_OK` must be popped,
//! one that returned `SPW_ERR_CLOSED` must not. Fails without the heavy
//! half: `loom-tests/breakage.sh`.
#![cfg(loom)]

use core::ffi::c_void;
use std::ptr;

use loom::thread;
use spillway::ffi::{
    spw_spsc, spw_spsc_close, spw_spsc_free, spw_spsc_new, spw_spsc_pop_timeout, spw_spsc_push,
    spw_status,
};

/// The ring's pointer, moved to the producer and closer threads. The C
/// contract allows it: one producer thread, one consumer thread (this
/// one), and `spw_spsc_close` from any thread; the ring is freed only
/// after both threads are joined.
#[derive(Clone, Copy)]
struct Ring(*mut spw_spsc);
// SAFETY: see the type's docs; every call below keeps the C threading rules.
unsafe impl Send for Ring {}

#[test]
fn a_push_racing_a_close_is_popped_exactly_when_it_succeeded() {
    loom::model(|| {
        let mut raw: *mut spw_spsc = ptr::null_mut();
        // SAFETY: `raw` is valid for writing one pointer.
        let st = unsafe { spw_spsc_new(2, 8, &mut raw) };
        assert_eq!(st, spw_status::SPW_OK);
        let ring = Ring(raw);
        let producer = thread::spawn(move || {
            let ring = ring;
            let v = 7u64;
            // SAFETY: a live ring, this is its one producer thread, `v` is
            // 8 readable bytes.
            unsafe { spw_spsc_push(ring.0, ptr::from_ref(&v).cast::<c_void>()) }
        });
        let closer = thread::spawn(move || {
            let ring = ring;
            // SAFETY: a live ring; close may come from any thread.
            unsafe { spw_spsc_close(ring.0) }
        });
        let mut got = Vec::new();
        loop {
            let mut out = 0u64;
            // SAFETY: a live ring, this is its one consumer thread, `out`
            // is 8 writable bytes. UINT64_MAX: wait until an element comes
            // or the ring is closed and drained.
            let st = unsafe {
                spw_spsc_pop_timeout(ring.0, ptr::from_mut(&mut out).cast::<c_void>(), u64::MAX)
            };
            match st {
                spw_status::SPW_OK => got.push(out),
                spw_status::SPW_ERR_CLOSED => break,
                other => panic!("pop: {other:?}"),
            }
        }
        let pushed = producer.join().unwrap();
        assert_eq!(closer.join().unwrap(), spw_status::SPW_OK);
        let expect: Vec<u64> = if pushed == spw_status::SPW_OK {
            vec![7]
        } else {
            assert_eq!(pushed, spw_status::SPW_ERR_CLOSED);
            Vec::new()
        };
        assert_eq!(got, expect, "push said {pushed:?}");
        // SAFETY: both threads are joined; nobody uses the ring any more.
        unsafe { spw_spsc_free(ring.0) };
    });
}
