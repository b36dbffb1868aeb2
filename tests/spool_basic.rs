//! The spool's API: order, both ends, bulk reads, limits, sync modes, reopen.

mod spool_support;

use std::time::Duration;

use spillway::spool::{
    Crash, MemStorage, PositionStatus, Spool, SpoolConfig, SpoolError, SyncMode,
};
use spool_support::{number, record, TempDir};

fn small() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 1 << 20,
        segment_bytes: 256,
        max_record: 1024,
        sync: SyncMode::Batch,
        memory_bytes: 200,
        ..SpoolConfig::default()
    }
}

fn numbers(records: &[Vec<u8>]) -> Vec<u64> {
    records
        .iter()
        .map(|r| number(r).expect("intact record"))
        .collect()
}

fn drain(spool: &mut Spool) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some(r) = spool.pop().unwrap() {
        out.push(number(&r).expect("intact record"));
    }
    out
}

#[test]
fn fifo_across_segments_and_reopen() {
    let dir = TempDir::new("fifo");
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    for n in 0..200 {
        spool.push(record(n, 20)).unwrap();
    }
    spool.flush().unwrap();
    let segs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".seg")
        })
        .count();
    assert!(segs > 5, "small segments roll: {segs}");
    assert_eq!(spool.len(), 200);
    for n in 0..50 {
        assert_eq!(spool.pop().unwrap().and_then(|r| number(&r)), Some(n));
    }
    spool.close().unwrap();
    assert!(matches!(spool.pop(), Err(SpoolError::Closed)));

    let mut spool = Spool::open(dir.path(), small()).unwrap();
    let rep = spool.report().clone();
    assert!(rep.is_clean(), "{rep:?}");
    assert_eq!(rep.records, 150);
    assert_eq!(rep.position, PositionStatus::Matched);
    assert_eq!(spool.len(), 150);
    assert_eq!(drain(&mut spool), (50..200).collect::<Vec<_>>());
    spool.flush().unwrap();
    // Consumed segments are deleted whole; the last one stays to append to.
    assert!(spool.disk_bytes() <= 256, "{}", spool.disk_bytes());
}

#[test]
fn pop_newest_is_last_in_first_out_over_disk_and_memory() {
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), small()).unwrap();
    for n in 0..40 {
        spool.push(record(n, 30)).unwrap();
    }
    spool.flush().unwrap();
    for n in 40..45 {
        spool.push(record(n, 30)).unwrap();
    }
    let mut newest = Vec::new();
    for _ in 0..20 {
        newest.push(number(&spool.pop_newest().unwrap().unwrap()).unwrap());
    }
    assert_eq!(newest, (25..45).rev().collect::<Vec<_>>());
    // New records go after what is left, and sequence numbers stay ordered.
    spool.push(record(100, 30)).unwrap();
    spool.flush().unwrap();
    drop(spool);
    let mut spool = Spool::open_with(mem.crash(Crash::drop_unsynced()), small()).unwrap();
    assert!(spool.report().is_clean(), "{:?}", spool.report());
    let mut want: Vec<u64> = (0..25).collect();
    want.push(100);
    assert_eq!(drain(&mut spool), want);
}

#[test]
fn pop_newest_after_reopen_reads_the_newest_segment() {
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), small()).unwrap();
    spool.push_batch((0..30).map(|n| record(n, 24))).unwrap();
    spool.close().unwrap();
    let mut spool = Spool::open_with(mem.clone(), small()).unwrap();
    assert_eq!(spool.cached(), 0);
    assert_eq!(number(spool.peek_newest().unwrap().unwrap()), Some(29));
    assert_eq!(number(&spool.pop_newest().unwrap().unwrap()), Some(29));
    assert_eq!(number(&spool.pop().unwrap().unwrap()), Some(0));
    assert_eq!(number(&spool.pop_newest().unwrap().unwrap()), Some(28));
    spool.close().unwrap();
    let mut spool = Spool::open_with(mem, small()).unwrap();
    assert_eq!(drain(&mut spool), (1..28).collect::<Vec<_>>());
}

#[test]
fn pop_newest_when_only_read_ahead_records_are_left() {
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), small()).unwrap();
    spool.push_batch((0..5).map(|n| record(n, 10))).unwrap();
    spool.close().unwrap();
    let mut spool = Spool::open_with(mem.clone(), small()).unwrap();
    assert_eq!(number(spool.peek().unwrap().unwrap()), Some(0)); // reads all five ahead
    assert_eq!(number(&spool.pop_newest().unwrap().unwrap()), Some(4));
    spool.push(record(9, 10)).unwrap();
    assert_eq!(drain(&mut spool), vec![0, 1, 2, 3, 9]);
    assert_eq!(spool.pop_newest().unwrap(), None);
}

#[test]
fn peek_read_and_remove() {
    let mut spool = Spool::open_with(MemStorage::new(), small()).unwrap();
    assert_eq!(spool.peek().unwrap(), None);
    assert_eq!(spool.peek_newest().unwrap(), None);
    assert_eq!(spool.read(3).unwrap(), Vec::<Vec<u8>>::new());
    spool.push_batch((0..60).map(|n| record(n, 16))).unwrap();
    assert_eq!(number(spool.peek().unwrap().unwrap()), Some(0));
    assert_eq!(number(spool.peek_newest().unwrap().unwrap()), Some(59));
    assert_eq!(
        numbers(&spool.read(45).unwrap()),
        (0..45).collect::<Vec<_>>()
    );
    assert_eq!(
        numbers(&spool.read(100).unwrap()),
        (0..60).collect::<Vec<_>>()
    );
    assert_eq!(spool.len(), 60);
    assert_eq!(spool.remove(7).unwrap(), 7);
    assert_eq!(numbers(&spool.read(2).unwrap()), vec![7, 8]);
    assert_eq!(spool.remove(100).unwrap(), 53);
    assert!(spool.is_empty());
    assert_eq!(spool.remove(1).unwrap(), 0);
}

#[test]
fn memory_window_is_bounded() {
    let cfg = SpoolConfig {
        memory_bytes: 100,
        ..small()
    };
    let mut spool = Spool::open_with(MemStorage::new(), cfg).unwrap();
    for n in 0..500 {
        spool.push(record(n, 20)).unwrap();
        assert!(
            spool.cached() <= 2 * (100 / 20) + 2,
            "cached {}",
            spool.cached()
        );
    }
    for n in 0..500 {
        assert_eq!(number(&spool.pop().unwrap().unwrap()), Some(n));
        assert!(
            spool.cached() <= 2 * (100 / 20) + 2,
            "cached {}",
            spool.cached()
        );
    }
}

#[test]
fn full_gives_the_record_back_and_consumed_space_comes_back() {
    let cfg = SpoolConfig {
        max_bytes: 1024,
        segment_bytes: 256,
        max_record: 100,
        sync: SyncMode::Batch,
        memory_bytes: 0,
        ..SpoolConfig::default()
    };
    let mut spool = Spool::open_with(MemStorage::new(), cfg).unwrap();
    let mut n = 0;
    let back = loop {
        match spool.push(record(n, 48)) {
            Ok(()) => n += 1,
            Err(SpoolError::Full(r)) => break r,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(number(&back), Some(n));
    assert_eq!(n, 16, "1024 bytes hold 16 frames of 64");
    let err = spool.push(record(n, 48)).unwrap_err();
    assert!(err.to_string().contains("spool is full"), "{err}");
    assert_eq!(drain(&mut spool), (0..16).collect::<Vec<_>>());
    for m in 100..116 {
        spool.push(record(m, 48)).unwrap();
    }
    assert_eq!(drain(&mut spool), (100..116).collect::<Vec<_>>());
}

#[test]
fn too_large_is_refused_before_anything_is_kept() {
    let mut spool = Spool::open_with(MemStorage::new(), small()).unwrap();
    let err = spool.push(vec![0u8; 1025]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "record of 1025 bytes is larger than max_record (1024 bytes)"
    );
    assert_eq!(err.into_record().map(|r| r.len()), Some(1025));
    assert!(spool.is_empty());
    spool.push(vec![7u8; 1024]).unwrap(); // larger than a segment: gets its own
    spool.push(Vec::new()).unwrap(); // empty records are records
    spool.flush().unwrap();
    assert_eq!(spool.pop().unwrap(), Some(vec![7u8; 1024]));
    assert_eq!(spool.pop().unwrap(), Some(Vec::new()));
    assert_eq!(spool.pop().unwrap(), None);
}

#[test]
fn a_second_open_of_the_same_directory_is_locked_out() {
    let dir = TempDir::new("lock");
    let mut first = Spool::open(dir.path(), small()).unwrap();
    match Spool::open(dir.path(), small()) {
        Err(SpoolError::Locked { path }) => assert!(path.ends_with("lock")),
        other => panic!("{other:?}"),
    }
    first.close().unwrap();
    Spool::open(dir.path(), small()).unwrap();
}

#[test]
fn closed_spool_refuses_everything() {
    let mut spool = Spool::open_with(MemStorage::new(), small()).unwrap();
    spool.close().unwrap();
    spool.close().unwrap();
    assert!(matches!(spool.push("x"), Err(SpoolError::Closed)));
    assert!(matches!(spool.push_batch(["x"]), Err(SpoolError::Closed)));
    assert!(matches!(spool.flush(), Err(SpoolError::Closed)));
    assert!(matches!(spool.peek(), Err(SpoolError::Closed)));
    assert!(matches!(spool.read(1), Err(SpoolError::Closed)));
    assert!(matches!(spool.sync_if_due(), Err(SpoolError::Closed)));
}

#[test]
fn config_is_checked_before_the_disk_is_touched() {
    let dir = TempDir::new("config");
    let sub = dir.path().join("never-created");
    let cfg = SpoolConfig {
        segment_bytes: 1,
        ..small()
    };
    match Spool::open(&sub, cfg) {
        Err(SpoolError::Config(e)) => assert_eq!(e.field(), "segment_bytes"),
        other => panic!("{other:?}"),
    }
    assert!(!sub.exists());
}

#[test]
fn batch_mode_syncs_once_per_batch() {
    let mem = MemStorage::new();
    let cfg = SpoolConfig {
        segment_bytes: 1 << 20,
        memory_bytes: 1 << 20,
        ..small()
    };
    let mut spool = Spool::open_with(mem.clone(), cfg).unwrap();
    spool.push_batch((0..100).map(|n| record(n, 50))).unwrap();
    assert_eq!(mem.sync_count(), 1);
    spool.push(record(100, 50)).unwrap();
    assert_eq!(mem.sync_count(), 1, "a single push waits for the group");
    spool.push_batch((101..200).map(|n| record(n, 50))).unwrap();
    assert_eq!(mem.sync_count(), 2);
    spool.flush().unwrap();
    assert_eq!(mem.sync_count(), 2, "nothing left to sync");
}

#[test]
fn always_mode_syncs_every_push() {
    let mem = MemStorage::new();
    let cfg = SpoolConfig {
        sync: SyncMode::Always,
        segment_bytes: 1 << 20,
        ..small()
    };
    let mut spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
    for n in 0..10 {
        spool.push(record(n, 50)).unwrap();
        assert_eq!(mem.sync_count(), n + 1);
    }
    // Durable without a flush:
    let after = mem.crash(Crash::drop_unsynced());
    drop(spool);
    let mut spool = Spool::open_with(after, cfg).unwrap();
    assert_eq!(drain(&mut spool), (0..10).collect::<Vec<_>>());
}

#[test]
fn never_mode_syncs_only_on_flush() {
    let mem = MemStorage::new();
    let cfg = SpoolConfig {
        sync: SyncMode::Never,
        memory_bytes: 0,
        ..small()
    };
    let mut spool = Spool::open_with(mem.clone(), cfg).unwrap();
    spool.push_batch((0..100).map(|n| record(n, 50))).unwrap();
    assert_eq!(mem.sync_count(), 0);
    spool.flush().unwrap();
    assert!(mem.sync_count() > 1, "every written segment is synced");
}

#[test]
fn interval_mode_syncs_when_due() {
    let mem = MemStorage::new();
    let cfg = SpoolConfig {
        sync: SyncMode::Interval,
        sync_interval: Duration::from_secs(3600),
        ..small()
    };
    let mut spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
    spool.push(record(1, 20)).unwrap();
    assert!(!spool.sync_if_due().unwrap());
    assert_eq!(mem.sync_count(), 0);
    drop(spool);

    let mem = MemStorage::new();
    let cfg = SpoolConfig {
        sync: SyncMode::Interval,
        sync_interval: Duration::from_nanos(1),
        ..cfg
    };
    let mut spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
    assert!(!spool.sync_if_due().unwrap(), "nothing to sync yet");
    spool.push(record(1, 20)).unwrap();
    assert!(spool.sync_if_due().unwrap());
    assert_eq!(mem.sync_count(), 1);
    assert!(!spool.sync_if_due().unwrap());
    // The next push syncs what came before it, on its own.
    spool.push(record(2, 20)).unwrap();
    spool.push(record(3, 20)).unwrap();
    assert_eq!(mem.sync_count(), 2);
    let after = mem.crash(Crash::drop_unsynced());
    drop(spool);
    let mut spool = Spool::open_with(after, cfg).unwrap();
    assert_eq!(drain(&mut spool), vec![1, 2]);
}

#[test]
fn drop_without_close_flushes() {
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), small()).unwrap();
    spool.push(record(5, 20)).unwrap();
    drop(spool);
    let mut spool = Spool::open_with(mem.crash(Crash::drop_unsynced()), small()).unwrap();
    assert_eq!(drain(&mut spool), vec![5]);
}

#[test]
fn read_position_survives_a_crash_after_flush() {
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), small()).unwrap();
    spool.push_batch((0..50).map(|n| record(n, 20))).unwrap();
    assert_eq!(spool.remove(20).unwrap(), 20);
    spool.flush().unwrap();
    assert_eq!(spool.remove(5).unwrap(), 5); // not flushed: may come back
    let after = mem.crash(Crash::any(7));
    drop(spool);
    let mut spool = Spool::open_with(after, small()).unwrap();
    assert_eq!(drain(&mut spool), (20..50).collect::<Vec<_>>());
}

#[test]
fn tiny_segments_work() {
    let cfg = SpoolConfig {
        max_bytes: 64 * 1024,
        segment_bytes: 64,
        max_record: 200,
        sync: SyncMode::Always,
        memory_bytes: 0,
        ..SpoolConfig::default()
    };
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
    for n in 0..100 {
        spool.push(record(n, 8 + (n as usize % 90))).unwrap();
        if n % 3 == 0 {
            assert_eq!(number(&spool.pop().unwrap().unwrap()), Some(n / 3));
        }
    }
    spool.close().unwrap();
    let mut spool = Spool::open_with(mem.clone(), cfg).unwrap();
    assert!(spool.report().is_clean());
    assert_eq!(drain(&mut spool), (34..100).collect::<Vec<_>>());
    assert!(mem.violations().is_empty());
}
