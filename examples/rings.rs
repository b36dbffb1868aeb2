//! Pushes a million items through each of spillway's rings, producer and
//! consumer on different threads, checks that every item arrived once and in
//! order, and prints the throughput.
//!
//! ```sh
//! cargo run --release --example rings [ITEMS]
//! ```

use std::thread;
use std::time::{Duration, Instant};

use spillway::ring::{spsc, LockingRing};

fn rate(items: u64, took: Duration) -> String {
    format!("{:>7.1} M items/s", items as f64 / took.as_secs_f64() / 1e6)
}

fn spsc_one_at_a_time(items: u64) -> Duration {
    let (mut tx, mut rx) = spsc::channel::<u64>(4096);
    let start = Instant::now();
    let producer = thread::spawn(move || {
        for i in 0..items {
            tx.push(i).expect("the consumer outlives the producer");
        }
    });
    for want in 0..items {
        assert_eq!(rx.pop(), Ok(want), "spsc: out of order or lost");
    }
    producer.join().expect("producer thread");
    start.elapsed()
}

fn spsc_batches(items: u64) -> Duration {
    let (mut tx, mut rx) = spsc::channel::<u64>(4096);
    let start = Instant::now();
    let producer = thread::spawn(move || {
        let mut next = 0;
        let mut chunk = [0u64; 64];
        while next < items {
            let n = (items - next).min(64) as usize;
            for (k, slot) in chunk[..n].iter_mut().enumerate() {
                *slot = next + k as u64;
            }
            let mut sent = 0;
            while sent < n {
                sent += tx.push_slice(&chunk[sent..n]);
                if sent < n {
                    tx.wait_for_slots(1, None).expect("consumer alive");
                }
            }
            next += n as u64;
        }
    });
    let mut want = 0;
    let mut got = Vec::with_capacity(64);
    while want < items {
        got.clear();
        if rx.pop_batch(&mut got, 64).is_err() {
            rx.wait_for_len(1, None).expect("producer alive until done");
            continue;
        }
        for &v in &got {
            assert_eq!(v, want, "spsc batches: out of order or lost");
            want += 1;
        }
    }
    producer.join().expect("producer thread");
    start.elapsed()
}

fn locking(items: u64) -> Duration {
    let ring = std::sync::Arc::new(LockingRing::<u64>::new(4096));
    let start = Instant::now();
    let tx = ring.clone();
    let producer = thread::spawn(move || {
        for i in 0..items {
            tx.push(i).expect("ring open");
        }
        tx.close();
    });
    let mut want = 0;
    let mut got = Vec::with_capacity(64);
    loop {
        got.clear();
        match ring.pop_batch(&mut got, 64) {
            Ok(_) => {
                for &v in &got {
                    assert_eq!(v, want, "locking ring: out of order or lost");
                    want += 1;
                }
            }
            Err(spillway::ring::TryPopError::Empty) => match ring.pop() {
                Ok(v) => {
                    assert_eq!(v, want, "locking ring: out of order or lost");
                    want += 1;
                }
                Err(_) => break,
            },
            Err(spillway::ring::TryPopError::Closed) => break,
        }
    }
    assert_eq!(want, items, "locking ring: lost items");
    producer.join().expect("producer thread");
    start.elapsed()
}

fn main() {
    let items: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ITEMS must be a whole number"))
        .unwrap_or(1_000_000);
    println!("{items} u64 items per ring, producer and consumer on two threads, order checked:");
    println!(
        "  spsc, one at a time     {}",
        rate(items, spsc_one_at_a_time(items))
    );
    println!(
        "  spsc, batches of 64     {}",
        rate(items, spsc_batches(items))
    );
    println!("  LockingRing, pop_batch  {}", rate(items, locking(items)));
}
