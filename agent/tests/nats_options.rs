//! The NATS output's options end to end: a token in the URL, headers on
//! every message, the stream created by --nats-stream, standard input as the
//! input, and `spillway inspect` showing the last acknowledged sequence.
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use common::*;
use nats_support::*;

#[test]
fn stdin_with_a_token_and_headers_goes_into_a_created_stream() {
    let Some(bin) = server_or_skip("token, headers, stdin, inspect") else {
        return;
    };
    let s = Scratch::new("nats-options");
    let server = Server::start_with(&bin, &s.dir, "opts", &["--auth", "s3cret"]);
    let state = s.path("state");
    let output = format!("nats://s3cret@127.0.0.1:{}/opts.lines", server.port);
    let out = ship_stdin(
        &output,
        &state,
        &[
            "--nats-stream",
            "OPTS",
            "--nats-header",
            "X-Site=plant 4",
            "--nats-header",
            "X-Env=test",
        ],
        lines(1, 500),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(out.status), 0, "{err}");
    assert!(
        err.contains("created JetStream stream OPTS for subject opts.lines (1 replica)"),
        "{err}"
    );

    let client = Client::connect_token(&[server.url()], "s3cret");
    let got = client.read_all("OPTS");
    assert_exactly_once_in_order(&got, 500, line, Dedup::Sequence);
    // The user's headers on every message; the guard and the manifest on
    // the batch's first message only.
    let first = client.headers("OPTS", 1);
    let seventh = client.headers("OPTS", 7);
    for headers in [&first, &seventh] {
        for want in [("X-Site", "plant 4"), ("X-Env", "test")] {
            assert!(
                headers.iter().any(|(k, v)| k == want.0 && v == want.1),
                "{want:?} not in {headers:?}"
            );
        }
    }
    assert!(
        first
            .iter()
            .any(|(k, v)| k == "Nats-Expected-Last-Subject-Sequence" && v == "0"),
        "{first:?}"
    );
    assert!(first.iter().any(|(k, _)| k == "Spw-Batch"), "{first:?}");
    assert_eq!(seventh.len(), 2, "{seventh:?}");

    let shown = run(&["inspect", "--state", state.to_str().unwrap()]);
    let text = stdout(&shown);
    assert_eq!(code(shown.status), 0);
    assert!(text.contains("output NATS subject opts.lines"), "{text}");
    assert!(
        text.contains("last acknowledged stream sequence 500,"),
        "{text}"
    );
}
