//! Per-source read positions, kept in memory and saved to a YAML file in the
//! background, so that a reader can resume where it stopped after a restart
//! or a crash.
//!
//! The file has winlogbeat's layout (`update_time`, then `event_logs` of
//! `name`, `record_number`, `timestamp`) and ends with a `# crc32c:` comment
//! line that plain YAML readers ignore. Every write replaces the file
//! atomically: a crash leaves the previous state or the new one, whole. A file
//! that is damaged or cut short makes [`Checkpoint::open`] fail, naming it; it
//! is never overwritten.
//!
//! A winlogbeat file (`.winlogbeat.yml`) opens too: it has no checksum line,
//! so it is loaded when it parses completely as the layout, and
//! [`Checkpoint::report`] says it is [`FileCheck::Unverified`]. Fields beyond
//! the layout (winlogbeat's `bookmark`, any top-level key) are kept, in
//! order, and written back; an entry's are in [`EventLogState::fields`],
//! where a program can keep its own next to a position.
//!
//! ```
//! use spillway::checkpoint::Checkpoint;
//! use std::time::{Duration, SystemTime};
//!
//! # let dir = std::env::temp_dir().join(format!("spillway-doc-mod-{}", std::process::id()));
//! let path = dir.join("checkpoint.yaml");
//! // Write after 100 updates or 5 seconds, whichever comes first.
//! let cp = Checkpoint::open(&path, 100, Duration::from_secs(5))?;
//! cp.persist("Application", 1234, SystemTime::now())?;
//! cp.shutdown()?; // writes what is left and stops the writer thread
//!
//! let again = Checkpoint::open(&path, 100, Duration::from_secs(5))?;
//! assert_eq!(again.get("Application").map(|s| s.record_number), Some(1234));
//! # drop(again);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), spillway::checkpoint::CheckpointError>(())
//! ```

mod entry;
mod error;
mod fields;
mod file;
mod report;
mod rfc3339;
mod state;
mod writer;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::sync::thread::{Builder, JoinHandle};
use crate::sync::{Arc, Condvar, Mutex};

pub use entry::EventLogState;
pub use error::CheckpointError;
pub use fields::Fields;
pub use report::{FileCheck, OpenReport};

use state::{Position, State};
use writer::{run_writer, write_now};

/// Per-source positions, saved to a YAML file by a background thread after
/// `max_updates` updates or `interval`, whichever comes first, and on
/// [`flush`](Self::flush) and [`shutdown`](Self::shutdown).
///
/// All methods take `&self`: share it between threads with an `Arc`.
/// [`persist`](Self::persist) only touches memory. Dropping the checkpoint
/// shuts it down (errors are then ignored; call `shutdown` to see them).
///
/// One process at a time may use a file: a second one would remove the first
/// one's temporary files at open.
///
/// # Examples
///
/// ```
/// use spillway::checkpoint::Checkpoint;
/// use std::time::{Duration, SystemTime};
///
/// # let dir = std::env::temp_dir().join(format!("spillway-doc-cp-{}", std::process::id()));
/// let cp = Checkpoint::open(dir.join("cp.yaml"), 1000, Duration::from_secs(1))?;
/// cp.persist("System", 42, SystemTime::now())?;
/// cp.flush()?; // on disk and synced now
/// # drop(cp);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), spillway::checkpoint::CheckpointError>(())
/// ```
#[derive(Debug)]
pub struct Checkpoint {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    max_updates: u32,
    interval: Duration,
    /// What open found in the file.
    report: OpenReport,
    state: Mutex<State>,
    /// Wakes the writer thread: `max_updates` reached, or shut down.
    wake: Condvar,
    /// Wakes [`Checkpoint::wait_for_write`]: a write attempt finished.
    written: Condvar,
    /// Held for a whole write, so writes never overlap and a newer snapshot
    /// is never overwritten by an older one. Lock order: `writer`, then `state`.
    writer: Mutex<Writer>,
}

#[derive(Debug)]
struct Writer {
    /// Number of the next temporary file.
    next_temp: u64,
}

impl Checkpoint {
    /// Loads the state saved at `path`, if any, and starts the thread that
    /// saves it after `max_updates` updates or `interval`, whichever comes
    /// first (counted from the previous write; an interval that passes with
    /// nothing new writes nothing).
    ///
    /// A missing file is an empty state; missing parent directories are
    /// created. Temporary files left beside `path` by a killed writer are
    /// removed. Unlike winlogbeat, an interval under one second is allowed
    /// (tests use it); `Duration::MAX` means "never by time".
    ///
    /// # Errors
    ///
    /// - [`CheckpointError::Invalid`]: `max_updates` is 0, `interval` is zero,
    ///   or `path` has no file name.
    /// - [`CheckpointError::Corrupt`]: the file is empty, cut short, changed,
    ///   larger than any checkpoint (64 MiB) or not a checkpoint. It is left
    ///   as it is. A file without spillway's checksum line (winlogbeat's) is
    ///   loaded if it parses completely as the layout and ends with a newline;
    ///   [`report`](Self::report) then says it is unverified.
    /// - [`CheckpointError::Io`]: the file or its directory cannot be read,
    ///   created or cleaned, or the thread cannot be started. A FIFO, a
    ///   device, a directory or a symbolic link where the file belongs is
    ///   refused at once (never waited on, never followed), and left as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::{Checkpoint, CheckpointError, FileCheck};
    /// use std::time::Duration;
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-open-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("cp.yaml");
    /// let cp = Checkpoint::open(&path, 100, Duration::from_secs(1))?;
    /// assert!(cp.states().is_empty());
    /// drop(cp);
    ///
    /// // winlogbeat's file has no checksum line: it opens, unverified.
    /// std::fs::write(&path, "update_time: 2016-08-30T12:34:56Z\nevent_logs: []\n").unwrap();
    /// let cp = Checkpoint::open(&path, 100, Duration::from_secs(1))?;
    /// assert_eq!(cp.report().check, FileCheck::Unverified);
    /// drop(cp);
    ///
    /// // A checksum line that does not match is refused.
    /// std::fs::write(&path, "update_time: 2016-08-30T12:34:56Z\nevent_logs: []\n# crc32c: 00000000\n").unwrap();
    /// let err = Checkpoint::open(&path, 100, Duration::from_secs(1)).unwrap_err();
    /// assert!(matches!(err, CheckpointError::Corrupt { .. }));
    /// assert!(err.to_string().contains("cp.yaml"));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), CheckpointError>(())
    /// ```
    pub fn open(
        path: impl AsRef<Path>,
        max_updates: u32,
        interval: Duration,
    ) -> Result<Self, CheckpointError> {
        let path = path.as_ref().to_path_buf();
        if max_updates == 0 {
            return Err(CheckpointError::invalid("max_updates must be at least 1"));
        }
        if interval.is_zero() {
            return Err(CheckpointError::invalid(
                "interval must be longer than zero",
            ));
        }
        if path.file_name().is_none() {
            return Err(CheckpointError::invalid(format!(
                "checkpoint path {} has no file name",
                path.display()
            )));
        }
        std::fs::create_dir_all(file::dir_of(&path))
            .map_err(|e| CheckpointError::io(&path, "create its directory", e))?;
        file::remove_stale_temps(&path)?;
        let loaded = file::load(&path)?;
        let sources = loaded
            .states
            .into_iter()
            .map(|s| {
                let position = Position {
                    record_number: s.record_number,
                    timestamp: s.timestamp,
                    fields: s.fields,
                };
                (s.name, position)
            })
            .collect();
        let shared = Arc::new(Shared {
            path,
            max_updates,
            interval,
            report: loaded.report,
            state: Mutex::new(State {
                sources,
                top: loaded.top,
                version: 0,
                saved: 0,
                pending: 0,
                cycle_start: Instant::now(),
                generation: 0,
                last_error: None,
                closed: false,
            }),
            wake: Condvar::new(),
            written: Condvar::new(),
            writer: Mutex::new(Writer { next_temp: 0 }),
        });
        let for_thread = Arc::clone(&shared);
        let worker = Builder::new()
            .name("spillway-checkpoint".into())
            .spawn(move || run_writer(&for_thread))
            .map_err(|e| CheckpointError::io(&shared.path, "start its writer thread", e))?;
        Ok(Self {
            shared,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Records that source `name` was read up to `record_number`, a record
    /// of time `timestamp`. The entry's [`fields`](EventLogState::fields)
    /// stay as they are. Only memory is touched: for a name already known
    /// this takes a lock and allocates nothing. The background thread, or
    /// [`flush`](Self::flush), saves it.
    ///
    /// # Errors
    ///
    /// - [`CheckpointError::Closed`] after [`shutdown`](Self::shutdown).
    /// - [`CheckpointError::Invalid`] for a timestamp outside the years
    ///   0000-9999 (RFC 3339 cannot write it); nothing is recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::{Checkpoint, CheckpointError};
    /// use std::time::{Duration, SystemTime};
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-persist-{}", std::process::id()));
    /// let cp = Checkpoint::open(dir.join("cp.yaml"), 100, Duration::from_secs(1))?;
    /// cp.persist("Security", 7, SystemTime::now())?;
    /// cp.persist("Security", 8, SystemTime::now())?;
    /// assert_eq!(cp.get("Security").unwrap().record_number, 8);
    /// cp.shutdown()?;
    /// assert!(matches!(cp.persist("Security", 9, SystemTime::now()), Err(CheckpointError::Closed)));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), CheckpointError>(())
    /// ```
    pub fn persist(
        &self,
        name: &str,
        record_number: u64,
        timestamp: SystemTime,
    ) -> Result<(), CheckpointError> {
        check_timestamp(name, timestamp)?;
        let mut guard = self.shared.state.lock();
        let st = &mut *guard;
        if st.closed {
            return Err(CheckpointError::Closed);
        }
        match st.sources.get_mut(name) {
            Some(p) => {
                p.record_number = record_number;
                p.timestamp = timestamp;
            }
            None => {
                let position = Position {
                    record_number,
                    timestamp,
                    fields: Fields::new(),
                };
                st.sources.insert(name.to_owned(), position);
            }
        }
        self.updated(st, 1);
        Ok(())
    }

    /// Records several entries as one change: a write, by the background
    /// thread, [`flush`](Self::flush) or a crash at any moment, holds all of
    /// them or none, never a part. Use it for positions that must agree,
    /// such as an input's offset and an output's length after one batch.
    ///
    /// Each state sets its entry's record number and timestamp, and each of
    /// its [`fields`](EventLogState::fields); fields of the entry it does not
    /// name are kept (so a winlogbeat `bookmark` survives). A name given
    /// twice takes the later state. Each entry counts as one update towards
    /// `max_updates`.
    ///
    /// # Errors
    ///
    /// As [`persist`](Self::persist); all states are checked before any is
    /// recorded, so on an error nothing is.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::{Checkpoint, EventLogState};
    /// use std::time::{Duration, SystemTime};
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-many-{}", std::process::id()));
    /// let path = dir.join("cp.yaml");
    /// let cp = Checkpoint::open(&path, 100, Duration::from_secs(60))?;
    /// let now = SystemTime::now();
    /// let mut input = EventLogState::new("/var/log/app.log", 4096, now);
    /// input.fields.set_u64("inode", 1234)?;
    /// let output = EventLogState::new("output:/srv/out.log", 8192, now);
    /// cp.persist_many([&input, &output])?;
    /// cp.flush()?;
    /// # drop(cp);
    /// let again = Checkpoint::open(&path, 100, Duration::from_secs(60))?;
    /// let got = again.get("/var/log/app.log").unwrap();
    /// assert_eq!((got.record_number, got.fields.get_u64("inode")), (4096, Some(1234)));
    /// assert_eq!(again.get("output:/srv/out.log").unwrap().record_number, 8192);
    /// # drop(again);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn persist_many<'a>(
        &self,
        states: impl IntoIterator<Item = &'a EventLogState>,
    ) -> Result<(), CheckpointError> {
        let states: Vec<&EventLogState> = states.into_iter().collect();
        for s in &states {
            check_timestamp(&s.name, s.timestamp)?;
        }
        // One lock for the whole change: the writer snapshots under the same
        // lock, so it sees all of these updates or none.
        let mut guard = self.shared.state.lock();
        let st = &mut *guard;
        if st.closed {
            return Err(CheckpointError::Closed);
        }
        for s in &states {
            match st.sources.get_mut(&s.name) {
                Some(p) => {
                    p.record_number = s.record_number;
                    p.timestamp = s.timestamp;
                    p.fields.merge_from(&s.fields);
                }
                None => {
                    let position = Position {
                        record_number: s.record_number,
                        timestamp: s.timestamp,
                        fields: s.fields.clone(),
                    };
                    st.sources.insert(s.name.clone(), position);
                }
            }
        }
        let count = u32::try_from(states.len()).unwrap_or(u32::MAX);
        self.updated(st, count);
        Ok(())
    }

    /// Removes the entries named `names` (those it has), as one change like
    /// [`persist_many`](Self::persist_many); returns how many it removed.
    /// A program that changes how it names its entries drops the old ones
    /// with it, in the same write as the new ones.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Closed`] after [`shutdown`](Self::shutdown).
    pub fn remove<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<usize, CheckpointError> {
        let mut guard = self.shared.state.lock();
        let st = &mut *guard;
        if st.closed {
            return Err(CheckpointError::Closed);
        }
        let removed = names
            .into_iter()
            .filter(|n| st.sources.remove(*n).is_some())
            .count();
        self.updated(st, u32::try_from(removed).unwrap_or(u32::MAX));
        Ok(removed)
    }

    /// Counts `count` updates made under the state lock, and wakes the
    /// writer when they reach `max_updates`.
    fn updated(&self, st: &mut State, count: u32) {
        if count == 0 {
            return;
        }
        st.version += 1;
        let before = st.pending;
        st.pending = st.pending.saturating_add(count);
        // Only on the crossing, so a burst past the threshold wakes it once.
        let max = self.shared.max_updates;
        if before < max && st.pending >= max {
            self.shared.wake.notify_one();
        }
    }

    /// What [`open`](Self::open) found in the file: whether it was verified
    /// by its checksum, and how many entries and extra fields it held. A
    /// program that logs should say when a file was
    /// [`Unverified`](FileCheck::Unverified).
    pub fn report(&self) -> &OpenReport {
        &self.shared.report
    }

    /// Reads the checkpoint file at `path` without opening it for writing:
    /// no writer thread, no directory created, no temporary file removed.
    /// The states come sorted by name. Safe while another process writes
    /// the file, since writes replace it whole.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Corrupt`] and [`CheckpointError::Io`] as for
    /// [`open`](Self::open); a missing file is an empty state with
    /// [`FileCheck::Missing`].
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::{Checkpoint, FileCheck};
    ///
    /// let (states, report) = Checkpoint::read("/nonexistent/cp.yaml")?;
    /// assert!(states.is_empty());
    /// assert_eq!(report.check, FileCheck::Missing);
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn read(
        path: impl AsRef<Path>,
    ) -> Result<(Vec<EventLogState>, OpenReport), CheckpointError> {
        let loaded = file::load(path.as_ref())?;
        Ok((loaded.states, loaded.report))
    }

    /// The state of source `name`, if it was persisted or loaded.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::Checkpoint;
    /// use std::time::{Duration, SystemTime};
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-get-{}", std::process::id()));
    /// let cp = Checkpoint::open(dir.join("cp.yaml"), 100, Duration::from_secs(1))?;
    /// assert_eq!(cp.get("System"), None);
    /// let now = SystemTime::now();
    /// cp.persist("System", 42, now)?;
    /// let s = cp.get("System").unwrap();
    /// assert_eq!((s.name.as_str(), s.record_number, s.timestamp), ("System", 42, now));
    /// # drop(cp);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn get(&self, name: &str) -> Option<EventLogState> {
        let st = self.shared.state.lock();
        st.sources.get(name).map(|p| p.state(name))
    }

    /// Every source's state in memory (what was loaded, plus every persist
    /// since), sorted by name.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::Checkpoint;
    /// use std::time::{Duration, SystemTime};
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-states-{}", std::process::id()));
    /// let cp = Checkpoint::open(dir.join("cp.yaml"), 100, Duration::from_secs(1))?;
    /// cp.persist("b", 2, SystemTime::now())?;
    /// cp.persist("a", 1, SystemTime::now())?;
    /// let names: Vec<_> = cp.states().into_iter().map(|s| s.name).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// # drop(cp);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn states(&self) -> Vec<EventLogState> {
        self.shared.state.lock().snapshot()
    }

    /// Writes the state to the file and syncs it now, on this thread; when it
    /// returns `Ok`, a crash loses nothing persisted before the call. Does
    /// nothing if the file already holds the state. Also works after
    /// [`shutdown`](Self::shutdown), to retry a failed final write.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Io`] if a step of the write fails (disk full, ...):
    /// the previous file stays whole, the state stays in memory, and the next
    /// write tries again with a new temporary file. The error is also kept
    /// as [`last_error`](Self::last_error).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::Checkpoint;
    /// use std::time::{Duration, SystemTime};
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-flush-{}", std::process::id()));
    /// let path = dir.join("cp.yaml");
    /// let cp = Checkpoint::open(&path, 100, Duration::from_secs(60))?;
    /// cp.persist("System", 42, SystemTime::now())?;
    /// cp.flush()?;
    /// let text = std::fs::read_to_string(&path).unwrap();
    /// assert!(text.contains("- name: System\n  record_number: 42\n"));
    /// # drop(cp);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn flush(&self) -> Result<(), CheckpointError> {
        write_now(&self.shared)
    }

    /// Stops the writer thread and writes what it has not written yet,
    /// waiting for both. Later [`persist`](Self::persist) calls fail with
    /// [`CheckpointError::Closed`]; [`get`](Self::get) and
    /// [`states`](Self::states) still answer.
    ///
    /// Calling it again does nothing, unless the previous final write failed:
    /// then it tries that write again.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Io`] if the final write fails, as for
    /// [`flush`](Self::flush).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::Checkpoint;
    /// use std::time::{Duration, SystemTime};
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-shutdown-{}", std::process::id()));
    /// let path = dir.join("cp.yaml");
    /// let cp = Checkpoint::open(&path, 100, Duration::from_secs(60))?;
    /// cp.persist("System", 42, SystemTime::now())?;
    /// cp.shutdown()?;
    /// cp.shutdown()?; // no effect
    /// assert!(std::fs::read_to_string(&path).unwrap().contains("record_number: 42"));
    /// # drop(cp);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn shutdown(&self) -> Result<(), CheckpointError> {
        self.shared.state.lock().closed = true;
        self.shared.wake.notify_all();
        let worker = self.worker.lock().take();
        if let Some(worker) = worker {
            // The writer returns results instead of panicking; were it to
            // panic anyway, the final write below still runs.
            let _ = worker.join();
        }
        write_now(&self.shared)
    }

    /// How many write attempts have finished since [`open`](Self::open),
    /// successful or not, by the writer thread, [`flush`](Self::flush) or
    /// [`shutdown`](Self::shutdown). Writes that find the file current are
    /// skipped and not counted. Pass it to
    /// [`wait_for_write`](Self::wait_for_write).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::Checkpoint;
    /// use std::time::{Duration, SystemTime};
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-gen-{}", std::process::id()));
    /// let cp = Checkpoint::open(dir.join("cp.yaml"), 100, Duration::from_secs(60))?;
    /// assert_eq!(cp.write_generation(), 0);
    /// cp.flush()?; // nothing to write
    /// assert_eq!(cp.write_generation(), 0);
    /// cp.persist("a", 1, SystemTime::now())?;
    /// cp.flush()?;
    /// assert_eq!(cp.write_generation(), 1);
    /// # drop(cp);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn write_generation(&self) -> u64 {
        self.shared.state.lock().generation
    }

    /// Waits until the write generation passes `seen` or `timeout` elapses;
    /// returns the new generation, or `None` on timeout. With `seen` taken
    /// from [`write_generation`](Self::write_generation) before an action,
    /// this waits for the next write after it, e.g. the background one that
    /// `max_updates` updates trigger.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::Checkpoint;
    /// use std::time::{Duration, SystemTime};
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-wait-{}", std::process::id()));
    /// let cp = Checkpoint::open(dir.join("cp.yaml"), 2, Duration::MAX)?;
    /// let seen = cp.write_generation();
    /// cp.persist("a", 1, SystemTime::now())?;
    /// cp.persist("a", 2, SystemTime::now())?; // the 2nd update wakes the writer
    /// assert_eq!(cp.wait_for_write(seen, Duration::from_secs(60)), Some(seen + 1));
    /// assert!(cp.last_error().is_none());
    /// # drop(cp);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn wait_for_write(&self, seen: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.shared.state.lock();
        while st.generation <= seen {
            match deadline {
                Some(deadline) => {
                    if self
                        .shared
                        .written
                        .wait_until(&mut st, deadline)
                        .timed_out()
                        && st.generation <= seen
                    {
                        return None;
                    }
                }
                None => self.shared.written.wait(&mut st),
            }
        }
        Some(st.generation)
    }

    /// The error of the latest write attempt, if it failed; `None` once a
    /// write succeeds again. This is where failures of the writer thread
    /// show, which retries at its next cycle.
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::Checkpoint;
    /// use std::time::Duration;
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-lasterr-{}", std::process::id()));
    /// let cp = Checkpoint::open(dir.join("cp.yaml"), 100, Duration::from_secs(1))?;
    /// assert!(cp.last_error().is_none());
    /// # drop(cp);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn last_error(&self) -> Option<CheckpointError> {
        self.shared.state.lock().last_error.clone()
    }

    /// The checkpoint file's path, as given to [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use spillway::checkpoint::Checkpoint;
    /// use std::time::Duration;
    ///
    /// # let dir = std::env::temp_dir().join(format!("spillway-doc-path-{}", std::process::id()));
    /// let cp = Checkpoint::open(dir.join("cp.yaml"), 100, Duration::from_secs(1))?;
    /// assert_eq!(cp.path(), dir.join("cp.yaml"));
    /// # drop(cp);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), spillway::checkpoint::CheckpointError>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl Drop for Checkpoint {
    /// Shuts down, ignoring errors; call [`Checkpoint::shutdown`] first to see them.
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Refuses a timestamp RFC 3339 cannot write.
fn check_timestamp(name: &str, timestamp: SystemTime) -> Result<(), CheckpointError> {
    if rfc3339::in_range(timestamp) {
        Ok(())
    } else {
        Err(CheckpointError::invalid(format!(
            "timestamp of {name:?} lies outside the years 0000-9999"
        )))
    }
}
