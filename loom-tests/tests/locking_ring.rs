//! Loom models of `LockingRing`'s lock and wake-up protocol.
//!
//! Every model blocks somewhere, so a missing notification shows up as a
//! deadlock that loom reports. None relies on a timeout (loom's timed waits
//! never time out), and every model ends with the ring closed or drained.
#![cfg(loom)]

use std::collections::VecDeque;
use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use spillway::ring::{ClosedError, LockingRing, PopClosedError, TryPopError, TryPushError};

/// Two producers block on a one-slot ring; one consumer pops until closed.
/// Every item arrives exactly once and each producer's items keep their order.
///
/// The largest model here: every push and pop takes two `FenceLock`s, whose
/// unlock is three steps (store, fence, load) where a loom mutex's is one,
/// and at 3 preemptions it ran for 344 s alone, where the whole file
/// takes 26 s with it at 2 (2026-12-03, idle machine; see BENCHMARKS.md).
/// It is bounded at 2; the lock's own models (`tests/fence_lock.rs`) and
/// every other model here run at the full bound.
#[test]
fn two_producers_one_consumer() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(model.preemption_bound.map_or(2, |b| b.min(2)));
    model.check(|| {
        let ring = Arc::new(LockingRing::new(1));
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || {
                    for i in 0..2u32 {
                        ring.push((p, i)).unwrap();
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        while got.len() < 4 {
            got.push(ring.pop().unwrap());
        }
        for h in producers {
            h.join().unwrap();
        }
        ring.close();
        assert_eq!(ring.pop(), Err(PopClosedError));
        for p in 0..2 {
            let mine: Vec<u32> = got
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|&(_, i)| i)
                .collect();
            assert_eq!(mine, [0, 1], "producer {p}: {got:?}");
        }
    });
}

/// Two poppers block on an empty ring (one through the timed path, whose
/// deadline never comes under loom); two blocking pushes through a one-slot
/// ring must wake both, one `notify_one` per item.
#[test]
fn two_blocked_poppers_one_producer() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(1));
        let untimed = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.pop().unwrap())
        };
        let timed = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.pop_timeout(Duration::from_secs(3600)).unwrap())
        };
        ring.push_timeout(1, Duration::from_secs(3600)).unwrap();
        ring.push(2).unwrap();
        let mut got = [untimed.join().unwrap(), timed.join().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        ring.close();
    });
}

/// `force_push` on a full ring races a pop: each item ends up exactly once
/// as popped, evicted or still inside.
#[test]
fn force_push_races_pop() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(1));
        ring.push(0).unwrap();
        let pusher = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.force_push(1).unwrap())
        };
        let popped = ring.try_pop().ok();
        let evicted = pusher.join().unwrap();
        ring.close();
        let mut all: Vec<i32> = popped.into_iter().chain(evicted).collect();
        all.extend(ring.take_all());
        all.sort_unstable();
        assert_eq!(all, [0, 1]);
        // The newest item is never the one evicted.
        assert_ne!(evicted, Some(1));
    });
}

/// A blocking producer, a popper and `take_all` race: what was pushed is
/// exactly what was taken, popped or is still inside, each part in order.
#[test]
fn take_all_races_pushes() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(2));
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                for i in 0..3 {
                    ring.push(i).unwrap();
                }
                ring.close();
            })
        };
        let popper = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(v) = ring.pop() {
                    got.push(v);
                }
                got
            })
        };
        let taken: Vec<i32> = ring.take_all().into();
        producer.join().unwrap();
        let popped = popper.join().unwrap();
        // The popper only stops once closed and drained.
        assert!(ring.is_empty());
        assert!(taken.windows(2).all(|w| w[0] < w[1]), "{taken:?}");
        assert!(popped.windows(2).all(|w| w[0] < w[1]), "{popped:?}");
        let mut all: Vec<i32> = taken.iter().chain(&popped).copied().collect();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2], "taken {taken:?} popped {popped:?}");
    });
}

/// `close` wakes a pusher blocked on a full ring: it gets its item back, and
/// what was inside still drains.
#[test]
fn close_wakes_blocked_pusher() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(1));
        ring.push(0).unwrap();
        let pusher = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.push(1))
        };
        ring.close();
        assert_eq!(
            pusher.join().unwrap().map_err(ClosedError::into_inner),
            Err(1)
        );
        assert_eq!(ring.try_pop(), Ok(0));
        assert_eq!(ring.try_pop(), Err(TryPopError::Closed));
    });
}

/// `close` wakes a blocked popper, which first drains what was pushed before
/// the close and then reports closed.
#[test]
fn close_wakes_blocked_popper() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::<i32>::new(1));
        let popper = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let first = ring.pop();
                let second = ring.pop();
                (first, second)
            })
        };
        ring.push(7).unwrap();
        ring.close();
        assert_eq!(popper.join().unwrap(), (Ok(7), Err(PopClosedError)));
        assert_eq!(ring.try_push(8), Err(TryPushError::Closed(8)));
    });
}

/// A pusher blocked on a full ring is woken by a pop.
#[test]
fn blocked_push_woken_by_pop() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(1));
        ring.push(0).unwrap();
        let pusher = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.push(1).unwrap())
        };
        assert_eq!(ring.pop(), Ok(0));
        assert_eq!(ring.pop(), Ok(1));
        pusher.join().unwrap();
        ring.close();
    });
}

/// A popper blocked on an empty ring is woken by a push.
#[test]
fn blocked_pop_woken_by_push() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(1));
        let popper = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.pop().unwrap())
        };
        ring.push(1).unwrap();
        assert_eq!(popper.join().unwrap(), 1);
        ring.close();
    });
}

/// One `pop_batch` that frees two slots must wake both pushers blocked on
/// them: nobody pops again until both pushes have returned.
#[test]
fn pop_batch_wakes_every_pusher_it_made_room_for() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(2));
        ring.push(0).unwrap();
        ring.push(1).unwrap();
        let pushers: Vec<_> = (2..4)
            .map(|v| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || ring.push(v).unwrap())
            })
            .collect();
        let mut out = Vec::new();
        assert_eq!(ring.pop_batch(&mut out, 2), Ok(2));
        assert_eq!(out, [0, 1]);
        for h in pushers {
            h.join().unwrap();
        }
        ring.close();
        let mut rest: Vec<i32> = ring.take_all().into();
        rest.sort_unstable();
        assert_eq!(rest, [2, 3]);
    });
}

/// `take_all_into` with an empty spare swaps storage; items and order survive
/// a blocked pusher being woken by it.
#[test]
fn take_all_into_wakes_blocked_pusher() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(1));
        ring.push(0).unwrap();
        let pusher = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.push(1).unwrap())
        };
        let mut spare = VecDeque::new();
        let mut got = Vec::new();
        while got.len() < 2 {
            if ring.take_all_into(&mut spare) == 0 {
                got.push(ring.pop().unwrap());
            }
            got.extend(spare.drain(..));
        }
        pusher.join().unwrap();
        ring.close();
        assert_eq!(got, [0, 1]);
    });
}

/// The pushers' wake-up protocol across the two halves: the consumer frees
/// slots from its cache without the producers' lock and looks at the
/// pushers' waiter count with no lock, behind the light half of the fence
/// pair; a pusher counts itself and re-checks behind the heavy half. Two
/// pushers block on a full one-slot ring whose item sits in the cache;
/// every pop must wake the pusher it made room for. Fails (deadlock) without
/// the heavy fence: `loom-tests/breakage.sh`.
#[test]
fn pusher_blocked_on_the_cache_is_woken_by_each_pop() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(1));
        ring.push(0).unwrap();
        let pusher = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                ring.push(1).unwrap();
                ring.push(2).unwrap();
            })
        };
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(ring.pop().unwrap());
        }
        pusher.join().unwrap();
        assert_eq!(got, [0, 1, 2]);
        assert!(ring.is_empty());
        ring.close();
    });
}

/// A batch popper waits for two items on its own condition; the push that
/// completes the batch must wake it, and the one before must not be needed
/// to (it wakes nobody: the count is not reached).
#[test]
fn batch_popper_woken_by_the_push_that_completes_its_batch() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(2));
        let popper = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let mut out = Vec::new();
                let got = ring.pop_batch_timeout(&mut out, 2, Duration::from_secs(3600));
                (got, out)
            })
        };
        ring.push(0).unwrap();
        ring.push(1).unwrap();
        let (got, out) = popper.join().unwrap();
        assert_eq!(got, Ok(2));
        assert_eq!(out, [0, 1]);
        ring.close();
    });
}

/// Two batch poppers wait for different counts (2 and 1) and share the
/// tail's one threshold, the smaller; the push that reaches it wakes both,
/// and the one still short registers again. Three pushes must serve both.
#[test]
fn batch_poppers_with_different_counts_share_one_threshold() {
    loom::model(|| {
        let ring = Arc::new(LockingRing::new(3));
        let poppers: Vec<_> = [2, 1]
            .into_iter()
            .map(|n| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || {
                    let mut out = Vec::new();
                    let got = ring.pop_batch_timeout(&mut out, n, Duration::from_secs(3600));
                    assert_eq!(got, Ok(n));
                    out
                })
            })
            .collect();
        for v in 0..3 {
            ring.push(v).unwrap();
        }
        let mut all: Vec<i32> = poppers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2]);
        ring.close();
    });
}
