//! `--follow`: a writer appends and rotates the file twice (renamed and
//! replaced, then truncated in place); every line arrives once the writer
//! stops, and SIGTERM ends the agent with everything delivered.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn every_line_arrives_through_two_rotations_and_sigterm_exits_0() {
    let s = Scratch::new("follow");
    let log = s.path("app.log");
    let out = s.path("out.log");
    let state = s.path("state");
    generate(&log, 1000);
    let args = [
        "ship",
        "--input",
        log.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--follow",
        "--flush-interval",
        "50ms",
    ];
    let mut child = spawn(&args, Stdio::null());
    let stderr = StderrLog::start(&mut child);
    wait_until("the first lines", WAIT, || count_lines(&out) >= 1000);

    // The file grows in bursts.
    for burst in 0..5 {
        append(&log, 1001 + burst * 200, 1200 + burst * 200);
    }
    // Rotation 1: renamed away (the agent still has it open) while lines
    // are still being added to it, and replaced by a new file.
    append(&log, 2001, 2500);
    fs::rename(&log, s.path("app.log.1")).unwrap();
    append(&s.path("app.log.1"), 2501, 2600);
    generate_range(&log, 2601, 3000);
    // The agent reaches the new file before the next rotation.
    wait_until("the new file's lines", WAIT, || count_lines(&out) >= 3000);

    // Rotation 2: copied and truncated in place (same inode), then written
    // again, less than before, so the agent sees it shorter.
    fs::copy(&log, s.path("app.log.2")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    wait_until("the truncation to be seen", WAIT, || {
        stderr.text().contains("was truncated")
    });
    append(&log, 3001, 3100);
    append(&log, 3101, 4000);

    // The writer stops: everything arrives.
    wait_until("every line", WAIT, || count_lines(&out) >= 4000);
    terminate(&child);
    let status = wait_exit(&mut child, WAIT);
    let err = stderr.finish();
    assert_eq!(code(status), 0, "{err}");
    assert!(err.contains("was rotated"), "{err}");
    assert!(err.contains("shipped 4000 records"), "{err}");
    assert_eq!(numbers(&out), (1..=4000).collect::<Vec<_>>());

    // The checkpoint knows the current file: a restart ships nothing again.
    append(&log, 4001, 4010);
    let again = ship(&log, out.to_str().unwrap(), &state, &[]);
    assert_eq!(code(again.status), 0, "{}", common::stderr(&again));
    assert_eq!(numbers(&out), (1..=4010).collect::<Vec<_>>());
}

#[test]
fn sigterm_while_lines_are_buffered_delivers_them_and_checkpoints() {
    let s = Scratch::new("sigterm");
    let log = s.path("app.log");
    let out = s.path("out.log");
    let state = s.path("state");
    generate(&log, 10);
    // A long interval: only SIGTERM makes these lines go out.
    let args = [
        "ship",
        "--input",
        log.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--follow",
        "--flush-interval",
        "1h",
        "--stats",
        "20ms",
    ];
    let mut child = spawn(&args, Stdio::null());
    let stderr = StderrLog::start(&mut child);
    stderr.wait_for("buffered 10,", WAIT);
    assert_eq!(count_lines(&out), 0);
    terminate(&child);
    let status = wait_exit(&mut child, WAIT);
    let err = stderr.finish();
    assert_eq!(code(status), 0, "{err}");
    assert_eq!(numbers(&out), (1..=10).collect::<Vec<_>>());
    let again = ship(&log, out.to_str().unwrap(), &state, &[]);
    assert!(common::stderr(&again).contains("shipped 0 records"));
}

/// Creates `path` holding lines `from..=to`.
fn generate_range(path: &std::path::Path, from: u64, to: u64) {
    fs::write(path, "").unwrap();
    append(path, from, to);
}
