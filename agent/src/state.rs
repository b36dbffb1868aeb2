//! The state directory: a lock that keeps a second agent out, the
//! checkpoint, and the spools.
//!
//! ```text
//! DIR/lock             held (flock) while an agent uses DIR
//! DIR/checkpoint.yaml  positions, winlogbeat layout (spillway::checkpoint)
//! DIR/stdin/           spool of chunks read from standard input
//! DIR/spool/           the buffer's spill spool
//! ```
//!
//! Checkpoint entries, each a name and a number (how an identity is stored
//! is known only here: [`InputNames`], [`OutputNames`], [`read_entries`],
//! [`State::input_entries`], so the form can change in one place):
//!
//! - `PATH` (the input's canonical path): the byte offset just past the last
//!   delivered line; `PATH#dev`, `PATH#inode`, `PATH#epoch`: which file that
//!   offset is in (epoch counts truncations seen).
//! - `output:PATH#length`, `output:PATH#dev`, `output:PATH#inode`: the output
//!   file and its length after the last delivered batch.
//! - `output:nats:SUBJECT#agent`, `output:nats:SUBJECT#sequence`: a NATS
//!   output's agent id (the `Nats-Msg-Id` prefix, made once) and the stream
//!   sequence of its last acknowledged message.
//! - `stdin`: standard input's stream offset just past the last delivered
//!   line (see `input::stdin`).
//!
//! A batch's entries (the output's length and the offsets it covers) are
//! one [`Group`], and reach the file in one write ([`CheckpointWriter`]).

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use spillway::checkpoint::{Checkpoint, CheckpointError, FileCheck};

use crate::error::AgentError;
use crate::output::Recorded;
use crate::record::FileId;

/// File name of the checkpoint inside the state directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.yaml";
/// Directory of the stdin spool inside the state directory.
pub const STDIN_SPOOL: &str = "stdin";
/// Directory of the spill spool inside the state directory.
pub const SPILL_SPOOL: &str = "spool";
const LOCK_FILE: &str = "lock";

/// An open state directory, locked for this process.
#[derive(Debug)]
pub struct State {
    dir: PathBuf,
    _lock: File,
    checkpoint: Arc<Checkpoint>,
    writer: Arc<CheckpointWriter>,
}

impl State {
    /// Creates the directory if needed, locks it, and loads the checkpoint,
    /// which is written only through [`State::writer`].
    ///
    /// # Errors
    /// [`AgentError::Input`] (exit 2): the directory cannot be created or
    /// written, another agent holds it, or the checkpoint is corrupt (it is
    /// left as it is).
    pub fn open(dir: &Path) -> Result<Self, AgentError> {
        let unusable = |e: io::Error| {
            AgentError::input(format!(
                "state directory {} is unusable: {e}",
                dir.display()
            ))
        };
        std::fs::create_dir_all(dir).map_err(unusable)?;
        let lock = lock_dir(dir)?.ok_or_else(|| {
            AgentError::input(format!(
                "state directory {} is in use by another spillway agent",
                dir.display()
            ))
        })?;
        // The library's own writer never runs: only CheckpointWriter writes,
        // so that a group of entries always reaches the file whole.
        let checkpoint = Checkpoint::open(dir.join(CHECKPOINT_FILE), u32::MAX, Duration::MAX)
            .map_err(checkpoint_error)?;
        if checkpoint.report().check == FileCheck::Unverified {
            crate::ui::note(format!(
                "checkpoint file {} has no checksum line (written by winlogbeat or by hand): \
                 loaded as it is; the next write adds one",
                checkpoint.path().display()
            ));
        }
        let checkpoint = Arc::new(checkpoint);
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            writer: Arc::new(CheckpointWriter::new(Arc::clone(&checkpoint))),
            checkpoint,
        })
    }

    /// The only way entries reach the checkpoint file.
    pub fn writer(&self) -> &Arc<CheckpointWriter> {
        &self.writer
    }

    /// Writes what is left and stops the background writer, if any.
    ///
    /// # Errors
    /// The last write failed.
    pub fn shutdown(&self) -> Result<(), CheckpointError> {
        self.writer.shutdown()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The value of checkpoint entry `name`, if it has one (the NATS
    /// output's agent id).
    #[cfg(feature = "nats")]
    pub fn entry(&self, name: &str) -> Option<u64> {
        self.checkpoint.get(name).map(|s| s.record_number)
    }

    /// The checkpoint's stdin offset: just past the last delivered line of
    /// standard input's stream (`None`: stdin was never read with this DIR).
    pub fn stdin_delivered(&self) -> Option<u64> {
        self.checkpoint.get(STDIN_ENTRY).map(|s| s.record_number)
    }

    /// What the checkpoint says about output `path`.
    pub fn output_record(&self, path: &Path) -> Option<Recorded> {
        let names = OutputNames::new(path);
        let cp = &self.checkpoint;
        Some(Recorded {
            dev: cp.get(&names.dev)?.record_number,
            ino: cp.get(&names.inode)?.record_number,
            len: cp.get(&names.length)?.record_number,
        })
    }
}

/// Takes the directory's lock; `None` when another process holds it.
///
/// # Errors
/// The lock file cannot be created (exit 2).
pub fn lock_dir(dir: &Path) -> Result<Option<File>, AgentError> {
    let path = dir.join(LOCK_FILE);
    // Never blocks on a FIFO standing there, never follows a link.
    let file = spillway::regular_file::open_or_create(&path).map_err(|e| {
        AgentError::input(format!(
            "state directory {} is unusable: {}: {e}",
            dir.display(),
            path.display()
        ))
    })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(AgentError::input(format!(
            "state directory {} is unusable: cannot lock {}: {e}",
            dir.display(),
            path.display()
        ))),
    }
}

/// A checkpoint error as the agent reports it: a corrupt or unreadable file
/// is bad input (exit 2).
pub fn checkpoint_error(e: CheckpointError) -> AgentError {
    match e {
        CheckpointError::Corrupt { .. } | CheckpointError::Io { .. } => {
            AgentError::input(e.to_string())
        }
        other => AgentError::runtime(other.to_string()),
    }
}

/// The checkpoint entry of standard input's delivered offset.
pub const STDIN_ENTRY: &str = "stdin";

/// Adds standard input's delivered `offset` to `group`.
pub fn add_stdin(group: &mut Group, offset: u64) {
    group.add(STDIN_ENTRY, offset);
}

/// Checkpoint entry names of one input.
#[derive(Debug, Clone)]
pub struct InputNames {
    /// Offset past the last delivered line.
    pub offset: String,
    /// Device of the file the offset is in.
    pub dev: String,
    /// Its inode.
    pub inode: String,
    /// Truncations seen.
    pub epoch: String,
}

impl InputNames {
    /// The names for input `path` (canonical).
    pub fn new(path: &Path) -> Self {
        let p = path.to_string_lossy();
        Self {
            offset: p.to_string(),
            dev: format!("{p}#dev"),
            inode: format!("{p}#inode"),
            epoch: format!("{p}#epoch"),
        }
    }

    /// Adds `file` and `offset` to `group`.
    pub fn add_to(&self, group: &mut Group, file: FileId, offset: u64) {
        group.add(&self.offset, offset);
        group.add(&self.dev, file.dev);
        group.add(&self.inode, file.ino);
        group.add(&self.epoch, u64::from(file.epoch));
    }
}

/// Checkpoint entry names of one output file.
#[derive(Debug, Clone)]
pub struct OutputNames {
    /// Length after the last delivered batch.
    pub length: String,
    /// Device of the file.
    pub dev: String,
    /// Its inode.
    pub inode: String,
}

/// Prefix of every output entry's name.
pub const OUTPUT_PREFIX: &str = "output:";

impl OutputNames {
    /// The names for output `path` (canonical).
    pub fn new(path: &Path) -> Self {
        let p = path.to_string_lossy();
        Self {
            length: format!("{OUTPUT_PREFIX}{p}#length"),
            dev: format!("{OUTPUT_PREFIX}{p}#dev"),
            inode: format!("{OUTPUT_PREFIX}{p}#inode"),
        }
    }

    /// Adds the output's identity and length to `group`.
    pub fn add_to(&self, group: &mut Group, (dev, ino): (u64, u64), length: u64) {
        group.add(&self.dev, dev);
        group.add(&self.inode, ino);
        group.add(&self.length, length);
    }
}

/// What the checkpoint says about one input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// The file the offset is in.
    pub file: FileId,
    /// Just past its last delivered line.
    pub offset: u64,
}

impl State {
    /// Every input file the checkpoint knows, by canonical path.
    pub fn input_entries(&self) -> Vec<(PathBuf, Known)> {
        read_entries(self.checkpoint.states())
            .inputs
            .into_iter()
            .filter_map(|(path, f)| {
                let (Some(dev), Some(ino)) = f.identity() else {
                    return None;
                };
                let epoch = u32::try_from(f.epoch()?).unwrap_or(u32::MAX);
                let file = FileId { dev, ino, epoch };
                Some((
                    PathBuf::from(path),
                    Known {
                        file,
                        offset: f.offset()?,
                    },
                ))
            })
            .collect()
    }
}

/// The input files of a run, shared by the reader (which opens files and
/// moves between them) and the sink (which moves each one's checkpoint
/// entry): each file (an identity, [`FileId`]) belongs to one input, the
/// path whose checkpoint entry it moves.
#[derive(Debug, Default)]
pub struct InputKeys {
    inner: std::sync::Mutex<KeysInner>,
}

#[derive(Debug, Default)]
struct KeysInner {
    /// Per input: its entry names and where delivery starts in this run.
    inputs: Vec<(InputNames, FileId, u64)>,
    by_path: std::collections::HashMap<PathBuf, usize>,
    by_file: std::collections::HashMap<FileId, usize>,
}

impl InputKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeysInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers input `path` (canonical), delivered up to `offset` of
    /// `file` at start; returns its index.
    pub fn register(&self, path: &Path, file: FileId, offset: u64) -> usize {
        let mut k = self.lock();
        let i = match k.by_path.get(path) {
            Some(&i) => {
                k.inputs[i].1 = file;
                k.inputs[i].2 = offset;
                i
            }
            None => {
                k.inputs.push((InputNames::new(path), file, offset));
                let i = k.inputs.len() - 1;
                k.by_path.insert(path.to_path_buf(), i);
                i
            }
        };
        k.by_file.insert(file, i);
        i
    }

    /// Input `index` moved on to `file` (rotation, truncation).
    pub fn alias(&self, index: usize, file: FileId) {
        self.lock().by_file.insert(file, index);
    }

    /// The input that `file` belongs to.
    pub fn input_of(&self, file: FileId) -> Option<usize> {
        self.lock().by_file.get(&file).copied()
    }

    /// Where delivery of input `index` started in this run.
    pub fn start(&self, index: usize) -> Option<(FileId, u64)> {
        self.lock().inputs.get(index).map(|(_, f, o)| (*f, *o))
    }

    /// The checkpoint entry names of input `index`.
    pub fn names(&self, index: usize) -> Option<InputNames> {
        self.lock().inputs.get(index).map(|(n, _, _)| n.clone())
    }
}

/// Checkpoint entries that reach the file together, in one write, or not
/// at all: a batch's output length with the input offsets it covers.
#[derive(Debug, Default)]
pub struct Group(Vec<(String, u64)>);

impl Group {
    /// Adds entry `name` with `value` (an output that keeps entries of its
    /// own, such as NATS's stream sequence, names them itself).
    pub fn add(&mut self, name: &str, value: u64) {
        self.0.push((name.to_owned(), value));
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Writes the checkpoint: on the caller's thread (each commit is durable
/// when it returns), or, once [`run_in_background`](Self::run_in_background)
/// was called, on a thread of its own that writes whatever was committed,
/// back to back.
///
/// Either way a [`Group`] is written whole: only this writer puts entries
/// into the checkpoint, and it puts a group in and writes the file before
/// it takes the next one, so no write can hold half of a group. (The
/// library's own background writer could take its snapshot between two
/// entries of a group: an output length without the offsets it covers,
/// which a restart reads as a repeated batch.)
#[derive(Debug)]
pub struct CheckpointWriter {
    cp: Arc<Checkpoint>,
    shared: Arc<Background>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Background {
    state: std::sync::Mutex<Pending>,
    wake: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    running: bool,
    stop: bool,
    /// Committed groups not written yet, oldest first.
    entries: Vec<(String, u64)>,
}

impl Background {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CheckpointWriter {
    fn new(cp: Arc<Checkpoint>) -> Self {
        Self {
            cp,
            shared: Arc::default(),
            thread: std::sync::Mutex::new(None),
        }
    }

    /// Whether commits return before they are durable.
    pub fn is_background(&self) -> bool {
        self.shared.lock().running
    }

    /// From now on, commits are written by a thread of its own.
    ///
    /// # Errors
    /// The thread cannot be started (commits stay on the caller's thread).
    pub fn run_in_background(&self) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let cp = Arc::clone(&self.cp);
        let handle = std::thread::Builder::new()
            .name("spillway-checkpoint".into())
            .spawn(move || loop {
                let mut st = shared.lock();
                while st.entries.is_empty() && !st.stop {
                    st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                let entries = std::mem::take(&mut st.entries);
                let stop = st.stop;
                drop(st);
                // A failed write stays the checkpoint's last error; the
                // state stays in memory and the next write (at the latest
                // the final one, in `shutdown`) tries again.
                let _ = write(&cp, entries);
                if stop {
                    return;
                }
            })?;
        self.shared.lock().running = true;
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(())
    }

    /// Commits `group`: durable when this returns, or (in the background)
    /// at the next write.
    ///
    /// # Errors
    /// Writing failed (on the caller's thread), or the checkpoint is shut
    /// down.
    pub fn commit(&self, group: Group) -> Result<(), CheckpointError> {
        if group.is_empty() {
            return Ok(());
        }
        let mut st = self.shared.lock();
        if st.running {
            st.entries.extend(group.0);
            drop(st);
            self.shared.wake.notify_one();
            return Ok(());
        }
        drop(st);
        write(&self.cp, group.0)
    }

    fn shutdown(&self) -> Result<(), CheckpointError> {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        let left = std::mem::take(&mut self.shared.lock().entries);
        for (name, value) in left {
            self.cp.persist(&name, value, SystemTime::now())?;
        }
        self.cp.shutdown()
    }
}

/// Puts `entries` into the checkpoint and writes it.
fn write(cp: &Checkpoint, entries: Vec<(String, u64)>) -> Result<(), CheckpointError> {
    let now = SystemTime::now();
    for (name, value) in entries {
        cp.persist(&name, value, now)?;
    }
    cp.flush()
}

/// The checkpoint's entries as inputs, outputs and stdin: the one place
/// that knows how an identity is stored (today as `NAME#field` pseudo
/// entries beside the offset).
#[derive(Debug, Default)]
pub struct Entries {
    /// Input files by canonical path.
    pub inputs: std::collections::BTreeMap<String, Fields>,
    /// Output files by canonical path.
    pub outputs: std::collections::BTreeMap<String, Fields>,
    /// Standard input's delivered offset.
    pub stdin: Option<spillway::checkpoint::EventLogState>,
}

/// The stored fields of one input or output.
#[derive(Debug, Default)]
pub struct Fields(std::collections::BTreeMap<String, spillway::checkpoint::EventLogState>);

impl Fields {
    fn num(&self, field: &str) -> Option<u64> {
        self.0.get(field).map(|s| s.record_number)
    }

    /// An input's offset past its last delivered line.
    pub fn offset(&self) -> Option<u64> {
        self.num("")
    }

    /// An output's length after its last delivered batch.
    pub fn length(&self) -> Option<u64> {
        self.num("length")
    }

    /// Device and inode of the file.
    pub fn identity(&self) -> (Option<u64>, Option<u64>) {
        (self.num("dev"), self.num("inode"))
    }

    /// Truncations seen (inputs).
    pub fn epoch(&self) -> Option<u64> {
        self.num("epoch")
    }

    /// A NATS output's last acknowledged stream sequence.
    pub fn sequence(&self) -> Option<u64> {
        self.num("sequence")
    }

    /// A NATS output's agent id (the `Nats-Msg-Id` prefix).
    pub fn agent(&self) -> Option<u64> {
        self.num("agent")
    }

    /// When the offset (inputs), length (file outputs) or stream sequence
    /// (NATS outputs) was last written.
    pub fn updated(&self) -> Option<SystemTime> {
        self.0
            .get("")
            .or_else(|| self.0.get("length"))
            .or_else(|| self.0.get("sequence"))
            .map(|s| s.timestamp)
    }
}

/// Sorts checkpoint `states` into inputs, outputs and stdin.
pub fn read_entries(states: Vec<spillway::checkpoint::EventLogState>) -> Entries {
    let mut e = Entries::default();
    for s in states {
        if s.name == STDIN_ENTRY {
            e.stdin = Some(s);
            continue;
        }
        let (group, name) = match s.name.strip_prefix(OUTPUT_PREFIX) {
            Some(rest) => (&mut e.outputs, rest.to_owned()),
            None => (&mut e.inputs, s.name.clone()),
        };
        let (base, field) = match name.rsplit_once('#') {
            Some((b, f)) => (b.to_owned(), f.to_owned()),
            None => (name, String::new()),
        };
        group.entry(base).or_default().0.insert(field, s);
    }
    e
}
