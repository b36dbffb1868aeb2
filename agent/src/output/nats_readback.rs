//! Sequence mode's read-back: which of the agent's messages landed on the
//! subject after the last stream sequence it knows, and which input records
//! they were (through the manifests their segments carry).
//!
//! The messages come through an ordered consumer filtered on the subject
//! (ephemeral, a batch per request rather than a request per message, so
//! that a device far from the server reads back a whole batch in a few
//! round trips), and are taken one at a time: memory stays bounded
//! whatever the backlog (the consumer's prefetch, one segment's manifest,
//! and the landed ranges, which are merged as they grow: one per file and
//! gap).

use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_nats::jetstream::Context;
use futures_util::StreamExt;

use super::nats_manifest::{Cursor, Manifest, HEADER};
use crate::record::Span;

/// The last message on the subject that the agent accounts for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    /// Its stream sequence (0: none).
    pub sequence: u64,
    /// When it is inside a segment whose manifest lists more messages than
    /// landed, the sequence of that segment's first message: a message of
    /// the segment that lands later (one the server still held from a
    /// dropped connection) is mapped through that manifest.
    pub segment: Option<u64>,
}

/// Records that landed after what the agent knew.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Landed {
    /// What the agent now knows.
    pub known: Known,
    /// The records, as ranges of records that lie end to end in one file
    /// (`file`, first record's start, last record's end), in message order.
    pub ranges: Vec<Span>,
    /// Messages read back that were not known before.
    pub messages: u64,
}

impl Landed {
    /// Adds a record that landed, to the last range of its file when it
    /// continues it.
    pub(super) fn add(&mut self, at: Span) {
        if let Some(r) = self
            .ranges
            .iter_mut()
            .rev()
            .find(|r| r.file == at.file)
            .filter(|r| r.end == at.start)
        {
            r.end = at.end;
            return;
        }
        self.ranges.push(at);
    }
}

/// Why a read-back failed.
#[derive(Debug)]
pub enum ReadBackError {
    /// A message the agent cannot account for: another publisher on the
    /// subject, or a manifest that does not add up. Not something a retry
    /// fixes.
    Foreign(String),
    /// The server could not be asked (a retry may work).
    Failed(String),
}

impl ReadBackError {
    /// The message, one line.
    pub fn text(&self) -> &str {
        match self {
            Self::Foreign(m) | Self::Failed(m) => m,
        }
    }
}

/// Reads back what landed on `subject` (in `stream`) after `known`, up to
/// its last message, or to `floor` when the server names an earlier one
/// (it may, once later messages were deleted; see the NATS output).
pub async fn read_back(
    js: &Context,
    stream: &str,
    subject: &str,
    known: Known,
    floor: u64,
) -> Result<Landed, ReadBackError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        ReadBackError::Failed(format!(
            "cannot read back subject {subject} of stream {stream} ({what}): {e}"
        ))
    };
    let s = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| failed("stream", &e))?;
    let last = match s.get_last_raw_message_by_subject(subject).await {
        Ok(m) => m.sequence,
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => 0,
        Err(e) => return Err(failed("last message", &e)),
    }
    .max(floor);
    let mut landed = Landed::default();
    if last <= known.sequence {
        // Nothing new. Below it, messages were removed (limits, a purge):
        // the guard must name what the subject really ends with.
        landed.known = if last == known.sequence {
            known
        } else {
            Known {
                sequence: last,
                segment: None,
            }
        };
        return Ok(landed);
    }
    let foreign = |seq: u64, why: &str| {
        ReadBackError::Foreign(format!(
            "subject {subject} holds message {seq} (stream {stream}) after sequence {}, the last \
             one this agent accounts for, and {why}: with --nats-dedup sequence the agent must be \
             the only publisher on its subject (give each agent a subject of its own, or use \
             --nats-dedup msg-id)",
            known.sequence
        ))
    };
    let mut cursor: Option<Cursor> = None;
    let mut segment_start = 0u64;
    let mut from = known.sequence + 1;
    let mut rewound = false;
    'walk: loop {
        let mut messages = messages_from(&s, subject, from)
            .await
            .map_err(|e| failed("consumer", &e))?;
        loop {
            let Some(m) = messages.next().await else {
                return Err(failed("consumer", &"it ended early"));
            };
            let m = m.map_err(|e| failed("message", &e))?;
            let seq = m.info().map_err(|e| failed("message", &e))?.stream_sequence;
            match m.headers.as_ref().and_then(|h| h.get(HEADER)) {
                Some(v) => {
                    let manifest = Manifest::decode(v.as_str())
                        .map_err(|e| foreign(seq, &format!("its manifest is unreadable: {e}")))?;
                    cursor = Some(Cursor::new(manifest));
                    segment_start = seq;
                }
                None if cursor.as_ref().is_some_and(|c| !c.is_complete()) => {}
                None => match known.segment {
                    // A late message of the segment the known one is
                    // inside: walk that segment again from its manifest.
                    Some(start) if !rewound && cursor.is_none() && start <= known.sequence => {
                        rewound = true;
                        from = start;
                        continue 'walk;
                    }
                    _ => return Err(foreign(seq, &format!("it has no {HEADER} header"))),
                },
            }
            let Some(c) = cursor.as_mut() else {
                return Err(foreign(seq, "no manifest maps it"));
            };
            let at = c
                .next(m.payload.len())
                .map_err(|e| foreign(seq, &format!("its manifest does not map it: {e}")))?;
            if seq > known.sequence {
                landed.add(at);
                landed.messages += 1;
            }
            if seq >= last {
                break 'walk;
            }
        }
    }
    landed.known = Known {
        sequence: last.max(known.sequence),
        segment: cursor.filter(|c| !c.is_complete()).map(|_| segment_start),
    };
    Ok(landed)
}

/// The messages on `subject` from sequence `from` on, in order.
async fn messages_from<I>(
    s: &Stream<I>,
    subject: &str,
    from: u64,
) -> Result<Ordered, async_nats::Error> {
    let consumer = s
        .create_consumer(OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..OrderedConfig::default()
        })
        .await?;
    Ok(consumer.messages().await?)
}

/// Whether `at` lies inside one of `ranges` (a record that landed).
pub fn covered(ranges: &[Span], at: &Span) -> bool {
    ranges
        .iter()
        .any(|r| r.file == at.file && r.start <= at.start && at.end <= r.end)
}

/// Adds `more` to `ranges`, merging ranges of a file that meet.
pub fn merge(ranges: &mut Vec<Span>, more: &[Span]) {
    for m in more {
        match ranges
            .iter_mut()
            .find(|r| r.file == m.file && r.start <= m.end && m.start <= r.end)
        {
            Some(r) => {
                r.start = r.start.min(m.start);
                r.end = r.end.max(m.end);
            }
            None => ranges.push(*m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::FileId;

    fn f(ino: u64) -> FileId {
        FileId {
            dev: 1,
            ino,
            epoch: 0,
        }
    }

    fn sp(file: FileId, start: u64, end: u64) -> Span {
        Span { file, start, end }
    }

    #[test]
    fn landed_records_merge_into_one_range_per_file_and_gap() {
        let mut l = Landed::default();
        for at in [
            sp(f(1), 0, 3),
            sp(f(2), 10, 12),
            sp(f(1), 3, 6),
            sp(f(2), 12, 20),
            sp(f(1), 9, 10),
        ] {
            l.add(at);
        }
        assert_eq!(
            l.ranges,
            [sp(f(1), 0, 6), sp(f(2), 10, 20), sp(f(1), 9, 10)]
        );
    }

    #[test]
    fn a_record_is_covered_only_inside_a_range_of_its_file() {
        let mut ranges = vec![sp(f(1), 0, 6)];
        merge(&mut ranges, &[sp(f(1), 6, 9), sp(f(2), 0, 3)]);
        assert_eq!(ranges, [sp(f(1), 0, 9), sp(f(2), 0, 3)]);
        assert!(covered(&ranges, &sp(f(1), 3, 6)));
        assert!(covered(&ranges, &sp(f(1), 6, 9)));
        assert!(!covered(&ranges, &sp(f(1), 8, 12)));
        assert!(!covered(&ranges, &sp(f(3), 0, 3)));
    }
}
