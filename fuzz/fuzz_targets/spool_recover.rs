//! Spool recovery from damaged segment and position bytes.
//!
//! Builds a valid spool in a `MemStorage` from fuzz-chosen pushes, pops and
//! flushes (checked against a model queue as it goes), closes it, applies
//! fuzz-chosen damage to the segments and the position (overwrites, bit
//! flips, truncations, removals, appended garbage, stray segments, copies,
//! raw or forged positions), then reopens and drains it. Checked:
//! - open succeeds (damage is never a reason to refuse), unless a stray
//!   segment was given an arbitrary id (a name the spool never writes may be
//!   refused, as issue 13 asks);
//! - every record returned was pushed, in push order, none twice, and the
//!   drain ends (at most as many records as were pushed);
//! - every record of a segment the damage left alone comes back, unless the
//!   read position says it was consumed;
//! - the reopened spool still works: a record pushed after the drain is
//!   popped, and after another close and open it is the only one left.
//!
//! A valid frame can be forged (libFuzzer solves the CRC comparison), and a
//! forged frame is data the spool must accept: when the damaged bytes hold
//! a valid frame that was not written by the spool, the content checks are
//! skipped and only "no crash, no hang, bounded" remains.

#![no_main]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use spillway::spool::{MemStorage, Spool, SpoolConfig, SpoolError, SyncMode};
use spillway_fuzz::check_subsequence;

/// Longest record; small, so frames are short and segments hold several.
const MAX_RECORD: usize = 200;
const HEADER: usize = 16;

#[derive(Arbitrary, Debug)]
enum Op {
    Push(Vec<u8>),
    Pop,
    Flush,
}

#[derive(Arbitrary, Debug)]
enum SegmentId {
    /// An existing segment, by index (modulo the count).
    Existing(u8),
    BelowFirst(u8),
    AboveLast(u8),
    /// Any id at all: a name the spool may refuse at open.
    Exact(u64),
}

#[derive(Arbitrary, Debug)]
enum Damage {
    Overwrite {
        seg: u8,
        at: u16,
        bytes: Vec<u8>,
    },
    Flip {
        seg: u8,
        at: u16,
        bit: u8,
    },
    Truncate {
        seg: u8,
        at: u16,
    },
    Append {
        seg: u8,
        bytes: Vec<u8>,
    },
    /// Copies bytes within a segment (say, a frame over its neighbour).
    CopyWithin {
        seg: u8,
        from: u16,
        len: u16,
        to: u16,
    },
    Remove {
        seg: u8,
    },
    Stray {
        id: SegmentId,
        bytes: Vec<u8>,
    },
    CopySegment {
        from: u8,
        to: SegmentId,
    },
    PositionRaw(Vec<u8>),
    PositionForged {
        seq: u64,
        segment: u64,
        offset: u64,
    },
    PositionRemove,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// `segment_bytes` is 64 + 4 × this.
    segment_size: u8,
    /// Write every push through (memory_bytes 0) or keep 256 bytes in memory.
    write_through: bool,
    ops: Vec<Op>,
    damage: Vec<Damage>,
}

fn config(input: &Input) -> SpoolConfig {
    SpoolConfig {
        max_bytes: 256 << 10,
        segment_bytes: 64 + 4 * u64::from(input.segment_size),
        max_record: MAX_RECORD,
        sync: SyncMode::Batch,
        memory_bytes: if input.write_through { 0 } else { 256 },
        ..SpoolConfig::default()
    }
}

/// The frames of an intact segment, in order: (seq, payload).
fn frames(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 0;
    while let Some((seq, payload)) = frame_at(bytes, off) {
        off += HEADER + payload.len();
        out.push((seq, payload));
    }
    assert_eq!(off, bytes.len(), "an undamaged segment is whole frames");
    out
}

/// The valid frame starting at `off`, if there is one.
fn frame_at(bytes: &[u8], off: usize) -> Option<(u64, Vec<u8>)> {
    let head = bytes.get(off..off + HEADER)?;
    let crc = u32::from_le_bytes(head[0..4].try_into().ok()?);
    let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
    let seq = u64::from_le_bytes(head[8..16].try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let body = bytes.get(off + 4..off + HEADER + len)?;
    (crc32c::crc32c(body) == crc).then(|| (seq, body[12..].to_vec()))
}

/// The read position's `seq` if `bytes` are a valid position file (magic,
/// fields, CRC32C; see src/spool/position.rs).
/// The consumed-below sequence number a valid position file holds: version
/// 1 (36 bytes) or version 2 (36 bytes, 48 per seal, then the CRC), the
/// layouts `src/spool/position.rs` documents.
fn position_seq(bytes: &[u8]) -> Option<u64> {
    let body = match bytes.get(0..8)? {
        b"SPWPOS01" if bytes.len() == 36 => 32,
        b"SPWPOS02" => {
            let n = u32::from_le_bytes(bytes.get(32..36)?.try_into().ok()?) as usize;
            let body = 36usize.checked_add(n.checked_mul(48)?)?;
            if bytes.len() != body + 4 {
                return None;
            }
            body
        }
        _ => return None,
    };
    let crc = u32::from_le_bytes(bytes[body..body + 4].try_into().ok()?);
    (crc32c::crc32c(&bytes[0..body]) == crc)
        .then(|| u64::from_le_bytes(bytes[8..16].try_into().unwrap()))
}

fn forged_position(seq: u64, segment: u64, offset: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(36);
    b.extend_from_slice(b"SPWPOS01");
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&segment.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn pick(ids: &[u64], i: u8) -> Option<u64> {
    (!ids.is_empty()).then(|| ids[usize::from(i) % ids.len()])
}

fn resolve(ids: &[u64], id: &SegmentId) -> Option<u64> {
    let first = ids.first().copied().unwrap_or(1);
    let last = ids.last().copied().unwrap_or(0);
    match *id {
        SegmentId::Existing(i) => pick(ids, i),
        SegmentId::BelowFirst(d) => first.checked_sub(u64::from(d) + 1),
        SegmentId::AboveLast(d) => last.checked_add(u64::from(d) + 1),
        SegmentId::Exact(id) => Some(id),
    }
}

/// Pops until empty; at most `limit` records, then it is a failure.
fn drain(spool: &mut Spool, limit: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    loop {
        match spool.pop() {
            Ok(Some(r)) => {
                got.push(r);
                assert!(
                    got.len() <= limit,
                    "the damaged spool returned more than the {limit} records ever pushed"
                );
            }
            Ok(None) => return got,
            Err(e) => panic!("pop from a recovered spool failed: {e}"),
        }
    }
}

fuzz_target!(|input: Input| {
    let cfg = config(&input);
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg.clone()).expect("open an empty spool");

    // Build: every push, pop and flush checked against a model queue.
    let mut pushed: Vec<Vec<u8>> = Vec::new();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    for op in input.ops.iter().take(400) {
        match op {
            Op::Push(r) => {
                let r = r[..r.len().min(MAX_RECORD)].to_vec();
                match spool.push(r.clone()) {
                    Ok(()) => {
                        pushed.push(r.clone());
                        model.push_back(r);
                    }
                    Err(SpoolError::Full(_)) => {}
                    Err(e) => panic!("push failed on a healthy store: {e}"),
                }
            }
            Op::Pop => {
                assert_eq!(
                    spool.pop().expect("pop on a healthy store"),
                    model.pop_front()
                );
            }
            Op::Flush => spool.flush().expect("flush on a healthy store"),
        }
        assert_eq!(spool.len(), model.len() as u64);
    }
    spool.close().expect("close on a healthy store");
    drop(spool);

    // What the spool left: every frame, per segment.
    let ids = mem.segment_ids();
    let before: BTreeMap<u64, Vec<(u64, Vec<u8>)>> = ids
        .iter()
        .map(|&id| (id, frames(&mem.segment(id).unwrap_or_default())))
        .collect();
    let written: BTreeSet<(u64, Vec<u8>)> = before.values().flatten().cloned().collect();

    // Damage.
    let mut touched = BTreeSet::new();
    let mut copied = false;
    let mut odd_name = false;
    for d in input.damage.iter().take(16) {
        let ids = mem.segment_ids();
        match d {
            Damage::Overwrite { seg, at, bytes } => {
                if let Some(id) = pick(&ids, *seg) {
                    let mut b = mem.segment(id).unwrap_or_default();
                    let at = usize::from(*at).min(b.len());
                    let end = (at + bytes.len()).min(b.len());
                    b[at..end].copy_from_slice(&bytes[..end - at]);
                    mem.set_segment(id, b);
                    touched.insert(id);
                }
            }
            Damage::Flip { seg, at, bit } => {
                if let Some(id) = pick(&ids, *seg) {
                    let mut b = mem.segment(id).unwrap_or_default();
                    if !b.is_empty() {
                        let at = usize::from(*at) % b.len();
                        b[at] ^= 1 << (bit % 8);
                        mem.set_segment(id, b);
                        touched.insert(id);
                    }
                }
            }
            Damage::Truncate { seg, at } => {
                if let Some(id) = pick(&ids, *seg) {
                    let mut b = mem.segment(id).unwrap_or_default();
                    b.truncate(usize::from(*at));
                    mem.set_segment(id, b);
                    touched.insert(id);
                }
            }
            Damage::Append { seg, bytes } => {
                if let Some(id) = pick(&ids, *seg) {
                    let mut b = mem.segment(id).unwrap_or_default();
                    b.extend_from_slice(bytes);
                    mem.set_segment(id, b);
                    touched.insert(id);
                }
            }
            Damage::CopyWithin { seg, from, len, to } => {
                if let Some(id) = pick(&ids, *seg) {
                    let mut b = mem.segment(id).unwrap_or_default();
                    let from = usize::from(*from).min(b.len());
                    let to = usize::from(*to).min(b.len());
                    let len = usize::from(*len).min(b.len() - from).min(b.len() - to);
                    b.copy_within(from..from + len, to);
                    mem.set_segment(id, b);
                    touched.insert(id);
                    copied = true;
                }
            }
            Damage::Remove { seg } => {
                if let Some(id) = pick(&ids, *seg) {
                    mem.remove_segment(id);
                    touched.insert(id);
                }
            }
            Damage::Stray { id, bytes } => {
                if let Some(to) = resolve(&ids, id) {
                    odd_name |= matches!(id, SegmentId::Exact(_));
                    mem.set_segment(to, bytes.clone());
                    touched.insert(to);
                }
            }
            Damage::CopySegment { from, to } => {
                if let (Some(from), Some(to_id)) = (pick(&ids, *from), resolve(&ids, to)) {
                    odd_name |= matches!(to, SegmentId::Exact(_));
                    let to = to_id;
                    mem.set_segment(to, mem.segment(from).unwrap_or_default());
                    touched.insert(to);
                    copied = true;
                }
            }
            Damage::PositionRaw(bytes) => mem.set_position(Some(bytes.clone())),
            Damage::PositionForged {
                seq,
                segment,
                offset,
            } => mem.set_position(Some(forged_position(*seq, *segment, *offset))),
            Damage::PositionRemove => mem.set_position(None),
        }
    }

    // A valid frame the spool never wrote is data it must accept: then only
    // "no crash, no hang, bounded" is checked.
    let forged = mem.segment_ids().into_iter().any(|id| {
        let b = mem.segment(id).unwrap_or_default();
        (0..b.len()).any(|off| frame_at(&b, off).is_some_and(|f| !written.contains(&f)))
    });

    let consumed_below = mem
        .position()
        .as_deref()
        .and_then(position_seq)
        .unwrap_or(0);
    let must_return: Vec<Vec<u8>> = before
        .iter()
        .filter(|(id, _)| !touched.contains(id))
        .flat_map(|(_, fs)| fs.iter())
        .filter(|(seq, _)| *seq >= consumed_below)
        .map(|(_, payload)| payload.clone())
        .collect();

    // Reopen and drain.
    let mut spool = match Spool::open_with(mem.clone(), cfg.clone()) {
        Ok(s) => s,
        Err(_) if odd_name => return,
        // A segment name outside the ids the spool writes (0, or beyond its
        // range) is refused at open by design (issue 13, defect 1).
        Err(e) if e.to_string().contains("not a segment this spool wrote") => return,
        Err(e) => panic!("open refused a damaged spool: {e}"),
    };
    // Forged frames may add records: bound the drain by what the bytes can hold.
    let room: usize = mem
        .segment_ids()
        .iter()
        .map(|&id| mem.segment(id).map_or(0, |b| b.len()))
        .sum();
    let limit = if forged {
        pushed.len() + room / HEADER
    } else {
        pushed.len()
    };
    let got = drain(&mut spool, limit);
    if !forged {
        if let Err(e) = check_subsequence(&got, &pushed) {
            panic!("recovered records are not what was pushed: {e}");
        }
        if !copied {
            if let Err(e) = check_subsequence(&must_return, &got) {
                panic!("a record of an undamaged segment was lost: {e}");
            }
        }
    }

    // Still a working spool, and what was drained stays consumed.
    let marker = b"after recovery".to_vec();
    spool.push(marker.clone()).expect("push after recovery");
    spool.close().expect("close after recovery");
    drop(spool);
    let mut spool = Spool::open_with(mem, cfg).expect("reopen after recovery");
    let again = drain(&mut spool, limit + 1);
    if !forged {
        assert_eq!(
            again,
            vec![marker],
            "after a full drain, only the new record is left"
        );
    }
});
