//! 1M lines to one JetStream node, the agent SIGKILLed 20 times at seeded
//! random moments and restarted with the same state: the stream holds each
//! line exactly once, in order. In sequence mode the next run reads back
//! what a killed run had sent past its checkpoint; in msg-id mode the
//! duplicate window removes it.
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use std::time::{Duration, Instant};

use common::*;
use nats_support::*;

const LINES: u64 = 1_000_000;
const KILLS: usize = 20;

#[test]
fn killed_20_times_the_agent_puts_every_line_in_the_stream_exactly_once_in_order() {
    kill_loop(Dedup::Sequence);
}

#[test]
fn killed_20_times_with_message_ids_every_line_is_in_the_stream_exactly_once_in_order() {
    kill_loop(Dedup::MsgId);
}

fn kill_loop(dedup: Dedup) {
    let _one_at_a_time = one_at_a_time();
    let Some(bin) = server_or_skip("1M lines, 20 SIGKILLs") else {
        return;
    };
    let s = Scratch::new(&format!("nats-kill-{dedup:?}"));
    let server = Server::start(&bin, &s.dir, "single", &[]);
    let client = Client::connect(&[server.url()]);
    client.create_stream("KILL", "kill.lines", 1);
    let input = s.path("in.log");
    let state = s.path("state");
    generate(&input, LINES);
    let output = format!("{}/kill.lines", server.url());
    let mut extra = vec!["--max-size", "2000"];
    extra.extend_from_slice(dedup.flags());
    let args = ship_args(input.to_str().unwrap(), &output, &state, &extra);

    // Most kills land once the stream has grown past a random mark, some a
    // few milliseconds after start-up began.
    let started = Instant::now();
    KillLoop {
        kills: KILLS,
        seed: 0x4A75_2026,
        step: LINES / (KILLS as u64 * 2),
        early_kills: true,
        jitter_us: 0,
        poll: Duration::from_millis(2),
        timeout: Duration::from_secs(60),
    }
    .run(&args, || client.count("KILL").unwrap_or(0));
    run_to_end(&args, Duration::from_secs(300));

    let got = client.read_all("KILL");
    assert_exactly_once_in_order(&got, LINES, line, dedup);
    eprintln!(
        "{dedup:?}: {KILLS} kills, {LINES} lines, {:?}",
        started.elapsed()
    );
}
