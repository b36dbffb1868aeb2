//! The engine's work queue and flusher threads: tasks queued by partition,
//! run by a bounded pool (or, for a manual engine, by whoever assists).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::sync::rc::Arc;
use crate::sync::thread::{current, JoinHandle};
use crate::sync::{Condvar, Mutex};

use super::Task;

#[derive(Default)]
struct WorkQueue {
    tasks: VecDeque<(Arc<dyn Task>, u32)>,
    idle: usize,
    stopping: bool,
    /// Indices of the workers that have left their loop.
    exited: Vec<usize>,
}

/// The queue of pending runs and the threads that take from it.
pub(crate) struct Pool {
    work: Mutex<WorkQueue>,
    work_ready: Condvar,
    worker_exited: Condvar,
    /// How many flusher threads the pool was built for (0: manual).
    pub(crate) workers: usize,
    /// Every thread of the engine (workers first, then the timer).
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Pool {
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            work: Mutex::new(WorkQueue::default()),
            work_ready: Condvar::new(),
            worker_exited: Condvar::new(),
            workers,
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Queues a run of `task` for `partition`; wakes a worker only if one is
    /// idle.
    pub(crate) fn schedule(&self, task: Arc<dyn Task>, partition: u32) {
        let mut q = self.work.lock();
        q.tasks.push_back((task, partition));
        let wake = q.idle > 0;
        drop(q);
        if wake {
            self.work_ready.notify_one();
        }
    }

    /// Runs queued work on the calling thread until none is left. Returns
    /// how many runs it made.
    pub(crate) fn run_queued(&self) -> usize {
        let mut ran = 0;
        loop {
            let next = self.work.lock().tasks.pop_front();
            let Some((task, partition)) = next else {
                return ran;
            };
            task.run(partition);
            ran += 1;
        }
    }

    pub(crate) fn worker_loop(&self, index: usize) {
        let mut q = self.work.lock();
        loop {
            if let Some((task, partition)) = q.tasks.pop_front() {
                drop(q);
                // Tasks catch their own panics (a buffer catches its sink's);
                // this only keeps a worker alive through a bug, so one bad run
                // cannot shrink the pool.
                let _ = catch_unwind(AssertUnwindSafe(|| task.run(partition)));
                q = self.work.lock();
                continue;
            }
            if q.stopping {
                q.exited.push(index);
                drop(q);
                self.worker_exited.notify_all();
                return;
            }
            q.idle += 1;
            self.work_ready.wait(&mut q);
            q.idle -= 1;
        }
    }

    /// Stops the threads (the caller has stopped the timer). Workers finish
    /// what is queued first, and every thread that stops is joined, so none
    /// outlives the engine; only a worker still stuck in a task that never
    /// returns is left behind (detached) once `deadline` passes, so shutdown
    /// never hangs. Idempotent. When the last reference to the engine goes on
    /// one of its own threads (a task held it), that thread neither waits for
    /// nor joins itself.
    pub(crate) fn shutdown(&self, deadline: Instant) {
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.threads.lock());
        if handles.is_empty() {
            return; // a manual engine, or a shutdown that already ran
        }
        let me = current().id();
        let own = handles.iter().position(|h| h.thread().id() == me);
        let workers = handles.len().min(self.workers);
        let expected = workers - usize::from(own.is_some_and(|i| i < workers));
        self.work.lock().stopping = true;
        self.work_ready.notify_all();
        let mut q = self.work.lock();
        while q.exited.len() < expected {
            if self.worker_exited.wait_until(&mut q, deadline).timed_out() {
                break;
            }
        }
        let exited = q.exited.clone();
        drop(q);
        for (i, h) in handles.into_iter().enumerate() {
            let is_timer = i >= workers;
            if Some(i) != own && (is_timer || exited.contains(&i)) {
                let _ = h.join();
            }
        }
    }
}
