//! `overflow: spill`: a full partition and a batch that keeps failing go to
//! the disk spool; the spool drains back in order when the sink recovers,
//! and survives a restart. Runs on manual engines, so every flush happens
//! when the test says so.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spillway::config::Overflow;
use spillway::{
    Buffer, BufferConfig, Engine, FlushContext, FlushReason, InsertError, Sink, SinkError,
    SpillCodec,
};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spillway-spill-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every batch a sink accepted, with its reason.
type Accepted = Arc<Mutex<Vec<(FlushReason, Vec<u64>)>>>;

/// A sink that is down while `up` is false, and records what it accepts.
#[derive(Clone, Default)]
struct Switch {
    up: Arc<AtomicBool>,
    got: Accepted,
    calls: Arc<AtomicUsize>,
}

impl Switch {
    fn delivered(&self) -> Vec<u64> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| b.clone())
            .collect()
    }
}

impl Sink<u64> for Switch {
    fn flush(&self, batch: &[u64], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.up.load(Ordering::SeqCst) {
            return Err(SinkError::msg("sink is down"));
        }
        self.got.lock().unwrap().push((ctx.reason, batch.to_vec()));
        Ok(())
    }
}

fn spill_config(dir: &PathBuf) -> BufferConfig {
    BufferConfig::new()
        .overflow(Overflow::Spill)
        .spool_dir(dir)
        .max_size(4)
        .capacity(8)
        .max_retries(1)
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(100))
        .flush_interval(Duration::from_secs(60))
}

#[test]
fn a_full_partition_spills_and_everything_arrives_in_order_when_the_sink_recovers() {
    let dir = temp_dir("outage");
    let engine = Engine::manual();
    let sink = Switch::default();
    let buf = Buffer::builder(spill_config(&dir))
        .sink(sink.clone())
        .spill(SpillCodec::of())
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..100u64 {
        buf.insert(i)
            .expect("spill never refuses while the disk has room");
        engine.advance(Duration::from_millis(5)); // failed flushes, retries
    }
    let c = buf.stats().counts;
    assert_eq!(c.dropped, 0, "spill drops nothing");
    assert!(c.spooled > 50, "most items wait on disk: {c:?}");
    assert!(
        c.buffered + c.in_flight <= 8,
        "memory stays within capacity: {c:?}"
    );
    assert!(c.is_conserved(), "{c:?}");

    sink.up.store(true, Ordering::SeqCst);
    engine.advance(Duration::from_secs(1));
    let r = buf.sync_flush(Duration::from_secs(10)).unwrap();
    assert_eq!(r.undelivered(), 0);
    assert_eq!(
        sink.delivered(),
        (0..100).collect::<Vec<_>>(),
        "order holds across memory and disk"
    );
    let c = buf.stats().counts;
    assert_eq!(
        (c.inserted, c.delivered, c.dropped, c.spooled),
        (100, 100, 0, 0)
    );
    assert!(c.is_conserved());
    assert!(sink
        .got
        .lock()
        .unwrap()
        .iter()
        .any(|(r, _)| *r == FlushReason::Replay));
    buf.close(Duration::from_secs(5));
    drop(buf);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_batch_that_keeps_failing_goes_to_the_spool_instead_of_being_dropped() {
    let dir = temp_dir("failed-batch");
    let engine = Engine::manual();
    let sink = Switch::default();
    let cfg = spill_config(&dir).capacity(100).max_retries(0);
    let buf = Buffer::builder(cfg)
        .sink(sink.clone())
        .spill(SpillCodec::of())
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..4u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending(); // the one attempt fails: to the spool, then read back
    let c = buf.stats().counts;
    assert_eq!(c.dropped, 0, "{c:?}");
    assert_eq!(c.spooled + c.in_flight, 4, "{c:?}");
    assert_eq!(
        sink.calls.load(Ordering::SeqCst),
        2,
        "from memory, then from the spool"
    );
    // Newer items stay in memory, behind the spooled ones.
    for i in 4..8u64 {
        buf.insert(i).unwrap();
    }
    sink.up.store(true, Ordering::SeqCst);
    engine.advance(Duration::from_secs(1));
    buf.sync_flush(Duration::from_secs(10)).unwrap();
    assert_eq!(sink.delivered(), (0..8).collect::<Vec<_>>());
    assert!(buf.stats().counts.is_conserved());
    buf.close(Duration::from_secs(5));
    drop(buf);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn spooled_items_survive_a_restart_and_come_before_new_ones() {
    let dir = temp_dir("restart");
    let cfg = spill_config(&dir).partitions(2).max_retries(0);
    {
        let engine = Engine::manual();
        let down = Switch::default();
        let buf = Buffer::builder(cfg.clone())
            .sink(down)
            .spill(SpillCodec::of())
            .engine(&engine)
            .build()
            .unwrap();
        for i in 0..20u64 {
            buf.insert_keyed(&(i % 2), i).unwrap();
            // Each full batch fails at once: the sink is failing, so a full
            // partition spills rather than waits.
            engine.run_pending();
        }
        let report = buf.close(Duration::from_millis(200));
        assert_eq!(report.spooled, 20, "{report:?}");
        assert_eq!(report.counts.dropped, 0);
        assert!(report.counts.is_conserved(), "{report:?}");
    }
    let engine = Engine::manual();
    let up = Switch::default();
    up.up.store(true, Ordering::SeqCst);
    let buf = Buffer::builder(cfg)
        .sink(up.clone())
        .spill(SpillCodec::of())
        .engine(&engine)
        .build()
        .unwrap();
    assert_eq!(
        buf.stats().counts.spooled + buf.stats().counts.in_flight,
        20
    );
    for i in 20..30u64 {
        buf.insert_keyed(&(i % 2), i).unwrap();
    }
    let report = buf.close(Duration::from_secs(10));
    assert_eq!((report.undelivered, report.spooled), (0, 0));
    let got = up.got.lock().unwrap().clone();
    for key in 0..2u64 {
        let p = buf.partition_of(&key);
        let seq: Vec<u64> = got
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .filter(|i| i % 2 == key)
            .collect();
        let want: Vec<u64> = (0..30).filter(|i| i % 2 == key).collect();
        assert_eq!(
            seq, want,
            "key {key} (partition {p}): old items first, in order"
        );
    }
    let c = report.counts;
    assert_eq!(
        (c.inserted, c.delivered),
        (30, 30),
        "recovered items count as inserted"
    );
    assert!(c.is_conserved());
    drop(buf);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn producer_handles_spill_too() {
    let dir = temp_dir("producer");
    let engine = Engine::manual();
    let sink = Switch::default();
    let buf = Buffer::builder(spill_config(&dir))
        .sink(sink.clone())
        .spill(SpillCodec::of())
        .engine(&engine)
        .build()
        .unwrap();
    let mut p = buf.producer();
    for i in 0..500u64 {
        if i == 4 {
            // The first batch fails: from now on a full ring spills.
            engine.run_pending();
        }
        p.insert(i).expect("spill takes what the ring cannot");
    }
    engine.advance(Duration::from_secs(1));
    assert!(buf.stats().counts.spooled > 0);
    sink.up.store(true, Ordering::SeqCst);
    drop(p);
    engine.advance(Duration::from_secs(1));
    let report = buf.close(Duration::from_secs(10));
    assert_eq!(report.undelivered, 0, "{report:?}");
    assert_eq!(sink.delivered(), (0..500).collect::<Vec<_>>());
    assert!(report.counts.is_conserved(), "{report:?}");
    drop(buf);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn spill_needs_a_codec_and_the_right_partition_count() {
    let dir = temp_dir("errors");
    let cfg = spill_config(&dir);
    #[derive(Clone)]
    struct NoCodec;
    impl spillway::Weigh for NoCodec {}
    let err = Buffer::new(cfg.clone(), |_: &[NoCodec], _: &FlushContext<'_>| {
        Ok::<(), SinkError>(())
    })
    .unwrap_err();
    assert!(
        err.to_string().contains(".spill(SpillCodec::of())"),
        "{err}"
    );

    std::fs::create_dir_all(dir.join("p3")).unwrap();
    let err = Buffer::builder(cfg)
        .sink(Switch::default())
        .spill(SpillCodec::of())
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("partition 3") && err.to_string().contains("`partitions` is 1"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_second_buffer_cannot_share_a_spool_directory() {
    let dir = temp_dir("locked");
    let first = Buffer::builder(spill_config(&dir))
        .sink(Switch::default())
        .spill(SpillCodec::of())
        .build()
        .unwrap();
    let err = Buffer::builder(spill_config(&dir))
        .sink(Switch::default())
        .spill(SpillCodec::of())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("cannot open the spool"), "{err}");
    drop(first);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inserts_after_close_are_refused_with_the_item() {
    let dir = temp_dir("closed");
    let buf = Buffer::builder(spill_config(&dir))
        .sink(Switch::default())
        .spill(SpillCodec::of())
        .build()
        .unwrap();
    buf.close(Duration::from_millis(100));
    assert_eq!(buf.insert(1), Err(InsertError::Closed(1)));
    drop(buf);
    std::fs::remove_dir_all(&dir).ok();
}

/// A spool that fills up part-way through a chunk took the records before
/// that point: they must leave memory (not be delivered twice), and every
/// item must be accounted for exactly once. Tried over many spool sizes so
/// that some cut a chunk in the middle.
#[test]
fn a_spool_that_fills_up_mid_chunk_keeps_each_item_exactly_once() {
    let mut partial_seen = false;
    for max_bytes in (64..=768u64).step_by(24) {
        let dir = temp_dir(&format!("partial-{max_bytes}"));
        let engine = Engine::manual();
        let sink = Switch::default();
        let cfg = spill_config(&dir)
            .spool_max_bytes(max_bytes)
            .block_timeout(Duration::ZERO);
        let buf = Buffer::builder(cfg)
            .sink(sink.clone())
            .spill(SpillCodec::of())
            .engine(&engine)
            .build()
            .unwrap();
        let mut accepted = Vec::new();
        for i in 0..12u64 {
            if i == 4 {
                // The first batch fails: the partition spills from now on.
                engine.run_pending();
            }
            if buf.insert(i).is_ok() {
                accepted.push(i);
            }
        }
        let c = buf.stats().counts;
        assert!(c.is_conserved(), "spool_max_bytes {max_bytes}: {c:?}");
        assert_eq!(c.inserted, accepted.len() as u64, "{max_bytes}: {c:?}");
        partial_seen |= c.spooled > 0 && c.buffered > 0;
        sink.up.store(true, Ordering::SeqCst);
        engine.advance(Duration::from_secs(1)); // the retry's backoff runs out
        let report = buf.close(Duration::from_secs(5));
        let got = sink.delivered();
        let mut unique = got.clone();
        unique.dedup();
        assert_eq!(got, unique, "{max_bytes}: an item was delivered twice");
        assert!(report.counts.is_conserved(), "{max_bytes}: {report:?}");
        assert_eq!(
            report.counts.delivered + report.counts.dropped + report.counts.spooled,
            accepted.len() as u64,
            "{max_bytes}: {report:?}"
        );
        drop(buf);
        std::fs::remove_dir_all(&dir).ok();
    }
    assert!(partial_seen, "no spool size split memory and disk");
}
