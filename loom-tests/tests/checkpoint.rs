//! Loom models of the checkpoint's background writer (issue 11 section 5):
//! the wake-up when `max_updates` is reached, and the wake-up at shutdown.
//!
//! The writer thread sleeps on a condition variable until the updates made
//! since its last write reach `max_updates`, or the checkpoint shuts down.
//! A wake-up lost between its check and its wait would leave it asleep for
//! ever: loom reports that as a deadlock, because `wait_for_write` (first
//! model) and `shutdown`'s join (second model) would never return.
//!
//! Loom does not model time, so the interval is `Duration::MAX` ("never by
//! time"): only the two wake-ups can make the writer run. The file itself
//! is written for real, in a directory of its own per execution.
#![cfg(loom)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spillway::checkpoint::Checkpoint;

/// Long enough never to pass while a model runs (and untimed under loom).
const NEVER: Duration = Duration::from_secs(3600);

/// A fresh directory for one execution of a model.
fn fresh_dir(model: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "spillway-loom-checkpoint-{model}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn reaching_max_updates_wakes_the_writer() {
    loom::model(|| {
        let dir = fresh_dir("updates");
        let cp =
            loom::sync::Arc::new(Checkpoint::open(dir.join("cp.yaml"), 2, Duration::MAX).unwrap());
        let seen = cp.write_generation();
        let updater = {
            let cp = cp.clone();
            loom::thread::spawn(move || {
                cp.persist("a", 1, at(1)).unwrap();
                // The second update crosses max_updates: it must wake the
                // writer whether it is already asleep or about to be.
                cp.persist("b", 2, at(2)).unwrap();
            })
        };
        // Returns only once the writer thread wrote, which nothing but the
        // max_updates wake-up can cause here.
        assert_eq!(cp.wait_for_write(seen, NEVER), Some(seen + 1));
        updater.join().unwrap();
        assert!(cp.last_error().is_none());
        let (on_disk, _) = Checkpoint::read(dir.join("cp.yaml")).unwrap();
        let records: Vec<(String, u64)> = on_disk
            .iter()
            .map(|s| (s.name.clone(), s.record_number))
            .collect();
        assert_eq!(records, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        cp.shutdown().unwrap();
        drop(cp);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn shutdown_wakes_the_writer_and_writes_what_is_left() {
    loom::model(|| {
        let dir = fresh_dir("shutdown");
        let cp = loom::sync::Arc::new(
            Checkpoint::open(dir.join("cp.yaml"), 100, Duration::MAX).unwrap(),
        );
        let updater = {
            let cp = cp.clone();
            // One update, far below max_updates: the writer has no reason to
            // run until shutdown, which may come before or after it.
            loom::thread::spawn(move || cp.persist("a", 7, at(7)).is_ok())
        };
        // Joins the writer thread: a lost shutdown wake-up deadlocks here.
        cp.shutdown().unwrap();
        let persisted = updater.join().unwrap();
        let (on_disk, _) = Checkpoint::read(dir.join("cp.yaml")).unwrap();
        let records: Vec<(String, u64)> = on_disk
            .iter()
            .map(|s| (s.name.clone(), s.record_number))
            .collect();
        // Nothing accepted is lost: an update before shutdown is in the final
        // write; one after it was refused (Closed), and is not.
        if persisted {
            assert_eq!(records, [("a".to_owned(), 7)]);
        } else {
            assert!(records.is_empty(), "{records:?}");
        }
        drop(cp);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
