//! `flush_timeout` enforced (issue 11 section 1): a sink call past it is
//! abandoned, its flusher thread replaced (within a bound), the partition
//! flushes on, and the batch goes again once the call returns, or at once
//! from a copy with `retry_abandoned_batches`. Also issue
//! 13: `sync_flush` and `close` from inside the buffer's own sink return at
//! once instead of waiting for themselves.
//!
//! The watchdog runs on the engine's real timer thread, so these tests use a
//! short `flush_timeout`; every wait is on a channel, never a sleep.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use spillway::observer::{
    AbandonedReturnEvent, DropEvent, DropReason, FlushTimeoutEvent, Observer, SpillEvent,
    SpillReason,
};
use spillway::{Buffer, BufferConfig, Engine, FlushContext, Sink, SinkError};

const WAIT: Duration = Duration::from_secs(10);

/// A latch the sink blocks on until the test opens it.
#[derive(Default)]
struct Latch {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// A sink whose first call with item 1 at the front blocks until the test
/// opens `latch`. Every call first sends its batch on `entered`; what it
/// accepts is added to `got`.
struct StuckOnOne {
    latch: Arc<Latch>,
    entered: Mutex<Sender<Vec<u32>>>,
    got: Got,
}

/// What a sink accepted, in order.
type Got = Arc<Mutex<Vec<u32>>>;

impl Sink<u32> for StuckOnOne {
    fn flush(&self, b: &[u32], _: &FlushContext<'_>) -> Result<(), SinkError> {
        let _ = self.entered.lock().unwrap().send(b.to_vec());
        if b.first() == Some(&1) && self.got.lock().unwrap().is_empty() {
            self.latch.wait();
        }
        self.got.lock().unwrap().extend_from_slice(b);
        Ok(())
    }
}

/// A [`StuckOnOne`], with its latch, the receiver of what it was called
/// with, and what it accepted.
fn stuck_on_one() -> (StuckOnOne, Arc<Latch>, Receiver<Vec<u32>>, Got) {
    let latch = Arc::new(Latch::default());
    let (entered_tx, entered) = channel();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = StuckOnOne {
        latch: latch.clone(),
        entered: Mutex::new(entered_tx),
        got: got.clone(),
    };
    (sink, latch, entered, got)
}

/// What the observer saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Timeout {
        attempt: u32,
        items: usize,
        abandoned: bool,
    },
    Late {
        attempt: u32,
        error: Option<String>,
    },
}

struct Events(Mutex<Sender<Seen>>);

impl Observer for Events {
    fn on_flush_timeout(&self, e: &FlushTimeoutEvent<'_>) {
        let _ = self.0.lock().unwrap().send(Seen::Timeout {
            attempt: e.attempt,
            items: e.items,
            abandoned: e.abandoned,
        });
    }
    fn on_abandoned_return(&self, e: &AbandonedReturnEvent<'_>) {
        let _ = self.0.lock().unwrap().send(Seen::Late {
            attempt: e.attempt,
            error: e.error.map(str::to_owned),
        });
    }
}

fn events() -> (Arc<dyn Observer>, Receiver<Seen>) {
    let (tx, rx) = channel();
    (Arc::new(Events(Mutex::new(tx))), rx)
}

/// Waits until a [`StuckOnOne`] is stuck in its call with item 1, alone,
/// and the call was abandoned at its first attempt.
fn item_one_is_stuck_and_abandoned(entered: &Receiver<Vec<u32>>, seen: &Receiver<Seen>) {
    assert_eq!(entered.recv_timeout(WAIT), Ok(vec![1]));
    assert_eq!(
        seen.recv_timeout(WAIT),
        Ok(Seen::Timeout {
            attempt: 0,
            items: 1,
            abandoned: true
        })
    );
}

#[test]
fn a_stuck_sink_does_not_stop_another_buffer_of_the_same_engine() {
    // One worker: without a replacement, the stuck call would hold it.
    let engine = Engine::new(1).unwrap();
    let (sink, latch, entered, got_stuck) = stuck_on_one();
    let (obs, seen) = events();
    let stuck = Buffer::builder(
        BufferConfig::new()
            .name("stuck")
            .max_size(1)
            .max_retries(3)
            .flush_timeout(Duration::from_millis(50)),
    )
    .sink(sink)
    .observer(obs)
    .engine(&engine)
    .build()
    .unwrap();
    let (ok_tx, ok_rx) = channel::<u32>();
    let ok_tx = Mutex::new(ok_tx);
    let healthy = Buffer::builder(BufferConfig::new().name("healthy").max_size(1))
        .sink(move |b: &[u32], _: &FlushContext<'_>| {
            for &v in b {
                let _ = ok_tx.lock().unwrap().send(v);
            }
            Ok::<(), SinkError>(())
        })
        .engine(&engine)
        .build()
        .unwrap();

    stuck.insert(1).unwrap();
    item_one_is_stuck_and_abandoned(&entered, &seen);
    let c = stuck.stats().counts;
    assert_eq!(
        (c.flush_timeouts, c.failed_flushes, c.abandoned, c.in_flight),
        (1, 1, 1, 1)
    );
    assert_eq!(engine.abandoned_threads(), 1);
    assert_eq!(
        engine.live_threads(),
        2,
        "the stuck thread and its replacement"
    );

    // The other buffer delivers on the replacement thread, on time.
    for v in 0..10 {
        healthy.insert(v).unwrap();
    }
    let got: Vec<u32> = (0..10).map(|_| ok_rx.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    // And the stuck buffer's partition flushes on.
    stuck.insert(2).unwrap();
    assert_eq!(entered.recv_timeout(WAIT), Ok(vec![2]));

    // The sink recovers: the late Ok is counted, and the batch goes again
    // (at least once: item 1 arrives twice).
    latch.release();
    assert_eq!(
        seen.recv_timeout(WAIT),
        Ok(Seen::Late {
            attempt: 0,
            error: None
        })
    );
    let report = stuck
        .sync_flush(WAIT)
        .expect("the requeued batch is delivered");
    assert!(report.all_delivered());
    let mut all = got_stuck.lock().unwrap().clone();
    all.sort_unstable();
    assert_eq!(all, [1, 1, 2]);
    let c = stuck.stats().counts;
    assert!(c.is_conserved(), "{c:?}");
    assert_eq!((c.inserted, c.delivered, c.abandoned), (2, 2, 0));
    assert_eq!((c.flush_timeouts, c.failed_flushes, c.retries), (1, 1, 1));

    let reports = engine.stop(WAIT);
    assert!(reports
        .iter()
        .all(|(_, r)| r.undelivered == 0 && !r.timed_out));
}

#[test]
fn abandoned_threads_are_bounded_by_workers() {
    let engine = Engine::new(2).unwrap();
    let latch = Arc::new(Latch::default());
    let (entered_tx, entered) = channel::<u32>();
    let (obs, seen) = events();
    let (l, e) = (latch.clone(), Mutex::new(entered_tx));
    let buf = Buffer::builder(
        BufferConfig::new()
            .name("all-stuck")
            .partitions(4)
            .max_size(1)
            .max_retries(5)
            .flush_timeout(Duration::from_millis(30)),
    )
    .sink(move |b: &[u32], ctx: &FlushContext<'_>| {
        let _ = e.lock().unwrap().send(ctx.partition);
        if ctx.attempt == 0 {
            l.wait();
        }
        let _ = b;
        Ok::<(), SinkError>(())
    })
    .observer(obs)
    .engine(&engine)
    .build()
    .unwrap();
    // One item per partition: a key for each, found through partition_of
    // (plain inserts from one thread all go to its home partition).
    for p in 0..4u32 {
        let key = (0u32..)
            .find(|k| buf.partition_of(k) == p)
            .expect("every partition has a key");
        buf.insert_keyed(&key, p).unwrap();
    }
    // Two calls on the two workers are abandoned and replaced; the two
    // replacements then get stuck too, past the bound: they keep their
    // threads, and their partitions wait.
    let mut partitions: Vec<u32> = (0..4)
        .map(|_| entered.recv_timeout(WAIT).unwrap())
        .collect();
    partitions.sort_unstable();
    assert_eq!(partitions, [0, 1, 2, 3]);
    // Two abandoned, then two past the bound: reported once each as kept.
    let mut timeouts: Vec<bool> = (0..4)
        .map(|_| match seen.recv_timeout(WAIT) {
            Ok(Seen::Timeout {
                attempt: 0,
                abandoned,
                ..
            }) => abandoned,
            other => panic!("expected a flush timeout, got {other:?}"),
        })
        .collect();
    timeouts.sort_unstable();
    assert_eq!(timeouts, [false, false, true, true]);
    assert_eq!(engine.abandoned_threads(), 2);
    assert_eq!(engine.live_threads(), 4, "at most twice `workers`");
    assert_eq!(buf.stats().counts.abandoned, 2);

    latch.release();
    let report = buf.sync_flush(WAIT).expect("everything goes through");
    assert!(report.all_delivered());
    let c = buf.stats().counts;
    assert!(c.is_conserved(), "{c:?}");
    // The two abandoned batches went again (after their late Ok); the two
    // kept calls were counted timed out when they returned.
    assert_eq!((c.inserted, c.delivered, c.abandoned), (4, 4, 0));
    assert_eq!(c.flush_timeouts, 4);
    assert_eq!(c.retries, 2);
    let report = buf.close(WAIT);
    assert_eq!((report.running_calls, report.undelivered), (0, 0));
    engine.stop(WAIT);
}

#[test]
fn close_returns_within_its_timeout_and_reports_a_stuck_call() {
    let latch = Arc::new(Latch::default());
    let (entered_tx, entered) = channel::<()>();
    let (l, e) = (latch.clone(), Mutex::new(entered_tx));
    let buf = Buffer::new(
        BufferConfig::new()
            .max_size(1)
            .flush_timeout(Duration::from_secs(60)),
        move |_: &[u32], _: &FlushContext<'_>| {
            let _ = e.lock().unwrap().send(());
            l.wait();
            Ok::<(), SinkError>(())
        },
    )
    .unwrap();
    buf.insert(7).unwrap();
    entered.recv_timeout(WAIT).unwrap();
    let started = Instant::now();
    let report = buf.close(Duration::from_millis(100));
    assert!(started.elapsed() < Duration::from_secs(5), "close waited");
    assert!(report.timed_out);
    assert_eq!((report.undelivered, report.running_calls), (1, 1));
    assert_eq!(report.counts.in_flight, 1);
    latch.release();
}

#[test]
fn sync_flush_and_close_from_inside_the_own_sink_return_at_once() {
    let engine = Engine::manual();
    let me: Arc<Mutex<Option<Buffer<u32>>>> = Arc::new(Mutex::new(None));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let (m, a) = (me.clone(), answers.clone());
    let buf = Buffer::builder(BufferConfig::new().max_size(1))
        .sink(move |_: &[u32], _: &FlushContext<'_>| {
            let me = m.lock().unwrap().clone().expect("set before the flush");
            let err = me.sync_flush(WAIT).unwrap_err();
            let report = me.close(WAIT);
            a.lock()
                .unwrap()
                .push((err.to_string(), report.timed_out, report.running_calls));
            Ok::<(), SinkError>(())
        })
        .engine(&engine)
        .build()
        .unwrap();
    *me.lock().unwrap() = Some(buf.clone());
    buf.insert(1).unwrap();
    engine.run_pending();
    assert_eq!(
        *answers.lock().unwrap(),
        [(
            "sync_flush called from inside the buffer's own sink, where it would wait for itself"
                .to_string(),
            true,
            1
        )]
    );
    // The close begun inside goes on; from outside it waits and reports.
    assert!(buf.is_closed());
    let report = buf.close(WAIT);
    assert!(!report.timed_out);
    assert_eq!(report.counts.delivered, 1);
    me.lock().unwrap().take();
}

#[test]
fn an_abandoned_call_counts_as_a_failing_sink_so_spill_spills() {
    // `overflow: spill` waits while the sink is healthy and spills while it
    // fails; a call abandoned at flush_timeout is a failure, so a stuck sink
    // must not turn every insert into a wait of block_timeout.
    let (sink, latch, entered, got) = stuck_on_one();
    let (obs, seen) = events();
    let buf = Buffer::builder(
        BufferConfig::new()
            .name("stuck-spill")
            .capacity(1)
            .max_size(1)
            .overflow(spillway::config::Overflow::Spill)
            .spool_dir("not-touched-the-spool-is-in-memory")
            // An insert that waited would fail with a timeout after 60 s.
            .block_timeout(Duration::from_secs(60))
            .flush_timeout(Duration::from_millis(50)),
    )
    .sink(sink)
    .observer(obs)
    .spill(spillway::SpillCodec::of())
    .spool_storage(|_| spillway::spool::MemStorage::new())
    .build()
    .unwrap();

    buf.insert(1).unwrap(); // a whole batch: flushed at once, and stuck
    item_one_is_stuck_and_abandoned(&entered, &seen);
    // The partition is full (item 1 is with the abandoned call) and the sink
    // is failing: the insert spills at once.
    buf.insert(2).unwrap();
    let c = buf.stats().counts;
    assert_eq!(
        (c.spooled, c.flush_timeouts, c.abandoned),
        (1, 1, 1),
        "{c:?}"
    );

    latch.release();
    buf.sync_flush(WAIT).unwrap();
    let report = buf.close(WAIT);
    assert!(!report.timed_out, "{report:?}");
    let mut got = got.lock().unwrap().clone();
    got.sort_unstable();
    got.dedup();
    // At least once: item 1 may arrive twice (its late Ok, then its retry).
    assert_eq!(got, vec![1, 2]);
    assert!(report.counts.is_conserved(), "{:?}", report.counts);
}

// `retry_abandoned_batches`: at abandonment a copy of the batch goes on at
// once, while the stuck call still reads the original.

/// One sink call as the sink saw it on entry: attempt, reason, batch.
type Entry = (u32, &'static str, Vec<u32>);

/// A sink whose first call blocks until the test opens `latch`, and whose
/// call number `fail_call` (0-based), if any, fails. Every call sends what
/// it was handed on `entered` first; what a call accepts is added to `got`
/// when it returns, so the stuck call's items are read after the release.
struct StuckOnFirstCall {
    calls: AtomicUsize,
    fail_call: Option<usize>,
    latch: Arc<Latch>,
    entered: Mutex<Sender<Entry>>,
    got: Got,
}

impl Sink<u32> for StuckOnFirstCall {
    fn flush(&self, b: &[u32], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let entry = (ctx.attempt, ctx.reason.as_str(), b.to_vec());
        let _ = self.entered.lock().unwrap().send(entry);
        if n == 0 {
            self.latch.wait();
        }
        if Some(n) == self.fail_call {
            return Err(SinkError::msg("down"));
        }
        self.got.lock().unwrap().extend_from_slice(b);
        Ok(())
    }
}

fn stuck_on_first_call(
    fail_call: Option<usize>,
) -> (StuckOnFirstCall, Arc<Latch>, Receiver<Entry>, Got) {
    let latch = Arc::new(Latch::default());
    let (entered_tx, entered) = channel();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = StuckOnFirstCall {
        calls: AtomicUsize::new(0),
        fail_call,
        latch: latch.clone(),
        entered: Mutex::new(entered_tx),
        got: got.clone(),
    };
    (sink, latch, entered, got)
}

/// Every event the copy tests look at, in order.
#[derive(Debug, Clone, PartialEq)]
enum Copied {
    Timeout { attempt: u32, items: usize },
    Late { attempt: u32, items: usize },
    Spill { items: usize, reason: SpillReason },
    Drop { count: usize, reason: DropReason },
}

struct CopyEvents(Mutex<Sender<Copied>>);

impl Observer for CopyEvents {
    fn on_flush_timeout(&self, e: &FlushTimeoutEvent<'_>) {
        assert!(e.abandoned);
        let (attempt, items) = (e.attempt, e.items);
        let _ = self
            .0
            .lock()
            .unwrap()
            .send(Copied::Timeout { attempt, items });
    }
    fn on_abandoned_return(&self, e: &AbandonedReturnEvent<'_>) {
        assert_eq!(e.error, None);
        let (attempt, items) = (e.attempt, e.items);
        let _ = self.0.lock().unwrap().send(Copied::Late { attempt, items });
    }
    fn on_spill(&self, e: &SpillEvent<'_>) {
        let (items, reason) = (e.items, e.reason);
        let _ = self.0.lock().unwrap().send(Copied::Spill { items, reason });
    }
    fn on_drop(&self, e: &DropEvent<'_>) {
        let (count, reason) = (e.count, e.reason);
        let _ = self.0.lock().unwrap().send(Copied::Drop { count, reason });
    }
}

fn copy_events() -> (Arc<dyn Observer>, Receiver<Copied>) {
    let (tx, rx) = channel();
    (Arc::new(CopyEvents(Mutex::new(tx))), rx)
}

/// Batches of two items, abandoned after 50 ms.
fn pairs(name: &str) -> BufferConfig {
    BufferConfig::new()
        .name(name)
        .max_size(2)
        .flush_timeout(Duration::from_millis(50))
}

/// Inserts 1 and 2, a whole batch, and waits until the sink's first call
/// has them (and is stuck in them).
fn first_pair_is_stuck(buf: &Buffer<u32>, entered: &Receiver<Entry>) {
    buf.insert(1).unwrap();
    buf.insert(2).unwrap();
    assert_eq!(entered.recv_timeout(WAIT), Ok((0, "size", vec![1, 2])));
}

#[test]
fn an_abandoned_batch_is_retried_from_a_copy_while_the_call_is_still_stuck() {
    let (sink, latch, entered, got) = stuck_on_first_call(None);
    let (obs, seen) = copy_events();
    let buf = Buffer::builder(pairs("copies").max_retries(3))
        .sink(sink)
        .observer(obs)
        .retry_abandoned_batches()
        .build()
        .unwrap();

    first_pair_is_stuck(&buf, &entered);
    assert_eq!(
        seen.recv_timeout(WAIT),
        Ok(Copied::Timeout {
            attempt: 0,
            items: 2
        })
    );
    // Without the copy, nothing would come until the release below.
    assert_eq!(entered.recv_timeout(WAIT), Ok((1, "size", vec![1, 2])));
    buf.insert(3).unwrap();
    buf.insert(4).unwrap();
    assert_eq!(entered.recv_timeout(WAIT), Ok((0, "size", vec![3, 4])));
    let report = buf
        .sync_flush(WAIT)
        .expect("delivered, the first call stuck");
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(*got.lock().unwrap(), [1, 2, 3, 4]);
    let c = buf.stats().counts;
    assert!(c.is_conserved(), "{c:?}");
    assert_eq!(
        (c.inserted, c.delivered, c.in_flight, c.dropped, c.batches),
        (4, 4, 0, 0, 2)
    );
    assert_eq!(
        (c.flush_timeouts, c.failed_flushes, c.retries, c.abandoned),
        (1, 1, 1, 1)
    );

    // Close counts the running call, but not its items: the copy went on.
    let report = buf.close(Duration::from_millis(200));
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(
        (report.running_calls, report.undelivered, report.not_durable),
        (1, 0, 0)
    );
    assert_eq!(report.counts.in_flight, 0);

    // The call returns: counted, and its batch discarded, not delivered a
    // third time (the sink itself took it twice: at least once).
    latch.release();
    assert_eq!(
        seen.recv_timeout(WAIT),
        Ok(Copied::Late {
            attempt: 0,
            items: 2
        })
    );
    assert_eq!(*got.lock().unwrap(), [1, 2, 3, 4, 1, 2]);
    let c = buf.stats().counts;
    assert!(c.is_conserved(), "{c:?}");
    assert_eq!(
        (c.inserted, c.delivered, c.in_flight, c.abandoned, c.retries),
        (4, 4, 0, 0, 1)
    );
    assert_eq!(
        entered.try_recv(),
        Err(std::sync::mpsc::TryRecvError::Empty)
    );
    assert_eq!(seen.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty));
}

#[test]
fn an_abandoned_batch_whose_copy_fails_is_spilled_and_replayed() {
    // Call 0 is stuck, call 1 (the copy, the last attempt) fails: the copy
    // goes to the spool, and call 2 replays it from there.
    let (sink, latch, entered, got) = stuck_on_first_call(Some(1));
    let (obs, seen) = copy_events();
    let cfg = pairs("copy-spilled")
        .max_retries(1)
        .overflow(spillway::config::Overflow::Spill)
        .spool_dir("not-touched-the-spool-is-in-memory");
    let buf = Buffer::builder(cfg)
        .sink(sink)
        .observer(obs)
        .spill(spillway::SpillCodec::of())
        .spool_storage(|_| spillway::spool::MemStorage::new())
        .retry_abandoned_batches()
        .build()
        .unwrap();

    first_pair_is_stuck(&buf, &entered);
    assert_eq!(entered.recv_timeout(WAIT), Ok((1, "size", vec![1, 2])));
    // The watchdog tells of the timeout after it let the partition go, so
    // the failed copy's spill may be told first.
    let mut two: Vec<Copied> = (0..2).map(|_| seen.recv_timeout(WAIT).unwrap()).collect();
    two.sort_by_key(|e| matches!(e, Copied::Spill { .. }));
    let timeout = Copied::Timeout {
        attempt: 0,
        items: 2,
    };
    let spill = Copied::Spill {
        items: 2,
        reason: SpillReason::SinkFailed,
    };
    assert_eq!(two, [timeout, spill]);
    assert_eq!(entered.recv_timeout(WAIT), Ok((0, "replay", vec![1, 2])));
    let report = buf
        .sync_flush(WAIT)
        .expect("replayed, the first call stuck");
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(*got.lock().unwrap(), [1, 2]);
    let c = buf.stats().counts;
    assert!(c.is_conserved(), "{c:?}");
    assert_eq!(
        (c.inserted, c.delivered, c.spooled, c.in_flight, c.dropped),
        (2, 2, 0, 0, 0)
    );
    assert_eq!(
        (c.flush_timeouts, c.failed_flushes, c.retries, c.abandoned),
        (1, 2, 1, 1)
    );

    latch.release();
    let late = Copied::Late {
        attempt: 0,
        items: 2,
    };
    assert_eq!(seen.recv_timeout(WAIT), Ok(late));
    let report = buf.close(WAIT);
    assert!(!report.timed_out, "{report:?}");
    assert_eq!((report.running_calls, report.undelivered), (0, 0));
    assert_eq!(*got.lock().unwrap(), [1, 2, 1, 2]);
    let c = report.counts;
    assert!(c.is_conserved(), "{c:?}");
    assert_eq!((c.inserted, c.delivered, c.spooled), (2, 2, 0));
    assert_eq!(
        entered.try_recv(),
        Err(std::sync::mpsc::TryRecvError::Empty)
    );
}

#[test]
fn an_abandoned_batch_out_of_attempts_is_dropped_at_once_and_counted_once() {
    let (sink, latch, entered, got) = stuck_on_first_call(None);
    let (obs, seen) = copy_events();
    let buf = Buffer::builder(pairs("copy-dropped").max_retries(0))
        .sink(sink)
        .observer(obs)
        .retry_abandoned_batches()
        .build()
        .unwrap();
    first_pair_is_stuck(&buf, &entered);
    let timeout = Copied::Timeout {
        attempt: 0,
        items: 2,
    };
    assert_eq!(seen.recv_timeout(WAIT), Ok(timeout));
    let drop = Copied::Drop {
        count: 2,
        reason: DropReason::SinkFailed,
    };
    assert_eq!(seen.recv_timeout(WAIT), Ok(drop));
    let c = buf.stats().counts;
    assert!(c.is_conserved(), "{c:?}");
    assert_eq!(
        (c.inserted, c.dropped, c.delivered, c.in_flight, c.abandoned),
        (2, 2, 0, 0, 1)
    );

    // Its late Ok is only counted: the books gave the items up already.
    latch.release();
    let late = Copied::Late {
        attempt: 0,
        items: 2,
    };
    assert_eq!(seen.recv_timeout(WAIT), Ok(late));
    let report = buf.close(WAIT);
    assert_eq!((report.running_calls, report.undelivered), (0, 0));
    let c = report.counts;
    assert!(c.is_conserved(), "{c:?}");
    assert_eq!(
        (c.inserted, c.dropped, c.delivered, c.abandoned),
        (2, 2, 0, 0)
    );
    assert_eq!(*got.lock().unwrap(), [1, 2], "the stuck call's own take");
    assert_eq!(
        entered.try_recv(),
        Err(std::sync::mpsc::TryRecvError::Empty)
    );
}

/// An item whose `Clone` panics: the copy at abandonment fails.
#[derive(Debug, PartialEq)]
struct NoCopy(u32);

impl Clone for NoCopy {
    fn clone(&self) -> Self {
        panic!("NoCopy {} cannot be copied", self.0)
    }
}

impl spillway::Weigh for NoCopy {}

#[test]
fn a_batch_that_cannot_be_copied_stays_with_its_call_and_goes_again_when_it_returns() {
    let latch = Arc::new(Latch::default());
    let (entered_tx, entered) = channel::<(u32, Vec<u32>)>();
    let got = Arc::new(Mutex::new(Vec::new()));
    let (l, e, g) = (latch.clone(), Mutex::new(entered_tx), got.clone());
    let calls = AtomicUsize::new(0);
    let (obs, seen) = copy_events();
    let buf = Buffer::builder(pairs("no-copy").max_retries(3))
        .sink(move |b: &[NoCopy], ctx: &FlushContext<'_>| {
            let values: Vec<u32> = b.iter().map(|x| x.0).collect();
            let _ = e.lock().unwrap().send((ctx.attempt, values.clone()));
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                l.wait();
            }
            g.lock().unwrap().extend(values);
            Ok::<(), SinkError>(())
        })
        .observer(obs)
        .retry_abandoned_batches()
        .build()
        .unwrap();
    buf.insert(NoCopy(1)).unwrap();
    buf.insert(NoCopy(2)).unwrap();
    assert_eq!(entered.recv_timeout(WAIT), Ok((0, vec![1, 2])));
    let timeout = Copied::Timeout {
        attempt: 0,
        items: 2,
    };
    assert_eq!(seen.recv_timeout(WAIT), Ok(timeout));
    // No copy: the partition flushes on, and the batch waits for its call.
    buf.insert(NoCopy(3)).unwrap();
    buf.insert(NoCopy(4)).unwrap();
    assert_eq!(entered.recv_timeout(WAIT), Ok((0, vec![3, 4])));
    let c = buf.stats().counts;
    assert_eq!(
        (c.failed_flushes, c.abandoned, c.retries),
        (1, 1, 0),
        "{c:?}"
    );

    latch.release();
    let late = Copied::Late {
        attempt: 0,
        items: 2,
    };
    assert_eq!(seen.recv_timeout(WAIT), Ok(late));
    assert_eq!(entered.recv_timeout(WAIT), Ok((1, vec![1, 2])));
    let report = buf.close(WAIT);
    assert!(!report.timed_out, "{report:?}");
    let c = report.counts;
    assert!(c.is_conserved(), "{c:?}");
    assert_eq!(
        (c.inserted, c.delivered, c.in_flight, c.retries),
        (4, 4, 0, 1)
    );
    // The stuck call's take and its batch's retry: twice, at least once.
    let mut got = got.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, [1, 1, 2, 2, 3, 4]);
    assert_eq!(
        entered.try_recv(),
        Err(std::sync::mpsc::TryRecvError::Empty)
    );
}

#[test]
fn close_spools_the_copy_of_an_abandoned_batch_that_no_flusher_was_free_to_take() {
    // One worker. `copies` is stuck and abandoned; its replacement thread
    // takes the flush `blocker` queued meanwhile and is stuck there too, so
    // the copy of `copies`' batch waits with no flusher to take it. Close
    // must spool it, as it spools a batch waiting for its retry.
    let engine = Engine::new(1).unwrap();
    let (sink, latch, entered, got) = stuck_on_first_call(None);
    let (obs, seen) = copy_events();
    let cfg = pairs("late-at-close")
        .max_retries(3)
        .overflow(spillway::config::Overflow::Spill)
        .spool_dir("not-touched-the-spool-is-in-memory");
    let copies = Buffer::builder(cfg)
        .sink(sink)
        .observer(obs)
        .engine(&engine)
        .spill(spillway::SpillCodec::of())
        .spool_storage(|_| spillway::spool::MemStorage::new())
        .retry_abandoned_batches()
        .build()
        .unwrap();
    let blocked = Arc::new(Latch::default());
    let (blocker_tx, blocker_entered) = channel::<Vec<u32>>();
    let (b, blocker_tx) = (blocked.clone(), Mutex::new(blocker_tx));
    let blocker = Buffer::builder(BufferConfig::new().name("blocker").max_size(1))
        .sink(move |batch: &[u32], _: &FlushContext<'_>| {
            let _ = blocker_tx.lock().unwrap().send(batch.to_vec());
            b.wait();
            Ok::<(), SinkError>(())
        })
        .engine(&engine)
        .build()
        .unwrap();

    first_pair_is_stuck(&copies, &entered);
    // Queued while the only worker is stuck: ahead of the copy's flush.
    blocker.insert(7).unwrap();
    assert_eq!(
        seen.recv_timeout(WAIT),
        Ok(Copied::Timeout {
            attempt: 0,
            items: 2
        })
    );
    assert_eq!(blocker_entered.recv_timeout(WAIT), Ok(vec![7]));

    let report = copies.close(Duration::from_millis(100));
    assert_eq!(
        (report.spooled, report.not_durable, report.running_calls),
        (2, 0, 1),
        "{report:?}"
    );
    assert_eq!(
        seen.recv_timeout(WAIT),
        Ok(Copied::Spill {
            items: 2,
            reason: SpillReason::Close
        })
    );
    assert!(report.counts.is_conserved(), "{:?}", report.counts);
    assert_eq!(
        entered.try_recv(),
        Err(std::sync::mpsc::TryRecvError::Empty),
        "the copy went to the spool, not to the sink"
    );

    latch.release();
    blocked.release();
    // The stuck call reads its own items to the end; its result is only
    // counted.
    assert_eq!(
        seen.recv_timeout(WAIT),
        Ok(Copied::Late {
            attempt: 0,
            items: 2
        })
    );
    assert_eq!(*got.lock().unwrap(), vec![1, 2]);
    assert!(!blocker.close(WAIT).timed_out);
}
