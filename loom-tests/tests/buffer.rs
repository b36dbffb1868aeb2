//! Loom models of the batching buffer's protocols: inserts against the
//! flusher's swap, `sync_flush` and `close` against inserts and in-flight
//! flushes, producer rings drained while they fill, the close hand-off with
//! producer handles (the SeqCst-fence Dekker pair and `take_back`), and the
//! "due" hand-off between a producer's size hint and a flusher that stops.
//!
//! Every buffer runs on `Engine::manual()`: it has no threads, so a model
//! thread becomes the flusher by calling `engine.run_pending()`, and
//! `sync_flush`/`close` run pending flushes on the waiting thread. Loom does
//! not model time (timed waits are untimed), so nothing here depends on a
//! timeout: a lost wake-up shows up as a deadlock, a lost flush as an
//! undelivered item.
//!
//! Bookkeeping (the sink's log, drop counts) uses std types: loom runs one
//! thread at a time, and they are read only after the joins. Anything that
//! orders the model's threads uses loom's atomics, so loom sees the
//! happens-before edge the assertion relies on.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::sync::{Arc as StdArc, Mutex as StdMutex};
use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use spillway::buffer::{FlushReport, SyncFlushError};
use spillway::config::Overflow;
use spillway::{Buffer, BufferConfig, Engine, FlushContext, InsertError, SinkError, Weigh};

/// Long enough never to pass while a model runs: no model may time out.
const NEVER: Duration = Duration::from_secs(3600);

/// A producer handle pushes `items` on one thread while another thread runs
/// the queued flushes; returns once both are done.
fn push_beside_a_flusher(w: &World, items: Vec<Item>) {
    let mut p = w.buf.producer();
    let producer = thread::spawn(move || {
        for it in items {
            p.insert(it).unwrap();
        }
    });
    let engine = w.engine.clone();
    let flusher = thread::spawn(move || {
        engine.run_pending();
    });
    producer.join().unwrap();
    flusher.join().unwrap();
}

/// `sync_flush` delivered exactly "what was buffered at the call": at least
/// every insert that had returned before it (`before`, and those very
/// items), at most those that had started by the time it returned (`began`).
fn assert_covers_what_was_buffered(report: &FlushReport, seen: &[u32], before: u32, began: u64) {
    assert!(report.all_delivered(), "{report:?}");
    assert!(report.delivered() >= u64::from(before), "{report:?}");
    assert!(report.delivered() <= began, "{report:?} > {began} started");
    for id in 0..before {
        assert!(
            seen.contains(&id),
            "item {id} returned before sync_flush: {seen:?}"
        );
    }
}

/// An item that counts its drops, so every model can prove each item is
/// dropped exactly once, whichever way it went.
struct Item {
    id: u32,
    drops: StdArc<Vec<StdAtomicUsize>>,
}

impl Weigh for Item {}

impl Drop for Item {
    fn drop(&mut self) {
        self.drops[self.id as usize].fetch_add(1, StdOrdering::Relaxed);
    }
}

/// A manual engine, one buffer on it, the sink's log and the drop counts.
struct World {
    engine: Engine,
    buf: Buffer<Item>,
    /// Every batch the sink accepted, in order.
    log: StdArc<StdMutex<Vec<Vec<u32>>>>,
    drops: StdArc<Vec<StdAtomicUsize>>,
}

impl World {
    /// `items` is how many distinct items the model may make (ids 0..items);
    /// a full partition refuses (`overflow: reject`).
    fn new(max_size: usize, capacity: usize, items: usize) -> Self {
        Self::with_overflow(max_size, capacity, items, Overflow::Reject)
    }

    fn with_overflow(max_size: usize, capacity: usize, items: usize, overflow: Overflow) -> Self {
        let engine = Engine::manual();
        let log = StdArc::new(StdMutex::new(Vec::new()));
        let sink_log = log.clone();
        let cfg = BufferConfig::new()
            .max_size(max_size)
            .capacity(capacity)
            .partitions(1)
            .overflow(overflow)
            .block_timeout(NEVER)
            .flush_interval(NEVER)
            .flush_timeout(NEVER);
        // A loom operation inside the sink is a point where loom may switch
        // threads: the sink runs with no lock held, so anything may happen
        // while a batch is in it (without this, the step from taking a batch
        // to logging it would be atomic to loom).
        let in_sink = Arc::new(AtomicUsize::new(0));
        let buf = Buffer::builder(cfg)
            .sink(move |b: &[Item], _: &FlushContext<'_>| {
                in_sink.fetch_add(1, Ordering::Relaxed);
                let ids = b.iter().map(|i| i.id).collect();
                // A failed assertion must not poison the log for the close in
                // the buffer's drop (a second panic would abort the run).
                sink_log.lock().unwrap_or_else(|e| e.into_inner()).push(ids);
                Ok::<(), SinkError>(())
            })
            .engine(&engine)
            .build()
            .unwrap();
        let drops = StdArc::new((0..items).map(|_| StdAtomicUsize::new(0)).collect());
        Self {
            engine,
            buf,
            log,
            drops,
        }
    }

    fn item(&self, id: u32) -> Item {
        Item {
            id,
            drops: self.drops.clone(),
        }
    }

    /// The batches the sink accepted, in order.
    fn batches(&self) -> Vec<Vec<u32>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every delivered id, in the order the sink saw them.
    fn delivered(&self) -> Vec<u32> {
        self.batches().concat()
    }

    /// Drops the buffer and the engine (the last owners of anything still
    /// buffered or queued), then checks that each of the first `made` items
    /// was dropped exactly once.
    fn finish(self, made: u32) {
        let Self {
            engine, buf, drops, ..
        } = self;
        drop(buf);
        drop(engine);
        for id in 0..made as usize {
            assert_eq!(
                drops[id].load(StdOrdering::Relaxed),
                1,
                "item {id} dropped a wrong number of times"
            );
        }
    }
}

/// Inserts `ids` through the mutex path; returns the ids that came back
/// with `Closed` (anything else is a failure of the model's setup).
fn insert_all(buf: &Buffer<Item>, items: Vec<Item>) -> Vec<u32> {
    let mut back = Vec::new();
    for it in items {
        match buf.insert(it) {
            Ok(()) => {}
            Err(InsertError::Closed(it)) => back.push(it.id),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    back
}

/// Every id in `0..n` is either delivered (once, in order) or came back
/// with `Closed`: never both, never neither.
fn assert_partitioned(delivered: &[u32], back: &[u32], n: u32) {
    let mut all: Vec<u32> = delivered.iter().chain(back).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..n).collect::<Vec<_>>(),
        "delivered {delivered:?}, handed back {back:?}"
    );
    assert!(
        delivered.windows(2).all(|w| w[0] < w[1]),
        "out of order: {delivered:?}"
    );
}

/// Model 1: one thread inserts three items (the second seals a batch and queues
/// its flush) while another runs the flusher, whose swap takes the sealed
/// chunk under the lock. Each item reaches the sink once, in order, and
/// the counters balance at every quiet point.
#[test]
fn insert_races_the_flushers_swap() {
    loom::model(|| {
        let w = World::new(2, 4, 3);
        let items: Vec<Item> = (0..3).map(|i| w.item(i)).collect();
        let buf = w.buf.clone();
        let inserter = thread::spawn(move || insert_all(&buf, items));
        let engine = w.engine.clone();
        let flusher = thread::spawn(move || {
            engine.run_pending();
        });
        assert!(inserter.join().unwrap().is_empty());
        flusher.join().unwrap();

        // The pool runs whatever is still queued: the full batch is out.
        w.engine.run_pending();
        assert_eq!(w.batches(), [vec![0, 1]]);
        let c = w.buf.stats().counts;
        assert_eq!((c.inserted, c.delivered, c.buffered), (3, 2, 1));
        assert!(c.is_conserved(), "{c:?}");

        let r = w.buf.close(NEVER);
        assert_eq!((r.delivered, r.undelivered), (1, 0));
        assert_eq!(w.delivered(), [0, 1, 2]);
        assert!(r.counts.is_conserved(), "{:?}", r.counts);
        w.finish(3);
    });
}

/// Model 1b: two threads run the flusher while a third inserts, each insert
/// sealing a batch (`max_size` 1). `running` keeps one flush per partition
/// at a time, so even with two flushers the sink sees the batches in order.
#[test]
fn two_flushers_never_flush_one_partition_at_once() {
    loom::model(|| {
        let w = World::new(1, 3, 3);
        w.buf.insert(w.item(0)).unwrap();
        let items: Vec<Item> = (1..3).map(|i| w.item(i)).collect();
        let buf = w.buf.clone();
        let inserter = thread::spawn(move || insert_all(&buf, items));
        let engine = w.engine.clone();
        let flusher = thread::spawn(move || {
            engine.run_pending();
        });
        w.engine.run_pending();
        assert!(inserter.join().unwrap().is_empty());
        flusher.join().unwrap();

        w.engine.run_pending();
        assert_eq!(w.batches(), [vec![0], vec![1], vec![2]]);
        let c = w.buf.stats().counts;
        assert_eq!((c.inserted, c.delivered, c.buffered), (3, 3, 0));
        assert!(c.is_conserved(), "{c:?}");
        w.finish(3);
    });
}

/// Model 2a: `sync_flush` racing inserts. An item whose insert returned before
/// `sync_flush` was called (the inserter publishes how many returned, with
/// Release; the caller reads it with Acquire just before the call) must be
/// delivered when `sync_flush` reports success. Items inserted while it runs
/// may or may not be included, but nothing is lost or doubled.
#[test]
fn sync_flush_waits_for_every_insert_that_returned_before_it() {
    loom::model(|| {
        let w = World::new(2, 4, 2);
        let items: Vec<Item> = (0..2).map(|i| w.item(i)).collect();
        let (started, returned) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let buf = w.buf.clone();
        let (s2, r2) = (started.clone(), returned.clone());
        let inserter = thread::spawn(move || {
            for it in items {
                s2.fetch_add(1, Ordering::Release);
                buf.insert(it).unwrap();
                r2.fetch_add(1, Ordering::Release);
            }
        });

        let before = returned.load(Ordering::Acquire) as u32;
        let report = w.buf.sync_flush(NEVER).unwrap();
        let began = started.load(Ordering::Acquire) as u64;
        assert_covers_what_was_buffered(&report, &w.delivered(), before, began);

        inserter.join().unwrap();
        let r = w.buf.close(NEVER);
        assert_eq!(w.delivered(), [0, 1]);
        assert_eq!((r.counts.inserted, r.counts.delivered), (2, 2));
        assert!(r.counts.is_conserved(), "{:?}", r.counts);
        w.finish(2);
    });
}

/// Model 2b: `close` racing inserts: each insert either gets its item back with
/// `Closed`, or the item is delivered and counted in the close report.
#[test]
fn close_racing_inserts_delivers_or_hands_back_each_item() {
    loom::model(|| {
        let w = World::new(2, 4, 2);
        let items: Vec<Item> = (0..2).map(|i| w.item(i)).collect();
        let buf = w.buf.clone();
        let inserter = thread::spawn(move || insert_all(&buf, items));

        let r = w.buf.close(NEVER);
        let back = inserter.join().unwrap();
        let delivered = w.delivered();
        assert_partitioned(&delivered, &back, 2);
        assert_eq!(r.delivered, delivered.len() as u64, "{r:?}");
        assert_eq!((r.dropped, r.undelivered, r.timed_out), (0, 0, false));
        let c = w.buf.stats().counts;
        assert_eq!(c.inserted, delivered.len() as u64, "{c:?}");
        assert!(c.is_conserved(), "{c:?}");
        w.finish(2);
    });
}

/// Model 3: `close` racing an insert while a flush is in flight on a third
/// thread: close's mark counts the in-flight batch, waits for it (the
/// flusher's wake-up must reach it), and flushes the rest itself.
#[test]
fn close_races_an_insert_and_an_in_flight_flush() {
    loom::model(|| {
        let w = World::new(1, 3, 3);
        // A full batch, queued: the flusher thread takes it in flight.
        w.buf.insert(w.item(0)).unwrap();
        let items: Vec<Item> = (1..3).map(|i| w.item(i)).collect();
        let engine = w.engine.clone();
        let flusher = thread::spawn(move || {
            engine.run_pending();
        });
        let buf = w.buf.clone();
        let inserter = thread::spawn(move || insert_all(&buf, items));

        let r = w.buf.close(NEVER);
        let back = inserter.join().unwrap();
        flusher.join().unwrap();
        let delivered = w.delivered();
        assert_partitioned(&delivered, &back, 3);
        assert!(delivered.starts_with(&[0]), "{delivered:?}");
        // The report covers what was buffered or in flight when close began
        // (the flusher may have delivered some before), and all of it was
        // resolved; the final counts cover every accepted item.
        assert!(r.delivered <= delivered.len() as u64, "{r:?}");
        assert_eq!((r.undelivered, r.timed_out), (0, false));
        let c = r.counts;
        assert_eq!(
            (c.inserted, c.delivered),
            (delivered.len() as u64, delivered.len() as u64)
        );
        assert!(c.is_conserved(), "{c:?}");
        w.finish(3);
    });
}

/// Model 4a: a producer handle pushes three items (a size hint after each, as
/// `max_size` is 1) while another thread runs the flusher, which drains the
/// ring under the partition lock as it fills. Every item once, in order.
#[test]
fn a_producer_ring_is_drained_while_it_pushes() {
    loom::model(|| {
        let w = World::new(1, 2, 3);
        let items: Vec<Item> = (0..3).map(|i| w.item(i)).collect();
        push_beside_a_flusher(&w, items);

        let r = w.buf.sync_flush(NEVER).unwrap();
        assert!(r.all_delivered(), "{r:?}");
        assert_eq!(w.delivered(), [0, 1, 2]);
        let c = w.buf.stats().counts;
        assert_eq!((c.inserted, c.delivered), (3, 3));
        assert!(c.is_conserved(), "{c:?}");
        w.finish(3);
    });
}

/// Model 4b: `sync_flush` drains a producer ring while it is being pushed to:
/// whatever `insert` returned before the call is delivered by the time it
/// reports success, and every item arrives once, in order.
#[test]
fn sync_flush_drains_a_producer_ring_while_it_pushes() {
    loom::model(|| {
        let w = World::new(2, 4, 3);
        let items: Vec<Item> = (0..3).map(|i| w.item(i)).collect();
        let (started, returned) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s2, r2) = (started.clone(), returned.clone());
        let mut p = w.buf.producer();
        let producer = thread::spawn(move || {
            for it in items {
                s2.fetch_add(1, Ordering::Release);
                p.insert(it).unwrap();
                r2.fetch_add(1, Ordering::Release);
            }
        });

        let before = returned.load(Ordering::Acquire) as u32;
        let report = w.buf.sync_flush(NEVER).unwrap();
        let began = started.load(Ordering::Acquire) as u64;
        assert_covers_what_was_buffered(&report, &w.delivered(), before, began);

        producer.join().unwrap();
        let r = w.buf.close(NEVER);
        assert_eq!(w.delivered(), [0, 1, 2]);
        assert_eq!((r.counts.inserted, r.counts.delivered), (3, 3));
        assert!(r.counts.is_conserved(), "{:?}", r.counts);
        w.finish(3);
    });
}

/// Model 5: the close hand-off with a producer handle (the SeqCst fences in
/// `Producer::insert` and `begin_close`, `final_drained`, `take_back`): a
/// producer pushes `n` items while close runs (and, with `flusher`, while a
/// third thread runs queued flushes), and each item is either delivered or
/// handed back with `Closed`, never both, never neither, and dropped once.
fn close_and_producer_hand_off(max_size: usize, n: u32, flusher: bool) {
    loom::model(move || {
        let w = World::new(max_size, 4, n as usize);
        let items: Vec<Item> = (0..n).map(|i| w.item(i)).collect();
        let mut p = w.buf.producer();
        let producer = thread::spawn(move || {
            let mut back = Vec::new();
            for it in items {
                match p.insert(it) {
                    Ok(()) => {}
                    Err(InsertError::Closed(it)) => back.push(it.id),
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            back
        });
        let flusher_thread = flusher.then(|| {
            let engine = w.engine.clone();
            thread::spawn(move || {
                engine.run_pending();
            })
        });

        let r = w.buf.close(NEVER);
        let back = producer.join().unwrap();
        if let Some(f) = flusher_thread {
            f.join().unwrap();
        }
        let delivered = w.delivered();
        assert_partitioned(&delivered, &back, n);
        // Close's report covers what was buffered when it began: with no
        // other flusher, every delivered item; with one, maybe fewer.
        if flusher {
            assert!(r.delivered <= delivered.len() as u64, "{r:?}");
        } else {
            assert_eq!(r.delivered, delivered.len() as u64, "{r:?}");
        }
        assert_eq!((r.undelivered, r.timed_out), (0, false));
        let c = w.buf.stats().counts;
        assert_eq!(
            (c.inserted, c.delivered, c.buffered),
            (delivered.len() as u64, delivered.len() as u64, 0),
            "{c:?}"
        );
        assert!(c.is_conserved(), "{c:?}");
        w.finish(n);
    });
}

/// With `max_size` 2 the first item is still buffered when close starts, so
/// close's own wait runs a flush while the later pushes race it.
#[test]
fn close_and_a_pushing_producer_hand_off_every_item_once() {
    close_and_producer_hand_off(2, 3, false);
}

/// With `max_size` 1 every push also sends a size hint (which drains and
/// queues), and a third thread runs the queued flushes.
#[test]
fn close_and_a_hinting_producer_hand_off_every_item_once_beside_a_flusher() {
    close_and_producer_hand_off(1, 2, true);
}

/// Model 6: the "due" hand-off between a producer's size hint and the flusher
/// pool: the producer's hint finds the partition owned by a flush that is
/// finishing (or not), and either that flush sees the new batch before it
/// lets go of the partition, or the hint queues a new one. After the joins,
/// the pool only has to run what is queued: no time trigger, no manual
/// flush, and every full batch is delivered.
#[test]
fn a_size_hint_is_never_lost_to_a_flusher_that_stops() {
    loom::model(|| {
        let w = World::new(1, 2, 2);
        let items: Vec<Item> = (0..2).map(|i| w.item(i)).collect();
        push_beside_a_flusher(&w, items);

        w.engine.run_pending();
        assert_eq!(w.batches(), [vec![0], vec![1]]);
        let c = w.buf.stats().counts;
        assert_eq!(
            (c.inserted, c.delivered, c.buffered, c.in_flight),
            (2, 2, 0, 0)
        );
        assert!(c.is_conserved(), "{c:?}");
        w.finish(2);
    });
}

/// Model 7a: under `overflow: block`, an insert into a full partition waits
/// for room, and the flush that frees it must wake it (loom has no timeout
/// to fall back on: a missed wake-up is a deadlock).
#[test]
fn a_blocked_insert_is_woken_by_the_flush_that_frees_room() {
    loom::model(|| {
        let w = World::with_overflow(1, 1, 2, Overflow::Block);
        w.buf.insert(w.item(0)).unwrap(); // full, and its flush is queued
        let item = w.item(1);
        let buf = w.buf.clone();
        let inserter = thread::spawn(move || insert_all(&buf, vec![item]));
        let engine = w.engine.clone();
        let flusher = thread::spawn(move || {
            engine.run_pending();
        });
        assert!(inserter.join().unwrap().is_empty());
        flusher.join().unwrap();

        w.engine.run_pending();
        assert_eq!(w.batches(), [vec![0], vec![1]]);
        let c = w.buf.stats().counts;
        assert_eq!((c.inserted, c.delivered), (2, 2));
        assert!(c.is_conserved(), "{c:?}");
        w.finish(2);
    });
}

/// Model 7b: an insert blocked on a full partition while `close` runs: close
/// wakes it, and it either got in first (and close delivers the item) or it
/// gets the item back with `Closed`.
#[test]
fn close_wakes_a_blocked_insert() {
    loom::model(|| {
        let w = World::with_overflow(1, 1, 2, Overflow::Block);
        w.buf.insert(w.item(0)).unwrap();
        let item = w.item(1);
        let buf = w.buf.clone();
        let inserter = thread::spawn(move || insert_all(&buf, vec![item]));

        let r = w.buf.close(NEVER);
        let back = inserter.join().unwrap();
        let delivered = w.delivered();
        assert_partitioned(&delivered, &back, 2);
        assert_eq!((r.delivered, r.undelivered), (delivered.len() as u64, 0));
        assert!(r.counts.is_conserved(), "{:?}", r.counts);
        w.finish(2);
    });
}

/// Model 8: `sync_flush` racing `close`, both waiting on the same partition:
/// neither hangs, and `sync_flush` either reports the item delivered or
/// says the buffer closed; the item is delivered once either way.
#[test]
fn sync_flush_racing_close_both_return() {
    loom::model(|| {
        let w = World::new(2, 4, 1);
        w.buf.insert(w.item(0)).unwrap();
        let buf = w.buf.clone();
        let syncer = thread::spawn(move || buf.sync_flush(NEVER));

        let r = w.buf.close(NEVER);
        match syncer.join().unwrap() {
            Ok(report) => assert!(report.all_delivered(), "{report:?}"),
            Err(e) => assert_eq!(e, SyncFlushError::Closed),
        }
        assert_eq!(w.delivered(), [0]);
        assert_eq!((r.undelivered, r.timed_out), (0, false));
        assert!(r.counts.is_conserved(), "{:?}", r.counts);
        w.finish(1);
    });
}
