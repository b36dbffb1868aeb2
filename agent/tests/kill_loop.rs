//! SIGKILL at seeded random moments, restart with the same state: every
//! line arrives exactly once, in order (the output is a file).

mod common;

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
    let args = ship_args(
        input.to_str().unwrap(),
        output.to_str().unwrap(),
        &state,
        &["--max-size", &max_size],
    );

    // Most kills once the output has grown past a random mark, some a few
    // milliseconds after start-up began.
    let started = Instant::now();
    KillLoop {
        kills: KILLS,
        seed: 0x5EED_2024,
        step: file_len(&input) / (KILLS as u64 * 2),
        early_kills: true,
        jitter_us: 0,
        poll: Duration::from_micros(500),
        timeout: Duration::from_secs(60),
    }
    .run(&args, || file_len(&output));
    run_to_end(&args, Duration::from_secs(120));

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
