//! Behaviour of the batching buffer: triggers, partitions, overflow policies,
//! retries, panics, sync_flush, close, dump, producer handles, the engine.
//! Timing is tested on a manual engine (its clock moves only when told), so
//! nothing here depends on how loaded the machine is.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use spillway::buffer::{FlushReport, SyncFlushError};
use spillway::config::Overflow;
use spillway::observer::{DropEvent, DropReason, Observer, RetryEvent};
use spillway::{
    Buffer, BufferConfig, Engine, FlushContext, FlushReason, InsertError, Sink, SinkError, Weigh,
};

type Log<T> = Arc<Mutex<Vec<(FlushReason, u32, Vec<T>)>>>;

/// A sink that records every batch with its reason and partition.
struct Recorder<T>(Log<T>);

impl<T: Clone + Send + 'static> Sink<T> for Recorder<T> {
    fn flush(&self, batch: &[T], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        self.0
            .lock()
            .unwrap()
            .push((ctx.reason, ctx.partition, batch.to_vec()));
        Ok(())
    }
}

fn recorder<T: Clone + Send + 'static>() -> (Log<T>, Recorder<T>) {
    let log: Log<T> = Arc::new(Mutex::new(Vec::new()));
    (log.clone(), Recorder(log))
}

fn batches<T: Clone>(log: &Log<T>) -> Vec<Vec<T>> {
    log.lock()
        .unwrap()
        .iter()
        .map(|(_, _, b)| b.clone())
        .collect()
}

fn reasons<T>(log: &Log<T>) -> Vec<FlushReason> {
    log.lock().unwrap().iter().map(|(r, _, _)| *r).collect()
}

fn base() -> BufferConfig {
    BufferConfig::new()
        .max_size(3)
        .flush_interval(Duration::from_secs(10))
        .capacity(100)
}

#[test]
fn size_trigger_fires_at_the_insert_that_reaches_max_size() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let buf = Buffer::builder(base())
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    buf.insert(1).unwrap();
    buf.insert(2).unwrap();
    engine.run_pending();
    assert!(batches(&log).is_empty(), "two items are below max_size");
    buf.insert(3).unwrap();
    engine.run_pending();
    assert_eq!(batches(&log), [vec![1, 2, 3]]);
    assert_eq!(reasons(&log), [FlushReason::Size]);
    let s = buf.stats();
    assert_eq!(
        (s.counts.inserted, s.counts.delivered, s.counts.batches),
        (3, 3, 1)
    );
    assert!(s.counts.is_conserved());
}

#[test]
fn batches_never_exceed_max_size() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let buf = Buffer::builder(base())
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..10 {
        buf.insert(i).unwrap();
    }
    engine.run_pending();
    assert_eq!(batches(&log), [vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8]]);
    let r = buf.sync_flush(Duration::from_secs(5)).unwrap();
    assert_eq!(r.delivered(), 1);
    assert_eq!(batches(&log).last().unwrap(), &vec![9]);
    assert_eq!(*reasons(&log).last().unwrap(), FlushReason::Manual);
}

#[test]
fn time_trigger_fires_exactly_at_the_interval_and_restarts_after_each_flush() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let cfg = base()
        .max_size(100)
        .flush_interval(Duration::from_millis(500));
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    buf.insert(1).unwrap();
    engine.advance(Duration::from_millis(499));
    assert!(batches(&log).is_empty());
    engine.advance(Duration::from_millis(1));
    assert_eq!(batches(&log), [vec![1]]);
    assert_eq!(reasons(&log), [FlushReason::Time]);

    // The interval restarted when that flush ended: 500 ms from now, not
    // from the previous deadline.
    buf.insert(2).unwrap();
    engine.advance(Duration::from_millis(499));
    assert_eq!(batches(&log).len(), 1);
    engine.advance(Duration::from_millis(1));
    assert_eq!(batches(&log), [vec![1], vec![2]]);

    // An empty partition flushes nothing when its interval runs out.
    engine.advance(Duration::from_secs(5));
    assert_eq!(batches(&log).len(), 2);
}

#[test]
fn a_size_flush_restarts_the_interval() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let cfg = base()
        .max_size(2)
        .flush_interval(Duration::from_millis(100));
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    engine.advance(Duration::from_millis(60));
    buf.insert(1).unwrap();
    buf.insert(2).unwrap(); // size flush at t=60 restarts the interval: next at 160
    engine.run_pending();
    buf.insert(3).unwrap();
    engine.advance(Duration::from_millis(99)); // t=159
    assert_eq!(batches(&log), [vec![1, 2]]);
    engine.advance(Duration::from_millis(1)); // t=160
    assert_eq!(batches(&log), [vec![1, 2], vec![3]]);
}

#[test]
fn max_bytes_trigger_for_byte_items() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<Vec<u8>>();
    let cfg = base().max_size(100).max_bytes(10);
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    buf.insert(vec![0; 4]).unwrap();
    buf.insert(vec![1; 4]).unwrap();
    engine.run_pending();
    assert!(batches(&log).is_empty(), "8 bytes are below max_bytes");
    buf.insert(vec![2; 2]).unwrap();
    engine.run_pending();
    assert_eq!(batches(&log).len(), 1);
    assert_eq!(batches(&log)[0].len(), 3);
}

#[test]
fn batch_bytes_is_passed_to_the_sink() {
    let engine = Engine::manual();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let buf = Buffer::builder(base().max_size(2))
        .sink(move |_: &[String], ctx: &FlushContext<'_>| {
            s.lock()
                .unwrap()
                .push((ctx.batch_bytes, ctx.buffer.to_string(), ctx.attempt));
            Ok::<(), SinkError>(())
        })
        .engine(&engine)
        .build()
        .unwrap();
    buf.insert("abc".to_string()).unwrap();
    buf.insert("de".to_string()).unwrap();
    engine.run_pending();
    assert_eq!(*seen.lock().unwrap(), [(5, "spillway".to_string(), 0)]);
}

#[test]
fn size_jitter_is_drawn_afresh_each_cycle_and_stays_in_bounds() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let cfg = base().max_size(10).max_size_jitter(5).capacity(10_000);
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..3000 {
        buf.insert(i).unwrap();
    }
    engine.run_pending();
    let sizes: Vec<usize> = batches(&log).iter().map(Vec::len).collect();
    assert!(sizes.len() > 100);
    assert!(sizes.iter().all(|&n| (10..=15).contains(&n)), "{sizes:?}");
    let distinct: std::collections::BTreeSet<_> = sizes.iter().collect();
    assert!(distinct.len() >= 4, "jitter should vary: {distinct:?}");
    let all: Vec<u32> = batches(&log).concat();
    assert_eq!(all, (0..all.len() as u32).collect::<Vec<_>>());
}

#[test]
fn keyed_inserts_keep_per_key_order_and_one_threads_inserts_share_a_partition() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<(u8, u32)>();
    let cfg = base().partitions(4).max_size(100).capacity(1000);
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..400 {
        let key = (i % 7) as u8;
        buf.insert_keyed(&key, (key, i)).unwrap();
    }
    buf.sync_flush(Duration::from_secs(5)).unwrap();
    let log = log.lock().unwrap();
    let mut per_key: std::collections::HashMap<u8, Vec<u32>> = Default::default();
    for (_, partition, b) in log.iter() {
        for &(k, i) in b {
            assert_eq!(*partition, buf.partition_of(&k));
            per_key.entry(k).or_default().push(i);
        }
    }
    for (k, seq) in per_key {
        let want: Vec<u32> = (0..400).filter(|i| i % 7 == u32::from(k)).collect();
        assert_eq!(seq, want, "key {k}");
    }
    drop(log);

    let (log2, sink2) = recorder::<u32>();
    let rr = Buffer::builder(base().name("rr").partitions(3).max_size(100))
        .sink(sink2)
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..9 {
        rr.insert(i).unwrap();
    }
    rr.insert_batch(9..12).unwrap();
    rr.sync_flush(Duration::from_secs(5)).unwrap();
    // One thread inserts into its home partition only, batches included,
    // so its items keep their order.
    let log2 = log2.lock().unwrap().clone();
    assert_eq!(log2.len(), 1, "{log2:?}");
    assert_eq!(log2[0].2, (0..12).collect::<Vec<_>>());
}

#[test]
fn two_threads_on_two_partitions_each_keep_one_partition_and_their_order() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<(u32, u32)>();
    let cfg = base().partitions(2).max_size(50).capacity(100_000);
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    const PER_THREAD: u32 = 5_000;
    let start = Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2u32)
        .map(|t| {
            let (buf, start) = (buf.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for i in 0..PER_THREAD {
                    buf.insert((t, i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    buf.sync_flush(Duration::from_secs(5)).unwrap();
    let mut seq = [Vec::new(), Vec::new()];
    let mut parts = [Vec::new(), Vec::new()];
    for (_, partition, b) in log.lock().unwrap().iter() {
        for &(t, i) in b {
            seq[t as usize].push(i);
            if !parts[t as usize].contains(partition) {
                parts[t as usize].push(*partition);
            }
        }
    }
    for t in 0..2 {
        assert_eq!(seq[t], (0..PER_THREAD).collect::<Vec<_>>(), "thread {t}");
        assert_eq!(
            parts[t].len(),
            1,
            "thread {t} used partitions {:?}",
            parts[t]
        );
    }
    let c = buf.stats().counts;
    assert_eq!(
        (c.inserted, c.delivered),
        (2 * u64::from(PER_THREAD), 2 * u64::from(PER_THREAD))
    );
    assert!(c.is_conserved());
}

#[test]
fn overflow_reject_gives_the_item_back_and_counts_nothing() {
    let engine = Engine::manual();
    let (_log, sink) = recorder::<u32>();
    let cfg = base().max_size(3).capacity(3).overflow(Overflow::Reject);
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..3 {
        buf.insert(i).unwrap();
    }
    assert_eq!(buf.insert(99), Err(InsertError::Full(99)));
    let c = buf.stats().counts;
    assert_eq!((c.inserted, c.dropped, c.buffered), (3, 0, 3));
    assert!(c.is_conserved());
}

#[derive(Default)]
struct Drops(Mutex<Vec<(usize, DropReason)>>, AtomicUsize);
impl Observer for Drops {
    fn on_drop(&self, e: &DropEvent<'_>) {
        self.0.lock().unwrap().push((e.count, e.reason));
    }
    fn on_retry(&self, _: &RetryEvent<'_>) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn overflow_drop_oldest_with_everything_in_flight_refuses_with_its_own_reason() {
    // The sink holds the one batch until released: every item held is in
    // flight, so drop_oldest has nothing to evict and refuses the new item.
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let obs = Arc::new(Drops::default());
    let cfg = base().capacity(3).overflow(Overflow::DropOldest);
    let buf = Buffer::builder(cfg)
        .sink(move |b: &[u32], _: &FlushContext<'_>| {
            let _ = entered_tx.lock().unwrap().send(());
            let _ = release_rx.lock().unwrap().recv();
            g.lock().unwrap().extend_from_slice(b);
            Ok::<(), SinkError>(())
        })
        .observer(obs.clone())
        .build()
        .unwrap();
    for i in 0..3 {
        buf.insert(i).unwrap(); // a whole batch: flushed, and held
    }
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(buf.insert(99), Err(InsertError::Full(99)));
    assert_eq!(*obs.0.lock().unwrap(), [(1, DropReason::NothingToEvict)]);
    release.send(()).unwrap();
    buf.sync_flush(Duration::from_secs(10)).unwrap();
    assert_eq!(*got.lock().unwrap(), [0, 1, 2]);
    let c = buf.stats().counts;
    assert_eq!((c.inserted, c.delivered, c.dropped), (4, 3, 1));
    assert!(c.is_conserved());
}

#[test]
fn overflow_drop_newest_refuses_counts_and_reports() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let obs = Arc::new(Drops::default());
    let cfg = base()
        .max_size(3)
        .capacity(3)
        .overflow(Overflow::DropNewest);
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .observer(obs.clone())
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..3 {
        buf.insert(i).unwrap();
    }
    assert_eq!(buf.insert(99), Err(InsertError::Full(99)));
    assert_eq!(*obs.0.lock().unwrap(), [(1, DropReason::DropNewest)]);
    buf.sync_flush(Duration::from_secs(5)).unwrap();
    assert_eq!(batches(&log), [vec![0, 1, 2]]);
    let c = buf.stats().counts;
    assert_eq!((c.inserted, c.delivered, c.dropped), (4, 3, 1));
    assert!(c.is_conserved());
}

#[test]
fn overflow_drop_oldest_evicts_the_oldest_buffered_item() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let obs = Arc::new(Drops::default());
    let cfg = base()
        .max_size(10)
        .capacity(10)
        .overflow(Overflow::DropOldest);
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .observer(obs.clone())
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..9 {
        buf.insert(i).unwrap();
    }
    // The 10th seals the chunk; it waits in the queue (manual engine).
    buf.insert(9).unwrap();
    buf.insert(10).unwrap();
    buf.insert(11).unwrap();
    engine.run_pending();
    buf.sync_flush(Duration::from_secs(5)).unwrap();
    let all: Vec<u32> = batches(&log).concat();
    assert_eq!(all, (2..12).collect::<Vec<_>>());
    assert_eq!(
        *obs.0.lock().unwrap(),
        [(1, DropReason::DropOldest), (1, DropReason::DropOldest)]
    );
    let c = buf.stats().counts;
    assert_eq!((c.inserted, c.delivered, c.dropped), (12, 10, 2));
    assert!(c.is_conserved());
}

#[test]
fn overflow_block_times_out_and_gives_the_item_back() {
    let engine = Engine::manual();
    let (_log, sink) = recorder::<u32>();
    let cfg = base()
        .max_size(2)
        .capacity(2)
        .overflow(Overflow::Block)
        .block_timeout(Duration::from_millis(30));
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    buf.insert(1).unwrap();
    buf.insert(2).unwrap();
    let t = Instant::now();
    // Nobody runs the manual engine, so the partition stays full.
    assert_eq!(buf.insert(3), Err(InsertError::Timeout(3)));
    assert!(t.elapsed() >= Duration::from_millis(30));
    engine.run_pending();
    buf.insert(3).unwrap();
    assert!(buf.stats().counts.is_conserved());
}

#[test]
fn overflow_block_waits_for_the_flusher_and_then_proceeds() {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let cfg = base()
        .max_size(2)
        .capacity(2)
        .overflow(Overflow::Block)
        .block_timeout(Duration::from_secs(30));
    let buf = Buffer::new(cfg, move |b: &[u32], _: &FlushContext<'_>| {
        // Each batch waits for the test's permission.
        rx.lock().unwrap().recv().unwrap();
        s.lock().unwrap().extend_from_slice(b);
        Ok::<(), SinkError>(())
    })
    .unwrap();
    buf.insert(1).unwrap();
    buf.insert(2).unwrap(); // full, batch in flight
    let b2 = buf.clone();
    let blocked = std::thread::spawn(move || b2.insert(3));
    tx.send(()).unwrap(); // let the first batch through: room for item 3
    assert_eq!(blocked.join().unwrap(), Ok(()));
    tx.send(()).unwrap();
    let report = buf.close(Duration::from_secs(10));
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
    assert_eq!(report.undelivered, 0);
    assert!(report.counts.is_conserved());
}

#[test]
fn a_failing_sink_is_retried_with_backoff_in_order_then_succeeds() {
    let engine = Engine::manual();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let obs = Arc::new(Drops::default());
    let cfg = base()
        .max_size(2)
        .max_retries(3)
        .retry_backoff(Duration::from_millis(100))
        .retry_backoff_max(Duration::from_secs(1));
    let buf = Buffer::builder(cfg)
        .sink(move |b: &[u32], ctx: &FlushContext<'_>| {
            let mut c = c.lock().unwrap();
            c.push((ctx.attempt, b.to_vec()));
            if ctx.attempt < 2 {
                Err(SinkError::msg("down"))
            } else {
                Ok(())
            }
        })
        .observer(obs.clone())
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..4 {
        buf.insert(i).unwrap();
    }
    engine.run_pending();
    // First attempt failed; the second batch must wait behind the first.
    assert_eq!(*calls.lock().unwrap(), [(0, vec![0, 1])]);
    // The first backoff is at least half of retry_backoff (equal jitter).
    engine.advance(Duration::from_millis(49));
    assert_eq!(calls.lock().unwrap().len(), 1);
    // Every backoff is at most 100 ms * 2^attempt, so 2 s of simulated time
    // is plenty for both batches to get through.
    engine.advance(Duration::from_secs(2));
    let got = calls.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            (0, vec![0, 1]),
            (1, vec![0, 1]),
            (2, vec![0, 1]),
            (0, vec![2, 3]),
            (1, vec![2, 3]),
            (2, vec![2, 3]),
        ]
    );
    let s = buf.stats().counts;
    assert_eq!(
        (s.delivered, s.dropped, s.failed_flushes, s.retries),
        (4, 0, 4, 4)
    );
    assert_eq!(obs.1.load(Ordering::SeqCst), 4);
    assert!(s.is_conserved());
}

#[test]
fn a_sink_that_always_fails_drops_the_batch_after_max_retries() {
    let engine = Engine::manual();
    let obs = Arc::new(Drops::default());
    let cfg = base()
        .max_size(3)
        .max_retries(2)
        .retry_backoff(Duration::from_millis(10));
    let buf = Buffer::builder(cfg)
        .sink(|_: &[u32], _: &FlushContext<'_>| Err::<(), _>(SinkError::msg("nope")))
        .observer(obs.clone())
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..3 {
        buf.insert(i).unwrap();
    }
    engine.advance(Duration::from_secs(1));
    assert_eq!(*obs.0.lock().unwrap(), [(3, DropReason::SinkFailed)]);
    let s = buf.stats().counts;
    assert_eq!(
        (s.delivered, s.dropped, s.failed_flushes, s.retries),
        (0, 3, 3, 2)
    );
    assert!(s.is_conserved());
}

#[test]
fn a_panicking_sink_is_a_failed_flush_and_the_flusher_lives_on() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let cfg = base()
        .max_size(1)
        .max_retries(0)
        .flush_interval(Duration::from_secs(60));
    let buf = Buffer::new(cfg.workers(1), move |b: &[u32], _: &FlushContext<'_>| {
        c.fetch_add(1, Ordering::SeqCst);
        if b[0] == 0 {
            panic!("boom");
        }
        Ok::<(), SinkError>(())
    })
    .unwrap();
    buf.insert(0).unwrap();
    buf.insert(1).unwrap();
    let r = buf.sync_flush(Duration::from_secs(10)).unwrap();
    assert_eq!((r.delivered(), r.dropped()), (1, 1));
    assert!(!r.all_delivered());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let s = buf.stats().counts;
    assert_eq!((s.failed_flushes, s.dropped, s.delivered), (1, 1, 1));
}

#[test]
fn sync_flush_reports_delivered_and_failed_items() {
    let engine = Engine::manual();
    let cfg = base().max_size(2).max_retries(0);
    let buf = Buffer::builder(cfg)
        .sink(|b: &[u32], _: &FlushContext<'_>| {
            if b.contains(&3) {
                Err(SinkError::msg("no threes"))
            } else {
                Ok(())
            }
        })
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..5 {
        buf.insert(i).unwrap();
    }
    let r = buf.sync_flush(Duration::from_secs(5)).unwrap();
    assert_eq!((r.delivered(), r.dropped(), r.undelivered()), (3, 2, 0));
    // A second sync_flush has nothing to wait for.
    assert_eq!(
        buf.sync_flush(Duration::from_secs(5)).unwrap(),
        FlushReport::default()
    );
}

#[test]
fn sync_flush_and_close_honour_their_timeouts_when_the_sink_never_returns() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let cfg = base().max_size(1).workers(1);
    let buf = Buffer::new(cfg, move |_: &[u32], _: &FlushContext<'_>| {
        let _ = release_rx.lock().unwrap().recv();
        Ok::<(), SinkError>(())
    })
    .unwrap();
    buf.insert(1).unwrap();
    let t = Instant::now();
    match buf.sync_flush(Duration::from_millis(50)) {
        Err(SyncFlushError::Timeout(r)) => assert_eq!(r.undelivered(), 1),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let report = buf.close(Duration::from_millis(50));
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "close must not wait for the sink"
    );
    assert!(report.timed_out);
    assert_eq!(report.undelivered, 1);
    assert_eq!(report.counts.in_flight, 1);
    assert!(report.counts.is_conserved());
    assert_eq!(buf.insert(2), Err(InsertError::Closed(2)));
    drop(release_tx); // lets the stuck sink return so the test's thread ends
}

#[test]
fn close_flushes_everything_and_is_idempotent() {
    let (log, sink) = recorder::<u32>();
    let buf = Buffer::new(base().max_size(100).partitions(2), sink).unwrap();
    for i in 0..10 {
        buf.insert(i).unwrap();
    }
    let r1 = buf.close(Duration::from_secs(10));
    assert_eq!((r1.delivered, r1.undelivered, r1.timed_out), (10, 0, false));
    assert!(reasons(&log).iter().all(|r| *r == FlushReason::Close));
    let r2 = buf.close(Duration::from_secs(10));
    assert_eq!(r1, r2);
    assert_eq!(buf.insert(5), Err(InsertError::Closed(5)));
    assert!(matches!(
        buf.sync_flush(Duration::from_secs(1)),
        Err(SyncFlushError::Closed)
    ));
    assert!(r1.counts.is_conserved());
}

#[test]
fn dropping_the_last_clone_closes_and_delivers() {
    let (log, sink) = recorder::<u32>();
    let buf = Buffer::new(base().max_size(100), sink).unwrap();
    let clone = buf.clone();
    buf.insert(1).unwrap();
    drop(buf);
    clone.insert(2).unwrap();
    drop(clone);
    assert_eq!(batches(&log).concat(), [1, 2]);
}

#[test]
fn dump_takes_items_out_without_flushing() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let buf = Buffer::builder(base().max_size(100).partitions(2))
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..6 {
        buf.insert(i).unwrap();
    }
    let mut got = buf.dump();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    assert!(buf.is_empty());
    buf.sync_flush(Duration::from_secs(1)).unwrap();
    assert!(batches(&log).is_empty());
    let c = buf.stats().counts;
    assert_eq!((c.inserted, c.dumped), (6, 6));
    assert!(c.is_conserved());
}

#[test]
fn flush_meta_and_manual_flush_reach_the_sink() {
    let engine = Engine::manual();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let cfg = base().max_size(100).flush_meta("tenant-7");
    let buf = Buffer::builder(cfg)
        .sink(move |b: &[u32], ctx: &FlushContext<'_>| {
            s.lock()
                .unwrap()
                .push((ctx.flush_meta.map(str::to_string), ctx.reason, b.len()));
            Ok::<(), SinkError>(())
        })
        .engine(&engine)
        .build()
        .unwrap();
    buf.insert(1).unwrap();
    buf.flush();
    engine.run_pending();
    assert_eq!(
        *seen.lock().unwrap(),
        [(Some("tenant-7".to_string()), FlushReason::Manual, 1)]
    );
}

#[test]
fn producer_handles_deliver_everything_in_order_per_handle() {
    let (log, sink) = recorder::<(u32, u32)>();
    let cfg = base().max_size(64).capacity(1024).partitions(2).workers(2);
    let buf = Buffer::new(cfg, sink).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let mut p = buf.producer();
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    let mut item = (t, i);
                    loop {
                        match p.insert(item) {
                            Ok(()) => break,
                            Err(InsertError::Timeout(v)) => item = v,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = buf.close(Duration::from_secs(30));
    assert_eq!(report.undelivered, 0);
    let mut per_handle = vec![Vec::new(); 4];
    for (_, _, b) in log.lock().unwrap().iter() {
        for &(t, i) in b {
            per_handle[t as usize].push(i);
        }
    }
    for (t, seq) in per_handle.iter().enumerate() {
        assert_eq!(seq, &(0..20_000).collect::<Vec<_>>(), "handle {t}");
    }
    let c = report.counts;
    assert_eq!((c.inserted, c.delivered), (80_000, 80_000));
    assert!(c.is_conserved());
}

/// A producer handle's hint every `max_size` items hands its ring to a
/// flusher: each batch arrives by size, long before the hour-long interval,
/// though the ring (2 x max_size slots) never fills, which would drain it on
/// the producer's thread instead.
#[test]
fn a_producer_handles_ring_is_flushed_by_size_without_filling_it() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let sink = move |b: &[u32], ctx: &FlushContext<'_>| {
        tx.lock().unwrap().send((ctx.reason, b.to_vec())).unwrap();
        Ok::<(), SinkError>(())
    };
    let cfg = BufferConfig::new()
        .max_size(64)
        .capacity(10_000)
        .flush_interval(Duration::from_secs(3600));
    let buf = Buffer::new(cfg, sink).unwrap();
    let mut p = buf.producer();
    for k in 0..3u32 {
        // One batch at a time, each waited for: the ring is never full.
        for i in k * 64..(k + 1) * 64 {
            p.insert(i).unwrap();
        }
        let (reason, batch) = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("batch {k} did not come by size: {e}"));
        assert_eq!(reason, FlushReason::Size);
        assert_eq!(batch, (k * 64..(k + 1) * 64).collect::<Vec<_>>());
    }
    drop(p);
    let report = buf.close(Duration::from_secs(10));
    assert_eq!(report.counts.delivered, 192);
    assert!(report.counts.is_conserved(), "{report:?}");
}

#[test]
fn a_producer_handle_after_close_gets_its_item_back() {
    let (_log, sink) = recorder::<u32>();
    let buf = Buffer::new(base(), sink).unwrap();
    let mut p = buf.producer();
    p.insert(1).unwrap();
    let r = buf.close(Duration::from_secs(5));
    assert_eq!(r.delivered, 1);
    assert_eq!(p.insert(2), Err(InsertError::Closed(2)));
    drop(p);
    assert!(buf.stats().counts.is_conserved());
}

#[test]
fn sync_flush_includes_items_still_in_producer_rings() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let buf = Buffer::builder(base().max_size(100))
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    let mut p = buf.producer();
    for i in 0..5 {
        p.insert(i).unwrap();
    }
    assert_eq!(buf.len(), 5);
    let r = buf.sync_flush(Duration::from_secs(5)).unwrap();
    assert_eq!(r.delivered(), 5);
    assert_eq!(batches(&log), [vec![0, 1, 2, 3, 4]]);
}

#[test]
fn insert_batch_takes_as_many_as_fit_and_returns_the_refused_item() {
    let engine = Engine::manual();
    let (_log, sink) = recorder::<u32>();
    let cfg = base().max_size(3).capacity(4).overflow(Overflow::Reject);
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    let mut it = 0..10u32;
    let err = buf.insert_batch(it.by_ref()).unwrap_err();
    assert_eq!(err.inserted, 4);
    assert_eq!(err.error, InsertError::Full(4));
    assert_eq!(it.next(), Some(5), "the rest stays in the iterator");
    assert_eq!(buf.insert_batch(Vec::new()).unwrap(), 0);
}

#[test]
fn engine_lookup_is_typed_and_names_are_unique() {
    let engine = Engine::manual();
    let (_l1, s1) = recorder::<u32>();
    let (_l2, s2) = recorder::<String>();
    let a = Buffer::builder(base().name("a"))
        .sink(s1)
        .engine(&engine)
        .build()
        .unwrap();
    let _b = Buffer::builder(base().name("b"))
        .sink(s2)
        .engine(&engine)
        .build()
        .unwrap();
    assert_eq!(engine.names(), ["a", "b"]);
    assert!(engine.get::<u32>("a").is_some());
    assert!(engine.get::<String>("a").is_none(), "wrong type");
    assert!(engine.get::<u32>("zzz").is_none());
    let (_l3, s3) = recorder::<u32>();
    let err = Buffer::builder(base().name("a"))
        .sink(s3)
        .engine(&engine)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "a buffer named `a` is already registered");
    a.close(Duration::from_secs(1));
    assert_eq!(engine.names(), ["b"]);
    let (_l4, s4) = recorder::<u32>();
    Buffer::builder(base().name("a"))
        .sink(s4)
        .engine(&engine)
        .build()
        .expect("a closed buffer's name is free again");
}

#[test]
fn engine_stop_closes_every_buffer() {
    let engine = Engine::new(2).unwrap();
    let (l1, s1) = recorder::<u32>();
    let (l2, s2) = recorder::<u64>();
    let a = Buffer::builder(base().name("a").max_size(100))
        .sink(s1)
        .engine(&engine)
        .build()
        .unwrap();
    let b = Buffer::builder(base().name("b").max_size(100))
        .sink(s2)
        .engine(&engine)
        .build()
        .unwrap();
    a.insert(1).unwrap();
    b.insert(2).unwrap();
    let reports = engine.stop(Duration::from_secs(10));
    let names: Vec<&str> = reports.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(reports
        .iter()
        .all(|(_, r)| r.delivered == 1 && r.undelivered == 0));
    assert_eq!(batches(&l1), [vec![1]]);
    assert_eq!(batches(&l2), [vec![2]]);
    assert_eq!(a.insert(3), Err(InsertError::Closed(3)));
}

#[test]
fn invalid_configuration_is_refused_with_the_key_named() {
    let (_l, s) = recorder::<u32>();
    let err = Buffer::new(BufferConfig::new().max_size(10).capacity(5), s).unwrap_err();
    assert!(err.to_string().contains("capacity"), "{err}");
    let (_l, s) = recorder::<u32>();
    let err = Buffer::new(
        BufferConfig::new()
            .overflow(Overflow::Spill)
            .spool_dir("/tmp/x"),
        s,
    )
    .unwrap_err();
    assert!(err.to_string().contains("spill"), "{err}");
    assert_eq!(
        Engine::new(0).unwrap_err().to_string(),
        "an engine needs at least 1 worker (`workers` >= 1)"
    );
}

/// An item that counts its drops, to prove every item is dropped once.
struct Counted(u32, Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}
impl Weigh for Counted {}

#[test]
fn every_item_is_dropped_exactly_once_on_every_path() {
    let drops = Arc::new(AtomicUsize::new(0));
    let engine = Engine::manual();
    let cfg = base()
        .max_size(2)
        .capacity(4)
        .overflow(Overflow::DropOldest)
        .max_retries(0);
    let buf = Buffer::builder(cfg)
        .sink(|b: &[Counted], _: &FlushContext<'_>| {
            if b.iter().any(|c| c.0 % 5 == 0) {
                Err(SinkError::msg("fives fail"))
            } else {
                Ok(())
            }
        })
        .engine(&engine)
        .build()
        .unwrap();
    let mut made = 0;
    let mut mk = |n| {
        made += 1;
        Counted(n, drops.clone())
    };
    for i in 0..20 {
        let _ = buf.insert(mk(i)); // evictions, deliveries and failures
    }
    let mut p = buf.producer();
    for i in 20..30 {
        let _ = p.insert(mk(i));
    }
    let dumped = buf.dump(); // dump part of it
    drop(dumped);
    for i in 30..33 {
        let _ = buf.insert(mk(i));
    }
    drop(p);
    let r = buf.close(Duration::from_secs(5));
    assert!(r.counts.is_conserved());
    drop(buf);
    drop(engine);
    assert_eq!(drops.load(Ordering::SeqCst), made);
}

#[derive(Default)]
struct Timeouts(Mutex<Vec<(bool, Option<String>)>>);
impl Observer for Timeouts {
    fn on_flush_end(&self, e: &spillway::observer::FlushEnd<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((e.timed_out, e.error.map(str::to_string)));
    }
}

#[test]
fn a_flush_running_past_flush_timeout_is_reported() {
    let engine = Engine::manual();
    let obs = Arc::new(Timeouts::default());
    let cfg = base().max_size(1).flush_timeout(Duration::from_millis(5));
    let buf = Buffer::builder(cfg)
        .sink(|b: &[u32], ctx: &FlushContext<'_>| {
            if b[0] == 1 {
                // A slow sink: it outlives its deadline, then succeeds.
                while Instant::now() <= ctx.deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Ok::<(), SinkError>(())
        })
        .observer(obs.clone())
        .engine(&engine)
        .build()
        .unwrap();
    buf.insert(1).unwrap();
    buf.insert(2).unwrap();
    engine.run_pending();
    // Late is reported, not undone: the sink accepted the batch.
    assert_eq!(*obs.0.lock().unwrap(), [(true, None), (false, None)]);
    let c = buf.stats().counts;
    assert_eq!((c.flush_timeouts, c.delivered, c.failed_flushes), (1, 2, 0));
    assert!(buf.stats().latency.max >= Duration::from_millis(5));
}

struct Panicky;
impl Observer for Panicky {
    fn on_flush_start(&self, _: &spillway::observer::FlushStart<'_>) {
        panic!("observer bug");
    }
    fn on_flush_end(&self, _: &spillway::observer::FlushEnd<'_>) {
        panic!("observer bug");
    }
}

#[test]
fn a_panicking_observer_cannot_stop_a_flush() {
    let engine = Engine::manual();
    let (log, sink) = recorder::<u32>();
    let buf = Buffer::builder(base().max_size(2))
        .sink(sink)
        .observer(Arc::new(Panicky))
        .engine(&engine)
        .build()
        .unwrap();
    buf.insert(1).unwrap();
    buf.insert(2).unwrap();
    engine.run_pending();
    assert_eq!(batches(&log), [vec![1, 2]]);
    let r = buf.close(Duration::from_secs(5));
    assert_eq!((r.undelivered, r.timed_out), (0, false));
    assert_eq!(r.counts.delivered, 2);
}
