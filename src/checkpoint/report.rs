//! What [`Checkpoint::open`](super::Checkpoint::open) found in the file.

/// Whether the file could be checked when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileCheck {
    /// There was no file: the state starts empty.
    Missing,
    /// The file's `# crc32c` line matched: it is whole, as spillway wrote it.
    Verified,
    /// The file has no `# crc32c` line (winlogbeat writes none, nor does a
    /// hand-written file), but it parses completely as the layout, so it was
    /// loaded as it is. Nothing can tell whether it was cut short between
    /// two entries. The next write adds the checksum line.
    Unverified,
}

/// What [`Checkpoint::open`](super::Checkpoint::open) loaded, for logs and
/// checks; see [`Checkpoint::report`](super::Checkpoint::report).
///
/// # Examples
///
/// ```
/// use spillway::checkpoint::{Checkpoint, FileCheck};
/// use std::time::Duration;
///
/// # let dir = std::env::temp_dir().join(format!("spillway-doc-report-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join(".winlogbeat.yml");
/// std::fs::write(
///     &path,
///     "update_time: 2016-08-30T12:34:56.5Z\nevent_logs:\n\
///      - name: Application\n  record_number: 1234\n  timestamp: 2016-08-30T12:34:50Z\n",
/// ).unwrap();
/// let cp = Checkpoint::open(&path, 100, Duration::from_secs(1))?;
/// assert_eq!(cp.report().check, FileCheck::Unverified);
/// assert_eq!(cp.report().sources, 1);
/// # drop(cp);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), spillway::checkpoint::CheckpointError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// Whether the file was verified.
    pub check: FileCheck,
    /// How many entries it held.
    pub sources: usize,
    /// How many fields beyond the layout it held, all kept and written back
    /// unchanged: top-level keys other than `update_time` and `event_logs`,
    /// and every entry's [`Fields`](super::Fields).
    pub extra_fields: usize,
}
