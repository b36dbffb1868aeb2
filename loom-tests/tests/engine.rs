//! Loom models of the engine's threads (issue 11 section 1): the timer
//! thread's hand-off to a flusher thread, and the replacement of a flusher
//! stuck in a call past `flush_timeout`.
//!
//! Unlike the buffer models, these run on `Engine::new`, so the timer and
//! the flusher threads are loom threads. Loom does not model time: timed
//! waits are untimed, so `flush_timeout` is 1 ns, which has always passed
//! when the timer thread looks. Every call's watchdog therefore fires, and
//! loom explores every way it can meet the call: before the call returned
//! (the call is abandoned, its worker detached and replaced, its batch goes
//! again after its late return), after it (nothing happens), or past the
//! bound of one abandoned thread per worker (the call keeps its thread).
//! Whichever happens, the item is delivered or counted, the books balance,
//! and close joins every thread (a lost wake-up is a loom deadlock).
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::sync::{Arc as StdArc, Mutex as StdMutex};
use std::time::Duration;

use spillway::{Buffer, BufferConfig, Engine, FlushContext, SinkError};

/// Long enough never to pass while a model runs.
const NEVER: Duration = Duration::from_secs(3600);

#[test]
fn watchdog_abandons_and_replaces_a_worker_and_the_batch_goes_again() {
    // Executions by how many calls were abandoned (0, 1, 2): the model must
    // reach each, or it proves nothing about the replacement.
    static ABANDONED: [StdAtomicUsize; 3] = [
        StdAtomicUsize::new(0),
        StdAtomicUsize::new(0),
        StdAtomicUsize::new(0),
    ];
    loom::model(|| {
        let engine = Engine::new(1).unwrap();
        let log = StdArc::new(StdMutex::new(Vec::new()));
        let l = log.clone();
        let buf = Buffer::builder(
            BufferConfig::new()
                .max_size(1)
                .max_retries(1)
                .flush_timeout(Duration::from_nanos(1)),
        )
        .sink(move |b: &[u32], _: &FlushContext<'_>| {
            l.lock().unwrap().extend_from_slice(b);
            Ok::<(), SinkError>(())
        })
        .engine(&engine)
        .build()
        .unwrap();
        buf.insert(7).unwrap();
        let report = buf.close(NEVER);
        let c = report.counts.clone();
        assert!(c.is_conserved(), "{c:?}");
        assert!(!report.timed_out, "{report:?}");
        assert_eq!(report.running_calls, 0);
        // Every call's watchdog fires; each call is abandoned (a failed
        // attempt, requeued after its late return while retries are left)
        // or keeps its thread (then delivers). Abandoned at most twice:
        // attempt 0, then its retry, which is then dropped.
        assert_eq!(c.delivered + c.dropped, 1, "{c:?}");
        assert_eq!(c.abandoned, 0, "{c:?}");
        if c.dropped == 1 {
            assert_eq!((c.failed_flushes, c.retries), (2, 1), "{c:?}");
        } else {
            assert!(c.failed_flushes <= 1, "{c:?}");
            assert_eq!(c.retries, c.failed_flushes, "{c:?}");
        }
        let calls = c.failed_flushes + c.delivered;
        assert_eq!(c.flush_timeouts, calls, "every call ran past 1 ns: {c:?}");
        let seen = log.lock().unwrap().clone();
        assert_eq!(seen, vec![7; calls as usize], "one sink call per attempt");
        ABANDONED[c.failed_flushes as usize].fetch_add(1, StdOrdering::Relaxed);
        drop(buf);
        engine.stop(NEVER);
    });
    let runs: Vec<usize> = ABANDONED
        .iter()
        .map(|n| n.load(StdOrdering::Relaxed))
        .collect();
    assert!(
        runs.iter().all(|&n| n > 0),
        "executions by abandoned calls: {runs:?}"
    );
}
