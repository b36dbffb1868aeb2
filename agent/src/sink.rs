//! The buffer's sink: sends a batch to the output, then moves the
//! checkpoint (or empties the stdin spool) to just past what was delivered.
//!
//! Positions move only forward and only over records that are contiguous
//! with the last delivered one, so that a record can never be skipped: a
//! record already delivered (it came twice, e.g. from the spool and again
//! from the input) is not written again, and one that lies ahead of a gap is
//! written but does not move the position past the gap.

use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use spillway::checkpoint::Checkpoint;
use spillway::{FlushContext, Sink, SinkError};

use crate::input::StdinSpool;
use crate::output::Output;
use crate::record::{Chunk, FileId, Record, Span, View};
use crate::state::{InputNames, OutputNames};

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
/// With a file output and a file input, the checkpoint is written in the
/// background: the output's length is recorded before the input's offset,
/// and a restart cuts the output back to the recorded length, so whatever
/// snapshot a kill leaves, output and offset agree (at most the last batch
/// is sent twice). Otherwise every batch flushes the checkpoint before the
/// next one is sent.
pub enum Ack {
    /// A file input: its offset goes into the checkpoint.
    File(InputNames),
    /// Standard input: delivered records leave the stdin spool.
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
    checkpoint: Arc<Checkpoint>,
    ack: Ack,
    /// Flush the checkpoint after each batch (else the background writer does).
    flush_each: bool,
    /// Just past the last delivered record.
    pos: Option<(FileId, u64)>,
}

impl Shipper {
    /// A sink that sends to `output` and acknowledges with `ack`, starting
    /// from the delivered position `pos` (from the checkpoint).
    pub fn new(
        output: Output,
        output_names: Option<OutputNames>,
        checkpoint: Arc<Checkpoint>,
        ack: Ack,
        pos: Option<(FileId, u64)>,
        counters: Arc<Counters>,
    ) -> Self {
        let flush_each = !Self::background_checkpoint(&output, &ack);
        Self {
            inner: Mutex::new(Inner {
                output,
                output_names,
                checkpoint,
                ack,
                flush_each,
                pos,
            }),
            counters,
        }
    }
}

impl Shipper {
    /// Whether the checkpoint can be written in the background (see [`Ack`]):
    /// a regular output file that is cut back at restart, and a file input.
    pub fn background_checkpoint(output: &Output, ack: &Ack) -> bool {
        matches!(output, Output::File(f) if f.is_regular()) && matches!(ack, Ack::File(_))
    }
}

impl Sink<Record> for Shipper {
    fn flush(&self, batch: &[Record], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *guard;
        let mut pos = inner.pos;
        let mut out = Pieces::default();
        let mut skipped = 0u64;
        for rec in batch {
            match rec.view() {
                View::Switch { file, offset } => {
                    let already_there = matches!(pos, Some((f, o)) if f == file && o >= offset);
                    if !already_there {
                        pos = Some((file, offset));
                    }
                }
                View::Line {
                    data,
                    with_newline,
                    at,
                } => {
                    if let Some((file, offset)) = pos {
                        if file == at.file {
                            if at.end <= offset {
                                skipped += 1;
                                continue;
                            }
                            if at.start == offset {
                                pos = Some((file, at.end));
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
        if out.lines > 0 {
            let slices = out.slices();
            inner
                .output
                .send(&slices, out.bytes, &out.origins, ctx.deadline)?;
        }

        let now = SystemTime::now();
        let cp = &inner.checkpoint;
        let mut dirty = false;
        if out.lines > 0 {
            if let (Some(names), Output::File(f)) = (&inner.output_names, &inner.output) {
                names.persist(cp, f.identity(), f.sent_len(), now)?;
                dirty = true;
            }
            #[cfg(feature = "nats")]
            if let Output::Nats(n) = &inner.output {
                n.persist(cp, now)?;
                dirty = true;
            }
        }
        let moved = pos != inner.pos;
        if let (Ack::File(names), true, Some((file, offset))) = (&inner.ack, moved, pos) {
            names.persist(cp, file, offset, now)?;
            dirty = true;
        }
        if dirty && inner.flush_each {
            cp.flush()?;
        }
        // After the checkpoint: were it lost, the records would come again
        // from the spool (a repeat), never be missing.
        if let (Ack::Stdin(spool), true) = (&inner.ack, moved) {
            let before = inner.pos.map_or(0, |(_, o)| o);
            let after = pos.map_or(0, |(_, o)| o);
            spool.remove_delivered(after - before)?;
        }

        inner.output.confirm();
        inner.pos = pos;
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
