//! Throughput of `LockingRing` against its peers: `crossbeam_channel::bounded`
//! and the hand-written `std::sync::Mutex<VecDeque>` + `Condvar` queue most
//! programs start with.
//!
//! Three consumers of the ring: `pop` one at a time; `pop_batch(64)`, with
//! a blocking `pop` when it finds nothing; and `pop_batch_timeout(64)`,
//! which waits for 64 items (a batching consumer). The last one's peer is
//! the hand-written queue with a consumer that waits for 64 items too (the
//! producer notifies when the queue reaches them).
//!
//! u64 items, capacity 4096, 1 or 2 producer threads and one consumer; every
//! run moves `SPILLWAY_BENCH_ITEMS` items (default 4 000 000) and checks their
//! sum; the median of `SPILLWAY_BENCH_RUNS` runs (default 7) is reported,
//! with the slowest and fastest run beside it to show the noise.
//! `SPILLWAY_BENCH_PRODUCERS=2` runs only that producer count, and
//! `SPILLWAY_BENCH_VARIANT=0` only that row (0-5, for profiling).
//!
//! ```sh
//! cargo bench --bench locking_ring
//! ```

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use common::{Clock, Sample};

use spillway::ring::{LockingRing, TryPopError};

const CAPACITY: usize = 4096;
const BATCH: usize = 64;
/// How long a batching consumer waits for a batch; never reached, since the
/// producers do not stop until every item is sent.
const WAIT: Duration = Duration::from_secs(10);

/// One way of moving items from producer threads to one consumer thread.
trait Variant: Sync {
    fn name(&self) -> &'static str;
    /// Called by each producer thread.
    fn produce(&self, first: u64, count: u64);
    /// Called by the consumer thread: receive `total` items, return their sum.
    fn consume(&self, total: u64) -> u64;
}

/// How a `LockingRing` row's consumer takes its items.
#[derive(Clone, Copy)]
enum Take {
    /// `pop`, one at a time.
    Pop,
    /// `pop_batch(64)`, with a blocking `pop` when it finds nothing.
    Batch,
    /// `pop_batch_timeout(64)`: waits for 64 items (or fewer at the end).
    BatchWait,
}

struct Ring {
    ring: LockingRing<u64>,
    take: Take,
}

impl Variant for Ring {
    fn name(&self) -> &'static str {
        match self.take {
            Take::Pop => "LockingRing (pop)",
            Take::Batch => "LockingRing (pop_batch 64)",
            Take::BatchWait => "LockingRing (pop_batch_timeout 64)",
        }
    }
    fn produce(&self, first: u64, count: u64) {
        for v in first..first + count {
            self.ring.push(v).expect("not closed");
        }
    }
    fn consume(&self, total: u64) -> u64 {
        if let Take::Pop = self.take {
            return (0..total).fold(0u64, |sum, _| {
                sum.wrapping_add(self.ring.pop().expect("not closed"))
            });
        }
        let mut sum = 0u64;
        let mut got = 0u64;
        let mut buf = Vec::with_capacity(BATCH);
        while got < total {
            let n = match self.take {
                Take::BatchWait => {
                    let want = BATCH.min((total - got) as usize);
                    self.ring
                        .pop_batch_timeout(&mut buf, want, WAIT)
                        .expect("items keep coming")
                }
                _ => match self.ring.pop_batch(&mut buf, BATCH) {
                    Ok(n) => n,
                    // Nothing there: block for the next item rather than spin.
                    Err(TryPopError::Empty) => {
                        buf.push(self.ring.pop().expect("not closed"));
                        1
                    }
                    Err(TryPopError::Closed) => unreachable!("never closed"),
                },
            };
            got += n as u64;
            sum = buf.drain(..).fold(sum, u64::wrapping_add);
        }
        sum
    }
}

struct Crossbeam {
    tx: crossbeam_channel::Sender<u64>,
    rx: crossbeam_channel::Receiver<u64>,
}

impl Variant for Crossbeam {
    fn name(&self) -> &'static str {
        "crossbeam_channel::bounded"
    }
    fn produce(&self, first: u64, count: u64) {
        for v in first..first + count {
            self.tx.send(v).expect("receiver alive");
        }
    }
    fn consume(&self, total: u64) -> u64 {
        let mut sum = 0u64;
        for _ in 0..total {
            sum = sum.wrapping_add(self.rx.recv().expect("sender alive"));
        }
        sum
    }
}

/// The queue people write first: one std mutex, two condvars, notify on
/// every operation.
struct StdQueue {
    items: Mutex<VecDeque<u64>>,
    not_full: Condvar,
    not_empty: Condvar,
}

impl Variant for StdQueue {
    fn name(&self) -> &'static str {
        "std Mutex<VecDeque>+Condvar"
    }
    fn produce(&self, first: u64, count: u64) {
        for v in first..first + count {
            let mut q = self.items.lock().unwrap();
            while q.len() == CAPACITY {
                q = self.not_full.wait(q).unwrap();
            }
            q.push_back(v);
            drop(q);
            self.not_empty.notify_one();
        }
    }
    fn consume(&self, total: u64) -> u64 {
        let mut sum = 0u64;
        for _ in 0..total {
            let mut q = self.items.lock().unwrap();
            let v = loop {
                match q.pop_front() {
                    Some(v) => break v,
                    None => q = self.not_empty.wait(q).unwrap(),
                }
            };
            drop(q);
            self.not_full.notify_one();
            sum = sum.wrapping_add(v);
        }
        sum
    }
}

/// The hand-written queue with a batching consumer: the producer notifies
/// when the queue reaches the count the consumer waits for.
struct StdQueueBatchWait {
    items: Mutex<BatchQueue>,
    not_full: Condvar,
    batch_ready: Condvar,
}

struct BatchQueue {
    items: VecDeque<u64>,
    /// What the consumer waits for (`usize::MAX`: it does not wait).
    want: usize,
}

impl Variant for StdQueueBatchWait {
    fn name(&self) -> &'static str {
        "std queue, consumer waits for 64"
    }
    fn produce(&self, first: u64, count: u64) {
        for v in first..first + count {
            let mut q = self.items.lock().unwrap();
            while q.items.len() == CAPACITY {
                q = self.not_full.wait(q).unwrap();
            }
            q.items.push_back(v);
            let ready = q.items.len() >= q.want;
            if ready {
                q.want = usize::MAX;
            }
            drop(q);
            if ready {
                self.batch_ready.notify_one();
            }
        }
    }
    fn consume(&self, total: u64) -> u64 {
        let mut sum = 0u64;
        let mut got = 0u64;
        while got < total {
            let want = BATCH.min((total - got) as usize);
            let mut q = self.items.lock().unwrap();
            while q.items.len() < want {
                q.want = want;
                q = self.batch_ready.wait(q).unwrap();
            }
            let was_full = q.items.len() == CAPACITY;
            sum = q.items.drain(..want).fold(sum, u64::wrapping_add);
            drop(q);
            if was_full {
                self.not_full.notify_all();
            }
            got += want as u64;
        }
        sum
    }
}

fn make(kind: usize) -> Arc<dyn Variant + Send> {
    match kind {
        0..=2 => Arc::new(Ring {
            ring: LockingRing::new(CAPACITY),
            take: [Take::Pop, Take::Batch, Take::BatchWait][kind],
        }),
        3 => {
            let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
            Arc::new(Crossbeam { tx, rx })
        }
        4 => Arc::new(StdQueue {
            items: Mutex::new(VecDeque::with_capacity(CAPACITY)),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
        }),
        _ => Arc::new(StdQueueBatchWait {
            items: Mutex::new(BatchQueue {
                items: VecDeque::with_capacity(CAPACITY),
                want: usize::MAX,
            }),
            not_full: Condvar::new(),
            batch_ready: Condvar::new(),
        }),
    }
}

const KINDS: usize = 6;

/// One run: `producers` threads send `items` in total; returns the wall and
/// CPU time from the common start until every thread is done.
fn run_once(kind: usize, producers: usize, items: u64) -> Sample {
    let q = make(kind);
    let start = Arc::new(Barrier::new(producers + 2));
    let per = items / producers as u64;
    let total = per * producers as u64;
    let mut handles = Vec::new();
    for p in 0..producers {
        let (q, start) = (Arc::clone(&q), Arc::clone(&start));
        handles.push(thread::spawn(move || {
            start.wait();
            q.produce(p as u64 * per, per);
        }));
    }
    let consumer = {
        let (q, start) = (Arc::clone(&q), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            q.consume(total)
        })
    };
    start.wait();
    let clock = Clock::start();
    let sum = consumer.join().expect("consumer");
    for h in handles {
        h.join().expect("producer");
    }
    let sample = clock.stop();
    assert_eq!(
        sum,
        (0..total).fold(0u64, u64::wrapping_add),
        "lost or duplicated items"
    );
    sample
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    common::print_machine("locking_ring");
    let items = env_or("SPILLWAY_BENCH_ITEMS", 4_000_000);
    let runs = env_or("SPILLWAY_BENCH_RUNS", 7).max(1) as usize;
    println!("u64 items, capacity {CAPACITY}, {items} items per run, median of {runs} runs");
    let only = env_or("SPILLWAY_BENCH_PRODUCERS", 0) as usize;
    let variant = std::env::var("SPILLWAY_BENCH_VARIANT")
        .ok()
        .and_then(|s| s.parse::<usize>().ok());
    for producers in [1, 2].into_iter().filter(|&p| only == 0 || p == only) {
        println!();
        println!(
            "{producers} producer(s), 1 consumer; M items/s; ring/x, ring_b/x, ring_w/x: \
             LockingRing (pop), (pop_batch), (pop_batch_timeout) over that row; CPU: ns per \
             item, all threads"
        );
        println!(
            "{:<34} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "variant", "median", "min", "max", "ring/x", "ring_b/x", "ring_w/x", "CPU ns"
        );
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); KINDS];
        let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); KINDS];
        // Interleave the variants so that noise from other processes spreads
        // over all of them rather than hitting one.
        for _ in 0..runs {
            for kind in 0..KINDS {
                if variant.is_some_and(|v| v != kind) {
                    continue;
                }
                let s = run_once(kind, producers, items);
                samples[kind].push(s.rate(items));
                cpu[kind].push(s.cpu_ns(items));
            }
        }
        let mut rates = [f64::NAN; KINDS];
        for (kind, s) in samples.iter_mut().enumerate() {
            rates[kind] = common::median(s);
        }
        for kind in 0..KINDS {
            let s = &samples[kind];
            let (min, max) = (s.first().copied(), s.last().copied());
            println!(
                "{:<34} {:>8.1} {:>8.1} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>8.1}",
                make(kind).name(),
                rates[kind] / 1e6,
                min.unwrap_or(f64::NAN) / 1e6,
                max.unwrap_or(f64::NAN) / 1e6,
                rates[0] / rates[kind],
                rates[1] / rates[kind],
                rates[2] / rates[kind],
                common::median(&mut cpu[kind]),
            );
        }
    }
}
