//! Open does not read the backlog: segments sealed (full and synced) before
//! a clean close or the last open are trusted by their seal and checked
//! when read; only the unsealed tail is scanned. Measured in bytes read
//! through the Storage trait, not in time.

mod spool_support;

use std::sync::atomic::Ordering::Relaxed;

use spillway::spool::{MemStorage, PositionStatus, SkipReason, Spool, SpoolConfig, SyncMode};
use spool_support::{number, record, Counting};

fn cfg() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 64 << 20,
        segment_bytes: 4096,
        max_record: 1024,
        sync: SyncMode::Batch,
        memory_bytes: 4096,
        ..SpoolConfig::default()
    }
}

/// Records of 100 bytes (116 on disk): 35 fill a 4096-byte segment.
const PER_SEGMENT: u64 = 35;

/// A cleanly closed spool of `full` full segments plus a partial tail.
fn build(full: u64) -> (MemStorage, u64) {
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg()).unwrap();
    let n = full * PER_SEGMENT + 10;
    spool.push_batch((0..n).map(|i| record(i, 100))).unwrap();
    spool.close().unwrap();
    assert_eq!(mem.segment_ids().len() as u64, full + 1);
    (mem, n)
}

/// Bytes read by an open, and the spool.
fn open_counting(mem: &MemStorage) -> (u64, Spool) {
    let (storage, read) = Counting::new(mem.clone());
    let spool = Spool::open_with(storage, cfg()).unwrap();
    (read.load(Relaxed), spool)
}

fn drain(spool: &mut Spool) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some(r) = spool.pop().unwrap() {
        out.push(number(&r).expect("an intact record"));
    }
    out
}

#[test]
fn opening_100_sealed_segments_reads_about_what_opening_1_does() {
    let (one, n1) = build(1);
    let (hundred, n100) = build(100);
    let (read_one, mut spool_one) = open_counting(&one);
    let (read_hundred, mut spool_hundred) = open_counting(&hundred);
    assert_eq!(spool_one.report().sealed_segments, 1);
    assert_eq!(spool_hundred.report().sealed_segments, 100);
    assert_eq!(spool_hundred.len(), n100);
    // Per sealed segment: one 16-byte frame header. The rest is the same
    // (the position file and the unsealed tail).
    let data: u64 = hundred
        .segment_ids()
        .iter()
        .map(|&id| hundred.segment(id).unwrap().len() as u64)
        .sum();
    assert!(
        read_hundred <= read_one + 99 * 16 + 99 * 48,
        "1 segment: {read_one} bytes read; 100 segments: {read_hundred} ({data} on disk)"
    );
    assert!(read_hundred * 20 < data, "{read_hundred} of {data}");
    eprintln!(
        "open read {read_one} bytes at 1 sealed segment, {read_hundred} at 100 ({data} on disk)"
    );
    // Trusted unread, and still every record, in order.
    assert_eq!(drain(&mut spool_one), (0..n1).collect::<Vec<_>>());
    assert_eq!(drain(&mut spool_hundred), (0..n100).collect::<Vec<_>>());
    assert!(spool_hundred.report().is_clean());
}

#[test]
fn a_spool_without_seals_is_scanned_once_then_opens_unread() {
    // As an older version left it: no position file, so no seals.
    let (mem, n) = build(20);
    mem.set_position(None);
    let (first, mut spool) = open_counting(&mem);
    assert_eq!(spool.report().sealed_segments, 0);
    let data: u64 = 20 * 4060; // at least this much is records
    assert!(first >= data, "the first open scans everything: {first}");
    spool.close().unwrap();
    let (second, mut spool) = open_counting(&mem);
    assert_eq!(spool.report().sealed_segments, 20);
    assert!(second * 10 < first, "{first} then {second}");
    assert_eq!(drain(&mut spool), (0..n).collect::<Vec<_>>());
}

#[test]
fn a_version_1_position_still_opens() {
    let (mem, n) = build(3);
    // magic, seq (sequence numbers start at 1: records 0..4 consumed),
    // segment, offset of the first unconsumed record, CRC32C.
    let mut b = b"SPWPOS01".to_vec();
    for v in [5u64, 1, 4 * 116] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    mem.set_position(Some(b));
    let mut spool = Spool::open_with(mem.clone(), cfg()).unwrap();
    assert_eq!(spool.report().position, PositionStatus::Matched);
    assert_eq!(spool.report().sealed_segments, 0);
    assert_eq!(drain(&mut spool), (4..n).collect::<Vec<_>>());
    spool.close().unwrap();
    // Saved again in the current version, which the next open reads.
    let spool = Spool::open_with(mem, cfg()).unwrap();
    assert_eq!(spool.report().position, PositionStatus::Matched);
}

#[test]
fn damage_in_a_sealed_segment_is_found_when_read_and_reported_the_same_way() {
    let (mem, n) = build(100);
    let id = mem.segment_ids()[50];
    let mut bytes = mem.segment(id).unwrap();
    let victim = 7usize; // the 8th frame of the segment
    let at = victim * 116;
    bytes[at + 16 + 40] ^= 0x10; // inside its payload
    mem.set_segment(id, bytes);
    let mut spool = Spool::open_with(mem, cfg()).unwrap();
    assert!(spool.report().is_clean(), "open did not read it");
    assert_eq!(spool.report().sealed_segments, 100);
    let got = drain(&mut spool);
    let lost = 50 * PER_SEGMENT + victim as u64;
    let want: Vec<u64> = (0..n).filter(|&i| i != lost).collect();
    assert_eq!(got, want);
    let rep = spool.report();
    assert_eq!(rep.skipped_total, 1, "{rep:?}");
    assert_eq!(
        (
            rep.skipped[0].segment,
            rep.skipped[0].offset,
            rep.skipped[0].bytes
        ),
        (id, at as u64, 116)
    );
    assert_eq!(rep.skipped[0].reason, SkipReason::Checksum);
    assert!(spool.is_empty());
}

#[test]
fn a_sealed_segment_that_was_cut_is_scanned_again() {
    // Two full (sealed) segments and one record after them: popping the
    // two newest cuts the second segment, its seal no longer matches, and
    // open scans it (and trusts the first).
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg()).unwrap();
    let n = 2 * PER_SEGMENT + 1;
    spool.push_batch((0..n).map(|i| record(i, 100))).unwrap();
    spool.close().unwrap();
    let mut spool = Spool::open_with(mem.clone(), cfg()).unwrap();
    assert_eq!(spool.report().sealed_segments, 2);
    for want in [n - 1, n - 2] {
        assert_eq!(number(&spool.pop_newest().unwrap().unwrap()), Some(want));
    }
    spool.close().unwrap();
    let mut spool = Spool::open_with(mem.clone(), cfg()).unwrap();
    assert_eq!(spool.report().sealed_segments, 1);
    assert!(spool.report().is_clean());
    assert_eq!(drain(&mut spool), (0..n - 2).collect::<Vec<_>>());
}
