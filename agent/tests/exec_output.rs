//! An `exec:` output that fails until a marker file appears: the agent
//! retries, keeps what it could not deliver, and once the command accepts
//! batches everything arrives, in order, nothing lost.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Fast retries, so the tests do not wait on the default backoff.
fn fast_retries(s: &Scratch, max_retries: u32) -> std::path::PathBuf {
    let cfg = s.path("agent.yaml");
    fs::write(
        &cfg,
        format!(
            "max_retries: {max_retries}\nretry_backoff: 20ms\nretry_backoff_max: 100ms\n\
             flush_interval: 50ms\nflush_timeout: 10s\n"
        ),
    )
    .unwrap();
    cfg
}

fn command(marker: &std::path::Path, out: &std::path::Path) -> String {
    format!(
        "exec:test -f '{}' && cat >> '{}'",
        marker.display(),
        out.display()
    )
}

#[test]
fn a_run_that_cannot_deliver_exits_1_and_the_next_one_delivers_everything_once() {
    let s = Scratch::new("exec-rerun");
    let input = s.path("in.log");
    let out = s.path("out.log");
    let marker = s.path("marker");
    let state = s.path("state");
    let cfg = fast_retries(&s, 2);
    generate(&input, 5000);
    let exec = command(&marker, &out);
    let extra = ["--config", cfg.to_str().unwrap(), "--max-size", "1000"];

    let run1 = ship(&input, &exec, &state, &extra);
    assert_eq!(code(run1.status), 1, "{}", stderr(&run1));
    let err = stderr(&run1);
    assert!(err.contains("output failed: command `test -f"), "{err}");
    assert!(err.contains("shipped 0 records"), "{err}");
    assert!(err.contains(" retries"), "{err}");
    assert!(err.contains("5000 still spooled"), "{err}");
    assert!(!out.exists());
    // What was read is in the spill spool; the checkpoint has not moved.
    let shown = inspect(&state);
    assert!(shown.contains("offset 0 "), "{shown}");
    assert!(
        shown.contains("spool spill") && shown.contains(": 5000 records"),
        "{shown}"
    );

    fs::write(&marker, "").unwrap();
    let run2 = ship(&input, &exec, &state, &extra);
    assert_eq!(code(run2.status), 0, "{}", stderr(&run2));
    assert!(
        stderr(&run2).contains("shipped 5000 records"),
        "{}",
        stderr(&run2)
    );
    assert_eq!(numbers(&out), (1..=5000).collect::<Vec<_>>());
}

#[test]
fn following_the_agent_keeps_retrying_and_delivers_everything_once_the_command_works() {
    let s = Scratch::new("exec-follow");
    let input = s.path("in.log");
    let out = s.path("out.log");
    let marker = s.path("marker");
    let state = s.path("state");
    let cfg = fast_retries(&s, 1);
    generate(&input, 3000);
    let exec = command(&marker, &out);
    let args = ship_args(
        input.to_str().unwrap(),
        &exec,
        &state,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--max-size",
            "500",
            "--follow",
            "--stats",
            "50ms",
        ],
    );
    let mut child = spawn(&args, Stdio::null());
    let log = StderrLog::start(&mut child);
    // Failed attempts go by, well past max_retries ...
    log.wait_for("retries 5,", Duration::from_secs(60));
    assert!(child.try_wait().unwrap().is_none(), "the agent gave up");
    assert!(!out.exists());
    append(&input, 3001, 4000);
    // ... then the command works, and everything arrives.
    fs::write(&marker, "").unwrap();
    wait_until("every line", Duration::from_secs(60), || {
        count_lines(&out) >= 4000
    });
    terminate(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let err = log.finish();
    assert_eq!(code(status), 0, "{err}");
    assert!(err.contains("output failed"), "{err}");
    assert!(err.contains("output accepted a batch again"), "{err}");
    assert!(err.contains("shipped 4000 records"), "{err}");
    assert_eq!(numbers(&out), (1..=4000).collect::<Vec<_>>());
}
