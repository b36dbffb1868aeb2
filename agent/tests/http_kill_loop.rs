//! SIGKILL at seeded random moments while shipping to an HTTP server in the
//! test, restart with the same state: every line arrives (at least once), in
//! order once repeats are removed, and every repeat is a whole batch that
//! the server had accepted, at most one per kill.
#![cfg(feature = "http")]

mod common;
mod http_server;

use std::time::{Duration, Instant};

use common::*;
use http_server::{Reply, Server};

const LINES: u64 = 200_000;
const BATCH: u64 = 1_000;
const KILLS: usize = 10;

#[test]
fn killed_at_random_moments_every_line_arrives_and_repeats_are_whole_batches() {
    let s = Scratch::new("http-kill");
    let input = s.path("in.log");
    let state = s.path("state");
    generate(&input, LINES);
    let server = Server::start(Box::new(|_, _| Reply::ok()));
    let url = server.url("/ingest");
    let max_size = BATCH.to_string();
    let args = ship_args(
        input.to_str().unwrap(),
        &url,
        &state,
        &["--max-size", &max_size],
    );

    // Most kills once the server has taken a random number of batches more,
    // some a few milliseconds after start-up began.
    let started = Instant::now();
    KillLoop {
        kills: KILLS,
        seed: 0x4854_5450,
        step: LINES / BATCH / (KILLS as u64 * 2),
        early_kills: true,
        jitter_us: 0,
        poll: Duration::from_millis(10),
        timeout: Duration::from_secs(60),
    }
    .run(&args, || server.count() as u64);
    run_to_end(&args, Duration::from_secs(120));

    let reqs = server.requests();
    assert!(reqs.iter().all(|r| r.status == 200));
    // Each request's line numbers.
    let batches: Vec<Vec<u64>> = reqs
        .iter()
        .map(|r| {
            String::from_utf8(r.body.clone())
                .unwrap()
                .lines()
                .map(|l| {
                    let n: u64 = l[..10].parse().unwrap();
                    assert_eq!(l, line(n), "line {n} was changed");
                    n
                })
                .collect()
        })
        .collect();
    let got: Vec<u64> = batches.iter().flatten().copied().collect();
    check_in_order_with_repeats(&got, LINES);

    // A line is repeated when a later request carries it again; within one
    // request, either all of its lines are repeated or none is.
    let mut last = vec![usize::MAX; LINES as usize + 1];
    for (i, b) in batches.iter().enumerate() {
        for &n in b {
            last[n as usize] = i;
        }
    }
    let mut repeated_batches = 0;
    for (i, b) in batches.iter().enumerate() {
        let again = b.iter().filter(|&&n| last[n as usize] > i).count();
        assert!(
            again == 0 || again == b.len(),
            "request {i}: {again} of its {} lines came again: a part of a batch was repeated",
            b.len()
        );
        if again > 0 {
            repeated_batches += 1;
        }
    }
    assert!(
        repeated_batches <= KILLS,
        "{repeated_batches} batches repeated for {KILLS} kills"
    );
    eprintln!(
        "{KILLS} kills, {} requests, {repeated_batches} repeated batches, {:?}",
        reqs.len(),
        started.elapsed()
    );
}
