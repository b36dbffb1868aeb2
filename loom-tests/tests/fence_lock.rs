//! Loom models of the lock under the locking ring (`src/ring/fence_lock.rs`)
//! and its event, alone: smaller than the ring's models, so loom explores
//! them at the test command's full preemption bound. The crate exposes the
//! lock only when built with `--cfg loom`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use spillway::ring::fence_lock::{Event, FenceLock};

/// Three threads add under the lock: no update is lost (loom also checks
/// that no two accesses to the data overlap), and a thread asleep on the
/// held lock is woken by its unlock (a lost wake-up is a loom deadlock).
#[test]
fn three_threads_exclude_each_other_and_all_finish() {
    loom::model(|| {
        let lock = Arc::new(FenceLock::new(0u32));
        let others: Vec<_> = (0..2)
            .map(|_| {
                let lock = Arc::clone(&lock);
                thread::spawn(move || *lock.lock() += 1)
            })
            .collect();
        *lock.lock() += 1;
        for t in others {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 3);
    });
}

/// A waiter on an event is woken by a change made under the lock and
/// notified after it, whichever thread runs first.
#[test]
fn a_waiter_sees_the_change_it_was_notified_of() {
    loom::model(|| {
        let shared = Arc::new((FenceLock::new(false), Event::new()));
        let setter = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                *shared.0.lock() = true;
                shared.1.notify_one();
            })
        };
        let mut set = shared.0.lock();
        while !*set {
            set.wait(&shared.1, None);
        }
        drop(set);
        setter.join().unwrap();
    });
}
