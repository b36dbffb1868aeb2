//! Closing a buffer joins its engine's threads: none outlives it, which
//! matters to C programs that unload the library. Alone in its own test
//! binary, so no other test's engine threads are counted.

#![cfg(target_os = "linux")]

use std::time::Duration;

use spillway::{Buffer, BufferConfig, Engine, FlushContext, SinkError};

/// How many threads this process has now. Exact at once: a spawned thread
/// exists when `spawn` returns (its name, set by the thread itself, may lag).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs")
        .count()
}

/// The thread count once it reaches `want`, or after 5 s. A joined thread
/// has finished, but the kernel may list it in /proc/self/task for a moment
/// after `pthread_join` returns (its task is released after the join's
/// wake-up), and nothing signals that release: so this polls, bounded.
fn threads_settled_to(want: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = threads();
        if n == want || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::yield_now();
    }
}

#[test]
fn close_and_stop_leave_no_thread_behind() {
    let before = threads();
    let buf = Buffer::new(
        BufferConfig::new().workers(3),
        |_: &[u32], _: &FlushContext<'_>| Ok::<(), SinkError>(()),
    )
    .unwrap();
    assert_eq!(threads(), before + 4, "3 flushers and a timer");
    buf.insert(1).unwrap();
    let report = buf.close(Duration::from_secs(5));
    assert_eq!(report.counts.delivered, 1);
    assert_eq!(
        threads_settled_to(before),
        before,
        "close joins every thread of a private engine"
    );

    let engine = Engine::new(2).unwrap();
    let b = Buffer::builder(BufferConfig::new())
        .sink(|_: &[u32], _: &FlushContext<'_>| Ok::<(), SinkError>(()))
        .engine(&engine)
        .build()
        .unwrap();
    b.insert(1).unwrap();
    assert_eq!(threads(), before + 3);
    engine.stop(Duration::from_secs(5));
    assert_eq!(
        threads_settled_to(before),
        before,
        "stop joins every thread"
    );
    drop(b);
    drop(engine);
    assert_eq!(threads_settled_to(before), before);
}
