//! The buffer's sink: sends a batch to the output, then moves the
//! checkpoint (or empties the stdin spool) to just past what was delivered.
//!
//! Positions move only forward and only over records that are contiguous
//! with the last delivered one, so that a record can never be skipped: a
//! record already delivered (it came twice, e.g. from the spool and again
//! from the input) is not written again, and one that lies ahead of a gap is
//! written but does not move the position past the gap.

use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use spillway::{FlushContext, Sink, SinkError};

use crate::input::StdinSpool;
use crate::output::Output;
use crate::record::{Chunk, FileId, Record, Span, View};
use crate::state::{self, CheckpointWriter, Group, InputKeys, OutputNames};

/// Totals the sink keeps, read by the stats line and the summary.
#[derive(Debug, Default)]
pub struct Counters {
    /// Lines written to the output.
    pub lines: AtomicU64,
    /// Bytes written to the output (newlines included).
    pub bytes: AtomicU64,
    /// Batches the output accepted that held at least one line.
    pub batches: AtomicU64,
    /// Lines not written again because they were delivered before.
    pub repeats_skipped: AtomicU64,
}

/// How a delivered position is made durable.
///
/// Each batch commits one [`Group`]: the output file's length after it and
/// the offsets it moved, written whole. With a file output and file inputs
/// the checkpoint is written in the background: a restart cuts the output
/// back to the recorded length and resumes every input from the offsets
/// written with it, so whatever write a kill leaves, output and inputs
/// agree (nothing is repeated or lost). Otherwise (stdin, or another
/// output) each batch's group is durable before the next batch is sent.
pub enum Ack {
    /// File inputs: each one's offset goes into its checkpoint entry.
    Files(Arc<InputKeys>),
    /// Standard input: its delivered offset goes into the checkpoint, then
    /// delivered chunks leave the stdin spool.
    Stdin(Arc<StdinSpool>),
}

/// The agent's sink.
pub struct Shipper {
    inner: Mutex<Inner>,
    counters: Arc<Counters>,
}

struct Inner {
    output: Output,
    output_names: Option<OutputNames>,
    writer: Arc<CheckpointWriter>,
    ack: Ack,
    /// Per input (see [`Inner::input_of`]): the file and the offset just
    /// past its last delivered record.
    positions: HashMap<usize, (FileId, u64)>,
}

impl Inner {
    /// The input a record of `file` belongs to (stdin is input 0).
    fn input_of(&self, file: FileId) -> Option<usize> {
        match &self.ack {
            Ack::Files(keys) => keys.input_of(file),
            Ack::Stdin(_) => (file == FileId::STDIN).then_some(0),
        }
    }

    /// Where input `i` is delivered up to: as moved in this batch, as
    /// delivered before, or where it started.
    fn position(&self, moved: &HashMap<usize, (FileId, u64)>, i: usize) -> Option<(FileId, u64)> {
        moved
            .get(&i)
            .or_else(|| self.positions.get(&i))
            .copied()
            .or_else(|| match &self.ack {
                Ack::Files(keys) => keys.start(i),
                Ack::Stdin(_) => None,
            })
    }
}

#[cfg(feature = "nats")]
impl Inner {
    /// Records as delivered the records that `ranges` cover (records of
    /// one file that lie end to end, in the order they were sent), with the
    /// NATS output's new last sequence, in one checkpoint write, as a
    /// delivered batch is.
    ///
    /// An input's position moves over a range that starts at or before it,
    /// or onto a range of another file than the one it is in (the batch the
    /// range came from switched files, as a rotation does); a range ahead of
    /// a gap moves nothing, as a line ahead of a gap does not.
    fn record_landed(&mut self, ranges: &[Span]) -> Result<(), SinkError> {
        let mut moved: HashMap<usize, (FileId, u64)> = HashMap::new();
        for r in ranges {
            let Some(i) = self.input_of(r.file) else {
                continue;
            };
            match self.position(&moved, i) {
                Some((f, p)) if f == r.file => {
                    if r.start <= p && p < r.end {
                        moved.insert(i, (f, r.end));
                    }
                }
                _ => {
                    moved.insert(i, (r.file, r.end));
                }
            }
        }
        let mut group = Group::default();
        if let Output::Nats(n) = &self.output {
            n.add_to(&mut group);
        }
        if let Ack::Files(keys) = &self.ack {
            for (&i, &(file, offset)) in &moved {
                if let Some(names) = keys.names(i) {
                    names.add_to(&mut group, file, offset);
                }
            }
        }
        let stdin_moved = moved.get(&0).map(|&(_, o)| o);
        if let (Ack::Stdin(_), Some(offset)) = (&self.ack, stdin_moved) {
            state::add_stdin(&mut group, offset);
        }
        // Unlike a batch's, these records may lie in stdin spool chunks that
        // the reader has not handed on yet: the chunks stay (a checkpoint
        // ahead of the spool is a state the spool knows, see `flush`) and go
        // with the next delivered batch, which lies after them.
        self.writer.commit(group)?;
        self.positions.extend(moved);
        Ok(())
    }
}

impl Shipper {
    /// A sink that sends to `output` and acknowledges with `ack`. Stdin
    /// starts from the delivered position `pos` (from the checkpoint); file
    /// inputs from where [`InputKeys`] says each one started.
    pub fn new(
        output: Output,
        output_names: Option<OutputNames>,
        writer: Arc<CheckpointWriter>,
        ack: Ack,
        pos: Option<(FileId, u64)>,
        counters: Arc<Counters>,
    ) -> Self {
        let positions = match (&ack, pos) {
            (Ack::Stdin(_), Some(p)) => HashMap::from([(0, p)]),
            _ => HashMap::new(),
        };
        Self {
            inner: Mutex::new(Inner {
                output,
                output_names,
                writer,
                ack,
                positions,
            }),
            counters,
        }
    }
}

impl Shipper {
    /// Whether the checkpoint can be written in the background (see [`Ack`]):
    /// a regular output file that is cut back at restart, and a file input.
    pub fn background_checkpoint(output: &Output, ack: &Ack) -> bool {
        matches!(output, Output::File(f) if f.is_regular()) && matches!(ack, Ack::Files(_))
    }
}

impl Sink<Record> for Shipper {
    fn flush(&self, batch: &[Record], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *guard;
        // NATS in sequence mode: records that landed without an
        // acknowledgement are delivered; recorded first, so that this
        // batch's copies of them are skipped below like any repeat.
        #[cfg(feature = "nats")]
        if let Output::Nats(n) = &mut inner.output {
            if let Some(landed) = n.read_back(ctx.deadline)? {
                inner.record_landed(&landed.ranges)?;
            }
        }
        let mut moved: HashMap<usize, (FileId, u64)> = HashMap::new();
        let mut out = Pieces {
            origins: Vec::with_capacity(batch.len()),
            ..Pieces::default()
        };
        let mut skipped = 0u64;
        for rec in batch {
            match rec.view() {
                View::Switch { file, offset } => {
                    if let Some(i) = inner.input_of(file) {
                        let already_there = matches!(
                            inner.position(&moved, i),
                            Some((f, o)) if f == file && o >= offset
                        );
                        if !already_there {
                            moved.insert(i, (file, offset));
                        }
                    }
                }
                View::Line {
                    data,
                    with_newline,
                    at,
                } => {
                    let i = inner.input_of(at.file);
                    if let Some((i, (file, offset))) =
                        i.and_then(|i| Some((i, inner.position(&moved, i)?)))
                    {
                        if file == at.file {
                            if at.end <= offset {
                                skipped += 1;
                                continue;
                            }
                            if at.start == offset {
                                moved.insert(i, (file, at.end));
                            }
                        }
                    }
                    match with_newline {
                        Some((chunk, from, to)) => out.push_shared(chunk, from, to),
                        None => out.push_owned(data),
                    }
                    out.origins.push(at);
                }
            }
        }
        // Only what really moved (a switch back to where it was is not).
        moved.retain(|i, p| inner.positions.get(i) != Some(p));
        if out.lines > 0 {
            let slices = out.slices();
            inner
                .output
                .send(&slices, out.bytes, &out.origins, ctx.deadline)?;
        }

        // One group: the output's new length and every offset it covers
        // reach the checkpoint file in the same write (see
        // `CheckpointWriter`), so no snapshot pairs a length with offsets
        // from before it.
        let mut group = Group::default();
        if out.lines > 0 {
            if let (Some(names), Output::File(f)) = (&inner.output_names, &inner.output) {
                names.add_to(&mut group, f.identity(), f.sent_len());
            }
            // NATS: the stream sequence of the batch's last message, in the
            // same write as the offsets the batch covers.
            #[cfg(feature = "nats")]
            if let Output::Nats(n) = &inner.output {
                n.add_to(&mut group);
            }
        }
        if let Ack::Files(keys) = &inner.ack {
            for (&i, &(file, offset)) in &moved {
                if let Some(names) = keys.names(i) {
                    names.add_to(&mut group, file, offset);
                }
            }
        }
        // Standard input, whose bytes exist only in the stdin spool. Three
        // things become durable one after the other: the batch in the
        // output (synced above), then ONE checkpoint write that holds both
        // the output's new length and stdin's new delivered offset, then
        // the removal of the delivered chunks from the spool. A crash:
        // - before the checkpoint write: the checkpoint has the old length
        //   and offset. A file output is cut back to the old length at
        //   start and the batch is sent again from the spool: nothing lost,
        //   nothing twice (other outputs may see the batch again).
        // - during it: the write replaces the file atomically, so one of
        //   the two cases around it holds, never a mix of the two values.
        // - after it, before the spool's removal is durable: the checkpoint
        //   says the batch is delivered, the spool still has it. At start,
        //   `StdinSpool::open` drops every chunk that lies wholly before the
        //   checkpoint's offset, and the reader skips the delivered part of
        //   a chunk that straddles it: nothing is sent twice.
        // - after the removal: both agree.
        // The spool never removes a chunk before the checkpoint that covers
        // it is durable, so no order of crashes loses a line either.
        let stdin_moved = moved.get(&0).map(|&(_, o)| o);
        if let (Ack::Stdin(_), Some(offset)) = (&inner.ack, stdin_moved) {
            debug_assert!(!inner.writer.is_background(), "stdin needs durable commits");
            state::add_stdin(&mut group, offset);
        }
        // Durable when it returns, except in the background mode (file
        // input into a regular file, see `Ack`), never used with stdin.
        inner.writer.commit(group)?;
        if let (Ack::Stdin(spool), Some(offset)) = (&inner.ack, stdin_moved) {
            // The batch is delivered and the checkpoint says so: a failure
            // here only leaves chunks that the next start drops.
            if let Err(e) = spool.remove_through(offset) {
                crate::ui::note(format!("stdin spool: cannot remove delivered chunks: {e}"));
            }
        }

        inner.output.confirm();
        inner.positions.extend(moved);
        let c = &self.counters;
        c.lines.fetch_add(out.lines, Ordering::Relaxed);
        c.bytes.fetch_add(out.bytes as u64, Ordering::Relaxed);
        c.repeats_skipped.fetch_add(skipped, Ordering::Relaxed);
        if out.lines > 0 {
            c.batches.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The batch as the output gets it: runs of neighbouring lines of a chunk as
/// one piece each, other lines and their newlines as pieces of their own.
#[derive(Default)]
struct Pieces<'a> {
    parts: Vec<Part<'a>>,
    /// Where each line came from, in order (the NATS output names messages
    /// by it).
    origins: Vec<Span>,
    lines: u64,
    bytes: usize,
}

enum Part<'a> {
    Shared(&'a Arc<Chunk>, usize, usize),
    Owned(&'a [u8]),
}

impl<'a> Pieces<'a> {
    fn push_shared(&mut self, chunk: &'a Arc<Chunk>, from: usize, to: usize) {
        self.lines += 1;
        self.bytes += to - from;
        if let Some(Part::Shared(c, _, end)) = self.parts.last_mut() {
            if Arc::ptr_eq(c, chunk) && *end == from {
                *end = to;
                return;
            }
        }
        self.parts.push(Part::Shared(chunk, from, to));
    }

    fn push_owned(&mut self, line: &'a [u8]) {
        self.lines += 1;
        self.bytes += line.len() + 1;
        self.parts.push(Part::Owned(line));
        self.parts.push(Part::Owned(b"\n"));
    }

    fn slices(&self) -> Vec<IoSlice<'_>> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Shared(c, from, to) => IoSlice::new(&c.bytes()[*from..*to]),
                Part::Owned(b) => IoSlice::new(b),
            })
            .collect()
    }
}
