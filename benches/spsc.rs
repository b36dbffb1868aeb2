//! Throughput of `spillway::ring::spsc` against its peers: one producer
//! thread, one consumer thread, `u64` sequence numbers, the same capacity for
//! every queue. Run with `cargo bench --bench spsc`.
//!
//! - one at a time: `try_push`/`try_pop` (retrying when full/empty) against
//!   rtrb `push`/`pop`, crossbeam `ArrayQueue` `push`/`pop` and
//!   `std::sync::mpsc::sync_channel` `send`/`recv`; plus spillway's blocking
//!   `push`/`pop` for reference.
//! - batches of 64: spillway `push_slice`/`pop_slice` against rtrb's chunk
//!   API (`push_partial_slice`/`pop_partial_slice`: one `write_chunk_uninit`
//!   or `read_chunk` and one commit per batch). `ArrayQueue` and
//!   `sync_channel` have no batch API; their rows repeat the single-item
//!   results.
//!
//! Each variant runs `RUNS` times, interleaved round by round with the
//! others; the table shows the median. `cargo bench --bench spsc -- batch`
//! (or `-- one`) runs one table only.

mod common;

use std::hint::spin_loop;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

use common::{Clock, Sample};

use crossbeam_queue::ArrayQueue;
use spillway::ring::spsc;

const CAPACITY: usize = 4096;
/// Items per run: enough for tens of milliseconds or more per run.
const SINGLE_ITEMS: u64 = 10_000_000;
const BATCH_ITEMS: u64 = 50_000_000;
const BATCH: usize = 64;
const RUNS: usize = 7;

/// How every spinning variant waits for its peer: a few spin hints, then
/// `yield_now`, so that on a busy machine a waiting thread hands its core to
/// the peer it waits for instead of burning the time slice. The same for all.
struct Idle(u32);

impl Idle {
    fn new() -> Self {
        Self(0)
    }

    #[inline]
    fn wait(&mut self) {
        if self.0 < 64 {
            self.0 += 1;
            spin_loop();
        } else {
            thread::yield_now();
        }
    }

    #[inline]
    fn progress(&mut self) {
        self.0 = 0;
    }
}

/// Runs `produce` and `consume` on two threads released together; returns
/// the wall and CPU time until both are done. `consume` returns the sum of
/// what it got.
fn two_threads<P, C>(items: u64, produce: P, consume: C) -> Sample
where
    P: FnOnce() + Send + 'static,
    C: FnOnce() -> u64 + Send + 'static,
{
    let start = Arc::new(Barrier::new(3));
    let (s1, s2) = (Arc::clone(&start), Arc::clone(&start));
    let p = thread::spawn(move || {
        s1.wait();
        produce();
    });
    let c = thread::spawn(move || {
        s2.wait();
        consume()
    });
    start.wait();
    let clock = Clock::start();
    p.join().unwrap();
    let sum = c.join().unwrap();
    let sample = clock.stop();
    assert_eq!(sum, items * (items - 1) / 2, "lost or duplicated items");
    sample
}

fn spillway_single(items: u64) -> Sample {
    let (mut tx, mut rx) = spsc::channel::<u64>(CAPACITY);
    two_threads(
        items,
        move || {
            let mut idle = Idle::new();
            for i in 0..items {
                let mut v = i;
                while let Err(e) = tx.try_push(v) {
                    v = e.into_inner();
                    idle.wait();
                }
                idle.progress();
            }
        },
        move || {
            let (mut sum, mut got, mut idle) = (0, 0, Idle::new());
            while got < items {
                match rx.try_pop() {
                    Ok(v) => {
                        sum += v;
                        got += 1;
                        idle.progress();
                    }
                    Err(_) => idle.wait(),
                }
            }
            sum
        },
    )
}

fn spillway_blocking(items: u64) -> Sample {
    let (mut tx, mut rx) = spsc::channel::<u64>(CAPACITY);
    two_threads(
        items,
        move || {
            for i in 0..items {
                tx.push(i).unwrap();
            }
        },
        move || (0..items).map(|_| rx.pop().unwrap()).sum(),
    )
}

fn rtrb_single(items: u64) -> Sample {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    two_threads(
        items,
        move || {
            let mut idle = Idle::new();
            for i in 0..items {
                while tx.push(i).is_err() {
                    idle.wait();
                }
                idle.progress();
            }
        },
        move || {
            let (mut sum, mut got, mut idle) = (0, 0, Idle::new());
            while got < items {
                match rx.pop() {
                    Ok(v) => {
                        sum += v;
                        got += 1;
                        idle.progress();
                    }
                    Err(_) => idle.wait(),
                }
            }
            sum
        },
    )
}

fn array_queue(items: u64) -> Sample {
    let q = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
    let q2 = Arc::clone(&q);
    two_threads(
        items,
        move || {
            let mut idle = Idle::new();
            for i in 0..items {
                let mut v = i;
                while let Err(back) = q.push(v) {
                    v = back;
                    idle.wait();
                }
                idle.progress();
            }
        },
        move || {
            let (mut sum, mut got, mut idle) = (0, 0, Idle::new());
            while got < items {
                match q2.pop() {
                    Some(v) => {
                        sum += v;
                        got += 1;
                        idle.progress();
                    }
                    None => idle.wait(),
                }
            }
            sum
        },
    )
}

fn sync_channel(items: u64) -> Sample {
    let (tx, rx) = mpsc::sync_channel::<u64>(CAPACITY);
    two_threads(
        items,
        move || {
            for i in 0..items {
                tx.send(i).unwrap();
            }
        },
        move || rx.iter().take(items as usize).sum(),
    )
}

/// Fills `buf` with the sequence numbers from `next` for a batch.
fn fill(buf: &mut [u64; BATCH], next: u64, items: u64) -> usize {
    let n = BATCH.min((items - next) as usize);
    for (i, b) in buf[..n].iter_mut().enumerate() {
        *b = next + i as u64;
    }
    n
}

fn spillway_batch(items: u64) -> Sample {
    let (mut tx, mut rx) = spsc::channel::<u64>(CAPACITY);
    two_threads(
        items,
        move || {
            let (mut buf, mut next, mut idle) = ([0u64; BATCH], 0, Idle::new());
            while next < items {
                let n = fill(&mut buf, next, items);
                let mut sent = 0;
                while sent < n {
                    match tx.push_slice(&buf[sent..n]) {
                        0 => idle.wait(),
                        k => {
                            sent += k;
                            idle.progress();
                        }
                    }
                }
                next += n as u64;
            }
        },
        move || {
            let (mut buf, mut sum, mut got, mut idle) = ([0u64; BATCH], 0, 0, Idle::new());
            while got < items {
                match rx.pop_slice(&mut buf) {
                    0 => idle.wait(),
                    n => {
                        sum += buf[..n].iter().sum::<u64>();
                        got += n as u64;
                        idle.progress();
                    }
                }
            }
            sum
        },
    )
}

fn rtrb_batch(items: u64) -> Sample {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    two_threads(
        items,
        move || {
            let (mut buf, mut next, mut idle) = ([0u64; BATCH], 0, Idle::new());
            while next < items {
                let n = fill(&mut buf, next, items);
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let (pushed, remainder) = tx.push_partial_slice(rest);
                    if pushed.is_empty() {
                        idle.wait();
                    } else {
                        idle.progress();
                    }
                    rest = remainder;
                }
                next += n as u64;
            }
        },
        move || {
            let (mut buf, mut sum, mut got, mut idle) = ([0u64; BATCH], 0, 0, Idle::new());
            while got < items {
                let (popped, _) = rx.pop_partial_slice(&mut buf);
                if popped.is_empty() {
                    idle.wait();
                } else {
                    sum += popped.iter().sum::<u64>();
                    got += popped.len() as u64;
                    idle.progress();
                }
            }
            sum
        },
    )
}

/// A row of a table: its name and one timed run.
type Variant = (&'static str, fn(u64) -> Sample);

/// The median throughput and CPU time per item of one variant.
#[derive(Clone, Copy)]
struct Row {
    rate: f64,
    cpu_ns: f64,
}

/// Runs every variant `RUNS` times, round by round (so a change in the
/// machine's load hits all of them alike), after one warm-up round; returns
/// the median items per second and CPU ns per item of each.
fn measure(variants: &[Variant], items: u64) -> Vec<Row> {
    let mut rates = vec![Vec::new(); variants.len()];
    let mut cpus = vec![Vec::new(); variants.len()];
    for round in 0..=RUNS {
        for (i, (_, run)) in variants.iter().enumerate() {
            let sample = run(items);
            if round > 0 {
                rates[i].push(sample.rate(items));
                cpus[i].push(sample.cpu_ns(items));
            }
        }
    }
    rates
        .iter_mut()
        .zip(cpus.iter_mut())
        .map(|(r, c)| Row {
            rate: common::median(r),
            cpu_ns: common::median(c),
        })
        .collect()
}

fn table(title: &str, names: &[&str], rows: &[Row]) {
    println!("\n{title}");
    println!(
        "{:<46} {:>10} {:>16} {:>12} {:>12}",
        "variant", "items/s", "spillway / this", "CPU ns/item", "CPU this/sw"
    );
    for (name, row) in names.iter().zip(rows) {
        println!(
            "{:<46} {:>10} {:>16.2} {:>12.2} {:>12.2}",
            name,
            format!("{:.1} M", row.rate / 1e6),
            rows[0].rate / row.rate,
            row.cpu_ns,
            row.cpu_ns / rows[0].cpu_ns,
        );
    }
}

fn main() {
    // `cargo bench --bench spsc -- one` (or `-- batch`) runs one table;
    // a second word keeps only the variants whose names contain it, for
    // profiling one (`-- one blocking`): its ratios then mean nothing.
    let mut words = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let (only, variant) = (words.next(), words.next());
    let wanted = |t: &str| only.as_deref().is_none_or(|o| t.contains(o));
    let keep = |v: &[Variant]| -> Vec<Variant> {
        v.iter()
            .filter(|(name, _)| variant.as_deref().is_none_or(|w| name.contains(w)))
            .copied()
            .collect()
    };
    common::print_machine("spsc");
    println!(
        "spsc bench: u64 items, capacity {CAPACITY}, {SINGLE_ITEMS} items per run one at a time, \
         {BATCH_ITEMS} in batches; median of {RUNS} interleaved runs; {} cores",
        thread::available_parallelism().map_or(0, |n| n.get())
    );

    let single: [Variant; 5] = [
        ("spillway try_push/try_pop", spillway_single),
        ("spillway push/pop (blocking)", spillway_blocking),
        ("rtrb 0.4 push/pop", rtrb_single),
        ("crossbeam ArrayQueue push/pop", array_queue),
        ("std mpsc::sync_channel send/recv", sync_channel),
    ];
    let one = "one item at a time";
    if variant.is_some() && wanted(one) {
        let single = keep(&single);
        let names: Vec<&str> = single.iter().map(|v| v.0).collect();
        table(one, &names, &measure(&single, SINGLE_ITEMS));
        return;
    }
    let single_rates = measure(&single, SINGLE_ITEMS);
    if wanted(one) {
        let names: Vec<&str> = single.iter().map(|v| v.0).collect();
        table(one, &names, &single_rates);
    }

    let batch = format!("batches of {BATCH}");
    if wanted(&batch) {
        let variants: [Variant; 2] = [
            ("spillway push_slice/pop_slice", spillway_batch),
            ("rtrb 0.4 push/pop_partial_slice (chunks)", rtrb_batch),
        ];
        let mut rates = measure(&variants, BATCH_ITEMS);
        let mut names: Vec<&str> = variants.iter().map(|v| v.0).collect();
        // No batch API: the single-item rows again.
        names.extend([
            "crossbeam ArrayQueue (no batch API: single)",
            "std mpsc::sync_channel (no batch API: single)",
        ]);
        rates.extend([single_rates[3], single_rates[4]]);
        table(&batch, &names, &rates);
    }
}
