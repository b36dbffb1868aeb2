//! Bad input: a one-line error naming what is wrong, exit status 2, and
//! nothing shipped; `--help` documents every flag, status and guarantee.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Runs `spillway ARGS`, expects exit status 2 and one line on stderr that
/// contains every one of `wanted`.
fn refused(args: &[&str], wanted: &[&str]) -> String {
    let out = run(args);
    check_refusal(args, code(out.status), &stderr(&out), wanted)
}

/// As [`refused`], for a case that a defect would hang (a FIFO): the agent
/// is killed, and the test fails, past a generous bound.
fn refused_within_bound(args: &[&str], wanted: &[&str]) -> String {
    let mut child = spawn(args, Stdio::null());
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    check_refusal(args, code(status), &err, wanted)
}

fn check_refusal(args: &[&str], status: i32, err: &str, wanted: &[&str]) -> String {
    assert_eq!(status, 2, "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("spillway: "), "{err}");
    assert_no_doubled_prefix(err);
    for w in wanted {
        assert!(err.contains(w), "{args:?}: {err:?} does not mention {w:?}");
    }
    err.to_owned()
}

/// No part of a message before a ": " appears twice ("invalid
/// configuration: invalid configuration: ..."): each layer that adds
/// context must add new context.
fn assert_no_doubled_prefix(message: &str) {
    let parts: Vec<&str> = message.trim_end().split(": ").collect();
    for (i, part) in parts.iter().enumerate().take(parts.len().saturating_sub(1)) {
        assert!(
            !parts[i + 1..].iter().any(|later| later.starts_with(part)),
            "{message:?} says {part:?} twice"
        );
    }
}

struct Setup {
    s: Scratch,
    input: String,
    output: String,
    state: String,
}

fn setup(name: &str) -> Setup {
    let s = Scratch::new(name);
    let input = s.path("in.log");
    generate(&input, 10);
    Setup {
        input: input.to_str().unwrap().to_owned(),
        output: s.path("out.log").to_str().unwrap().to_owned(),
        state: s.path("state").to_str().unwrap().to_owned(),
        s,
    }
}

impl Setup {
    fn ship_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "ship",
            "--input",
            &self.input,
            "--output",
            &self.output,
            "--state",
            &self.state,
        ];
        a.extend_from_slice(extra);
        a
    }
}

#[test]
fn unknown_flags_missing_flags_and_bad_values_are_named() {
    let t = setup("flags");
    refused(&t.ship_args(&["--bogus"]), &["'--bogus'"]);
    refused(&["ship", "--input", &t.input], &["--output", "--state"]);
    refused(&["frobnicate"], &["'frobnicate'"]);
    refused(
        &t.ship_args(&["--max-size", "abc"]),
        &["\"abc\"", "--max-size", "whole number"],
    );
    refused(&t.ship_args(&["--max-size", "0"]), &["\"0\"", "--max-size"]);
    refused(
        &t.ship_args(&["--max-bytes", "10XB"]),
        &["\"10XB\"", "--max-bytes", "size"],
    );
    refused(
        &t.ship_args(&["--flush-interval", "soon"]),
        &["\"soon\"", "--flush-interval", "duration"],
    );
    refused(&t.ship_args(&["--stats", "0"]), &["\"0\"", "--stats"]);
    refused(
        &t.ship_args(&["--spool-max", "0"]),
        &["\"0\"", "--spool-max"],
    );
    refused(
        &t.ship_args(&["--stdin-chunk", "0"]),
        &["\"0\"", "--stdin-chunk", "1 to 4MiB"],
    );
    refused(
        &t.ship_args(&["--stdin-chunk", "5MiB"]),
        &["\"5MiB\"", "--stdin-chunk", "1 to 4MiB"],
    );
    refused(
        &t.ship_args(&["--stdin-chunk", "lots"]),
        &["\"lots\"", "--stdin-chunk", "size"],
    );
    refused(
        &[
            "ship", "--input", &t.input, "--output", "exec:", "--state", &t.state,
        ],
        &["exec:", "--output"],
    );
    assert!(!t.s.path("out.log").exists(), "nothing is shipped");
}

#[test]
fn a_missing_or_unreadable_input_is_named() {
    let t = setup("input");
    let missing = t.s.path("nope.log");
    refused(
        &[
            "ship",
            "--input",
            missing.to_str().unwrap(),
            "--output",
            &t.output,
            "--state",
            &t.state,
        ],
        &["nope.log", "does not exist"],
    );
    let dir = t.s.path("adir");
    fs::create_dir(&dir).unwrap();
    refused(
        &[
            "ship",
            "--input",
            dir.to_str().unwrap(),
            "--output",
            &t.output,
            "--state",
            &t.state,
        ],
        &["adir", "is a directory"],
    );
    let through_file = format!("{}/child", t.input);
    refused(
        &[
            "ship",
            "--input",
            &through_file,
            "--output",
            &t.output,
            "--state",
            &t.state,
        ],
        &["child", "cannot be opened"],
    );
    refused(
        &[
            "ship", "--input", &t.input, "--output", &t.input, "--state", &t.state,
        ],
        &["are the same file"],
    );
    let locked = t.s.path("locked.log");
    generate(&locked, 3);
    fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if fs::read(&locked).is_err() {
        // (Root reads it anyway; then there is nothing to test.)
        refused(
            &[
                "ship",
                "--input",
                locked.to_str().unwrap(),
                "--output",
                &t.output,
                "--state",
                &t.state,
            ],
            &["locked.log", "not readable"],
        );
    }
}

#[test]
fn an_unusable_or_busy_state_directory_is_named() {
    let t = setup("state");
    let file = t.s.path("plain-file");
    fs::write(&file, "x").unwrap();
    refused(
        &[
            "ship",
            "--input",
            &t.input,
            "--output",
            &t.output,
            "--state",
            file.to_str().unwrap(),
        ],
        &["state directory", "plain-file", "unusable"],
    );
    refused(
        &["inspect", "--state", t.s.path("absent").to_str().unwrap()],
        &["absent", "does not exist"],
    );

    // A running agent holds the state directory.
    let mut agent = spawn(&t.ship_args(&["--follow"]), Stdio::null());
    wait_until("the first agent to ship", Duration::from_secs(60), || {
        count_lines(&t.s.path("out.log")) == 10
    });
    let other = t.s.path("other.log");
    refused(
        &[
            "ship",
            "--input",
            &t.input,
            "--output",
            other.to_str().unwrap(),
            "--state",
            &t.state,
        ],
        &["in use by another spillway agent"],
    );
    // ... and so does it its output.
    let state2 = t.s.path("state2");
    refused(
        &[
            "ship",
            "--input",
            &t.input,
            "--output",
            &t.output,
            "--state",
            state2.to_str().unwrap(),
        ],
        &["out.log", "another spillway agent is writing to it"],
    );
    // inspect still works, from a copy of the checkpoint.
    let shown = run(&["inspect", "--state", &t.state]);
    assert_eq!(code(shown.status), 0, "{}", stderr(&shown));
    assert!(stdout(&shown).contains("in use by a running agent"));
    terminate(&agent);
    assert_eq!(code(wait_exit(&mut agent, Duration::from_secs(60))), 0);
}

#[test]
fn a_corrupt_checkpoint_is_named_and_never_overwritten() {
    let t = setup("corrupt");
    fs::create_dir_all(&t.state).unwrap();
    let cp = t.s.path("state/checkpoint.yaml");
    fs::write(&cp, "event_logs: [this is not a checkpoint\n").unwrap();
    refused(&t.ship_args(&[]), &["checkpoint.yaml", "corrupt"]);
    refused(
        &["inspect", "--state", &t.state],
        &["checkpoint.yaml", "corrupt"],
    );
    assert_eq!(
        fs::read_to_string(&cp).unwrap(),
        "event_logs: [this is not a checkpoint\n"
    );
    assert!(!t.s.path("out.log").exists());
}

#[test]
fn a_bad_configuration_file_is_named() {
    let t = setup("config");
    let cfg = t.s.path("agent.yaml");
    let cfg_s = cfg.to_str().unwrap();
    for (yaml, wanted) in [
        ("max_sise: 10\n", vec!["agent.yaml", "max_sise"]),
        (
            "max_size: lots\n",
            vec!["agent.yaml", "max_size", "\"lots\""],
        ),
        ("partitions: 4\n", vec!["partitions", "must be 1"]),
        ("overflow: drop_oldest\n", vec!["overflow", "drop"]),
        ("spool_dir: /tmp/x\n", vec!["spool_dir", "--state"]),
        ("[1, 2\n", vec!["agent.yaml"]),
        (
            "retry_backoff: 2s\nretry_backoff_max: 1s\n",
            vec!["invalid configuration", "`retry_backoff` (2s)"],
        ),
        (
            "max_size: 0x10\n",
            vec!["agent.yaml", "\"0x10\"", "max_size"],
        ),
    ] {
        fs::write(&cfg, yaml).unwrap();
        refused(&t.ship_args(&["--config", cfg_s]), &wanted);
    }
    refused(
        &t.ship_args(&["--config", t.s.path("none.yaml").to_str().unwrap()]),
        &["none.yaml"],
    );
}

/// A FIFO or a device given as `--config`, or standing where the
/// checkpoint belongs, is a one-line error at once: never a hang, never an
/// unbounded read.
#[test]
fn special_files_are_refused_at_once() {
    let t = setup("special");
    let fifo = t.s.path("agent.yaml");
    mkfifo(&fifo);
    refused_within_bound(
        &t.ship_args(&["--config", fifo.to_str().unwrap()]),
        &["agent.yaml", "a FIFO, not a regular file"],
    );
    refused_within_bound(
        &t.ship_args(&["--config", "/dev/zero"]),
        &["/dev/zero", "a character device, not a regular file"],
    );

    fs::create_dir_all(&t.state).unwrap();
    mkfifo(&t.s.path("state/checkpoint.yaml"));
    for args in [t.ship_args(&[]), vec!["inspect", "--state", &t.state]] {
        refused_within_bound(&args, &["checkpoint.yaml", "a FIFO, not a regular file"]);
    }
    fs::remove_file(t.s.path("state/checkpoint.yaml")).unwrap();
    // The lock file is opened for writing, which would wait for a reader.
    fs::remove_file(t.s.path("state/lock")).unwrap();
    mkfifo(&t.s.path("state/lock"));
    for args in [t.ship_args(&[]), vec!["inspect", "--state", &t.state]] {
        refused_within_bound(&args, &["state/lock", "a FIFO, not a regular file"]);
    }
    assert!(!t.s.path("out.log").exists());
}

fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn an_output_that_cannot_be_opened_is_named() {
    let t = setup("output");
    let bad = t.s.path("no/such/dir/out.log");
    refused(
        &[
            "ship",
            "--input",
            &t.input,
            "--output",
            bad.to_str().unwrap(),
            "--state",
            &t.state,
        ],
        &["output", "out.log", "cannot be opened"],
    );
}

#[test]
fn help_documents_every_flag_exit_status_and_guarantee() {
    let out = run(&["ship", "--help"]);
    assert_eq!(code(out.status), 0);
    let help = stdout(&out);
    for flag in [
        "--input",
        "--output",
        "--state",
        "--config",
        "--max-size",
        "--max-bytes",
        "--flush-interval",
        "--follow",
        "--spool-max",
        "--stdin-chunk",
        "--stats",
        "exec:COMMAND",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    // The --http-* flags: help_documents_the_http_output (http_output.rs).
    #[cfg(feature = "nats")]
    for flag in [
        "nats://",
        "--nats-creds",
        "--nats-user",
        "--nats-password",
        "--nats-token",
        "--nats-ca",
        "--nats-header",
        "--nats-stream",
        "--nats-replicas",
        "--nats-dedup",
        "duplicate window",
        "only publisher",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    for topic in [
        "EXIT STATUS",
        "  0  ",
        "  1  ",
        "  2  ",
        "synced",
        "checkpoint",
        "SIGTERM",
        "rotat",
        "spool",
        "exactly once",
        "kill -9",
        "orderly stop",
        "GLOB",
        "lag",
    ] {
        assert!(help.contains(topic), "--help does not mention {topic:?}");
    }
    let out = run(&["inspect", "--help"]);
    assert_eq!(code(out.status), 0);
    let help = stdout(&out);
    for topic in [
        "--state",
        "lag",
        "NATS subject",
        "last acknowledged",
        "Exit status: 0",
        "2 if DIR",
    ] {
        assert!(
            help.contains(topic),
            "inspect --help does not mention {topic:?}"
        );
    }
    let out = run(&["--version"]);
    assert_eq!(code(out.status), 0);
    assert!(stdout(&out).starts_with("spillway "));
}
