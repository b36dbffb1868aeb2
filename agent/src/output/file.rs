//! A file output: batches appended, synced before they count as delivered,
//! and what was written but never confirmed is taken back.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, IoSlice, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the checkpoint says about the output: which file, and how long it
/// was after the last batch that was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Length after the last confirmed batch.
    pub len: u64,
}

/// What opening the output found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconciled {
    /// Nothing to say: a new file, another file than recorded, or the length
    /// recorded.
    Clean,
    /// The previous run wrote this many bytes past the last confirmed batch
    /// and died before confirming them; they were cut off, and will be sent
    /// again.
    Cut(u64),
    /// The file is shorter than recorded: someone truncated it.
    Shorter(u64),
}

/// An output file, locked against a second agent, opened for appending.
#[derive(Debug)]
pub struct FileOutput {
    path: PathBuf,
    file: File,
    dev: u64,
    ino: u64,
    /// A regular file (not a device or a pipe): it is synced, measured and
    /// cut back; anything else is only written.
    regular: bool,
    /// Length after the last confirmed batch.
    confirmed: u64,
    /// Length after the batch sent and not confirmed yet.
    sent: Option<u64>,
}

impl FileOutput {
    /// Opens (creating it if needed) and locks the output, and cuts off what
    /// a previous run left unconfirmed past `recorded` in the same file.
    ///
    /// # Errors
    /// The file cannot be opened, locked (another agent has it) or cut back.
    pub fn open(path: &Path, recorded: Option<Recorded>) -> io::Result<(Self, Reconciled)> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        let meta = file.metadata()?;
        let regular = meta.is_file();
        if regular {
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        "another spillway agent is writing to it",
                    ))
                }
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
        let mut out = Self {
            path: path.to_path_buf(),
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            regular,
            confirmed: meta.len(),
            sent: None,
        };
        let mut found = Reconciled::Clean;
        if let Some(r) = recorded.filter(|r| regular && (r.dev, r.ino) == (out.dev, out.ino)) {
            if meta.len() > r.len {
                out.file.set_len(r.len)?;
                out.file.sync_all()?;
                found = Reconciled::Cut(meta.len() - r.len);
                out.confirmed = r.len;
            } else if meta.len() < r.len {
                found = Reconciled::Shorter(r.len - meta.len());
            }
        }
        Ok((out, found))
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Device and inode: which file it is.
    pub fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Whether it is a regular file (synced and cut back), not a device.
    pub fn is_regular(&self) -> bool {
        self.regular
    }

    /// The length the file will have once the batch just sent is confirmed.
    pub fn sent_len(&self) -> u64 {
        self.sent.unwrap_or(self.confirmed)
    }

    pub(super) fn send(&mut self, parts: &[IoSlice<'_>]) -> io::Result<()> {
        self.sent = None;
        if self.regular {
            // A failed attempt may have left part of a batch; it goes, so the
            // retry does not duplicate it.
            let len = self.file.metadata()?.len();
            if len > self.confirmed {
                self.file.set_len(self.confirmed)?;
            } else {
                self.confirmed = len;
            }
        }
        super::write_all_vectored(&mut self.file, parts)?;
        if self.regular {
            self.file.sync_data()?;
            self.sent = Some(self.file.stream_position()?);
        }
        Ok(())
    }

    pub(super) fn confirm(&mut self) {
        if let Some(len) = self.sent.take() {
            self.confirmed = len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spillway-agent-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn an_unconfirmed_tail_is_cut_at_open_and_a_failed_attempt_is_rolled_back() {
        let p = temp("cut");
        let (mut out, found) = FileOutput::open(&p, None).unwrap();
        assert_eq!(found, Reconciled::Clean);
        out.send(&[IoSlice::new(b"a\nb\n")]).unwrap();
        out.confirm();
        let (dev, ino) = out.identity();
        let rec = Recorded {
            dev,
            ino,
            len: out.sent_len(),
        };
        out.send(&[IoSlice::new(b"c\nd")]).unwrap(); // never confirmed
        drop(out);

        let (mut out, found) = FileOutput::open(&p, Some(rec)).unwrap();
        assert_eq!(found, Reconciled::Cut(3));
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nb\n");
        // An attempt that is not confirmed is taken back by the next one.
        out.send(&[IoSlice::new(b"x\n")]).unwrap();
        out.send(&[IoSlice::new(b"c\n")]).unwrap();
        out.confirm();
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nb\nc\n");
        assert_eq!(out.sent_len(), 6);
    }

    #[test]
    fn a_second_agent_cannot_open_the_same_output() {
        let p = temp("locked");
        let (_first, _) = FileOutput::open(&p, None).unwrap();
        let err = FileOutput::open(&p, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ResourceBusy);
    }

    #[test]
    fn a_shorter_file_than_recorded_is_reported_and_left_alone() {
        let p = temp("short");
        std::fs::write(&p, b"abc\n").unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        let rec = Recorded {
            dev: meta.dev(),
            ino: meta.ino(),
            len: 10,
        };
        let (out, found) = FileOutput::open(&p, Some(rec)).unwrap();
        assert_eq!(found, Reconciled::Shorter(6));
        assert_eq!(out.sent_len(), 4);
    }
}
