//! `--input -`: lines are spooled before they count as read; what a run
//! could not deliver (it gave up, or it was killed) is shipped by the next.

mod common;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn ship_stdin(
    input: &[u8],
    output: &str,
    state: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let mut child = Command::new(bin())
        .args(["ship", "--input", "-", "--output", output, "--state"])
        .arg(state)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn stdin_is_shipped_and_the_spool_is_left_empty() {
    let s = Scratch::new("stdin");
    let out = s.path("out.log");
    let state = s.path("state");
    let mut text = Vec::new();
    write_lines(&mut text, 1, 50_000);
    text.extend_from_slice(b"last line without newline");
    let run = ship_stdin(&text, out.to_str().unwrap(), &state, &[]);
    assert_eq!(code(run.status), 0, "{}", stderr(&run));
    assert!(
        stderr(&run).contains("shipped 50001 records"),
        "{}",
        stderr(&run)
    );
    text.push(b'\n');
    assert!(fs::read(&out).unwrap() == text);
    let shown = stdout(&run_inspect(&state));
    assert!(
        shown.contains("spool stdin") && shown.contains(": 0 records"),
        "{shown}"
    );
    // The last line had no newline: it ends where the stream ended.
    assert!(
        shown.contains(&format!(
            "input standard input: delivered through byte {} ",
            text.len() - 1
        )),
        "{shown}"
    );
}

#[test]
fn what_could_not_be_delivered_stays_spooled_and_the_next_run_ships_it_first() {
    let s = Scratch::new("stdin-down");
    let out = s.path("out.log");
    let state = s.path("state");
    let cfg = s.path("agent.yaml");
    fs::write(
        &cfg,
        "max_retries: 1\nretry_backoff: 10ms\nretry_backoff_max: 20ms\n",
    )
    .unwrap();
    let mut text = Vec::new();
    write_lines(&mut text, 1, 300);
    let run = ship_stdin(
        &text,
        "exec:exit 3",
        &state,
        &["--config", cfg.to_str().unwrap()],
    );
    assert_eq!(code(run.status), 1, "{}", stderr(&run));
    let err = stderr(&run);
    assert!(err.contains("failed (exit status: 3)"), "{err}");
    let bytes = text.len();
    assert!(
        err.contains(&format!(
            "{bytes} bytes read from standard input, {bytes} bytes of it wait in the stdin spool"
        )),
        "{err}"
    );
    let shown = stdout(&run_inspect(&state));
    assert!(
        shown.contains("input standard input: delivered through byte 0 "),
        "{shown}"
    );
    assert!(!shown.contains(": 0 records"), "{shown}");

    let mut more = Vec::new();
    write_lines(&mut more, 301, 400);
    let run = ship_stdin(&more, out.to_str().unwrap(), &state, &[]);
    assert_eq!(code(run.status), 0, "{}", stderr(&run));
    let err = stderr(&run);
    assert!(
        err.contains("of standard input from an earlier run are in the stdin spool"),
        "{err}"
    );
    assert!(err.contains("shipped 400 records"), "{err}");
    assert_eq!(numbers(&out), (1..=400).collect::<Vec<_>>());
}

#[test]
fn a_kill_loses_no_line_that_was_read_and_spooled() {
    let s = Scratch::new("stdin-kill");
    let out = s.path("out.log");
    let state = s.path("state");
    let cfg = s.path("agent.yaml");
    // The output fails and the agent retries without giving up, so every
    // line read is in the spool and nowhere else when it is killed.
    fs::write(
        &cfg,
        "max_retries: 1000000\nretry_backoff: 10ms\nretry_backoff_max: 20ms\n",
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["ship", "--input", "-", "--output", "exec:false", "--state"])
        .arg(&state)
        .args(["--config", cfg.to_str().unwrap(), "--stats", "20ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = StderrLog::start(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    let mut text = Vec::new();
    write_lines(&mut text, 1, 2000);
    stdin.write_all(&text).unwrap();
    let want = format!("stdin undelivered {} bytes", text.len());
    log.wait_for(&want, Duration::from_secs(60));
    child.kill().unwrap(); // SIGKILL, stdin still open
    child.wait().unwrap();
    drop(stdin);

    let run = ship_stdin(b"", out.to_str().unwrap(), &state, &[]);
    assert_eq!(code(run.status), 0, "{}", stderr(&run));
    assert_eq!(numbers(&out), (1..=2000).collect::<Vec<_>>());
}

fn run_inspect(state: &std::path::Path) -> std::process::Output {
    run(&["inspect", "--state", state.to_str().unwrap()])
}
