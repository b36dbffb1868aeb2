//! Standard input through crashes, signals and a dead output (issue 13,
//! defects 2, 8 and 9): a kill loop while a stdin backlog ships into a file
//! repeats nothing; an orderly stop keeps everything read; an output that
//! always fails ends the run with exit 1 and what was read spooled.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ChildStdin;
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(120);

/// Writes `text` on a thread; closes the pipe at the end when `close`,
/// else hands the pipe back to be held open. A write the agent refuses (it
/// exited) ends the thread.
fn feed(mut pipe: ChildStdin, text: Vec<u8>, close: bool) -> JoinHandle<Option<ChildStdin>> {
    std::thread::spawn(move || {
        let ok = pipe.write_all(&text).is_ok();
        (ok && !close).then_some(pipe)
    })
}

/// A config file with fast retries and `max_retries`.
fn fast_retries(s: &Scratch, max_retries: u32) -> std::path::PathBuf {
    config_file(
        s,
        "agent.yaml",
        &format!("max_retries: {max_retries}\nretry_backoff: 10ms\nretry_backoff_max: 20ms\n"),
    )
}

/// Ships what the stdin spool holds (stdin itself empty) into `out`.
fn ship_backlog(out: &Path, state: &Path) -> std::process::Output {
    run(&ship_args("-", out.to_str().unwrap(), state, &[]))
}

#[test]
fn a_kill_loop_while_a_stdin_backlog_ships_into_a_file_repeats_and_loses_nothing() {
    const LINES: u64 = 300_000;
    const KILLS: usize = 10;
    let s = Scratch::new("stdin-kill-loop");
    let out = s.path("out.log");
    let state = s.path("state");
    let cfg = fast_retries(&s, 0);

    // The backlog: a run whose output fails spools all of stdin and exits 1.
    let text = lines(1, LINES);
    let total = text.len();
    let mut child = spawn_stdin("exec:false", &state, &["--config", cfg.to_str().unwrap()]);
    let writer = feed(child.stdin.take().unwrap(), text, true);
    let log = StderrLog::start(&mut child);
    let status = wait_exit(&mut child, WAIT);
    let err = log.finish();
    assert_eq!(code(status), 1, "{err}");
    assert!(
        err.contains(&format!("{total} bytes of it wait in the stdin spool")),
        "{err}"
    );
    writer.join().unwrap();

    // Kills at seeded random moments while the backlog ships in batches of
    // 1000 lines: each lands after the output has grown past a random mark.
    // The output grows when a batch is written; the kill lands a random
    // moment later, anywhere in that batch's commits or the next one's.
    let args = ship_args("-", out.to_str().unwrap(), &state, &["--max-size", "1000"]);
    KillLoop {
        kills: KILLS,
        seed: 0x57D1_2026,
        step: total as u64 / (KILLS as u64 * 2),
        early_kills: false,
        jitter_us: 20_000,
        poll: Duration::from_micros(500),
        timeout: WAIT,
    }
    .run(&args, || file_len(&out));
    let last = ship_backlog(&out, &state);
    assert_eq!(code(last.status), 0, "{}", stderr(&last));

    // Exactly once: not one line repeated, none missing, in order.
    let got = numbers(&out);
    let repeated = got.len() as i64 - LINES as i64;
    assert_eq!(repeated, 0, "{repeated} lines more than shipped");
    assert_eq!(got, (1..=LINES).collect::<Vec<_>>());
    let shown = inspect(&state);
    assert!(shown.contains(": 0 records"), "{shown}");
}

#[test]
fn sigterm_delivers_every_line_read_from_stdin_and_exits_0() {
    let s = Scratch::new("stdin-sigterm");
    let out = s.path("out.log");
    let state = s.path("state");
    let text = lines(1, 3000);
    // Nothing goes out on its own: only the stop makes these lines go.
    let mut child = spawn_stdin(
        out.to_str().unwrap(),
        &state,
        &[
            "--flush-interval",
            "1h",
            "--max-size",
            "100000",
            "--stats",
            "20ms",
        ],
    );
    let writer = feed(child.stdin.take().unwrap(), text, false);
    let log = StderrLog::start(&mut child);
    log.wait_for("buffered 3000,", WAIT);
    assert_eq!(count_lines(&out), 0);
    terminate(&child);
    let status = wait_exit(&mut child, WAIT);
    let err = log.finish();
    drop(writer.join().unwrap()); // the producer's pipe was open all along
    assert_eq!(code(status), 0, "{err}");
    assert!(err.contains("shipped 3000 records"), "{err}");
    assert_eq!(numbers(&out), (1..=3000).collect::<Vec<_>>());
}

#[test]
fn sigterm_with_the_output_down_keeps_everything_read_for_the_next_run() {
    let s = Scratch::new("stdin-sigterm-down");
    let out = s.path("out.log");
    let state = s.path("state");
    let cfg = fast_retries(&s, 1);
    let text = lines(1, 5000);
    let total = text.len();
    let mut child = spawn_stdin(
        "exec:false",
        &state,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--stdin-chunk",
            "4KiB",
            "--stats",
            "20ms",
        ],
    );
    let writer = feed(child.stdin.take().unwrap(), text, false);
    let log = StderrLog::start(&mut child);
    log.wait_for("the output is down", WAIT);
    log.wait_for(&format!("stdin undelivered {total} bytes"), WAIT);
    terminate(&child);
    let status = wait_exit(&mut child, WAIT);
    let err = log.finish();
    drop(writer.join().unwrap());
    assert_eq!(code(status), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{total} bytes read from standard input, {total} bytes of it wait in the stdin spool"
        )),
        "{err}"
    );
    let next = ship_backlog(&out, &state);
    assert_eq!(code(next.status), 0, "{}", stderr(&next));
    assert_eq!(numbers(&out), (1..=5000).collect::<Vec<_>>());
}

#[test]
fn an_output_that_always_fails_ends_a_stdin_run_with_exit_1_and_all_of_it_spooled() {
    // More than the buffer holds in memory: the reader must not block on it.
    const LINES: u64 = 400_000;
    let s = Scratch::new("stdin-exit-1");
    let out = s.path("out.log");
    let state = s.path("state");
    let cfg = fast_retries(&s, 1);
    let text = lines(1, LINES);
    let total = text.len();
    let mut child = spawn_stdin("exec:exit 1", &state, &["--config", cfg.to_str().unwrap()]);
    let writer = feed(child.stdin.take().unwrap(), text, true);
    let log = StderrLog::start(&mut child);
    let status = wait_exit(&mut child, WAIT);
    let err = log.finish();
    assert!(writer.join().unwrap().is_none());
    assert_eq!(code(status), 1, "{err}");
    assert!(err.contains("output failed: command `exit 1`"), "{err}");
    assert!(err.contains("standard input ended"), "{err}");
    assert!(
        err.contains(&format!(
            "{total} bytes read from standard input, {total} bytes of it wait in the stdin spool"
        )),
        "{err}"
    );

    let next = ship_backlog(&out, &state);
    assert_eq!(code(next.status), 0, "{}", stderr(&next));
    assert!(
        stderr(&next).contains(&format!("shipped {LINES} records")),
        "{}",
        stderr(&next)
    );
    assert_eq!(numbers(&out), (1..=LINES).collect::<Vec<_>>());
}

#[test]
fn a_full_stdin_spool_with_the_output_down_stops_reading_and_exits_1() {
    let s = Scratch::new("stdin-full");
    let out = s.path("out.log");
    let state = s.path("state");
    let cfg = fast_retries(&s, 0);
    let text = lines(1, 100_000); // about 4 MiB
    let mut child = spawn_stdin(
        "exec:exit 1",
        &state,
        &["--config", cfg.to_str().unwrap(), "--spool-max", "1MiB"],
    );
    let writer = feed(child.stdin.take().unwrap(), text.clone(), true);
    let log = StderrLog::start(&mut child);
    let status = wait_exit(&mut child, WAIT);
    let err = log.finish();
    // The rest of stdin was never read: the producer's write failed.
    assert!(writer.join().unwrap().is_none());
    assert_eq!(code(status), 1, "{err}");
    assert!(
        err.contains("the stdin spool is full (--spool-max 1.0 MiB)"),
        "{err}"
    );
    let read: usize = err
        .split(" bytes read from standard input")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bytes read in: {err}"));
    assert!(read > 0 && read <= 1 << 20, "{read} bytes read");

    // The next run ships exactly what was read: the stream's first `read`
    // bytes, a line cut at the end ending there.
    let next = ship_backlog(&out, &state);
    assert_eq!(code(next.status), 0, "{}", stderr(&next));
    let got = fs::read(&out).unwrap();
    let mut want = text[..read].to_vec();
    if want.last() != Some(&b'\n') {
        want.push(b'\n');
    }
    assert!(
        got == want,
        "the output is not the first {read} bytes of stdin"
    );
}
