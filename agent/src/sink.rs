//! The buffer's sink: sends a batch to the output, then moves the
//! checkpoint (or empties the stdin spool) to just past what was delivered.
//!
//! Positions move only forward and only over records that are contiguous
//! with the last delivered one, so that a record can never be skipped: a
//! record already delivered (it came twice, e.g. from the spool and again
//! from the input) is not written again, and one that lies ahead of a gap is
//! written but does not move the position past the gap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use spillway::checkpoint::Checkpoint;
use spillway::{FlushContext, Sink, SinkError};

use crate::input::StdinSpool;
use crate::output::Output;
use crate::record::{FileId, Record};
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
    /// Just past the last delivered record.
    pos: Option<(FileId, u64)>,
    payload: Vec<u8>,
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
        Self {
            inner: Mutex::new(Inner {
                output,
                output_names,
                checkpoint,
                ack,
                pos,
                payload: Vec::new(),
            }),
            counters,
        }
    }
}

impl Sink<Record> for Shipper {
    fn flush(&self, batch: &[Record], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *guard;
        let mut pos = inner.pos;
        let mut lines = 0u64;
        let mut skipped = 0u64;
        inner.payload.clear();
        for rec in batch {
            match rec {
                Record::Switch { file, offset } => {
                    let already_there = matches!(pos, Some((f, o)) if f == *file && o >= *offset);
                    if !already_there {
                        pos = Some((*file, *offset));
                    }
                }
                Record::Line { data, at } => {
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
                    inner.payload.extend_from_slice(data);
                    inner.payload.push(b'\n');
                    lines += 1;
                }
            }
        }
        if lines > 0 {
            inner.output.send(&inner.payload, ctx.deadline)?;
        }

        let now = SystemTime::now();
        let cp = &inner.checkpoint;
        let mut dirty = false;
        if lines > 0 {
            if let (Some(names), Output::File(f)) = (&inner.output_names, &inner.output) {
                names.persist(cp, f.identity(), f.sent_len(), now)?;
                dirty = true;
            }
        }
        let moved = pos != inner.pos;
        if let (Ack::File(names), true, Some((file, offset))) = (&inner.ack, moved, pos) {
            names.persist(cp, file, offset, now)?;
            dirty = true;
        }
        if dirty {
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
        c.lines.fetch_add(lines, Ordering::Relaxed);
        c.bytes
            .fetch_add(inner.payload.len() as u64, Ordering::Relaxed);
        c.repeats_skipped.fetch_add(skipped, Ordering::Relaxed);
        if lines > 0 {
            c.batches.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
