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
//! How positions are stored as checkpoint entries is known only to
//! [`crate::entries`]. A checkpoint in the older layout (identity as
//! `NAME#FIELD` entries) is migrated in memory at open, so the next write
//! has the new layout.
//!
//! A batch's entries (the output's length and the offsets it covers) are
//! one [`Group`], and reach the file in one write ([`CheckpointWriter`]).

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use spillway::checkpoint::{Checkpoint, CheckpointError, FileCheck};

pub use crate::entries::{add_stdin, Fields, Group, InputNames, OutputNames};
use crate::entries::{read_entries, Entry, STDIN_ENTRY};
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
        migrate(&checkpoint)?;
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

    /// The agent id a NATS output's entry holds, if it has one.
    #[cfg(feature = "nats")]
    pub fn nats_agent(&self, names: &crate::entries::NatsNames) -> Option<u64> {
        let state = self.checkpoint.get(&names.entry)?;
        crate::entries::NatsNames::agent(&state)
    }

    /// The last stream sequence a NATS output's entry holds and its
    /// unfinished segment (see [`crate::entries::NatsNames::known`]);
    /// `(0, None)` without an entry.
    #[cfg(feature = "nats")]
    pub fn nats_known(&self, names: &crate::entries::NatsNames) -> (u64, Option<u64>) {
        self.checkpoint
            .get(&names.entry)
            .map_or((0, None), |s| crate::entries::NatsNames::known(&s))
    }

    /// The messages a NATS output's entry says the stream stored after one
    /// it refused and are not removed yet (see
    /// [`crate::entries::NatsNames::strays`]).
    ///
    /// # Errors
    /// The field is not readable (the text says why).
    #[cfg(feature = "nats")]
    pub fn nats_strays(
        &self,
        names: &crate::entries::NatsNames,
    ) -> Result<Option<crate::entries::Strays>, String> {
        self.checkpoint
            .get(&names.entry)
            .map_or(Ok(None), |s| crate::entries::NatsNames::strays(&s))
    }

    /// The checkpoint's stdin offset: just past the last delivered line of
    /// standard input's stream (`None`: stdin was never read with this DIR).
    pub fn stdin_delivered(&self) -> Option<u64> {
        self.checkpoint.get(STDIN_ENTRY).map(|s| s.record_number)
    }

    /// What the checkpoint says about output `path`.
    pub fn output_record(&self, path: &Path) -> Option<Recorded> {
        let entry = self.checkpoint.get(&OutputNames::new(path).entry)?;
        Some(Recorded {
            dev: entry.fields.get_u64("dev")?,
            ino: entry.fields.get_u64("inode")?,
            len: entry.record_number,
        })
    }
}

/// Moves the older layout's entries of `cp` into the new one, in memory:
/// the next write has the new layout and not the old entries.
fn migrate(cp: &Checkpoint) -> Result<(), AgentError> {
    let m = crate::entries::migrate(&cp.states());
    if m.is_empty() {
        return Ok(());
    }
    cp.persist_many(&m.entries)
        .and_then(|()| cp.remove(m.removed.iter().map(String::as_str)))
        .map_err(|e| AgentError::runtime(e.to_string()))?;
    Ok(())
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
                        offset: f.offset(),
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
    entries: Vec<Entry>,
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
        let now = SystemTime::now();
        let states = left
            .iter()
            .map(|e| e.state(now))
            .collect::<Result<Vec<_>, _>>()?;
        self.cp.persist_many(&states)?;
        self.cp.shutdown()
    }
}

/// Puts `entries` into the checkpoint and writes it.
fn write(cp: &Checkpoint, entries: Vec<Entry>) -> Result<(), CheckpointError> {
    let now = SystemTime::now();
    let states = entries
        .iter()
        .map(|e| e.state(now))
        .collect::<Result<Vec<_>, _>>()?;
    cp.persist_many(&states)?;
    cp.flush()
}
