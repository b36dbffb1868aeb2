//! Property tests on the crash-simulating in-memory storage: after any
//! simulated crash, what reopens is in order, holds everything that was
//! flushed, nothing that was removed before the last flush, and nothing that
//! was never pushed.

mod spool_support;

use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;
use spillway::spool::{Crash, MemStorage, Spool, SpoolConfig, SpoolError, SyncMode};
use spool_support::{number, record};

#[derive(Debug, Clone)]
enum Op {
    Push(usize),
    PushBatch(u8, usize),
    Pop,
    PopNewest,
    Peek,
    PeekNewest,
    Read(u8),
    Remove(u8),
    Flush,
    Reopen,
    Crash(u64, bool, bool, bool),
    FailSyncs(u8),
    FailWrites(u8),
    MaxFileSize(Option<u64>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..300).prop_map(Op::Push),
        3 => (1u8..20, 0usize..120).prop_map(|(k, l)| Op::PushBatch(k, l)),
        3 => Just(Op::Pop),
        2 => Just(Op::PopNewest),
        1 => Just(Op::Peek),
        1 => Just(Op::PeekNewest),
        1 => (0u8..30).prop_map(Op::Read),
        1 => (0u8..10).prop_map(Op::Remove),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        2 => (any::<u64>(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(s, t, f, d)| Op::Crash(s, t, f, d)),
    ]
}

fn fault_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => op(),
        1 => (1u8..3).prop_map(Op::FailSyncs),
        1 => (1u8..3).prop_map(Op::FailWrites),
        1 => prop_oneof![Just(None), (16u64..600).prop_map(Some)].prop_map(Op::MaxFileSize),
    ]
}

fn config() -> impl Strategy<Value = SpoolConfig> {
    (
        prop_oneof![Just(64u64), Just(200), Just(1024), Just(1 << 16)],
        prop_oneof![Just(0usize), Just(60), Just(700), Just(1 << 20)],
        prop_oneof![
            Just(SyncMode::Always),
            Just(SyncMode::Batch),
            Just(SyncMode::Never)
        ],
        prop_oneof![Just(4096u64), Just(1 << 20)],
    )
        .prop_map(
            |(segment_bytes, memory_bytes, sync, max_bytes)| SpoolConfig {
                max_bytes: max_bytes.max(segment_bytes),
                segment_bytes,
                max_record: 400,
                sync,
                memory_bytes,
                ..SpoolConfig::default()
            },
        )
}

struct Model {
    live: VecDeque<u64>,
    accepted: BTreeSet<u64>,
    /// Must survive any crash.
    durable: BTreeSet<u64>,
    /// Removed before the last successful flush: must never come back.
    removed_durably: BTreeSet<u64>,
    removed_since_flush: BTreeSet<u64>,
    next: u64,
    /// With disk faults, only removals from the old end are checked to stay
    /// removed: a record taken from the new end out of a segment whose fsync
    /// failed is cut from the log but may still be in the file (at-least-once).
    faults: bool,
}

impl Model {
    fn all_durable(&mut self) {
        self.durable = self.live.iter().copied().collect();
    }
    fn flushed(&mut self) {
        self.all_durable();
        self.removed_durably
            .extend(std::mem::take(&mut self.removed_since_flush));
    }
    fn removed(&mut self, n: u64, oldest: bool) {
        self.durable.remove(&n);
        if oldest || !self.faults {
            self.removed_since_flush.insert(n);
        }
    }
}

fn contents(spool: &mut Spool) -> Vec<u64> {
    let all = spool.read(usize::MAX).unwrap();
    all.iter()
        .map(|r| number(r).unwrap_or_else(|| panic!("a record that was never written: {r:?}")))
        .collect()
}

/// What must hold after a crash; then the model restarts from what reopened.
fn check_reopened(spool: &mut Spool, m: &mut Model, crashed: bool) -> Result<(), TestCaseError> {
    let got = contents(spool);
    prop_assert_eq!(spool.len(), got.len() as u64);
    prop_assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "out of order: {:?}",
        got
    );
    let set: BTreeSet<u64> = got.iter().copied().collect();
    prop_assert!(set.is_subset(&m.accepted), "never pushed: {:?}", got);
    let lost: Vec<_> = m.durable.difference(&set).collect();
    prop_assert!(
        lost.is_empty(),
        "lost flushed records {:?}; got {:?}",
        lost,
        got
    );
    let back: Vec<_> = m.removed_durably.intersection(&set).collect();
    prop_assert!(back.is_empty(), "removed before flush, back: {:?}", back);
    m.live = got.into_iter().collect();
    if crashed {
        // After a crash, what is there is what the disk holds.
        m.all_durable();
    }
    m.removed_since_flush.clear();
    Ok(())
}

fn run(cfg: SpoolConfig, ops: Vec<Op>, faults: bool) -> Result<(), TestCaseError> {
    let mut mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
    let mut m = Model {
        live: VecDeque::new(),
        accepted: BTreeSet::new(),
        durable: BTreeSet::new(),
        removed_durably: BTreeSet::new(),
        removed_since_flush: BTreeSet::new(),
        next: 0,
        faults,
    };
    let mut crashed = false;
    for op in ops {
        match op {
            Op::Push(len) => {
                let n = m.next;
                m.next += 1;
                match spool.push(record(n, len)) {
                    Ok(()) => {
                        m.live.push_back(n);
                        m.accepted.insert(n);
                        if cfg.sync == SyncMode::Always {
                            m.all_durable();
                        }
                    }
                    Err(SpoolError::Full(r)) => prop_assert_eq!(number(&r), Some(n)),
                    Err(SpoolError::NotStored { record, .. }) if faults => {
                        prop_assert_eq!(number(&record), Some(n));
                        m.accepted.insert(n); // its frame may be on disk
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("push: {e}"))),
                }
            }
            Op::PushBatch(k, len) => {
                let first = m.next;
                m.next += u64::from(k);
                let mut it = (first..first + u64::from(k)).map(|n| record(n, len + n as usize % 7));
                match spool.push_batch(&mut it) {
                    Ok(taken) => {
                        prop_assert_eq!(taken, usize::from(k));
                        for n in first..first + u64::from(k) {
                            m.live.push_back(n);
                            m.accepted.insert(n);
                        }
                        if cfg.sync != SyncMode::Never {
                            m.all_durable();
                        }
                    }
                    Err(SpoolError::Full(r)) => {
                        let stopped = number(&r).unwrap();
                        for n in first..stopped {
                            m.live.push_back(n);
                            m.accepted.insert(n);
                        }
                    }
                    Err(SpoolError::NotStored { record, .. }) if faults => {
                        let stopped = number(&record).unwrap();
                        for n in first..stopped {
                            m.live.push_back(n);
                            m.accepted.insert(n);
                        }
                        m.accepted.insert(stopped);
                    }
                    Err(SpoolError::Io(_)) if faults => {
                        // All taken; the closing sync failed: not durable.
                        for n in first..first + u64::from(k) {
                            m.live.push_back(n);
                            m.accepted.insert(n);
                        }
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("push_batch: {e}"))),
                }
            }
            Op::Pop => {
                let got = spool.pop().unwrap().map(|r| number(&r).unwrap());
                let want = m.live.pop_front();
                prop_assert_eq!(got, want);
                if let Some(n) = want {
                    m.removed(n, true);
                }
            }
            Op::PopNewest => {
                let got = spool.pop_newest().unwrap().map(|r| number(&r).unwrap());
                let want = m.live.pop_back();
                prop_assert_eq!(got, want);
                if let Some(n) = want {
                    m.removed(n, false);
                }
            }
            Op::Peek => {
                let got = spool.peek().unwrap().map(|r| number(r).unwrap());
                prop_assert_eq!(got, m.live.front().copied());
            }
            Op::PeekNewest => {
                let got = spool.peek_newest().unwrap().map(|r| number(r).unwrap());
                prop_assert_eq!(got, m.live.back().copied());
            }
            Op::Read(n) => {
                let got: Vec<u64> = spool
                    .read(usize::from(n))
                    .unwrap()
                    .iter()
                    .map(|r| number(r).unwrap())
                    .collect();
                let want: Vec<u64> = m.live.iter().take(usize::from(n)).copied().collect();
                prop_assert_eq!(got, want);
            }
            Op::Remove(n) => {
                let removed = spool.remove(usize::from(n)).unwrap();
                prop_assert_eq!(removed, usize::from(n).min(m.live.len()));
                for _ in 0..removed {
                    if let Some(x) = m.live.pop_front() {
                        m.removed(x, true);
                    }
                }
            }
            Op::Flush => match spool.flush() {
                Ok(()) => m.flushed(),
                Err(SpoolError::Io(_)) if faults => {}
                Err(e) => return Err(TestCaseError::fail(format!("flush: {e}"))),
            },
            Op::FailSyncs(n) => mem.fail_next_syncs(u32::from(n)),
            Op::FailWrites(n) => mem.fail_next_writes(u32::from(n)),
            Op::MaxFileSize(max) => mem.set_max_file_size(max),
            Op::Reopen if faults => {
                // What a failed fsync left in the files is unknown: check as
                // after a crash, against what the files hold now.
                if spool.close().is_ok() {
                    m.flushed();
                }
                mem.fail_next_syncs(0);
                mem.fail_next_writes(0);
                mem.set_max_file_size(None);
                spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
                check_reopened(&mut spool, &mut m, false)?;
            }
            Op::Reopen => {
                spool.close().unwrap();
                m.flushed();
                spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
                // Damage a crash left in older segments is reported at every open.
                if !crashed {
                    prop_assert!(spool.report().is_clean(), "{:?}", spool.report());
                }
                let got = contents(&mut spool);
                prop_assert_eq!(&got, &m.live.iter().copied().collect::<Vec<_>>());
            }
            Op::Crash(seed, tear, flip, dir) => {
                let after = mem.crash(Crash {
                    seed,
                    tear,
                    flip,
                    dir,
                });
                drop(spool); // its best-effort flush meets the crashed store
                prop_assert!(mem.violations().is_empty(), "{:?}", mem.violations());
                mem = after;
                crashed = true;
                spool = Spool::open_with(mem.clone(), cfg.clone()).unwrap();
                check_reopened(&mut spool, &mut m, true)?;
            }
        }
        prop_assert_eq!(spool.len(), m.live.len() as u64);
    }
    prop_assert!(mem.violations().is_empty(), "{:?}", mem.violations());
    Ok(())
}

proptest! {
    // PROPTEST_CASES raises the count for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    #[test]
    fn crash_recovery_keeps_what_was_flushed(cfg in config(), ops in prop::collection::vec(op(), 1..80)) {
        run(cfg, ops, false)?;
    }

    #[test]
    fn failing_disks_never_lose_flushed_records(cfg in config(), ops in prop::collection::vec(fault_op(), 1..80)) {
        run(cfg, ops, true)?;
    }
}
