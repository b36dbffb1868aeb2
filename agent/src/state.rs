//! The state directory: a lock that keeps a second agent out, the
//! checkpoint, and the spools.
//!
//! ```text
//! DIR/lock             held (flock) while an agent uses DIR
//! DIR/checkpoint.yaml  positions, winlogbeat layout (spillway::checkpoint)
//! DIR/stdin/           spool of records read from standard input
//! DIR/spool/           the buffer's spill spool
//! ```
//!
//! Checkpoint entries, each a name and a number:
//!
//! - `PATH` (the input's canonical path): the byte offset just past the last
//!   delivered line; `PATH#dev`, `PATH#inode`, `PATH#epoch`: which file that
//!   offset is in (epoch counts truncations seen).
//! - `output:PATH#length`, `output:PATH#dev`, `output:PATH#inode`: the output
//!   file and its length after the last delivered batch.

use std::fs::{File, OpenOptions, TryLockError};
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
}

impl State {
    /// Creates the directory if needed, locks it, and loads the checkpoint.
    /// With `background`, the checkpoint's writer thread writes it whenever
    /// it changed, back to back (a write takes what changed during the one
    /// before); without, it is written only when flushed.
    ///
    /// # Errors
    /// [`AgentError::Input`] (exit 2): the directory cannot be created or
    /// written, another agent holds it, or the checkpoint is corrupt (it is
    /// left as it is).
    pub fn open(dir: &Path, background: bool) -> Result<Self, AgentError> {
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
        let (max_updates, interval) = if background {
            (1, Duration::from_secs(1))
        } else {
            (u32::MAX, Duration::MAX)
        };
        let checkpoint = Checkpoint::open(dir.join(CHECKPOINT_FILE), max_updates, interval)
            .map_err(checkpoint_error)?;
        if checkpoint.report().check == FileCheck::Unverified {
            crate::ui::note(format!(
                "checkpoint file {} has no checksum line (written by winlogbeat or by hand): \
                 loaded as it is; the next write adds one",
                checkpoint.path().display()
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            checkpoint: Arc::new(checkpoint),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint, shared with the sink.
    pub fn checkpoint(&self) -> &Arc<Checkpoint> {
        &self.checkpoint
    }

    /// Where the checkpoint says input `path` was: its file and the offset
    /// past the last delivered line.
    pub fn input_position(&self, path: &Path) -> Option<(FileId, u64)> {
        let names = InputNames::new(path);
        let cp = &self.checkpoint;
        let offset = cp.get(&names.offset)?.record_number;
        let file = FileId {
            dev: cp.get(&names.dev)?.record_number,
            ino: cp.get(&names.inode)?.record_number,
            epoch: u32::try_from(cp.get(&names.epoch)?.record_number).unwrap_or(u32::MAX),
        };
        Some((file, offset))
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
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            AgentError::input(format!(
                "state directory {} is unusable: cannot create {}: {e}",
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

    /// Records `file` and `offset` in memory (the caller flushes).
    ///
    /// The offset goes first: a snapshot taken between the two (by the
    /// background writer) pairs a new offset with the old file, which at
    /// restart is a file that does not match (shipped again from its
    /// start), never the new file resumed at the old file's offset.
    ///
    /// # Errors
    /// The checkpoint is shut down.
    pub fn persist(
        &self,
        cp: &Checkpoint,
        file: FileId,
        offset: u64,
        now: SystemTime,
    ) -> Result<(), CheckpointError> {
        cp.persist(&self.offset, offset, now)?;
        cp.persist(&self.dev, file.dev, now)?;
        cp.persist(&self.inode, file.ino, now)?;
        cp.persist(&self.epoch, u64::from(file.epoch), now)
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

    /// Records the output's identity and length in memory.
    ///
    /// # Errors
    /// The checkpoint is shut down.
    pub fn persist(
        &self,
        cp: &Checkpoint,
        (dev, ino): (u64, u64),
        length: u64,
        now: SystemTime,
    ) -> Result<(), CheckpointError> {
        cp.persist(&self.dev, dev, now)?;
        cp.persist(&self.inode, ino, now)?;
        cp.persist(&self.length, length, now)
    }
}
