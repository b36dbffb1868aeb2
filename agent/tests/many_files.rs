//! Many files, as Filebeat and promtail tail them (issue 12, section 3):
//! a glob of files growing at once, one of them rotated, under a kill loop;
//! a file that starts to match mid-run; a file deleted while it is read.
//!
//! Each file's lines are numbered in a range of its own, so the output can
//! be split back into files and each checked: exactly once, in order.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(120);

/// First line number of each file's range.
const A: u64 = 1_000_000;
const B: u64 = 2_000_000;
const C: u64 = 3_000_000;

/// The output's lines, grouped by range (A, B, C...), each in output order.
fn by_file(out: &Path) -> BTreeMap<u64, Vec<u64>> {
    let mut files: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for n in numbers(out) {
        files.entry(n / 1_000_000 * 1_000_000).or_default().push(n);
    }
    files
}

/// `spillway ship --input PATTERN --output OUT --state STATE --follow ...`.
fn args(pattern: &str, out: &str, state: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["--follow", "--flush-interval", "50ms"];
    v.extend_from_slice(extra);
    ship_args(pattern, out, state, &v)
}

#[test]
fn three_growing_files_one_rotated_under_a_kill_loop_arrive_exactly_once_in_order() {
    const ROUNDS: u64 = 8;
    const BURST: u64 = 2_000;
    let s = Scratch::new("many-kill");
    let logs = s.path("logs");
    fs::create_dir_all(&logs).unwrap();
    let (a, b, c) = (logs.join("a.log"), logs.join("b.log"), logs.join("c.log"));
    for f in [&a, &b, &c] {
        fs::write(f, "").unwrap();
    }
    let out = s.path("out.log");
    let state = s.path("state");
    let pattern = logs.join("*.log");
    let args = args(
        pattern.to_str().unwrap(),
        out.to_str().unwrap(),
        &state,
        &["--max-size", "300"],
    );

    // Next line number of each file.
    let mut next = [A + 1, B + 1, C + 1];
    let mut rng = Rng::new(0x003F_11E5);
    let mut logs_seen = String::new();
    for round in 0..ROUNDS {
        let mut child = spawn(&args, Stdio::null());
        let log = StderrLog::start(&mut child);
        // The three files grow at once, in interleaved bursts, while the
        // agent reads them.
        for part in 0..4 {
            for (i, f) in [&a, &b, &c].into_iter().enumerate() {
                let n = BURST / 4;
                append(f, next[i], next[i] + n - 1);
                next[i] += n;
            }
            if round == 3 && part == 1 {
                // b is rotated: renamed (its writer adds a last few lines to
                // it), and a new b.log goes on with the next lines.
                fs::rename(&b, logs.join("b.log.1")).unwrap();
                append(&logs.join("b.log.1"), next[1], next[1] + 99);
                next[1] += 100;
                fs::write(&b, "").unwrap();
            }
        }
        // Exactly once, the output ends as long as the inputs together: the
        // kill lands once a random part of what is left has arrived.
        let inputs = file_len(&a) + file_len(&b) + file_len(&logs.join("b.log.1")) + file_len(&c);
        let now = file_len(&out);
        let grown = now + rng.between(0, inputs.saturating_sub(now));
        let deadline = Instant::now() + WAIT;
        while file_len(&out) < grown {
            assert!(Instant::now() < deadline, "no progress in round {round}");
            assert!(child.try_wait().unwrap().is_none(), "the agent exited");
            std::thread::sleep(Duration::from_micros(500));
        }
        std::thread::sleep(Duration::from_micros(rng.between(0, 20_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        logs_seen.push_str(&format!("round {round}:\n{}", log.finish()));
    }

    // A last run ships the rest; a stop then ends it.
    let total = (next[0] - A - 1) + (next[1] - B - 1) + (next[2] - C - 1);
    let mut child = spawn(&args, Stdio::null());
    let log = StderrLog::start(&mut child);
    wait_until("every line", WAIT, || count_lines(&out) as u64 >= total);
    terminate(&child);
    let status = wait_exit(&mut child, WAIT);
    let err = log.finish();
    assert_eq!(code(status), 0, "{err}");

    let files = by_file(&out);
    assert_eq!(files.len(), 3, "{:?}", files.keys());
    for (i, (first, got)) in files.into_iter().enumerate() {
        let want: Vec<u64> = (first + 1..next[i]).collect();
        assert_eq!(got.len(), want.len(), "file {first}: count");
        if let Some(at) = (0..want.len()).find(|&k| got[k] != want[k]) {
            let around = &got[at.saturating_sub(3)..(at + 3).min(got.len())];
            panic!(
                "file {first}: out of order at {at}: wanted {}, got {around:?}\n{logs_seen}{err}",
                want[at]
            );
        }
    }
    // Every file is listed with its offset and lag.
    let shown = inspect(&state);
    for name in ["a.log", "b.log", "c.log"] {
        let at = shown
            .find(&format!("{name}\n"))
            .unwrap_or_else(|| panic!("{name} not listed:\n{shown}"));
        assert!(
            shown[at..].lines().nth(1).unwrap().contains("lag 0 bytes"),
            "{shown}"
        );
    }
}

#[test]
fn a_file_that_starts_to_match_is_picked_up_and_a_deleted_one_is_finished() {
    let s = Scratch::new("many-new");
    let logs = s.path("logs");
    fs::create_dir_all(&logs).unwrap();
    let out = s.path("out.log");
    let state = s.path("state");
    generate(&logs.join("x.txt"), 10); // never matches
    let a = logs.join("a.log");
    fs::write(&a, "").unwrap();
    append(&a, A + 1, A + 100);
    let pattern = logs.join("*.log");
    let args = args(
        pattern.to_str().unwrap(),
        out.to_str().unwrap(),
        &state,
        &[],
    );
    let mut child = spawn(&args, Stdio::null());
    let log = StderrLog::start(&mut child);
    wait_until("a.log's lines", WAIT, || count_lines(&out) >= 100);

    // c.log starts to match mid-run.
    let c = logs.join("c.log");
    fs::write(&c, "").unwrap();
    append(&c, C + 1, C + 50);
    log.wait_for(&format!("input {} appeared", c.display()), WAIT);
    wait_until("c.log's lines", WAIT, || count_lines(&out) >= 150);

    // a.log is deleted while the agent has it open, after a last write.
    append(&a, A + 101, A + 120);
    fs::remove_file(&a).unwrap();
    log.wait_for("was deleted while it was read", WAIT);
    wait_until("a.log's last lines", WAIT, || count_lines(&out) >= 170);
    // A new a.log is a new file, read from its beginning.
    fs::write(&a, "").unwrap();
    append(&a, A + 121, A + 130);
    wait_until("the new a.log's lines", WAIT, || count_lines(&out) >= 180);

    terminate(&child);
    let status = wait_exit(&mut child, WAIT);
    let err = log.finish();
    assert_eq!(code(status), 0, "{err}");
    let files = by_file(&out);
    assert_eq!(files[&A], (A + 1..=A + 130).collect::<Vec<_>>());
    assert_eq!(files[&C], (C + 1..=C + 50).collect::<Vec<_>>());
    assert_eq!(files.len(), 2, "x.txt was shipped: {:?}", files.keys());
}

#[test]
fn several_inputs_each_resume_from_their_own_checkpoint_entry() {
    let s = Scratch::new("many-resume");
    let (a, b) = (s.path("a.log"), s.path("b.log"));
    fs::write(&a, "").unwrap();
    fs::write(&b, "").unwrap();
    append(&a, A + 1, A + 500);
    append(&b, B + 1, B + 300);
    let out = s.path("out.log");
    let state = s.path("state");
    let run_once = || {
        run(&[
            "ship",
            "--input",
            a.to_str().unwrap(),
            "--input",
            b.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ])
    };
    let first = run_once();
    assert_eq!(code(first.status), 0, "{}", stderr(&first));
    append(&b, B + 301, B + 400);
    let second = run_once();
    assert_eq!(code(second.status), 0, "{}", stderr(&second));
    assert!(
        stderr(&second).contains("shipped 100 records"),
        "{}",
        stderr(&second)
    );
    let files = by_file(&out);
    assert_eq!(files[&A], (A + 1..=A + 500).collect::<Vec<_>>());
    assert_eq!(files[&B], (B + 1..=B + 400).collect::<Vec<_>>());
}

#[test]
fn a_pattern_that_matches_nothing_and_stdin_with_files_are_refused() {
    let s = Scratch::new("many-bad");
    let state = s.path("state");
    let out = s.path("out.log");
    let none = s.path("nowhere").join("*.log");
    let refused = run(&[
        "ship",
        "--input",
        none.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code(refused.status), 2);
    assert!(
        stderr(&refused).contains(&format!("input pattern {} matches no file", none.display())),
        "{}",
        stderr(&refused)
    );
    let log = s.path("a.log");
    generate(&log, 1);
    let refused = run(&[
        "ship",
        "--input",
        "-",
        "--input",
        log.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code(refused.status), 2);
    assert!(
        stderr(&refused).contains("cannot be given with other inputs"),
        "{}",
        stderr(&refused)
    );
    assert!(!out.exists() || file_len(&out) == 0);
}
