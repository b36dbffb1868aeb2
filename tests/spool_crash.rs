//! Kill -9 loop: a child process (this test binary, re-executed) pushes
//! numbered records, pops some, flushes now and then and says what it
//! flushed; the parent kills it with SIGKILL at a seeded random moment,
//! reopens the spool and checks that every flushed record is there, in
//! order, that nothing consumed before the last flush came back, and that
//! nothing appears that was never pushed. The same directory carries on
//! through every kill. Records popped after the last flush may come back
//! (at-least-once) or, once a later sync saved the position, not.
//!
//! `SPILLWAY_CRASH_SEED` and `SPILLWAY_CRASH_KILLS` override the defaults.

mod spool_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spillway::spool::{Spool, SpoolConfig, SyncMode};
use spool_support::{number, record, Rng, TempDir};

const CHILD_ENV: &str = "SPILLWAY_SPOOL_CRASH_CHILD";

fn cfg() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 256 << 20,
        segment_bytes: 4096,
        max_record: 4096,
        sync: SyncMode::Batch,
        memory_bytes: 1024,
        ..SpoolConfig::default()
    }
}

/// The child's side; a no-op unless the parent set [`CHILD_ENV`].
#[test]
fn crash_child() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = arg.split('|');
    let dir = parts.next().unwrap().to_owned();
    let base: u64 = parts.next().unwrap().parse().unwrap();
    let seed: u64 = parts.next().unwrap().parse().unwrap();
    run_child(Path::new(&dir), base, seed);
}

fn run_child(dir: &Path, base: u64, seed: u64) {
    let mut out = std::io::stdout().lock();
    let mut rng = Rng(seed);
    let mut spool = Spool::open(dir, cfg()).unwrap();
    let mut next = base;
    let mut popped: Option<u64> = None;
    let deadline = Instant::now() + Duration::from_secs(20); // if the parent is gone
    while Instant::now() < deadline {
        let k = 1 + rng.below(30);
        let batch: Vec<Vec<u8>> = (0..k)
            .map(|i| record(next + i, 8 + rng.below(300) as usize))
            .collect();
        if rng.below(2) == 0 {
            spool.push_batch(batch).unwrap();
        } else {
            for r in batch {
                spool.push(r).unwrap();
            }
        }
        next += k;
        for _ in 0..rng.below(2 * k) {
            let Some(r) = spool.pop().unwrap() else { break };
            let n = number(&r).expect("intact record");
            if popped.is_some_and(|p| n <= p) {
                writeln!(out, "@@ error popped {n} after {popped:?}").unwrap();
                std::process::exit(3);
            }
            popped = Some(n);
        }
        // Any later call may save the read position (a sync that deletes a
        // consumed segment does), so say how far it could go first.
        writeln!(out, "@@ intent {}", popped.map_or(-1, |p| p as i64)).unwrap();
        out.flush().unwrap();
        if rng.below(3) == 0 {
            writeln!(out, "@@ intent {}", popped.map_or(-1, |p| p as i64)).unwrap();
            out.flush().unwrap();
            spool.flush().unwrap();
            writeln!(
                out,
                "@@ flushed {} {}",
                next - 1,
                popped.map_or(-1, |p| p as i64)
            )
            .unwrap();
            out.flush().unwrap();
        }
    }
    std::process::exit(0);
}

#[derive(Default)]
struct Story {
    /// Highest popped number announced; the saved read position can be no
    /// further.
    max_intent: Option<u64>,
    /// (pushed, popped) at the last completed flush.
    done: Option<(u64, Option<u64>)>,
    flushes: usize,
}

fn parse(line: &str, story: &mut Story) {
    let Some(at) = line.find("@@ ") else { return };
    let words: Vec<&str> = line[at + 3..].split_whitespace().collect();
    let num =
        |s: &str| -> Option<u64> { s.parse::<i64>().ok().filter(|&v| v >= 0).map(|v| v as u64) };
    match words.as_slice() {
        ["intent", p] => story.max_intent = story.max_intent.max(num(p)),
        ["flushed", n, p] => {
            story.done = Some((num(n).unwrap(), num(p)));
            story.flushes += 1;
        }
        _ => panic!("child said: {line}"),
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_flushed() {
    let seed: u64 = std::env::var("SPILLWAY_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_2026);
    let kills: u64 = std::env::var("SPILLWAY_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = TempDir::new("crash");
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(seed);
    // What the last reopen found, in order.
    let mut known: Vec<u64> = Vec::new();
    let mut total_flushes = 0;
    for k in 0..kills {
        let base = (k + 1) << 32;
        let child_seed = rng.next();
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(
                CHILD_ENV,
                format!("{}|{base}|{child_seed}", dir.path().display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut story = Story::default();
        let wait_for = rng.below(6) as usize;
        let mut line = String::new();
        while story.flushes < wait_for {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            parse(&line, &mut story);
        }
        // A random moment after that: mid-push, mid-write or mid-flush.
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        for l in rest.lines() {
            parse(l, &mut story);
        }
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(
            status.code().is_none(),
            "seed {seed:#x} kill {k}: the child exited by itself ({status}): {err}"
        );
        total_flushes += story.flushes;

        let mut spool = Spool::open(dir.path(), cfg()).unwrap();
        let got: Vec<u64> = spool
            .read(usize::MAX)
            .unwrap()
            .iter()
            .map(|r| number(r).expect("a record that was never written"))
            .collect();
        drop(spool);
        let ctx = format!("seed {seed:#x} kill {k}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{ctx}: out of order");
        let known_set: BTreeSet<u64> = known.iter().copied().collect();
        for &n in &got {
            assert!(
                known_set.contains(&n) || (base..base + (1 << 32)).contains(&n),
                "{ctx}: {n} was never pushed"
            );
        }
        let (pushed, popped_done) = match story.done {
            Some((n, p)) => (Some(n), p),
            None => (None, None),
        };
        if let Some(p) = popped_done {
            assert!(
                got.iter().all(|&n| n > p),
                "{ctx}: a record consumed before the last flush came back"
            );
        }
        let floor = story.max_intent;
        let must: Vec<u64> = known
            .iter()
            .copied()
            .chain(pushed.map_or(0..0, |n| base..n + 1))
            .filter(|&n| floor.is_none_or(|f| n > f))
            .collect();
        let got_set: BTreeSet<u64> = got.iter().copied().collect();
        let lost: Vec<u64> = must
            .iter()
            .copied()
            .filter(|n| !got_set.contains(n))
            .collect();
        assert!(
            lost.is_empty(),
            "{ctx}: lost flushed records {lost:?}; done {:?} intent {floor:?}; got {} records, last {:?}",
            story.done,
            got.len(),
            got.last()
        );
        known = got;
    }
    eprintln!(
        "{kills} kills (seed {seed:#x}): {total_flushes} flushes reported, {} records left",
        known.len()
    );
    assert!(
        total_flushes >= kills as usize,
        "the children flushed too rarely: {total_flushes}"
    );
}
