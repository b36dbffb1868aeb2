//! `tls://` to a nats-server that requires TLS, with a certificate that a
//! CA made in the test signed: `--nats-ca` with that CA delivers every line
//! once, in order; another CA, or an unreadable CA file, is one line on
//! stderr and exit 2, with nothing shipped.
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use common::*;
use nats_support::tls::TestPki;
use nats_support::*;

const LINES: u64 = 5_000;

#[test]
fn tls_with_the_servers_ca_delivers_every_line_once_and_another_ca_is_exit_2() {
    let Some(bin) = server_or_skip("TLS with --nats-ca") else {
        return;
    };
    let s = Scratch::new("nats-tls");
    let pki = TestPki::new(&s.dir);
    let server = Server::start(&bin, &s.dir, "tls", &pki.server_args());
    let input = s.path("in.log");
    generate(&input, LINES);
    let output = format!("tls://127.0.0.1:{}/tls.lines", server.port);
    let ca = pki.ca.to_str().unwrap();

    // A CA that did not sign the server's certificate: refused at start-up.
    let wrong = ship(
        &input,
        &output,
        &s.path("state-wrong"),
        &[
            "--nats-ca",
            pki.other_ca.to_str().unwrap(),
            "--nats-stream",
            "TLS",
        ],
    );
    let err = stderr(&wrong);
    assert_eq!(code(wrong.status), 2, "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains(&format!("TLS with NATS server 127.0.0.1:{}", server.port))
            && err.contains("UnknownIssuer"),
        "{err}"
    );

    // An unreadable CA file: refused before connecting.
    let missing = s.path("no-such-ca.pem");
    let unreadable = ship(
        &input,
        &output,
        &s.path("state-missing"),
        &["--nats-ca", missing.to_str().unwrap()],
    );
    let err = stderr(&unreadable);
    assert_eq!(code(unreadable.status), 2, "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("--nats-ca") && err.contains("no-such-ca.pem"),
        "{err}"
    );

    let client = Client::connect_tls(&[format!("tls://127.0.0.1:{}", server.port)], &pki.ca);
    assert_eq!(
        client.count("TLS"),
        None,
        "a refused run created the stream"
    );

    // The right CA: every line, once, in order, in several batches.
    let out = ship(
        &input,
        &output,
        &s.path("state"),
        &["--nats-ca", ca, "--nats-stream", "TLS", "--max-size", "700"],
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let got = client.read_all("TLS");
    assert_exactly_once_in_order(&got, LINES, line, Dedup::Sequence);
}
