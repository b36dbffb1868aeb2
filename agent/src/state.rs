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
//! Checkpoint entries, each a name, a number and the fields of the file it
//! is about:
//!
//! - `PATH` (the input's canonical path): the byte offset just past the last
//!   delivered line; fields `dev`, `inode`, `epoch`: which file that offset
//!   is in (epoch counts truncations seen).
//! - `output:PATH`: the output file's length after the last delivered
//!   batch; fields `dev`, `inode`.
//!
//! Agents before 0.2 kept the identity in entries of its own (`PATH#dev`,
//! `PATH#inode`, `PATH#epoch`, `output:PATH#length`, `output:PATH#dev`,
//! `output:PATH#inode`); they are still read when an entry lacks its fields.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use spillway::checkpoint::{Checkpoint, CheckpointError, EventLogState, FileCheck};

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
        let entry = cp.get(&names.offset)?;
        let field = |field: &str, legacy: &str| identity_field(cp, &entry, field, legacy);
        let file = FileId {
            dev: field(DEV, &names.dev)?,
            ino: field(INODE, &names.inode)?,
            epoch: u32::try_from(field(EPOCH, &names.epoch)?).unwrap_or(u32::MAX),
        };
        Some((file, entry.record_number))
    }

    /// What the checkpoint says about output `path`.
    pub fn output_record(&self, path: &Path) -> Option<Recorded> {
        let names = OutputNames::new(path);
        let cp = &self.checkpoint;
        let entry = cp.get(&names.entry);
        match entry.filter(|e| e.fields.contains(DEV) && e.fields.contains(INODE)) {
            Some(entry) => Some(Recorded {
                dev: entry.fields.get_u64(DEV)?,
                ino: entry.fields.get_u64(INODE)?,
                len: entry.record_number,
            }),
            // Written by an agent before 0.2.
            None => Some(Recorded {
                dev: cp.get(&names.dev)?.record_number,
                ino: cp.get(&names.inode)?.record_number,
                len: cp.get(&names.length)?.record_number,
            }),
        }
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

/// Field of an entry: the device of its file.
pub const DEV: &str = "dev";
/// Field of an entry: the inode of its file.
pub const INODE: &str = "inode";
/// Field of an input's entry: truncations seen.
pub const EPOCH: &str = "epoch";

/// Field `field` of `entry`, or, in a checkpoint written before 0.2, the
/// number of the entry `legacy`.
fn identity_field(
    cp: &Checkpoint,
    entry: &EventLogState,
    field: &str,
    legacy: &str,
) -> Option<u64> {
    if entry.fields.contains(field) {
        entry.fields.get_u64(field)
    } else {
        cp.get(legacy).map(|e| e.record_number)
    }
}

/// Checkpoint entry names of one input.
#[derive(Debug, Clone)]
pub struct InputNames {
    /// The input's entry: the offset past the last delivered line, and the
    /// file it is in as fields.
    pub offset: String,
    /// Before 0.2: the entry of the file's device.
    pub dev: String,
    /// Before 0.2: the entry of its inode.
    pub inode: String,
    /// Before 0.2: the entry of the truncations seen.
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

    /// Records `file` and `offset` in memory (the caller flushes), as one
    /// entry: every write holds the offset with the file it is in.
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
        let mut entry = EventLogState::new(self.offset.as_str(), offset, now);
        entry.fields.set_u64(DEV, file.dev)?;
        entry.fields.set_u64(INODE, file.ino)?;
        entry.fields.set_u64(EPOCH, u64::from(file.epoch))?;
        cp.persist_many([&entry])
    }
}

/// Checkpoint entry names of one output file.
#[derive(Debug, Clone)]
pub struct OutputNames {
    /// The output's entry: its length after the last delivered batch, and
    /// the file as fields.
    pub entry: String,
    /// Before 0.2: the entry of the length.
    pub length: String,
    /// Before 0.2: the entry of the file's device.
    pub dev: String,
    /// Before 0.2: the entry of its inode.
    pub inode: String,
}

/// Prefix of every output entry's name.
pub const OUTPUT_PREFIX: &str = "output:";

impl OutputNames {
    /// The names for output `path` (canonical).
    pub fn new(path: &Path) -> Self {
        let p = path.to_string_lossy();
        Self {
            entry: format!("{OUTPUT_PREFIX}{p}"),
            length: format!("{OUTPUT_PREFIX}{p}#length"),
            dev: format!("{OUTPUT_PREFIX}{p}#dev"),
            inode: format!("{OUTPUT_PREFIX}{p}#inode"),
        }
    }

    /// Records the output's identity and length in memory, as one entry.
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
        let mut entry = EventLogState::new(self.entry.as_str(), length, now);
        entry.fields.set_u64(DEV, dev)?;
        entry.fields.set_u64(INODE, ino)?;
        cp.persist_many([&entry])
    }
}
