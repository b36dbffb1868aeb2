//! Opening a spool: scan every segment, cut a torn tail, skip and report
//! damage, apply the read-position hint, delete what was consumed.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::config::SpoolConfig;
use super::error::SpoolError;
use super::frame;
use super::position::Position;
use super::report::{OpenReport, PositionStatus, SkipReason, Skipped};
use super::scan::{Item, ReadBuf, Scan};
use super::segment::{Pos, Segment};
use super::storage::Storage;
use super::Spool;

/// Read size while scanning at open: large, to go at the speed of the disk.
const OPEN_CHUNK: usize = 4 << 20;

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
        let consumed_below = hint.map_or(0, |p| p.seq);

        let mut rb = ReadBuf::new(OPEN_CHUNK);
        let mut segments = BTreeMap::new();
        let mut last_seq: Option<u64> = None;
        let mut first_live: Option<(Pos, u64)> = None;
        let mut live = 0u64;
        let mut disk_bytes = 0u64;
        let mut dir_dirty = false;

        for (i, &id) in ids.iter().enumerate() {
            let newest = i + 1 == ids.len();
            let size = storage.size(id)?;
            let mut seg = Segment::new_empty();
            let mut pos = 0;
            let mut good_end = 0;
            let mut gap: Option<Gap> = None;
            loop {
                let mut scan = Scan {
                    st: &mut *storage,
                    rb: &mut rb,
                    seg: id,
                    limit: size,
                    max_record: config.max_record,
                };
                let Some(item) = scan.next_item(pos, last_seq)? else {
                    break;
                };
                let (off, end, bad) = match item {
                    Item::Record { off, seq, len } => {
                        let end = off + frame::frame_len(len as usize);
                        if last_seq.is_some_and(|l| seq <= l) {
                            (off, end, Some(SkipReason::Duplicate { seq }))
                        } else {
                            last_seq = Some(seq);
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
                match bad {
                    Some(reason) => match &mut gap {
                        Some(g) if g.end == off => g.end = end,
                        _ => gap = Some(Gap { off, end, reason }),
                    },
                    None => {
                        if let Some(g) = gap.take() {
                            seg.add_skip(g.off, g.end);
                            report.add_skip(Skipped {
                                segment: id,
                                offset: g.off,
                                bytes: g.end - g.off,
                                reason: g.reason,
                            });
                        }
                        good_end = end;
                    }
                }
            }
            let mut size = size;
            if let Some(g) = gap {
                // Bytes after the last intact frame.
                if newest {
                    // A torn tail: cut it off so appends follow good data.
                    storage.truncate(id, good_end)?;
                    storage.sync(id)?;
                    report.truncated_bytes += size - good_end;
                    size = good_end;
                    rb.invalidate();
                } else {
                    report.add_skip(Skipped {
                        segment: id,
                        offset: g.off,
                        bytes: g.end - g.off,
                        reason: g.reason,
                    });
                }
            }
            seg.end = good_end;
            seg.synced = good_end;
            seg.size = size;
            seg.sealed = !newest;
            disk_bytes += size;
            segments.insert(id, seg);
        }

        let end_of_log = match segments.last_key_value() {
            Some((&seg, s)) => Pos { seg, off: s.end },
            None => Pos { seg: 0, off: 0 },
        };
        if let Some(h) = hint {
            report.position = match first_live {
                Some((p, seq)) if p == h.at && seq == h.seq => PositionStatus::Matched,
                None if h.at == end_of_log => PositionStatus::Matched,
                _ => PositionStatus::Adjusted,
            };
        }

        // Everything before the first unconsumed record was consumed.
        let keep_from = match (first_live, segments.last_key_value()) {
            (Some((p, _)), _) => p.seg,
            (None, Some((&id, s))) if s.end >= config.segment_bytes => id + 1,
            (None, Some((&id, _))) => id,
            (None, None) => 0,
        };
        let dead: Vec<u64> = segments.range(..keep_from).map(|(&id, _)| id).collect();
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

        let max_id = ids.last().map_or(0, |&id| id + 1);
        let next_segment = max_id
            .max(hint.map_or(0, |h| h.at.seg.saturating_add(1)))
            .max(1);
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
            dir_dirty: false,
            saved: hint,
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
