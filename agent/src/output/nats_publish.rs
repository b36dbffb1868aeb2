//! Publishing one batch's messages on a connection: sequence mode's
//! guarded segments and msg-id mode's ids (see the NATS output's module
//! doc), and the acknowledgements they wait for.

use std::collections::VecDeque;
use std::io::IoSlice;

use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::Context;
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;

use super::nats::error_chain;
use super::nats_ids::MessageIds;
use super::nats_manifest::{self as manifest, Manifest, PushError};
use super::nats_readback::{covered, Landed};
use crate::record::Span;

/// Publishes whose acknowledgement may be outstanding at once.
pub(super) const WINDOW: usize = 4096;

/// A batch as the sink hands it: `parts` laid end to end are its lines,
/// each ending in a newline; `origins[i]` is where line `i` came from.
/// Records inside `landed` (sequence mode: read back) are not published.
pub(super) struct Batch<'a> {
    pub(super) parts: &'a [IoSlice<'a>],
    pub(super) origins: &'a [Span],
    pub(super) landed: &'a [Span],
}

impl<'a> Batch<'a> {
    /// The records to publish, in order: payload and origin.
    fn records(&self) -> impl Iterator<Item = (std::borrow::Cow<'a, [u8]>, &'a Span)> + '_ {
        let landed = self.landed;
        Lines::new(self.parts)
            .zip(self.origins)
            .filter(move |(_, at)| !covered(landed, at))
    }

    /// Whether its lines and origins agree in number.
    fn check(&self) -> Result<(), String> {
        let newlines: usize = self
            .parts
            .iter()
            .map(|p| memchr::memchr_iter(b'\n', p).count())
            .sum();
        if newlines != self.origins.len() {
            return Err(format!(
                "internal error: {newlines} lines but {} origins in a batch",
                self.origins.len()
            ));
        }
        Ok(())
    }
}

/// Sequence mode: the manifests of the segments the batch's records to
/// publish go out in, each with its number of messages (one segment, unless
/// the records make more than [`manifest::MAX_RUNS`] runs).
pub(super) fn segments(batch: &Batch<'_>) -> Result<Vec<(Manifest, u64)>, String> {
    batch.check()?;
    let mut segments = Vec::new();
    let mut current = Manifest::default();
    for (data, at) in batch.records() {
        match current.push(data.len(), *at) {
            Ok(()) => {}
            Err(PushError::Full) => {
                let full = std::mem::take(&mut current);
                let n = full.messages();
                segments.push((full, n));
                current
                    .push(data.len(), *at)
                    .map_err(|_| "internal error: a record fits no manifest".to_owned())?;
            }
            Err(PushError::Bad(s)) => {
                return Err(format!(
                    "internal error: record at {}..{} is not its line and a newline",
                    s.start, s.end
                ))
            }
        }
    }
    if !current.is_empty() {
        let n = current.messages();
        segments.push((current, n));
    }
    Ok(segments)
}

/// Sequence mode: publishes `segments` of `batch` on `subject`, each
/// segment's first message with the guard and the manifest, alone, then
/// the rest pipelined. The subject's last message must be `known`. Returns
/// the stream sequence of the last message.
///
/// When the stream refuses a message (a stream without a leader for a
/// moment answers "no responders", a message over the stream's
/// `max_msg_size` is refused for good) while later ones of the batch are
/// stored, the subject would hold the segment with a hole, which its
/// manifest cannot map: the acknowledgements still due are awaited and the
/// sequences of the messages stored after the refused one go to
/// `refusal.strays`, for the caller to remove. `refusal.acked` is then the
/// prefix of the batch that was acknowledged before the refused message.
pub(super) async fn guarded(
    js: &Context,
    subject: &str,
    headers: &HeaderMap,
    batch: &Batch<'_>,
    segments: &[(Manifest, u64)],
    known: u64,
    refusal: &mut Refusal,
) -> Result<u64, String> {
    // Made once per batch: each message then costs a reference count for
    // the subject.
    let subject = Subject::from(subject);
    let mut records = batch.records();
    let mut pending: VecDeque<(PublishAckFuture, Span)> = VecDeque::with_capacity(WINDOW);
    let mut last = known;
    for (manifest, count) in segments {
        // The guard names the subject's last message: every earlier one
        // must be acknowledged first.
        while let Some(f) = pending.pop_front() {
            last = last.max(refusal.after_gap(f, &mut pending).await?);
        }
        let Some((data, &at)) = records.next() else {
            return Err("internal error: a segment without records".to_owned());
        };
        let mut h = headers.clone();
        h.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            last.to_string().as_str(),
        );
        h.insert(manifest::HEADER, manifest.encode().as_str());
        let msg = PublishMessage::build()
            .payload(Bytes::copy_from_slice(&data))
            .headers(h);
        let f = publish(js, &subject, msg).await?;
        last = guard_ack(f.await, &subject, last)?;
        refusal.stored(last, at, true);
        for _ in 1..*count {
            if pending.len() >= WINDOW {
                if let Some(f) = pending.pop_front() {
                    last = last.max(refusal.after_gap(f, &mut pending).await?);
                }
            }
            let Some((data, &at)) = records.next() else {
                return Err("internal error: a segment shorter than its manifest".into());
            };
            let mut msg = PublishMessage::build().payload(Bytes::copy_from_slice(&data));
            if !headers.is_empty() {
                msg = msg.headers(headers.clone());
            }
            pending.push_back((publish(js, &subject, msg).await?, at));
        }
    }
    while let Some(f) = pending.pop_front() {
        last = last.max(refusal.after_gap(f, &mut pending).await?);
    }
    Ok(last)
}

/// What a guarded batch that the stream refused a message of left on the
/// subject (see [`guarded`]).
#[derive(Debug, Default)]
pub(super) struct Refusal {
    /// Sequences of the messages stored after the refused one.
    pub(super) strays: Vec<u64>,
    /// The messages acknowledged before it, in order: the records they
    /// are, the last one's sequence, and (when its segment did not land
    /// whole) the sequence of that segment's first message.
    pub(super) acked: Landed,
}

impl Refusal {
    /// Notes a message the stream acknowledged with sequence `seq`, the
    /// first of its segment if `first`.
    fn stored(&mut self, seq: u64, at: Span, first: bool) {
        if first {
            self.acked.known.segment = Some(seq);
        }
        self.acked.known.sequence = seq;
        self.acked.add(at);
        self.acked.messages += 1;
    }

    /// The sequence of the acknowledged message `f`; or, for a refused
    /// one, the error, once the acknowledgements still `pending` came (the
    /// sequences of those that were stored go to `strays`).
    async fn after_gap(
        &mut self,
        (f, at): (PublishAckFuture, Span),
        pending: &mut VecDeque<(PublishAckFuture, Span)>,
    ) -> Result<u64, String> {
        match acknowledged(f.await) {
            Ok((seq, _)) => {
                self.stored(seq, at, false);
                Ok(seq)
            }
            Err(e) => {
                while let Some((f, _)) = pending.pop_front() {
                    if let Ok(a) = f.await {
                        self.strays.push(a.sequence);
                    }
                }
                Err(e)
            }
        }
    }
}

/// msg-id mode: publishes every record of `batch` on `subject` with its
/// `Nats-Msg-Id`, pipelined. Returns the stream sequence of the last
/// message and how many the stream dropped as duplicates.
pub(super) async fn with_ids(
    js: &Context,
    subject: &str,
    headers: &HeaderMap,
    batch: &Batch<'_>,
    id_prefix: &str,
) -> Result<(u64, u64), String> {
    batch.check()?;
    let subject = Subject::from(subject);
    let mut ids = MessageIds::new(id_prefix);
    let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(WINDOW);
    let mut last = 0u64;
    let mut duplicates = 0u64;
    // Lines are taken one by one as they are published (a batch's list of
    // them would be one more allocation the size of the batch).
    for (data, at) in batch.records() {
        if pending.len() >= WINDOW {
            if let Some(f) = pending.pop_front() {
                let ack = acknowledged(f.await)?;
                last = last.max(ack.0);
                duplicates += u64::from(ack.1);
            }
        }
        let mut h = headers.clone();
        h.insert(NATS_MESSAGE_ID, ids.id(at));
        let msg = PublishMessage::build()
            .payload(Bytes::copy_from_slice(&data))
            .headers(h);
        pending.push_back(publish(js, &subject, msg).await?);
    }
    while let Some(f) = pending.pop_front() {
        let ack = acknowledged(f.await)?;
        last = last.max(ack.0);
        duplicates += u64::from(ack.1);
    }
    Ok((last, duplicates))
}

/// Writes one message to the connection; its acknowledgement is awaited
/// through the future returned.
async fn publish(
    js: &Context,
    subject: &Subject,
    msg: PublishMessage,
) -> Result<PublishAckFuture, String> {
    js.send_publish(subject.clone(), msg)
        .await
        .map_err(|e| format!("NATS publish on {subject} failed: {}", error_chain(&e)))
}

/// The stream sequence of a segment's first message, or why the stream did
/// not store it: a refused guard says that something the agent does not know
/// of landed on the subject after sequence `expected`.
fn guard_ack(
    ack: Result<PublishAck, PublishError>,
    subject: &Subject,
    expected: u64,
) -> Result<u64, String> {
    match ack {
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(format!(
            "subject {subject} no longer ends at sequence {expected} (a message this agent \
             does not know of landed there): reading it back before the batch is sent again"
        )),
        other => acknowledged(other).map(|(seq, _)| seq),
    }
}

/// The stream sequence of one acknowledgement and whether the message was a
/// duplicate, or why the stream did not store it.
pub(super) fn acknowledged(ack: Result<PublishAck, PublishError>) -> Result<(u64, bool), String> {
    match ack {
        Ok(ack) => Ok((ack.sequence, ack.duplicate)),
        Err(e) => {
            let why = match e.kind() {
                PublishErrorKind::StreamNotFound => {
                    "no stream took the message (no stream for the subject, or the stream \
                     has no leader)"
                        .to_owned()
                }
                _ => error_chain(&e),
            };
            Err(format!("NATS did not store a record: {why}"))
        }
    }
}

/// The lines of a batch, without their newlines, one at a time: a line is
/// borrowed from its part, or put together when it spans parts (a line and
/// its newline given apart). Bytes after the last newline are not a line.
pub(super) struct Lines<'a> {
    parts: std::slice::Iter<'a, IoSlice<'a>>,
    rest: &'a [u8],
    head: Option<Vec<u8>>,
}

impl<'a> Lines<'a> {
    pub(super) fn new(parts: &'a [IoSlice<'a>]) -> Self {
        Self {
            parts: parts.iter(),
            rest: &[],
            head: None,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = std::borrow::Cow<'a, [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', self.rest) {
                let (line, after) = (&self.rest[..i], &self.rest[i + 1..]);
                self.rest = after;
                return Some(match self.head.take() {
                    Some(mut head) => {
                        head.extend_from_slice(line);
                        std::borrow::Cow::Owned(head)
                    }
                    None => std::borrow::Cow::Borrowed(line),
                });
            }
            if !self.rest.is_empty() {
                self.head
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(self.rest);
            }
            let part: &'a [u8] = self.parts.next()?;
            self.rest = part;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_parts_without_their_newlines() {
        let parts = [
            IoSlice::new(b"a\nbb\n"),
            IoSlice::new(b"c"),
            IoSlice::new(b"\n"),
            IoSlice::new(b"\n"),
            IoSlice::new(b"no newline"),
        ];
        let lines: Vec<Vec<u8>> = Lines::new(&parts).map(|c| c.into_owned()).collect();
        let lines: Vec<&[u8]> = lines.iter().map(|c| c.as_slice()).collect();
        assert_eq!(lines, [&b"a"[..], b"bb", b"c", b""]);
    }
}
