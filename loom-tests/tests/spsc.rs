//! Loom models of `spillway::ring::spsc`: the data hand-over through the
//! slots, the index publications, the wake-up protocol and the drop paths.
//! No model depends on a timeout; a lost wake-up shows up as a deadlock.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use spillway::ring::spsc;
use spillway::ring::{ClosedError, PopClosedError, TryPopError, TryPushError};

/// Pushes `items` with `try_push`, yielding while full.
fn spin_push(tx: &mut spsc::Producer<u32>, items: impl IntoIterator<Item = u32>) {
    for mut v in items {
        loop {
            match tx.try_push(v) {
                Ok(()) => break,
                Err(TryPushError::Full(back)) => v = back,
                Err(TryPushError::Closed(_)) => panic!("closed while pushing"),
            }
            thread::yield_now();
        }
    }
}

/// Pops `n` items with `try_pop`, yielding while empty.
fn spin_pop(rx: &mut spsc::Consumer<u32>, n: usize) -> Vec<u32> {
    let mut got = Vec::new();
    while got.len() < n {
        match rx.try_pop() {
            Ok(v) => got.push(v),
            Err(TryPopError::Empty) => thread::yield_now(),
            Err(TryPopError::Closed) => panic!("closed before {n} items"),
        }
    }
    got
}

fn wraps_around(capacity: usize, items: u32) {
    loom::model(move || {
        let (mut tx, mut rx) = spsc::channel(capacity);
        let producer = thread::spawn(move || spin_push(&mut tx, 0..items));
        assert_eq!(
            spin_pop(&mut rx, items as usize),
            (0..items).collect::<Vec<_>>()
        );
        producer.join().unwrap();
        assert_eq!(rx.try_pop(), Err(TryPopError::Closed));
    });
}

/// Three items through one slot: the position runs 0, 1, 0, 1.
#[test]
fn try_push_try_pop_wrap_around_capacity_1() {
    wraps_around(1, 3);
}

/// Five items through two slots: positions run 0..4 and wrap to 0.
#[test]
fn try_push_try_pop_wrap_around_capacity_2() {
    wraps_around(2, 5);
}

/// The producer blocks on a full ring; only the consumer's pop can wake it.
#[test]
fn producer_blocked_on_full_is_woken_by_pop() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel(1);
        tx.try_push(1u32).unwrap();
        let producer = thread::spawn(move || {
            tx.push(2).unwrap();
            tx
        });
        assert_eq!(rx.try_pop(), Ok(1));
        let tx = producer.join().unwrap();
        assert_eq!(rx.try_pop(), Ok(2));
        drop(tx);
    });
}

/// The consumer blocks on an empty ring; only the producer's push can wake
/// it.
#[test]
fn consumer_blocked_on_empty_is_woken_by_push() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel(1);
        let consumer = thread::spawn(move || {
            let v = rx.pop();
            (v, rx)
        });
        tx.try_push(7u32).unwrap();
        let (v, rx) = consumer.join().unwrap();
        assert_eq!(v, Ok(7));
        drop((tx, rx));
    });
}

/// Both sides block in turn through one slot, so both flags and both
/// condition variables are in play at once.
#[test]
fn blocking_push_and_pop_ping_pong() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel(1);
        let producer = thread::spawn(move || {
            for i in 0..3u32 {
                tx.push(i).unwrap();
            }
        });
        for i in 0..3 {
            assert_eq!(rx.pop(), Ok(i));
        }
        assert_eq!(rx.pop(), Err(PopClosedError));
        producer.join().unwrap();
    });
}

/// Two-byte elements through a three-byte ring, as the C ABI moves them:
/// each side waits for a whole element (a wake-up for one byte is not
/// enough), and the consumer never sees half of one.
#[test]
fn whole_elements_through_a_byte_ring() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel::<u8>(3);
        let producer = thread::spawn(move || {
            for e in [[1u8, 2], [3, 4]] {
                tx.wait_for_slots(2, None).unwrap();
                assert_eq!(tx.push_slice(&e), 2);
            }
        });
        for e in [[1u8, 2], [3, 4]] {
            rx.wait_for_len(2, None).unwrap();
            let mut buf = [0; 2];
            assert_eq!(rx.pop_slice(&mut buf), 2);
            assert_eq!(buf, e);
        }
        producer.join().unwrap();
    });
}

/// Batches in both directions with one publication each, waiting for room
/// and for items in between.
#[test]
fn push_slice_and_pop_batch_hand_over_batches() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel(2);
        let producer = thread::spawn(move || {
            let items = [1u32, 2, 3];
            let mut sent = 0;
            while sent < items.len() {
                tx.wait_for_slots(1, None).unwrap();
                sent += tx.push_slice(&items[sent..]);
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            rx.wait_for_len(1, None).unwrap();
            rx.pop_batch(&mut got, 3).unwrap();
        }
        assert_eq!(got, [1, 2, 3]);
        producer.join().unwrap();
    });
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Both halves go on different threads while items are inside (and while
/// one may be in flight): each of the two items made is dropped exactly
/// once, by the consumer, by a push error, or with the ring.
#[test]
fn items_left_inside_are_dropped_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = spsc::channel(2);
        let d = Arc::clone(&drops);
        let producer = thread::spawn(move || {
            for _ in 0..2 {
                // Closed if the consumer is already gone: the item comes
                // back in the error and is dropped with it.
                let _ = tx.try_push(Counted(Arc::clone(&d)));
            }
        });
        if let Ok(item) = rx.try_pop() {
            drop(item);
        }
        drop(rx);
        producer.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// The consumer goes while the producer waits for room: the producer wakes
/// and gets its item back.
#[test]
fn consumer_dropped_while_producer_blocked_gives_closed() {
    loom::model(|| {
        let (mut tx, rx) = spsc::channel(1);
        tx.try_push(1u32).unwrap();
        let producer = thread::spawn(move || tx.push(2));
        drop(rx);
        assert_eq!(producer.join().unwrap(), Err(ClosedError(2)));
    });
}

/// The producer goes after publishing: the consumer, possibly already
/// asleep, drains the item and then learns the ring is closed.
#[test]
fn producer_dropped_consumer_drains_then_closed() {
    loom::model(|| {
        let (mut tx, mut rx) = spsc::channel(1);
        let producer = thread::spawn(move || {
            tx.try_push(1u32).unwrap();
        });
        assert_eq!(rx.pop(), Ok(1));
        assert_eq!(rx.pop(), Err(PopClosedError));
        producer.join().unwrap();
    });
}
