//! Standard input, which cannot be read twice: every line goes into the
//! stdin spool, synced in groups, before it is handed on; the sink removes
//! lines from the spool only once the output accepted them. A kill loses
//! nothing that was read, and the next run delivers what is left first.
//!
//! Lines are numbered from the oldest record in the spool at start (0) on;
//! a record's position is its number, so the sink's delivered position is
//! how many records it removed from the front of the spool.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use spillway::spool::{Spool, SpoolConfig, SpoolError};

use super::Step;
use crate::error::AgentError;
use crate::lines::{Lines, Piece};
use crate::record::{FileId, Record, Span};

const READ_CHUNK: usize = 64 << 10;
/// Most bytes read from stdin that one group commit takes.
const GROUP_BYTES: usize = 1 << 20;
/// Records of the previous run's backlog handed on per step.
const BACKLOG_STEP: usize = 4096;

/// The stdin spool, shared by the reader (which appends) and the sink
/// (which removes what was delivered).
#[derive(Debug)]
pub struct StdinSpool {
    state: Mutex<Shared>,
    room: Condvar,
}

#[derive(Debug)]
struct Shared {
    spool: Spool,
    /// Records removed since start: the sink's delivered position.
    removed: u64,
}

impl StdinSpool {
    /// Opens the spool in `dir`, of at most `max_bytes` on disk.
    ///
    /// # Errors
    /// The directory cannot be used (exit 2).
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, AgentError> {
        let config = SpoolConfig {
            max_bytes,
            ..SpoolConfig::default()
        };
        let spool = Spool::open(dir, config).map_err(|e| {
            AgentError::input(format!("stdin spool {} is unusable: {e}", dir.display()))
        })?;
        Ok(Self {
            state: Mutex::new(Shared { spool, removed: 0 }),
            room: Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records in the spool: read and not delivered yet.
    pub fn len(&self) -> u64 {
        self.lock().spool.len()
    }

    /// Removes the `n` oldest records, which the output accepted, and makes
    /// that durable.
    ///
    /// # Errors
    /// The spool could not remove them or save its read position.
    pub fn remove_delivered(&self, n: u64) -> Result<(), SpoolError> {
        let mut st = self.lock();
        let mut left = n;
        while left > 0 {
            let step = usize::try_from(left).unwrap_or(usize::MAX);
            let removed = st.spool.remove(step)? as u64;
            if removed == 0 {
                break;
            }
            left -= removed;
            st.removed += removed;
        }
        st.spool.flush()?;
        drop(st);
        self.room.notify_all();
        Ok(())
    }

    /// Syncs what was pushed and closes the spool.
    ///
    /// # Errors
    /// The final sync failed.
    pub fn close(&self) -> Result<(), SpoolError> {
        self.lock().spool.close()
    }
}

/// Standard input, read by a thread of its own so that the agent can stop
/// while stdin is quiet.
#[derive(Debug)]
pub struct StdinInput {
    spool: std::sync::Arc<StdinSpool>,
    chunks: Receiver<io::Result<Vec<u8>>>,
    lines: Lines,
    /// Number of the next record to be read.
    next_seq: u64,
    /// Records in the spool at start (the previous run's backlog), and how
    /// many of them were handed on.
    backlog: u64,
    fed: u64,
    /// Lines read but not yet in the spool (it was full).
    pending: VecDeque<Vec<u8>>,
    eof: bool,
}

impl StdinInput {
    /// Starts reading stdin; the backlog already in `spool` comes first.
    ///
    /// # Errors
    /// The reader thread cannot be started.
    pub fn open(spool: std::sync::Arc<StdinSpool>) -> Result<Self, AgentError> {
        let backlog = spool.len();
        let (tx, rx) = mpsc::sync_channel(16);
        thread::Builder::new()
            .name("spillway-stdin".into())
            .spawn(move || read_stdin(&tx))
            .map_err(|e| AgentError::runtime(format!("cannot start the stdin reader: {e}")))?;
        Ok(Self {
            spool,
            chunks: rx,
            lines: Lines::new(0),
            next_seq: backlog,
            backlog,
            fed: 0,
            pending: VecDeque::new(),
            eof: false,
        })
    }

    /// Records left over from the previous run.
    pub fn backlog(&self) -> u64 {
        self.backlog
    }

    /// Bytes read from stdin in this run.
    pub fn bytes_read(&self) -> u64 {
        self.lines.pos()
    }

    /// Lines longer than the longest record, shipped in pieces.
    pub fn split_lines(&self) -> u64 {
        self.lines.split_lines()
    }

    pub(super) fn next(&mut self, out: &mut Vec<Record>, wait: Duration) -> io::Result<Step> {
        if self.fed < self.backlog {
            self.feed_backlog(out).map_err(io::Error::other)?;
            return Ok(Step::Data);
        }
        if !self.pending.is_empty() {
            return self.push_pending(out, wait);
        }
        if self.eof {
            return Ok(Step::Done);
        }
        let first = match self.chunks.recv_timeout(wait) {
            Ok(chunk) => chunk?,
            Err(RecvTimeoutError::Timeout) => return Ok(Step::Idle),
            Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                Vec::new()
            }
        };
        let mut lines = Vec::new();
        self.lines
            .feed(&first, |p, _, _| lines.push(owned_line(&first, p)));
        // Group commit: whatever else stdin has ready goes in the same sync.
        let mut taken = first.len();
        while !self.eof && taken < GROUP_BYTES {
            match self.chunks.try_recv() {
                Ok(chunk) => {
                    let chunk = chunk?;
                    taken += chunk.len();
                    self.lines
                        .feed(&chunk, |p, _, _| lines.push(owned_line(&chunk, p)));
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.eof = true,
            }
        }
        if self.eof {
            self.lines.finish(|p, _, _| lines.push(owned_line(&[], p)));
        }
        self.pending.extend(lines);
        self.push_pending(out, wait)
    }

    /// Pushes the pending lines into the spool, synced as one group, and
    /// hands on those that went in. When the spool is full, waits up to
    /// `wait` for the sink to make room, and keeps the rest for later.
    fn push_pending(&mut self, out: &mut Vec<Record>, wait: Duration) -> io::Result<Step> {
        let mut st = self.spool.lock();
        let mut taken = Vec::new();
        let mut next = || {
            let line = self.pending.pop_front()?;
            taken.push(line.clone());
            Some(line)
        };
        let result = st.spool.push_batch(std::iter::from_fn(&mut next));
        let full = match result {
            Ok(_) => false,
            Err(SpoolError::Full(line)) => {
                taken.pop();
                self.pending.push_front(line);
                // What went in before the full one must be durable first.
                st.spool.flush().map_err(io::Error::other)?;
                true
            }
            Err(e) => {
                // Not taken; it stays pending and the error ends the run.
                if let Some(line) = e.into_record() {
                    taken.pop();
                    self.pending.push_front(line);
                }
                return Err(io::Error::other("stdin spool refused a record"));
            }
        };
        if full && taken.is_empty() {
            // Nothing fits: wait for the sink to deliver and remove some.
            let _ = self.spool.room.wait_timeout(st, wait);
            return Ok(Step::Idle);
        }
        drop(st);
        for line in taken {
            let seq = self.next_seq;
            self.next_seq += 1;
            out.push(Record::owned(
                line.into(),
                Span {
                    file: FileId::STDIN,
                    start: seq,
                    end: seq + 1,
                },
            ));
        }
        if self.eof && self.pending.is_empty() {
            return Ok(Step::Done);
        }
        Ok(Step::Data)
    }

    /// Hands on the next records of the backlog, leaving them in the spool
    /// until they are delivered. The spool is read from its front, past the
    /// records handed on and not yet removed (they are in the buffer).
    fn feed_backlog(&mut self, out: &mut Vec<Record>) -> Result<(), SpoolError> {
        let mut st = self.spool.lock();
        let in_buffer = usize::try_from(self.fed.saturating_sub(st.removed)).unwrap_or(0);
        let want = usize::try_from(self.backlog - self.fed)
            .unwrap_or(usize::MAX)
            .min(BACKLOG_STEP);
        let records = st.spool.read(in_buffer + want)?;
        drop(st);
        for data in records.into_iter().skip(in_buffer) {
            let seq = self.fed;
            self.fed += 1;
            out.push(Record::owned(
                data.into(),
                Span {
                    file: FileId::STDIN,
                    start: seq,
                    end: seq + 1,
                },
            ));
        }
        Ok(())
    }
}

fn owned_line(chunk: &[u8], p: Piece<'_>) -> Vec<u8> {
    match p {
        Piece::InChunk { off, len } => chunk[off..off + len].to_vec(),
        Piece::Carried(b) => b.to_vec(),
    }
}

/// The reader thread: stdin in chunks, until its end or an error.
fn read_stdin(tx: &SyncSender<io::Result<Vec<u8>>>) {
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    loop {
        let mut buf = vec![0; READ_CHUNK];
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if tx.send(Ok(buf)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}
