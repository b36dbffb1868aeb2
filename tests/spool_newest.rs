//! Newest-first bulk calls: `read_newest(n)` returns what `n` calls of
//! `pop_newest` would (without taking it) and `remove_newest(n)` takes it,
//! whether the records are in memory, on disk, or both, across reopens.

mod spool_support;

use std::collections::VecDeque;

use spillway::spool::{MemStorage, Spool, SpoolConfig, SyncMode};
use spool_support::{number, record, Rng};

fn numbers(records: &[Vec<u8>]) -> Vec<u64> {
    records
        .iter()
        .map(|r| number(r).expect("an intact record"))
        .collect()
}

#[test]
fn newest_first_bulk_calls_span_memory_and_disk() {
    let cfg = SpoolConfig {
        max_bytes: 1 << 20,
        segment_bytes: 256,
        max_record: 1024,
        sync: SyncMode::Batch,
        memory_bytes: 100,
        ..SpoolConfig::default()
    };
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
    spool.push_batch((0..100).map(|n| record(n, 30))).unwrap();
    assert_eq!(
        numbers(&spool.read_newest(5).unwrap()),
        vec![99, 98, 97, 96, 95]
    );
    let all: Vec<u64> = (0..100).rev().collect();
    assert_eq!(numbers(&spool.read_newest(1000).unwrap()), all);
    assert_eq!(spool.len(), 100, "reading took nothing");
    assert_eq!(spool.remove_newest(3).unwrap(), 3);
    assert_eq!(numbers(&spool.read_newest(2).unwrap()), vec![96, 95]);
    // Oldest records read ahead into memory are the last ones returned.
    assert_eq!(numbers(&[spool.pop().unwrap().unwrap()]), vec![0]);
    let all: Vec<u64> = (1..97).rev().collect();
    assert_eq!(numbers(&spool.read_newest(usize::MAX).unwrap()), all);
    spool.close().unwrap();
    // After a reopen everything is on disk.
    let mut spool = Spool::open_with(mem, cfg).unwrap();
    assert_eq!(numbers(&spool.read_newest(usize::MAX).unwrap()), all);
    assert_eq!(spool.remove_newest(90).unwrap(), 90);
    assert_eq!(
        numbers(&spool.read_newest(10).unwrap()),
        vec![6, 5, 4, 3, 2, 1]
    );
    assert_eq!(spool.remove_newest(10).unwrap(), 6);
    assert!(spool.is_empty());
    assert!(spool.read_newest(3).unwrap().is_empty());
}

#[test]
fn newest_first_bulk_calls_agree_with_a_model() {
    for seed in 0..24u64 {
        let mut rng = Rng(seed);
        let cfg = SpoolConfig {
            max_bytes: 1 << 20,
            segment_bytes: [64, 256, 4096][seed as usize % 3],
            max_record: 400,
            sync: SyncMode::Batch,
            memory_bytes: [0, 60, 1000][(seed / 3) as usize % 3],
            ..SpoolConfig::default()
        };
        let mem = MemStorage::new();
        let mut spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
        let mut model: VecDeque<u64> = VecDeque::new();
        let mut next = 0u64;
        for step in 0..300 {
            let ctx = format!("seed {seed} step {step}");
            let k = rng.below(12) as usize;
            match rng.below(9) {
                0 | 1 => {
                    let batch: Vec<Vec<u8>> = (0..k as u64)
                        .map(|i| record(next + i, 8 + rng.below(120) as usize))
                        .collect();
                    spool.push_batch(batch).unwrap();
                    model.extend(next..next + k as u64);
                    next += k as u64;
                }
                2 => {
                    let got = spool.pop().unwrap().map(|r| number(&r).unwrap());
                    assert_eq!(got, model.pop_front(), "{ctx}");
                }
                3 => {
                    let got = spool.pop_newest().unwrap().map(|r| number(&r).unwrap());
                    assert_eq!(got, model.pop_back(), "{ctx}");
                }
                4 | 5 => {
                    let want: Vec<u64> = model.iter().rev().take(k).copied().collect();
                    assert_eq!(numbers(&spool.read_newest(k).unwrap()), want, "{ctx}");
                }
                6 => {
                    let removed = spool.remove_newest(k).unwrap();
                    assert_eq!(removed, k.min(model.len()), "{ctx}");
                    for _ in 0..removed {
                        model.pop_back();
                    }
                }
                7 => spool.flush().unwrap(),
                _ => {
                    spool.close().unwrap();
                    spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
                }
            }
            assert_eq!(spool.len(), model.len() as u64, "{ctx}");
        }
        let all: Vec<u64> = model.iter().rev().copied().collect();
        assert_eq!(numbers(&spool.read_newest(usize::MAX).unwrap()), all);
    }
}
