//! Where records come from: files (each read from its checkpoint entry on,
//! followed through rotation; many at once, named or matched by a glob) or
//! standard input (spooled before it counts as read).

mod file;
mod glob;
mod many;
mod stdin;

use std::io;
use std::time::Duration;

pub use file::FileInput;
pub use many::Files;
pub use stdin::{StdinEnd, StdinInput, StdinSpool, DEFAULT_STDIN_CHUNK};

use crate::lines::{Lines, Piece};
use crate::record::{Chunk, FileId, Record, Span};

/// What one read produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Records were added (possibly none, e.g. only part of a line).
    Data,
    /// Nothing new for now (following a file at its end, or stdin is quiet).
    Idle,
    /// The input is finished; the records added are the last.
    Done,
}

/// An open input.
#[derive(Debug)]
pub enum Input {
    /// Files: every `--input` path and the files its pattern matches.
    Files(Files),
    /// Standard input.
    Stdin(StdinInput),
}

impl Input {
    /// Reads the next records into `out`, waiting at most `wait` for stdin.
    ///
    /// # Errors
    /// Reading (or, for stdin, spooling) failed.
    pub fn next(&mut self, out: &mut Vec<Record>, wait: Duration) -> io::Result<Step> {
        match self {
            Self::Files(f) => f.next(out),
            Self::Stdin(s) => s.next(out, wait),
        }
    }

    /// Bytes read so far, and the input's size when known (a regular file).
    pub fn progress(&self) -> (u64, Option<u64>) {
        match self {
            Self::Files(f) => f.progress(),
            Self::Stdin(s) => (s.bytes_read(), None),
        }
    }

    /// Lines longer than the longest record, shipped in pieces.
    pub fn split_lines(&self) -> u64 {
        match self {
            Self::Files(f) => f.split_lines(),
            Self::Stdin(s) => s.split_lines(),
        }
    }
}

/// A line found in a chunk: in it, or (across chunks) in a buffer of its own.
enum Found {
    InChunk { off: usize, len: usize, at: Span },
    Owned(Box<[u8]>, Span),
}

/// Cuts the next bytes `buf` of `file` into records; lines wholly inside it
/// share it (no copy per line), others get a buffer of their own.
pub(crate) fn split_chunk(lines: &mut Lines, file: FileId, buf: Vec<u8>, out: &mut Vec<Record>) {
    let mut found = Vec::new();
    lines.feed(&buf, |piece, start, end| {
        let at = Span { file, start, end };
        found.push(match piece {
            Piece::InChunk { off, len } => Found::InChunk { off, len, at },
            Piece::Carried(b) => Found::Owned(b.into(), at),
        });
    });
    let shared = found
        .iter()
        .filter(|f| matches!(f, Found::InChunk { .. }))
        .count();
    let chunk = Chunk::new(buf, shared);
    out.extend(found.into_iter().map(|f| match f {
        Found::InChunk { off, len, at } => Record::shared(&chunk, off, len, at),
        Found::Owned(b, at) => Record::owned(b, at),
    }));
}

/// The stream of `file` ended (or stops being read here): a last line
/// without its newline counts as a line.
pub(crate) fn finish_lines(lines: &mut Lines, file: FileId, out: &mut Vec<Record>) {
    lines.finish(|piece, start, end| {
        let data: Box<[u8]> = match piece {
            Piece::Carried(b) => b.into(),
            Piece::InChunk { .. } => unreachable!("finish hands out only carried lines"),
        };
        out.push(Record::owned(data, Span { file, start, end }));
    });
}
