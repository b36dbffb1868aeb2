//! Behaviour of every `Checkpoint` method: loading, persisting, the two
//! write triggers, flush, shutdown, Drop, failures and their reporting.

mod checkpoint_support;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use checkpoint_support::ScratchDir;
use spillway::checkpoint::{Checkpoint, CheckpointError, EventLogState};

/// Long enough never to fire during a test.
const NEVER: Duration = Duration::MAX;
/// A bound for waits that only fail if the code is wrong.
const GENEROUS: Duration = Duration::from_secs(30);

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn state(name: &str, record_number: u64, timestamp: SystemTime) -> EventLogState {
    EventLogState::new(name, record_number, timestamp)
}

/// What a fresh `open` of `path` loads.
fn on_disk(path: &Path) -> Vec<EventLogState> {
    let cp = Checkpoint::open(path, 1, NEVER).expect("reopen");
    let states = cp.states();
    drop(cp);
    states
}

#[test]
fn missing_file_is_empty_state_and_nothing_new_writes_nothing() {
    let dir = ScratchDir::new("missing");
    let path = dir.join("sub/dir/cp.yaml");
    let cp = Checkpoint::open(&path, 10, NEVER).unwrap();
    assert!(cp.states().is_empty());
    assert_eq!(cp.get("x"), None);
    assert_eq!(cp.path(), path);
    assert!(
        path.parent().unwrap().is_dir(),
        "parent directories are created"
    );
    cp.flush().unwrap();
    cp.shutdown().unwrap();
    assert_eq!(cp.write_generation(), 0);
    assert!(!path.exists());
}

#[test]
fn bad_arguments_are_invalid() {
    let dir = ScratchDir::new("args");
    let path = dir.join("cp.yaml");
    let msg = |r: Result<Checkpoint, CheckpointError>| match r {
        Err(e @ CheckpointError::Invalid { .. }) => e.to_string(),
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert_eq!(
        msg(Checkpoint::open(&path, 0, Duration::from_secs(1))),
        "invalid checkpoint argument: max_updates must be at least 1"
    );
    assert_eq!(
        msg(Checkpoint::open(&path, 1, Duration::ZERO)),
        "invalid checkpoint argument: interval must be longer than zero"
    );
    assert_eq!(
        msg(Checkpoint::open("/", 1, Duration::from_secs(1))),
        "invalid checkpoint argument: checkpoint path / has no file name"
    );
    assert!(dir.entries().is_empty());
}

#[test]
fn persist_get_and_states() {
    let dir = ScratchDir::new("persist");
    let cp = Checkpoint::open(dir.join("cp.yaml"), 1000, NEVER).unwrap();
    cp.persist("System", 1, at(10, 0)).unwrap();
    cp.persist("Application", 5, at(20, 7)).unwrap();
    cp.persist("System", 2, at(11, 1)).unwrap();
    assert_eq!(cp.get("System"), Some(state("System", 2, at(11, 1))));
    assert_eq!(cp.get("system"), None);
    assert_eq!(
        cp.states(),
        [
            state("Application", 5, at(20, 7)),
            state("System", 2, at(11, 1))
        ]
    );
}

#[test]
fn unwritable_timestamps_are_refused_and_not_recorded() {
    let dir = ScratchDir::new("range");
    let cp = Checkpoint::open(dir.join("cp.yaml"), 1000, NEVER).unwrap();
    let year_10000 = at(253_402_300_800, 0);
    match cp.persist("a", 1, year_10000) {
        Err(CheckpointError::Invalid { reason }) => {
            assert_eq!(
                reason,
                "timestamp of \"a\" lies outside the years 0000-9999"
            )
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(cp.get("a"), None);
    let last_second = at(253_402_300_799, 999_999_999);
    let year_zero = UNIX_EPOCH - Duration::from_secs(62_167_219_200);
    cp.persist("late", 1, last_second).unwrap();
    cp.persist("early", 2, year_zero).unwrap();
    cp.shutdown().unwrap();
    assert_eq!(
        on_disk(cp.path()),
        [state("early", 2, year_zero), state("late", 1, last_second)]
    );
}

#[test]
fn flush_writes_now_and_reopen_loads_it() {
    let dir = ScratchDir::new("flush");
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    let before_1970 = UNIX_EPOCH - Duration::new(86_400, 1);
    cp.persist("a", 1, at(1_472_560_496, 123_456_789)).unwrap();
    cp.persist("b", u64::MAX, before_1970).unwrap();
    cp.flush().unwrap();
    assert_eq!(cp.write_generation(), 1);
    assert_eq!(on_disk(&path), cp.states());
    // Nothing new: no write.
    cp.flush().unwrap();
    assert_eq!(cp.write_generation(), 1);
    cp.persist("a", 2, at(1, 0)).unwrap();
    cp.flush().unwrap();
    assert_eq!(cp.write_generation(), 2);
    assert_eq!(on_disk(&path)[0], state("a", 2, at(1, 0)));
    assert_eq!(dir.entries(), ["cp.yaml"], "no temporary file is left");
}

#[test]
fn file_has_winlogbeat_field_names() {
    let dir = ScratchDir::new("layout");
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    cp.persist("Application", 1234, at(1_472_560_496, 123_456_789))
        .unwrap();
    let before = SystemTime::now();
    cp.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: serde_yaml::Mapping = serde_yaml::from_str(&text).unwrap();
    let keys: Vec<_> = doc.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(keys, ["update_time", "event_logs"]);
    let logs = doc["event_logs"].as_sequence().unwrap();
    let entry = logs[0].as_mapping().unwrap();
    let keys: Vec<_> = entry.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(keys, ["name", "record_number", "timestamp"]);
    assert_eq!(entry["name"], "Application");
    assert_eq!(entry["record_number"], 1234);
    assert_eq!(entry["timestamp"], "2016-08-30T12:34:56.123456789Z");
    let update_time = doc["update_time"].as_str().unwrap();
    assert!(
        update_time.ends_with('Z') && update_time.len() == 30,
        "{update_time}"
    );
    // update_time is the write time: same year at least.
    let year = 1970 + before.duration_since(UNIX_EPOCH).unwrap().as_secs() / 31_556_952;
    assert!(update_time.starts_with(&year.to_string()), "{update_time}");
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("# crc32c: ") && last.len() == 18, "{last}");
}

#[test]
fn max_updates_triggers_a_background_write() {
    let dir = ScratchDir::new("count");
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, 3, NEVER).unwrap();
    cp.persist("a", 1, at(1, 0)).unwrap();
    cp.persist("a", 2, at(2, 0)).unwrap();
    assert_eq!(cp.write_generation(), 0);
    cp.persist("b", 3, at(3, 0)).unwrap();
    assert_eq!(cp.wait_for_write(0, GENEROUS), Some(1));
    assert_eq!(
        on_disk(&path),
        [state("a", 2, at(2, 0)), state("b", 3, at(3, 0))]
    );
    // The count restarts after the write.
    for i in 4..=6 {
        cp.persist("a", i, at(i, 0)).unwrap();
    }
    assert_eq!(cp.wait_for_write(1, GENEROUS), Some(2));
    assert_eq!(on_disk(&path)[0], state("a", 6, at(6, 0)));
    assert!(cp.last_error().is_none());
}

#[test]
fn interval_triggers_a_background_write() {
    let dir = ScratchDir::new("interval");
    let path = dir.join("cp.yaml");
    let interval = Duration::from_millis(100);
    let opened = Instant::now();
    let cp = Checkpoint::open(&path, 1_000_000, interval).unwrap();
    cp.persist("a", 1, at(1, 0)).unwrap();
    assert_eq!(cp.wait_for_write(0, GENEROUS), Some(1));
    assert!(
        opened.elapsed() >= interval,
        "wrote before the interval ended"
    );
    assert_eq!(on_disk(&path), [state("a", 1, at(1, 0))]);
    // Idle intervals write nothing.
    assert_eq!(cp.wait_for_write(1, 3 * interval), None);
    cp.persist("a", 2, at(2, 0)).unwrap();
    assert_eq!(cp.wait_for_write(1, GENEROUS), Some(2));
}

#[test]
fn wait_for_write_times_out() {
    let dir = ScratchDir::new("wait");
    let cp = Checkpoint::open(dir.join("cp.yaml"), 10, NEVER).unwrap();
    let start = Instant::now();
    assert_eq!(cp.wait_for_write(0, Duration::from_millis(50)), None);
    assert!(start.elapsed() >= Duration::from_millis(50));
    cp.persist("a", 1, at(1, 0)).unwrap();
    cp.flush().unwrap();
    assert_eq!(cp.wait_for_write(0, Duration::ZERO), Some(1));
}

#[test]
fn shutdown_writes_is_idempotent_and_closes() {
    let dir = ScratchDir::new("shutdown");
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    cp.persist("a", 1, at(1, 0)).unwrap();
    cp.shutdown().unwrap();
    assert_eq!(cp.write_generation(), 1);
    let bytes = std::fs::read(&path).unwrap();
    cp.shutdown().unwrap();
    cp.flush().unwrap();
    assert_eq!(cp.write_generation(), 1);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(matches!(
        cp.persist("a", 2, at(2, 0)),
        Err(CheckpointError::Closed)
    ));
    assert!(matches!(
        cp.persist("new", 2, at(2, 0)),
        Err(CheckpointError::Closed)
    ));
    assert_eq!(
        CheckpointError::Closed.to_string(),
        "checkpoint is shut down"
    );
    assert_eq!(cp.states(), [state("a", 1, at(1, 0))]);
}

#[test]
fn concurrent_shutdowns_and_persists_do_not_hang() {
    let dir = ScratchDir::new("concurrent-shutdown");
    let cp = Arc::new(Checkpoint::open(dir.join("cp.yaml"), 5, NEVER).unwrap());
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (cp, start) = (Arc::clone(&cp), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                if t % 2 == 0 {
                    cp.shutdown().unwrap();
                    0
                } else {
                    let mut accepted = 0;
                    for i in 0..10_000u64 {
                        match cp.persist(&format!("t{t}"), i, at(i, 0)) {
                            Ok(()) => accepted = i + 1,
                            Err(CheckpointError::Closed) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    accepted
                }
            })
        })
        .collect();
    let accepted: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    cp.shutdown().unwrap();
    // Whatever was accepted before the close is on disk.
    let disk = on_disk(cp.path());
    for t in [1, 3] {
        let want = accepted[t].checked_sub(1);
        let got = disk
            .iter()
            .find(|s| s.name == format!("t{t}"))
            .map(|s| s.record_number);
        assert_eq!(got, want, "thread {t}");
    }
}

#[test]
fn drop_flushes() {
    let dir = ScratchDir::new("drop");
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    cp.persist("a", 7, at(7, 7)).unwrap();
    drop(cp);
    assert_eq!(on_disk(&path), [state("a", 7, at(7, 7))]);
    assert_eq!(dir.entries(), ["cp.yaml"]);
}

#[test]
fn stale_temporary_files_are_removed_at_open() {
    let dir = ScratchDir::new("stale");
    for name in [
        "cp.yaml.tmp.3",
        "cp.yaml.tmp.17",
        "cp.yaml.tmp.x",
        "other.tmp.1",
    ] {
        std::fs::write(dir.join(name), "half a checkpoint").unwrap();
    }
    let cp = Checkpoint::open(dir.join("cp.yaml"), 1000, NEVER).unwrap();
    assert_eq!(dir.entries(), ["cp.yaml.tmp.x", "other.tmp.1"]);
    assert!(cp.states().is_empty());
}

#[test]
fn many_threads_persist_and_the_last_value_of_each_wins() {
    let dir = ScratchDir::new("threads");
    let path = dir.join("cp.yaml");
    let cp = Arc::new(Checkpoint::open(&path, 100, Duration::from_millis(5)).unwrap());
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (cp, start) = (Arc::clone(&cp), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for i in 0..20_000u64 {
                    cp.persist(&format!("src{}", (i + t) % 8), i, at(i, t as u32))
                        .unwrap();
                    if i % 5_000 == 0 {
                        cp.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    cp.shutdown().unwrap();
    assert!(cp.last_error().is_none());
    let disk = on_disk(&path);
    assert_eq!(disk, cp.states());
    assert_eq!(disk.len(), 8);
}

#[test]
fn corrupt_file_fails_open_and_is_left_untouched() {
    let dir = ScratchDir::new("corrupt");
    let path = dir.join("cp.yaml");
    // spillway's first line, then a body whose checksum line was cut off.
    let garbage = b"# spillway checkpoint: the last line is a crc32c of every byte before it\n\
                    update_time: 2016-08-30T12:34:56Z\nevent_logs: []\n"
        .to_vec();
    std::fs::write(&path, &garbage).unwrap();
    for _ in 0..2 {
        match Checkpoint::open(&path, 1, NEVER) {
            Err(e @ CheckpointError::Corrupt { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&path.display().to_string()), "{msg}");
                assert!(msg.contains("checksum line"), "{msg}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[test]
fn empty_file_is_corrupt() {
    let dir = ScratchDir::new("empty");
    let path = dir.join("cp.yaml");
    std::fs::write(&path, "").unwrap();
    match Checkpoint::open(&path, 1, NEVER) {
        Err(CheckpointError::Corrupt { path: p, reason }) => {
            assert_eq!(p, path);
            assert_eq!(reason, "the file is empty");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn unreadable_file_is_an_io_error_naming_it() {
    let dir = ScratchDir::new("unreadable");
    let path = dir.join("cp.yaml");
    std::fs::create_dir(&path).unwrap();
    match Checkpoint::open(&path, 1, NEVER) {
        Err(e @ CheckpointError::Io { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!(
                    "checkpoint file {}: cannot read: ",
                    path.display()
                )),
                "{msg}"
            );
            assert!(std::error::Error::source(&e).is_some());
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

/// Opens `path` on another thread: a wrong open that blocks (on a FIFO)
/// fails the test instead of hanging it.
fn open_within_bound(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    thread::spawn(move || {
        let _ = tx.send(Checkpoint::open(&path, 1, NEVER));
    });
    rx.recv_timeout(GENEROUS)
        .expect("Checkpoint::open blocked on a special file")
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A FIFO, a device or a symbolic link where the checkpoint belongs is a
/// one-line error naming the file, at once, and is left where it is.
#[test]
fn special_files_in_place_of_the_checkpoint_are_refused_at_once() {
    let dir = ScratchDir::new("special");
    let path = dir.join("cp.yaml");
    let expect_refused = |what: &str| {
        let err = open_within_bound(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CheckpointError::Io { .. }), "{what}: {err:?}");
        assert_eq!(
            msg,
            format!(
                "checkpoint file {}: cannot read: it is {what}, not a regular file",
                path.display()
            )
        );
        assert_eq!(msg.lines().count(), 1);
    };

    mkfifo(&path);
    expect_refused("a FIFO");
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_fifo());
    std::fs::remove_file(&path).unwrap();

    // A link to /dev/zero would otherwise be read without end; a link to a
    // valid checkpoint is refused too: spillway never makes one.
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    expect_refused("a symbolic link");
    std::fs::remove_file(&path).unwrap();
    let real = dir.join("real.yaml");
    let cp = Checkpoint::open(&real, 1, NEVER).unwrap();
    cp.persist("a", 1, at(1, 0)).unwrap();
    cp.shutdown().unwrap();
    std::os::unix::fs::symlink(&real, &path).unwrap();
    expect_refused("a symbolic link");
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(on_disk(&real), [state("a", 1, at(1, 0))]);
}

/// A file larger than any checkpoint is corrupt, found without reading it.
#[test]
fn a_file_beyond_the_size_bound_is_corrupt() {
    let dir = ScratchDir::new("huge");
    let path = dir.join("cp.yaml");
    // Sparse: no disk space is used.
    let f = std::fs::File::create(&path).unwrap();
    f.set_len((64 << 20) + 1).unwrap();
    drop(f);
    match open_within_bound(&path) {
        Err(CheckpointError::Corrupt { path: p, reason }) => {
            assert_eq!(p, path);
            assert_eq!(reason, "it is larger than the 67108864 bytes it may have");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), (64 << 20) + 1);
}

/// Every write, by the writer thread at any moment, holds all the entries
/// of a `persist_many` or none: a reader of the file never sees them apart.
#[test]
fn persist_many_is_one_change_for_every_write() {
    let dir = ScratchDir::new("many");
    let path = dir.join("cp.yaml");
    // max_updates 1: the writer writes back to back while updates go on,
    // until the reader has seen enough different writes.
    const WRITES: usize = 25;
    let cp = Arc::new(Checkpoint::open(&path, 1, NEVER).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let updater = {
        let (cp, stop) = (Arc::clone(&cp), Arc::clone(&stop));
        thread::spawn(move || {
            let mut k = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                k += 1;
                let states: Vec<_> = ["x", "y", "z"]
                    .iter()
                    .map(|n| state(n, k, at(k, 0)))
                    .collect();
                cp.persist_many(&states).unwrap();
            }
            k
        })
    };
    let deadline = Instant::now() + GENEROUS;
    let mut seen = std::collections::BTreeSet::new();
    let mut reads = 0;
    while seen.len() < WRITES && Instant::now() < deadline {
        let (states, _) = Checkpoint::read(&path).unwrap();
        reads += 1;
        if !states.is_empty() {
            let numbers: Vec<u64> = states.iter().map(|s| s.record_number).collect();
            assert_eq!(numbers.len(), 3, "{states:?}");
            assert!(
                numbers.iter().all(|&n| n == numbers[0]),
                "a write holds part of a persist_many: {numbers:?}"
            );
            seen.insert(numbers[0]);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let last = updater.join().unwrap();
    assert!(seen.len() >= WRITES, "only {} writes seen", seen.len());
    cp.flush().unwrap();
    let numbers: Vec<u64> = on_disk(&path).iter().map(|s| s.record_number).collect();
    assert_eq!(numbers, [last; 3]);
    println!("{reads} reads saw {} different writes", seen.len());
}

#[test]
fn persist_many_checks_every_state_before_recording_any() {
    let dir = ScratchDir::new("many-invalid");
    let cp = Checkpoint::open(dir.join("cp.yaml"), 1000, NEVER).unwrap();
    let too_late = UNIX_EPOCH + Duration::from_secs(253_402_300_800); // year 10000
    let states = [state("ok", 1, at(1, 0)), state("late", 2, too_late)];
    let err = cp.persist_many(&states).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid checkpoint argument: timestamp of \"late\" lies outside the years 0000-9999"
    );
    assert!(cp.states().is_empty(), "nothing is recorded");
    // Nothing to do is no change.
    cp.persist_many(&[]).unwrap();
    assert_eq!(cp.write_generation(), 0);
    cp.flush().unwrap();
    assert_eq!(
        cp.write_generation(),
        0,
        "an empty persist_many writes nothing"
    );
    // A name given twice takes the later state.
    cp.persist_many(&[state("a", 1, at(1, 0)), state("a", 2, at(2, 0))])
        .unwrap();
    assert_eq!(cp.states(), [state("a", 2, at(2, 0))]);
    cp.shutdown().unwrap();
    assert!(matches!(
        cp.persist_many(&[state("a", 3, at(3, 0))]),
        Err(CheckpointError::Closed)
    ));
}

/// `remove` drops the named entries it has, ignores the others, and the
/// next write leaves them out; nothing removed is no change.
#[test]
fn remove_drops_named_entries_from_the_next_write() {
    let dir = ScratchDir::new("remove");
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    cp.persist_many(&[
        state("a", 1, at(1, 0)),
        state("a#dev", 2, at(1, 0)),
        state("b", 3, at(1, 0)),
    ])
    .unwrap();
    cp.flush().unwrap();
    let generation = cp.write_generation();
    assert_eq!(cp.remove(["missing"]).unwrap(), 0);
    cp.flush().unwrap();
    assert_eq!(
        cp.write_generation(),
        generation,
        "removing nothing writes nothing"
    );
    assert_eq!(cp.remove(["a#dev", "missing", "b"]).unwrap(), 2);
    assert_eq!(cp.states(), [state("a", 1, at(1, 0))]);
    cp.flush().unwrap();
    assert_eq!(on_disk(&path), [state("a", 1, at(1, 0))]);
    cp.shutdown().unwrap();
    assert!(matches!(cp.remove(["a"]), Err(CheckpointError::Closed)));
}

/// A failing write (here: the file's path is taken by a non-empty directory)
/// is reported by flush and by the writer thread, the state stays in memory,
/// no temporary file is left, and the next cycle writes once it can.
#[test]
fn failed_writes_are_reported_kept_and_retried() {
    let dir = ScratchDir::new("fail");
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, 2, NEVER).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("blocker"), "").unwrap();

    cp.persist("a", 1, at(1, 0)).unwrap();
    let err = cp.flush().unwrap_err();
    match &err {
        CheckpointError::Io { path: p, op, .. } => {
            assert_eq!(p, &path);
            assert_eq!(*op, "rename temporary file over it");
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(err.to_string().contains(&path.display().to_string()));
    assert_eq!(
        cp.last_error().map(|e| e.to_string()),
        Some(err.to_string())
    );
    assert_eq!(cp.write_generation(), 1);
    assert_eq!(dir.entries(), ["cp.yaml"]);
    assert_eq!(cp.states(), [state("a", 1, at(1, 0))]);

    // The writer thread fails too, and keeps the error.
    cp.persist("a", 2, at(2, 0)).unwrap();
    cp.persist("b", 3, at(3, 0)).unwrap();
    assert_eq!(cp.wait_for_write(1, GENEROUS), Some(2));
    let last = cp.last_error().expect("background failure kept");
    assert!(matches!(last, CheckpointError::Io { .. }));
    assert_eq!(dir.entries(), ["cp.yaml"]);

    // Once the disk is usable again, the next cycle writes everything.
    std::fs::remove_dir_all(&path).unwrap();
    cp.persist("c", 4, at(4, 0)).unwrap();
    cp.persist("c", 5, at(5, 0)).unwrap();
    assert_eq!(cp.wait_for_write(2, GENEROUS), Some(3));
    assert!(cp.last_error().is_none());
    assert_eq!(
        on_disk(&path),
        [
            state("a", 2, at(2, 0)),
            state("b", 3, at(3, 0)),
            state("c", 5, at(5, 0))
        ]
    );
}

#[test]
fn a_failed_final_write_is_retried_by_the_next_shutdown() {
    let dir = ScratchDir::new("fail-shutdown");
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("blocker"), "").unwrap();
    cp.persist("a", 1, at(1, 0)).unwrap();
    assert!(matches!(cp.shutdown(), Err(CheckpointError::Io { .. })));
    std::fs::remove_dir_all(&path).unwrap();
    cp.shutdown().unwrap();
    assert_eq!(on_disk(&path), [state("a", 1, at(1, 0))]);
}

#[test]
fn cloned_io_errors_keep_the_os_code() {
    let err = CheckpointError::Io {
        path: "/x/cp.yaml".into(),
        op: "write temporary file",
        source: std::io::Error::from_raw_os_error(27),
    };
    match err.clone() {
        CheckpointError::Io { path, op, source } => {
            assert_eq!(path, Path::new("/x/cp.yaml"));
            assert_eq!(op, "write temporary file");
            assert_eq!(source.raw_os_error(), Some(27));
        }
        other => panic!("{other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with("checkpoint file /x/cp.yaml: cannot write temporary file: "));
    let corrupt = CheckpointError::Corrupt {
        path: "/x/cp.yaml".into(),
        reason: "the file is empty".into(),
    };
    assert_eq!(
        corrupt.to_string(),
        "checkpoint file /x/cp.yaml is corrupt: the file is empty (left untouched; move or remove it to start empty)"
    );
}
