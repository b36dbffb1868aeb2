//! Bad NATS settings are each one line on stderr and exit status 2, before
//! anything is shipped: a bad URL, an unknown host, a wrong password, a
//! subject that no stream takes, a --nats-stream that does not take it, a
//! bad --nats-dedup.
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use common::*;
use nats_support::*;

/// Runs `ship` to `output` with `extra` flags; checks exit 2, one line
/// holding every one of `want`, and that nothing was delivered.
fn refused(s: &Scratch, output: &str, extra: &[&str], want: &[&str]) {
    let input = s.path("in.log");
    if !input.exists() {
        generate(&input, 10);
    }
    let state = s.path("state");
    let _ = std::fs::remove_dir_all(&state);
    let out = ship(&input, output, &state, extra);
    let err = stderr(&out);
    assert_eq!(code(out.status), 2, "{output} {extra:?}: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    for w in want {
        assert!(err.contains(w), "{output} {extra:?}: {err:?} lacks {w:?}");
    }
}

#[test]
fn a_bad_url_or_an_unknown_host_is_one_line_and_exit_2() {
    let s = Scratch::new("nats-bad-url");
    refused(
        &s,
        "nats://127.0.0.1:99999/logs",
        &[],
        &["--output", "port must be 1-65535"],
    );
    refused(&s, "nats://127.0.0.1:4222", &[], &["no /SUBJECT"]);
    refused(&s, "nats://127.0.0.1:4222/logs.*", &[], &["wildcard"]);
    refused(
        &s,
        "nats://no-such-host.invalid:4222/logs",
        &[],
        &["no-such-host.invalid:4222", "unknown host"],
    );
    refused(
        &s,
        "nats://127.0.0.1:4222/logs",
        &["--nats-header", "oops"],
        &["--nats-header"],
    );
    refused(
        &s,
        "nats://127.0.0.1:4222/logs",
        &["--nats-replicas", "3"],
        &["--nats-stream"],
    );
    refused(
        &s,
        "nats://127.0.0.1:4222/logs",
        &["--nats-dedup", "ids"],
        &["invalid value \"ids\" for --nats-dedup: expected sequence or msg-id"],
    );
    let file_out = s.path("out.log");
    refused(
        &s,
        file_out.to_str().unwrap(),
        &["--nats-stream", "S"],
        &["--nats-stream applies to a nats://"],
    );
}

#[test]
fn a_wrong_password_or_a_subject_without_stream_is_one_line_and_exit_2() {
    let Some(bin) = server_or_skip("wrong password, no stream") else {
        return;
    };
    let s = Scratch::new("nats-bad-auth");
    let extra = ["--user", "spw", "--pass", "right"];
    let server = Server::start_with(&bin, &s.dir, "auth", &extra);
    let host = format!("127.0.0.1:{}", server.port);

    refused(
        &s,
        &format!("nats://spw:wrong@{host}/logs.app"),
        &[],
        &["refused the credentials"],
    );
    refused(
        &s,
        &format!("nats://{host}/logs.app"),
        &["--nats-user", "spw", "--nats-password", "wrong"],
        &["refused the credentials"],
    );
    // The right password, but no stream takes the subject.
    refused(
        &s,
        &format!("nats://spw:right@{host}/logs.app"),
        &[],
        &["no JetStream stream takes subject logs.app"],
    );
    // A stream that exists with other subjects is not changed.
    let client = Client::connect_as(&[format!("nats://{host}")], Some(("spw", "right")));
    client.create_stream("OTHER", "other.>", 1);
    refused(
        &s,
        &format!("nats://spw:right@{host}/logs.app"),
        &["--nats-stream", "OTHER"],
        &["stream OTHER exists", "do not take subject logs.app"],
    );
    refused(
        &s,
        &format!("nats://spw:right@{host}/other.app"),
        &["--nats-stream", "LOGS"],
        &["subject other.app is taken by stream OTHER"],
    );
    assert_eq!(client.count("OTHER"), Some(0));
}
