//! Throughput of a `Buffer` against the batching loop a Rust user writes by
//! hand, and how late its time trigger fires.
//!
//! Throughput: u64 items, `max_size` 1000, `capacity` 100 000, flush interval
//! 1 s, 1 flusher thread, and a sink that only counts. Each run moves
//! `SPILLWAY_BENCH_ITEMS` items (default 4 000 000) from 1 or 2 producer
//! threads and is timed from the common start until the sink has counted
//! every item (`close` for spillway; dropping the senders and joining the
//! collector for the baseline). The baseline is a `crossbeam_channel::bounded`
//! sender per producer and one collector thread that gathers `max_size` items
//! with `recv_timeout(flush_interval)` and calls the same counting function.
//! The median of `SPILLWAY_BENCH_RUNS` runs (default 7) is reported with the
//! slowest and fastest run beside it, and the ratio to the baseline with the
//! same number of producers.
//!
//! Lateness: a buffer with a 10 ms interval and a `max_size` that never
//! fills; one item is inserted after each flush, and each time flush's start
//! is compared with its deadline (the end of the previous flush + 10 ms; the
//! buffer restarts the interval a moment after the sink returns, so this
//! over-states lateness by that moment, never under-states it).
//! `SPILLWAY_BENCH_FLUSHES` flushes (default 300).
//!
//! `SPILLWAY_BENCH_PRODUCERS=2` runs only that producer count,
//! `SPILLWAY_BENCH_VARIANT=producer` only the rows whose name contains that
//! text (the baseline always runs, for the ratio), and
//! `SPILLWAY_BENCH_PART=throughput` or `=lateness` only that part.
//!
//! ```sh
//! cargo bench --bench buffer
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use spillway::{Buffer, BufferConfig, FlushContext, FlushReason, SinkError};

const MAX_SIZE: usize = 1000;
const CAPACITY: usize = 100_000;
const INTERVAL: Duration = Duration::from_secs(1);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The whole sink: what both spillway and the baseline call per batch.
fn count(counter: &AtomicU64, batch: &[u64]) {
    counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Baseline,
    Insert,
    InsertBatch,
    Producer,
}

#[derive(Clone, Copy)]
struct Row {
    kind: Kind,
    partitions: usize,
}

impl Row {
    fn name(&self) -> String {
        let base = match self.kind {
            Kind::Baseline => "crossbeam bounded + collector",
            Kind::Insert => "insert",
            Kind::InsertBatch => "insert_batch (1000 from a Vec)",
            Kind::Producer => "producer() handle",
        };
        if self.kind == Kind::Baseline {
            base.to_string()
        } else {
            format!("{base}, {} part.", self.partitions)
        }
    }
}

/// One producer thread's share of the items, `first..first + n`.
fn produce_into_buffer(kind: Kind, buf: &Buffer<u64>, start: &Barrier, first: u64, n: u64) {
    match kind {
        Kind::Insert => {
            start.wait();
            for v in first..first + n {
                buf.insert(v).expect("open, capacity never reached");
            }
        }
        Kind::InsertBatch => {
            let mut chunk = Vec::with_capacity(MAX_SIZE);
            start.wait();
            let end = first + n;
            let mut v = first;
            while v < end {
                let upto = end.min(v + MAX_SIZE as u64);
                chunk.extend(v..upto);
                buf.insert_batch(chunk.drain(..))
                    .expect("open, capacity never reached");
                v = upto;
            }
        }
        Kind::Producer => {
            let mut p = buf.producer();
            start.wait();
            for v in first..first + n {
                p.insert(v).expect("open");
            }
        }
        Kind::Baseline => unreachable!("not a buffer"),
    }
}

fn run_buffer(row: Row, producers: usize, per: u64) -> Duration {
    let counter = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&counter);
    let cfg = BufferConfig::new()
        .max_size(MAX_SIZE)
        .capacity(CAPACITY)
        .flush_interval(INTERVAL)
        .partitions(row.partitions)
        .workers(1);
    let buf = Buffer::new(cfg, move |b: &[u64], _: &FlushContext<'_>| {
        count(&c, b);
        Ok::<(), SinkError>(())
    })
    .expect("valid config");
    let start = Arc::new(Barrier::new(producers + 1));
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let (buf, start) = (buf.clone(), Arc::clone(&start));
            thread::spawn(move || produce_into_buffer(row.kind, &buf, &start, p as u64 * per, per))
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    for h in handles {
        h.join().expect("producer");
    }
    let report = buf.close(CLOSE_TIMEOUT);
    let t1 = Instant::now();
    let total = per * producers as u64;
    assert!(!report.timed_out, "close timed out");
    assert_eq!(
        counter.load(Ordering::Relaxed),
        total,
        "lost or duplicated items"
    );
    t1 - t0
}

fn run_baseline(producers: usize, per: u64) -> Duration {
    let counter = Arc::new(AtomicU64::new(0));
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let start = Arc::new(Barrier::new(producers + 2));
    let collector = {
        let (counter, start) = (Arc::clone(&counter), Arc::clone(&start));
        thread::spawn(move || {
            let mut batch = Vec::with_capacity(MAX_SIZE);
            start.wait();
            loop {
                match rx.recv_timeout(INTERVAL) {
                    Ok(v) => {
                        batch.push(v);
                        if batch.len() == MAX_SIZE {
                            count(&counter, &batch);
                            batch.clear();
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        if !batch.is_empty() {
                            count(&counter, &batch);
                            batch.clear();
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        if !batch.is_empty() {
                            count(&counter, &batch);
                        }
                        return;
                    }
                }
            }
        })
    };
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let (tx, start) = (tx.clone(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let first = p as u64 * per;
                for v in first..first + per {
                    tx.send(v).expect("collector alive");
                }
            })
        })
        .collect();
    drop(tx);
    start.wait();
    let t0 = Instant::now();
    for h in handles {
        h.join().expect("producer");
    }
    collector.join().expect("collector");
    let t1 = Instant::now();
    assert_eq!(
        counter.load(Ordering::Relaxed),
        per * producers as u64,
        "lost or duplicated items"
    );
    t1 - t0
}

fn run_once(row: Row, producers: usize, items: u64) -> Duration {
    let per = items / producers as u64;
    match row.kind {
        Kind::Baseline => run_baseline(producers, per),
        _ => run_buffer(row, producers, per),
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn throughput() {
    let items = env_or("SPILLWAY_BENCH_ITEMS", 4_000_000);
    let runs = env_or("SPILLWAY_BENCH_RUNS", 7).max(1) as usize;
    let only = env_or("SPILLWAY_BENCH_PRODUCERS", 0) as usize;
    let filter = std::env::var("SPILLWAY_BENCH_VARIANT").unwrap_or_default();
    println!(
        "u64 items, max_size {MAX_SIZE}, capacity {CAPACITY}, interval {INTERVAL:?}, \
         1 flusher, counting sink; {items} items per run, median of {runs} runs"
    );
    for producers in [1, 2].into_iter().filter(|&p| only == 0 || p == only) {
        let mut rows = vec![
            Row {
                kind: Kind::Baseline,
                partitions: 1,
            },
            Row {
                kind: Kind::Insert,
                partitions: 1,
            },
            Row {
                kind: Kind::InsertBatch,
                partitions: 1,
            },
            Row {
                kind: Kind::Producer,
                partitions: 1,
            },
        ];
        if producers == 2 {
            for kind in [Kind::Insert, Kind::InsertBatch, Kind::Producer] {
                rows.push(Row {
                    kind,
                    partitions: 2,
                });
            }
        }
        rows.retain(|r| r.kind == Kind::Baseline || r.name().contains(&filter));
        println!();
        println!("{producers} producer thread(s); M items/s; x/base: median over the baseline's");
        println!(
            "{:<40} {:>8} {:>8} {:>8} {:>8}",
            "variant", "median", "min", "max", "x/base"
        );
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
        // Interleave the rows so that noise from other processes spreads
        // over all of them rather than hitting one.
        for _ in 0..runs {
            for (row, s) in rows.iter().zip(samples.iter_mut()) {
                let d = run_once(*row, producers, items);
                let moved = items / producers as u64 * producers as u64;
                s.push(moved as f64 / d.as_secs_f64());
            }
        }
        let stats: Vec<(f64, f64, f64)> = samples
            .into_iter()
            .map(|mut s| {
                s.sort_by(f64::total_cmp);
                (s[s.len() / 2], s[0], s[s.len() - 1])
            })
            .collect();
        let base = stats[0].0;
        for (row, (median, min, max)) in rows.iter().zip(&stats) {
            println!(
                "{:<40} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                row.name(),
                median / 1e6,
                min / 1e6,
                max / 1e6,
                median / base
            );
        }
    }
}

/// One sink call as the lateness sink saw it.
struct Call {
    start: Instant,
    end: Instant,
    reason: FlushReason,
}

fn lateness() {
    const LATE_INTERVAL: Duration = Duration::from_millis(10);
    const TIMEOUT: Duration = Duration::from_secs(30);
    let flushes = env_or("SPILLWAY_BENCH_FLUSHES", 300).max(2) as usize;
    let calls = Arc::new(Mutex::new(Vec::<Call>::with_capacity(flushes + 8)));
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
    let cfg = BufferConfig::new()
        .max_size(1 << 30)
        .capacity(1 << 30)
        .flush_interval(LATE_INTERVAL)
        .flush_timeout(TIMEOUT)
        .workers(1);
    let sink_calls = Arc::clone(&calls);
    let buf = Buffer::new(cfg, move |_: &[u64], ctx: &FlushContext<'_>| {
        // The buffer builds the deadline from the instant it calls us: this
        // is exactly when the flush started.
        let start = ctx.deadline - TIMEOUT;
        let _ = done_tx.send(());
        let mut calls = sink_calls.lock().expect("not poisoned");
        calls.push(Call {
            start,
            end: Instant::now(),
            reason: ctx.reason,
        });
        Ok::<(), SinkError>(())
    })
    .expect("valid config");
    // Flush k's item goes in right after flush k-1; if that is after flush
    // k's deadline (this thread was descheduled for a whole interval), the
    // interval ran out on an empty partition and the sample is void.
    let mut inserted = Vec::with_capacity(flushes + 1);
    for _ in 0..=flushes {
        buf.insert(1).expect("open");
        inserted.push(Instant::now());
        done_rx.recv().expect("the sink lives");
    }
    buf.close(TIMEOUT);
    let calls = calls.lock().expect("not poisoned");
    assert!(
        calls.iter().all(|c| c.reason == FlushReason::Time),
        "only time flushes expected"
    );
    let mut late = Vec::with_capacity(flushes);
    let mut void = 0;
    for k in 1..=flushes {
        let deadline = calls[k - 1].end + LATE_INTERVAL;
        if inserted[k] >= deadline {
            void += 1;
            continue;
        }
        late.push(calls[k].start.saturating_duration_since(deadline));
    }
    late.sort();
    let pick = |q: f64| late[((q * late.len() as f64).ceil() as usize).clamp(1, late.len()) - 1];
    println!();
    println!(
        "time trigger, interval {LATE_INTERVAL:?}, {} flushes ({void} void: the item came after the deadline)",
        late.len()
    );
    println!(
        "lateness vs deadline: min {:?}  p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        late[0],
        pick(0.50),
        pick(0.90),
        pick(0.99),
        late[late.len() - 1]
    );
}

fn main() {
    let part = std::env::var("SPILLWAY_BENCH_PART").unwrap_or_default();
    if part.is_empty() || part == "throughput" {
        throughput();
    }
    if part.is_empty() || part == "lateness" {
        lateness();
    }
}
