//! Tests of `spw_spsc` through its C entry points.

use super::*;
use crate::ffi::error::last_error_string;
use core::ptr::null_mut;

fn new_spsc(capacity: usize, elem_size: usize) -> *mut spw_spsc {
    let mut r = null_mut();
    // SAFETY: &mut r is valid for writing one pointer.
    let st = unsafe { spw_spsc_new(capacity, elem_size, &mut r) };
    assert_eq!(st, spw_status::SPW_OK, "{}", last_error_string());
    r
}

#[test]
fn sizes_are_checked_before_anything_is_allocated() {
    let mut r = null_mut();
    for (cap, size, want) in [
        (0, 4, "spw_spsc_new: capacity must be at least 1"),
        (4, 0, "spw_spsc_new: elem_size must be at least 1"),
        (
            usize::MAX,
            2,
            "spw_spsc_new: capacity * elem_size (18446744073709551615 * 2) is larger than any object can be",
        ),
    ] {
        // SAFETY: &mut r is valid for writing one pointer.
        let st = unsafe { spw_spsc_new(cap, size, &mut r) };
        assert_eq!(st, spw_status::SPW_ERR_INVALID);
        assert_eq!(last_error_string(), want);
        assert!(r.is_null());
    }
}

#[test]
fn len_counts_whole_elements_from_both_sides() {
    let r = new_spsc(4, 2);
    let elems = [1_u8, 2, 3, 4, 5, 6];
    let mut out = [0_u8; 8];
    // SAFETY: r is live and this thread is both producer and consumer;
    // the buffers hold the element counts passed.
    unsafe {
        assert_eq!(spw_spsc_push_n(r, elems.as_ptr().cast(), 3), 3);
        assert_eq!(spw_spsc_len(r), 3);
        assert_eq!(spw_spsc_pop_n(r, out.as_mut_ptr().cast(), 2), 2);
        assert_eq!(spw_spsc_len(r), 1);
        assert_eq!(&out[..4], &[1, 2, 3, 4]);
        assert_eq!(spw_spsc_pop(r, out.as_mut_ptr().cast()), spw_status::SPW_OK);
        assert_eq!(&out[..2], &[5, 6]);
        assert_eq!(spw_spsc_len(r), 0);
        spw_spsc_free(r);
    }
}

/// A ring pointer that test threads share, as C threads would.
#[derive(Clone, Copy)]
struct Shared(*mut spw_spsc);
// SAFETY: the tests keep the C contract: one producer thread, one
// consumer thread, close from anywhere, free after every join.
unsafe impl Send for Shared {}

#[test]
fn after_a_close_pushes_fail_and_pops_drain_then_say_closed() {
    let r = new_spsc(4, 2);
    let mut out = [0_u8; 8];
    // SAFETY: r is live and this thread is both producer and consumer;
    // the buffers hold the element counts passed.
    unsafe {
        assert_eq!(spw_spsc_push_n(r, [1_u8, 2, 3, 4].as_ptr().cast(), 2), 2);
        assert_eq!(spw_spsc_close(r), spw_status::SPW_OK);
        assert_eq!(last_error_string(), "");
        assert_eq!(spw_spsc_close(r), spw_status::SPW_OK); // again: nothing more
        assert_eq!(spw_spsc_close(null_mut()), spw_status::SPW_ERR_NULL);
        assert_eq!(last_error_string(), "spw_spsc_close: r is NULL");

        let elem = [9_u8, 9];
        let st = spw_spsc_push(r, elem.as_ptr().cast());
        assert_eq!(st, spw_status::SPW_ERR_CLOSED);
        assert_eq!(last_error_string(), "spw_spsc_push: ring is closed");
        for timeout in [50, u64::MAX] {
            let st = spw_spsc_push_timeout(r, elem.as_ptr().cast(), timeout);
            assert_eq!(st, spw_status::SPW_ERR_CLOSED);
            assert_eq!(last_error_string(), "spw_spsc_push_timeout: ring is closed");
        }
        assert_eq!(spw_spsc_push_n(r, elem.as_ptr().cast(), 1), 0);
        assert_eq!(last_error_string(), "spw_spsc_push_n: ring is closed");
        assert_eq!(spw_spsc_push_n(r, core::ptr::null(), 0), 0);
        assert_eq!(last_error_string(), "spw_spsc_push_n: ring is closed");
        assert_eq!(spw_spsc_len(r), 2);

        // What was pushed before the close comes out, in order.
        assert_eq!(spw_spsc_pop(r, out.as_mut_ptr().cast()), spw_status::SPW_OK);
        assert_eq!(&out[..2], &[1, 2]);
        assert_eq!(spw_spsc_pop_n(r, out.as_mut_ptr().cast(), 4), 1);
        assert_eq!(last_error_string(), "");
        assert_eq!(&out[..2], &[3, 4]);

        // Then: closed, not empty; and no waiting.
        out = [7; 8];
        let st = spw_spsc_pop(r, out.as_mut_ptr().cast());
        assert_eq!(st, spw_status::SPW_ERR_CLOSED);
        assert_eq!(
            last_error_string(),
            "spw_spsc_pop: ring is closed and empty"
        );
        for timeout in [1, 60_000, u64::MAX] {
            let st = spw_spsc_pop_timeout(r, out.as_mut_ptr().cast(), timeout);
            assert_eq!(st, spw_status::SPW_ERR_CLOSED);
            assert_eq!(
                last_error_string(),
                "spw_spsc_pop_timeout: ring is closed and empty"
            );
        }
        assert_eq!(spw_spsc_pop_n(r, out.as_mut_ptr().cast(), 4), 0);
        assert_eq!(
            last_error_string(),
            "spw_spsc_pop_n: ring is closed and empty"
        );
        assert_eq!(out, [7; 8]);
        assert_eq!(spw_spsc_len(r), 0);
        spw_spsc_free(r);
    }
}

#[test]
fn a_close_from_a_third_thread_wakes_both_waiting_sides() {
    let full = Shared(new_spsc(1, 4));
    let empty = Shared(new_spsc(1, 4));
    // SAFETY: this thread is `full`'s producer until the spawn below.
    let st = unsafe { spw_spsc_push(full.0, b"abcd".as_ptr().cast()) };
    assert_eq!(st, spw_status::SPW_OK);
    // Each side waits without a deadline; only the close can end it,
    // whether it comes before or during the wait.
    let producer = std::thread::spawn(move || {
        let full = full;
        // SAFETY: this thread is now `full`'s only producer.
        let st = unsafe { spw_spsc_push_timeout(full.0, b"efgh".as_ptr().cast(), u64::MAX) };
        (st, last_error_string())
    });
    let consumer = std::thread::spawn(move || {
        let empty = empty;
        let mut out = [0_u8; 4];
        // SAFETY: this thread is `empty`'s only consumer.
        let st = unsafe { spw_spsc_pop_timeout(empty.0, out.as_mut_ptr().cast(), u64::MAX) };
        (st, last_error_string())
    });
    let closer = std::thread::spawn(move || {
        let (full, empty) = (full, empty);
        // SAFETY: both rings are live until the joins below.
        unsafe { (spw_spsc_close(full.0), spw_spsc_close(empty.0)) }
    });
    assert_eq!(
        closer.join().unwrap(),
        (spw_status::SPW_OK, spw_status::SPW_OK)
    );
    assert_eq!(
        producer.join().unwrap(),
        (
            spw_status::SPW_ERR_CLOSED,
            "spw_spsc_push_timeout: ring is closed".to_owned()
        )
    );
    assert_eq!(
        consumer.join().unwrap(),
        (
            spw_status::SPW_ERR_CLOSED,
            "spw_spsc_pop_timeout: ring is closed and empty".to_owned()
        )
    );
    let mut out = [0_u8; 4];
    // SAFETY: every other thread has been joined; this one is both sides.
    unsafe {
        let st = spw_spsc_pop(full.0, out.as_mut_ptr().cast());
        assert_eq!(st, spw_status::SPW_OK);
        assert_eq!(&out, b"abcd");
        spw_spsc_free(full.0);
        spw_spsc_free(empty.0);
    }
}

#[test]
fn every_push_that_succeeds_is_popped_even_when_a_third_thread_closes() {
    // The close lands at a different point of the producer's pushes in
    // each round; conservation must hold in every one: the consumer gets
    // exactly the elements whose push returned SPW_OK, in order, and then
    // SPW_ERR_CLOSED.
    for round in 0..200_u32 {
        let r = Shared(new_spsc(8, 4));
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let producer = std::thread::spawn(move || {
            let r = r;
            let mut ok = 0_u32;
            for i in 0.. {
                if i == round % 16 {
                    go_tx.send(()).unwrap(); // let the closer go
                }
                let elem = i.to_le_bytes();
                // SAFETY: this thread is r's only producer.
                let st = unsafe { spw_spsc_push_timeout(r.0, elem.as_ptr().cast(), u64::MAX) };
                match st {
                    spw_status::SPW_OK => ok += 1,
                    spw_status::SPW_ERR_CLOSED => return ok,
                    other => panic!("push: {other:?}: {}", last_error_string()),
                }
            }
            unreachable!()
        });
        let consumer = std::thread::spawn(move || {
            let r = r;
            let mut got = Vec::new();
            let mut out = [0_u8; 4];
            loop {
                // SAFETY: this thread is r's only consumer.
                let st = unsafe { spw_spsc_pop_timeout(r.0, out.as_mut_ptr().cast(), u64::MAX) };
                match st {
                    spw_status::SPW_OK => got.push(u32::from_le_bytes(out)),
                    spw_status::SPW_ERR_CLOSED => return got,
                    other => panic!("pop: {other:?}: {}", last_error_string()),
                }
            }
        });
        go_rx.recv().unwrap();
        // SAFETY: r is live until the joins below.
        assert_eq!(unsafe { spw_spsc_close(r.0) }, spw_status::SPW_OK);
        let pushed = producer.join().unwrap();
        let popped = consumer.join().unwrap();
        assert_eq!(popped, (0..pushed).collect::<Vec<_>>(), "round {round}");
        // SAFETY: both threads are joined.
        unsafe {
            assert_eq!(spw_spsc_len(r.0), 0);
            spw_spsc_free(r.0);
        }
    }
}

#[test]
fn a_panic_on_one_side_wakes_the_other() {
    let r = Shared(new_spsc(2, 1));
    let consumer = std::thread::spawn(move || {
        let r = r;
        let mut out = [0_u8];
        // SAFETY: this thread is r's only consumer.
        let st = unsafe { spw_spsc_pop_timeout(r.0, out.as_mut_ptr().cast(), u64::MAX) };
        (st, last_error_string())
    });
    // SAFETY: r is live; this thread is its producer.
    let st = unsafe {
        guard::status("spw_spsc_push", || {
            let ring = ptr::handle(r.0, "r")?;
            ring.with_producer(|_| panic!("injected"))
        })
    };
    assert_eq!(st, spw_status::SPW_ERR_PANIC);
    let (st, msg) = consumer.join().unwrap();
    assert_eq!(st, spw_status::SPW_ERR_CLOSED);
    assert!(msg.starts_with("spw_spsc_pop_timeout: "), "{msg}");
    // SAFETY: the consumer is joined.
    unsafe { spw_spsc_free(r.0) };
}

#[test]
fn a_panic_on_one_side_closes_the_ring_for_both() {
    let r = new_spsc(2, 1);
    // SAFETY: r is live and this thread is both producer and consumer.
    unsafe {
        assert_eq!(spw_spsc_push(r, b"a".as_ptr().cast()), spw_status::SPW_OK);
        let st = guard::status("spw_spsc_push", || {
            let ring = ptr::handle(r, "r")?;
            ring.with_producer(|_| panic!("injected"))
        });
        assert_eq!(st, spw_status::SPW_ERR_PANIC);
        assert_eq!(
            last_error_string(),
            "spw_spsc_push: internal panic: injected"
        );

        let mut out = [9_u8];
        let st = spw_spsc_pop(r, out.as_mut_ptr().cast());
        assert_eq!(st, spw_status::SPW_ERR_CLOSED);
        assert!(last_error_string().starts_with("spw_spsc_pop: "));
        assert_eq!(out, [9]);
        let st = spw_spsc_push(r, b"b".as_ptr().cast());
        assert_eq!(st, spw_status::SPW_ERR_CLOSED);
        assert_eq!(spw_spsc_push_n(r, b"b".as_ptr().cast(), 1), 0);
        assert!(last_error_string().contains("panicked"));
        assert_eq!(spw_spsc_len(r), 0);
        spw_spsc_free(r);
        assert_eq!(last_error_string(), "");
    }
}
