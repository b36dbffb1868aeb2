//! `--output http(s)://…` against a server inside the test (127.0.0.1):
//! each status path, the body formats, gzip, headers, and bad flags.
#![cfg(feature = "http")]

mod common;
mod http_server;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use http_server::{Reply, Request, Server};

/// Fast retries, so the tests do not wait on the default backoff.
fn fast_config(s: &Scratch, max_retries: u32, backoff_max: &str) -> PathBuf {
    config_file(
        s,
        "agent.yaml",
        &format!(
            "max_retries: {max_retries}\nretry_backoff: 10ms\nretry_backoff_max: {backoff_max}\n\
             flush_interval: 50ms\nflush_timeout: 20s\n"
        ),
    )
}

/// The generated line numbers that `reqs` carry, body after body.
fn numbers_of(reqs: &[Request]) -> Vec<u64> {
    let mut all = Vec::new();
    for r in reqs {
        let body = String::from_utf8(r.plain_body()).expect("generated lines are UTF-8");
        assert!(
            body.is_empty() || body.ends_with('\n'),
            "a body ends a line"
        );
        for l in body.lines() {
            let n: u64 = l
                .get(..10)
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("not a generated line: {l:?}"));
            assert_eq!(l, line(n), "line {n} was changed");
            all.push(n);
        }
    }
    all
}

#[test]
fn each_batch_is_one_post_with_the_lines_and_the_given_headers() {
    let s = Scratch::new("http-ok");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 3, "200ms");
    generate(&input, 5000);
    let server = Server::start(Box::new(|_, _| Reply::ok()));
    let url = server.url("/ingest?src=a");
    let extra = [
        "--config",
        cfg.to_str().unwrap(),
        "--max-size",
        "1000",
        "--http-header",
        "Authorization: Bearer T0KEN",
        "--http-header",
        "X-Env:  test ",
    ];
    let out = ship(&input, &url, &state, &extra);
    let err = stderr(&out);
    assert_eq!(code(out.status), 0, "{err}");

    let reqs = server.requests();
    assert_eq!(numbers_of(&reqs), (1..=5000).collect::<Vec<_>>());
    let mut concatenated = Vec::new();
    for r in &reqs {
        assert_eq!(r.status, 200);
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/ingest?src=a");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("authorization"), Some("Bearer T0KEN"));
        assert_eq!(r.header("x-env"), Some("test"));
        assert!(r.header("user-agent").unwrap().starts_with("spillway/"));
        assert_eq!(r.header("content-encoding"), None);
        assert!(r.body.iter().filter(|&&b| b == b'\n').count() <= 1000);
        concatenated.extend_from_slice(&r.body);
    }
    assert_eq!(concatenated, fs::read(&input).unwrap(), "byte for byte");
    let batches = format!("in {} batches", reqs.len());
    assert!(
        err.contains("shipped 5000 records") && err.contains(&batches),
        "{err}"
    );

    // Everything was delivered: a second run sends nothing.
    let again = ship(&input, &url, &state, &extra);
    assert_eq!(code(again.status), 0, "{}", stderr(&again));
    assert_eq!(server.count(), reqs.len());
}

#[test]
fn json_bodies_escape_every_record_and_carry_the_fields_and_gzip_decodes_to_them() {
    let s = Scratch::new("http-json");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 3, "200ms");
    let records: [&[u8]; 8] = [
        b"plain",
        br#"say "hi" \ back\slash"#,
        b"tab\there",
        b"ctl\x01\x1f\x7f end",
        b"bad \xff\xfe utf8 \xe2\x82",
        "unicode é € 😀".as_bytes(),
        b"",
        b"crlf\r",
    ];
    let mut text = Vec::new();
    for r in records {
        text.extend_from_slice(r);
        text.push(b'\n');
    }
    fs::write(&input, &text).unwrap();
    // Built by hand, not by the code under test.
    let fields = r#","host":"dev-1","note":"say \"x\"\t""#;
    let messages = [
        r#""plain""#,
        r#""say \"hi\" \\ back\\slash""#,
        r#""tab\there""#,
        "\"ctl\\u0001\\u001f\x7f end\"",
        "\"bad \u{FFFD}\u{FFFD} utf8 \u{FFFD}\"",
        "\"unicode é € 😀\"",
        r#""""#,
        r#""crlf\r""#,
    ];
    let want: String = messages
        .iter()
        .map(|m| format!("{{\"message\":{m}{fields}}}\n"))
        .collect();

    let server = Server::start(Box::new(|_, _| Reply::ok()));
    let out = ship(
        &input,
        &server.url("/"),
        &state,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--http-format",
            "json",
            "--http-field",
            "host=dev-1",
            "--http-field",
            "note=say \"x\"\t",
            "--http-gzip",
        ],
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let reqs = server.requests();
    let mut got = Vec::new();
    for r in &reqs {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(&r.body[..2], b"\x1f\x8b", "a gzip body");
        got.extend(r.plain_body());
    }
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

#[test]
fn gzip_lines_decode_to_the_input_and_are_smaller() {
    let s = Scratch::new("http-gzip");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 3, "200ms");
    generate(&input, 20_000);
    let server = Server::start(Box::new(|_, _| Reply::ok()));
    let out = ship(
        &input,
        &server.url("/"),
        &state,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--max-size",
            "5000",
            "--http-gzip",
            "--http-header",
            "Content-Type: text/x-log",
        ],
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let reqs = server.requests();
    assert_eq!(numbers_of(&reqs), (1..=20_000).collect::<Vec<_>>());
    let sent: usize = reqs.iter().map(|r| r.body.len()).sum();
    let plain = fs::metadata(&input).unwrap().len() as usize;
    assert!(sent < plain / 2, "{sent} bytes sent for {plain}");
    for r in &reqs {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        // A Content-Type header replaces the format's, and is sent once.
        assert_eq!(r.header("content-type"), Some("text/x-log"));
        let n = r
            .headers
            .iter()
            .filter(|(k, _)| k == "content-type")
            .count();
        assert_eq!(n, 1);
    }
}

#[test]
fn a_429_is_retried_after_its_retry_after() {
    let s = Scratch::new("http-429");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 3, "5s");
    generate(&input, 100);
    let server = Server::start(Box::new(|_, i| {
        if i == 0 {
            Reply::status(429, "slow down\nplease").with_header("Retry-After", "1")
        } else {
            Reply::ok()
        }
    }));
    let url = server.url("/");
    let out = ship(&input, &url, &state, &["--config", cfg.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(code(out.status), 0, "{err}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{err}");
    assert_eq!(reqs[0].body, reqs[1].body, "the same batch, whole");
    assert_eq!(numbers_of(&reqs[1..]), (1..=100).collect::<Vec<_>>());
    let waited = reqs[1].at - reqs[0].at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    let shown = format!(
        "output failed: HTTP 429 Too Many Requests from {url}: slow down (Retry-After 1s: \
         waited 1000 ms)"
    );
    assert!(err.contains(&shown), "{err}");
    assert!(!err.contains("please"), "{err}");
    assert!(err.contains("1 retries"), "{err}");
}

#[test]
fn a_retry_after_longer_than_retry_backoff_max_is_cut_to_it() {
    let s = Scratch::new("http-429-cap");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 3, "300ms");
    generate(&input, 10);
    // An hour, which the agent must not wait for.
    let server = Server::start(Box::new(|_, i| match i {
        0 => Reply::status(503, "").with_header("Retry-After", "3600"),
        _ => Reply::ok(),
    }));
    let out = ship(
        &input,
        &server.url("/"),
        &state,
        &["--config", cfg.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(code(out.status), 0, "{err}");
    assert!(
        err.contains("HTTP 503 Service Unavailable from") && err.contains("waited 300 ms"),
        "{err}"
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].at - reqs[0].at < Duration::from_secs(60));
}

#[test]
fn server_errors_and_408_are_retried_with_the_whole_batch_then_delivered() {
    let s = Scratch::new("http-5xx");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 5, "100ms");
    generate(&input, 2000);
    let server = Server::start(Box::new(|_, i| match i {
        0 => Reply::status(503, "overloaded\nsecond line"),
        1 => Reply::status(500, ""),
        2 => Reply::status(408, "idle"),
        _ => Reply::ok(),
    }));
    let url = server.url("/x");
    let out = ship(
        &input,
        &url,
        &state,
        &["--config", cfg.to_str().unwrap(), "--max-size", "1000"],
    );
    let err = stderr(&out);
    assert_eq!(code(out.status), 0, "{err}");
    let reqs = server.requests();
    assert_eq!(
        reqs[..4].iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 500, 408, 200]
    );
    for r in &reqs[1..4] {
        assert_eq!(
            r.body, reqs[0].body,
            "each retry sends the whole batch again"
        );
    }
    assert_eq!(
        numbers_of(&server.accepted()),
        (1..=2000).collect::<Vec<_>>()
    );
    assert!(
        err.contains(&format!(
            "output failed: HTTP 503 Service Unavailable from {url}: overloaded"
        )),
        "{err}"
    );
    assert!(err.contains("HTTP 500 Internal Server Error"), "{err}");
    assert!(err.contains("HTTP 408 Request Timeout"), "{err}");
    assert!(!err.contains("second line"), "{err}");
    assert!(err.contains("output accepted a batch again"), "{err}");
    assert!(err.contains("3 retries"), "{err}");
}

#[test]
fn with_no_server_the_run_spools_and_exits_1_and_the_next_run_delivers_once() {
    let s = Scratch::new("http-down");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 2, "50ms");
    generate(&input, 3000);
    let addr = Server::unused_addr();
    let url = format!("http://{addr}/in");
    let extra = ["--config", cfg.to_str().unwrap(), "--max-size", "1000"];

    let run1 = ship(&input, &url, &state, &extra);
    let err = stderr(&run1);
    assert_eq!(code(run1.status), 1, "{err}");
    assert!(
        err.contains(&format!("output failed: POST {url}: ")),
        "{err}"
    );
    assert!(err.contains("shipped 0 records"), "{err}");
    let shown = inspect(&state);
    assert!(shown.contains("spool spill"), "{shown}");

    let server = Server::start_at(addr, Box::new(|_, _| Reply::ok()));
    let run2 = ship(&input, &url, &state, &extra);
    assert_eq!(code(run2.status), 0, "{}", stderr(&run2));
    assert_eq!(
        numbers_of(&server.requests()),
        (1..=3000).collect::<Vec<_>>()
    );
}

#[test]
fn following_a_refused_connection_is_retried_until_the_server_is_up() {
    let s = Scratch::new("http-refused");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 1, "50ms");
    generate(&input, 3000);
    let addr = Server::unused_addr();
    let url = format!("http://{addr}/");
    let args = ship_args(
        input.to_str().unwrap(),
        &url,
        &state,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--max-size",
            "500",
            "--follow",
            "--stats",
            "50ms",
        ],
    );
    let mut child = spawn(&args, Stdio::null());
    let log = StderrLog::start(&mut child);
    // Failed attempts go by, well past max_retries ...
    log.wait_for(
        &format!("output failed: POST {url}: "),
        Duration::from_secs(60),
    );
    wait_until("4 retries", Duration::from_secs(60), || {
        most_retries(&log.text()) >= 4
    });
    assert!(child.try_wait().unwrap().is_none(), "the agent gave up");
    append(&input, 3001, 4000);
    // ... then the server is up, and everything arrives once.
    let server = Server::start_at(addr, Box::new(|_, _| Reply::ok()));
    wait_until("every line", Duration::from_secs(60), || {
        numbers_of(&server.requests()).len() >= 4000
    });
    terminate(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let err = log.finish();
    assert_eq!(code(status), 0, "{err}");
    assert!(err.contains("output accepted a batch again"), "{err}");
    assert_eq!(
        numbers_of(&server.requests()),
        (1..=4000).collect::<Vec<_>>()
    );
}

/// The highest retry count the stats lines on stderr show (they come every
/// `--stats`, so a count may be skipped).
fn most_retries(err: &str) -> u64 {
    err.split("retries ")
        .skip(1)
        .filter_map(|rest| rest.split(',').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_permanent_4xx_stops_the_agent_with_the_reason_and_the_next_run_delivers() {
    let s = Scratch::new("http-401");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 3, "50ms");
    generate(&input, 3000);
    let server = Server::start(Box::new(|r, _| {
        if r.header("authorization") == Some("Bearer good") {
            Reply::ok()
        } else {
            Reply::status(401, "invalid token\nsee the docs")
        }
    }));
    let url = server.url("/v1/logs");
    let common = ["--config", cfg.to_str().unwrap(), "--max-size", "500"];

    // --follow too: no retry fixes a 401, so the agent stops anyway.
    let mut args = vec!["--follow", "--http-header", "Authorization: Bearer bad"];
    args.extend_from_slice(&common);
    let run1 = ship(&input, &url, &state, &args);
    let err = stderr(&run1);
    assert_eq!(code(run1.status), 1, "{err}");
    let shown =
        format!("output failed: HTTP 401 Unauthorized from {url}: invalid token; not retried");
    assert!(err.contains(&shown), "{err}");
    assert!(err.contains("next run"), "{err}");
    assert!(!err.contains("see the docs"), "{err}");
    assert_eq!(err.matches("HTTP 401").count(), 1, "said once: {err}");
    assert_eq!(
        server.count(),
        1,
        "nothing is sent after a permanent failure"
    );
    assert!(err.contains("shipped 0 records"), "{err}");
    assert!(
        !err.contains(" 0 still spooled"),
        "the refused batch is spooled: {err}"
    );
    let inspect = inspect(&state);
    assert!(
        inspect.contains("spool spill") && inspect.contains("offset 0 "),
        "{inspect}"
    );

    let mut args = vec!["--http-header", "Authorization: Bearer good"];
    args.extend_from_slice(&common);
    let run2 = ship(&input, &url, &state, &args);
    assert_eq!(code(run2.status), 0, "{}", stderr(&run2));
    assert_eq!(
        numbers_of(&server.accepted()),
        (1..=3000).collect::<Vec<_>>()
    );
}

#[test]
fn from_stdin_a_permanent_4xx_keeps_the_records_in_the_stdin_spool_for_the_next_run() {
    let s = Scratch::new("http-stdin-403");
    let state = s.path("state");
    let cfg = fast_config(&s, 3, "50ms");
    let mut text = Vec::new();
    write_lines(&mut text, 1, 800);
    let server = Server::start(Box::new(|r, _| {
        if r.path == "/good" {
            Reply::ok()
        } else {
            Reply::status(403, "forbidden: no such tenant")
        }
    }));
    let extra = ["--config", cfg.to_str().unwrap(), "--max-size", "300"];

    let run1 = ship_stdin(&server.url("/bad"), &state, &extra, text.clone());
    let err = stderr(&run1);
    assert_eq!(code(run1.status), 1, "{err}");
    assert!(err.contains("HTTP 403 Forbidden from"), "{err}");
    assert!(
        err.contains(": forbidden: no such tenant; not retried"),
        "{err}"
    );
    assert_eq!(server.count(), 1);
    assert!(server.accepted().is_empty());

    // The next run (nothing more on stdin) ships what the spool kept: every
    // line that the first run read, once, in order.
    let run2 = ship_stdin(&server.url("/good"), &state, &extra, Vec::new());
    let err2 = stderr(&run2);
    assert_eq!(code(run2.status), 0, "{err2}");
    assert!(err2.contains("in the stdin spool"), "{err2}");
    // "N bytes read from standard input, M bytes of it wait in the stdin
    // spool": the next run delivers exactly those M bytes, whole lines from
    // the first on.
    let kept: usize = err
        .split(" bytes of it wait in the stdin spool")
        .next()
        .and_then(|t| t.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no spooled count: {err}"));
    assert!(kept > 0, "{err}");
    let accepted = numbers_of(&server.accepted());
    let n = accepted.len() as u64;
    assert_eq!(accepted, (1..=n).collect::<Vec<_>>());
    let delivered_bytes: usize = text
        .split_inclusive(|&b| b == b'\n')
        .take(accepted.len())
        .map(<[u8]>::len)
        .sum();
    assert_eq!(delivered_bytes, kept, "{err}");
}

#[test]
fn a_redirect_is_not_followed_and_says_where_to() {
    let s = Scratch::new("http-301");
    let input = s.path("in.log");
    let state = s.path("state");
    let cfg = fast_config(&s, 3, "50ms");
    generate(&input, 10);
    let server = Server::start(Box::new(|_, _| {
        Reply::status(301, "").with_header("Location", "http://127.0.0.1:9/new")
    }));
    let out = ship(
        &input,
        &server.url("/old"),
        &state,
        &["--config", cfg.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(code(out.status), 1, "{err}");
    assert!(
        err.contains("HTTP 301 Moved Permanently")
            && err.contains("point --output at http://127.0.0.1:9/new"),
        "{err}"
    );
    assert_eq!(server.count(), 1);
}

/// Runs `spillway ARGS`, expects exit status 2 and one line on stderr that
/// contains every one of `wanted`.
fn refused(args: &[&str], wanted: &[&str]) {
    let out = run(args);
    let err = stderr(&out);
    assert_eq!(code(out.status), 2, "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("spillway: "), "{err}");
    for w in wanted {
        assert!(err.contains(w), "{args:?}: {err:?} does not mention {w:?}");
    }
}

#[test]
fn bad_urls_and_http_flags_are_one_line_errors_with_exit_2() {
    let s = Scratch::new("http-bad");
    let input = s.path("in.log");
    generate(&input, 10);
    let input = input.to_str().unwrap();
    let state = s.path("state");
    let state = state.to_str().unwrap();
    let pem = s.path("not.pem");
    fs::write(&pem, "hello\n").unwrap();
    let pem = pem.to_str().unwrap();
    let check = |output: &str, extra: &[&str], wanted: &[&str]| {
        let a = ship_args(input, output, Path::new(state), extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        refused(&a, wanted);
    };
    let u = "http://127.0.0.1:9/";
    check("http://", &[], &["\"http://\"", "--output"]);
    check("https://h/#frag", &[], &["fragment", "--output"]);
    check("http://h/a b", &[], &["\"http://h/a b\"", "--output"]);
    check("http://u:s3cret@/x", &[], &["u:***@"]);
    check(u, &["--http-format", "xml"], &["'xml'", "--http-format"]);
    check(
        u,
        &["--http-field", "a=b"],
        &["--http-field a=b", "--http-format json"],
    );
    check(
        u,
        &["--http-format", "json", "--http-field", "ab"],
        &["\"ab\"", "KEY=VALUE"],
    );
    check(
        u,
        &["--http-format", "json", "--http-field", "message=x"],
        &["message"],
    );
    check(
        u,
        &["--http-header", "NoColon"],
        &["\"NoColon\"", "--http-header"],
    );
    check(
        u,
        &["--http-header", "Content-Length: 5"],
        &["--http-header", "sets it"],
    );
    check(u, &["--http-timeout", "0"], &["\"0\"", "--http-timeout"]);
    check(
        u,
        &["--http-timeout", "soon"],
        &["\"soon\"", "--http-timeout"],
    );
    check(
        u,
        &["--http-ca", "/nonexistent.pem"],
        &["--http-ca", "https://"],
    );
    check(
        "https://127.0.0.1:9/",
        &["--http-ca", "/nonexistent.pem"],
        &["/nonexistent.pem", "cannot be read"],
    );
    check(
        "https://127.0.0.1:9/",
        &["--http-ca", pem],
        &["not.pem", "no certificate"],
    );
    check("out.log", &["--http-gzip"], &["--http-gzip", "http://"]);
    check(
        "-",
        &["--http-header", "A: b"],
        &["--http-header", "http://"],
    );
    // A password never reaches a message.
    let a = ship_args(input, "http://u:s3cret@/x", Path::new(state), &[]);
    let out = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
}

#[test]
fn help_documents_the_http_output() {
    let out = run(&["ship", "--help"]);
    let help = stdout(&out);
    for w in [
        "--http-format",
        "--http-field",
        "--http-header",
        "--http-gzip",
        "--http-timeout",
        "--http-ca",
        "Retry-After",
        "429, 408, 5xx",
        "other 4xx",
        "repeats are whole",
        "U+FFFD",
    ] {
        assert!(help.contains(w), "--help does not mention {w}");
    }
}
