//! The server is stopped for several seconds mid-run, then started again:
//! the agent spools meanwhile and, once the server is back, delivers
//! everything, nothing lost and nothing stored twice.
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use nats_support::*;

const LINES: u64 = 200_000;

#[test]
fn a_server_stopped_mid_run_loses_and_duplicates_nothing() {
    outage(Dedup::Sequence);
}

#[test]
fn with_message_ids_a_server_stopped_mid_run_loses_and_duplicates_nothing() {
    outage(Dedup::MsgId);
}

fn outage(dedup: Dedup) {
    let _one_at_a_time = one_at_a_time();
    let Some(bin) = server_or_skip("server stopped mid-run") else {
        return;
    };
    let s = Scratch::new(&format!("nats-outage-{dedup:?}"));
    let mut server = Server::start(&bin, &s.dir, "outage", &[]);
    let client = Client::connect(&[server.url()]);
    client.create_stream("OUT", "outage.lines", 1);
    drop(client);
    let input = s.path("in.log");
    let state = s.path("state");
    let config = config_file(
        &s,
        "buffer.yaml",
        "max_retries: 1\nretry_backoff: 100ms\nretry_backoff_max: 500ms\n",
    );
    generate(&input, LINES);
    let output = format!("{}/outage.lines", server.url());
    let mut extra = vec![
        "--max-size",
        "1000",
        "--config",
        config.to_str().unwrap(),
        "--follow",
    ];
    extra.extend_from_slice(dedup.flags());
    let args = ship_args(input.to_str().unwrap(), &output, &state, &extra);
    let mut agent = spawn(&args, Stdio::null());

    let count = |url: &str| Client::connect(&[url.to_owned()]).count("OUT");
    let url = server.url();
    wait_until(
        "a quarter of the lines in the stream",
        Duration::from_secs(120),
        || count(&url).unwrap_or(0) >= LINES / 4,
    );
    server.stop();
    let stopped = Instant::now();
    // Failed batches go to the spool while the server is down.
    let spool = state.join("spool");
    wait_until("records spooled", Duration::from_secs(60), || {
        spool_bytes(&spool) > 0
    });
    // Down for several seconds in all.
    if let Some(rest) = Duration::from_secs(4).checked_sub(stopped.elapsed()) {
        std::thread::sleep(rest);
    }
    assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
    server.restart();

    let client = Client::connect(&[server.url()]);
    wait_until("every line in the stream", Duration::from_secs(180), || {
        client.count("OUT").unwrap_or(0) >= LINES
    });
    terminate(&agent);
    let status = wait_exit(&mut agent, Duration::from_secs(60));
    let mut err = String::new();
    if let Some(mut e) = agent.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(code(status), 0, "{err}");
    assert!(
        err.contains("output failed"),
        "the outage was not reported: {err}"
    );
    assert!(err.contains("output accepted a batch again"), "{err}");

    let got = client.read_all("OUT");
    assert_exactly_once_in_order(&got, LINES, line, dedup);
}

/// Bytes in the spool's segment files.
fn spool_bytes(dir: &std::path::Path) -> u64 {
    let Ok(parts) = std::fs::read_dir(dir) else {
        return 0;
    };
    parts
        .filter_map(Result::ok)
        .filter_map(|p| std::fs::read_dir(p.path()).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
