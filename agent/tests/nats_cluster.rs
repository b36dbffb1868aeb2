//! A three-node JetStream cluster, a stream with 3 replicas: the node that
//! leads the stream is killed mid-run; shipping carries on through the
//! other two, and the stream ends with every record once, in order.
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use nats_support::*;

const LINES: u64 = 100_000;

#[test]
fn the_stream_leader_killed_mid_run_loses_and_duplicates_nothing() {
    leader_killed(Dedup::Sequence);
}

#[test]
fn with_message_ids_the_stream_leader_killed_mid_run_loses_and_duplicates_nothing() {
    leader_killed(Dedup::MsgId);
}

fn leader_killed(dedup: Dedup) {
    let _one_at_a_time = one_at_a_time();
    let Some(bin) = server_or_skip("3-node cluster, leader killed") else {
        return;
    };
    let s = Scratch::new(&format!("nats-cluster-{dedup:?}"));
    let mut nodes = cluster(&bin, &s.dir);
    let urls: Vec<String> = nodes.iter().map(Server::url).collect();
    let client = Client::connect(&urls);
    // The agent creates the stream (3 replicas) once the cluster is ready;
    // the test's client waits for that readiness first.
    client.create_stream("READY", "ready", 3);
    let input = s.path("in.log");
    let state = s.path("state");
    let config = config_file(
        &s,
        "buffer.yaml",
        "max_retries: 1000\nretry_backoff: 200ms\nretry_backoff_max: 1s\n",
    );
    generate(&input, LINES);
    let hosts: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let output = format!("nats://{}/cluster.lines", hosts.join(","));
    let mut extra = vec![
        "--max-size",
        "2000",
        "--config",
        config.to_str().unwrap(),
        "--nats-stream",
        "CLUSTER",
        "--nats-replicas",
        "3",
        "--follow",
    ];
    extra.extend_from_slice(dedup.flags());
    let args = ship_args(input.to_str().unwrap(), &output, &state, &extra);
    let mut agent = spawn(&args, Stdio::null());

    wait_until(
        "a third of the lines in the stream",
        Duration::from_secs(120),
        || client.count("CLUSTER").unwrap_or(0) >= LINES / 3,
    );
    let mut leader = None;
    wait_until("the stream's leader", Duration::from_secs(30), || {
        leader = client.leader("CLUSTER");
        leader.is_some()
    });
    let leader = leader.unwrap();
    let node = nodes
        .iter_mut()
        .find(|n| n.name == leader)
        .unwrap_or_else(|| panic!("no node is named {leader}"));
    node.kill();
    assert!(agent.try_wait().unwrap().is_none(), "the agent exited");

    let survivors: Vec<String> = nodes
        .iter()
        .filter(|n| n.name != leader)
        .map(Server::url)
        .collect();
    let client = Client::connect(&survivors);
    wait_until("every line in the stream", Duration::from_secs(180), || {
        client.count("CLUSTER").unwrap_or(0) >= LINES
    });
    let new_leader = client.leader("CLUSTER").unwrap();
    assert_ne!(new_leader, leader);
    terminate(&agent);
    let status = wait_exit(&mut agent, Duration::from_secs(60));
    assert_eq!(code(status), 0);

    let got = client.read_all("CLUSTER");
    assert_exactly_once_in_order(&got, LINES, line, dedup);
}
