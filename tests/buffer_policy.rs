//! Issue 11 §6 and §5: `overflow: spill` spills only while the sink fails
//! (a healthy but slow sink is backpressure), a full spool falls back to
//! waiting as `block` does, and `capacity_bytes` bounds a partition in
//! bytes as `capacity` does in items.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spillway::config::{ConfigError, Overflow};
use spillway::spool::MemStorage;
use spillway::{
    Buffer, BufferConfig, Engine, FlushContext, InsertError, Sink, SinkError, SpillCodec,
};

/// A healthy sink that holds each call until the test releases it, and
/// says when a call has started.
#[derive(Clone)]
struct Gate {
    started: Arc<Mutex<mpsc::Sender<usize>>>,
    release: Arc<Mutex<mpsc::Receiver<()>>>,
    got: Arc<Mutex<Vec<u64>>>,
}

fn gate() -> (Gate, mpsc::Receiver<usize>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let g = Gate {
        started: Arc::new(Mutex::new(started_tx)),
        release: Arc::new(Mutex::new(release_rx)),
        got: Arc::default(),
    };
    (g, started_rx, release_tx)
}

impl Sink<u64> for Gate {
    fn flush(&self, batch: &[u64], _: &FlushContext<'_>) -> Result<(), SinkError> {
        let _ = self.started.lock().unwrap().send(batch.len());
        self.release
            .lock()
            .unwrap()
            .recv()
            .map_err(|_| SinkError::msg("test ended"))?;
        self.got.lock().unwrap().extend_from_slice(batch);
        Ok(())
    }
}

/// A sink that fails while `down` is set.
#[derive(Clone, Default)]
struct Flaky {
    down: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<u64>>>,
}

impl Sink<u64> for Flaky {
    fn flush(&self, batch: &[u64], _: &FlushContext<'_>) -> Result<(), SinkError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::msg("down"));
        }
        self.got.lock().unwrap().extend_from_slice(batch);
        Ok(())
    }
}

fn spill_config() -> BufferConfig {
    BufferConfig::new()
        .overflow(Overflow::Spill)
        .spool_dir("not-touched-the-spool-is-in-memory")
        .max_size(4)
        .capacity(4)
        .max_retries(0)
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(10))
        .flush_interval(Duration::from_secs(60))
}

/// A buffer of `cfg` on `engine` whose spool is `mem`.
fn spilling<S: Sink<u64>>(
    cfg: BufferConfig,
    sink: S,
    mem: &MemStorage,
    engine: &Engine,
) -> Buffer<u64> {
    let disk = mem.clone();
    Buffer::builder(cfg)
        .sink(sink)
        .spill(SpillCodec::of())
        .spool_storage(move |_| disk.clone())
        .engine(engine)
        .build()
        .unwrap()
}

#[test]
fn a_slow_healthy_sink_is_backpressure_not_a_reason_to_spill() {
    let (sink, started, release) = gate();
    let engine = Engine::new(1).unwrap();
    let mem = MemStorage::new();
    let cfg = spill_config().block_timeout(Duration::from_millis(30));
    let buf = spilling(cfg, sink.clone(), &mem, &engine);
    for i in 0..4u64 {
        buf.insert(i).unwrap();
    }
    assert_eq!(started.recv().unwrap(), 4, "the sink holds the first batch");
    // The partition holds `capacity` items, all with a sink that has not
    // failed: the insert waits as under `block`, and gives up on time.
    match buf.insert(4) {
        Err(InsertError::Timeout(4)) => {}
        other => panic!("expected a timeout with the item back, got {other:?}"),
    }
    let c = buf.stats().counts;
    assert_eq!((c.spooled, c.in_flight), (0, 4), "{c:?}");
    assert!(mem
        .segment_ids()
        .iter()
        .all(|&id| mem.segment(id).is_none_or(|bytes| bytes.is_empty())));
    // A waiting insert proceeds once the sink takes the batch.
    let waiter = {
        let buf = buf.clone();
        std::thread::spawn(move || {
            let cfg_wait = Duration::from_secs(10);
            let deadline = std::time::Instant::now() + cfg_wait;
            loop {
                match buf.insert(4) {
                    Ok(()) => return Ok(()),
                    Err(InsertError::Timeout(_)) if std::time::Instant::now() < deadline => {}
                    Err(e) => return Err(format!("{e:?}")),
                }
            }
        })
    };
    release.send(()).unwrap();
    waiter.join().unwrap().unwrap();
    drop(release); // later calls fail: nothing more to check from them
    let c = buf.stats().counts;
    assert_eq!(c.spooled, 0, "nothing went to disk: {c:?}");
    assert_eq!(sink.got.lock().unwrap().as_slice(), &[0, 1, 2, 3]);
    buf.close(Duration::from_millis(200));
}

#[test]
fn a_failing_sink_makes_a_full_partition_spill_at_once() {
    let engine = Engine::manual();
    let sink = Flaky::default();
    sink.down.store(true, Ordering::SeqCst);
    let cfg = spill_config().block_timeout(Duration::from_secs(60));
    let buf = spilling(cfg, sink.clone(), &MemStorage::new(), &engine);
    for i in 0..4u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending(); // fails: to the spool, read back, fails again
    for i in 4..40u64 {
        // A 60 s block_timeout: an insert that waited would hang the test.
        buf.insert(i).unwrap();
    }
    let c = buf.stats().counts;
    assert!(c.spooled >= 30, "{c:?}");
    assert!(c.buffered + c.in_flight <= 4, "{c:?}");
    sink.down.store(false, Ordering::SeqCst);
    engine.advance(Duration::from_secs(1));
    buf.sync_flush(Duration::from_secs(10)).unwrap();
    assert_eq!(*sink.got.lock().unwrap(), (0..40).collect::<Vec<_>>());
    buf.close(Duration::from_secs(5));
}

#[test]
fn a_full_spool_falls_back_from_spill_to_block() {
    let engine = Engine::manual();
    let sink = Flaky::default();
    sink.down.store(true, Ordering::SeqCst);
    let cfg = spill_config()
        .capacity(8)
        .spool_max_bytes(200)
        .block_timeout(Duration::from_millis(20));
    let buf = spilling(cfg, sink.clone(), &MemStorage::new(), &engine);
    for i in 0..4u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending(); // the sink is failing from now on
    let mut accepted = 4u64;
    let refused = loop {
        match buf.insert(accepted) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "a 200-byte spool never filled up");
    };
    // Not `Full`: with nowhere to spill, the insert waited as `block` does.
    assert!(
        matches!(refused, InsertError::Timeout(v) if v == accepted),
        "{refused:?}"
    );
    let c = buf.stats().counts;
    assert!(c.spooled > 0, "{c:?}");
    assert_eq!(c.inserted, accepted, "{c:?}");
    assert_eq!(c.dropped, 0, "{c:?}");
    assert_eq!(c.spool_errors, 0, "a full spool is a bound, not an error");
    assert!(c.is_conserved(), "{c:?}");
    // Once the sink recovers, the same insert goes in.
    sink.down.store(false, Ordering::SeqCst);
    engine.advance(Duration::from_secs(1));
    buf.insert(accepted).unwrap();
    buf.sync_flush(Duration::from_secs(10)).unwrap();
    assert_eq!(
        *sink.got.lock().unwrap(),
        (0..=accepted).collect::<Vec<_>>()
    );
    buf.close(Duration::from_secs(5));
}

fn bytes_config() -> BufferConfig {
    BufferConfig::new()
        .max_size(1000)
        .capacity(1000)
        .max_bytes(64)
        .capacity_bytes(80)
        .flush_interval(Duration::from_secs(60))
}

#[test]
fn capacity_bytes_meets_the_overflow_policy_like_capacity() {
    // u64 items weigh 8 bytes: 10 of them fill 80 bytes.
    let engine = Engine::manual();
    let sink = Flaky::default();
    let buf = Buffer::builder(bytes_config().overflow(Overflow::Reject))
        .sink(sink.clone())
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..10u64 {
        buf.insert(i).unwrap();
    }
    assert!(matches!(buf.insert(10), Err(InsertError::Full(10))));
    let c = buf.stats().counts;
    assert_eq!((c.inserted, c.buffered + c.in_flight), (10, 10), "{c:?}");
    engine.run_pending(); // the 64-byte chunk (8 items) goes
    buf.insert(10).unwrap();
    buf.close(Duration::from_secs(5));
    assert_eq!(*sink.got.lock().unwrap(), (0..11).collect::<Vec<_>>());

    // drop_oldest evicts as many as the new item needs.
    let buf = Buffer::builder(bytes_config().overflow(Overflow::DropOldest))
        .sink(|_: &[Vec<u8>], _: &FlushContext<'_>| Ok::<(), SinkError>(()))
        .engine(&Engine::manual())
        .build()
        .unwrap();
    for _ in 0..8 {
        buf.insert(vec![0u8; 10]).unwrap();
    }
    buf.insert(vec![1u8; 30]).unwrap(); // 80 + 30: three 10-byte items go
    let c = buf.stats().counts;
    assert_eq!((c.dropped, c.buffered), (3, 6), "{c:?}");
    let left: Vec<usize> = buf.dump().iter().map(Vec::len).collect();
    assert_eq!(left, [10, 10, 10, 10, 10, 30]);

    // An item heavier than the whole bound still enters an empty partition.
    let buf = Buffer::builder(bytes_config().overflow(Overflow::Reject))
        .sink(|_: &[Vec<u8>], _: &FlushContext<'_>| Ok::<(), SinkError>(()))
        .engine(&Engine::manual())
        .build()
        .unwrap();
    buf.insert(vec![0u8; 500]).unwrap();
    assert!(matches!(buf.insert(vec![1u8]), Err(InsertError::Full(_))));
}

#[test]
fn capacity_bytes_is_a_key_and_is_validated() {
    let mut cfg = BufferConfig::new();
    cfg.set("capacity_bytes", "64KiB").unwrap();
    assert_eq!(cfg.capacity_bytes, 64 << 10);
    assert_eq!(cfg.get("capacity_bytes").unwrap().as_deref(), Some("64KiB"));
    let yaml = BufferConfig::from_yaml_str("capacity_bytes: 2MiB\nmax_bytes: 1MiB\n").unwrap();
    assert_eq!(yaml.capacity_bytes, 2 << 20);
    yaml.validate().unwrap();
    // Below max_bytes, a partition could not hold a whole batch.
    match cfg.validate().unwrap_err() {
        ConfigError::Invalid { keys, reason } => {
            assert_eq!(keys, ["capacity_bytes", "max_bytes"]);
            assert!(
                reason.contains("64KiB") && reason.contains("1MiB"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    cfg.validate().unwrap_err();
    cfg.max_bytes = 0;
    cfg.validate().unwrap();
    assert!(matches!(
        BufferConfig::new().set("capacity_bytes", "lots"),
        Err(ConfigError::InvalidValue {
            key: "capacity_bytes",
            ..
        })
    ));
}
