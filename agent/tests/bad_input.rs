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
    let err = stderr(&out);
    assert_eq!(code(out.status), 2, "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("spillway: "), "{err}");
    for w in wanted {
        assert!(err.contains(w), "{args:?}: {err:?} does not mention {w:?}");
    }
    err
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
    ] {
        fs::write(&cfg, yaml).unwrap();
        refused(&t.ship_args(&["--config", cfg_s]), &wanted);
    }
    refused(
        &t.ship_args(&["--config", t.s.path("none.yaml").to_str().unwrap()]),
        &["none.yaml"],
    );
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
    assert!(stdout(&out).contains("--state"));
    let out = run(&["--version"]);
    assert_eq!(code(out.status), 0);
    assert!(stdout(&out).starts_with("spillway "));
}
