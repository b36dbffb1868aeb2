//! Issue 11 §3: every spool error reaches the caller (an observer event,
//! `Counts.spool_errors`, and `CloseReport.not_durable` for what only memory
//! holds), and every spill is an observer event. The spools live on a
//! `MemStorage`, which injects the faults and can simulate a crash; the
//! engine is manual, so each flush happens when the test says so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spillway::config::{Overflow, SyncMode};
use spillway::observer::{Observer, SpillEvent, SpillReason, SpoolErrorEvent};
use spillway::spool::{Crash, MemStorage, Spool, SpoolConfig};
use spillway::{
    Buffer, BufferConfig, Engine, FlushContext, FlushReason, Sink, SinkError, SpillCodec,
};

/// A sink that fails while `up` is false and records what it accepts.
#[derive(Clone, Default)]
struct Switch {
    up: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<u64>>>,
    /// Set: the first batch replayed from the spool that this sink accepts
    /// makes every later fsync of that storage fail, so the first spool call
    /// that syncs after it is the removal of that very batch.
    fail_syncs_on_replay: Arc<Mutex<Option<MemStorage>>>,
}

impl Sink<u64> for Switch {
    fn flush(&self, batch: &[u64], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(SinkError::msg("sink is down"));
        }
        if ctx.reason == FlushReason::Replay {
            if let Some(disk) = self.fail_syncs_on_replay.lock().unwrap().take() {
                disk.fail_next_syncs(u32::MAX);
            }
        }
        self.got.lock().unwrap().extend_from_slice(batch);
        Ok(())
    }
}

/// Records spill and spool-error events.
#[derive(Default)]
struct Seen {
    spills: Mutex<Vec<(u32, usize, u64, SpillReason)>>,
    errors: Mutex<Vec<(u32, &'static str, String)>>,
}

impl Observer for Seen {
    fn on_spill(&self, e: &SpillEvent<'_>) {
        assert_eq!(e.buffer, "spooled");
        self.spills
            .lock()
            .unwrap()
            .push((e.partition, e.items, e.bytes, e.reason));
    }
    fn on_spool_error(&self, e: &SpoolErrorEvent<'_>) {
        assert_eq!(e.buffer, "spooled");
        self.errors
            .lock()
            .unwrap()
            .push((e.partition, e.operation, e.error.to_string()));
    }
}

impl Seen {
    /// The one spool error seen so far is `operation` on partition 0, made
    /// by a failed fsync of `MemStorage`.
    fn assert_one_failed_fsync(&self, operation: &str) {
        let errors = self.errors.lock().unwrap().clone();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let (p, op, message) = &errors[0];
        assert_eq!((*p, *op), (0, operation));
        assert!(
            message.starts_with("spool I/O error: ") && message.contains("fsync mem/"),
            "{message}"
        );
    }
    fn spilled(&self, reason: SpillReason) -> usize {
        let spills = self.spills.lock().unwrap();
        spills.iter().filter(|s| s.3 == reason).map(|s| s.1).sum()
    }
    fn operations(&self) -> Vec<&'static str> {
        self.errors.lock().unwrap().iter().map(|e| e.1).collect()
    }
}

fn config() -> BufferConfig {
    BufferConfig::new()
        .name("spooled")
        .overflow(Overflow::Spill)
        .spool_dir("not-touched-the-spool-is-in-memory")
        .max_size(4)
        .capacity(8)
        .max_retries(0)
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(10))
        .flush_interval(Duration::from_secs(60))
}

/// What a test here works with: the spools' storage, the sink, what the
/// observer saw, the manual engine, and the buffer of `cfg` built on them.
type Rig = (MemStorage, Switch, Arc<Seen>, Engine, Buffer<u64>);

fn rig(cfg: BufferConfig) -> Rig {
    let (mem, sink, seen, engine) = (
        MemStorage::new(),
        Switch::default(),
        Arc::new(Seen::default()),
        Engine::manual(),
    );
    let disk = mem.clone();
    let buf = Buffer::builder(cfg)
        .sink(sink.clone())
        .spill(SpillCodec::of())
        .spool_storage(move |_| disk.clone())
        .observer(Arc::clone(&seen) as Arc<dyn Observer>)
        .engine(&engine)
        .build()
        .unwrap();
    (mem, sink, seen, engine, buf)
}

/// The records a spool on `mem` holds, decoded.
fn records(mem: MemStorage) -> Vec<u64> {
    let mut spool = Spool::open_with(mem, SpoolConfig::default()).unwrap();
    let mut out = Vec::new();
    while let Some(r) = spool.pop().unwrap() {
        out.push(u64::from_le_bytes(r.as_slice().try_into().unwrap()));
    }
    out
}

#[test]
fn every_spill_is_an_event_with_its_reason_and_size() {
    let (mem, _, seen, engine, buf) = rig(config());
    for i in 0..4u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending(); // the batch fails once (no retry): to the spool
    assert_eq!(seen.spilled(SpillReason::SinkFailed), 4);
    // The sink is failing, so a full partition spills.
    for i in 4..20u64 {
        buf.insert(i).unwrap();
    }
    assert!(seen.spilled(SpillReason::Overflow) > 0, "{:?}", seen.spills);
    let report = buf.close(Duration::from_millis(100));
    let total: usize = seen.spills.lock().unwrap().iter().map(|s| s.1).sum();
    let bytes: u64 = seen.spills.lock().unwrap().iter().map(|s| s.2).sum();
    assert_eq!(total as u64, report.spooled, "{report:?}");
    assert_eq!(report.spooled, 20, "{report:?}");
    assert!(bytes >= 20 * 8, "each record holds a u64: {bytes}");
    assert_eq!((report.not_durable, report.counts.spool_errors), (0, 0));
    assert!(seen.errors.lock().unwrap().is_empty());
    assert!(report.counts.is_conserved(), "{report:?}");
    drop(buf);
    assert_eq!(records(mem), (0..20).collect::<Vec<_>>());
}

#[test]
fn a_failed_push_is_a_spool_error_event_and_counter() {
    let (mem, _, seen, engine, buf) = rig(config());
    for i in 0..4u64 {
        buf.insert(i).unwrap();
    }
    mem.fail_next_writes(100);
    engine.run_pending(); // the batch fails, and so does the spool
    mem.fail_next_writes(0);
    let c = buf.stats().counts;
    assert!(c.spool_errors >= 1, "{c:?}");
    assert_eq!(c.spool_errors as usize, seen.errors.lock().unwrap().len());
    assert!(seen.operations().iter().all(|op| *op == "push"));
    let (p, _, message) = seen.errors.lock().unwrap()[0].clone();
    assert_eq!(p, 0);
    assert!(message.contains("write"), "{message}");
    // Whatever the spool took is in it (or read back from it for the next
    // attempt); whatever it refused is dropped and counted.
    assert_eq!(c.dropped + c.spooled + c.in_flight, 4, "{c:?}");
    assert!(c.is_conserved(), "{c:?}");
    assert!(mem.violations().is_empty(), "{:?}", mem.violations());
    buf.close(Duration::from_millis(100));
}

#[test]
fn a_failed_final_flush_counts_the_unsynced_records_as_not_durable() {
    let (mem, _, seen, engine, buf) = rig(config().spool_sync(SyncMode::Never));
    for i in 0..4u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending(); // to the spool, not synced (and read back for a retry)
    let c = buf.stats().counts;
    assert_eq!(c.spooled + c.in_flight, 4, "{c:?}");
    mem.fail_next_syncs(1000);
    let report = buf.close(Duration::from_millis(100));
    assert_eq!(report.not_durable, 4, "{report:?}");
    assert_eq!(
        report.spooled, 0,
        "nothing is known to be on disk: {report:?}"
    );
    assert!(report.counts.spool_errors >= 1, "{report:?}");
    let ops = seen.operations();
    assert!(ops.contains(&"flush"), "{ops:?}");
    assert!(report.counts.is_conserved(), "{report:?}");
    drop(buf);
    // What the report warned of: a crash now loses them.
    let after = mem.crash(Crash::drop_unsynced());
    assert!(records(after).len() < 4);
}

#[test]
fn a_clean_close_leaves_nothing_only_in_memory() {
    let (mem, _, _, engine, buf) = rig(config().spool_sync(SyncMode::Never));
    for i in 0..6u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending();
    let report = buf.close(Duration::from_millis(100));
    assert_eq!((report.spooled, report.not_durable), (6, 0), "{report:?}");
    drop(buf);
    let after = mem.crash(Crash::drop_unsynced());
    assert_eq!(records(after), (0..6).collect::<Vec<_>>());
}

#[test]
fn without_a_spool_what_close_leaves_in_memory_is_not_durable() {
    let engine = Engine::manual();
    let sink = Switch::default();
    let cfg = BufferConfig::new()
        .max_size(4)
        .max_retries(5)
        .retry_backoff(Duration::from_secs(10))
        .retry_backoff_max(Duration::from_secs(10))
        .flush_interval(Duration::from_secs(60));
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .engine(&engine)
        .build()
        .unwrap();
    for i in 0..6u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending(); // the first batch fails and waits for its retry
    let report = buf.close(Duration::from_millis(20));
    assert!(report.timed_out);
    assert_eq!(report.not_durable, 6, "{report:?}");
    assert_eq!(report.counts.buffered + report.counts.in_flight, 6);
}

/// `spool_sync: interval` with an interval that has always passed: every
/// spool call that may sync (a push, a removal, the interval timer's
/// `sync_if_due`) syncs whatever is not yet durable. A push syncs the
/// records before it, so after a group push exactly its last record waits
/// for a sync, and the next spool call that syncs is the one a test arms
/// the fault for. (The spool's interval runs on the real clock, not the
/// engine's; a nanosecond has always passed between two spool calls.)
fn interval_config() -> BufferConfig {
    config()
        .spool_sync(SyncMode::Interval)
        .spool_sync_interval(Duration::from_nanos(1))
}

/// A rig whose delivered spool records 0..4 could not be removed (the disk
/// fails every sync since), with 4..12 in the spool behind them and 12..16
/// in memory, none of them delivered yet.
fn rig_with_a_failed_removal() -> Rig {
    let (mem, sink, seen, engine, buf) = rig(interval_config());
    // The sink is down: the first batch goes to the spool (and waits there
    // for its retry), the rest overflows into the spool behind it.
    for i in 0..12u64 {
        buf.insert(i).unwrap();
        engine.run_pending();
    }
    let c = buf.stats().counts;
    assert_eq!((c.spooled + c.in_flight, c.buffered), (12, 0), "{c:?}");
    // The sink comes back; the retry delivers 0..4 from the spool, and the
    // disk fails from inside that call on: removing the delivered records
    // needs the sync of the last record pushed, which fails.
    *sink.fail_syncs_on_replay.lock().unwrap() = Some(mem.clone());
    sink.up.store(true, Ordering::SeqCst);
    engine.advance(Duration::from_millis(20));
    assert_eq!(*sink.got.lock().unwrap(), vec![0, 1, 2, 3]);
    seen.assert_one_failed_fsync("remove");
    let c = buf.stats().counts;
    assert_eq!(c.spool_errors, 1, "{c:?}");
    // Delivered, though its records are still on disk (never sent twice
    // in this run, only after a crash: at least once).
    assert_eq!((c.delivered, c.spooled, c.in_flight), (4, 8, 0), "{c:?}");
    assert!(c.is_conserved(), "{c:?}");
    // The failing disk refuses the next item too, so memory takes over the
    // partition's newest items. They must still wait for 4..12, which are
    // older and still in the spool behind the records not yet removed.
    for i in 12..16u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending();
    assert_eq!(*sink.got.lock().unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(seen.operations(), vec!["remove", "push"]);
    (mem, sink, seen, engine, buf)
}

#[test]
fn a_failed_removal_of_delivered_records_is_reported_retried_and_keeps_the_order() {
    let (mem, sink, seen, engine, buf) = rig_with_a_failed_removal();
    // The disk recovers; the interval timer retries the removal, and the
    // spool is read again, in order, before memory.
    mem.fail_next_syncs(0);
    engine.advance(Duration::from_secs(60));
    assert_eq!(*sink.got.lock().unwrap(), (0..16).collect::<Vec<_>>());
    assert_eq!(seen.operations(), vec!["remove", "push"]);
    let report = buf.close(Duration::from_millis(100));
    assert_eq!(report.counts.delivered, 16, "{report:?}");
    assert_eq!(report.counts.dropped, 0, "{report:?}");
    assert_eq!((report.spooled, report.not_durable), (0, 0), "{report:?}");
    assert_eq!(report.counts.spool_errors, 2, "{report:?}");
    assert!(report.counts.is_conserved(), "{report:?}");
    assert!(mem.violations().is_empty(), "{:?}", mem.violations());
    drop(buf);
    assert_eq!(
        records(mem),
        Vec::<u64>::new(),
        "every delivered record was removed"
    );
}

/// Close does not wait out its timeout behind a failed removal: no
/// interval timer runs once the buffer is closing, so close itself retries
/// the removal, and the spool records behind it are delivered, in order.
#[test]
fn close_retries_a_failed_removal_and_delivers_what_waits_behind_it() {
    let (mem, sink, seen, _engine, buf) = rig_with_a_failed_removal();
    mem.fail_next_syncs(0);
    let report = buf.close(Duration::from_secs(30));
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(*sink.got.lock().unwrap(), (0..16).collect::<Vec<_>>());
    assert_eq!(report.counts.delivered, 16, "{report:?}");
    assert_eq!((report.spooled, report.not_durable), (0, 0), "{report:?}");
    assert!(report.counts.is_conserved(), "{report:?}");
    assert_eq!(seen.operations(), vec!["remove", "push"]);
    drop(buf);
    assert_eq!(
        records(mem),
        Vec::<u64>::new(),
        "every delivered record was removed"
    );
}

/// The records of `mem` that a crash now would keep.
fn durable(mem: &MemStorage) -> Vec<u64> {
    records(mem.snapshot().crash(Crash::drop_unsynced()))
}

/// A rig whose sink is down, with 0..4 in the spool (read back for a retry
/// an hour away, so that only the interval timer, each second, calls the
/// spool), after the interval timer's sync of the last of them failed.
fn rig_after_a_failed_interval_sync() -> Rig {
    let cfg = interval_config()
        .flush_interval(Duration::from_secs(1))
        .retry_backoff(Duration::from_secs(3600))
        .retry_backoff_max(Duration::from_secs(3600));
    let (mem, sink, seen, engine, buf) = rig(cfg);
    for i in 0..4u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending(); // fails: to the spool, read back
    assert_eq!(
        durable(&mem),
        vec![0, 1, 2],
        "the last record waits for a sync"
    );
    mem.fail_next_syncs(u32::MAX);
    engine.advance(Duration::from_secs(1)); // the interval timer's sync fails
    (mem, sink, seen, engine, buf)
}

#[test]
fn a_failed_interval_sync_is_reported_and_retried_by_the_next_interval() {
    let (mem, sink, seen, engine, buf) = rig_after_a_failed_interval_sync();
    seen.assert_one_failed_fsync("sync");
    assert_eq!(buf.stats().counts.spool_errors, 1);
    assert_eq!(durable(&mem), vec![0, 1, 2]);
    // The disk recovers, and the next interval syncs. (Failing until close
    // instead: see the next test.)
    mem.fail_next_syncs(0);
    engine.advance(Duration::from_secs(1));
    assert_eq!(seen.operations(), vec!["sync"]);
    assert_eq!(durable(&mem), vec![0, 1, 2, 3]);
    // The sink recovers; its retry delivers the batch once, from the spool.
    sink.up.store(true, Ordering::SeqCst);
    engine.advance(Duration::from_secs(3600));
    for i in 4..8u64 {
        buf.insert(i).unwrap();
    }
    engine.run_pending();
    assert_eq!(*sink.got.lock().unwrap(), (0..8).collect::<Vec<_>>());
    let report = buf.close(Duration::from_millis(100));
    assert_eq!(report.counts.delivered, 8, "{report:?}");
    assert_eq!((report.spooled, report.not_durable), (0, 0), "{report:?}");
    assert_eq!(report.counts.spool_errors, 1, "{report:?}");
    assert!(report.counts.is_conserved(), "{report:?}");
    assert!(mem.violations().is_empty(), "{:?}", mem.violations());
}

#[test]
fn an_interval_sync_failing_until_close_counts_its_records_not_durable() {
    let (mem, _, seen, _, buf) = rig_after_a_failed_interval_sync();
    assert_eq!(seen.operations(), vec!["sync"]);
    let report = buf.close(Duration::from_millis(100));
    // Not one of the four is known durable since the failed sync (three
    // are, in fact: the spool counts conservatively).
    assert_eq!((report.spooled, report.not_durable), (0, 4), "{report:?}");
    assert_eq!(report.counts.spooled, 4, "{report:?}");
    assert_eq!(seen.operations(), vec!["sync", "flush"]);
    assert_eq!(report.counts.spool_errors, 2, "{report:?}");
    assert!(report.counts.is_conserved(), "{report:?}");
    drop(buf);
    let after = mem.crash(Crash::drop_unsynced());
    assert_eq!(
        records(after),
        vec![0, 1, 2],
        "what close warned of is lost"
    );
}
