//! Seeded stress runs of the buffer on real engines (2 flusher threads):
//! 3-4 threads mixing `insert`, `insert_batch`, `insert_keyed` and producer
//! handles, against a sink that fails, panics and stalls at random, under
//! every overflow policy but `spill`, with small batches and capacities so
//! that overflow and retries happen all the time. Some runs close while the
//! threads still insert.
//!
//! After every run: conservation holds exactly (in total and per partition);
//! the sink saw each item at most once, only items whose insert succeeded,
//! and in order per source within a partition (per inserting thread, hence
//! per key, and per producer handle); every error's item was given back;
//! every item was dropped exactly once.
//!
//! The seed fixes a run's configuration, each thread's operations, and the
//! sink's choice for a given batch and attempt; only thread timing varies
//! between runs of a seed. A failure names its seed, and
//! `SPILLWAY_STRESS_SEED=<seed>` reruns just that one (for every policy).

use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, Once};
use std::thread;
use std::time::Duration;

use spillway::buffer::BatchInsertError;
use spillway::config::Overflow;
use spillway::{Buffer, BufferConfig, FlushContext, InsertError, Producer, Sink, SinkError, Weigh};

/// xorshift64*: small, seedable, good enough to pick operations.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Never zero (a fixed point of xorshift), and well mixed.
        Self(mix(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `pct`%.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

/// splitmix64's finaliser: turns related inputs into unrelated outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What became of an item, as the inserting thread saw it.
const MADE: u8 = 0;
/// An insert took it (`Ok`).
const ACCEPTED: u8 = 1;
/// An insert gave it back in an error; the test dropped it.
const RETURNED: u8 = 2;

/// Per item: what its insert said, and how often it was dropped.
struct Book {
    status: Vec<AtomicU8>,
    drops: Vec<AtomicU8>,
}

impl Book {
    fn new(n: usize) -> Self {
        Self {
            status: (0..n).map(|_| AtomicU8::new(MADE)).collect(),
            drops: (0..n).map(|_| AtomicU8::new(0)).collect(),
        }
    }
}

/// A stress item: a unique id, its source (an inserting thread's mutex path
/// or one producer handle) and its place in that source's sequence.
struct Tracked {
    id: u32,
    src: u32,
    seq: u32,
    book: Arc<Book>,
}

impl Weigh for Tracked {}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.book.drops[self.id as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The payload of the sink's deliberate panics, which the panic hook keeps
/// quiet (any other panic is printed as usual).
const SINK_PANIC: &str = "stress sink panics on purpose";

fn quiet_sink_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&SINK_PANIC) {
                default(info);
            }
        }));
    });
}

/// One delivered item, as the sink saw it.
#[derive(Clone, Copy)]
struct Seen {
    id: u32,
    src: u32,
    seq: u32,
    partition: u32,
}

/// Fails, panics or stalls depending on the seed, the batch's first item
/// and the attempt, so its choices replay with the seed (not with timing).
struct ChaosSink {
    seed: u64,
    log: Arc<Mutex<Vec<Seen>>>,
    calls: AtomicU64,
}

impl Sink<Tracked> for ChaosSink {
    fn flush(&self, batch: &[Tracked], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let first = batch.first().map_or(u64::MAX, |t| u64::from(t.id));
        let mut rng = Rng::new(self.seed ^ mix(first) ^ mix(u64::from(ctx.attempt) << 40));
        match rng.next() % 100 {
            0..=14 => return Err(SinkError::msg("stress sink fails on purpose")),
            15..=19 => std::panic::panic_any(SINK_PANIC),
            // A slow sink (bounded): models work, not synchronisation.
            20..=29 => thread::sleep(Duration::from_micros(rng.range(10, 300))),
            30..=39 => {
                for _ in 0..rng.range(1, 50) {
                    thread::yield_now();
                }
            }
            _ => {}
        }
        let mut log = self.log.lock().unwrap();
        log.extend(batch.iter().map(|t| Seen {
            id: t.id,
            src: t.src,
            seq: t.seq,
            partition: ctx.partition,
        }));
        Ok(())
    }
}

/// What the inserting threads saw, summed.
#[derive(Default)]
struct Tally {
    accepted: AtomicU64,
    /// `Full` that the buffer counted as inserted and dropped (`drop_newest`,
    /// and `drop_oldest` when everything held was in flight).
    full_counted: AtomicU64,
    /// `Full`, `Timeout`, `Closed` that the buffer did not count.
    refused: AtomicU64,
    /// Items whose insert is done so far, for a close that races the threads.
    progress: AtomicUsize,
}

/// One inserting source's next sequence number.
struct Source {
    src: u32,
    seq: u32,
}

impl Source {
    fn new(src: &AtomicU32) -> Self {
        Self {
            src: src.fetch_add(1, Ordering::Relaxed),
            seq: 0,
        }
    }
}

struct Worker {
    thread: u32,
    rng: Rng,
    buf: Buffer<Tracked>,
    book: Arc<Book>,
    tally: Arc<Tally>,
    policy: Overflow,
    /// Percent of operations followed by a yield.
    pace: u64,
    next_id: u32,
    end_id: u32,
    sources: Arc<AtomicU32>,
    /// The source of everything this thread inserts under the lock.
    mutex_src: Source,
    /// The current producer handle and its source.
    producer: Option<Producer<Tracked>>,
    producer_src: Source,
}

impl Worker {
    fn make(&mut self, via_producer: bool) -> Tracked {
        let src = if via_producer {
            &mut self.producer_src
        } else {
            &mut self.mutex_src
        };
        let item = Tracked {
            id: self.next_id,
            src: src.src,
            seq: src.seq,
            book: self.book.clone(),
        };
        self.next_id += 1;
        src.seq += 1;
        item
    }

    fn set(&self, id: u32, status: u8) {
        self.book.status[id as usize].store(status, Ordering::Relaxed);
    }

    fn accepted(&self, id: u32) {
        self.set(id, ACCEPTED);
        self.tally.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// An item came back in an error: account for it and drop it.
    fn returned(&self, err: InsertError<Tracked>, via_producer: bool) {
        let counted = match &err {
            InsertError::Full(_) => match self.policy {
                Overflow::DropNewest => true,
                // The mutex path gives the newest up when everything held is
                // in flight; a producer handle's ring is never in flight.
                Overflow::DropOldest => !via_producer,
                _ => false,
            },
            InsertError::Timeout(_) | InsertError::Closed(_) => false,
        };
        match (&err, self.policy) {
            (InsertError::Full(_), Overflow::Block) => panic!("Full under block"),
            (InsertError::Timeout(_), p) if p != Overflow::Block => {
                panic!("Timeout under {p:?}")
            }
            _ => {}
        }
        let item = err.into_inner();
        self.set(item.id, RETURNED);
        if counted {
            self.tally.full_counted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.tally.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn run(mut self) {
        while self.next_id < self.end_id {
            let before = self.next_id;
            let left = u64::from(self.end_id - self.next_id);
            match self.rng.next() % 10 {
                0..=2 => {
                    let item = self.make(false);
                    let id = item.id;
                    match self.buf.insert(item) {
                        Ok(()) => self.accepted(id),
                        Err(e) => self.returned(e, false),
                    }
                }
                3..=4 => {
                    // Keys owned by this thread, so per-key order is this
                    // thread's order.
                    let key = (self.thread, self.rng.range(0, 3));
                    let item = self.make(false);
                    let id = item.id;
                    match self.buf.insert_keyed(&key, item) {
                        Ok(()) => self.accepted(id),
                        Err(e) => self.returned(e, false),
                    }
                }
                5..=6 => {
                    let n = self.rng.range(1, 6).min(left);
                    let items: Vec<Tracked> = (0..n).map(|_| self.make(false)).collect();
                    let ids: Vec<u32> = items.iter().map(|t| t.id).collect();
                    let mut iter = items.into_iter();
                    let inserted = match self.buf.insert_batch(iter.by_ref()) {
                        Ok(k) => k,
                        Err(BatchInsertError { inserted, error }) => {
                            self.returned(error, false);
                            inserted
                        }
                    };
                    for &id in &ids[..inserted] {
                        self.accepted(id);
                    }
                    // What the batch did not reach comes back untouched.
                    for rest in iter {
                        self.set(rest.id, RETURNED);
                        self.tally.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {
                    // Now and then a handle is dropped with items still in
                    // its ring (they must still be delivered) and a new one
                    // taken: a new source, maybe another partition.
                    if self.producer.is_none() || self.rng.chance(2) {
                        drop(self.producer.replace(self.buf.producer()));
                        self.producer_src = Source::new(&self.sources);
                    }
                    let item = self.make(true);
                    let id = item.id;
                    let result = match self.producer.as_mut() {
                        Some(p) => p.insert(item),
                        None => unreachable!("a handle was just ensured"),
                    };
                    match result {
                        Ok(()) => self.accepted(id),
                        Err(e) => self.returned(e, true),
                    }
                }
            }
            let done = (self.next_id - before) as usize;
            self.tally.progress.fetch_add(done, Ordering::Relaxed);
            // Pace the inserts now and then, so that the sink keeps up some
            // of the time and not every insert meets a full partition.
            if self.rng.chance(self.pace) {
                thread::yield_now();
            }
        }
    }
}

fn policy_name(p: Overflow) -> &'static str {
    match p {
        Overflow::Block => "block",
        Overflow::DropNewest => "drop_newest",
        Overflow::DropOldest => "drop_oldest",
        Overflow::Reject => "reject",
        Overflow::Spill => "spill",
    }
}

/// One seeded run; panics (with the seed in the message) on any violation.
fn run(policy: Overflow, seed: u64) {
    let mut rng = Rng::new(seed ^ mix(policy as u64 + 1));
    let threads = rng.range(3, 4) as u32;
    let per_thread = 5000u32;
    let max_size = rng.range(2, 8) as usize;
    let jitter = rng.range(0, 2) as usize;
    let capacity = (max_size + jitter) * rng.range(1, 3) as usize + rng.range(0, 3) as usize;
    let partitions = rng.range(1, 3) as usize;
    let close_early = rng.chance(40);
    let pace = rng.range(0, 60);
    let ctx = format!(
        "policy {} seed {seed} (threads {threads}, max_size {max_size}+{jitter}, \
         capacity {capacity}, partitions {partitions}, pace {pace}, close_early {close_early})",
        policy_name(policy)
    );

    let cfg = BufferConfig::new()
        .name("stress")
        .workers(2)
        .partitions(partitions)
        .max_size(max_size)
        .max_size_jitter(jitter)
        .capacity(capacity)
        .overflow(policy)
        .block_timeout(Duration::from_millis(rng.range(1, 20)))
        .flush_interval(Duration::from_millis(rng.range(1, 10)))
        .flush_jitter(Duration::from_millis(rng.range(0, 2)))
        .flush_timeout(Duration::from_secs(10))
        .max_retries(rng.range(0, 3) as u32)
        .retry_backoff(Duration::from_millis(1))
        .retry_backoff_max(Duration::from_millis(4));
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = ChaosSink {
        seed,
        log: log.clone(),
        calls: AtomicU64::new(0),
    };
    let buf = Buffer::new(cfg, sink).unwrap_or_else(|e| panic!("{ctx}: {e}"));

    let total = (threads * per_thread) as usize;
    let book = Arc::new(Book::new(total));
    let tally = Arc::new(Tally::default());
    let sources = Arc::new(AtomicU32::new(0));
    let start = Arc::new(Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let worker = Worker {
                thread: t,
                rng: Rng::new(seed ^ mix(u64::from(t) + 100)),
                buf: buf.clone(),
                book: book.clone(),
                tally: tally.clone(),
                policy,
                pace,
                next_id: t * per_thread,
                end_id: (t + 1) * per_thread,
                mutex_src: Source::new(&sources),
                producer: None,
                producer_src: Source {
                    src: u32::MAX,
                    seq: 0,
                },
                sources: sources.clone(),
            };
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                worker.run();
            })
        })
        .collect();
    start.wait();

    let report = if close_early {
        // Close in the thick of it: once a random share of the inserts is
        // done (waiting on progress, not on time).
        let at = rng.range(total as u64 / 10, total as u64 * 9 / 10) as usize;
        while tally.progress.load(Ordering::Relaxed) < at {
            thread::yield_now();
        }
        let r = buf.close(Duration::from_secs(30));
        for h in handles {
            h.join().unwrap_or_else(|p| resume_unwind(p));
        }
        r
    } else {
        for h in handles {
            h.join().unwrap_or_else(|p| resume_unwind(p));
        }
        buf.close(Duration::from_secs(30))
    };

    // Close resolved everything it found.
    assert!(!report.timed_out, "{ctx}: close timed out: {report:?}");
    assert_eq!(report.undelivered, 0, "{ctx}: {report:?}");
    assert!(report.counts.is_conserved(), "{ctx}: {:?}", report.counts);

    // Conservation, exactly, once nothing moves.
    let stats = buf.stats();
    let c = &stats.counts;
    assert!(c.is_conserved(), "{ctx}: {c:?}");
    for p in &stats.partitions {
        assert!(p.counts.is_conserved(), "{ctx}: partition {p:?}");
    }
    assert_eq!(
        (c.buffered, c.in_flight, c.dumped, c.spooled),
        (0, 0, 0, 0),
        "{ctx}: {c:?}"
    );
    assert_eq!(buf.len(), 0, "{ctx}");

    // Every item's fate was decided, and the counts agree with what the
    // inserting threads were told.
    let accepted = tally.accepted.load(Ordering::Relaxed);
    let full_counted = tally.full_counted.load(Ordering::Relaxed);
    let refused = tally.refused.load(Ordering::Relaxed);
    assert_eq!(accepted + full_counted + refused, total as u64, "{ctx}");
    for (id, s) in book.status.iter().enumerate() {
        assert_ne!(
            s.load(Ordering::Relaxed),
            MADE,
            "{ctx}: item {id} undecided"
        );
    }
    assert_eq!(c.inserted, accepted + full_counted, "{ctx}: {c:?}");

    // The sink saw only accepted items, each once, and the counters agree.
    let seen = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(c.delivered, seen.len() as u64, "{ctx}: {c:?}");
    let mut delivered = vec![false; total];
    for s in &seen {
        assert!(
            !delivered[s.id as usize],
            "{ctx}: item {} delivered twice",
            s.id
        );
        delivered[s.id as usize] = true;
        assert_eq!(
            book.status[s.id as usize].load(Ordering::Relaxed),
            ACCEPTED,
            "{ctx}: item {} delivered but its insert failed",
            s.id
        );
    }
    // What was accepted and not delivered was given up (sink failure after
    // retries, eviction); with the counted `Full`s, that is `dropped`.
    assert_eq!(
        c.dropped,
        accepted - seen.len() as u64 + full_counted,
        "{ctx}: {c:?}"
    );
    if policy != Overflow::DropOldest && c.failed_flushes == 0 {
        assert_eq!(
            seen.len() as u64,
            accepted,
            "{ctx}: nothing failed, all delivered"
        );
    }

    // Order: within a partition, each source's items arrive in sequence
    // (gaps are items given up); a producer handle feeds one partition.
    let mut last: HashMap<(u32, u32), u32> = HashMap::new();
    for s in &seen {
        if let Some(prev) = last.insert((s.src, s.partition), s.seq) {
            assert!(
                prev < s.seq,
                "{ctx}: source {} partition {}: seq {} after {prev}",
                s.src,
                s.partition,
                s.seq
            );
        }
    }

    // A summary, for `--nocapture`: what the run exercised.
    eprintln!(
        "{ctx}: accepted {accepted}, delivered {}, dropped {}, full/refused {full_counted}/{refused}, \
         batches {}, failed flushes {}, retries {}",
        c.delivered, c.dropped, c.batches, c.failed_flushes, c.retries
    );

    // Ownership: every item dropped exactly once, once the buffer is gone.
    drop(buf);
    for (id, d) in book.drops.iter().enumerate() {
        assert_eq!(d.load(Ordering::Relaxed), 1, "{ctx}: item {id} drops");
    }
}

/// Seeds per policy.
const SEEDS: u64 = 10;

/// Runs `policy` for every seed (or only `SPILLWAY_STRESS_SEED`), naming the
/// seed of a failure.
fn run_seeds(policy: Overflow) {
    quiet_sink_panics();
    let seeds: Vec<u64> = match std::env::var("SPILLWAY_STRESS_SEED") {
        Ok(s) => vec![s.parse().expect("SPILLWAY_STRESS_SEED is a u64")],
        Err(_) => (1..=SEEDS).collect(),
    };
    for seed in seeds {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| run(policy, seed))) {
            eprintln!(
                "buffer_stress failed: policy {} seed {seed} \
                 (rerun with SPILLWAY_STRESS_SEED={seed})",
                policy_name(policy)
            );
            resume_unwind(p);
        }
    }
}

#[test]
fn stress_block() {
    run_seeds(Overflow::Block);
}

#[test]
fn stress_drop_newest() {
    run_seeds(Overflow::DropNewest);
}

#[test]
fn stress_drop_oldest() {
    run_seeds(Overflow::DropOldest);
}

#[test]
fn stress_reject() {
    run_seeds(Overflow::Reject);
}
