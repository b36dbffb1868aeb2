//! Sequence mode (`--nats-dedup sequence`, the default): messages that
//! landed on the subject but never reached the agent's checkpoint are read
//! back at the next start, mapped through their segment's manifest to input
//! records, and not sent again, however long the restart took; a message
//! that no manifest maps (another publisher) is refused.
//!
//! "Landed but not checkpointed" is made deterministically: the test
//! publishes the agent's next segment itself, as a killed run would have
//! left it (the manifest in its first message, plain messages after it).
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use nats_support::*;

/// Byte offset of line `n` (1-based) in a generated input.
fn offset_of(n: u64) -> u64 {
    (1..n).map(|k| line(k).len() as u64 + 1).sum()
}

/// The `Spw-Batch` value of a segment of lines `from..=to` of `input`.
fn manifest(input: &Path, from: u64, to: u64) -> String {
    let m = std::fs::metadata(input).unwrap();
    format!(
        "1 {}.{}.0.{}.{}.{}",
        m.dev(),
        m.ino(),
        offset_of(from),
        to - from + 1,
        offset_of(to + 1)
    )
}

/// Publishes lines `from..=upto` as the first messages of a segment whose
/// manifest lists lines `from..=to`, as a run killed after they landed
/// would have left them.
fn publish_segment(client: &Client, subject: &str, input: &Path, from: u64, to: u64, upto: u64) {
    let m = manifest(input, from, to);
    for n in from..=upto {
        let headers: &[(&str, &str)] = if n == from { &[("Spw-Batch", &m)] } else { &[] };
        client.publish(subject, line(n).as_bytes(), headers);
    }
}

struct Setup {
    s: Scratch,
    server: Server,
    client: Client,
    input: std::path::PathBuf,
    output: String,
}

/// A server with stream `SEQ` on `seq.lines` (duplicate window 1 s), and an
/// input of lines `1..=first` that the agent shipped.
fn shipped(name: &str, first: u64) -> Option<Setup> {
    let bin = server_or_skip(name)?;
    let s = Scratch::new(name);
    let server = Server::start(&bin, &s.dir, "seq", &[]);
    let client = Client::connect(&[server.url()]);
    client.create_stream_with_window("SEQ", "seq.lines", Duration::from_secs(1));
    let input = s.path("in.log");
    generate(&input, first);
    let output = format!("{}/seq.lines", server.url());
    let out = ship(&input, &output, &s.path("state"), &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(client.count("SEQ"), Some(first));
    Some(Setup {
        s,
        server,
        client,
        input,
        output,
    })
}

/// Runs the agent again on the set-up's input; asserts that it exits 0
/// after reading back `landed` records that had landed unacknowledged, and
/// that the stream then holds lines 1..=`total` exactly once, in order.
fn ship_reading_back(t: &Setup, state: &Path, landed: u64, total: u64) {
    let out = ship(&t.input, &t.output, state, &[]);
    let err = stderr(&out);
    assert_eq!(code(out.status), 0, "{err}");
    assert!(
        err.contains(&format!("{landed} records of subject seq.lines had landed")),
        "{err}"
    );
    let got = t.client.read_all("SEQ");
    assert_exactly_once_in_order(&got, total, line, Dedup::Sequence);
}

/// The headers of stream message `seq`, after asserting that it carries the
/// guard `Nats-Expected-Last-Subject-Sequence: guard`.
fn guarded_headers(t: &Setup, seq: u64, guard: u64) -> Vec<(String, String)> {
    let headers = t.client.headers("SEQ", seq);
    let guard = guard.to_string();
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "Nats-Expected-Last-Subject-Sequence" && *v == guard),
        "{headers:?}"
    );
    headers
}

#[test]
fn a_batch_that_landed_unrecorded_is_not_sent_again_long_after_the_duplicate_window() {
    let Some(t) = shipped("nats-seq-window", 100) else {
        return;
    };
    append(&t.input, 101, 300);
    publish_segment(&t.client, "seq.lines", &t.input, 101, 200, 200);
    // The condition under test is time itself: past the stream's duplicate
    // window (1 s), Nats-Msg-Id would no longer drop a batch sent again.
    std::thread::sleep(Duration::from_millis(1500));

    ship_reading_back(&t, &t.s.path("state"), 100, 300);
    // The agent's next batch was guarded by the last message read back.
    let first = guarded_headers(&t, 201, 200);
    let m = std::fs::metadata(&t.input).unwrap();
    let want = format!(
        "1 {}.{}.0.{}.100.{}",
        m.dev(),
        m.ino(),
        offset_of(201),
        offset_of(301)
    );
    assert!(
        first.iter().any(|(k, v)| k == "Spw-Batch" && *v == want),
        "{first:?}, expected Spw-Batch {want}"
    );
    drop(t.server);
}

#[test]
fn a_batch_of_which_a_prefix_landed_is_completed_without_duplicates() {
    let Some(t) = shipped("nats-seq-prefix", 100) else {
        return;
    };
    append(&t.input, 101, 300);
    // 50 of a segment of 200 landed.
    publish_segment(&t.client, "seq.lines", &t.input, 101, 300, 150);

    ship_reading_back(&t, &t.s.path("state"), 50, 300);
    guarded_headers(&t, 151, 150);
}

#[test]
fn a_message_of_a_segment_that_lands_late_is_mapped_through_its_manifest() {
    let Some(t) = shipped("nats-seq-late", 100) else {
        return;
    };
    let state = t.s.path("state");
    // 50 of a segment of 100 landed, and the input holds only those: the
    // next run reads them back and ends, its checkpoint inside the segment.
    append(&t.input, 101, 150);
    publish_segment(&t.client, "seq.lines", &t.input, 101, 200, 150);
    let out = ship(&t.input, &t.output, &state, &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(t.client.count("SEQ"), Some(150));

    // Then one more message of that segment lands (one the server still
    // held from the killed run's connection), with no header of its own.
    append(&t.input, 151, 250);
    t.client.publish("seq.lines", line(151).as_bytes(), &[]);
    ship_reading_back(&t, &state, 1, 250);
}

#[test]
fn another_publisher_on_the_subject_is_a_one_line_error_at_start_up() {
    let Some(t) = shipped("nats-seq-foreign", 10) else {
        return;
    };
    append(&t.input, 11, 20);
    let seq = t.client.publish("seq.lines", b"not from the agent", &[]);
    assert_eq!(seq, 11);

    let out = ship(&t.input, &t.output, &t.s.path("state"), &[]);
    let err = stderr(&out);
    assert_eq!(code(out.status), 2, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "subject seq.lines holds message 11 (stream SEQ) after sequence 10, the last one \
             this agent accounts for, and it has no Spw-Batch header: with --nats-dedup \
             sequence the agent must be the only publisher on its subject"
        ),
        "{err}"
    );
    assert_eq!(t.client.count("SEQ"), Some(11), "nothing was published");
}

#[test]
fn another_publisher_while_running_fails_the_batch_with_the_same_message() {
    let Some(t) = shipped("nats-seq-foreign-live", 10) else {
        return;
    };
    let config = config_file(
        &t.s,
        "buffer.yaml",
        "max_retries: 1\nretry_backoff: 50ms\nretry_backoff_max: 100ms\n",
    );
    let args = ship_args(
        t.input.to_str().unwrap(),
        &t.output,
        &t.s.path("state"),
        &["--follow", "--config", config.to_str().unwrap()],
    );
    let mut agent = spawn(&args, std::process::Stdio::null());
    // Every line of the agent's stderr, as it comes.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err = agent.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    // Once the agent delivered lines of its own, its start-up read-back
    // is over: the intruder comes after it.
    append(&t.input, 11, 15);
    wait_until("lines 11-15 in the stream", Duration::from_secs(60), || {
        t.client.count("SEQ") == Some(15)
    });
    let mut seen = Vec::new();
    let foreign = t.client.publish("seq.lines", b"not from the agent", &[]);
    assert_eq!(foreign, 16);
    append(&t.input, 16, 20);
    let want = "output failed: subject seq.lines holds message 16 (stream SEQ) after sequence 15";
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no '{want}' on stderr ({e}): {seen:?}"));
        let found = l.contains(want);
        seen.push(l);
        if found {
            break;
        }
    }
    terminate(&agent);
    let status = wait_exit(&mut agent, Duration::from_secs(60));
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    assert_eq!(code(status), 1, "{seen:?}");
    // The guard refused the batch before the read-back found the intruder.
    assert!(
        seen.iter()
            .any(|l| l.contains("subject seq.lines no longer ends at sequence 15")),
        "{seen:?}"
    );
    assert_eq!(
        t.client.count("SEQ"),
        Some(16),
        "nothing more was published"
    );
}

/// The stream in [`a_record_the_stream_refuses_is_kept_and_the_messages_stored_after_it_are_removed`]
/// takes messages of at most this many bytes (headers and payload).
const MAX_MSG: i32 = 1024;
/// The line the stream refuses.
const TOO_BIG: u64 = 10;

/// Line `n` of that test's input: [`line`], but line [`TOO_BIG`] is longer
/// than [`MAX_MSG`].
fn refusable(n: u64) -> String {
    if n == TOO_BIG {
        format!("{n:010} {}", "x".repeat(2 * MAX_MSG as usize))
    } else {
        line(n)
    }
}

#[test]
fn a_record_the_stream_refuses_is_kept_and_the_messages_stored_after_it_are_removed() {
    let name = "nats-seq-refused";
    let Some(bin) = server_or_skip(name) else {
        return;
    };
    let s = Scratch::new(name);
    // No authorization: the agent's user may do anything, including
    // `$JS.API.STREAM.MSG.DELETE.SEQ`, which removing the messages stored
    // after the refused one needs.
    let server = Server::start(&bin, &s.dir, "seq", &[]);
    let client = Client::connect(&[server.url()]);
    client.create_stream_with_max_msg_size("SEQ", "seq.lines", MAX_MSG);
    let input = s.path("in.log");
    let text: String = (1..=20).map(|n| refusable(n) + "\n").collect();
    std::fs::write(&input, &text).unwrap();
    let output = format!("{}/seq.lines", server.url());
    let state = s.path("state");
    let config = config_file(
        &s,
        "buffer.yaml",
        "max_retries: 1\nretry_backoff: 50ms\nretry_backoff_max: 100ms\n",
    );
    let args = ["--config", config.to_str().unwrap()];

    // The 20 lines are one batch, one segment: line 1 goes alone with the
    // guard and the manifest, lines 2-20 follow pipelined. The stream
    // refuses line 10 and stores lines 11-20 (sequences 10-19), which the
    // manifest would map to the wrong records: the agent removes them.
    let out = ship(&input, &output, &state, &args);
    let err = stderr(&out);
    // A record the stream can never take is not dropped: the batch fails,
    // is retried, and the run ends with exit 1, the record and everything
    // after it left after the checkpoint for the next run.
    assert_eq!(code(out.status), 1, "{err}");
    assert!(
        err.contains(
            "output failed: NATS did not store a record: publish failed: message size exceeds \
             maximum allowed (code 400, error code 10054)"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "10 later messages of the batch that the stream had stored were removed (they are \
             sent again after it), the 9 before it count as delivered"
        ),
        "{err}"
    );
    // The retry sent line 10 again, first of a segment and alone: refused
    // again, and nothing stored after it. Then the batch goes to the spool
    // whole (the sink skips lines 1-9 in it as delivered), and the run
    // ends: the output is down.
    assert!(
        err.contains(
            "output failed: NATS did not store a record: publish failed: message size exceeds \
             maximum allowed (code 400, error code 10054)\n"
        ),
        "{err}"
    );
    assert!(err.contains(" 0 dropped, 20 still spooled"), "{err}");
    // Lines 11-20 were stored (the stream's last sequence is 19) and
    // removed: the subject holds exactly the prefix before line 10, once
    // (before the fix, every retry stored lines 1-9 again: nats-server
    // 2.9.10 finds no last message on a subject whose last messages were
    // deleted, so the read-back found nothing and the guard `0` passed).
    assert_eq!(client.stream_state("SEQ"), (9, 19, 10));
    let got = client.read_all("SEQ");
    assert_exactly_once_in_order(&got, 9, refusable, Dedup::Sequence);
    let offset = |n: u64| -> u64 { (1..n).map(|k| refusable(k).len() as u64 + 1).sum() };
    let shown = inspect(&state);
    assert!(
        shown.contains(&format!("    offset {} (", offset(TOO_BIG))),
        "the checkpoint stands just before line {TOO_BIG}:\n{shown}"
    );

    // Nothing was lost: once the stream takes the record, the next run
    // ships it and the rest, each once, in order.
    client.set_max_msg_size("SEQ", 4 * MAX_MSG);
    let out = ship(&input, &output, &state, &args);
    let err = stderr(&out);
    assert_eq!(code(out.status), 0, "{err}");
    let got = client.read_all("SEQ");
    assert_exactly_once_in_order(&got, 20, refusable, Dedup::Sequence);
    drop(server);
}

#[test]
fn messages_stored_after_a_refused_one_that_cannot_be_removed_stop_the_agent() {
    let name = "nats-seq-refused-no-delete";
    let Some(bin) = server_or_skip(name) else {
        return;
    };
    let s = Scratch::new(name);
    // The agent's user may not delete messages: what the stream stored
    // after the refused line stays, and must not be mapped to the lines
    // after it (line 11 read back as line 10 would move the checkpoint into
    // the middle of line 10).
    let conf = config_file(
        &s,
        "server.conf",
        "authorization {\n  users = [\n    {user: admin, password: admin}\n    \
         {user: agent, password: agent, permissions: {publish: {deny: \
         [\"$JS.API.STREAM.MSG.DELETE.>\"]}}}\n  ]\n}\n",
    );
    let server = Server::start_with(&bin, &s.dir, "seq", &["-c", conf.to_str().unwrap()]);
    let client = Client::connect_as(&[server.url()], Some(("admin", "admin")));
    client.create_stream_with_max_msg_size("SEQ", "seq.lines", MAX_MSG);
    let input = s.path("in.log");
    let text: String = (1..=20).map(|n| refusable(n) + "\n").collect();
    std::fs::write(&input, &text).unwrap();
    let output = format!("nats://agent:agent@127.0.0.1:{}/seq.lines", server.port);
    let state = s.path("state");
    let config = config_file(
        &s,
        "buffer.yaml",
        "max_retries: 1\nretry_backoff: 50ms\nretry_backoff_max: 100ms\n",
    );
    // One run while the messages cannot be removed: it exits 1, says they
    // are still there, reads nothing back, and leaves the stream as it is.
    let run_blocked = || -> String {
        let out = ship(
            &input,
            &output,
            &state,
            &["--config", config.to_str().unwrap()],
        );
        let err = stderr(&out);
        assert_eq!(code(out.status), 1, "{err}");
        assert!(
            err.contains(
                "10 messages that stream SEQ stored on subject seq.lines after one it refused \
                 are still there ("
            ),
            "{err}"
        );
        assert!(err.contains("before it reads the subject back\n"), "{err}");
        assert!(!err.contains("had landed"), "{err}");
        assert_eq!(client.stream_state("SEQ"), (19, 19, 0));
        err
    };
    let err = run_blocked();
    assert!(
        err.contains(
            "10 later messages of the batch that the stream stored after it could not be \
             removed ("
        ),
        "{err}"
    );
    // The retry does not read the subject back while they are there.
    assert!(
        err.contains(
            "output failed: 10 messages that stream SEQ stored on subject seq.lines after one \
             it refused are still there ("
        ),
        "{err}"
    );
    assert!(err.contains("($JS.API.STREAM.MSG.DELETE.SEQ)"), "{err}");
    // Each removal waits for an answer the server never sends (it refuses
    // the request with a permissions error): spooled or left after the
    // checkpoint depends on how long that took, dropped never.
    assert!(err.contains(" 0 dropped, "), "{err}");
    // Nothing counts as delivered: every line is left for the next run.
    let shown = inspect(&state);
    assert!(shown.contains("    offset 0 ("), "{shown}");
    // The checkpoint remembers them: after the 9 lines acknowledged before
    // the refused one, sequences 10-19.
    let checkpoint = state.join("checkpoint.yaml");
    let recorded = std::fs::read_to_string(&checkpoint).unwrap();
    assert!(recorded.contains("strays: 9:10-19\n"), "{recorded}");

    // A restart while they are still there does not read them back (line
    // 11 would count as line 10): the start-up read-back is blocked with the
    // same message, and nothing is sent or recorded.
    run_blocked();
    // The same positions and fields; only the times of the writes differ.
    let untimed = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                !["update_time:", "timestamp:", "# crc32c:"]
                    .iter()
                    .any(|t| l.trim_start().starts_with(t))
            })
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        untimed(&std::fs::read_to_string(&checkpoint).unwrap()),
        untimed(&recorded)
    );

    // The server comes back (same store) with a configuration that lets
    // the agent delete them, and takes the long line: the next run removes
    // them, reads back the 9 lines before the refused one, and ships the
    // rest, each line once, in order.
    let port = server.port;
    let mut server = server;
    server.stop();
    let allow = config_file(
        &s,
        "server-allow.conf",
        "authorization {\n  users = [\n    {user: admin, password: admin}\n    \
         {user: agent, password: agent}\n  ]\n}\n",
    );
    let server = Server::start_on(
        &bin,
        &s.dir,
        "seq",
        port,
        &["-c".to_owned(), allow.to_str().unwrap().to_owned()],
    );
    let client = Client::connect_as(&[server.url()], Some(("admin", "admin")));
    client.set_max_msg_size("SEQ", 4 * MAX_MSG);
    let out = ship(
        &input,
        &output,
        &state,
        &["--config", config.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(code(out.status), 0, "{err}");
    assert!(
        err.contains(
            "9 records of subject seq.lines had landed in the stream without being acknowledged"
        ),
        "{err}"
    );
    let got = client.read_all("SEQ");
    assert_exactly_once_in_order(&got, 20, refusable, Dedup::Sequence);
    let recorded = std::fs::read_to_string(&checkpoint).unwrap();
    assert!(
        recorded.contains("strays: ''\n"),
        "cleared once removed:\n{recorded}"
    );
    drop(server);
}
