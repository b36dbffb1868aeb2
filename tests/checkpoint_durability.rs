//! The checkpoint file against crashes, damage and a full disk.
//!
//! Crash and disk-full tests re-run this test binary as a child process
//! (`current_exe()`), with an environment variable selecting the child's role;
//! without it the role functions return at once.
//!
//! - `kill_9_leaves_the_previous_or_the_new_state_whole`: a child persists and
//!   flushes in a loop and is SIGKILLed at seeded random moments (set
//!   `SPILLWAY_CP_SEED` to replay a run).
//! - truncation at every offset, byte flips, random damage, arbitrary bytes.
//! - `disk_full_...`: a child under a small RLIMIT_FSIZE gets EFBIG.

mod checkpoint_support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use checkpoint_support::{Rng, ScratchDir};
use proptest::prelude::*;
use spillway::checkpoint::{Checkpoint, CheckpointError, EventLogState};

const NEVER: Duration = Duration::MAX;
const ROLE: &str = "SPILLWAY_CP_CHILD";
const CHILD_PATH: &str = "SPILLWAY_CP_PATH";
const CHILD_LOG: &str = "SPILLWAY_CP_LOG";

/// A state as one comparable line.
fn encode(states: &[EventLogState]) -> String {
    states
        .iter()
        .map(|s| {
            let t = s.timestamp.duration_since(UNIX_EPOCH).unwrap();
            format!(
                "{}={}@{}.{:09}",
                s.name,
                s.record_number,
                t.as_secs(),
                t.subsec_nanos()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// This test binary, run as a child with one test selected.
fn child(test_name: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"]);
    cmd
}

// ---------------------------------------------------------------- kill -9

/// Child role: persist and flush forever, logging each state before its
/// flush (`pending`) and after it returns (`done`). Only flush writes
/// (max_updates and interval never trigger), so the file can only hold
/// the state of a `pending` line.
#[test]
fn crash_child_role() {
    if std::env::var(ROLE).as_deref() != Ok("crash") {
        return;
    }
    let path = PathBuf::from(std::env::var(CHILD_PATH).unwrap());
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(std::env::var(CHILD_LOG).unwrap())
        .unwrap();
    // Never outlive the parent: its end of our stdin closes when it goes.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let cp = Checkpoint::open(&path, u32::MAX, NEVER).unwrap();
    let mut k = cp.get("iter").map_or(0, |s| s.record_number + 1);
    let first = k;
    loop {
        let t = UNIX_EPOCH + Duration::new(1_000_000 + k, (k * 7_919 % 1_000_000_000) as u32);
        cp.persist("iter", k, t).unwrap();
        // Up to 29 sources of varying name length, so sizes change.
        let name = format!("src{}{}", k % 29, "x".repeat((k % 5) as usize));
        cp.persist(&name, k * 3, t).unwrap();
        // One write() per line: a kill cannot tear it.
        log.write_all(format!("pending {}\n", encode(&cp.states())).as_bytes())
            .unwrap();
        cp.flush().unwrap();
        log.write_all(format!("done {k}\n").as_bytes()).unwrap();
        if k == first {
            // The parent waits for one whole flush before it picks its
            // moment, however slow the disk is. The harness may print
            // "test crash_child_role ... " on the same line.
            println!("CHILD_FLUSHED");
            std::io::stdout().flush().unwrap();
        }
        k += 1;
    }
}

#[test]
fn kill_9_leaves_the_previous_or_the_new_state_whole() {
    const KILLS: usize = 100;
    let seed: u64 = std::env::var("SPILLWAY_CP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de);
    let mut rng = Rng::new(seed);
    let dir = ScratchDir::new("kill9");
    let path = dir.join("cp.yaml");
    let log_path = dir.join("log");
    let mut previous = String::new(); // the state on disk before this run
    let (mut flushes, mut torn_new, mut torn_old, mut before_ready) = (0, 0, 0, 0);
    let mut after_a_flush = 0;
    for kill in 0..KILLS {
        std::fs::write(&log_path, "").unwrap();
        let mut proc = child("crash_child_role")
            .stdin(Stdio::piped())
            .env(ROLE, "crash")
            .env(CHILD_PATH, &path)
            .env(CHILD_LOG, &log_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // One kill in five lands at a random moment after spawn (maybe in
        // open); the others a random moment after the first flush.
        if rng.below(5) == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(4_000)));
        } else {
            let stdout = BufReader::new(proc.stdout.take().unwrap());
            let flushed = stdout
                .lines()
                .map_while(Result::ok)
                .any(|l| l.contains("CHILD_FLUSHED"));
            assert!(
                flushed,
                "seed {seed}, kill {kill}: child died before its first flush"
            );
            after_a_flush += 1;
            std::thread::sleep(Duration::from_micros(rng.below(15_000)));
        }
        proc.kill().unwrap(); // SIGKILL
        proc.wait().unwrap();
        drop(proc.stdin.take());

        let log = std::fs::read_to_string(&log_path).unwrap();
        let mut flushed = previous.clone();
        let mut in_flight = None;
        for line in log.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let line = line.trim_end_matches('\n');
            if let Some(state) = line.strip_prefix("pending ") {
                in_flight = Some(state.to_string());
            } else if line.starts_with("done ") {
                flushed = in_flight.take().expect("done follows pending");
                flushes += 1;
            }
        }
        let temps = dir.entries().iter().filter(|n| n.contains(".tmp.")).count();
        assert!(
            temps <= 1,
            "seed {seed}, kill {kill}: {temps} temporary files"
        );
        let cp = Checkpoint::open(&path, 1, NEVER)
            .unwrap_or_else(|e| panic!("seed {seed}, kill {kill}: open after kill failed: {e}"));
        let on_disk = encode(&cp.states());
        drop(cp);
        match &in_flight {
            None => assert_eq!(on_disk, flushed, "seed {seed}, kill {kill}"),
            Some(new) => {
                assert!(
                    on_disk == flushed || on_disk == *new,
                    "seed {seed}, kill {kill}: file holds neither the old nor the new state\n\
                     disk: {on_disk}\nold:  {flushed}\nnew:  {new}"
                );
                if on_disk == *new {
                    torn_new += 1;
                } else {
                    torn_old += 1;
                }
            }
        }
        if log.is_empty() {
            before_ready += 1;
        }
        assert!(
            !dir.entries().iter().any(|n| n.contains(".tmp.")),
            "open removes stale temporary files"
        );
        previous = on_disk;
    }
    println!(
        "seed {seed}: {KILLS} kills, {flushes} flushes completed, killed mid-flush {} times \
         (file new {torn_new}, old {torn_old}), {before_ready} before the first flush",
        torn_new + torn_old
    );
    // Every child killed after its first flush logged at least that one.
    assert!(
        flushes >= after_a_flush && after_a_flush > 0,
        "the children hardly ran: {flushes} flushes, {after_a_flush} kills after one"
    );
}

/// Child role: `persist_many` of three entries that always hold the same
/// number, while the writer thread writes back to back (`max_updates` 1), so
/// its snapshots land at every moment of the loop.
#[test]
fn crash_many_child_role() {
    if std::env::var(ROLE).as_deref() != Ok("crash-many") {
        return;
    }
    let path = PathBuf::from(std::env::var(CHILD_PATH).unwrap());
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let cp = Checkpoint::open(&path, 1, NEVER).unwrap();
    let mut k = cp.get("a").map_or(0, |s| s.record_number + 1);
    let first = k;
    let generation = cp.write_generation();
    loop {
        let t = UNIX_EPOCH + Duration::new(1_000_000 + k, 0);
        let mut states: Vec<EventLogState> = ["a", "b", "c"]
            .iter()
            .map(|n| EventLogState::new(*n, k, t))
            .collect();
        states[1].fields.set_u64("k", k).unwrap();
        cp.persist_many(&states).unwrap();
        if k == first {
            // Ready once the writer has written this life's first update,
            // so every life moves the file forward, however slow the disk.
            let written = cp.wait_for_write(generation, Duration::from_secs(60));
            assert!(written.is_some() && cp.last_error().is_none());
            println!("CHILD_READY");
            std::io::stdout().flush().unwrap();
        }
        k += 1;
    }
}

#[test]
fn kill_9_leaves_all_or_none_of_a_persist_many() {
    const KILLS: usize = 40;
    let mut rng = Rng::new(0x0a11_0f17);
    let dir = ScratchDir::new("kill9-many");
    let path = dir.join("cp.yaml");
    let mut last = None;
    let mut advanced = 0;
    for kill in 0..KILLS {
        let mut proc = child("crash_many_child_role")
            .stdin(Stdio::piped())
            .env(ROLE, "crash-many")
            .env(CHILD_PATH, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(proc.stdout.take().unwrap());
        let ready = stdout
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("CHILD_READY"));
        assert!(ready, "kill {kill}: child died before its first write");
        // A random moment, not a synchronisation: the child never waits.
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        proc.kill().unwrap(); // SIGKILL
        proc.wait().unwrap();
        drop(proc.stdin.take());

        let (states, _) = Checkpoint::read(&path).unwrap();
        if states.is_empty() {
            assert!(last.is_none(), "kill {kill}: an earlier state vanished");
            continue;
        }
        let numbers: Vec<u64> = states.iter().map(|s| s.record_number).collect();
        assert_eq!(states.len(), 3, "kill {kill}: {states:?}");
        assert!(
            numbers.iter().all(|&n| n == numbers[0]),
            "kill {kill}: a write holds part of a persist_many: {numbers:?}"
        );
        assert_eq!(states[1].fields.get_u64("k"), Some(numbers[0]));
        if last.is_some_and(|l| numbers[0] > l) {
            advanced += 1;
        }
        assert!(
            last.is_none_or(|l| numbers[0] >= l),
            "kill {kill}: went back from {last:?} to {}",
            numbers[0]
        );
        last = Some(numbers[0]);
    }
    // Each child resumes after the number on disk and was killed after its
    // first write: every life after the first moved the file forward.
    assert_eq!(advanced, KILLS - 1, "a life did not move the file forward");
    println!("{KILLS} kills, the file advanced in {advanced} of them, last {last:?}");
}

// ---------------------------------------------------------------- damage

/// A checkpoint file written by `Checkpoint`, and the states it holds.
fn valid_file(dir: &ScratchDir) -> (PathBuf, Vec<u8>, Vec<EventLogState>) {
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, u32::MAX, NEVER).unwrap();
    let t = |s, n| UNIX_EPOCH + Duration::new(s, n);
    cp.persist("Application", 1234, t(1_472_560_496, 123_456_789))
        .unwrap();
    cp.persist("Security", 7, t(1_472_560_000, 0)).unwrap();
    cp.persist("a: b # c", u64::MAX, t(0, 1)).unwrap();
    cp.persist("line\nbreak", 0, t(99, 999_999_999)).unwrap();
    cp.persist("Windows PowerShell", 42, SystemTime::now())
        .unwrap();
    cp.shutdown().unwrap();
    let states = cp.states();
    drop(cp);
    (path.clone(), std::fs::read(&path).unwrap(), states)
}

/// Opens `bytes` as the file at `path`: it must fail naming the file (and
/// leave it untouched), or load exactly `written`. Returns whether it loaded.
fn open_damaged(path: &Path, bytes: &[u8], written: &[EventLogState], what: &str) -> bool {
    std::fs::write(path, bytes).unwrap();
    let loaded = match Checkpoint::open(path, u32::MAX, NEVER) {
        Ok(cp) => {
            assert_eq!(cp.states(), written, "{what}: loaded a state never written");
            true
        }
        Err(e @ CheckpointError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{what}: {msg}");
            false
        }
        Err(e) => panic!("{what}: expected Corrupt, got {e:?}"),
    };
    assert_eq!(std::fs::read(path).unwrap(), bytes, "{what}: file changed");
    loaded
}

#[test]
fn truncation_at_every_offset_is_detected() {
    let dir = ScratchDir::new("truncate");
    let (path, bytes, written) = valid_file(&dir);
    for len in 0..bytes.len() {
        let loaded = open_damaged(&path, &bytes[..len], &written, &format!("cut at {len}"));
        assert!(
            !loaded,
            "a file cut at {len} of {} bytes was accepted",
            bytes.len()
        );
    }
    assert!(open_damaged(&path, &bytes, &written, "whole"));
}

#[test]
fn flipped_bytes_are_detected() {
    let dir = ScratchDir::new("flip");
    let (path, bytes, written) = valid_file(&dir);
    for at in 0..bytes.len() {
        for mask in [0x01, 0x20, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            let what = format!("byte {at} ^ {mask:#x}");
            assert!(
                !open_damaged(&path, &damaged, &written, &what),
                "{what} accepted"
            );
        }
    }
}

#[test]
fn random_damage_is_detected() {
    let dir = ScratchDir::new("random-damage");
    let (path, bytes, written) = valid_file(&dir);
    let mut rng = Rng::new(42);
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    for case in 0..500 {
        let mut damaged = bytes.clone();
        match case % 5 {
            // Drop a whole line: still YAML, fewer fields or sources.
            0 => {
                let skip = rng.below(lines.len() as u64 - 1) as usize;
                damaged = lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .flat_map(|(_, l)| l.iter().copied())
                    .collect();
            }
            // Swap two lines.
            1 => {
                let mut ls = lines.clone();
                let (a, b) = (rng.below(ls.len() as u64), rng.below(ls.len() as u64));
                if a == b {
                    continue;
                }
                ls.swap(a as usize, b as usize);
                damaged = ls.concat();
            }
            // Insert a byte.
            2 => damaged.insert(
                rng.below(bytes.len() as u64 + 1) as usize,
                rng.next_u64() as u8,
            ),
            // Delete a byte.
            3 => {
                damaged.remove(rng.below(bytes.len() as u64) as usize);
            }
            // Overwrite a run with zeros, as a lost page would.
            _ => {
                let start = rng.below(bytes.len() as u64) as usize;
                let end = (start + 1 + rng.below(64) as usize).min(bytes.len());
                damaged[start..end].fill(0);
            }
        }
        let what = format!("case {case}");
        assert!(
            !open_damaged(&path, &damaged, &written, &what),
            "{what} accepted"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes, and arbitrary bytes with a valid checksum line (so
    /// the YAML and field checks see them): never a panic, and every error
    /// names the file.
    #[test]
    fn arbitrary_files_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400),
                                   yamlish in "[a-z_:\\- \\n0-9.TZ\\[\\]]{0,200}") {
        let dir = ScratchDir::new("arbitrary");
        let path = dir.join("cp.yaml");
        let mut checked = yamlish.into_bytes();
        if !checked.is_empty() && !checked.ends_with(b"\n") {
            checked.push(b'\n');
        }
        let crc = crc32c::crc32c(&checked);
        checked.extend_from_slice(format!("# crc32c: {crc:08x}\n").as_bytes());
        for bytes in [body, checked] {
            std::fs::write(&path, &bytes).unwrap();
            match Checkpoint::open(&path, 1, NEVER) {
                Ok(cp) => drop(cp),
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(msg.contains(&path.display().to_string()), "{}", msg);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- disk full

/// Child role, run under a small RLIMIT_FSIZE with SIGXFSZ ignored.
#[test]
fn disk_full_child_role() {
    if std::env::var(ROLE).as_deref() != Ok("disk-full") {
        return;
    }
    let dir = PathBuf::from(std::env::var(CHILD_PATH).unwrap());
    let path = dir.join("cp.yaml");
    let entries = || {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let is_efbig = |e: &CheckpointError| match e {
        CheckpointError::Io {
            path: p, source, ..
        } => p == &path && source.raw_os_error() == Some(libc::EFBIG),
        _ => false,
    };
    let t = UNIX_EPOCH + Duration::from_secs(1_472_560_496);
    let cp = Checkpoint::open(&path, 200, NEVER).unwrap();
    for i in 0..3 {
        cp.persist(&format!("small{i}"), i, t).unwrap();
    }
    cp.flush().unwrap();
    let small = std::fs::read(&path).unwrap();

    // ~20 KB of state: over the limit.
    let long = "n".repeat(150);
    for i in 0..100 {
        cp.persist(&format!("{long}{i}"), i, t).unwrap();
    }
    let err = cp.flush().unwrap_err();
    assert!(is_efbig(&err), "{err:?}");
    match &err {
        CheckpointError::Io { op, .. } => assert_eq!(*op, "write temporary file"),
        _ => unreachable!(),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "checkpoint file {}: cannot write temporary file: ",
            path.display()
        )),
        "{msg}"
    );
    assert!(is_efbig(&cp.last_error().unwrap()));
    assert_eq!(std::fs::read(&path).unwrap(), small, "previous file intact");
    assert_eq!(entries(), ["cp.yaml"], "failed temporary file removed");
    assert_eq!(cp.states().len(), 103, "state kept in memory");

    // The writer thread's next cycle retries with a new temporary file, fails
    // the same way, and keeps the error.
    let seen = cp.write_generation();
    for i in 0..200 {
        cp.persist("small0", 1000 + i, t).unwrap();
    }
    assert_eq!(
        cp.wait_for_write(seen, Duration::from_secs(30)),
        Some(seen + 1)
    );
    assert!(is_efbig(&cp.last_error().unwrap()));
    assert_eq!(std::fs::read(&path).unwrap(), small);
    assert_eq!(entries(), ["cp.yaml"]);
    assert_eq!(cp.get("small0").unwrap().record_number, 1199);

    assert!(is_efbig(&cp.shutdown().unwrap_err()));
    assert_eq!(std::fs::read(&path).unwrap(), small);
    drop(cp); // errors ignored, no panic
    println!("DISK_FULL_CHILD_OK");
}

#[test]
fn disk_full_is_reported_and_the_previous_file_kept() {
    let dir = ScratchDir::new("disk-full");
    let exe = std::env::current_exe().unwrap();
    // 8 blocks: 4 KiB in dash (512-byte blocks), 8 KiB in bash.
    let out = Command::new("sh")
        .args(["-c", r#"trap "" XFSZ; ulimit -f 8; exec "$0" "$@""#])
        .arg(exe)
        .args([
            "--exact",
            "disk_full_child_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "disk-full")
        .env(CHILD_PATH, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("DISK_FULL_CHILD_OK"),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}
