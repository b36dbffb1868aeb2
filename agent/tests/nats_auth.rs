//! Each way the NATS output authenticates, against a nats-server that
//! requires it: a credentials file (operator mode, JWTs made in the test),
//! `--nats-user`/`--nats-password`, `USER:PASSWORD@` in the URL,
//! `--nats-token` and `TOKEN@` in the URL. The right secret delivers every
//! line once, in order; a wrong one is one line on stderr and exit 2, with
//! nothing shipped.
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use common::*;
use nats_support::jwt::JwtAuth;
use nats_support::*;

const LINES: u64 = 2_000;

/// Ships the scratch input to `output` with `extra` flags into a stream of
/// its own, `stream`, from a fresh state directory.
fn ship_into(s: &Scratch, output: &str, stream: &str, extra: &[&str]) -> std::process::Output {
    let input = s.path("in.log");
    if !input.exists() {
        generate(&input, LINES);
    }
    let state = s.path(&format!("state-{stream}"));
    let mut args = vec!["--nats-stream", stream, "--max-size", "300"];
    args.extend_from_slice(extra);
    ship(&input, output, &state, &args)
}

/// Checks a run that must have been refused: exit 2, one line holding
/// every one of `want`.
fn assert_refused(out: &std::process::Output, want: &[&str]) {
    let err = stderr(out);
    assert_eq!(code(out.status), 2, "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    for w in want {
        assert!(err.contains(w), "{err:?} lacks {w:?}");
    }
}

/// Checks a run that must have delivered: exit 0, and `stream` holds every
/// line once, in order.
fn assert_delivered(out: &std::process::Output, client: &Client, stream: &str) {
    assert_eq!(code(out.status), 0, "{stream}: {}", stderr(out));
    let got = client.read_all(stream);
    assert_exactly_once_in_order(&got, LINES, line, Dedup::Sequence);
}

#[test]
fn a_credentials_file_delivers_and_a_wrong_one_is_exit_2() {
    let Some(bin) = server_or_skip("--nats-creds, operator mode") else {
        return;
    };
    let s = Scratch::new("nats-creds");
    let auth = JwtAuth::new(&s.dir);
    let server = Server::start(&bin, &s.dir, "operator", &auth.server_args());
    let host = format!("127.0.0.1:{}", server.port);
    let output = format!("nats://{host}/creds.lines");
    let refused_with = |creds: &std::path::Path, stream: &str| {
        ship_into(
            &s,
            &output,
            stream,
            &["--nats-creds", creds.to_str().unwrap()],
        )
    };

    // The device's JWT with another key's seed: the nonce's signature fails.
    assert_refused(
        &refused_with(&auth.wrong_seed, "WRONG_SEED"),
        &[&format!("NATS server {host} refused the credentials")],
    );
    // A user of an account the server does not know.
    assert_refused(
        &refused_with(&auth.unknown_account, "STRAY"),
        &[&format!("NATS server {host} refused the credentials")],
    );
    // A file that is not there.
    let missing = s.path("missing.creds");
    assert_refused(
        &refused_with(&missing, "MISSING"),
        &["--nats-creds", "missing.creds", "cannot be read"],
    );
    // A file that holds no credentials.
    let junk = s.path("junk.creds");
    std::fs::write(&junk, "not a creds file\n").unwrap();
    assert_refused(
        &refused_with(&junk, "JUNK"),
        &["--nats-creds", "junk.creds", "cannot be used"],
    );

    let out = ship_into(
        &s,
        &output,
        "CREDS",
        &["--nats-creds", auth.creds.to_str().unwrap()],
    );
    let client = Client::connect_creds(&[server.url()], &auth.creds);
    assert_delivered(&out, &client, "CREDS");
    for refused in ["WRONG_SEED", "STRAY", "MISSING", "JUNK"] {
        assert_eq!(client.count(refused), None, "{refused} was created");
    }
}

#[test]
fn a_user_and_password_by_flags_or_in_the_url_deliver_and_a_wrong_one_is_exit_2() {
    let Some(bin) = server_or_skip("--nats-user/--nats-password, URL userinfo") else {
        return;
    };
    let s = Scratch::new("nats-password");
    let extra = ["--user", "device", "--pass", "p@ss:w0rd"];
    let server = Server::start_with(&bin, &s.dir, "password", &extra);
    let host = format!("127.0.0.1:{}", server.port);
    let refused = format!("NATS server {host} refused the credentials");
    let client = Client::connect_as(&[server.url()], Some(("device", "p@ss:w0rd")));

    let flags = format!("nats://{host}/pw.flags");
    assert_refused(
        &ship_into(
            &s,
            &flags,
            "PW_WRONG",
            &["--nats-user", "device", "--nats-password", "p@ss:w0rd!"],
        ),
        &[&refused],
    );
    assert_refused(
        &ship_into(&s, &flags, "PW_NONE", &["--nats-user", "device"]),
        &[&refused],
    );
    let out = ship_into(
        &s,
        &flags,
        "PW_FLAGS",
        &["--nats-user", "device", "--nats-password", "p@ss:w0rd"],
    );
    assert_delivered(&out, &client, "PW_FLAGS");

    // The password percent-encoded in the URL (`@` and `:` are the URL's).
    let wrong_url = format!("nats://device:p%40ss%3Aw0rd!@{host}/pw.url");
    assert_refused(&ship_into(&s, &wrong_url, "PW_URL_WRONG", &[]), &[&refused]);
    let err = stderr(&ship_into(&s, &wrong_url, "PW_URL_WRONG", &[]));
    assert!(!err.contains("w0rd"), "the password is shown: {err}");
    let url = format!("nats://device:p%40ss%3Aw0rd@{host}/pw.url");
    let out = ship_into(&s, &url, "PW_URL", &[]);
    assert_delivered(&out, &client, "PW_URL");

    for name in ["PW_WRONG", "PW_NONE", "PW_URL_WRONG"] {
        assert_eq!(client.count(name), None, "{name} was created");
    }
}

#[test]
fn a_token_by_flag_or_in_the_url_delivers_and_a_wrong_one_is_exit_2() {
    let Some(bin) = server_or_skip("--nats-token, URL token") else {
        return;
    };
    let s = Scratch::new("nats-token");
    let server = Server::start_with(&bin, &s.dir, "token", &["--auth", "t0ken-4-devices"]);
    let host = format!("127.0.0.1:{}", server.port);
    let refused = format!("NATS server {host} refused the credentials");
    let client = Client::connect_token(&[server.url()], "t0ken-4-devices");

    let flag = format!("nats://{host}/tok.flag");
    assert_refused(
        &ship_into(&s, &flag, "TOK_WRONG", &["--nats-token", "t0ken-4-device"]),
        &[&refused],
    );
    assert_refused(&ship_into(&s, &flag, "TOK_NONE", &[]), &[&refused]);
    let out = ship_into(&s, &flag, "TOK_FLAG", &["--nats-token", "t0ken-4-devices"]);
    assert_delivered(&out, &client, "TOK_FLAG");

    let wrong_url = format!("nats://t0ken-4-device@{host}/tok.url");
    let out = ship_into(&s, &wrong_url, "TOK_URL_WRONG", &[]);
    assert_refused(&out, &[&refused]);
    assert!(
        !stderr(&out).contains("t0ken"),
        "the token is shown: {}",
        stderr(&out)
    );
    let url = format!("nats://t0ken-4-devices@{host}/tok.url");
    let out = ship_into(&s, &url, "TOK_URL", &[]);
    assert_delivered(&out, &client, "TOK_URL");

    for name in ["TOK_WRONG", "TOK_NONE", "TOK_URL_WRONG"] {
        assert_eq!(client.count(name), None, "{name} was created");
    }
}
