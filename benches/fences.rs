//! What each half of the asymmetric fence pair costs on this machine, and
//! what the one-locked-instruction lock costs its owner: the figures behind
//! where spillway puts its heavy fences (`src/sync.rs`).
//!
//! The heavy fence, `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`,
//! interrupts every CPU that runs a thread of this process, and waits for
//! them. So it is timed twice: with the process's other threads asleep, and
//! with one of them running on another core (a spinning thread), which is
//! the case on a hot path, where the other side of the protocol is busy.
//! A design that moved a partition lock's cost from the inserting thread to
//! the flusher (the inserting thread pays the light fence, the flusher the
//! heavy one, a few times a batch) would pay the second figure a few times
//! per `max_size` items: BENCHMARKS.md works it through.
//!
//! `cargo bench --bench fences` (or `bash scripts/bench.sh fences`).
//! `SPILLWAY_BENCH_RUNS` runs (default 7) of each row, interleaved; the
//! median and the spread are printed in nanoseconds per operation.

mod common;

use std::hint::black_box;
use std::sync::atomic::{compiler_fence, fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use rustix::thread::{membarrier, membarrier_query, MembarrierCommand, MembarrierQuery};

#[derive(Clone, Copy)]
enum Row {
    /// A store, a compiler fence and a load: the light fence's side of a
    /// publication where `membarrier` is there.
    Light,
    /// `fence(SeqCst)`: both sides' fence where it is not.
    SeqCst,
    /// Compare-and-swap to take a lock, release store to drop it: what an
    /// uncontended `FenceLock` costs its owner.
    LockPair,
    /// `membarrier`, the process's other threads asleep.
    HeavyIdle,
    /// `membarrier`, with one other thread of the process running.
    HeavyBusy,
}

impl Row {
    const ALL: [Row; 5] = [
        Row::Light,
        Row::SeqCst,
        Row::LockPair,
        Row::HeavyIdle,
        Row::HeavyBusy,
    ];

    fn name(self) -> &'static str {
        match self {
            Row::Light => "light: store, compiler fence, load",
            Row::SeqCst => "fence(SeqCst)",
            Row::LockPair => "lock pair: compare-and-swap, release store",
            Row::HeavyIdle => "heavy: membarrier, other threads asleep",
            Row::HeavyBusy => "heavy: membarrier, another thread running",
        }
    }

    /// Operations per run: the system call is thousands of times slower.
    fn ops(self) -> u64 {
        match self {
            Row::HeavyIdle | Row::HeavyBusy => 20_000,
            _ => 20_000_000,
        }
    }
}

/// One run of `row`: nanoseconds per operation.
fn run(row: Row, flag: &AtomicBool) -> f64 {
    let ops = row.ops();
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = matches!(row, Row::HeavyBusy).then(|| {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n = black_box(n.wrapping_add(1));
            }
        })
    });
    let start = Instant::now();
    for _ in 0..ops {
        match row {
            Row::Light => {
                flag.store(true, Ordering::Relaxed);
                compiler_fence(Ordering::SeqCst);
                black_box(flag.load(Ordering::Relaxed));
            }
            Row::SeqCst => {
                flag.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                black_box(flag.load(Ordering::Relaxed));
            }
            Row::LockPair => {
                while flag
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {}
                flag.store(false, Ordering::Release);
            }
            Row::HeavyIdle | Row::HeavyBusy => {
                membarrier(MembarrierCommand::PrivateExpedited)
                    .expect("registered in main before any run");
            }
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / ops as f64;
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = spinner {
        t.join().expect("the spinning thread does not panic");
    }
    flag.store(false, Ordering::Relaxed);
    ns
}

fn main() {
    common::print_machine("fences");
    let supported = membarrier_query();
    if !supported
        .contains(MembarrierQuery::PRIVATE_EXPEDITED | MembarrierQuery::REGISTER_PRIVATE_EXPEDITED)
        || membarrier(MembarrierCommand::RegisterPrivateExpedited).is_err()
    {
        println!("membarrier(PRIVATE_EXPEDITED) is not available here: spillway uses fence(SeqCst) on both sides; nothing to measure");
        return;
    }
    let runs = std::env::var("SPILLWAY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7usize)
        .max(1);
    let flag = AtomicBool::new(false);
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); Row::ALL.len()];
    for _ in 0..runs {
        for (i, row) in Row::ALL.iter().enumerate() {
            results[i].push(run(*row, &flag));
        }
    }
    println!("ns per operation, median of {runs} interleaved runs (min - max)");
    for (row, values) in Row::ALL.iter().zip(&mut results) {
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        let med = common::median(values);
        println!("{:<45} {:>10.1} ({lo:.1} - {hi:.1})", row.name(), med);
    }
}
