//! Failing disks: a failed fsync is never retried on the same file; what is
//! still in memory goes to a new segment, or the error goes to the caller.

mod spool_support;

use spillway::spool::{Crash, MemStorage, Spool, SpoolConfig, SpoolError, SyncMode};
use spool_support::{number, record};

fn cfg(sync: SyncMode, memory_bytes: usize) -> SpoolConfig {
    SpoolConfig {
        max_bytes: 1 << 20,
        segment_bytes: 4096,
        max_record: 1024,
        sync,
        memory_bytes,
        ..SpoolConfig::default()
    }
}

fn drain(spool: &mut Spool) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some(r) = spool.pop().unwrap() {
        out.push(number(&r).unwrap());
    }
    out
}

#[test]
fn failed_fsync_rewrites_what_is_in_memory_to_a_new_segment() {
    let mem = MemStorage::new();
    let c = cfg(SyncMode::Batch, 1 << 20);
    let mut spool = Spool::open_with(mem.clone(), c.clone()).unwrap();
    spool.push_batch((0..10).map(|n| record(n, 30))).unwrap();
    assert_eq!(mem.segment_ids(), vec![1]);
    mem.fail_next_syncs(1);
    spool.push_batch((10..20).map(|n| record(n, 30))).unwrap();
    assert_eq!(
        mem.segment_ids(),
        vec![1, 2],
        "records 10..20 rewritten to segment 2"
    );
    spool.push_batch((20..25).map(|n| record(n, 30))).unwrap();
    assert!(mem.violations().is_empty(), "{:?}", mem.violations());
    // The failed file's unsynced bytes are gone in a crash; nothing is lost.
    let after = mem.crash(Crash::drop_unsynced());
    drop(spool);
    let mut spool = Spool::open_with(after, c).unwrap();
    assert_eq!(drain(&mut spool), (0..25).collect::<Vec<_>>());
}

#[test]
fn failed_fsync_with_records_no_longer_in_memory_is_an_error_naming_the_file() {
    let mem = MemStorage::new();
    let c = cfg(SyncMode::Never, 0);
    let mut spool = Spool::open_with(mem.clone(), c.clone()).unwrap();
    spool.push_batch((0..10).map(|n| record(n, 30))).unwrap();
    mem.fail_next_syncs(1);
    let err = spool.flush().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SpoolError::Io(_)), "{err:?}");
    assert!(
        msg.contains("fsync") && msg.contains("0000000000000001.seg"),
        "{msg}"
    );
    // Still failing: the records are not durable and not in memory.
    let again = spool.flush().unwrap_err().to_string();
    assert!(again.contains("no longer in memory"), "{again}");
    assert_eq!(spool.len(), 10);
    // Once they are consumed, there is nothing left to make durable.
    assert_eq!(drain(&mut spool), (0..10).collect::<Vec<_>>());
    spool.push(record(10, 30)).unwrap();
    spool.flush().unwrap();
    assert!(mem.violations().is_empty(), "{:?}", mem.violations());
}

#[test]
fn always_mode_gives_the_record_back_when_it_cannot_be_made_durable() {
    let mem = MemStorage::new();
    let c = cfg(SyncMode::Always, 1 << 20);
    let mut spool = Spool::open_with(mem.clone(), c.clone()).unwrap();
    spool.push(record(0, 20)).unwrap();
    mem.fail_next_syncs(2); // the sync, then the rewrite
    match spool.push(record(1, 20)) {
        Err(SpoolError::NotStored { record: r, error }) => {
            assert_eq!(number(&r), Some(1));
            assert_eq!(error.op(), "fsync");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(spool.len(), 1);
    spool.push(record(2, 20)).unwrap();
    assert!(mem.violations().is_empty(), "{:?}", mem.violations());
    let after = mem.crash(Crash::drop_unsynced());
    drop(spool);
    let mut spool = Spool::open_with(after, c).unwrap();
    assert_eq!(drain(&mut spool), vec![0, 2]);
}

#[test]
fn a_full_disk_refuses_the_push_and_keeps_what_was_flushed() {
    let mem = MemStorage::new();
    let c = cfg(SyncMode::Batch, 100);
    let mut spool = Spool::open_with(mem.clone(), c.clone()).unwrap();
    spool.push_batch((0..5).map(|n| record(n, 40))).unwrap();
    mem.set_max_file_size(Some(400));
    let mut refused = None;
    for n in 5..40 {
        match spool.push(record(n, 40)) {
            Ok(()) => {}
            Err(SpoolError::NotStored { record: r, error }) => {
                assert_eq!(error.op(), "write");
                assert_eq!(error.io_error().raw_os_error(), Some(27), "EFBIG");
                refused = number(&r);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let refused = refused.expect("the disk filled up");
    let err = spool.flush().unwrap_err();
    assert!(err.to_string().contains("write"), "{err}");
    mem.set_max_file_size(None);
    spool.flush().unwrap();
    assert_eq!(drain(&mut spool), (0..refused).collect::<Vec<_>>());
}
