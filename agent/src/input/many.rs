//! The file inputs of a run: every `--input` path and every file its glob
//! matches, each read by a [`FileInput`] of its own (so each keeps its
//! order, its checkpoint entry and its rotation handling), taken in turn a
//! chunk at a time.
//!
//! Files are told apart by identity (device, inode), as Filebeat does:
//! - a file the checkpoint knows under another path (renamed) resumes from
//!   its offset there;
//! - with `--follow`, the patterns are matched again every second, and a
//!   file that starts to match is read from its beginning; a file this run
//!   already reads or read (a rotated name that still matches) is not read
//!   twice;
//! - at start, a file that the checkpoint knows but that was rotated away
//!   while no agent ran (found by identity among its old directory's files)
//!   is finished from its offset before the file now at its path is read,
//!   under the same checkpoint entry.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{glob, FileInput, Step};
use crate::error::AgentError;
use crate::record::{FileId, Record};
use crate::state::{InputKeys, Known};
use crate::ui;

/// How often `--follow` matches the patterns again.
const RESCAN: Duration = Duration::from_secs(1);

/// One file being read.
#[derive(Debug)]
struct Reader {
    input: FileInput,
    /// Its input's index in [`InputKeys`].
    key: usize,
    /// The file it reads now (changes at rotation and truncation).
    file: FileId,
    done: bool,
}

/// The file inputs of a run.
#[derive(Debug)]
pub struct Files {
    /// `--input` values, as given.
    specs: Vec<PathBuf>,
    readers: Vec<Reader>,
    keys: Arc<InputKeys>,
    /// The checkpoint's input entries at start.
    saved: Vec<(PathBuf, Known)>,
    follow: bool,
    /// Files (device, inode) this run reads or read.
    seen: HashSet<(u64, u64)>,
    /// The output file (identity, path), never read as an input.
    output: Option<((u64, u64), PathBuf)>,
    next: usize,
    last_scan: Instant,
    /// Lines split in files whose readers were dropped.
    split_done: u64,
}

impl Files {
    /// Opens every file the `specs` name or match now, resuming each where
    /// `saved` (the checkpoint) says, and finishes rotated-away files the
    /// checkpoint knows.
    ///
    /// # Errors
    /// [`AgentError::Input`]: a path that is missing or not a readable
    /// regular file, a pattern that matches nothing (without `--follow`),
    /// or a path that is the output file.
    pub fn open(
        specs: &[PathBuf],
        saved: Vec<(PathBuf, Known)>,
        follow: bool,
        output: Option<((u64, u64), PathBuf)>,
        keys: Arc<InputKeys>,
    ) -> Result<Self, AgentError> {
        let mut files = Self {
            specs: specs.to_vec(),
            readers: Vec::new(),
            keys,
            saved,
            follow,
            seen: HashSet::new(),
            output,
            next: 0,
            last_scan: Instant::now(),
            split_done: 0,
        };
        for spec in specs {
            if glob::is_pattern(spec) {
                let found = glob::expand(spec);
                if found.is_empty() {
                    if !follow {
                        return Err(AgentError::input(format!(
                            "input pattern {} matches no file",
                            spec.display()
                        )));
                    }
                    ui::note(format!(
                        "input pattern {} matches no file yet; waiting for one",
                        spec.display()
                    ));
                }
                for path in found {
                    // One unreadable match does not stop the others.
                    if let Err(e) = files.add(&path, follow, false) {
                        ui::note(format!("{e}; skipped"));
                    }
                }
            } else {
                files.add(spec, follow, true)?;
            }
        }
        files.finish_rotated_away()?;
        if files.readers.is_empty() && !follow {
            return Err(AgentError::input(
                "no input file could be read (see the messages above)",
            ));
        }
        Ok(files)
    }

    /// Starts reading `path` unless it is read already or is the output.
    /// `named`: the user named it (not a pattern's match), so it being the
    /// output is an error rather than skipped.
    fn add(&mut self, path: &Path, follow: bool, named: bool) -> Result<(), AgentError> {
        let saved = &self.saved;
        let input = FileInput::open(path, |canonical| resume(saved, canonical), follow)?;
        let ident = input.identity();
        if let Some((_, out)) = self.output.as_ref().filter(|(o, _)| *o == ident) {
            if named {
                return Err(AgentError::input(format!(
                    "input {} and output {} are the same file",
                    path.display(),
                    out.display()
                )));
            }
            return Ok(());
        }
        let canonical = input.canonical().to_path_buf();
        if self.seen.contains(&ident) || self.holds(&canonical) {
            return Ok(());
        }
        let (file, offset) = input.position();
        let key = self.keys.register(&canonical, file, offset);
        self.seen.insert(ident);
        self.readers.push(Reader {
            input,
            key,
            file,
            done: false,
        });
        Ok(())
    }

    /// Whether a reader that is still reading has this canonical path.
    fn holds(&self, canonical: &Path) -> bool {
        self.readers
            .iter()
            .any(|r| !r.done && r.input.canonical() == canonical)
    }

    /// Files the checkpoint knows that no reader has: if one is found (by
    /// identity) next to where it was, it was rotated while no agent ran.
    /// Its input's reader then starts in it, from the checkpoint's offset,
    /// and goes on with the file now at the path once it is finished: the
    /// path's lines keep their order and its entry stays the same.
    fn finish_rotated_away(&mut self) -> Result<(), AgentError> {
        let lost: Vec<(PathBuf, Known)> = self
            .saved
            .iter()
            .filter(|(_, k)| !self.seen.contains(&(k.file.dev, k.file.ino)))
            .cloned()
            .collect();
        for (was, known) in lost {
            let Some(dir) = was.parent() else { continue };
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            let found = entries.filter_map(Result::ok).find(|e| {
                fs::metadata(e.path()).is_ok_and(|m| {
                    m.is_file()
                        && (m.dev(), m.ino()) == (known.file.dev, known.file.ino)
                        && m.len() > known.offset
                })
            });
            let Some(entry) = found else { continue };
            let moved = entry.path();
            let input =
                FileInput::resume_moved(&was, &moved, (known.file, known.offset), self.follow)?;
            ui::note(format!(
                "input {} was rotated to {} while no agent ran; finishing it from offset {} \
                 before the file now at its path",
                was.display(),
                moved.display(),
                known.offset
            ));
            let key = self.keys.register(&was, known.file, known.offset);
            self.seen.insert(input.identity());
            let reader = Reader {
                input,
                key,
                file: known.file,
                done: false,
            };
            // The reader opened on the path's new file gives way.
            match self.readers.iter().position(|r| r.input.canonical() == was) {
                Some(i) => self.readers[i] = reader,
                None => self.readers.push(reader),
            }
        }
        Ok(())
    }

    /// Matches the patterns again; new files are read from their start.
    fn rescan(&mut self) -> Result<(), AgentError> {
        self.last_scan = Instant::now();
        let mut matched = HashSet::new();
        for spec in self.specs.clone() {
            let found = if glob::is_pattern(&spec) {
                glob::expand(&spec)
            } else if spec.is_file() {
                vec![spec.clone()]
            } else {
                Vec::new()
            };
            for path in found {
                let Ok(meta) = fs::metadata(&path) else {
                    continue;
                };
                let ident = (meta.dev(), meta.ino());
                matched.insert(ident);
                let is_output = self.output.as_ref().is_some_and(|(o, _)| *o == ident);
                if self.seen.contains(&ident) || is_output {
                    continue;
                }
                let canonical = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                if self.holds(&canonical) {
                    // Its reader moves on to it when it finished the old one.
                    continue;
                }
                let before = self.readers.len();
                match self.add(&path, true, false) {
                    Ok(()) if self.readers.len() > before => {
                        ui::note(format!("input {} appeared; reading it", path.display()))
                    }
                    Ok(()) => {}
                    // Gone or unreadable between the match and the open.
                    Err(e) => ui::note(format!("{e}; skipped for now")),
                }
            }
        }
        // A file that no longer matches (gone, or renamed out of the
        // globs) and is not being read is forgotten: its inode number may
        // be reused by a new file, which must then count as new.
        let held: HashSet<(u64, u64)> = self
            .readers
            .iter()
            .filter(|r| !r.done)
            .map(|r| (r.file.dev, r.file.ino))
            .collect();
        self.seen
            .retain(|id| matched.contains(id) || held.contains(id));
        Ok(())
    }

    /// Files read (or being read), with their canonical paths.
    pub fn inputs(&self) -> impl Iterator<Item = &FileInput> {
        self.readers.iter().map(|r| &r.input)
    }

    /// Bytes read so far and the files' sizes now, summed.
    pub fn progress(&self) -> (u64, Option<u64>) {
        let mut pos = 0u64;
        let mut size = Some(0u64);
        for r in &self.readers {
            let (p, s) = r.input.progress();
            pos = pos.saturating_add(p);
            size = match (size, s) {
                (Some(a), Some(b)) => Some(a.saturating_add(b)),
                _ => None,
            };
        }
        (pos, size)
    }

    /// Lines longer than the longest record, shipped in pieces.
    pub fn split_lines(&self) -> u64 {
        self.split_done
            + self
                .readers
                .iter()
                .map(|r| r.input.split_lines())
                .sum::<u64>()
    }

    /// Reads the next chunk of the next file that has one.
    pub(super) fn next(&mut self, out: &mut Vec<Record>) -> io::Result<Step> {
        if self.follow && self.readers.iter().any(|r| r.done) {
            // A long --follow run does not keep every finished file open.
            let (done, active): (Vec<_>, Vec<_>) = std::mem::take(&mut self.readers)
                .into_iter()
                .partition(|r| r.done);
            self.split_done += done.iter().map(|r| r.input.split_lines()).sum::<u64>();
            self.readers = active;
        }
        if self.follow && self.last_scan.elapsed() >= RESCAN {
            self.rescan().map_err(io::Error::other)?;
        }
        let n = self.readers.len();
        for i in 0..n {
            let at = (self.next + i) % n;
            let r = &mut self.readers[at];
            if r.done {
                continue;
            }
            let step = r.input.next(out)?;
            let (file, _) = r.input.position();
            if file != r.file {
                r.file = file;
                self.keys.alias(r.key, file);
                self.seen.insert((file.dev, file.ino));
            }
            match step {
                Step::Data => {
                    self.next = at + 1;
                    return Ok(Step::Data);
                }
                Step::Done => {
                    r.done = true;
                    if r.input.deleted() {
                        // Its inode may come back as a new file.
                        self.seen.remove(&(file.dev, file.ino));
                    }
                    if !out.is_empty() {
                        self.next = at + 1;
                        return Ok(Step::Data);
                    }
                }
                Step::Idle => {}
            }
        }
        if !self.follow && self.readers.iter().all(|r| r.done) {
            return Ok(Step::Done);
        }
        Ok(Step::Idle)
    }
}

/// Where to resume `canonical`: its own checkpoint entry, or, when the file
/// there is one the checkpoint knows under another path (it was renamed),
/// that entry.
fn resume(saved: &[(PathBuf, Known)], canonical: &Path) -> Option<(FileId, u64)> {
    let own = saved
        .iter()
        .find(|(p, _)| p == canonical)
        .map(|(_, k)| (k.file, k.offset));
    let Ok(meta) = fs::metadata(canonical) else {
        return own;
    };
    let ident = (meta.dev(), meta.ino());
    if own.is_some_and(|(f, _)| (f.dev, f.ino) == ident) {
        return own;
    }
    saved
        .iter()
        .find(|(_, k)| (k.file.dev, k.file.ino) == ident)
        .map(|(_, k)| (k.file, k.offset))
        .or(own)
}
