//! Where records come from: a file (read from the checkpoint on, followed
//! through rotation) or standard input (spooled before it counts as read).

mod file;
mod stdin;

use std::io;
use std::time::Duration;

pub use file::FileInput;
pub use stdin::{StdinInput, StdinSpool};

use crate::record::Record;

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
    /// A file.
    File(FileInput),
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
            Self::File(f) => f.next(out),
            Self::Stdin(s) => s.next(out, wait),
        }
    }

    /// Bytes read so far, and the input's size when known (a regular file).
    pub fn progress(&self) -> (u64, Option<u64>) {
        match self {
            Self::File(f) => f.progress(),
            Self::Stdin(s) => (s.bytes_read(), None),
        }
    }

    /// Lines longer than the longest record, shipped in pieces.
    pub fn split_lines(&self) -> u64 {
        match self {
            Self::File(f) => f.split_lines(),
            Self::Stdin(s) => s.split_lines(),
        }
    }
}
