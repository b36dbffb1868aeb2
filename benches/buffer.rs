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
//! `recv_timeout` reads the clock on every call, which costs ~55 ns on some
//! virtual machines; a second baseline (`x/dl`) times each batch with
//! `recv_deadline` instead, which reads it only when it has to wait.
//! The median of `SPILLWAY_BENCH_RUNS` runs (default 7) is reported with the
//! slowest and fastest run beside it, the ratio to the baseline with the
//! same number of producers, the CPU time of all the process's threads per
//! item, and the CPU time of the producer threads per item in their best run
//! (what the inserting application pays; both are steadier than wall time on
//! a shared machine, the second the steadiest).
//!
//! The row `insert, observer not wanting inserts` is `insert` on a buffer
//! with an observer whose `wants_inserts` is false: next to `insert`, it
//! shows what the insert telemetry costs when nobody asks for it.
//!
//! Lateness: a buffer with a 10 ms interval and a `max_size` that never
//! fills; one item is inserted after each flush, and each time flush's start
//! is compared with its deadline (the end of the previous flush + 10 ms; the
//! buffer restarts the interval a moment after the sink returns, so this
//! over-states lateness by that moment, never under-states it).
//! `SPILLWAY_BENCH_FLUSHES` flushes (default 300). Two references show what
//! the machine itself allows: one thread waking on a condvar timeout, and a
//! timer thread handing each deadline to a worker thread (the buffer's shape).
//!
//! `SPILLWAY_BENCH_PRODUCERS=2` runs only that producer count,
//! `SPILLWAY_BENCH_VARIANT=producer` only the rows whose name contains that
//! text (the baseline always runs, for the ratio), and
//! `SPILLWAY_BENCH_PART=throughput` or `=lateness` only that part.
//!
//! ```sh
//! cargo bench --bench buffer
//! ```

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use spillway::observer::Observer;
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
    /// The collector calls `recv_timeout(flush_interval)` per item.
    Baseline,
    /// The collector waits with `recv_deadline`, the deadline set per batch.
    BaselineDeadline,
    Insert,
    /// `insert` with an observer whose `wants_inserts` is false: what the
    /// insert telemetry costs when nobody asks for it (one branch).
    InsertObserved,
    InsertBatch,
    Producer,
}

impl Kind {
    fn is_baseline(self) -> bool {
        matches!(self, Kind::Baseline | Kind::BaselineDeadline)
    }
}

#[derive(Clone, Copy)]
struct Row {
    kind: Kind,
    partitions: usize,
}

impl Row {
    fn name(&self) -> String {
        let base = match self.kind {
            Kind::Baseline => "crossbeam + collector (recv_timeout)",
            Kind::BaselineDeadline => "crossbeam + collector (recv_deadline)",
            Kind::Insert => "insert",
            Kind::InsertObserved => "insert, observer not wanting inserts",
            Kind::InsertBatch => "insert_batch (1000 from a Vec)",
            Kind::Producer => "producer() handle",
        };
        if self.kind.is_baseline() {
            base.to_string()
        } else {
            format!("{base}, {} part.", self.partitions)
        }
    }
}

/// CPU time of the calling thread, from `/proc/thread-self/schedstat`
/// (nanoseconds); `None` where there is no procfs.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        stat.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Waits for the common start, runs `work`, and returns the CPU time this
/// thread spent in it: what the inserting thread itself pays.
fn after_start(start: &Barrier, work: impl FnOnce()) -> Option<Duration> {
    start.wait();
    let before = thread_cpu();
    work();
    Some(thread_cpu()?.saturating_sub(before?))
}

/// One producer thread's share of the items, `first..first + n`; returns
/// the thread's CPU time.
fn produce_into_buffer(
    kind: Kind,
    buf: &Buffer<u64>,
    start: &Barrier,
    first: u64,
    n: u64,
) -> Option<Duration> {
    match kind {
        Kind::Insert | Kind::InsertObserved => after_start(start, || {
            for v in first..first + n {
                buf.insert(v).expect("open, capacity never reached");
            }
        }),
        Kind::InsertBatch => {
            let mut chunk = Vec::with_capacity(MAX_SIZE);
            after_start(start, || {
                let end = first + n;
                let mut v = first;
                while v < end {
                    let upto = end.min(v + MAX_SIZE as u64);
                    chunk.extend(v..upto);
                    buf.insert_batch(chunk.drain(..))
                        .expect("open, capacity never reached");
                    v = upto;
                }
            })
        }
        Kind::Producer => {
            let mut p = buf.producer();
            after_start(start, || {
                for v in first..first + n {
                    p.insert(v).expect("open");
                }
            })
        }
        Kind::Baseline | Kind::BaselineDeadline => unreachable!("not a buffer"),
    }
}

/// An observer that says no to insert events (and listens to nothing
/// else): the insert path pays only the check of that answer.
struct NoInserts;

impl Observer for NoInserts {
    fn wants_inserts(&self) -> bool {
        false
    }
}

/// What one run measured.
struct Sample {
    /// From the common start until the sink counted every item.
    wall: Duration,
    /// CPU time of the producer threads, summed.
    callers_cpu: Option<Duration>,
}

/// Joins the producer threads, summing their CPU times.
fn join_producers(handles: Vec<thread::JoinHandle<Option<Duration>>>) -> Option<Duration> {
    let mut sum = Some(Duration::ZERO);
    for h in handles {
        let cpu = h.join().expect("producer");
        sum = sum.zip(cpu).map(|(a, b)| a + b);
    }
    sum
}

fn run_buffer(row: Row, producers: usize, per: u64) -> Sample {
    let counter = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&counter);
    let cfg = BufferConfig::new()
        .max_size(MAX_SIZE)
        .capacity(CAPACITY)
        .flush_interval(INTERVAL)
        .partitions(row.partitions)
        .workers(1);
    let builder = Buffer::builder(cfg).sink(move |b: &[u64], _: &FlushContext<'_>| {
        count(&c, b);
        Ok::<(), SinkError>(())
    });
    let builder = if row.kind == Kind::InsertObserved {
        builder.observer(Arc::new(NoInserts))
    } else {
        builder
    };
    let buf = builder.build().expect("valid config");
    let start = Arc::new(Barrier::new(producers + 1));
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let (buf, start) = (buf.clone(), Arc::clone(&start));
            thread::spawn(move || produce_into_buffer(row.kind, &buf, &start, p as u64 * per, per))
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let callers_cpu = join_producers(handles);
    let report = buf.close(CLOSE_TIMEOUT);
    let t1 = Instant::now();
    let total = per * producers as u64;
    assert!(!report.timed_out, "close timed out");
    assert_eq!(
        counter.load(Ordering::Relaxed),
        total,
        "lost or duplicated items"
    );
    Sample {
        wall: t1 - t0,
        callers_cpu,
    }
}

/// The collector a user writes by hand: gather `MAX_SIZE` items, or what
/// came within the interval, and hand them to the sink.
fn collect(rx: &crossbeam_channel::Receiver<u64>, counter: &AtomicU64, per_batch_deadline: bool) {
    let mut batch = Vec::with_capacity(MAX_SIZE);
    let mut deadline = Instant::now() + INTERVAL;
    loop {
        let got = if per_batch_deadline {
            rx.recv_deadline(deadline)
        } else {
            rx.recv_timeout(INTERVAL)
        };
        match got {
            Ok(v) => {
                batch.push(v);
                if batch.len() == MAX_SIZE {
                    count(counter, &batch);
                    batch.clear();
                    if per_batch_deadline {
                        deadline = Instant::now() + INTERVAL;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if !batch.is_empty() {
                    count(counter, &batch);
                    batch.clear();
                }
                deadline = Instant::now() + INTERVAL;
            }
            Err(RecvTimeoutError::Disconnected) => {
                if !batch.is_empty() {
                    count(counter, &batch);
                }
                return;
            }
        }
    }
}

fn run_baseline(producers: usize, per: u64, per_batch_deadline: bool) -> Sample {
    let counter = Arc::new(AtomicU64::new(0));
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let start = Arc::new(Barrier::new(producers + 2));
    let collector = {
        let (counter, start) = (Arc::clone(&counter), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            collect(&rx, &counter, per_batch_deadline);
        })
    };
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let (tx, start) = (tx.clone(), Arc::clone(&start));
            thread::spawn(move || {
                let first = p as u64 * per;
                after_start(&start, || {
                    for v in first..first + per {
                        tx.send(v).expect("collector alive");
                    }
                })
            })
        })
        .collect();
    drop(tx);
    start.wait();
    let t0 = Instant::now();
    let callers_cpu = join_producers(handles);
    collector.join().expect("collector");
    let t1 = Instant::now();
    assert_eq!(
        counter.load(Ordering::Relaxed),
        per * producers as u64,
        "lost or duplicated items"
    );
    Sample {
        wall: t1 - t0,
        callers_cpu,
    }
}

fn run_once(row: Row, producers: usize, items: u64) -> Sample {
    let per = items / producers as u64;
    match row.kind {
        Kind::Baseline => run_baseline(producers, per, false),
        Kind::BaselineDeadline => run_baseline(producers, per, true),
        _ => run_buffer(row, producers, per),
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// CPU time this process has used, all threads (live and exited) together,
/// from `/proc/self/stat` (10 ms ticks): on a shared machine, CPU per item
/// is steadier than wall time. `None` where there is no procfs.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is the first, utime the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux target.
    Some(Duration::from_millis((utime + stime) * 10))
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
                kind: Kind::BaselineDeadline,
                partitions: 1,
            },
            Row {
                kind: Kind::Insert,
                partitions: 1,
            },
            Row {
                kind: Kind::InsertObserved,
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
        rows.retain(|r| r.kind.is_baseline() || r.name().contains(&filter));
        println!();
        println!(
            "{producers} producer thread(s); M items/s; x/base, x/dl: median over the \
             recv_timeout, recv_deadline baseline's;\n  cpu ns/item: CPU of all threads per \
             item, over all runs; caller: CPU of the producer threads per item, best run"
        );
        println!(
            "{:<40} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6}",
            "variant", "median", "min", "max", "x/base", "x/dl", "cpu", "caller"
        );
        let moved = items / producers as u64 * producers as u64;
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
        let mut cpu = vec![Some(Duration::ZERO); rows.len()];
        let mut callers: Vec<Option<Duration>> = vec![None; rows.len()];
        // Interleave the rows so that noise from other processes spreads
        // over all of them rather than hitting one.
        for _ in 0..runs {
            for (i, row) in rows.iter().enumerate() {
                let before = process_cpu();
                let sample = run_once(*row, producers, items);
                let used = process_cpu().zip(before).map(|(a, b)| a.saturating_sub(b));
                cpu[i] = cpu[i].zip(used).map(|(sum, u)| sum + u);
                // The least CPU any run took: other processes only add.
                callers[i] = match (callers[i], sample.callers_cpu) {
                    (Some(best), Some(c)) => Some(best.min(c)),
                    (best, c) => best.or(c),
                };
                samples[i].push(moved as f64 / sample.wall.as_secs_f64());
            }
        }
        let stats: Vec<(f64, f64, f64)> = samples
            .into_iter()
            .map(|mut s| {
                s.sort_by(f64::total_cmp);
                (s[s.len() / 2], s[0], s[s.len() - 1])
            })
            .collect();
        let (base, dl) = (stats[0].0, stats[1].0);
        for (i, (row, (median, min, max))) in rows.iter().zip(&stats).enumerate() {
            let ns = |cpu: Option<Duration>, items: u64| {
                cpu.map_or("n/a".to_string(), |c| {
                    format!("{:.1}", c.as_nanos() as f64 / items as f64)
                })
            };
            println!(
                "{:<40} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>6}",
                row.name(),
                median / 1e6,
                min / 1e6,
                max / 1e6,
                median / base,
                median / dl,
                ns(cpu[i], moved * runs as u64),
                ns(callers[i], moved)
            );
        }
    }
}

const LATE_INTERVAL: Duration = Duration::from_millis(10);

fn print_lateness(what: &str, mut late: Vec<Duration>, void: usize) {
    late.sort();
    let pick = |q: f64| late[((q * late.len() as f64).ceil() as usize).clamp(1, late.len()) - 1];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{what:<44} {:>5} {:>5} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
        late.len(),
        void,
        us(late[0]),
        us(pick(0.50)),
        us(pick(0.90)),
        us(pick(0.99)),
        us(late[late.len() - 1])
    );
}

/// One sink call as the lateness sink saw it.
struct Call {
    start: Instant,
    end: Instant,
    reason: FlushReason,
}

/// The buffer's time trigger: one item per interval, each flush's start
/// against its deadline.
fn buffer_lateness(flushes: usize) {
    const TIMEOUT: Duration = Duration::from_secs(30);
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
    // Flush 0's deadline counts from the buffer's creation: skipped.
    for k in 1..=flushes {
        let deadline = calls[k - 1].end + LATE_INTERVAL;
        if inserted[k] >= deadline {
            void += 1;
            continue;
        }
        late.push(calls[k].start.saturating_duration_since(deadline));
    }
    print_lateness("Buffer time trigger (timer + flusher)", late, void);
}

/// The machine's floor: one thread sleeping on a condvar until each
/// deadline, the next one an interval after it woke.
fn one_thread_lateness(flushes: usize) {
    let lock = parking_lot::Mutex::new(());
    let cv = parking_lot::Condvar::new();
    let mut late = Vec::with_capacity(flushes);
    let mut deadline = Instant::now() + LATE_INTERVAL;
    let mut guard = lock.lock();
    while late.len() < flushes {
        // Nobody notifies: only the timeout ends the wait.
        if !cv.wait_until(&mut guard, deadline).timed_out() {
            continue;
        }
        let now = Instant::now();
        late.push(now.saturating_duration_since(deadline));
        deadline = now + LATE_INTERVAL;
    }
    print_lateness("reference: 1 thread, condvar wait_until", late, 0);
}

/// The buffer's shape without the buffer: a timer thread wakes at the
/// deadline and hands over to a worker thread, which records when it ran;
/// the next deadline is an interval after the worker finished.
fn two_thread_lateness(flushes: usize) {
    let (go_tx, go_rx) = crossbeam_channel::bounded::<Instant>(1);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<Instant>(1);
    let worker = thread::spawn(move || {
        let mut late = Vec::with_capacity(flushes);
        for deadline in go_rx {
            let now = Instant::now();
            late.push(now.saturating_duration_since(deadline));
            if done_tx.send(Instant::now()).is_err() {
                break;
            }
        }
        late
    });
    let lock = parking_lot::Mutex::new(());
    let cv = parking_lot::Condvar::new();
    let mut deadline = Instant::now() + LATE_INTERVAL;
    let mut guard = lock.lock();
    for _ in 0..flushes {
        while !cv.wait_until(&mut guard, deadline).timed_out() {}
        go_tx.send(deadline).expect("worker alive");
        deadline = done_rx.recv().expect("worker alive") + LATE_INTERVAL;
    }
    drop(go_tx);
    let late = worker.join().expect("worker");
    print_lateness("reference: timer thread -> worker thread", late, 0);
}

fn lateness() {
    let flushes = env_or("SPILLWAY_BENCH_FLUSHES", 300).max(2) as usize;
    println!();
    println!(
        "time trigger lateness, interval {LATE_INTERVAL:?}: how long after its deadline each \
         flush started, in us; void: samples lost to a late insert"
    );
    println!(
        "{:<44} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "n", "void", "min", "p50", "p90", "p99", "max"
    );
    buffer_lateness(flushes);
    one_thread_lateness(flushes);
    two_thread_lateness(flushes);
}

fn main() {
    common::print_machine("buffer");
    let part = std::env::var("SPILLWAY_BENCH_PART").unwrap_or_default();
    if part.is_empty() || part == "throughput" {
        throughput();
    }
    if part.is_empty() || part == "lateness" {
        lateness();
    }
}
