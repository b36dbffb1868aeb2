//! SIGKILL at seeded random moments, restart with the same state: every
//! line arrives exactly once, in order (the output is a file).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const LINES: u64 = 1_000_000;
const BATCH: u64 = 1_000;
const KILLS: usize = 20;

#[test]
fn killed_at_random_moments_the_agent_loses_nothing_and_repeats_at_most_a_batch() {
    let s = Scratch::new("kill");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, LINES);
    let max_size = BATCH.to_string();
    let args = [
        "ship",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--max-size",
        &max_size,
    ];

    // A kill lands at a seeded random moment: most once the output has grown
    // past a random mark (so the kills spread over the input whatever the
    // machine's speed), some a few milliseconds after start-up began.
    let mut rng = Rng::new(0x5EED_2024);
    let started = Instant::now();
    let step = fs_len(&input) / (KILLS as u64 * 2);
    for kill in 0..KILLS {
        let mut child = spawn(&args, Stdio::null());
        if kill % 4 == 3 {
            std::thread::sleep(Duration::from_millis(rng.between(0, 6)));
        } else {
            let mark = fs_len(&output) + rng.between(1, step);
            let deadline = Instant::now() + Duration::from_secs(60);
            while fs_len(&output) < mark {
                assert!(Instant::now() < deadline, "no progress in 60 s");
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the agent finished before kill {kill}"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let mut child = spawn(&args, Stdio::null());
    let status = wait_exit(&mut child, Duration::from_secs(120));
    assert_eq!(code(status), 0);

    let got = numbers(&output);
    let repeats = check_in_order_with_repeats(&got, LINES);
    // A file output is cut back to the checkpoint's length at start, and
    // that length is written with the offsets it covers: nothing repeats.
    assert!(
        repeats.is_empty(),
        "{} repeats for {KILLS} kills: {repeats:?}",
        repeats.len()
    );
    eprintln!(
        "{KILLS} kills, {} repeats, {:?}",
        repeats.len(),
        started.elapsed()
    );
}

fn fs_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}
