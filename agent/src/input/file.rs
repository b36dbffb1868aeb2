//! A file input: resumed from the checkpoint, read in large chunks, and
//! with `--follow`, read as it grows and followed through rotation.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Step;
use crate::error::AgentError;
use crate::lines::Lines;
use crate::record::{FileId, Record};
use crate::ui;

const READ_CHUNK: usize = 256 << 10;

/// An input file being read.
#[derive(Debug)]
pub struct FileInput {
    path: PathBuf,
    canonical: PathBuf,
    file: File,
    id: FileId,
    lines: Lines,
    follow: bool,
    /// A new file is at the path; the old one is read to its end first.
    rotated: bool,
    /// Lines split in files read before the current one.
    split_before: u64,
}

impl FileInput {
    /// Opens `path` and decides where to start: where `resume` (the
    /// checkpoint's file and offset) says if it is still the same file,
    /// otherwise at the beginning, saying why.
    ///
    /// # Errors
    /// [`AgentError::Input`]: the file is missing, unreadable, a directory,
    /// or not a regular file.
    pub fn open(
        path: &Path,
        resume: impl FnOnce(&Path) -> Option<(FileId, u64)>,
        follow: bool,
    ) -> Result<Self, AgentError> {
        let shown = path.display();
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => AgentError::input(format!("input {shown} does not exist")),
            io::ErrorKind::PermissionDenied => {
                AgentError::input(format!("input {shown} is not readable: permission denied"))
            }
            _ => AgentError::input(format!("input {shown} cannot be opened: {e}")),
        })?;
        let meta = file
            .metadata()
            .map_err(|e| AgentError::input(format!("input {shown} cannot be read: {e}")))?;
        if meta.is_dir() {
            return Err(AgentError::input(format!("input {shown} is a directory")));
        }
        if !meta.is_file() {
            return Err(AgentError::input(format!(
                "input {shown} is not a regular file (use --input - to read a stream)"
            )));
        }
        let canonical = fs::canonicalize(path)
            .map_err(|e| AgentError::input(format!("input {shown} cannot be resolved: {e}")))?;
        let (id, start) = starting_point(&canonical, &meta, resume(&canonical));
        let mut input = Self {
            path: path.to_path_buf(),
            canonical,
            file,
            id,
            lines: Lines::new(start),
            follow,
            rotated: false,
            split_before: 0,
        };
        input
            .file
            .seek(SeekFrom::Start(start))
            .map_err(|e| AgentError::input(format!("input {shown} cannot be read: {e}")))?;
        Ok(input)
    }

    /// Resumes input `path` in a file that was rotated away from it while
    /// no agent ran (found at `moved`, with the checkpoint's `file` and
    /// `offset`): it is read to its end first, then the file now at `path`
    /// (if any) from its beginning, so the path's lines keep their order
    /// and its checkpoint entry stays the same.
    ///
    /// # Errors
    /// As for [`open`](Self::open), for either path.
    pub fn resume_moved(
        path: &Path,
        moved: &Path,
        (file, offset): (FileId, u64),
        follow: bool,
    ) -> Result<Self, AgentError> {
        let mut input = Self::open(moved, |_| Some((file, offset)), follow)?;
        input.path = path.to_path_buf();
        input.canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        input.rotated =
            fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) != (file.dev, file.ino));
        Ok(input)
    }

    /// Whether the open file has no name left (it was deleted).
    pub(super) fn deleted(&self) -> bool {
        self.file.metadata().is_ok_and(|m| m.nlink() == 0)
    }

    /// The input's canonical path (the checkpoint's key).
    pub fn canonical(&self) -> &Path {
        &self.canonical
    }

    /// The file being read and the offset of the next line to be read.
    pub fn position(&self) -> (FileId, u64) {
        (self.id, self.lines.pos())
    }

    /// Device and inode of the file being read.
    pub fn identity(&self) -> (u64, u64) {
        (self.id.dev, self.id.ino)
    }

    /// Bytes read so far in the current file, and its size now.
    pub fn progress(&self) -> (u64, Option<u64>) {
        let size = self.file.metadata().ok().map(|m| m.len());
        (self.lines.pos(), size)
    }

    /// Lines longer than the longest record, shipped in pieces.
    pub fn split_lines(&self) -> u64 {
        self.split_before + self.lines.split_lines()
    }

    pub(super) fn next(&mut self, out: &mut Vec<Record>) -> io::Result<Step> {
        loop {
            // A fresh buffer per chunk: its lines keep it alive until they
            // are delivered, and are written out of it without a copy.
            let mut buf = vec![0; READ_CHUNK];
            let n = match self.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n > 0 {
                buf.truncate(n);
                super::split_chunk(&mut self.lines, self.id, buf, out);
                return Ok(Step::Data);
            }
            if self.rotated && !self.follow {
                // Resumed in a file rotated away while no agent ran: the
                // file at the path now comes next.
                self.rotated = false;
                if self.switch_to_new_file(out)? {
                    return Ok(Step::Data);
                }
            }
            if !self.follow {
                self.finish_file(out);
                if self.deleted() {
                    ui::note(format!(
                        "input {} was deleted while it was read; shipped it to its end from \
                         the open file",
                        self.path.display()
                    ));
                }
                return Ok(Step::Done);
            }
            if self.rotated {
                // The old file is read to its end: go on with the new one.
                self.rotated = false;
                if self.switch_to_new_file(out)? {
                    return Ok(Step::Data);
                }
                return Ok(Step::Idle);
            }
            match fs::metadata(&self.path) {
                Ok(m) if (m.dev(), m.ino()) != (self.id.dev, self.id.ino) => {
                    // Read the old file once more: its writer may have added
                    // lines between our last read and the rename.
                    self.rotated = true;
                }
                Ok(m) if m.len() < self.lines.pos() => {
                    self.restart_truncated(m.len(), out)?;
                    return Ok(Step::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && self.deleted() => {
                    // Deleted, not renamed: read to its end above; nothing
                    // more can come. A new file at the path is a new input.
                    self.finish_file(out);
                    ui::note(format!(
                        "input {} was deleted while it was read; shipped it to its end from \
                         the open file",
                        self.path.display()
                    ));
                    return Ok(Step::Done);
                }
                // Unchanged, or moved away with nothing new in its place yet.
                _ => return Ok(Step::Idle),
            }
        }
    }

    /// The input is over (no `--follow`): a last line without a newline
    /// counts as a line.
    fn finish_file(&mut self, out: &mut Vec<Record>) {
        super::finish_lines(&mut self.lines, self.id, out);
    }

    fn switch_to_new_file(&mut self, out: &mut Vec<Record>) -> io::Result<bool> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            // Gone again between the check and the open: try later.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        self.finish_file(out);
        self.split_before += self.lines.split_lines();
        self.file = file;
        self.id = FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            epoch: 0,
        };
        self.lines = Lines::new(0);
        out.push(Record::switch(self.id, 0));
        ui::note(format!(
            "input {} was rotated; reading the new file from its beginning",
            self.path.display()
        ));
        Ok(true)
    }

    fn restart_truncated(&mut self, len: u64, out: &mut Vec<Record>) -> io::Result<()> {
        // What was read of an unfinished line is shipped: the rest of it is gone.
        self.finish_file(out);
        self.split_before += self.lines.split_lines();
        self.file.seek(SeekFrom::Start(0))?;
        self.id.epoch = self.id.epoch.wrapping_add(1);
        self.lines = Lines::new(0);
        out.push(Record::switch(self.id, 0));
        ui::note(format!(
            "input {} was truncated (now {len} bytes); reading it from its beginning",
            self.path.display()
        ));
        Ok(())
    }
}

/// Where to start reading, and which file this is, given what the
/// checkpoint says; reports a file that is no longer the one it knew.
fn starting_point(path: &Path, meta: &fs::Metadata, saved: Option<(FileId, u64)>) -> (FileId, u64) {
    let fresh = FileId {
        dev: meta.dev(),
        ino: meta.ino(),
        epoch: 0,
    };
    let Some((file, offset)) = saved else {
        return (fresh, 0);
    };
    let same_inode = (file.dev, file.ino) == (fresh.dev, fresh.ino);
    if same_inode && meta.len() >= offset {
        return (file, offset);
    }
    if same_inode {
        ui::note(format!(
            "input {} is shorter ({} bytes) than the checkpoint's offset {offset}: it was \
             truncated; shipping it from its beginning",
            path.display(),
            meta.len()
        ));
        let id = FileId {
            epoch: file.epoch.wrapping_add(1),
            ..fresh
        };
        return (id, 0);
    }
    ui::note(format!(
        "input {} is not the file the checkpoint knows (inode {}, now {}); shipping it \
         from its beginning",
        path.display(),
        file.ino,
        fresh.ino
    ));
    (fresh, 0)
}
