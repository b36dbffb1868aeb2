//! What the C ABI costs per insert: `spw_buffer_insert` and
//! `spw_producer_insert`, called through `spillway::ffi` in this process,
//! against the Rust calls they wrap (`Buffer::insert`, `Producer::insert`),
//! in the same run.
//!
//! Every variant inserts `SPILLWAY_BENCH_ITEMS` items (default 2 000 000) of
//! 16 bytes from one thread into a buffer of `Box<[u8]>` items (what a C
//! buffer holds), `max_size` 1000, `capacity` 100 000, one flusher thread and
//! a sink that only counts (a Rust closure, or an `extern "C"` callback).
//! The Rust side is handed the same bytes and makes the same copy
//! (`Box::from(&[u8])`) that the C entry point makes, so the difference is
//! the entry point itself: the panic guard, the pointer checks, the
//! per-thread error message, the fuse. The variants take turns, run after
//! run, so machine noise falls on all of them; the median of
//! `SPILLWAY_BENCH_RUNS` (default 7) runs is reported, as the inserting
//! thread's wall time and CPU time per item, and the ratio of C to Rust.
//!
//! ```sh
//! cargo bench --bench ffi
//! ```

mod common;

use core::ffi::{c_int, c_void};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spillway::ffi::{
    spw_buffer, spw_buffer_free, spw_buffer_insert, spw_buffer_new, spw_buffer_producer,
    spw_config_free, spw_config_new, spw_config_set, spw_flush_info, spw_item, spw_producer,
    spw_producer_free, spw_producer_insert, spw_status,
};
use spillway::{Buffer, BufferConfig, FlushContext, SinkError};

const MAX_SIZE: usize = 1000;
const CAPACITY: usize = 100_000;
const ITEM: &[u8; 16] = b"0123456789abcdef";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    RustInsert,
    CInsert,
    RustProducer,
    CProducer,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::RustInsert,
        Variant::CInsert,
        Variant::RustProducer,
        Variant::CProducer,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::RustInsert => "Buffer::insert",
            Variant::CInsert => "spw_buffer_insert",
            Variant::RustProducer => "Producer::insert",
            Variant::CProducer => "spw_producer_insert",
        }
    }

    /// The Rust call a C variant wraps (itself for a Rust one).
    fn rust_peer(self) -> Variant {
        match self {
            Variant::CInsert => Variant::RustInsert,
            Variant::CProducer => Variant::RustProducer,
            v => v,
        }
    }
}

/// CPU time of the calling thread, from `/proc/thread-self/schedstat`
/// (nanoseconds); `None` where there is no procfs.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        stat.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Wall and CPU time of the inserting thread for `work`.
fn timed(work: impl FnOnce()) -> (Duration, Option<Duration>) {
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    work();
    let wall = t0.elapsed();
    (wall, thread_cpu().zip(cpu0).map(|(b, a)| b - a))
}

fn rust_config() -> BufferConfig {
    BufferConfig::new()
        .max_size(MAX_SIZE)
        .capacity(CAPACITY)
        .flush_interval(Duration::from_secs(1))
        .workers(1)
}

fn run_rust(variant: Variant, items: u64) -> (Duration, Option<Duration>) {
    let counted = Arc::new(AtomicU64::new(0));
    let in_sink = Arc::clone(&counted);
    let sink = move |batch: &[Box<[u8]>], _: &FlushContext<'_>| -> Result<(), SinkError> {
        in_sink.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    };
    let buffer = Buffer::new(rust_config(), sink).expect("a valid configuration");
    let bytes: &[u8] = black_box(ITEM);
    let times = match variant {
        Variant::RustInsert => timed(|| {
            for _ in 0..items {
                buffer
                    .insert(Box::from(bytes))
                    .expect("open, and block waits for room");
            }
        }),
        _ => {
            let mut p = buffer.producer();
            timed(|| {
                for _ in 0..items {
                    p.insert(Box::from(bytes))
                        .expect("open, and block waits for room");
                }
            })
        }
    };
    let report = buffer.close(Duration::from_secs(60));
    assert_eq!(report.counts.delivered, items);
    assert_eq!(counted.load(Ordering::Relaxed), items);
    times
}

/// The C sink: counts the items into the `AtomicU64` behind `user_data`.
unsafe extern "C" fn count(
    user_data: *mut c_void,
    _items: *const spw_item,
    n: usize,
    _info: *const spw_flush_info,
) -> c_int {
    // SAFETY: `run_c` passes a pointer to an AtomicU64 that outlives the
    // buffer (spw_buffer_free returns only once no callback runs).
    let counted = unsafe { &*user_data.cast::<AtomicU64>() };
    counted.fetch_add(n as u64, Ordering::Relaxed);
    0
}

fn ok(st: spw_status) {
    assert_eq!(st, spw_status::SPW_OK);
}

fn run_c(variant: Variant, items: u64) -> (Duration, Option<Duration>) {
    let counted = AtomicU64::new(0);
    let cfg = spw_config_new();
    for (k, v) in [
        (c"max_size", c"1000"),
        (c"capacity", c"100000"),
        (c"flush_interval", c"1s"),
        (c"workers", c"1"),
    ] {
        // SAFETY: cfg is live; both strings are NUL-terminated literals.
        ok(unsafe { spw_config_set(cfg, k.as_ptr(), v.as_ptr()) });
    }
    let mut buf: *mut spw_buffer = core::ptr::null_mut();
    let user_data = (&counted as *const AtomicU64).cast_mut().cast::<c_void>();
    // SAFETY: cfg is live, `count` keeps spw_flush_fn's promises, user_data
    // outlives the buffer (freed below), and `buf` is writable.
    ok(unsafe { spw_buffer_new(cfg, Some(count), user_data, &mut buf) });
    // SAFETY: cfg is live and not used again.
    unsafe { spw_config_free(cfg) };
    let bytes: &[u8] = black_box(ITEM);
    let times = match variant {
        Variant::CInsert => timed(|| {
            for _ in 0..items {
                // SAFETY: buf is live; bytes is readable for its length.
                ok(unsafe { spw_buffer_insert(buf, bytes.as_ptr().cast(), bytes.len()) });
            }
        }),
        _ => {
            let mut p: *mut spw_producer = core::ptr::null_mut();
            // SAFETY: buf is live and p writable.
            ok(unsafe { spw_buffer_producer(buf, &mut p) });
            let times = timed(|| {
                for _ in 0..items {
                    // SAFETY: p is live and used by this thread only.
                    ok(unsafe { spw_producer_insert(p, bytes.as_ptr().cast(), bytes.len()) });
                }
            });
            // SAFETY: p is live and not used again; its items stay with the buffer.
            unsafe { spw_producer_free(p) };
            times
        }
    };
    // SAFETY: buf is live and not used again; free closes it (flushing
    // everything) and returns once no callback runs.
    unsafe { spw_buffer_free(buf) };
    assert_eq!(counted.load(Ordering::Relaxed), items);
    times
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    common::print_machine("ffi");
    let items = env_or("SPILLWAY_BENCH_ITEMS", 2_000_000).max(1);
    let runs = env_or("SPILLWAY_BENCH_RUNS", 7).max(1) as usize;
    println!(
        "C ABI insert against the Rust call it wraps: {items} items of {} bytes, \
         one inserting thread, median of {runs} runs",
        ITEM.len()
    );
    let mut wall: Vec<Vec<Duration>> = vec![Vec::new(); Variant::ALL.len()];
    let mut cpu: Vec<Vec<Duration>> = vec![Vec::new(); Variant::ALL.len()];
    for _ in 0..runs {
        for (i, &v) in Variant::ALL.iter().enumerate() {
            let (w, c) = match v {
                Variant::RustInsert | Variant::RustProducer => run_rust(v, items),
                Variant::CInsert | Variant::CProducer => run_c(v, items),
            };
            wall[i].push(w);
            if let Some(c) = c {
                cpu[i].push(c);
            }
        }
    }
    let per_item = |d: Duration| d.as_secs_f64() * 1e9 / items as f64;
    let medians: Vec<(f64, Option<f64>)> = (0..Variant::ALL.len())
        .map(|i| {
            let c = (cpu[i].len() == runs).then(|| per_item(median(cpu[i].clone())));
            (per_item(median(wall[i].clone())), c)
        })
        .collect();
    println!(
        "{:<22} {:>12} {:>12} {:>14} {:>14}",
        "call", "wall ns/item", "cpu ns/item", "wall vs Rust", "cpu vs Rust"
    );
    for (i, &v) in Variant::ALL.iter().enumerate() {
        let peer = Variant::ALL
            .iter()
            .position(|&p| p == v.rust_peer())
            .expect("every variant has a Rust peer");
        let (w, c) = medians[i];
        let (pw, pc) = medians[peer];
        let cpu_text = c.map_or("-".to_string(), |c| format!("{c:.1}"));
        let cpu_ratio = c
            .zip(pc)
            .map_or("-".to_string(), |(c, pc)| format!("{:.2}x", c / pc));
        println!(
            "{:<22} {:>12.1} {:>12} {:>13.2}x {:>14}",
            v.name(),
            w,
            cpu_text,
            w / pw,
            cpu_ratio
        );
    }
}
