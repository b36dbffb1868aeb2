//! Cost of `Checkpoint::persist` (memory only; goal under 100 ns for a known
//! name) and of one checkpoint write (`flush`: encode, temporary file,
//! fsync, rename, directory fsync) with 1 and 100 sources.
//!
//! `cargo bench --bench checkpoint`. Flushes are timed in the system temp
//! directory (that file system's fsync) and, where it exists, in `/dev/shm`
//! (a tmpfs: fsync is free, what remains is encoding and the system calls).
//! Beside each wall time: the process's CPU time per operation (all threads,
//! `common::Clock`), steadier than wall time on a shared machine.

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use common::Clock;
use spillway::checkpoint::Checkpoint;

/// Never triggers a background write during a measurement.
const QUIET_UPDATES: u32 = u32::MAX;
const QUIET_INTERVAL: Duration = Duration::MAX;

fn scratch(tag: &str) -> PathBuf {
    scratch_in(&std::env::temp_dir(), tag)
}

fn scratch_in(base: &Path, tag: &str) -> PathBuf {
    let dir = base.join(format!("spillway-bench-cp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    dir
}

fn persist_ns(label: &str, names: &[String], threads: usize) {
    const PER_THREAD: usize = 4_000_000;
    let dir = scratch("persist");
    let cp =
        Arc::new(Checkpoint::open(dir.join("cp.yaml"), QUIET_UPDATES, QUIET_INTERVAL).unwrap());
    let now = SystemTime::now();
    for n in names {
        cp.persist(n, 0, now).unwrap();
    }
    let mut best = f64::MAX;
    let mut cpu = Vec::new();
    for _round in 0..5 {
        let start = Arc::new(Barrier::new(threads + 1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (cp, start) = (Arc::clone(&cp), Arc::clone(&start));
                let names: Vec<String> = names.iter().skip(t).step_by(threads).cloned().collect();
                std::thread::spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    for i in 0..PER_THREAD {
                        let name = &names[i % names.len()];
                        cp.persist(black_box(name), black_box(i as u64), now)
                            .unwrap();
                    }
                    began.elapsed()
                })
            })
            .collect();
        start.wait();
        let clock = Clock::start();
        let slowest = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap();
        cpu.push(clock.stop().cpu_ns((PER_THREAD * threads) as u64));
        best = best.min(slowest.as_nanos() as f64 / PER_THREAD as f64);
    }
    println!(
        "persist  {label:<44} {best:>8.1} ns/op (best of 5 rounds, {PER_THREAD} ops per thread), \
         CPU {:>8.1} ns/op (median, all threads)",
        common::median(&mut cpu)
    );
    drop(cp);
    let _ = std::fs::remove_dir_all(&dir);
}

fn flush_us(base: &Path, sources: usize) {
    const WRITES: usize = 200;
    let dir = scratch_in(base, "flush");
    let path = dir.join("cp.yaml");
    let cp = Checkpoint::open(&path, QUIET_UPDATES, QUIET_INTERVAL).unwrap();
    let names: Vec<String> = (0..sources)
        .map(|i| format!("Microsoft-Windows-Source-{i}/Operational"))
        .collect();
    let now = SystemTime::now();
    for n in &names {
        cp.persist(n, 1, now).unwrap();
    }
    cp.flush().unwrap();
    let mut times: Vec<Duration> = Vec::with_capacity(WRITES);
    let mut cpu = Duration::ZERO;
    for i in 0..WRITES {
        cp.persist(&names[i % sources], i as u64, now).unwrap();
        let clock = Clock::start();
        cp.flush().unwrap();
        let s = clock.stop();
        times.push(s.wall);
        cpu += s.cpu;
    }
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = times.iter().sum::<Duration>() / WRITES as u32;
    println!(
        "flush    {:<9} {sources:>3} source(s), {:>6} bytes: median {:>8.1} us, mean {:>8.1} us, p90 {:>8.1} us, min {:>8.1} us, max {:>8.1} us, CPU mean {:>8.1} us ({WRITES} writes)",
        base.display(),
        std::fs::metadata(&path).unwrap().len(),
        us(times[WRITES / 2]),
        us(mean),
        us(times[WRITES * 9 / 10]),
        us(times[0]),
        us(times[WRITES - 1]),
        us(cpu / WRITES as u32),
    );
    drop(cp);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    common::print_machine("checkpoint");
    let one = vec!["Application".to_string()];
    let hundred: Vec<String> = (0..100)
        .map(|i| format!("Microsoft-Windows-Source-{i}/Operational"))
        .collect();
    persist_ns("1 thread, 1 known name", &one, 1);
    persist_ns("1 thread, 100 known names (round robin)", &hundred, 1);
    persist_ns("2 threads, 100 known names (contended lock)", &hundred, 2);
    // The temp dir shows the disk's fsync; a tmpfs (if any) the CPU part.
    let mut bases = vec![std::env::temp_dir()];
    if Path::new("/dev/shm").is_dir() {
        bases.push(PathBuf::from("/dev/shm"));
    }
    for base in &bases {
        flush_us(base, 1);
        flush_us(base, 100);
    }
}
