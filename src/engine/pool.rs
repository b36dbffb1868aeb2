//! The engine's work queue and flusher threads: tasks queued by partition,
//! run by a bounded pool (or, for a manual engine, by whoever assists).
//!
//! A worker stuck in a run that its task gave up on can be detached
//! ([`Pool::detach`]): it leaves the pool once that run returns, and a
//! replacement takes its place, so `workers` threads keep taking work. At
//! most `workers` detached threads may be alive at once; past that, a stuck
//! run simply keeps its worker.
//!
//! A worker that runs out of work after a run queued with `poll_after`
//! polls the queue for `PARK_AFTER` before it sleeps; after any other run it
//! sleeps at once. A producer handle asks for a drain every `max_size`
//! items, a few microseconds apart when it is busy, and its ring holds only
//! two batches: a worker that slept after each drain would leave the ring to
//! fill (and the producer to stall) while it woke. A run for a `Buffer::insert`
//! has no such ring behind it (the pending buffer holds `capacity` items),
//! so there polling only burned the other core: measured on an idle
//! machine (2026-12-03), polling after every run raised CPU per insert from
//! about 40 to 56 ns and left its throughput where it was, while the
//! producer handle ran at 85–90 M/s with it against 52–60 without.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::backoff::{spin_then_yield, PARK_AFTER};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::rc::Arc;
use crate::sync::thread::{current, JoinHandle};
use crate::sync::{Condvar, Mutex};

use super::Task;

/// The flusher thread a run happens on, as [`Task::run`] is told it: what
/// [`Engine::detach`](super::Engine::detach) takes to replace that thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkerId(pub(crate) usize);

/// A run waiting for a worker.
struct Queued {
    task: Arc<dyn Task>,
    partition: u32,
    /// Whether the worker that runs it polls for more before sleeping.
    poll_after: bool,
}

#[derive(Default)]
struct WorkQueue {
    tasks: VecDeque<Queued>,
    idle: usize,
    stopping: bool,
    /// Indices of the workers that have left their loop.
    exited: Vec<usize>,
    /// Workers that leave once their current run returns (not yet exited).
    detached: Vec<usize>,
    /// The next worker index to hand out.
    next_index: usize,
    /// How many times a worker polled before sleeping.
    #[cfg(test)]
    polls: usize,
}

/// The queue of pending runs and the threads that take from it.
pub(crate) struct Pool {
    work: Mutex<WorkQueue>,
    /// `work.tasks.len()`, for a polling worker to read without the lock
    /// (a hint: what it finds is taken under the lock).
    queued: AtomicUsize,
    work_ready: Condvar,
    worker_exited: Condvar,
    /// How many flusher threads the pool was built for (0: manual).
    pub(crate) workers: usize,
    /// Every worker thread not yet joined, by index.
    pub(crate) threads: Mutex<Vec<(usize, JoinHandle<()>)>>,
}

impl Pool {
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            work: Mutex::new(WorkQueue {
                next_index: workers,
                ..WorkQueue::default()
            }),
            queued: AtomicUsize::new(0),
            work_ready: Condvar::new(),
            worker_exited: Condvar::new(),
            workers,
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Queues a run of `task` for `partition`; wakes a worker only if one is
    /// idle. With `poll_after`, the worker that takes it polls the queue for
    /// `PARK_AFTER` once it runs out of work, instead of sleeping at once.
    pub(crate) fn schedule(&self, task: Arc<dyn Task>, partition: u32, poll_after: bool) {
        let mut q = self.work.lock();
        if Self::all_gone(&q, self.workers) {
            // No worker is left to run it: kept, it would be a reference
            // cycle (task -> engine -> queue -> task) that nothing frees.
            drop(q);
            drop(task);
            return;
        }
        q.tasks.push_back(Queued {
            task,
            partition,
            poll_after,
        });
        self.queued.store(q.tasks.len(), Ordering::Relaxed);
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
            let next = self.pop(&mut self.work.lock());
            let Some(Queued {
                task, partition, ..
            }) = next
            else {
                return ran;
            };
            task.run(partition, None);
            ran += 1;
        }
    }

    /// Takes the oldest queued run.
    fn pop(&self, q: &mut WorkQueue) -> Option<Queued> {
        let next = q.tasks.pop_front();
        self.queued.store(q.tasks.len(), Ordering::Relaxed);
        next
    }

    pub(crate) fn worker_loop(&self, index: usize) {
        let mut q = self.work.lock();
        // Whether to poll the queue before sleeping: the last run asked for
        // it, and this worker has not polled since.
        let mut poll = false;
        loop {
            if q.detached.contains(&index) {
                break;
            }
            if let Some(Queued {
                task,
                partition,
                poll_after,
            }) = self.pop(&mut q)
            {
                poll = poll_after;
                drop(q);
                // Tasks catch their own panics (a buffer catches its sink's);
                // this only keeps a worker alive through a bug, so one bad run
                // cannot shrink the pool.
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    task.run(partition, Some(WorkerId(index)))
                }));
                drop(task);
                q = self.work.lock();
                continue;
            }
            if q.stopping {
                break;
            }
            if poll && !cfg!(loom) {
                // Not counted idle meanwhile: `schedule` does not wake us.
                poll = false;
                #[cfg(test)]
                {
                    q.polls += 1;
                }
                drop(q);
                spin_then_yield(PARK_AFTER, None, || self.queued.load(Ordering::Relaxed) > 0);
                q = self.work.lock();
                continue;
            }
            q.idle += 1;
            self.work_ready.wait(&mut q);
            q.idle -= 1;
        }
        q.detached.retain(|&i| i != index);
        q.exited.push(index);
        let orphans = if Self::all_gone(&q, self.workers) {
            std::mem::take(&mut q.tasks)
        } else {
            VecDeque::new()
        };
        drop(q);
        self.worker_exited.notify_all();
        drop(orphans);
    }

    /// The pool is stopping and every worker it ever started has exited.
    fn all_gone(q: &WorkQueue, workers: usize) -> bool {
        workers > 0 && q.stopping && q.exited.len() >= q.next_index
    }

    /// Marks worker `id` to leave the pool once its current run returns, and
    /// reserves the index of its replacement, which the caller starts (and
    /// hands to [`Self::adopt`], or to [`Self::undetach`] if it could not).
    /// `None` when the pool is stopping, `id` already left or was detached,
    /// or `workers` detached threads are alive already.
    pub(crate) fn detach(&self, id: WorkerId) -> Option<usize> {
        let mut q = self.work.lock();
        let gone = q.exited.contains(&id.0) || q.detached.contains(&id.0);
        if q.stopping || gone || q.detached.len() >= self.workers {
            return None;
        }
        q.detached.push(id.0);
        let index = q.next_index;
        q.next_index += 1;
        Some(index)
    }

    /// The replacement for `id` could not start: `id` stays in the pool.
    pub(crate) fn undetach(&self, id: WorkerId) {
        self.work.lock().detached.retain(|&i| i != id.0);
    }

    /// Keeps the handle of a worker started after the pool was built.
    pub(crate) fn adopt(&self, index: usize, handle: JoinHandle<()>) {
        self.threads.lock().push((index, handle));
    }

    /// Detached workers still running their abandoned run.
    pub(crate) fn detached(&self) -> usize {
        self.work.lock().detached.len()
    }

    /// Worker threads not yet exited, detached ones included.
    pub(crate) fn live(&self) -> usize {
        let handles: Vec<usize> = self.threads.lock().iter().map(|(i, _)| *i).collect();
        let q = self.work.lock();
        handles.iter().filter(|i| !q.exited.contains(i)).count()
    }

    /// Stops the threads (the caller has stopped the timer). Workers finish
    /// what is queued first, and every worker that stops by `deadline` is
    /// joined. A worker still stuck in a run that never returns (detached or
    /// not) is left running so shutdown never hangs; its handle stays, for
    /// [`Self::join_all`] or a later shutdown. Idempotent. When the last
    /// reference to the engine goes on one of its own threads (a task held
    /// it), that thread neither waits for nor joins itself.
    pub(crate) fn shutdown(&self, deadline: Instant) {
        self.work.lock().stopping = true;
        self.work_ready.notify_all();
        self.join_until(Some(deadline), false);
    }

    /// Waits until every worker but the calling one has exited, detached ones
    /// included, and joins them. Call after [`Self::shutdown`], once nothing
    /// can keep a run from returning.
    pub(crate) fn join_all(&self) {
        self.join_until(None, true);
    }

    /// Waits (until `deadline`, if any) for the workers to exit, detached
    /// ones only when `detached` is set, then joins every one that did.
    fn join_until(&self, deadline: Option<Instant>, detached: bool) {
        let me = current().id();
        let waited: Vec<usize> = self
            .threads
            .lock()
            .iter()
            .filter(|(_, h)| h.thread().id() != me)
            .map(|(i, _)| *i)
            .collect();
        let mut q = self.work.lock();
        loop {
            let missing = waited
                .iter()
                .any(|i| !q.exited.contains(i) && (detached || !q.detached.contains(i)));
            if !missing {
                break;
            }
            match deadline {
                Some(at) => {
                    if self.worker_exited.wait_until(&mut q, at).timed_out() {
                        break;
                    }
                }
                None => self.worker_exited.wait(&mut q),
            }
        }
        let exited = q.exited.clone();
        let orphans = if Self::all_gone(&q, self.workers) {
            std::mem::take(&mut q.tasks)
        } else {
            VecDeque::new()
        };
        drop(q);
        drop(orphans);
        let done: Vec<JoinHandle<()>> = {
            let mut threads = self.threads.lock();
            let (done, left): (Vec<_>, Vec<_>) = std::mem::take(&mut *threads)
                .into_iter()
                .partition(|(i, h)| exited.contains(i) && h.thread().id() != me);
            *threads = left;
            done.into_iter().map(|(_, h)| h).collect()
        };
        for h in done {
            let _ = h.join();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::{Pool, Task, WorkerId};
    use crate::engine::TimerKind;
    use crate::sync::rc::Arc;
    use crate::sync::Mutex;

    /// A task that reports each run on a channel.
    struct Signal(Mutex<mpsc::Sender<()>>);

    impl Task for Signal {
        fn run(&self, _partition: u32, _worker: Option<WorkerId>) {
            let _ = self.0.lock().send(());
        }
        fn fire(&self, _partition: u32, _kind: TimerKind, _gen: u64) {}
    }

    /// Waits until the pool's only worker sleeps; returns how many times
    /// workers polled before sleeping so far.
    fn polls_once_asleep(pool: &Pool) -> usize {
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let q = pool.work.lock();
            if q.idle == 1 {
                return q.polls;
            }
            drop(q);
            assert!(Instant::now() < give_up, "the worker never went to sleep");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_worker_polls_before_sleeping_only_after_a_run_that_asked_for_it() {
        let pool = Arc::new(Pool::new(1));
        let worker = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.worker_loop(0))
        };
        pool.adopt(0, worker);
        let (tx, ran) = mpsc::channel();
        let task: Arc<dyn Task> = Arc::new(Signal(Mutex::new(tx)));
        // Queues one run, waits for it and for the worker to sleep again;
        // returns the polls so far.
        let run = |poll_after| {
            pool.schedule(Arc::clone(&task), 0, poll_after);
            ran.recv_timeout(Duration::from_secs(30)).expect("the run");
            polls_once_asleep(&pool)
        };

        assert_eq!(polls_once_asleep(&pool), 0, "nothing ran yet");
        assert_eq!(run(false), 0, "a plain run: straight to sleep");
        assert_eq!(run(true), 1, "polled once, then slept");
        assert_eq!(run(false), 1, "the next plain run polls no more");

        pool.shutdown(Instant::now() + Duration::from_secs(30));
        assert_eq!(pool.live(), 0);
    }
}
