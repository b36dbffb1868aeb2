//! 1M lines to one JetStream node, the agent SIGKILLed 20 times at seeded
//! random moments and restarted with the same state: the stream holds each
//! line exactly once, in order (the duplicate window removes what a killed
//! run had sent past its checkpoint).
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use nats_support::*;

const LINES: u64 = 1_000_000;
const KILLS: usize = 20;

#[test]
fn killed_20_times_the_agent_puts_every_line_in_the_stream_exactly_once_in_order() {
    let Some(bin) = server_or_skip("1M lines, 20 SIGKILLs") else {
        return;
    };
    let s = Scratch::new("nats-kill");
    let server = Server::start(&bin, &s.dir, "single", &[]);
    let client = Client::connect(&[server.url()]);
    client.create_stream("KILL", "kill.lines", 1);
    let input = s.path("in.log");
    let state = s.path("state");
    generate(&input, LINES);
    let output = format!("{}/kill.lines", server.url());
    let args = [
        "ship",
        "--input",
        input.to_str().unwrap(),
        "--output",
        &output,
        "--state",
        state.to_str().unwrap(),
        "--max-size",
        "2000",
    ];

    // Most kills land once the stream has grown past a random mark (so they
    // spread over the input whatever the machine's speed), some a few
    // milliseconds after start-up began.
    let mut rng = Rng::new(0x4A75_2026);
    let started = Instant::now();
    let step = LINES / (KILLS as u64 * 2);
    for kill in 0..KILLS {
        let mut child = spawn(&args, Stdio::null());
        if kill % 4 == 3 {
            std::thread::sleep(Duration::from_millis(rng.between(0, 6)));
        } else {
            let mark = client.count("KILL").unwrap_or(0) + rng.between(1, step);
            let deadline = Instant::now() + Duration::from_secs(60);
            while client.count("KILL").unwrap_or(0) < mark {
                assert!(Instant::now() < deadline, "no progress in 60 s");
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the agent exited before kill {kill}"
                );
                std::thread::sleep(Duration::from_millis(2));
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
    let status = wait_exit(&mut child, Duration::from_secs(300));
    assert_eq!(code(status), 0);

    let got = client.read_all("KILL");
    assert_exactly_once_in_order(&got, LINES, line);
    eprintln!("{KILLS} kills, {LINES} lines, {:?}", started.elapsed());
}
