//! Behaviour of `spillway::ring::spsc`: every method, drop counting on every
//! path that moves items, a model-based proptest, and a two-thread stress
//! test (run with `cargo test --profile ci --test spsc`).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use spillway::ring::spsc::{self, Consumer, Producer};
use spillway::ring::{
    ClosedError, PopClosedError, PopTimeoutError, PushTimeoutError, TryPopError, TryPushError,
    WaitError,
};

const SHORT: Duration = Duration::from_millis(20);

/// An item that counts its drops; `id` tells items apart.
#[derive(Debug)]
struct Counted {
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

struct Counter(Arc<AtomicUsize>);

impl Counter {
    fn new() -> Self {
        Self(Arc::new(AtomicUsize::new(0)))
    }
    fn item(&self, id: u64) -> Counted {
        Counted {
            id,
            drops: Arc::clone(&self.0),
        }
    }
    fn drops(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn ids(items: &[Counted]) -> Vec<u64> {
    items.iter().map(|c| c.id).collect()
}

// ---------------------------------------------------------------- basics

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn zero_capacity_panics_with_a_clear_message() {
    let _ = spsc::channel::<u8>(0);
}

#[test]
fn halves_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Producer<String>>();
    assert_send::<Consumer<String>>();
}

#[test]
fn capacity_one_wraps_around_many_times() {
    let (mut tx, mut rx) = spsc::channel(1);
    for i in 0..10 {
        assert_eq!(tx.slots(), 1);
        assert_eq!(tx.try_push(i), Ok(()));
        assert_eq!(tx.slots(), 0);
        assert_eq!(tx.try_push(99), Err(TryPushError::Full(99)));
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.try_pop(), Ok(i));
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        assert!(rx.is_empty());
    }
}

#[test]
fn fifo_across_wrap_around_with_uneven_fill() {
    let (mut tx, mut rx) = spsc::channel(3);
    let mut next_in = 0;
    let mut next_out = 0;
    // Fill levels that walk head and tail through every position of 0..6.
    for round in 0..20 {
        let fill = round % 4;
        for _ in 0..fill {
            tx.try_push(next_in).unwrap();
            next_in += 1;
        }
        assert_eq!(rx.len(), fill);
        assert_eq!(tx.slots(), 3 - fill);
        for _ in 0..fill {
            assert_eq!(rx.try_pop(), Ok(next_out));
            next_out += 1;
        }
    }
    assert_eq!(next_out, next_in);
}

#[test]
fn capacity_is_what_was_asked_for() {
    let (tx, rx) = spsc::channel::<u64>(4097);
    assert_eq!(tx.capacity(), 4097);
    assert_eq!(rx.capacity(), 4097);
    assert_eq!(tx.slots(), 4097);
}

#[test]
fn debug_does_not_need_item_debug() {
    struct Opaque;
    let (tx, rx) = spsc::channel::<Opaque>(2);
    assert!(format!("{tx:?}").contains("capacity: 2"));
    assert!(format!("{rx:?}").contains("Consumer"));
}

#[test]
fn error_messages() {
    assert_eq!(
        WaitError::Timeout.to_string(),
        "ring condition still unmet at the deadline"
    );
    assert_eq!(WaitError::Closed.to_string(), "ring is closed");
    assert_eq!(TryPushError::Full(1).to_string(), "ring is full");
    assert_eq!(
        TryPopError::Closed.to_string(),
        "ring is closed and drained"
    );
    let e: Box<dyn std::error::Error> = Box::new(WaitError::Closed);
    assert_eq!(e.to_string(), "ring is closed");
}

// ------------------------------------------------------- close / abandon

#[test]
fn dropping_the_consumer_abandons_and_closes() {
    let (mut tx, rx) = spsc::channel(2);
    assert!(!tx.is_abandoned());
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_abandoned());
    assert!(tx.is_closed());
    assert_eq!(tx.try_push(1), Err(TryPushError::Closed(1)));
    assert_eq!(tx.push(2), Err(ClosedError(2)));
    assert_eq!(tx.push_timeout(3, SHORT), Err(PushTimeoutError::Closed(3)));
    assert_eq!(tx.push_slice(&[4, 5]), 0);
    let mut it = 6..8;
    assert_eq!(tx.push_iter(&mut it), 0);
    assert_eq!(it, 6..8, "a closed ring takes nothing from the iterator");
    assert_eq!(tx.wait_for_slots(1, None), Err(WaitError::Closed));
}

#[test]
fn dropping_the_producer_lets_the_consumer_drain_then_closed() {
    let (mut tx, mut rx) = spsc::channel(4);
    tx.push_slice(&[1, 2, 3]);
    assert!(!rx.is_abandoned());
    drop(tx);
    assert!(rx.is_abandoned());
    assert!(rx.is_closed());
    assert_eq!(rx.wait_for_len(2, None), Ok(()));
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.pop(), Ok(2));
    assert_eq!(rx.wait_for_len(2, None), Err(WaitError::Closed));
    assert_eq!(rx.pop_timeout(SHORT), Ok(3));
    assert_eq!(rx.try_pop(), Err(TryPopError::Closed));
    assert_eq!(rx.pop(), Err(PopClosedError));
    assert_eq!(rx.pop_timeout(SHORT), Err(PopTimeoutError::Closed));
    assert_eq!(rx.pop_batch(&mut Vec::new(), 5), Err(TryPopError::Closed));
    assert_eq!(rx.pop_slice(&mut [0; 5]), 0);
    assert_eq!(rx.wait_for_len(0, None), Ok(()));
}

#[test]
fn close_from_either_side_keeps_handles_usable_for_draining() {
    let (mut tx, mut rx) = spsc::channel(4);
    tx.try_push(1).unwrap();
    rx.close();
    assert!(tx.is_closed() && !tx.is_abandoned());
    assert_eq!(tx.try_push(2), Err(TryPushError::Closed(2)));
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.try_pop(), Err(TryPopError::Closed));

    let (mut tx, mut rx) = spsc::channel(4);
    tx.try_push(1).unwrap();
    tx.close();
    assert!(rx.is_closed() && !rx.is_abandoned());
    assert_eq!(rx.pop(), Ok(1));
    assert_eq!(rx.pop(), Err(PopClosedError));
}

// --------------------------------------------------------------- blocking

#[test]
fn push_blocks_until_the_consumer_makes_room() {
    let (mut tx, mut rx) = spsc::channel(1);
    tx.try_push(0).unwrap();
    let t = thread::spawn(move || {
        for i in 1..=100 {
            tx.push(i).unwrap();
        }
    });
    let got: Vec<i32> = (0..=100).map(|_| rx.pop().unwrap()).collect();
    t.join().unwrap();
    assert_eq!(got, (0..=100).collect::<Vec<_>>());
    assert_eq!(rx.pop(), Err(PopClosedError));
}

#[test]
fn pop_blocks_until_the_producer_pushes() {
    let (mut tx, mut rx) = spsc::channel(2);
    let start = Arc::new(Barrier::new(2));
    let s = Arc::clone(&start);
    let t = thread::spawn(move || {
        s.wait();
        (0..50).map(|_| rx.pop().unwrap()).collect::<Vec<u32>>()
    });
    start.wait();
    for i in 0..50 {
        tx.push(i).unwrap();
    }
    assert_eq!(t.join().unwrap(), (0..50).collect::<Vec<_>>());
}

#[test]
fn blocked_producer_gets_its_item_back_when_the_consumer_goes() {
    let (mut tx, rx) = spsc::channel(1);
    tx.try_push(String::from("in")).unwrap();
    let t = thread::spawn(move || tx.push(String::from("blocked")));
    drop(rx);
    let err = t.join().unwrap().unwrap_err();
    assert_eq!(err.into_inner(), "blocked");
}

#[test]
fn blocked_consumer_wakes_with_closed_when_the_producer_goes() {
    let (tx, mut rx) = spsc::channel::<u8>(1);
    let t = thread::spawn(move || (rx.pop(), rx.wait_for_len(1, None)));
    drop(tx);
    assert_eq!(
        t.join().unwrap(),
        (Err(PopClosedError), Err(WaitError::Closed))
    );
}

#[test]
fn close_wakes_a_blocked_peer() {
    let (mut tx, rx) = spsc::channel(1);
    tx.try_push(1).unwrap();
    let t = thread::spawn(move || tx.push_timeout(2, Duration::from_secs(600)));
    rx.close();
    assert_eq!(t.join().unwrap(), Err(PushTimeoutError::Closed(2)));

    let (tx, mut rx) = spsc::channel::<u8>(1);
    let t = thread::spawn(move || rx.pop_timeout(Duration::from_secs(600)));
    tx.close();
    assert_eq!(t.join().unwrap(), Err(PopTimeoutError::Closed));
}

#[test]
fn timeouts_expire_no_earlier_than_asked() {
    let (mut tx, mut rx) = spsc::channel(1);
    let t0 = Instant::now();
    assert_eq!(rx.pop_timeout(SHORT), Err(PopTimeoutError::Timeout));
    assert!(t0.elapsed() >= SHORT);

    tx.try_push(1).unwrap();
    let t0 = Instant::now();
    assert_eq!(tx.push_timeout(2, SHORT), Err(PushTimeoutError::Timeout(2)));
    assert!(t0.elapsed() >= SHORT);

    let t0 = Instant::now();
    assert_eq!(tx.wait_for_slots(1, Some(SHORT)), Err(WaitError::Timeout));
    assert!(t0.elapsed() >= SHORT);

    assert_eq!(rx.pop_timeout(SHORT), Ok(1));
    let t0 = Instant::now();
    assert_eq!(rx.wait_for_len(1, Some(SHORT)), Err(WaitError::Timeout));
    assert!(t0.elapsed() >= SHORT);

    assert_eq!(tx.push_timeout(3, SHORT), Ok(()));
    assert_eq!(rx.wait_for_len(1, Some(Duration::ZERO)), Ok(()));
    assert_eq!(tx.wait_for_slots(0, Some(Duration::ZERO)), Ok(()));
    // A timeout too large for `Instant` means "wait forever", not a panic.
    assert_eq!(rx.pop_timeout(Duration::MAX), Ok(3));
}

#[test]
fn wait_for_slots_and_len_move_whole_elements_through_a_byte_ring() {
    const ELEM: usize = 5;
    const COUNT: u8 = 200;
    // 12 bytes: room for two elements plus a remainder, so elements straddle
    // the wrap-around point at different offsets.
    let (mut tx, mut rx) = spsc::channel::<u8>(12);
    let t = thread::spawn(move || {
        for e in 0..COUNT {
            tx.wait_for_slots(ELEM, None).unwrap();
            assert_eq!(tx.push_slice(&[e; ELEM]), ELEM);
        }
    });
    for e in 0..COUNT {
        rx.wait_for_len(ELEM, None).unwrap();
        let mut buf = [0xff; ELEM];
        assert_eq!(rx.pop_slice(&mut buf), ELEM);
        assert_eq!(buf, [e; ELEM]);
    }
    t.join().unwrap();
    assert_eq!(rx.wait_for_len(ELEM, None), Err(WaitError::Closed));
}

#[test]
#[should_panic(expected = "can never be free in a ring of capacity 4")]
fn wait_for_more_slots_than_capacity_panics() {
    let (mut tx, _rx) = spsc::channel::<u8>(4);
    let _ = tx.wait_for_slots(5, None);
}

#[test]
#[should_panic(expected = "can never be ready in a ring of capacity 4")]
fn wait_for_more_items_than_capacity_panics() {
    let (_tx, mut rx) = spsc::channel::<u8>(4);
    let _ = rx.wait_for_len(5, None);
}

// ------------------------------------------------------------------ batches

#[test]
fn push_slice_takes_what_fits_across_the_wrap() {
    let (mut tx, mut rx) = spsc::channel(4);
    assert_eq!(tx.push_slice(&[]), 0);
    assert_eq!(tx.push_slice(&[1, 2, 3]), 3);
    assert_eq!(rx.pop_slice(&mut [0; 2]), 2);
    // head = 2, tail = 3: the next four slots wrap past the end.
    assert_eq!(tx.push_slice(&[4, 5, 6, 7]), 3);
    assert_eq!(tx.push_slice(&[8]), 0);
    let mut out = [0; 6];
    assert_eq!(rx.pop_slice(&mut out), 4);
    assert_eq!(out, [3, 4, 5, 6, 0, 0]);
    assert_eq!(rx.pop_slice(&mut []), 0);
}

#[test]
fn push_iter_takes_only_what_it_can_store() {
    let (mut tx, mut rx) = spsc::channel(4);
    let mut it = 0..10;
    assert_eq!(tx.push_iter(&mut it), 4);
    assert_eq!(it, 4..10);
    assert_eq!(tx.push_iter(&mut it), 0);
    assert_eq!(it, 4..10, "a full ring takes nothing");
    assert_eq!(rx.try_pop(), Ok(0));
    // An iterator without an upper size bound.
    let mut unbounded = (100..).filter(|_| true);
    assert_eq!(tx.push_iter(&mut unbounded), 1);
    assert_eq!(unbounded.next(), Some(101));
    // A short iterator across the wrap.
    assert_eq!(rx.pop_batch(&mut Vec::new(), 3), Ok(3));
    let mut short = [7, 8].into_iter();
    assert_eq!(tx.push_iter(&mut short), 2);
    let mut out = Vec::new();
    assert_eq!(rx.pop_batch(&mut out, 10), Ok(3));
    assert_eq!(out, [100, 7, 8]);
    assert_eq!(tx.push_iter(&mut std::iter::empty()), 0);
}

#[test]
fn pop_batch_appends_up_to_max() {
    let (mut tx, mut rx) = spsc::channel(5);
    tx.push_slice(&[1, 2, 3, 4, 5]);
    let mut out = vec![0];
    assert_eq!(rx.pop_batch(&mut out, 0), Ok(0), "max 0 moves nothing");
    assert_eq!(rx.pop_batch(&mut out, 2), Ok(2));
    assert_eq!(tx.push_slice(&[6, 7]), 2); // wraps
    assert_eq!(rx.pop_batch(&mut out, 100), Ok(5));
    assert_eq!(out, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(rx.pop_batch(&mut out, 100), Err(TryPopError::Empty));
    assert_eq!(
        out,
        [0, 1, 2, 3, 4, 5, 6, 7],
        "a failed pop_batch leaves `out` alone"
    );
}

#[test]
fn slots_and_len_are_exact_when_idle() {
    let (mut tx, mut rx) = spsc::channel(6);
    let mut model = 0usize;
    for step in 0..40usize {
        if step % 3 == 2 {
            model -= rx.pop_batch(&mut Vec::new(), step % 5).unwrap_or(0);
        } else {
            model += tx.push_slice(&[0u8; 4][..step % 4]);
        }
        assert_eq!(rx.len(), model);
        assert_eq!(tx.slots(), 6 - model);
        assert_eq!(rx.is_empty(), model == 0);
    }
}

// ------------------------------------------------------------ drop counting

#[test]
fn try_push_ok_full_and_closed_drop_each_item_once() {
    let c = Counter::new();
    let (mut tx, mut rx) = spsc::channel(1);
    tx.try_push(c.item(1)).unwrap();
    let full = tx.try_push(c.item(2)).unwrap_err();
    assert!(matches!(&full, TryPushError::Full(item) if item.id == 2));
    assert_eq!(c.drops(), 0);
    drop(full);
    assert_eq!(c.drops(), 1);
    let popped = rx.try_pop().unwrap();
    assert_eq!((popped.id, c.drops()), (1, 1));
    drop(popped);
    assert_eq!(c.drops(), 2);
    drop(rx);
    let closed = tx.try_push(c.item(3)).unwrap_err();
    assert!(matches!(&closed, TryPushError::Closed(item) if item.id == 3));
    drop(closed);
    drop(tx);
    assert_eq!(c.drops(), 3);
}

#[test]
fn blocking_push_errors_drop_each_item_once() {
    let c = Counter::new();
    let (mut tx, rx) = spsc::channel(1);
    tx.push(c.item(1)).unwrap();
    let timeout = tx
        .push_timeout(c.item(2), Duration::from_millis(1))
        .unwrap_err();
    assert_eq!(timeout.into_inner().id, 2);
    drop(rx);
    assert_eq!(tx.push(c.item(3)).unwrap_err().into_inner().id, 3);
    assert_eq!(c.drops(), 2);
    drop(tx);
    assert_eq!(c.drops(), 3);
}

/// `push_slice`/`pop_slice` need `T: Copy`, and a `Copy` type cannot have a
/// `Drop`; what there is to check is that every value arrives exactly once.
#[test]
fn push_slice_and_pop_slice_move_every_value_once() {
    let (mut tx, mut rx) = spsc::channel(7);
    let mut sent = 0u32;
    let mut got = Vec::new();
    for round in 0..50u32 {
        let batch: Vec<u32> = (sent..sent + round % 9).collect();
        sent += tx.push_slice(&batch) as u32;
        let mut out = vec![0; (round % 5) as usize];
        let n = rx.pop_slice(&mut out);
        got.extend_from_slice(&out[..n]);
    }
    let mut out = [0; 7];
    let n = rx.pop_slice(&mut out);
    got.extend_from_slice(&out[..n]);
    assert_eq!(got, (0..sent).collect::<Vec<_>>());
}

#[test]
fn push_iter_and_pop_batch_drop_each_item_once() {
    let c = Counter::new();
    let (mut tx, mut rx) = spsc::channel(3);
    let mut source = (0..5).map(|i| c.item(i));
    assert_eq!(tx.push_iter(&mut source), 3);
    assert_eq!(c.drops(), 0, "nothing taken and discarded");
    let mut out = Vec::new();
    assert_eq!(rx.pop_batch(&mut out, 2), Ok(2));
    assert_eq!(tx.push_iter(&mut source), 2);
    assert_eq!(rx.pop_batch(&mut out, 10), Ok(3));
    assert_eq!(ids(&out), [0, 1, 2, 3, 4]);
    assert_eq!(c.drops(), 0);
    drop(out);
    assert_eq!(c.drops(), 5);
    drop((tx, rx));
    assert_eq!(c.drops(), 5);
}

#[test]
fn push_iter_with_a_panicking_iterator_publishes_what_it_took() {
    let c = Counter::new();
    let (mut tx, mut rx) = spsc::channel(8);
    tx.try_push(c.item(100)).unwrap();
    let mut source = (0..6).map(|i| {
        assert!(i != 3, "iterator fails at 3");
        c.item(i)
    });
    let caught = catch_unwind(AssertUnwindSafe(|| tx.push_iter(&mut source)));
    assert!(caught.is_err());
    assert_eq!(c.drops(), 0);
    assert_eq!(rx.len(), 4);
    // The producer is still usable after the panic.
    tx.try_push(c.item(200)).unwrap();
    let mut out = Vec::new();
    assert_eq!(rx.pop_batch(&mut out, 10), Ok(5));
    assert_eq!(ids(&out), [100, 0, 1, 2, 200]);
    drop(out);
    drop((tx, rx));
    assert_eq!(c.drops(), 5);
}

#[test]
fn dropping_the_halves_drops_what_is_inside_once_in_either_order() {
    for consumer_first in [false, true] {
        for popped in 0..4 {
            let c = Counter::new();
            let (mut tx, mut rx) = spsc::channel(4);
            // Move head and tail past the wrap so the leftovers straddle it.
            for i in 0..6 {
                tx.try_push(c.item(i)).unwrap_or_else(|_| panic!("room"));
                if i % 2 == 1 {
                    drop(rx.try_pop().unwrap());
                }
            }
            for _ in 0..popped.min(rx.len()) {
                drop(rx.try_pop().unwrap());
            }
            let popped_total = c.drops();
            let inside = rx.len();
            assert_eq!(popped_total + inside, 6);
            if consumer_first {
                drop(rx);
                assert_eq!(c.drops(), popped_total, "the producer still holds the ring");
                drop(tx);
            } else {
                drop(tx);
                drop(rx);
            }
            assert_eq!(c.drops(), 6);
        }
    }
}

#[test]
fn an_item_whose_drop_panics_does_not_leak_the_others() {
    struct Bomb(u8, Arc<AtomicUsize>);
    impl Drop for Bomb {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
            assert!(self.0 != 1, "bomb");
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, rx) = spsc::channel(4);
    for i in 0..4 {
        assert!(tx.try_push(Bomb(i, Arc::clone(&drops))).is_ok());
    }
    drop(rx);
    assert!(catch_unwind(AssertUnwindSafe(|| drop(tx))).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

// ----------------------------------------------------- model-based proptest

#[derive(Debug, Clone)]
enum Op {
    TryPush,
    TryPop,
    PushSlice(usize),
    PushIter(usize),
    PopBatch(usize),
    PopSlice(usize),
    PushTimeout,
    PopTimeout,
    WaitSlots(usize),
    WaitLen(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::TryPush),
        4 => Just(Op::TryPop),
        2 => (0usize..10).prop_map(Op::PushSlice),
        2 => (0usize..10).prop_map(Op::PushIter),
        2 => (0usize..10).prop_map(Op::PopBatch),
        2 => (0usize..10).prop_map(Op::PopSlice),
        1 => Just(Op::PushTimeout),
        1 => Just(Op::PopTimeout),
        1 => (0usize..10).prop_map(Op::WaitSlots),
        1 => (0usize..10).prop_map(Op::WaitLen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_a_vecdeque(capacity in 1usize..8, ops in proptest::collection::vec(op(), 0..120)) {
        let (mut tx, mut rx) = spsc::channel::<u32>(capacity);
        let mut model = VecDeque::new();
        let mut next = 0u32;
        let mut fresh = |n: usize| { let v: Vec<u32> = (next..next + n as u32).collect(); next += n as u32; v };
        for op in ops {
            let room = capacity - model.len();
            match op {
                Op::TryPush => {
                    let v = fresh(1)[0];
                    match tx.try_push(v) {
                        Ok(()) => { prop_assert!(room > 0); model.push_back(v); }
                        Err(e) => { prop_assert_eq!(room, 0); prop_assert_eq!(e, TryPushError::Full(v)); }
                    }
                }
                Op::TryPop => prop_assert_eq!(rx.try_pop().ok(), model.pop_front()),
                Op::PushSlice(n) => {
                    let items = fresh(n);
                    let k = tx.push_slice(&items);
                    prop_assert_eq!(k, n.min(room));
                    model.extend(&items[..k]);
                }
                Op::PushIter(n) => {
                    let items = fresh(n);
                    let mut it = items.clone().into_iter();
                    let k = tx.push_iter(&mut it);
                    prop_assert_eq!(k, n.min(room));
                    prop_assert_eq!(it.len(), n - k);
                    model.extend(&items[..k]);
                }
                Op::PopBatch(max) => {
                    let mut out = Vec::new();
                    let was_empty = model.is_empty();
                    let k = rx.pop_batch(&mut out, max);
                    let want: Vec<u32> = model.drain(..max.min(model.len())).collect();
                    if was_empty {
                        prop_assert_eq!(k, Err(TryPopError::Empty));
                    } else {
                        prop_assert_eq!(k, Ok(want.len()));
                    }
                    prop_assert_eq!(out, want);
                }
                Op::PopSlice(len) => {
                    let mut out = vec![u32::MAX; len];
                    let k = rx.pop_slice(&mut out);
                    let want: Vec<u32> = model.drain(..len.min(model.len())).collect();
                    prop_assert_eq!(&out[..k], &want[..]);
                }
                Op::PushTimeout => {
                    let v = fresh(1)[0];
                    match tx.push_timeout(v, Duration::ZERO) {
                        Ok(()) => { prop_assert!(room > 0); model.push_back(v); }
                        Err(e) => { prop_assert_eq!(room, 0); prop_assert_eq!(e, PushTimeoutError::Timeout(v)); }
                    }
                }
                Op::PopTimeout => match rx.pop_timeout(Duration::ZERO) {
                    Ok(v) => prop_assert_eq!(Some(v), model.pop_front()),
                    Err(e) => { prop_assert!(model.is_empty()); prop_assert_eq!(e, PopTimeoutError::Timeout); }
                },
                Op::WaitSlots(n) => {
                    let n = n.min(capacity);
                    let r = tx.wait_for_slots(n, Some(Duration::ZERO));
                    prop_assert_eq!(r.is_ok(), room >= n);
                }
                Op::WaitLen(n) => {
                    let n = n.min(capacity);
                    let r = rx.wait_for_len(n, Some(Duration::ZERO));
                    prop_assert_eq!(r.is_ok(), model.len() >= n);
                }
            }
            prop_assert_eq!(rx.len(), model.len());
            prop_assert_eq!(tx.slots(), capacity - model.len());
        }
        drop(tx);
        let mut rest = Vec::new();
        let _ = rx.pop_batch(&mut rest, capacity); // Err(Closed) when the model is empty
        prop_assert_eq!(rest, model.into_iter().collect::<Vec<_>>());
        prop_assert_eq!(rx.try_pop(), Err(TryPopError::Closed));
    }
}

// -------------------------------------------------------------------- stress

/// Ten million sequence numbers through a small ring, both sides mixing
/// single and batch operations, blocking and non-blocking: each number must
/// arrive exactly once and in order.
#[test]
fn ten_million_sequence_numbers_arrive_once_in_order() {
    const N: u64 = 10_000_000;
    let (mut tx, mut rx) = spsc::channel::<u64>(1024);
    let start = Arc::new(Barrier::new(2));

    let s = Arc::clone(&start);
    let producer = thread::spawn(move || {
        s.wait();
        let mut next = 0u64;
        let mut buf = [0u64; 64];
        let mut round = 0u64;
        while next < N {
            round += 1;
            let left = N - next;
            match round % 6 {
                0 | 1 => {
                    tx.push(next).unwrap();
                    next += 1;
                }
                2 => {
                    if tx.try_push(next).is_ok() {
                        next += 1;
                    }
                }
                3 | 4 => {
                    let n = (1 + round % 64).min(left) as usize;
                    for (i, b) in buf[..n].iter_mut().enumerate() {
                        *b = next + i as u64;
                    }
                    tx.wait_for_slots(1, None).unwrap();
                    next += tx.push_slice(&buf[..n]) as u64;
                }
                _ => {
                    let end = (next + 1 + round % 50).min(N);
                    let mut it = next..end;
                    tx.wait_for_slots(1, None).unwrap();
                    next += tx.push_iter(&mut it) as u64;
                }
            }
        }
    });

    start.wait();
    let mut expected = 0u64;
    let mut batch = Vec::with_capacity(64);
    let mut buf = [0u64; 64];
    let mut round = 0u64;
    while expected < N {
        round += 1;
        match round % 5 {
            0 | 1 => {
                assert_eq!(rx.pop(), Ok(expected));
                expected += 1;
            }
            2 => {
                if let Ok(v) = rx.try_pop() {
                    assert_eq!(v, expected);
                    expected += 1;
                }
            }
            3 => {
                rx.wait_for_len(1, None).unwrap();
                batch.clear();
                rx.pop_batch(&mut batch, 1 + (round % 64) as usize)
                    .expect("wait_for_len saw an item");
                for &v in &batch {
                    assert_eq!(v, expected);
                    expected += 1;
                }
            }
            _ => {
                rx.wait_for_len(1, None).unwrap();
                let n = rx.pop_slice(&mut buf[..1 + (round % 64) as usize]);
                for &v in &buf[..n] {
                    assert_eq!(v, expected);
                    expected += 1;
                }
            }
        }
    }
    producer.join().unwrap();
    assert_eq!(rx.pop(), Err(PopClosedError));
}
