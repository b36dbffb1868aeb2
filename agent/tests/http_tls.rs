//! `https://` against a rustls server in the test, on 127.0.0.1, whose
//! certificate a test CA signed (tests/http_tls/gen.sh makes them): the
//! agent trusts the system's CA certificates (here SSL_CERT_FILE), or only
//! those of --http-ca, and refuses a server that neither vouches for.
#![cfg(feature = "http")]

mod common;
mod http_server;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::*;
use http_server::{Reply, Server};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/http_tls")
        .join(name)
}

fn tls_server() -> Server {
    Server::start_tls(
        Box::new(|_, _| Reply::ok()),
        &fixture("server.pem"),
        &fixture("server.key"),
    )
}

/// `spillway ship` with the system's CA certificates taken from `system_ca`.
fn ship_tls(s: &Scratch, url: &str, system_ca: &PathBuf, extra: &[&str]) -> Output {
    let cfg = s.path("agent.yaml");
    std::fs::write(
        &cfg,
        "max_retries: 1\nretry_backoff: 10ms\nretry_backoff_max: 50ms\nflush_interval: 50ms\n",
    )
    .unwrap();
    let input = s.path("in.log");
    if !input.exists() {
        generate(&input, 2000);
    }
    Command::new(bin())
        .args(["ship", "--input", input.to_str().unwrap(), "--output", url])
        .args(["--state", s.path("state").to_str().unwrap()])
        .args(["--config", cfg.to_str().unwrap(), "--max-size", "500"])
        .args(extra)
        .env("SSL_CERT_FILE", system_ca)
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn delivered(server: &Server) -> Vec<u64> {
    server
        .requests()
        .iter()
        .flat_map(|r| {
            String::from_utf8(r.body.clone())
                .unwrap()
                .lines()
                .map(|l| l[..10].parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn https_is_verified_against_the_systems_ca_certificates() {
    let s = Scratch::new("https-system");
    let server = tls_server();
    let url = format!("https://{}/in", server.addr());
    let out = ship_tls(&s, &url, &fixture("ca.pem"), &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(delivered(&server), (1..=2000).collect::<Vec<_>>());
}

#[test]
fn http_ca_replaces_the_systems_certificates() {
    let s = Scratch::new("https-ca");
    let server = tls_server();
    let url = format!("https://{}/in", server.addr());
    // The "system" trusts only an unrelated certificate; --http-ca the CA.
    let ca = fixture("ca.pem");
    let out = ship_tls(
        &s,
        &url,
        &fixture("server.pem"),
        &["--http-ca", ca.to_str().unwrap()],
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(delivered(&server), (1..=2000).collect::<Vec<_>>());
}

#[test]
fn a_server_no_trusted_ca_signed_is_refused_and_nothing_is_sent() {
    let s = Scratch::new("https-untrusted");
    let server = tls_server();
    let url = format!("https://{}/in", server.addr());
    // The server's own certificate is not a CA: it vouches for nothing.
    let leaf = fixture("server.pem");
    let out = ship_tls(
        &s,
        &url,
        &fixture("ca.pem"),
        &["--http-ca", leaf.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(code(out.status), 1, "{err}");
    assert!(
        err.contains(&format!("output failed: POST {url}: ")),
        "{err}"
    );
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(err.contains("2000 still spooled"), "{err}");
    assert_eq!(server.count(), 0);
}
