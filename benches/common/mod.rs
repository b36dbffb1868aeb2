//! What every bench shares: the machine it ran on, and a clock that reads
//! wall time and the process's CPU time together, so each row can show CPU
//! nanoseconds per item beside its throughput. An embedded user pays for
//! CPU, and CPU per item is steadier than wall time when the machine is not
//! quite idle.

#![allow(dead_code)] // each bench uses part of this

use std::time::{Duration, Instant};

/// Wall and CPU time of one timed run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub wall: Duration,
    /// CPU time of the whole process (every thread, user and system) over
    /// the run: spinning peers pay for their spinning here.
    pub cpu: Duration,
}

impl Sample {
    /// Items per second of wall time.
    pub fn rate(&self, items: u64) -> f64 {
        items as f64 / self.wall.as_secs_f64()
    }

    /// CPU nanoseconds per item.
    pub fn cpu_ns(&self, items: u64) -> f64 {
        self.cpu.as_nanos() as f64 / items as f64
    }
}

/// Started by [`Clock::start`], read by [`Clock::stop`].
pub struct Clock {
    wall: Instant,
    cpu: Duration,
}

impl Clock {
    pub fn start() -> Self {
        Self {
            cpu: process_cpu(),
            wall: Instant::now(),
        }
    }

    pub fn stop(self) -> Sample {
        let wall = self.wall.elapsed();
        Sample {
            wall,
            cpu: process_cpu().saturating_sub(self.cpu),
        }
    }
}

/// CPU time this process has used so far, all threads.
pub fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The median of `values` (sorted in place); NaN for none.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The 1-minute load average, from /proc/loadavg.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The CPU model, from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The first lines of every bench's output: what ran, where, and how busy
/// the machine was when it started. A figure taken with a load average
/// of 0.5 or more is not one to publish (see BENCHMARKS.md).
pub fn print_machine(bench: &str) {
    let load = load_average().map_or("unknown".into(), |l| format!("{l:.2}"));
    println!(
        "{bench}: {} x {}, 1-minute load average {load} at start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
    );
    if load_average().is_some_and(|l| l >= 0.5) {
        println!(
            "WARNING: load average at or above 0.5: these figures are not from an idle machine"
        );
    }
}
