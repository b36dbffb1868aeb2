//! Opening a spool: scan every segment, cut a torn tail, skip and report
//! damage, apply the read-position hint, delete what was consumed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::time::Instant;

use super::config::SpoolConfig;
use super::error::{IoError, SpoolError};
use super::frame;
use super::position::{Position, Seal};
use super::report::{OpenReport, PositionStatus, SkipReason, Skipped};
use super::scan::{self, Item, ReadBuf, Scan};
use super::segment::{Meta, Pos, Segment, MAX_ID};
use super::storage::Storage;
use super::Spool;

/// Read size while scanning at open: large, to go at the speed of the disk.
const OPEN_CHUNK: usize = 4 << 20;

/// How far ahead open verifies checksums in one go.
const VERIFY_AHEAD: usize = 1 << 20;

/// A run of skipped bytes being gathered, merged while contiguous.
struct Gap {
    off: u64,
    end: u64,
    reason: SkipReason,
}

impl Spool {
    pub(super) fn recover(
        mut storage: Box<dyn Storage>,
        config: SpoolConfig,
    ) -> Result<Spool, SpoolError> {
        let mut ids = storage.list()?;
        ids.sort_unstable();
        ids.dedup();
        // Every storage is held to this, not only a directory: an id the
        // spool never writes would break the arithmetic and order of ids.
        if let Some(&bad) = ids.iter().find(|&&id| !(1..=MAX_ID).contains(&id)) {
            return Err(IoError::new(
                "open",
                format!("{bad:016x}.seg"),
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not a segment this spool wrote (its ids run from 1 to {MAX_ID:#x})"),
                ),
            )
            .into());
        }
        let mut report = OpenReport {
            segments: ids.len(),
            ..OpenReport::default()
        };
        let hint = match storage.load_position() {
            Ok(Some(bytes)) => {
                let p = Position::decode(&bytes);
                if p.is_none() {
                    report.position = PositionStatus::Invalid;
                }
                p
            }
            Ok(None) => None,
            // Unreadable: a hint is only a hint; replaying is safe.
            Err(_) => {
                report.position = PositionStatus::Invalid;
                None
            }
        };
        let consumed_below = hint.as_ref().map_or(0, |p| p.seq);
        let seals: HashMap<u64, Seal> = hint
            .as_ref()
            .map(|p| p.seals.iter().map(|s| (s.id, *s)).collect())
            .unwrap_or_default();

        let mut rb = ReadBuf::new(OPEN_CHUNK);
        let mut segments = BTreeMap::new();
        let mut last_seq: Option<u64> = None;
        let mut first_live: Option<(Pos, u64)> = None;
        let mut live = 0u64;
        let mut disk_bytes = 0u64;
        let mut dir_dirty = false;

        // A segment whose first record has a sequence number an earlier
        // segment also holds is a rewrite after a failed fsync (or new data
        // after a cut that a crash undid): from that number on, it supersedes
        // the earlier copies, which may be torn or stale.
        let mut sizes = Vec::with_capacity(ids.len());
        let mut firsts = Vec::with_capacity(ids.len());
        // A sealed segment that still matches its seal is not read: its
        // seal says what the scan would find (see position.rs).
        let mut trusted: Vec<Option<Seal>> = Vec::with_capacity(ids.len());
        let mut used_seals = Vec::new();
        let mut probe = ReadBuf::new(64 << 10);
        for &id in &ids {
            let size = storage.size(id)?;
            let seal = match seals.get(&id) {
                Some(s) if s.end == size && last_frame_matches(&mut *storage, s, &config)? => {
                    Some(*s)
                }
                _ => None,
            };
            trusted.push(seal);
            if let Some(s) = seal {
                sizes.push(size);
                firsts.push(Some(s.first_seq));
                continue;
            }
            let mut scan = Scan {
                st: &mut *storage,
                rb: &mut probe,
                seg: id,
                limit: size,
                max_record: config.max_record,
            };
            let mut pos = 0;
            let mut first = None;
            while let Some(item) = scan.next_item(pos, None)? {
                match item {
                    Item::Record { seq, .. } => {
                        first = Some(seq);
                        break;
                    }
                    Item::Junk { end, .. } => pos = end,
                }
            }
            sizes.push(size);
            firsts.push(first);
        }
        let mut superseded_from = vec![u64::MAX; ids.len()];
        let mut lowest = u64::MAX;
        for i in (0..ids.len()).rev() {
            superseded_from[i] = lowest;
            if let Some(f) = firsts[i] {
                lowest = lowest.min(f);
            }
        }

        for (i, &id) in ids.iter().enumerate() {
            let newest = i + 1 == ids.len();
            let size = sizes[i];
            // Trusted only where it fits the log around it (otherwise the
            // scan sorts out copies and order), and not where the read
            // position falls inside it (the scan finds the first live record).
            if let Some(s) = trusted[i].filter(|s| {
                last_seq.is_none_or(|l| s.first_seq > l)
                    && s.last_seq < superseded_from[i]
                    && !(s.first_seq < consumed_below && s.last_seq >= consumed_below)
            }) {
                if s.last_seq < consumed_below {
                    report.consumed += s.count;
                } else {
                    live += s.count;
                    first_live.get_or_insert((Pos { seg: id, off: 0 }, s.first_seq));
                }
                last_seq = Some(s.last_seq);
                let mut seg = Segment::new_empty();
                seg.end = s.end;
                seg.size = s.end;
                // The seal was saved after the segment was synced.
                seg.synced = s.end;
                seg.sealed = true;
                seg.meta = Some(Meta {
                    count: s.count,
                    first_seq: s.first_seq,
                    last_seq: s.last_seq,
                    last_off: s.last_off,
                });
                disk_bytes += size;
                report.sealed_segments += 1;
                segments.insert(id, seg);
                used_seals.push(s);
                continue;
            }
            let mut seg = Segment::new_empty();
            let mut clean = true;
            let mut pos = 0;
            let mut good_end = 0;
            let mut gap: Option<Gap> = None;
            let mut items: Vec<Item> = Vec::new();
            'scan: loop {
                // Fast path: a stretch of intact frames ahead, checked in one
                // go (checksums on two threads when it is large). Otherwise
                // one item through the careful path, which also finds the
                // end of damage. Once a segment has shown damage, only the
                // careful path: it never hashes a byte twice, where the
                // fast path would hash again what a resync went over.
                items.clear();
                if pos < size && !rb.damaged(id) {
                    let b = rb.fetch(&mut *storage, id, pos, VERIFY_AHEAD, size)?;
                    let b = &b[..b.len().min(VERIFY_AHEAD)];
                    let mut off = pos;
                    for (seq, len) in scan::verified_frames(b, config.max_record) {
                        items.push(Item::Record { off, seq, len });
                        off += frame::frame_len(len as usize);
                    }
                }
                if items.is_empty() {
                    let mut scan = Scan {
                        st: &mut *storage,
                        rb: &mut rb,
                        seg: id,
                        limit: size,
                        max_record: config.max_record,
                    };
                    match scan.next_item(pos, last_seq)? {
                        Some(item) => items.push(item),
                        None => break 'scan,
                    }
                }
                for &item in &items {
                    let (off, end, bad) = match item {
                        Item::Record { off, seq, len } => {
                            let end = off + frame::frame_len(len as usize);
                            if seq >= superseded_from[i] || last_seq.is_some_and(|l| seq <= l) {
                                (off, end, Some(SkipReason::Duplicate { seq }))
                            } else {
                                last_seq = Some(seq);
                                seg.note_frame(off, seq);
                                if seq >= consumed_below {
                                    live += 1;
                                    first_live.get_or_insert((Pos { seg: id, off }, seq));
                                } else {
                                    report.consumed += 1;
                                }
                                (off, end, None)
                            }
                        }
                        Item::Junk { off, end, reason } => (off, end, Some(reason)),
                    };
                    pos = end;
                    clean &= bad.is_none();
                    let dup = matches!(bad, Some(SkipReason::Duplicate { .. }));
                    // A run of damage and a run of second copies are kept apart:
                    // a copy is an intact frame, and the tail is cut only after
                    // the last intact frame (the copy may be the durable one).
                    if let Some(g) = gap.take() {
                        let same_kind = matches!(g.reason, SkipReason::Duplicate { .. }) == dup;
                        if bad.is_some() && same_kind && g.end == off {
                            gap = Some(Gap { end, ..g });
                        } else {
                            seg.add_skip(g.off, g.end);
                            report.add_skip(Skipped {
                                segment: id,
                                offset: g.off,
                                bytes: g.end - g.off,
                                reason: g.reason,
                            });
                        }
                    }
                    if let Some(reason) = bad {
                        if gap.is_none() {
                            gap = Some(Gap { off, end, reason });
                        }
                    }
                    if bad.is_none() || dup {
                        good_end = end;
                    }
                }
            }
            let mut size = size;
            match gap {
                Some(g) if matches!(g.reason, SkipReason::Duplicate { .. }) => {
                    seg.add_skip(g.off, g.end);
                    report.add_skip(Skipped {
                        segment: id,
                        offset: g.off,
                        bytes: g.end - g.off,
                        reason: g.reason,
                    });
                }
                // Damage after the last intact frame of the newest segment:
                // a torn write. Cut it off so appends follow good data.
                Some(_) if newest => {
                    storage.truncate(id, good_end)?;
                    storage.sync(id)?;
                    report.truncated_bytes += size - good_end;
                    size = good_end;
                    rb.invalidate();
                }
                Some(g) => report.add_skip(Skipped {
                    segment: id,
                    offset: g.off,
                    bytes: g.end - g.off,
                    reason: g.reason,
                }),
                None => {}
            }
            seg.end = good_end;
            if !clean {
                seg.meta = None;
            }
            // Found, not known durable: a previous process may have been
            // killed before its writeback, or cut a file without syncing
            // it. The first sync covers every file found, before any new
            // data that reuses a sequence number a lost cut would bring back.
            seg.synced = 0;
            seg.truncated = true;
            seg.size = size;
            seg.sealed = !newest;
            disk_bytes += size;
            segments.insert(id, seg);
        }

        let end_of_log = match segments.last_key_value() {
            Some((&seg, s)) => Pos { seg, off: s.end },
            None => Pos { seg: 0, off: 0 },
        };
        if let Some(h) = &hint {
            report.position = match first_live {
                Some((p, seq)) if p == h.at && seq == h.seq => PositionStatus::Matched,
                None if h.at == end_of_log => PositionStatus::Matched,
                _ => PositionStatus::Adjusted,
            };
        }

        // Everything before the first unconsumed record was consumed.
        let dead_to = match (first_live, segments.last_key_value()) {
            (Some((p, _)), _) => Excluded(p.seg),
            (None, Some((&id, s))) if s.end >= config.segment_bytes => Included(id),
            (None, Some((&id, _))) => Excluded(id),
            (None, None) => Excluded(0),
        };
        let dead: Vec<u64> = segments
            .range((Unbounded, dead_to))
            .map(|(&id, _)| id)
            .collect();
        for id in dead {
            storage.remove(id)?;
            if let Some(s) = segments.remove(&id) {
                disk_bytes -= s.size;
            }
            report.deleted_segments += 1;
            dir_dirty = true;
        }
        if dir_dirty {
            storage.sync_dir()?;
        }

        // Ids are at most MAX_ID and sequence numbers at most MAX_SEQ (both
        // checked above, in the scan and in the position), so these sums
        // cannot overflow; a spool that reaches either limit refuses to
        // create a segment or take a record rather than wrap around.
        let max_id = ids.last().map_or(0, |&id| id + 1);
        let next_segment = max_id.max(hint.as_ref().map_or(0, |h| h.at.seg + 1)).max(1);
        let next_seq = last_seq.map_or(1, |l| l + 1).max(consumed_below).max(1);
        report.records = live;
        let mut spool = Spool {
            storage,
            segments,
            next_segment,
            head: VecDeque::new(),
            head_bytes: 0,
            tail: VecDeque::new(),
            tail_written: 0,
            tail_bytes: 0,
            pending_bytes: 0,
            cursor: Pos { seg: 0, off: 0 },
            read_seq: consumed_below.saturating_sub(1),
            next_seq,
            consumed_below,
            live,
            disk_bytes,
            // Like the data, the directory entries found may not be durable yet.
            dir_dirty: !ids.is_empty(),
            // What is on disk, as far as the next save needs to know: a seal
            // that no longer matched is not counted as saved, so the segment
            // is sealed again once it is synced.
            saved: hint.map(|h| Position {
                seals: used_seals,
                ..h
            }),
            last_sync: Instant::now(),
            rb: ReadBuf::new(config.memory_bytes.clamp(64 << 10, 4 << 20)),
            scratch: Vec::new(),
            report,
            config,
            closed: false,
        };
        spool.cursor = match first_live {
            Some((p, _)) => p,
            None => spool.disk_end(),
        };
        Ok(spool)
    }
}

/// Whether the last frame of a sealed segment is still the one its seal
/// names: its header (16 bytes) has the seal's sequence number and a length
/// that ends the frame at the end of the file. A file cut and written again
/// fails this (sequence numbers are never reused), as does a stale seal.
fn last_frame_matches(
    st: &mut dyn Storage,
    s: &Seal,
    config: &SpoolConfig,
) -> Result<bool, IoError> {
    let mut b = [0u8; frame::HEADER];
    let mut filled = 0;
    while filled < b.len() {
        let n = st.read_at(s.id, s.last_off + filled as u64, &mut b[filled..])?;
        if n == 0 {
            return Ok(false);
        }
        filled += n;
    }
    let h = frame::header(&b);
    Ok(h.seq == s.last_seq
        && h.len as usize <= config.max_record
        && s.last_off + frame::frame_len(h.len as usize) == s.end)
}
