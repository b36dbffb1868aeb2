//! Spool benchmarks, in one run:
//! - `push_batch` with `sync = batch` against plain `write` + `fdatasync` of
//!   the same bytes in the same batches (goal: spool >= 0.8x);
//! - `pop` throughput from disk;
//! - recovery: `Spool::open` of a spool of 100 segments (`segment_bytes` is
//!   a hundredth of the backlog) against just reading every segment file
//!   (issue 10's goal: open <= 0.25x the read, at 100 segments). 256 MiB by
//!   default, 1 GiB with `SPILLWAY_BENCH_BIG=1`. Both run with the files in
//!   the page cache (the file-read pass warms it).
//!
//! Every row shows the process's CPU nanoseconds per record beside the wall
//! time (`common::Clock`).
//!
//! `SPILLWAY_BENCH_DIR` picks the directory (default: the system temp dir);
//! `SPILLWAY_BENCH_ONLY=push|pop|recovery` runs one part.
//! Run: `cargo bench --bench spool`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use common::{Clock, Sample};
use spillway::spool::{Spool, SpoolConfig, SyncMode};

const MB: f64 = 1_000_000.0;
/// Each comparison alternates its two sides this many times and keeps the
/// best of each: the machine is shared, and the best run is the one least
/// disturbed.
const ROUNDS: usize = 5;
/// Segments the recovery bench spreads its backlog over (issue 10's case).
const RECOVERY_SEGMENTS: u64 = 100;

fn bench_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("SPILLWAY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = root.join(format!("spillway-bench-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn record(n: u64, len: usize) -> Vec<u8> {
    let mut r = vec![(n % 251) as u8; len];
    r[..8].copy_from_slice(&n.to_le_bytes());
    r
}

fn rate(items: u64, bytes: u64, d: Duration) -> String {
    let s = d.as_secs_f64();
    format!(
        "{:>8.3} M items/s {:>9.1} MB/s ({:.3} s)",
        items as f64 / s / 1e6,
        bytes as f64 / s / MB,
        s
    )
}

fn config(max_bytes: u64) -> SpoolConfig {
    SpoolConfig {
        max_bytes,
        ..SpoolConfig::default()
    }
}

/// Plain write + fdatasync of each batch's bytes, one file.
fn plain(dir: &Path, batches: &[Vec<u8>]) -> Sample {
    let path = dir.join("plain.dat");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    let clock = Clock::start();
    for b in batches {
        f.write_all(b).unwrap();
        f.sync_data().unwrap();
    }
    let d = clock.stop();
    drop(f);
    fs::remove_file(path).unwrap();
    d
}

fn spool_push(dir: &Path, batches: Vec<Vec<Vec<u8>>>, total: u64) -> Sample {
    let mut spool = Spool::open(dir, config(total * 2 + (64 << 20))).unwrap();
    let clock = Clock::start();
    for b in batches {
        spool.push_batch(b).unwrap();
    }
    let d = clock.stop();
    spool.close().unwrap();
    d
}

fn push_vs_plain(record_len: usize, batch: usize, total: u64) {
    let n = total / record_len as u64;
    let make = || -> Vec<Vec<Vec<u8>>> {
        (0..n)
            .collect::<Vec<_>>()
            .chunks(batch)
            .map(|c| c.iter().map(|&i| record(i, record_len)).collect())
            .collect()
    };
    let flat: Vec<Vec<u8>> = make().into_iter().map(|b| b.concat()).collect();
    let mut best_plain = Duration::MAX;
    let mut best_spool = Duration::MAX;
    let (mut plain_cpu, mut spool_cpu) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let dir = bench_dir("plain");
        let s = plain(&dir, &flat);
        best_plain = best_plain.min(s.wall);
        plain_cpu.push(s.cpu_ns(n));
        fs::remove_dir_all(&dir).unwrap();
        let dir = bench_dir("push");
        let s = spool_push(&dir, make(), total);
        best_spool = best_spool.min(s.wall);
        spool_cpu.push(s.cpu_ns(n));
        fs::remove_dir_all(&dir).unwrap();
    }
    println!(
        "push_batch, {record_len} B records, batches of {batch} ({} MiB in all, best of {ROUNDS}):",
        total >> 20
    );
    println!(
        "  spool push_batch (sync=batch) {}  CPU {:>7.1} ns",
        rate(n, total, best_spool),
        common::median(&mut spool_cpu)
    );
    println!(
        "  plain write + fdatasync       {}  CPU {:>7.1} ns",
        rate(n, total, best_plain),
        common::median(&mut plain_cpu)
    );
    println!(
        "  ratio spool / plain: {:.2}x (goal >= 0.8x)",
        best_plain.as_secs_f64() / best_spool.as_secs_f64()
    );
}

fn fill(dir: &Path, record_len: usize, total: u64, segment_bytes: u64) -> u64 {
    let n = total / record_len as u64;
    let cfg = SpoolConfig {
        sync: SyncMode::Never,
        segment_bytes,
        ..config(total * 2)
    };
    let mut spool = Spool::open(dir, cfg).unwrap();
    let mut i = 0;
    while i < n {
        let k = (n - i).min(4096);
        spool
            .push_batch((i..i + k).map(|j| record(j, record_len)))
            .unwrap();
        i += k;
    }
    spool.close().unwrap();
    n
}

fn pop_throughput(record_len: usize, total: u64) {
    let dir = bench_dir("pop");
    let n = fill(
        &dir,
        record_len,
        total,
        SpoolConfig::default().segment_bytes,
    );
    let mut spool = Spool::open(&dir, config(total * 2)).unwrap();
    let clock = Clock::start();
    let mut got = 0u64;
    let mut bytes = 0u64;
    while let Some(r) = spool.pop().unwrap() {
        got += 1;
        bytes += r.len() as u64;
    }
    let s = clock.stop();
    assert_eq!(got, n);
    spool.close().unwrap();
    println!(
        "pop, {record_len} B records, {} MiB from disk:",
        total >> 20
    );
    println!(
        "  spool pop                     {}  CPU {:>7.1} ns",
        rate(got, bytes, s.wall),
        s.cpu_ns(got)
    );
    fs::remove_dir_all(&dir).unwrap();
}

fn read_files(dir: &Path, buf: &mut [u8]) -> u64 {
    let mut total = 0;
    let mut paths: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    paths.sort();
    for p in paths {
        let mut f = File::open(p).unwrap();
        loop {
            let k = f.read(buf).unwrap();
            if k == 0 {
                break;
            }
            total += k as u64;
        }
    }
    total
}

fn cpu_ns(cpu: Duration, records: u64) -> f64 {
    cpu.as_nanos() as f64 / records as f64
}

fn segment_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "seg"))
        })
        .count()
}

fn recovery(record_len: usize, total: u64) {
    let dir = bench_dir("recovery");
    // A hundredth of the backlog per segment, so the backlog spans about
    // RECOVERY_SEGMENTS files whatever its size.
    let segment_bytes = (total / RECOVERY_SEGMENTS).max(64 << 10);
    let n = fill(&dir, record_len, total, segment_bytes);
    let segments = segment_files(&dir);
    let cfg = SpoolConfig {
        segment_bytes,
        ..config(total * 2)
    };
    let mut buf = vec![0u8; 4 << 20];
    let (mut best_read, mut best_open) = (Duration::MAX, Duration::MAX);
    let (mut read_cpu, mut open_cpu) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        let clock = Clock::start();
        bytes = read_files(&dir, &mut buf);
        let s = clock.stop();
        best_read = best_read.min(s.wall);
        read_cpu.push(cpu_ns(s.cpu, n));
        let clock = Clock::start();
        let spool = Spool::open(&dir, cfg.clone()).unwrap();
        let s = clock.stop();
        best_open = best_open.min(s.wall);
        open_cpu.push(cpu_ns(s.cpu, n));
        assert_eq!(spool.len(), n);
        assert!(spool.report().is_clean());
        // Dropping it syncs once (open leaves the files to be synced by the
        // first sync); not part of the timing.
        drop(spool);
    }
    println!(
        "recovery, {} MiB of {record_len} B records in {segments} segments ({n} records, \
         page cache warm, best of {ROUNDS}; CPU: median ns per record):",
        bytes >> 20
    );
    println!(
        "  Spool::open                   {}  CPU {:>7.1} ns",
        rate(n, bytes, best_open),
        common::median(&mut open_cpu)
    );
    println!(
        "  read every segment file       {}  CPU {:>7.1} ns",
        rate(n, bytes, best_read),
        common::median(&mut read_cpu)
    );
    println!(
        "  ratio open / read: {:.2}x (goal <= 0.25x at {RECOVERY_SEGMENTS} segments)",
        best_open.as_secs_f64() / best_read.as_secs_f64()
    );
    fs::remove_dir_all(&dir).unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too, so
    // keep that run short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let big = std::env::var("SPILLWAY_BENCH_BIG").is_ok_and(|v| v == "1");
    let scale = if quick { 1 } else { 16 };
    let only = std::env::var("SPILLWAY_BENCH_ONLY").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only == part;
    common::print_machine(if quick { "spool (quick)" } else { "spool" });
    if run("push") {
        push_vs_plain(128, 512, scale << 20);
        push_vs_plain(1024, 1024, (scale * 4) << 20);
    }
    if run("pop") {
        pop_throughput(128, scale << 20);
    }
    if !run("recovery") {
        return;
    }
    let size: u64 = if quick {
        4 << 20
    } else if big {
        1 << 30
    } else {
        256 << 20
    };
    recovery(1000, size);
    recovery(100, size / 4);
}
