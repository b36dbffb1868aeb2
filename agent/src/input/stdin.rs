//! Standard input, which cannot be read twice. A reader thread reads it in
//! chunks and makes each chunk durable in the stdin spool (`DIR/stdin`)
//! before it reads the next one and before any of its lines is handed on;
//! the sink removes a chunk only once every line in it was delivered and
//! the checkpoint says so.
//!
//! Stdin is treated as one long byte stream that goes on across runs: a
//! spooled chunk carries the stream offset of its first byte, and records
//! carry byte offsets in that stream, as for a file. The checkpoint's stdin
//! entry is the offset just past the last delivered line; that single number
//! decides what is delivered, so a chunk that is still in the spool but lies
//! wholly before it is dropped at start without being sent again.
//!
//! What a crash can lose: `kill -9` loses at most the chunk the reader holds
//! between `read` and the end of the spool's sync, at most `--stdin-chunk`
//! bytes. An orderly stop loses nothing: the reader finishes the chunk in
//! hand (it is never blocked inside `read`; it waits in `poll`) and stops.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use spillway::spool::{Spool, SpoolConfig, SpoolError};

use super::{finish_lines, split_chunk, Step};
use crate::error::AgentError;
use crate::lines::Lines;
use crate::record::{FileId, Record};

/// `--stdin-chunk` unless given: most bytes read (and at risk on `kill -9`)
/// before they are synced to the spool.
pub const DEFAULT_STDIN_CHUNK: usize = 256 << 10;
/// A spooled chunk: stream offset `u64` LE, flags `u8`, then the bytes.
const HEADER: usize = 9;
/// Flag: the chunk begins a new stream (another run's stdin): the line
/// that the previous chunk left unfinished ends there.
const NEW_STREAM: u8 = 1;
/// How long the reader waits in `poll` before it looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Durable chunks handed to the shipping side and not taken yet; past this
/// the reader waits (backpressure on the producer) unless told to only
/// spool.
const QUEUE_CHUNKS: usize = 4;
/// Chunks of the previous run's backlog handed on per step (at least).
const BACKLOG_STEP: usize = 4;
/// Room kept free in the spool for framing (record and segment headers).
const SPOOL_SLACK: u64 = 4096;

/// The stdin spool, shared by the reader (which appends chunks) and the
/// sink (which removes delivered ones).
#[derive(Debug)]
pub struct StdinSpool {
    state: Mutex<Shared>,
    room: Condvar,
}

#[derive(Debug)]
struct Shared {
    spool: Spool,
    max_bytes: u64,
    /// Stream offset just past the newest chunk.
    end: u64,
    /// Stream offset just past the last delivered line.
    delivered: u64,
    /// Chunks removed since start.
    removed: u64,
}

/// A chunk as it lies in the spool.
struct Spooled {
    offset: u64,
    new_stream: bool,
    data: Vec<u8>,
}

fn encode(offset: u64, new_stream: bool, data: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(HEADER + data.len());
    rec.extend_from_slice(&offset.to_le_bytes());
    rec.push(if new_stream { NEW_STREAM } else { 0 });
    rec.extend_from_slice(data);
    rec
}

/// Offset, flags and length of a spooled chunk, without copying it.
fn header(rec: &[u8]) -> Result<(u64, u8, u64), SpoolError> {
    let bad = || {
        SpoolError::Io(spillway::spool::IoError::new(
            "read a stdin chunk",
            "",
            io::Error::new(
                io::ErrorKind::InvalidData,
                "a record of the stdin spool is not a chunk of standard input",
            ),
        ))
    };
    let (head, data) = rec.split_at_checked(HEADER).ok_or_else(bad)?;
    let offset = u64::from_le_bytes(head[..8].try_into().map_err(|_| bad())?);
    let flags = head[8];
    if flags & !NEW_STREAM != 0 {
        return Err(bad());
    }
    Ok((offset, flags, data.len() as u64))
}

fn decode(mut rec: Vec<u8>) -> Result<Spooled, SpoolError> {
    let (offset, flags, _) = header(&rec)?;
    rec.drain(..HEADER);
    Ok(Spooled {
        offset,
        new_stream: flags & NEW_STREAM != 0,
        data: rec,
    })
}

impl StdinSpool {
    /// Opens the spool in `dir` (at most `max_bytes` on disk), given the
    /// checkpoint's stdin offset `delivered` (`None`: no stdin entry). Chunks
    /// wholly before `delivered` were delivered by a run that died before it
    /// removed them: they are removed now, not sent again.
    ///
    /// # Errors
    /// The directory cannot be used, or it holds records while the
    /// checkpoint knows no stdin position (exit 2).
    pub fn open(dir: &Path, max_bytes: u64, delivered: Option<u64>) -> Result<Self, AgentError> {
        let unusable = |e: SpoolError| {
            AgentError::input(format!("stdin spool {} is unusable: {e}", dir.display()))
        };
        // As the buffer sizes its spill spools: any size from 64 bytes up
        // opens, and a full spool frees room an eighth at a time.
        let defaults = SpoolConfig::default();
        let half = usize::try_from(max_bytes / 2).unwrap_or(usize::MAX);
        let config = SpoolConfig {
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(64, defaults.segment_bytes),
            max_record: half.clamp(HEADER + 1, defaults.max_record),
            ..defaults
        };
        let mut spool = Spool::open(dir, config).map_err(unusable)?;
        let Some(delivered) = delivered.or_else(|| spool.is_empty().then_some(0)) else {
            return Err(AgentError::input(format!(
                "stdin spool {} holds {} records but the checkpoint has no stdin position: it \
                 was left by an older spillway or the checkpoint was removed; ship it with the \
                 spillway that wrote it, or remove the directory",
                dir.display(),
                spool.len()
            )));
        };
        let end = match spool.peek_newest().map_err(unusable)? {
            Some(rec) => {
                let (offset, _, len) = header(rec).map_err(unusable)?;
                offset.saturating_add(len).max(delivered)
            }
            None => delivered,
        };
        let shared = Shared {
            spool,
            max_bytes,
            end,
            delivered,
            removed: 0,
        };
        let this = Self {
            state: Mutex::new(shared),
            room: Condvar::new(),
        };
        this.remove_through(delivered).map_err(unusable)?;
        this.lock().removed = 0;
        Ok(this)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Chunks in the spool.
    pub fn len(&self) -> u64 {
        self.lock().spool.len()
    }

    /// Bytes of standard input read and not delivered yet.
    pub fn pending_bytes(&self) -> u64 {
        let st = self.lock();
        if st.spool.is_empty() {
            0
        } else {
            st.end.saturating_sub(st.delivered)
        }
    }

    /// Removes every chunk that lies wholly before `offset` (the checkpoint's
    /// delivered offset, already durable) and makes that durable.
    ///
    /// # Errors
    /// The spool could not remove them or save its read position; they stay
    /// and are dropped at the next start instead (the checkpoint says they
    /// were delivered).
    pub fn remove_through(&self, offset: u64) -> Result<(), SpoolError> {
        let mut st = self.lock();
        st.delivered = st.delivered.max(offset);
        let mut removed = 0u64;
        while let Some(rec) = st.spool.peek()? {
            let (start, _, len) = header(rec)?;
            if start.saturating_add(len) > offset {
                break;
            }
            st.spool.remove(1)?;
            removed += 1;
        }
        if removed > 0 {
            st.removed = st.removed.saturating_add(removed);
            st.spool.flush()?;
        }
        drop(st);
        self.room.notify_all();
        Ok(())
    }

    /// Bytes a chunk pushed now may have (0: the spool is full), at most
    /// `chunk`.
    fn room(&self, chunk: usize) -> usize {
        let mut st = self.lock();
        let used = st
            .spool
            .disk_bytes()
            .saturating_add(SPOOL_SLACK + HEADER as u64);
        let room = st.max_bytes.saturating_sub(used);
        let max_record = st.spool.config().max_record.saturating_sub(HEADER);
        // Consumed space comes back at the next sync.
        if room == 0 {
            let _ = st.spool.sync_if_due();
        }
        usize::try_from(room)
            .unwrap_or(usize::MAX)
            .min(chunk)
            .min(max_record)
    }

    /// Waits up to `wait` for the sink to remove something.
    fn wait_for_room(&self, wait: Duration) {
        let st = self.lock();
        let _ = self.room.wait_timeout(st, wait);
    }

    /// Appends a chunk and syncs it; returns its stream offset.
    fn push(&self, data: &[u8], new_stream: bool) -> Result<u64, SpoolError> {
        let mut st = self.lock();
        let offset = st.end;
        st.spool.push_batch([encode(offset, new_stream, data)])?;
        st.spool.flush()?;
        st.end = offset.saturating_add(data.len() as u64);
        Ok(offset)
    }

    /// Syncs what was pushed and closes the spool.
    ///
    /// # Errors
    /// The final sync failed.
    pub fn close(&self) -> Result<(), SpoolError> {
        self.lock().spool.close()
    }
}

/// Why the reader stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdinEnd {
    /// Standard input ended; everything in it is in the spool.
    Eof,
    /// The spool is full (only spooling, with the output down); the rest of
    /// stdin was not read.
    Full,
    /// Told to stop (a signal); the chunk in hand was spooled first.
    Stopped,
    /// Reading or spooling failed; the chunk in hand (at most
    /// `--stdin-chunk` bytes) is lost.
    Failed(String),
}

/// What the reader thread and the shipping side share.
#[derive(Debug, Default)]
struct Handoff {
    /// Durable chunks for the shipping side: offset, new stream, bytes.
    queue: VecDeque<(u64, bool, Vec<u8>)>,
    /// Only spool; hand nothing on (the output is down).
    spool_only: bool,
    quit: bool,
    end: Option<StdinEnd>,
    /// Bytes read and spooled in this run.
    read: u64,
}

#[derive(Debug, Default)]
struct Link {
    state: Mutex<Handoff>,
    changed: Condvar,
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, Handoff> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Standard input: the previous run's backlog first, then what the reader
/// thread spools.
#[derive(Debug)]
pub struct StdinInput {
    spool: Arc<StdinSpool>,
    link: Arc<Link>,
    thread: Option<JoinHandle<()>>,
    lines: Lines,
    /// Chunks in the spool at start (the previous run's backlog), and how
    /// many of them were handed on.
    backlog: u64,
    fed: u64,
    /// Lines split in streams before the current `lines`.
    split_before: u64,
    done: bool,
}

impl StdinInput {
    /// Starts the reader thread, reading at most `chunk` bytes before each
    /// sync; the backlog already in `spool` is handed on first.
    ///
    /// # Errors
    /// Standard input cannot be duplicated or the thread cannot be started.
    pub fn open(spool: Arc<StdinSpool>, chunk: usize) -> Result<Self, AgentError> {
        let backlog = spool.len();
        let delivered = spool.lock().delivered;
        let stdin = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .map_err(|e| AgentError::input(format!("standard input cannot be read: {e}")))?;
        let link = Arc::new(Link::default());
        let reader = Reader {
            stdin,
            spool: Arc::clone(&spool),
            link: Arc::clone(&link),
            chunk: chunk.max(1),
        };
        let thread = thread::Builder::new()
            .name("spillway-stdin".into())
            .spawn(move || reader.run())
            .map_err(|e| AgentError::runtime(format!("cannot start the stdin reader: {e}")))?;
        Ok(Self {
            spool,
            link,
            thread: Some(thread),
            lines: Lines::new(delivered),
            backlog,
            fed: 0,
            split_before: 0,
            done: false,
        })
    }

    /// Bytes of standard input left from the previous run.
    pub fn backlog_bytes(&self) -> u64 {
        self.spool.pending_bytes()
    }

    /// Chunks left from the previous run.
    pub fn backlog(&self) -> u64 {
        self.backlog
    }

    /// Bytes read from standard input (and spooled) in this run.
    pub fn bytes_read(&self) -> u64 {
        self.link.lock().read
    }

    /// Lines longer than the longest record, shipped in pieces.
    pub fn split_lines(&self) -> u64 {
        self.split_before + self.lines.split_lines()
    }

    pub(super) fn next(&mut self, out: &mut Vec<Record>, wait: Duration) -> io::Result<Step> {
        if self.done {
            return Ok(Step::Done);
        }
        if self.fed < self.backlog {
            self.feed_backlog(out).map_err(io::Error::other)?;
            return Ok(Step::Data);
        }
        let mut h = self.link.lock();
        if h.queue.is_empty() && h.end.is_none() {
            h = self
                .link
                .changed
                .wait_timeout(h, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if let Some((offset, new_stream, data)) = h.queue.pop_front() {
            drop(h);
            self.link.changed.notify_all();
            self.take(offset, new_stream, data, out);
            return Ok(Step::Data);
        }
        match h.end.clone() {
            None => Ok(Step::Idle),
            Some(StdinEnd::Failed(e)) => Err(io::Error::other(e)),
            Some(StdinEnd::Eof) => {
                drop(h);
                finish_lines(&mut self.lines, FileId::STDIN, out);
                self.done = true;
                Ok(Step::Done)
            }
            // Stopped or full: what was read is in the spool, and a line
            // left unfinished is finished from there by the next run.
            Some(StdinEnd::Full | StdinEnd::Stopped) => {
                self.done = true;
                Ok(Step::Done)
            }
        }
    }

    /// Stops reading (an orderly stop): waits for the reader to spool the
    /// chunk in hand and end, then hands on every durable chunk not handed
    /// on yet, so they can be delivered before exit.
    pub fn stop(&mut self, out: &mut Vec<Record>) {
        self.link.lock().quit = true;
        self.link.changed.notify_all();
        self.spool.room.notify_all();
        self.join();
        let queued: Vec<_> = self.link.lock().queue.drain(..).collect();
        if !self.done {
            for (offset, new_stream, data) in queued {
                self.take(offset, new_stream, data, out);
            }
        }
        self.done = true;
    }

    /// The output is down: the reader stops handing chunks on and only
    /// spools, until stdin ends, the spool is full, or `stop` is set
    /// (checked every `tick`). Returns why it ended.
    pub fn spool_rest(&mut self, stop: &std::sync::atomic::AtomicBool, tick: Duration) -> StdinEnd {
        {
            let mut h = self.link.lock();
            h.spool_only = true;
            h.queue.clear();
        }
        self.link.changed.notify_all();
        loop {
            let h = self.link.lock();
            if let Some(end) = h.end.clone() {
                drop(h);
                self.join();
                self.done = true;
                return end;
            }
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                drop(h);
                let mut none = Vec::new();
                self.stop(&mut none);
                return StdinEnd::Stopped;
            }
            let _ = self.link.changed.wait_timeout(h, tick);
        }
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Hands on the lines of a durable chunk at stream `offset`.
    fn take(&mut self, offset: u64, new_stream: bool, data: Vec<u8>, out: &mut Vec<Record>) {
        if new_stream {
            // The previous stream ended with this run's start: its last
            // line ends there too.
            finish_lines(&mut self.lines, FileId::STDIN, out);
        }
        let pos = self.lines.pos();
        if offset > pos {
            // Spooled chunks are missing (the spool skipped damaged ones):
            // go on after the gap, and say so to the sink.
            finish_lines(&mut self.lines, FileId::STDIN, out);
            self.split_before += self.lines.split_lines();
            self.lines = Lines::new(offset);
            out.push(Record::switch(FileId::STDIN, offset));
        }
        // A chunk partly delivered before: its delivered part is skipped.
        let skip = usize::try_from(self.lines.pos().saturating_sub(offset)).unwrap_or(usize::MAX);
        if skip >= data.len() {
            return;
        }
        let data = if skip > 0 {
            data[skip..].to_vec()
        } else {
            data
        };
        split_chunk(&mut self.lines, FileId::STDIN, data, out);
    }

    /// Hands on the next chunks of the backlog, leaving them in the spool
    /// until they are delivered. The spool is read from its front, past the
    /// chunks handed on and not yet removed (they are in the buffer).
    fn feed_backlog(&mut self, out: &mut Vec<Record>) -> Result<(), SpoolError> {
        let mut st = self.spool.lock();
        let in_buffer = usize::try_from(self.fed.saturating_sub(st.removed)).unwrap_or(0);
        let left = usize::try_from(self.backlog.saturating_sub(self.fed)).unwrap_or(usize::MAX);
        let want = left.min(BACKLOG_STEP.max(in_buffer));
        let records = st.spool.read(in_buffer.saturating_add(want))?;
        drop(st);
        let mut got = 0usize;
        for rec in records.into_iter().skip(in_buffer) {
            let c = decode(rec)?;
            self.fed += 1;
            got += 1;
            self.take(c.offset, c.new_stream, c.data, out);
        }
        if got == 0 {
            // Fewer records than counted at start (damage found while
            // reading): the backlog is over.
            self.fed = self.backlog;
        }
        Ok(())
    }
}

impl Drop for StdinInput {
    fn drop(&mut self) {
        self.link.lock().quit = true;
        self.link.changed.notify_all();
        self.spool.room.notify_all();
        self.join();
    }
}

/// The reader thread's side.
struct Reader {
    stdin: File,
    spool: Arc<StdinSpool>,
    link: Arc<Link>,
    chunk: usize,
}

impl Reader {
    fn run(self) {
        let end = self.read_all();
        let mut h = self.link.lock();
        h.end = Some(end);
        drop(h);
        self.link.changed.notify_all();
    }

    fn read_all(&self) -> StdinEnd {
        let mut new_stream = true;
        loop {
            // A place in the queue (unless only spooling).
            let spool_only = {
                let mut h = self.link.lock();
                loop {
                    if h.quit {
                        return StdinEnd::Stopped;
                    }
                    if h.spool_only || h.queue.len() < QUEUE_CHUNKS {
                        break h.spool_only;
                    }
                    h = self
                        .link
                        .changed
                        .wait_timeout(h, POLL)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            // Room in the spool, so what is read can be kept.
            let room = self.spool.room(self.chunk);
            if room == 0 {
                if spool_only {
                    return StdinEnd::Full;
                }
                self.spool.wait_for_room(POLL);
                continue;
            }
            match ready(&self.stdin, POLL) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => return StdinEnd::Failed(format!("cannot read standard input: {e}")),
            }
            let (buf, eof) = match self.read_chunk(room) {
                Ok(r) => r,
                Err(e) => return StdinEnd::Failed(format!("cannot read standard input: {e}")),
            };
            if !buf.is_empty() {
                let offset = match self.spool.push(&buf, new_stream) {
                    Ok(o) => o,
                    Err(e) => {
                        return StdinEnd::Failed(format!(
                            "stdin spool: {e}; {} bytes read from standard input were lost",
                            buf.len()
                        ))
                    }
                };
                let mut h = self.link.lock();
                h.read = h.read.saturating_add(buf.len() as u64);
                if !h.spool_only {
                    h.queue.push_back((offset, new_stream, buf));
                }
                drop(h);
                self.link.changed.notify_all();
                new_stream = false;
            }
            if eof {
                return StdinEnd::Eof;
            }
        }
    }

    /// Reads what stdin has ready, up to `room` bytes; `true` at its end.
    fn read_chunk(&self, room: usize) -> io::Result<(Vec<u8>, bool)> {
        let mut buf = vec![0; room];
        let mut len = 0;
        let mut stdin = &self.stdin;
        loop {
            match stdin.read(&mut buf[len..]) {
                Ok(0) => {
                    buf.truncate(len);
                    return Ok((buf, true));
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // More only while it is there already: a quiet producer does
            // not hold back what was read.
            if len == buf.len() || !ready(&self.stdin, Duration::ZERO)? {
                buf.truncate(len);
                if buf.capacity() > 2 * len {
                    // Memory is charged by capacity while the lines live.
                    buf.shrink_to_fit();
                }
                return Ok((buf, false));
            }
        }
    }
}

/// Whether `file` can be read without blocking, waiting up to `wait`.
fn ready(file: &File, wait: Duration) -> io::Result<bool> {
    let mut fds = [PollFd::new(file, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: wait.as_secs().try_into().unwrap_or(1),
        tv_nsec: wait.subsec_nanos().into(),
    };
    loop {
        match poll(&mut fds, Some(&timeout)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "spillway-stdin-spool-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn chunks_the_checkpoint_covers_are_dropped_at_open_and_an_old_spool_is_refused() {
        let d = scratch("cover");
        let sp = StdinSpool::open(&d, 1 << 20, None).unwrap();
        assert_eq!(sp.push(b"a\nb\n", true).unwrap(), 0);
        assert_eq!(sp.push(b"c\nd\n", false).unwrap(), 4);
        assert_eq!(sp.push(b"e\n", false).unwrap(), 8);
        sp.close().unwrap();
        drop(sp);

        // A run died after its checkpoint said "delivered through 6" and
        // before the spool removed anything: the first chunk goes now, the
        // one that straddles 6 stays (its delivered part is skipped later).
        let sp = StdinSpool::open(&d, 1 << 20, Some(6)).unwrap();
        assert_eq!(sp.len(), 2);
        assert_eq!(sp.pending_bytes(), 4);
        let front = decode(sp.lock().spool.read(1).unwrap().remove(0)).unwrap();
        assert_eq!((front.offset, front.new_stream), (4, false));
        assert_eq!(front.data, b"c\nd\n");
        // The next run's stdin goes on after the newest chunk.
        assert_eq!(sp.push(b"f\n", true).unwrap(), 10);
        sp.remove_through(10).unwrap();
        assert_eq!(sp.len(), 1);
        assert_eq!(sp.pending_bytes(), 2);
        sp.close().unwrap();
        drop(sp);

        // Records but no stdin entry in the checkpoint: not this format.
        let err = StdinSpool::open(&d, 1 << 20, None).unwrap_err();
        assert!(err.to_string().contains("older spillway"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_record_that_is_not_a_chunk_is_an_error_not_a_panic() {
        assert!(header(b"short").is_err());
        assert!(header(&[0, 0, 0, 0, 0, 0, 0, 0, 2, b'x']).is_err());
        let rec = encode(7, true, b"xy");
        assert_eq!(header(&rec).unwrap(), (7, NEW_STREAM, 2));
    }
}
