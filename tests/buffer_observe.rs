//! Issue 11 §5: `flush_jitter` as behaviour on the manual clock, the
//! per-partition statistics, and the insert telemetry an observer asks for
//! with `wants_inserts`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spillway::config::Overflow;
use spillway::observer::{InsertEvent, Observer};
use spillway::{Buffer, BufferConfig, Engine, FlushContext, SinkError};

#[test]
fn flush_jitter_spreads_interval_flushes_within_interval_plus_jitter() {
    let engine = Engine::manual();
    let arrived: Arc<Mutex<Vec<u32>>> = Arc::default();
    let seen = Arc::clone(&arrived);
    let cfg = BufferConfig::new()
        .partitions(8)
        .flush_interval(Duration::from_millis(100))
        .flush_jitter(Duration::from_millis(50));
    let buf = Buffer::builder(cfg)
        .sink(move |_: &[u64], ctx: &FlushContext<'_>| {
            seen.lock().unwrap().push(ctx.partition);
            Ok::<(), SinkError>(())
        })
        .engine(&engine)
        .build()
        .unwrap();
    // Advances 1 ms at a time; returns when each partition's batch arrived
    // (in ms since `start`).
    let watch = |start: u64, until: u64| -> BTreeMap<u32, u64> {
        let mut when = BTreeMap::new();
        for t in start + 1..=until {
            engine.advance(Duration::from_millis(1));
            for p in arrived.lock().unwrap().drain(..) {
                assert!(when.insert(p, t).is_none(), "partition {p} flushed twice");
            }
        }
        when
    };
    // One item per partition: plain inserts from one thread would all go to
    // its home partition, so each item gets a key of its partition.
    let keys: Vec<u32> = (0..8u32)
        .map(|p| (0u32..).find(|k| buf.partition_of(k) == p).unwrap())
        .collect();
    for (i, key) in keys.iter().enumerate() {
        buf.insert_keyed(key, i as u64).unwrap();
    }
    let first = watch(0, 160);
    assert_eq!(first.len(), 8, "every partition flushed: {first:?}");
    for (p, t) in &first {
        assert!((100..=150).contains(t), "partition {p} at {t} ms");
    }
    let distinct: std::collections::BTreeSet<_> = first.values().collect();
    assert!(distinct.len() > 1, "jitter spread them apart: {first:?}");

    // Each flush restarts its partition's interval with a fresh draw.
    for (i, key) in keys.iter().enumerate() {
        buf.insert_keyed(key, i as u64).unwrap();
    }
    let second = watch(160, 320);
    assert_eq!(second.len(), 8, "{second:?}");
    for (p, t) in &second {
        let since = t - first[p];
        assert!((100..=150).contains(&since), "partition {p}: {since} ms");
    }
    buf.close(Duration::from_secs(1));
}

#[test]
fn stats_report_each_partition() {
    let engine = Engine::manual();
    let cfg = BufferConfig::new()
        .partitions(3)
        .max_retries(0)
        .flush_interval(Duration::from_secs(60));
    let buf = Buffer::builder(cfg)
        .sink(|_: &[u64], ctx: &FlushContext<'_>| {
            if ctx.partition == 1 {
                Err(SinkError::msg("partition 1's destination is down"))
            } else {
                Ok(())
            }
        })
        .engine(&engine)
        .build()
        .unwrap();
    // A key for each partition.
    let key_of = |p: u32| (0u64..).find(|k| buf.partition_of(k) == p).unwrap();
    for p in 0..3u32 {
        for i in 0..=u64::from(p) {
            buf.insert_keyed(&key_of(p), i).unwrap();
        }
    }
    buf.sync_flush(Duration::from_secs(5)).unwrap();
    let stats = buf.stats();
    let parts: Vec<_> = stats
        .partitions
        .iter()
        .map(|s| {
            let c = &s.counts;
            (
                s.partition,
                c.inserted,
                c.delivered,
                c.dropped,
                c.failed_flushes,
                c.batches,
            )
        })
        .collect();
    assert_eq!(
        parts,
        [(0, 1, 1, 0, 0, 1), (1, 2, 0, 2, 1, 0), (2, 3, 3, 0, 0, 1)]
    );
    for s in &stats.partitions {
        assert!(s.counts.is_conserved(), "{s:?}");
    }
    let sum = |f: fn(&spillway::stats::Counts) -> u64| -> u64 {
        stats.partitions.iter().map(|s| f(&s.counts)).sum()
    };
    assert_eq!(sum(|c| c.inserted), stats.counts.inserted);
    assert_eq!(sum(|c| c.delivered), stats.counts.delivered);
    assert_eq!(sum(|c| c.dropped), stats.counts.dropped);
    assert_eq!(stats.latency.max, {
        stats
            .partitions
            .iter()
            .map(|s| s.latency.max)
            .max()
            .unwrap()
    });
    buf.close(Duration::from_secs(1));
}

/// Counts insert events, and how often it was asked whether it wants them.
struct Inserts {
    want: bool,
    asked: AtomicUsize,
    events: AtomicUsize,
    bytes: AtomicU64,
    partitions: Mutex<Vec<u32>>,
}

impl Inserts {
    fn new(want: bool) -> Arc<Self> {
        Arc::new(Self {
            want,
            asked: AtomicUsize::new(0),
            events: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            partitions: Mutex::default(),
        })
    }
}

impl Observer for Inserts {
    fn wants_inserts(&self) -> bool {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.want
    }
    fn on_insert(&self, e: &InsertEvent<'_>) {
        assert_eq!(e.buffer, "telemetry");
        self.events.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(e.bytes, Ordering::SeqCst);
        self.partitions.lock().unwrap().push(e.partition);
    }
}

fn insert_every_way(obs: &Arc<Inserts>) -> Buffer<String> {
    let cfg = BufferConfig::new()
        .name("telemetry")
        .partitions(2)
        .max_size(4)
        .capacity(4)
        .overflow(Overflow::Reject)
        .flush_interval(Duration::from_secs(60));
    let buf = Buffer::builder(cfg)
        .sink(|_: &[String], _: &FlushContext<'_>| Ok::<(), SinkError>(()))
        .observer(Arc::clone(obs) as Arc<dyn Observer>)
        .engine(&Engine::manual())
        .build()
        .unwrap();
    buf.insert("a".to_string()).unwrap(); // 1 byte, the thread's home partition
    buf.insert_keyed(&7u8, "bb".to_string()).unwrap(); // 2 bytes
    let n = buf
        .insert_batch(["ccc", "dddd"].map(String::from)) // 7 bytes, the same home partition
        .unwrap();
    assert_eq!(n, 2);
    let mut producer = buf.producer();
    producer.insert("eeeee".to_string()).unwrap(); // 5 bytes
    drop(producer);
    buf
}

#[test]
fn an_observer_that_wants_inserts_sees_every_insert_path() {
    let obs = Inserts::new(true);
    let buf = insert_every_way(&obs);
    assert_eq!(obs.events.load(Ordering::SeqCst), 5);
    assert_eq!(obs.bytes.load(Ordering::SeqCst), 1 + 2 + 7 + 5);
    let parts = obs.partitions.lock().unwrap().clone();
    assert_eq!(
        &parts[2..4],
        &[parts[0], parts[0]],
        "insert_batch goes to the thread's home partition, as insert does"
    );
    assert_eq!(parts[1], buf.partition_of(&7u8));
    // A refused insert is no insert.
    let key = (0u64..).find(|k| buf.partition_of(k) == 1).unwrap();
    let mut refused = 0;
    for _ in 0..10 {
        if buf.insert_keyed(&key, "x".to_string()).is_err() {
            refused += 1;
        }
    }
    let inserted = buf.stats().counts.inserted;
    assert!(refused > 0);
    assert_eq!(obs.events.load(Ordering::SeqCst) as u64, inserted);
    assert_eq!(obs.asked.load(Ordering::SeqCst), 1, "asked once, at build");
    buf.close(Duration::from_secs(1));
}

#[test]
fn an_observer_that_does_not_want_inserts_gets_none() {
    let obs = Inserts::new(false);
    let buf = insert_every_way(&obs);
    assert_eq!(buf.stats().counts.inserted, 5);
    assert_eq!(obs.events.load(Ordering::SeqCst), 0);
    assert_eq!(obs.asked.load(Ordering::SeqCst), 1, "asked once, at build");
    buf.close(Duration::from_secs(1));
}
