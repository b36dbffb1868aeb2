//! The process-wide account of memory held by records, and the gate the
//! reader waits at when it is over budget.
//!
//! Records charge the account when they are made (read from the input, or
//! read back from the spool) and release it when they are dropped, wherever
//! that happens: after delivery, after being spilled to disk, or at close.
//! So the account is exact whatever the buffer did with them, and the reader
//! never has to know.
//!
//! It is global because a record read back from the spool is made by
//! `decode`, which gets no context; the agent runs one pipeline per process.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

static LIVE: AtomicU64 = AtomicU64::new(0);
/// Below this the waiting reader is woken (hysteresis: a quarter under the
/// budget, so it is not woken for every record dropped).
static RESUME_AT: AtomicU64 = AtomicU64::new(u64::MAX);
static WAITING: AtomicBool = AtomicBool::new(false);
static LOCK: Mutex<()> = Mutex::new(());
static WOKEN: Condvar = Condvar::new();

/// Bytes held by records now.
pub fn live() -> u64 {
    LIVE.load(Ordering::SeqCst)
}

pub(crate) fn charge(bytes: u64) {
    LIVE.fetch_add(bytes, Ordering::SeqCst);
}

pub(crate) fn release(bytes: u64) {
    let before = LIVE.fetch_sub(bytes, Ordering::SeqCst);
    let resume_at = RESUME_AT.load(Ordering::Relaxed);
    // Only the release that crosses the mark wakes the reader.
    if before > resume_at && before - bytes <= resume_at && WAITING.load(Ordering::SeqCst) {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        WOKEN.notify_all();
    }
}

/// Waits while records hold more than `budget` bytes, until they hold at
/// most three quarters of it, or `timeout` passes. Returns whether the
/// account is under budget now.
pub fn wait_below(budget: u64, timeout: Duration) -> bool {
    if live() <= budget {
        return true;
    }
    let resume_at = budget - budget / 4;
    RESUME_AT.store(resume_at, Ordering::Relaxed);
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    WAITING.store(true, Ordering::SeqCst);
    // The flag is set before this check, and a release that crosses the mark
    // takes the lock before it notifies: no wake-up is lost.
    let (guard, _) = WOKEN
        .wait_timeout_while(guard, timeout, |_| live() > resume_at)
        .unwrap_or_else(|e| e.into_inner());
    WAITING.store(false, Ordering::SeqCst);
    drop(guard);
    live() <= budget
}
