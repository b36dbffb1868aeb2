//! Damaged files: truncation at every byte, flipped bytes, stray and missing
//! files. Open and read never panic, never return a record that was not
//! written, and report what they skipped.

mod spool_support;

use spillway::spool::{MemStorage, PositionStatus, SkipReason, Spool, SpoolConfig, SyncMode};
use spool_support::{number, record, TempDir};

fn cfg() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 1 << 20,
        segment_bytes: 256,
        max_record: 1024,
        sync: SyncMode::Batch,
        memory_bytes: 64,
        ..SpoolConfig::default()
    }
}

/// A closed spool of `n` records with varied lengths, over several segments.
fn build(n: u64) -> MemStorage {
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg()).unwrap();
    spool
        .push_batch((0..n).map(|i| record(i, 8 + (i as usize * 7) % 40)))
        .unwrap();
    spool.close().unwrap();
    mem
}

/// Frame boundaries of a segment as written (every record intact).
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut b = vec![0];
    let mut o = 0;
    while o + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[o + 4..o + 8].try_into().unwrap()) as usize;
        o += 16 + len;
        b.push(o);
    }
    b
}

/// Opens and drains; checks order and that every record is one that was
/// written. Returns the numbers read and whether the report is clean.
fn open_and_drain(mem: MemStorage, written: u64) -> (Vec<u64>, spillway::spool::OpenReport) {
    let mut spool = Spool::open_with(mem, cfg()).unwrap();
    let mut got = Vec::new();
    while let Some(r) = spool.pop().unwrap() {
        let n = number(&r).unwrap_or_else(|| panic!("returned a record never written: {r:?}"));
        assert!(n < written, "record {n} was never written");
        got.push(n);
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
    (got, spool.report().clone())
}

#[test]
fn truncation_at_every_byte() {
    let base = build(30);
    let ids = base.segment_ids();
    assert!(ids.len() >= 3, "{ids:?}");
    let per_segment: Vec<Vec<u64>> = ids
        .iter()
        .map(|&id| {
            let b = base.segment(id).unwrap();
            let mut o = 0;
            let mut v = Vec::new();
            while o < b.len() {
                let len = u32::from_le_bytes(b[o + 4..o + 8].try_into().unwrap()) as usize;
                v.push(number(&b[o + 16..o + 16 + len]).unwrap());
                o += 16 + len;
            }
            v
        })
        .collect();
    for (k, &id) in ids.iter().enumerate() {
        let full = base.segment(id).unwrap();
        let cuts = boundaries(&full);
        for len in 0..=full.len() {
            let mem = base.snapshot();
            mem.set_segment(id, full[..len].to_vec());
            let (got, rep) = open_and_drain(mem, 30);
            // Everything in the other segments is there.
            for (j, nums) in per_segment.iter().enumerate() {
                if j != k {
                    for n in nums {
                        assert!(
                            got.contains(n),
                            "cut seg {id} at {len}: lost {n} of seg {}",
                            ids[j]
                        );
                    }
                }
            }
            // In the cut segment, exactly the frames wholly before the cut.
            let whole = cuts.iter().filter(|&&c| c > 0 && c <= len).count();
            let kept: Vec<u64> = per_segment[k]
                .iter()
                .copied()
                .filter(|n| got.contains(n))
                .collect();
            assert_eq!(
                kept,
                per_segment[k][..whole].to_vec(),
                "cut seg {id} at {len}"
            );
            let on_boundary = cuts.contains(&len);
            assert_eq!(
                rep.is_clean(),
                on_boundary,
                "cut seg {id} at {len}: {rep:?}"
            );
            if !on_boundary {
                if k + 1 == ids.len() {
                    assert!(rep.truncated_bytes > 0, "{rep:?}");
                } else {
                    assert_eq!(rep.skipped[0].segment, id);
                    assert_eq!(rep.skipped[0].reason, SkipReason::Truncated);
                }
            }
        }
    }
}

#[test]
fn flipped_bytes_lose_only_the_record_they_hit() {
    let base = build(30);
    for &id in &base.segment_ids() {
        let full = base.segment(id).unwrap();
        let cuts = boundaries(&full);
        for at in 0..full.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut bad = full.clone();
                bad[at] ^= mask;
                let mem = base.snapshot();
                mem.set_segment(id, bad);
                let (got, rep) = open_and_drain(mem, 30);
                assert!(!rep.is_clean(), "flip seg {id} at {at} went unnoticed");
                assert_eq!(
                    got.len(),
                    29,
                    "flip seg {id} at {at} ^{mask:#x}: {got:?} {rep:?}"
                );
                let frame_start = *cuts.iter().filter(|&&c| c <= at).max().unwrap();
                let reported = rep.truncated_bytes > 0
                    || rep
                        .skipped
                        .iter()
                        .any(|s| s.segment == id && s.offset == frame_start as u64);
                assert!(reported, "flip seg {id} at {at}: {rep:?}");
            }
        }
    }
}

#[test]
fn damage_met_after_open_is_skipped_and_reported() {
    let base = build(30);
    let mut spool = Spool::open_with(base.clone(), cfg()).unwrap();
    assert!(spool.report().is_clean());
    let id = base.segment_ids()[1];
    let mut bytes = base.segment(id).unwrap();
    bytes[20] ^= 0xFF; // inside the segment's first record
    base.set_segment(id, bytes);
    let mut got = Vec::new();
    while let Some(r) = spool.pop().unwrap() {
        got.push(number(&r).expect("never a damaged record"));
    }
    assert_eq!(got.len(), 29);
    assert!(spool.is_empty(), "len is put right once the reads run dry");
    assert_eq!(spool.report().skipped_total, 1);
    assert_eq!(spool.report().skipped[0].segment, id);
    assert_eq!(spool.report().skipped[0].reason, SkipReason::Checksum);
}

#[test]
fn stray_missing_and_garbage_files_are_tolerated() {
    let base = build(30);
    let ids = base.segment_ids();
    // A missing middle segment: the others are still read.
    let mem = base.snapshot();
    mem.remove_segment(ids[1]);
    let (got, rep) = open_and_drain(mem, 30);
    assert!(!got.is_empty() && got.len() < 30);
    assert!(got.contains(&0) && got.contains(&29), "{got:?}");
    assert!(rep.is_clean(), "a missing file is not damage: {rep:?}");
    // A garbage file and a file of zeros among the segments.
    let mem = base.snapshot();
    mem.set_segment(ids[ids.len() - 1] + 5, vec![0u8; 300]);
    mem.set_segment(
        ids[0] + 100,
        (0..500u32).map(|i| (i * 31 % 251) as u8).collect(),
    );
    let (got, rep) = open_and_drain(mem, 30);
    assert_eq!(got, (0..30).collect::<Vec<_>>());
    assert!(rep.skipped_total >= 1 || rep.truncated_bytes > 0, "{rep:?}");
}

#[test]
fn a_damaged_position_replays_everything() {
    let mem = build(30);
    let mut spool = Spool::open_with(mem.clone(), cfg()).unwrap();
    assert_eq!(spool.remove(10).unwrap(), 10);
    spool.close().unwrap();
    let mut pos = mem.position().unwrap();
    pos[10] ^= 1;
    mem.set_position(Some(pos));
    let (got, rep) = open_and_drain(mem.snapshot(), 30);
    assert_eq!(rep.position, PositionStatus::Invalid);
    // Consumed segments were deleted; what remains is replayed, from before 10.
    assert!(got.first().copied().unwrap() <= 10);
    assert_eq!(*got.last().unwrap(), 29);
    mem.set_position(Some(b"short".to_vec()));
    let (_, rep) = open_and_drain(mem, 30);
    assert_eq!(rep.position, PositionStatus::Invalid);
}

#[test]
fn appending_after_repair_continues_the_log() {
    let base = build(30);
    let id = *base.segment_ids().last().unwrap();
    let full = base.segment(id).unwrap();
    base.set_segment(id, full[..full.len() - 3].to_vec()); // torn tail
    let mut spool = Spool::open_with(base.clone(), cfg()).unwrap();
    assert!(spool.report().truncated_bytes > 0);
    let left = spool.len();
    spool.push_batch((100..110).map(|n| record(n, 12))).unwrap();
    spool.close().unwrap();
    let (got, rep) = open_and_drain(base, 200);
    assert!(rep.is_clean(), "{rep:?}");
    assert_eq!(got.len() as u64, left + 10);
    assert_eq!(got[got.len() - 10..], (100..110).collect::<Vec<_>>()[..]);
}

#[test]
fn real_files_truncated_and_flipped() {
    let dir = TempDir::new("corrupt");
    {
        let mut spool = Spool::open(dir.path(), cfg()).unwrap();
        spool
            .push_batch((0..30).map(|i| record(i, 8 + (i as usize * 7) % 40)))
            .unwrap();
        spool.close().unwrap();
    }
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    let newest = segs.last().unwrap().clone();
    let original = std::fs::read(&newest).unwrap();
    let first = segs[0].clone();
    let first_bytes = std::fs::read(&first).unwrap();
    for step in 0..original.len().min(40) {
        // Tear the newest, flip a byte in the oldest.
        std::fs::write(&newest, &original[..original.len() - step]).unwrap();
        let mut flipped = first_bytes.clone();
        flipped[(step * 13) % first_bytes.len()] ^= 0x5A;
        std::fs::write(&first, &flipped).unwrap();
        let mut spool = Spool::open(dir.path(), cfg()).unwrap();
        // Read without consuming, so every round sees every segment.
        let got: Vec<u64> = spool
            .read(usize::MAX)
            .unwrap()
            .iter()
            .map(|r| number(r).expect("never a damaged record"))
            .collect();
        // The oldest segment is sealed, so open trusts it unread: the flip is
        // found when it is read, and reported then.
        assert!(!spool.report().is_clean(), "step {step}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert!(got.len() >= 25, "{got:?}");
        drop(spool);
        std::fs::write(&first, &first_bytes).unwrap();
    }
}
