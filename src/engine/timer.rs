//! The engine's one timer thread: a heap of deadlines for every partition of
//! every buffer (interval flushes and retry backoffs), not a thread each.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::sync::rc::Weak;
use crate::sync::{Condvar, Mutex};

use super::Task;

/// What a deadline is for; the partition checks `gen` to ignore stale ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// The partition's flush interval may have run out.
    Interval,
    /// A failed batch's backoff has run out.
    Retry,
    /// A call's time limit has run out (the task may give up on the run and
    /// have its thread replaced, see `Engine::detach`).
    Watchdog,
}

struct TimerEntry {
    at: Instant,
    seq: u64,
    task: Weak<dyn Task>,
    partition: u32,
    kind: TimerKind,
    gen: u64,
}

// Ordered so that BinaryHeap (a max-heap) pops the earliest deadline first;
// `seq` keeps entries with equal deadlines in arming order.
impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for TimerEntry {}

#[derive(Default)]
struct TimerQueue {
    heap: BinaryHeap<TimerEntry>,
    next_seq: u64,
    stopping: bool,
}

pub(crate) struct Timer {
    queue: Mutex<TimerQueue>,
    changed: Condvar,
}

impl Timer {
    pub(crate) fn new() -> Self {
        Self {
            queue: Mutex::new(TimerQueue::default()),
            changed: Condvar::new(),
        }
    }

    /// Arms a deadline. Wakes the timer thread only when the new deadline is
    /// the earliest, so re-arming far-off deadlines costs no wake-up.
    pub(crate) fn arm(
        &self,
        at: Instant,
        task: Weak<dyn Task>,
        partition: u32,
        kind: TimerKind,
        gen: u64,
    ) {
        let mut q = self.queue.lock();
        if q.stopping {
            return;
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        let earliest = q.heap.peek().is_none_or(|top| at < top.at);
        q.heap.push(TimerEntry {
            at,
            seq,
            task,
            partition,
            kind,
            gen,
        });
        drop(q);
        if earliest {
            self.changed.notify_one();
        }
    }

    pub(crate) fn stop(&self) {
        self.queue.lock().stopping = true;
        self.changed.notify_all();
    }

    /// Pops every entry due at `now` and fires it (outside the lock).
    /// Returns how many fired; used by manual engines.
    pub(crate) fn fire_due(&self, now: Instant) -> usize {
        let mut fired = 0;
        loop {
            let mut q = self.queue.lock();
            let due = q.heap.peek().is_some_and(|top| top.at <= now);
            if !due {
                return fired;
            }
            let Some(entry) = q.heap.pop() else {
                return fired;
            };
            drop(q);
            if let Some(task) = entry.task.upgrade() {
                task.fire(entry.partition, entry.kind, entry.gen);
            }
            fired += 1;
        }
    }

    /// The earliest armed deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.lock().heap.peek().map(|e| e.at)
    }

    /// The timer thread's loop: fire every due entry (outside the lock), then
    /// sleep until the earliest deadline or until an earlier one is armed.
    pub(crate) fn run(&self) {
        let timer = self;
        let mut q = timer.queue.lock();
        loop {
            if q.stopping {
                return;
            }
            let now = Instant::now();
            match q.heap.peek() {
                Some(top) if top.at <= now => {
                    let Some(entry) = q.heap.pop() else { continue };
                    drop(q);
                    if let Some(task) = entry.task.upgrade() {
                        task.fire(entry.partition, entry.kind, entry.gen);
                    }
                    q = timer.queue.lock();
                }
                Some(top) => {
                    let at = top.at;
                    timer.changed.wait_until(&mut q, at);
                }
                None => timer.changed.wait(&mut q),
            }
        }
    }
}
