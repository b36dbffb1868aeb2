//! Behaviour of `LockingRing`: every method and error (messages included),
//! capacity 1, a model-based property test, drop counting on every path that
//! moves items, deadlines, and multi-threaded stress runs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use spillway::ring::{
    ClosedError, LockingRing, PopClosedError, PopTimeoutError, PushTimeoutError, TryPopError,
    TryPushError,
};

const LONG: Duration = Duration::from_secs(60);

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn ring_is_send_and_sync_for_send_items() {
    // `Cell` is Send but not Sync: the ring must still be shareable.
    assert_send_sync::<LockingRing<std::cell::Cell<u8>>>();
    assert_send_sync::<LockingRing<Vec<u8>>>();
}

#[test]
#[should_panic(expected = "LockingRing capacity must be at least 1")]
fn zero_capacity_panics() {
    let _ = LockingRing::<u8>::new(0);
}

#[test]
fn accessors_report_state() {
    let ring = LockingRing::new(3);
    assert_eq!(ring.capacity(), 3);
    assert_eq!(ring.len(), 0);
    assert!(ring.is_empty());
    assert!(!ring.is_closed());
    ring.push(1).unwrap();
    ring.push(2).unwrap();
    assert_eq!(ring.len(), 2);
    assert!(!ring.is_empty());
    ring.close();
    assert!(ring.is_closed());
    assert_eq!(ring.len(), 2, "close keeps the items");
    assert_eq!(ring.capacity(), 3);
}

#[test]
fn fifo_order_through_every_pop_kind() {
    let ring = LockingRing::new(8);
    for i in 0..8 {
        ring.try_push(i).unwrap();
    }
    assert_eq!(ring.try_pop(), Ok(0));
    assert_eq!(ring.pop(), Ok(1));
    assert_eq!(ring.pop_timeout(LONG), Ok(2));
    let mut out = vec![99];
    assert_eq!(ring.pop_batch(&mut out, 2), Ok(2));
    assert_eq!(out, [99, 3, 4], "pop_batch appends");
    assert_eq!(ring.take_all(), [5, 6, 7]);
}

#[test]
fn try_push_full_and_closed_give_the_item_back() {
    let ring = LockingRing::new(2);
    assert_eq!(ring.try_push(String::from("a")), Ok(()));
    assert_eq!(ring.try_push(String::from("b")), Ok(()));
    let err = ring.try_push(String::from("c")).unwrap_err();
    assert_eq!(err, TryPushError::Full(String::from("c")));
    assert_eq!(err.to_string(), "ring is full");
    assert_eq!(format!("{err:?}"), "Full(..)");
    assert_eq!(err.into_inner(), "c");
    ring.close();
    let err = ring.try_push(String::from("d")).unwrap_err();
    assert_eq!(err.to_string(), "ring is closed");
    assert_eq!(format!("{err:?}"), "Closed(..)");
    assert_eq!(err.into_inner(), "d");
    assert_eq!(ring.len(), 2);
}

#[test]
fn closed_ring_refuses_every_push_kind() {
    let ring = LockingRing::new(2);
    ring.push(1).unwrap();
    ring.close();
    let err = ring.push(2).unwrap_err();
    assert_eq!(err, ClosedError(2));
    assert_eq!(err.to_string(), "ring is closed");
    assert_eq!(format!("{err:?}"), "ClosedError(..)");
    assert_eq!(err.into_inner(), 2);
    assert_eq!(ring.push_timeout(3, LONG), Err(PushTimeoutError::Closed(3)));
    assert_eq!(ring.try_push(4), Err(TryPushError::Closed(4)));
    assert_eq!(ring.force_push(5), Err(ClosedError(5)));
    // Nothing was evicted or added by the failed pushes.
    assert_eq!(ring.take_all(), [1]);
}

#[test]
fn pops_drain_a_closed_ring_then_report_closed() {
    let ring = LockingRing::new(4);
    for i in 0..4 {
        ring.push(i).unwrap();
    }
    ring.close();
    assert_eq!(ring.try_pop(), Ok(0));
    assert_eq!(ring.pop(), Ok(1));
    assert_eq!(ring.pop_timeout(LONG), Ok(2));
    let mut out = Vec::new();
    assert_eq!(ring.pop_batch(&mut out, 10), Ok(1));
    assert_eq!(out, [3]);

    let err = ring.try_pop().unwrap_err();
    assert_eq!(err, TryPopError::Closed);
    assert_eq!(err.to_string(), "ring is closed and drained");
    let err = ring.pop().unwrap_err();
    assert_eq!(err, PopClosedError);
    assert_eq!(err.to_string(), "ring is closed and drained");
    let err = ring.pop_timeout(LONG).unwrap_err();
    assert_eq!(err, PopTimeoutError::Closed);
    assert_eq!(err.to_string(), "ring is closed and drained");
    assert_eq!(ring.pop_batch(&mut out, 10), Err(TryPopError::Closed));
    assert_eq!(out, [3], "a failed pop_batch leaves `out` alone");
    assert!(ring.take_all().is_empty());
}

#[test]
fn empty_errors_and_messages() {
    let ring = LockingRing::<u8>::new(1);
    let err = ring.try_pop().unwrap_err();
    assert_eq!(err, TryPopError::Empty);
    assert_eq!(err.to_string(), "ring is empty");
    let mut out = Vec::new();
    assert_eq!(ring.pop_batch(&mut out, 4), Err(TryPopError::Empty));
    assert!(out.is_empty());
    let err: Box<dyn std::error::Error> = Box::new(TryPopError::Empty);
    assert_eq!(err.to_string(), "ring is empty");
}

#[test]
fn close_is_idempotent() {
    let ring = LockingRing::new(1);
    ring.push(1).unwrap();
    ring.close();
    ring.close();
    assert!(ring.is_closed());
    assert_eq!(ring.pop(), Ok(1));
    ring.close();
    assert_eq!(ring.pop(), Err(PopClosedError));
}

#[test]
fn capacity_one() {
    let ring = LockingRing::new(1);
    assert_eq!(ring.try_push('a'), Ok(()));
    assert_eq!(ring.try_push('b'), Err(TryPushError::Full('b')));
    assert_eq!(
        ring.push_timeout('b', Duration::ZERO),
        Err(PushTimeoutError::Timeout('b'))
    );
    assert_eq!(ring.force_push('c'), Ok(Some('a')));
    assert_eq!(ring.force_push('d'), Ok(Some('c')));
    assert_eq!(ring.len(), 1);
    assert_eq!(ring.pop(), Ok('d'));
    assert_eq!(ring.try_pop(), Err(TryPopError::Empty));
    assert_eq!(ring.force_push('e'), Ok(None));
    let mut out = Vec::new();
    assert_eq!(ring.pop_batch(&mut out, usize::MAX), Ok(1));
    assert_eq!(out, ['e']);
}

#[test]
fn force_push_evicts_oldest_only_when_full() {
    let ring = LockingRing::new(3);
    for i in 0..3 {
        assert_eq!(ring.force_push(i), Ok(None));
    }
    assert_eq!(ring.force_push(3), Ok(Some(0)));
    assert_eq!(ring.force_push(4), Ok(Some(1)));
    assert_eq!(ring.pop(), Ok(2));
    assert_eq!(ring.force_push(5), Ok(None), "room again after a pop");
    assert_eq!(ring.take_all(), [3, 4, 5]);
}

/// `pop_batch` takes what the consumers' cache holds and swaps the tail in
/// only when the cache is empty: fewer than `max` then, but never out of
/// order, and the next call gets the rest.
#[test]
fn pop_batch_takes_the_cache_before_the_tail() {
    let ring = LockingRing::new(8);
    for i in 0..3 {
        ring.push(i).unwrap();
    }
    assert_eq!(ring.try_pop(), Ok(0), "swaps 0..3 into the cache");
    ring.push(3).unwrap();
    ring.push(4).unwrap();
    let mut out = Vec::new();
    assert_eq!(ring.pop_batch(&mut out, 10), Ok(2), "the cache: 1, 2");
    assert_eq!(ring.pop_batch(&mut out, 10), Ok(2), "then the tail: 3, 4");
    assert_eq!(out, [1, 2, 3, 4]);
    assert_eq!(ring.pop_batch(&mut out, 10), Err(TryPopError::Empty));
}

#[test]
fn pop_batch_edges() {
    let ring = LockingRing::new(4);
    let mut out = Vec::new();
    for i in 0..3 {
        ring.push(i).unwrap();
    }
    assert_eq!(ring.pop_batch(&mut out, 0), Ok(0), "max 0 moves nothing");
    assert_eq!(ring.len(), 3);
    assert_eq!(ring.pop_batch(&mut out, 2), Ok(2));
    assert_eq!(ring.pop_batch(&mut out, 2), Ok(1));
    assert_eq!(out, [0, 1, 2]);
    assert_eq!(ring.pop_batch(&mut out, 2), Err(TryPopError::Empty));
}

/// Runs `f` on a thread of its own and returns its result, failing the
/// test (rather than hanging it) if it has not returned within 30 s: for
/// calls whose own timeout is an hour, which must return for another
/// reason.
fn returns_soon<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what}: still waiting after 30 s"))
}

const AN_HOUR: Duration = Duration::from_secs(3600);

/// `pop_batch_timeout` moves the cache's items first, then the tail's:
/// one FIFO, exactly `n` of them.
#[test]
fn pop_batch_timeout_takes_the_cache_before_the_tail() {
    let ring = LockingRing::new(8);
    for i in 0..6 {
        ring.push(i).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(
        ring.pop_batch(&mut out, 2),
        Ok(2),
        "swaps 0..6 in, takes 0, 1"
    );
    ring.push(6).unwrap();
    ring.push(7).unwrap();
    out.clear();
    assert_eq!(ring.pop_batch_timeout(&mut out, 6, AN_HOUR), Ok(6));
    assert_eq!(out, [2, 3, 4, 5, 6, 7]);
    assert!(ring.is_empty());
}

/// At the deadline it takes what is there; with nothing there it says
/// `Timeout` and leaves `out` alone. A zero timeout does not wait.
#[test]
fn pop_batch_timeout_at_the_deadline_takes_what_is_there() {
    let ring = LockingRing::new(8);
    ring.push(0).unwrap();
    ring.push(1).unwrap();
    let mut out = vec![99];
    let wait = Duration::from_millis(20);
    assert_eq!(ring.pop_batch_timeout(&mut out, 5, wait), Ok(2));
    assert_eq!(out, [99, 0, 1]);
    assert_eq!(
        ring.pop_batch_timeout(&mut out, 5, wait),
        Err(PopTimeoutError::Timeout)
    );
    assert_eq!(out, [99, 0, 1], "untouched on timeout");
    for i in 2..5 {
        ring.push(i).unwrap();
    }
    assert_eq!(ring.pop_batch_timeout(&mut out, 2, Duration::ZERO), Ok(2));
    assert_eq!(ring.pop_batch_timeout(&mut out, 5, Duration::ZERO), Ok(1));
    assert_eq!(
        ring.pop_batch_timeout(&mut out, 5, Duration::ZERO),
        Err(PopTimeoutError::Timeout)
    );
    assert_eq!(out, [99, 0, 1, 2, 3, 4]);
    assert_eq!(ring.pop_batch_timeout(&mut out, 0, AN_HOUR), Ok(0), "n = 0");
}

/// A thread that waits in `pop_batch_timeout` for `n` items (with an
/// hour's timeout), returning what the call returned and the items.
fn batch_waiter(
    ring: &Arc<LockingRing<i32>>,
    n: usize,
) -> thread::JoinHandle<(Result<usize, PopTimeoutError>, Vec<i32>)> {
    let ring = Arc::clone(ring);
    thread::spawn(move || {
        let mut out = Vec::new();
        let got = ring.pop_batch_timeout(&mut out, n, AN_HOUR);
        (got, out)
    })
}

/// A close ends the wait: what is there comes out, then `Closed`.
#[test]
fn pop_batch_timeout_returns_what_is_left_when_closed() {
    let ring = Arc::new(LockingRing::new(8));
    let waiter = batch_waiter(&ring, 5);
    ring.push(0).unwrap();
    ring.push(1).unwrap();
    ring.close();
    let (first, out) = returns_soon("a waiter on a closed ring", move || waiter.join().unwrap());
    assert_eq!(first, Ok(2));
    assert_eq!(out, [0, 1]);
    let mut none = Vec::new();
    assert_eq!(
        ring.pop_batch_timeout(&mut none, 5, AN_HOUR),
        Err(PopTimeoutError::Closed),
        "closed and drained"
    );
    assert_eq!(
        ring.pop_batch_timeout(&mut none, 0, AN_HOUR),
        Ok(0),
        "n = 0 even on a closed ring"
    );
    assert!(none.is_empty());
}

/// A full ring is as many items as there will be: asking for more than the
/// capacity returns once it is full, not at the deadline.
#[test]
fn pop_batch_timeout_for_more_than_the_capacity_returns_when_full() {
    let ring = Arc::new(LockingRing::new(3));
    let waiter = batch_waiter(&ring, 10);
    for i in 0..3 {
        ring.push(i).unwrap();
    }
    let (got, out) = returns_soon("a waiter for more than the capacity", move || {
        waiter.join().unwrap()
    });
    assert_eq!(got, Ok(3));
    assert_eq!(out, [0, 1, 2]);
}

/// A producer pushes 0..1000 through a ring of 4, blocking when it is full;
/// the consumer asks for 3 at a time. Every batch is exactly 3 items, in
/// order, until the close leaves the last one; the producer is never left
/// blocked (the batches free its slots).
#[test]
fn pop_batch_timeout_batches_are_exactly_n_until_the_close() {
    const N: u32 = 1000;
    let ring = Arc::new(LockingRing::new(4));
    let producer = {
        let ring = Arc::clone(&ring);
        thread::spawn(move || {
            for i in 0..N {
                ring.push(i).unwrap();
            }
            ring.close();
        })
    };
    let (sizes, out) = returns_soon("batches of 3 from 1000 items", move || {
        let mut out = Vec::new();
        let mut sizes = Vec::new();
        while let Ok(n) = ring.pop_batch_timeout(&mut out, 3, AN_HOUR) {
            sizes.push(n);
        }
        producer.join().unwrap();
        (sizes, out)
    });
    assert!(out.iter().copied().eq(0..N), "every item once, in order");
    let (last, full) = sizes.split_last().unwrap();
    assert!(full.iter().all(|&n| n == 3), "{sizes:?}");
    assert_eq!(*last, 1);
}

#[test]
fn take_all_empties_and_the_ring_stays_usable() {
    let ring = LockingRing::new(3);
    assert!(ring.take_all().is_empty());
    ring.push(1).unwrap();
    ring.push(2).unwrap();
    assert_eq!(ring.take_all(), [1, 2]);
    assert!(ring.is_empty());
    for i in 3..6 {
        ring.try_push(i).unwrap();
    }
    assert_eq!(ring.try_push(6), Err(TryPushError::Full(6)));
    assert_eq!(ring.take_all(), [3, 4, 5]);
}

#[test]
fn take_all_into_swaps_with_an_empty_spare() {
    let ring = LockingRing::new(16);
    let mut spare = VecDeque::new();
    ring.push(1).unwrap();
    assert_eq!(ring.take_all_into(&mut spare), 1);
    assert_eq!(spare, [1]);
    // The spare received the ring's preallocated storage.
    assert!(spare.capacity() >= 16, "capacity {}", spare.capacity());
    spare.clear();
    // In a steady state the ring's and the spare's allocations trade places:
    // after the first round (when the ring allocates again) the capacities
    // seen in `spare` repeat with period two, i.e. nothing is reallocated.
    let mut caps = Vec::new();
    for round in 0..10 {
        for i in 0..16 {
            ring.push(round * 16 + i).unwrap();
        }
        assert_eq!(ring.take_all_into(&mut spare), 16);
        assert!(spare.iter().copied().eq(round * 16..round * 16 + 16));
        caps.push(spare.capacity());
        spare.clear();
    }
    assert!(caps.iter().all(|&c| c >= 16), "{caps:?}");
    assert!(caps[1..].windows(3).all(|w| w[0] == w[2]), "{caps:?}");
    assert_eq!(ring.take_all_into(&mut spare), 0);
}

#[test]
fn take_all_into_appends_to_a_non_empty_spare() {
    let ring = LockingRing::new(4);
    let mut spare = VecDeque::from([10, 11]);
    ring.push(1).unwrap();
    ring.push(2).unwrap();
    assert_eq!(ring.take_all_into(&mut spare), 2);
    assert_eq!(spare, [10, 11, 1, 2]);
    assert!(ring.is_empty());
}

#[test]
fn debug_shows_occupancy_without_item_debug() {
    struct Opaque;
    let ring = LockingRing::new(2);
    ring.push(Opaque).unwrap();
    assert_eq!(
        format!("{ring:?}"),
        "LockingRing { len: 1, capacity: 2, closed: false, .. }"
    );
    ring.close();
    assert_eq!(
        format!("{ring:?}"),
        "LockingRing { len: 1, capacity: 2, closed: true, .. }"
    );
    let err = ring.try_push(Opaque).unwrap_err();
    assert_eq!(format!("{err:?}"), "Closed(..)");
}

#[test]
fn huge_capacity_does_not_preallocate_it() {
    let ring = LockingRing::new(usize::MAX);
    for i in 0..100_000u32 {
        ring.try_push(i).unwrap();
    }
    assert_eq!(ring.len(), 100_000);
    assert_eq!(ring.capacity(), usize::MAX);
}

// ---- blocking and deadlines -------------------------------------------------

#[test]
fn push_timeout_on_full_ring_times_out_with_item() {
    let ring = LockingRing::new(1);
    ring.push(vec![0]).unwrap();
    let start = Instant::now();
    let err = ring
        .push_timeout(vec![1, 2], Duration::from_millis(50))
        .unwrap_err();
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(err.to_string(), "ring stayed full until the deadline");
    assert_eq!(format!("{err:?}"), "Timeout(..)");
    assert_eq!(err.into_inner(), [1, 2]);
    assert_eq!(ring.take_all(), [vec![0]]);
}

#[test]
fn pop_timeout_on_empty_ring_times_out() {
    let ring = LockingRing::<u8>::new(1);
    let start = Instant::now();
    let err = ring.pop_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(err, PopTimeoutError::Timeout);
    assert_eq!(err.to_string(), "ring stayed empty until the deadline");
}

#[test]
fn zero_timeouts_do_not_block() {
    let ring = LockingRing::new(1);
    assert_eq!(
        ring.pop_timeout(Duration::ZERO),
        Err(PopTimeoutError::Timeout)
    );
    assert_eq!(ring.push_timeout(1, Duration::ZERO), Ok(()));
    assert_eq!(
        ring.push_timeout(2, Duration::ZERO),
        Err(PushTimeoutError::Timeout(2))
    );
    assert_eq!(ring.pop_timeout(Duration::ZERO), Ok(1));
}

#[test]
fn unrepresentable_deadlines_wait_without_panicking() {
    // `Instant::now() + Duration::MAX` overflows; the ring must treat it as
    // "no deadline". The helper sleeps only to make it likely that the
    // waiting path is taken; the assertions hold either way.
    let ring = Arc::new(LockingRing::new(1));
    let helper = {
        let ring = Arc::clone(&ring);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            ring.push(1).unwrap();
            thread::sleep(Duration::from_millis(20));
            ring.pop().unwrap()
        })
    };
    assert_eq!(ring.pop_timeout(Duration::MAX), Ok(1));
    ring.push(2).unwrap();
    assert_eq!(ring.push_timeout(3, Duration::MAX), Ok(()));
    assert_eq!(helper.join().unwrap(), 2);
    assert_eq!(ring.take_all(), [3]);
}

#[test]
fn blocked_push_completes_after_pop() {
    let ring = Arc::new(LockingRing::new(1));
    ring.push(0).unwrap();
    let pusher = {
        let ring = Arc::clone(&ring);
        thread::spawn(move || {
            ring.push(1).unwrap();
            ring.push_timeout(2, LONG).unwrap();
        })
    };
    assert_eq!(ring.pop(), Ok(0));
    assert_eq!(ring.pop(), Ok(1));
    assert_eq!(ring.pop_timeout(LONG), Ok(2));
    pusher.join().unwrap();
}

#[test]
fn close_wakes_every_blocked_popper_and_pusher() {
    let empty = Arc::new(LockingRing::<u32>::new(1));
    let full = Arc::new(LockingRing::new(1));
    full.push(0).unwrap();
    let start = Arc::new(Barrier::new(7));
    let mut poppers = Vec::new();
    let mut pushers = Vec::new();
    for i in 0..3u32 {
        let (ring, go) = (Arc::clone(&empty), Arc::clone(&start));
        poppers.push(thread::spawn(move || {
            go.wait();
            if i == 0 {
                ring.pop_timeout(LONG).map_err(|e| e.to_string())
            } else {
                ring.pop().map_err(|e| e.to_string())
            }
        }));
        let (ring, go) = (Arc::clone(&full), Arc::clone(&start));
        pushers.push(thread::spawn(move || {
            go.wait();
            if i == 0 {
                ring.push_timeout(10 + i, LONG)
                    .map_err(PushTimeoutError::into_inner)
            } else {
                ring.push(10 + i).map_err(ClosedError::into_inner)
            }
        }));
    }
    start.wait();
    empty.close();
    full.close();
    for h in poppers {
        assert_eq!(h.join().unwrap(), Err("ring is closed and drained".into()));
    }
    let mut returned: Vec<u32> = pushers
        .into_iter()
        .map(|h| h.join().unwrap().unwrap_err())
        .collect();
    returned.sort_unstable();
    assert_eq!(returned, [10, 11, 12]);
    assert_eq!(full.take_all(), [0]);
}

#[test]
fn pop_batch_and_take_all_release_blocked_pushers() {
    // Four pushers on a full two-slot ring; only batch operations consume.
    let ring = Arc::new(LockingRing::new(2));
    ring.push(0).unwrap();
    ring.push(1).unwrap();
    let start = Arc::new(Barrier::new(5));
    let pushers: Vec<_> = (2..6)
        .map(|v| {
            let (ring, start) = (Arc::clone(&ring), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                ring.push(v).unwrap();
            })
        })
        .collect();
    start.wait();
    let mut got = Vec::new();
    let mut spare = VecDeque::new();
    let mut round = 0;
    while got.len() < 6 {
        round += 1;
        let moved = if round % 2 == 0 {
            ring.pop_batch(&mut got, 2).unwrap_or(0)
        } else {
            let n = ring.take_all_into(&mut spare);
            got.extend(spare.drain(..));
            n
        };
        if moved == 0 {
            got.push(ring.pop().unwrap());
        }
    }
    for h in pushers {
        h.join().unwrap();
    }
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
}

// ---- drop counting ----------------------------------------------------------

/// Records which ids were dropped, so "exactly once" is checked per item.
#[derive(Clone, Default)]
struct Drops(Arc<Mutex<Vec<u32>>>);

impl Drops {
    fn item(&self, id: u32) -> Tracked {
        Tracked {
            id,
            drops: self.clone(),
        }
    }
    fn sorted(&self) -> Vec<u32> {
        let mut v = self.0.lock().unwrap().clone();
        v.sort_unstable();
        v
    }
}

struct Tracked {
    id: u32,
    drops: Drops,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.0.lock().unwrap().push(self.id);
    }
}

#[test]
fn dropping_the_ring_drops_items_inside_once() {
    let drops = Drops::default();
    let ring = LockingRing::new(4);
    for id in 0..3 {
        ring.push(drops.item(id)).unwrap();
    }
    drop(ring.pop().unwrap());
    assert_eq!(drops.sorted(), [0]);
    drop(ring);
    assert_eq!(drops.sorted(), [0, 1, 2]);
}

#[test]
fn full_ring_of_wrapped_storage_drops_once() {
    // Pops and pushes move the VecDeque's head so the items wrap around.
    let drops = Drops::default();
    let ring = LockingRing::new(3);
    for id in 0..3 {
        ring.push(drops.item(id)).unwrap();
    }
    drop(ring.pop().unwrap());
    drop(ring.pop().unwrap());
    ring.push(drops.item(3)).unwrap();
    ring.push(drops.item(4)).unwrap();
    drop(ring);
    assert_eq!(drops.sorted(), [0, 1, 2, 3, 4]);
}

#[test]
fn force_push_eviction_hands_over_the_oldest() {
    let drops = Drops::default();
    let ring = LockingRing::new(2);
    assert!(ring.force_push(drops.item(0)).unwrap().is_none());
    assert!(ring.force_push(drops.item(1)).unwrap().is_none());
    let evicted = ring.force_push(drops.item(2)).unwrap().unwrap();
    assert_eq!(evicted.id, 0);
    assert!(
        drops.sorted().is_empty(),
        "the evicted item is returned, not dropped"
    );
    drop(evicted);
    assert_eq!(drops.sorted(), [0]);
    drop(ring);
    assert_eq!(drops.sorted(), [0, 1, 2]);
}

#[test]
fn take_all_and_pop_batch_move_without_dropping() {
    let drops = Drops::default();
    let ring = LockingRing::new(4);
    for id in 0..4 {
        ring.push(drops.item(id)).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(ring.pop_batch(&mut out, 1), Ok(1));
    let taken = ring.take_all();
    assert!(drops.sorted().is_empty());
    ring.push(drops.item(4)).unwrap();
    let mut spare = VecDeque::new();
    assert_eq!(ring.take_all_into(&mut spare), 1);
    drop(ring);
    assert!(drops.sorted().is_empty(), "nothing left inside the ring");
    assert_eq!(taken.iter().map(|t| t.id).collect::<Vec<_>>(), [1, 2, 3]);
    drop((out, taken, spare));
    assert_eq!(drops.sorted(), [0, 1, 2, 3, 4]);
}

#[test]
fn failed_pushes_return_the_item_undropped() {
    let drops = Drops::default();
    let ring = LockingRing::new(1);
    ring.push(drops.item(0)).unwrap();
    let back = [
        ring.try_push(drops.item(1)).unwrap_err().into_inner(),
        ring.push_timeout(drops.item(2), Duration::ZERO)
            .unwrap_err()
            .into_inner(),
    ];
    ring.close();
    let closed = [
        ring.push(drops.item(3)).unwrap_err().into_inner(),
        match ring.force_push(drops.item(4)) {
            Err(e) => e.into_inner(),
            Ok(_) => panic!("force_push on a closed ring succeeded"),
        },
        ring.try_push(drops.item(5)).unwrap_err().into_inner(),
    ];
    assert!(drops.sorted().is_empty());
    drop((back, closed));
    assert_eq!(drops.sorted(), [1, 2, 3, 4, 5]);
    // Close then drop: the item inside goes exactly once.
    drop(ring);
    assert_eq!(drops.sorted(), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn concurrent_force_push_conserves_items() {
    // Producers overwrite while a consumer pops: every item is popped,
    // evicted or still inside, and dropped exactly once.
    const PER: u32 = 20_000;
    let drops = Drops::default();
    let ring = Arc::new(LockingRing::new(8));
    let start = Arc::new(Barrier::new(3));
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let (ring, start, drops) = (Arc::clone(&ring), Arc::clone(&start), drops.clone());
            thread::spawn(move || {
                start.wait();
                let mut evicted = Vec::new();
                for i in 0..PER {
                    if let Some(old) = ring.force_push(drops.item(p * PER + i)).unwrap() {
                        evicted.push(old.id);
                    }
                }
                evicted
            })
        })
        .collect();
    start.wait();
    let mut popped = Vec::new();
    let mut done = 0;
    while done < 2 {
        match ring.pop_timeout(Duration::from_millis(1)) {
            Ok(t) => popped.push(t.id),
            Err(_) => done = producers.iter().filter(|h| h.is_finished()).count(),
        }
    }
    let mut seen: Vec<u32> = producers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seen.extend(&popped);
    seen.extend(ring.take_all().iter().map(|t| t.id));
    seen.sort_unstable();
    assert!(
        seen.iter().copied().eq(0..2 * PER),
        "lost or duplicated items"
    );
    assert_eq!(drops.sorted(), seen, "each item dropped exactly once");
}

// ---- model-based property test ----------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    TryPush(u8),
    ForcePush(u8),
    /// Blocking push, only issued when it cannot block (room, or closed).
    Push(u8),
    PushTimeoutZero(u8),
    TryPop,
    /// Blocking pop, only issued when it cannot block (items, or closed).
    Pop,
    PopTimeoutZero,
    PopBatch(usize),
    PopBatchTimeoutZero(usize),
    TakeAll,
    TakeAllInto(bool),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::TryPush),
        2 => any::<u8>().prop_map(Op::ForcePush),
        2 => any::<u8>().prop_map(Op::Push),
        1 => any::<u8>().prop_map(Op::PushTimeoutZero),
        3 => Just(Op::TryPop),
        1 => Just(Op::Pop),
        1 => Just(Op::PopTimeoutZero),
        2 => (0usize..6).prop_map(Op::PopBatch),
        2 => (0usize..8).prop_map(Op::PopBatchTimeoutZero),
        1 => Just(Op::TakeAll),
        1 => any::<bool>().prop_map(Op::TakeAllInto),
        1 => Just(Op::Close),
    ]
}

proptest! {
    #[test]
    fn behaves_like_a_bounded_vecdeque(cap in 1usize..6, ops in prop::collection::vec(op(), 0..80)) {
        let ring = LockingRing::new(cap);
        let mut model: VecDeque<u8> = VecDeque::new();
        let mut closed = false;
        for op in ops {
            let full = model.len() == cap;
            match op {
                Op::TryPush(v) => {
                    let expect = if closed {
                        Err(TryPushError::Closed(v))
                    } else if full {
                        Err(TryPushError::Full(v))
                    } else {
                        model.push_back(v);
                        Ok(())
                    };
                    prop_assert_eq!(ring.try_push(v), expect);
                }
                Op::ForcePush(v) => {
                    let expect = if closed {
                        Err(ClosedError(v))
                    } else {
                        let evicted = if full { model.pop_front() } else { None };
                        model.push_back(v);
                        Ok(evicted)
                    };
                    prop_assert_eq!(ring.force_push(v), expect);
                }
                Op::Push(v) => {
                    if closed {
                        prop_assert_eq!(ring.push(v), Err(ClosedError(v)));
                    } else if !full {
                        model.push_back(v);
                        prop_assert_eq!(ring.push(v), Ok(()));
                    }
                }
                Op::PushTimeoutZero(v) => {
                    let expect = if closed {
                        Err(PushTimeoutError::Closed(v))
                    } else if full {
                        Err(PushTimeoutError::Timeout(v))
                    } else {
                        model.push_back(v);
                        Ok(())
                    };
                    prop_assert_eq!(ring.push_timeout(v, Duration::ZERO), expect);
                }
                Op::TryPop => {
                    let expect = match model.pop_front() {
                        Some(v) => Ok(v),
                        None if closed => Err(TryPopError::Closed),
                        None => Err(TryPopError::Empty),
                    };
                    prop_assert_eq!(ring.try_pop(), expect);
                }
                Op::Pop => {
                    if let Some(v) = model.pop_front() {
                        prop_assert_eq!(ring.pop(), Ok(v));
                    } else if closed {
                        prop_assert_eq!(ring.pop(), Err(PopClosedError));
                    }
                }
                Op::PopTimeoutZero => {
                    let expect = match model.pop_front() {
                        Some(v) => Ok(v),
                        None if closed => Err(PopTimeoutError::Closed),
                        None => Err(PopTimeoutError::Timeout),
                    };
                    prop_assert_eq!(ring.pop_timeout(Duration::ZERO), expect);
                }
                Op::PopBatch(max) => {
                    // May return fewer than it could (what the consumers'
                    // cache holds), but at least one, and always the oldest.
                    let mut out = vec![200];
                    let got = ring.pop_batch(&mut out, max);
                    let mut expect_out = vec![200];
                    if model.is_empty() {
                        let none = if closed { TryPopError::Closed } else { TryPopError::Empty };
                        prop_assert_eq!(got, Err(none));
                    } else {
                        let n = got.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                        prop_assert!(n <= max.min(model.len()), "{} of {}", n, max.min(model.len()));
                        prop_assert!(n >= 1 || max == 0, "an item was there");
                        expect_out.extend(model.drain(..n));
                    }
                    prop_assert_eq!(out, expect_out);
                }
                Op::PopBatchTimeoutZero(n) => {
                    // Exactly `min(n, len)`: it looks at the tail too.
                    let mut out = vec![200];
                    let got = ring.pop_batch_timeout(&mut out, n, Duration::ZERO);
                    let mut expect_out = vec![200];
                    let expect = if n == 0 {
                        Ok(0)
                    } else if model.is_empty() {
                        Err(if closed { PopTimeoutError::Closed } else { PopTimeoutError::Timeout })
                    } else {
                        let k = n.min(model.len());
                        expect_out.extend(model.drain(..k));
                        Ok(k)
                    };
                    prop_assert_eq!(got, expect);
                    prop_assert_eq!(out, expect_out);
                }
                Op::TakeAll => {
                    prop_assert_eq!(ring.take_all(), std::mem::take(&mut model));
                }
                Op::TakeAllInto(prefilled) => {
                    let mut spare: VecDeque<u8> = if prefilled { VecDeque::from([250, 251]) } else { VecDeque::new() };
                    let mut expect: VecDeque<u8> = spare.clone();
                    let n = model.len();
                    expect.extend(model.drain(..));
                    prop_assert_eq!(ring.take_all_into(&mut spare), n);
                    prop_assert_eq!(spare, expect);
                }
                Op::Close => {
                    closed = true;
                    ring.close();
                }
            }
            prop_assert_eq!(ring.len(), model.len());
            prop_assert_eq!(ring.is_empty(), model.is_empty());
            prop_assert_eq!(ring.is_closed(), closed);
        }
        prop_assert_eq!(ring.take_all(), model);
    }
}

// ---- stress -----------------------------------------------------------------

/// One producer sends 0..N; the consumer alternates `pop` and `pop_batch`
/// (falling back to a blocking `pop` when a batch finds nothing) and checks
/// that every number arrives exactly once, in order.
#[test]
fn stress_one_producer_in_order() {
    const N: u64 = 10_000_000;
    let ring = Arc::new(LockingRing::new(1024));
    let start = Arc::new(Barrier::new(2));
    let producer = {
        let (ring, start) = (Arc::clone(&ring), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            for i in 0..N {
                // Mostly plain pushes, with the other push kinds mixed in.
                match i % 64 {
                    0 => ring.push_timeout(i, LONG).unwrap(),
                    1 => {
                        if let Err(e) = ring.try_push(i) {
                            ring.push(e.into_inner()).unwrap();
                        }
                    }
                    _ => ring.push(i).unwrap(),
                }
            }
            ring.close();
        })
    };
    start.wait();
    let mut expect = 0u64;
    let mut batch = Vec::with_capacity(64);
    let mut round = 0u64;
    loop {
        round += 1;
        if round.is_multiple_of(2) {
            match ring.pop() {
                Ok(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                Err(PopClosedError) => break,
            }
        } else {
            match ring.pop_batch(&mut batch, 64) {
                Ok(_) => {
                    for v in batch.drain(..) {
                        assert_eq!(v, expect);
                        expect += 1;
                    }
                }
                Err(TryPopError::Empty) => {}
                Err(TryPopError::Closed) => break,
            }
        }
    }
    producer.join().unwrap();
    assert_eq!(expect, N, "every item arrived");
}

/// Two producers send tagged sequence numbers; the consumer checks that each
/// producer's numbers arrive complete and in order.
#[test]
fn stress_two_producers_keep_their_order() {
    const PER: u64 = 2_500_000;
    let ring = Arc::new(LockingRing::new(256));
    let start = Arc::new(Barrier::new(3));
    let finished = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let (ring, start, finished) =
                (Arc::clone(&ring), Arc::clone(&start), Arc::clone(&finished));
            thread::spawn(move || {
                start.wait();
                for i in 0..PER {
                    ring.push(p << 32 | i).unwrap();
                }
                // The last producer out closes the ring.
                if finished.fetch_add(1, Ordering::AcqRel) == 1 {
                    ring.close();
                }
            })
        })
        .collect();
    start.wait();
    let mut next = [0u64; 2];
    let mut batch = Vec::with_capacity(32);
    loop {
        match ring.pop_batch(&mut batch, 32) {
            Ok(_) => {}
            Err(TryPopError::Empty) => match ring.pop() {
                Ok(v) => batch.push(v),
                Err(PopClosedError) => break,
            },
            Err(TryPopError::Closed) => break,
        }
        for v in batch.drain(..) {
            let (p, i) = ((v >> 32) as usize, v & 0xffff_ffff);
            assert_eq!(i, next[p], "producer {p} out of order");
            next[p] += 1;
        }
    }
    for h in producers {
        h.join().unwrap();
    }
    assert_eq!(next, [PER, PER]);
}

/// Several producers and consumers; after close every item was received
/// exactly once by somebody.
#[test]
fn stress_many_producers_many_consumers() {
    const PRODUCERS: u64 = 4;
    const PER: u64 = 100_000;
    let ring = Arc::new(LockingRing::new(16));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                for i in 0..PER {
                    ring.push(p * PER + i).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..3)
        .map(|c| {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let r = if c == 0 {
                        ring.pop_batch(&mut got, 8).map(drop).or_else(|e| match e {
                            TryPopError::Empty => ring.pop().map(|v| got.push(v)),
                            TryPopError::Closed => Err(PopClosedError),
                        })
                    } else {
                        ring.pop().map(|v| got.push(v))
                    };
                    if r.is_err() {
                        return got;
                    }
                }
            })
        })
        .collect();
    for h in producers {
        h.join().unwrap();
    }
    ring.close();
    let mut all: Vec<u64> = consumers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert!(all.iter().copied().eq(0..PRODUCERS * PER));
}

/// A pop moves every waiting item to the consumers' side at once; another
/// consumer thread must still get the rest (in order), `len` must still
/// count them, and a pusher must see the slots they hold as taken.
#[test]
fn items_one_pop_moved_to_the_consumers_side_stay_visible_to_every_thread() {
    let ring = Arc::new(LockingRing::new(4));
    for i in 0..4 {
        ring.push(i).unwrap();
    }
    assert_eq!(ring.pop(), Ok(0));
    assert_eq!(ring.len(), 3);
    assert_eq!(ring.try_push(4), Ok(()));
    assert_eq!(ring.try_push(5), Err(TryPushError::Full(5)));
    let other = {
        let ring = Arc::clone(&ring);
        thread::spawn(move || (0..4).map(|_| ring.pop().unwrap()).collect::<Vec<_>>())
    };
    assert_eq!(other.join().unwrap(), [1, 2, 3, 4]);
    assert!(ring.is_empty());
}

/// A pop that finds the tail empty remembers it, and later pops skip the
/// producers' lock while nothing has arrived since: every way the ring can
/// change (a push, a `force_push`, a `take_all`, a close) must still be seen
/// by the very next pop.
#[test]
fn pops_after_an_empty_one_see_every_arrival_and_the_close() {
    let ring = LockingRing::new(2);
    assert_eq!(ring.try_pop(), Err(TryPopError::Empty));
    assert_eq!(ring.try_pop(), Err(TryPopError::Empty));
    ring.push(1).unwrap();
    let mut out = Vec::new();
    assert_eq!(ring.pop_batch(&mut out, 8), Ok(1));
    assert_eq!(ring.pop_batch(&mut out, 8), Err(TryPopError::Empty));
    ring.push(2).unwrap();
    ring.push(3).unwrap();
    assert_eq!(ring.force_push(4).unwrap(), Some(2));
    assert_eq!(ring.take_all(), [3, 4]);
    assert_eq!(ring.try_pop(), Err(TryPopError::Empty));
    ring.push(5).unwrap();
    assert_eq!(ring.pop(), Ok(5));
    assert_eq!(ring.try_pop(), Err(TryPopError::Empty));
    ring.close();
    assert_eq!(ring.try_pop(), Err(TryPopError::Closed));
    assert_eq!(ring.pop(), Err(spillway::ring::PopClosedError));
    assert_eq!(out, [1]);
}
