//! The engine: a scheduler. One timer thread and a bounded pool of flusher
//! threads, shared by many named tasks, with typed lookup by name.
//!
//! The engine knows nothing of what it runs: a `Task` is run for a
//! partition number when scheduled, and fired when a deadline it armed comes;
//! a `Closable` is what [`Engine::stop`] closes. Buffers are built on an
//! engine by [`Buffer::builder`](crate::Buffer::builder) with
//! `.engine(&engine)`; a buffer built without one gets a private engine.
//!
//! [`Engine::manual`] builds an engine with no threads and a clock that only
//! moves when told to: flushes run when the test calls
//! [`Engine::run_pending`] or [`Engine::advance`], so time-based behaviour is
//! tested exactly, without sleeps.

mod clock;
mod pool;
mod registry;
mod timer;

use std::any::Any;
use std::fmt;
use std::time::{Duration, Instant};

use crate::stats::CloseReport;
use crate::sync::rc::{Arc, Weak};
use crate::sync::thread::{current, Builder, JoinHandle};
use crate::sync::Mutex;

use clock::Clock;
use pool::Pool;
pub(crate) use pool::WorkerId;
pub use registry::RegisterError;
use registry::Registry;
use timer::Timer;
pub(crate) use timer::TimerKind;

/// Work the engine runs: a run for a partition when scheduled, and a firing
/// when a deadline armed for it comes.
pub(crate) trait Task: Send + Sync + 'static {
    /// Runs the work queued for `partition`: on flusher thread `worker`, or
    /// (`None`) on a thread that assists a manual engine.
    fn run(&self, partition: u32, worker: Option<WorkerId>);
    /// A deadline armed with [`Engine::arm`] came (on the timer thread).
    fn fire(&self, partition: u32, kind: TimerKind, gen: u64);
}

/// What the engine needs to close a registered object, whatever it holds.
pub(crate) trait Closable: Send + Sync + 'static {
    /// Starts closing; returns at once, so many close in parallel.
    fn begin_close(&self);
    /// Waits for the close begun by `begin_close`, up to `deadline`.
    fn finish_close(&self, deadline: Instant) -> CloseReport;
}

pub(crate) struct EngineInner {
    pool: Pool,
    timer: Timer,
    /// The timer thread, until shutdown joins it.
    timer_thread: Mutex<Option<JoinHandle<()>>>,
    clock: Clock,
    registry: Registry,
}

/// Starts flusher thread `index` of the engine `inner`.
fn spawn_worker(inner: &Arc<EngineInner>, index: usize) -> std::io::Result<JoinHandle<()>> {
    let me = Arc::clone(inner);
    Builder::new()
        .name(format!("spillway-flush-{index}"))
        .spawn(move || me.pool.worker_loop(index))
}

impl EngineInner {
    fn is_manual(&self) -> bool {
        self.pool.workers == 0
    }

    /// Stops the timer, then the pool (see [`Pool::shutdown`]).
    fn shutdown(&self, deadline: Instant) {
        self.timer.stop();
        let timer = self.timer_thread.lock().take();
        if let Some(h) = timer {
            if h.thread().id() == current().id() {
                drop(h); // the last handle went on the timer thread itself
            } else {
                let _ = h.join();
            }
        }
        self.pool.shutdown(deadline);
    }
}

/// Why an engine could not be built.
#[derive(Debug)]
pub enum EngineError {
    /// `workers` was 0 (use [`Engine::manual`] for an engine without threads).
    NoWorkers,
    /// The operating system refused a thread.
    Spawn(std::io::Error),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoWorkers => f.write_str("an engine needs at least 1 worker (`workers` >= 1)"),
            Self::Spawn(e) => write!(f, "could not start an engine thread: {e}"),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn(e) => Some(e),
            Self::NoWorkers => None,
        }
    }
}

/// Keeps the threads running while any engine handle lives; the last one to
/// go stops them.
struct EngineHandle {
    inner: Arc<EngineInner>,
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.inner.shutdown(Instant::now() + Duration::from_secs(5));
    }
}

/// Many named buffers sharing one timer thread and a bounded pool of
/// flusher threads.
///
/// ```
/// use spillway::{Buffer, BufferConfig, Engine, FlushContext, SinkError};
/// use std::time::Duration;
///
/// let engine = Engine::new(2).unwrap();
/// let logs = Buffer::builder(BufferConfig::new().name("logs"))
///     .sink(|b: &[String], _: &FlushContext<'_>| Ok::<(), SinkError>(println!("{} log lines", b.len())))
///     .engine(&engine)
///     .build()
///     .unwrap();
/// logs.insert("hello".to_string()).unwrap();
/// // Typed lookup by name, from anywhere that holds the engine.
/// let again = engine.get::<String>("logs").unwrap();
/// again.insert("again".to_string()).unwrap();
/// let reports = engine.stop(Duration::from_secs(5));
/// assert!(reports.iter().all(|(_, r)| r.undelivered == 0));
/// ```
#[derive(Clone)]
pub struct Engine {
    handle: Arc<EngineHandle>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with `workers` flusher threads and one timer thread.
    ///
    /// # Errors
    /// [`EngineError::NoWorkers`] for 0, [`EngineError::Spawn`] if a thread
    /// cannot be started.
    pub fn new(workers: usize) -> Result<Self, EngineError> {
        if workers == 0 {
            return Err(EngineError::NoWorkers);
        }
        let engine = Self::with_parts(workers, Clock::Real);
        let inner = &engine.handle.inner;
        for i in 0..workers {
            match spawn_worker(inner, i) {
                Ok(h) => inner.pool.adopt(i, h),
                Err(e) => return Err(EngineError::Spawn(e)),
            }
        }
        let me = Arc::clone(inner);
        match Builder::new()
            .name("spillway-timer".into())
            .spawn(move || me.timer.run())
        {
            Ok(h) => *inner.timer_thread.lock() = Some(h),
            Err(e) => return Err(EngineError::Spawn(e)),
        }
        Ok(engine)
    }

    /// An engine with no threads and a manual clock, for deterministic tests:
    /// flushes run on the thread that calls [`run_pending`](Self::run_pending),
    /// [`advance`](Self::advance), or waits in `sync_flush`/`close`.
    ///
    /// ```
    /// use spillway::{Buffer, BufferConfig, Engine, FlushContext, SinkError};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let engine = Engine::manual();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let buf = Buffer::builder(BufferConfig::new().max_size(100).flush_interval(Duration::from_secs(1)))
    ///     .sink(move |b: &[u32], _: &FlushContext<'_>| Ok::<(), SinkError>(s.lock().unwrap().extend_from_slice(b)))
    ///     .engine(&engine)
    ///     .build()
    ///     .unwrap();
    /// buf.insert(7).unwrap();
    /// engine.advance(Duration::from_millis(999));
    /// assert!(seen.lock().unwrap().is_empty());
    /// engine.advance(Duration::from_millis(1));
    /// assert_eq!(*seen.lock().unwrap(), [7]);
    /// ```
    pub fn manual() -> Self {
        Self::with_parts(0, Clock::manual())
    }

    fn with_parts(workers: usize, clock: Clock) -> Self {
        Self {
            handle: Arc::new(EngineHandle {
                inner: Arc::new(EngineInner {
                    pool: Pool::new(workers),
                    timer: Timer::new(),
                    timer_thread: Mutex::new(None),
                    clock,
                    registry: Registry::new(),
                }),
            }),
        }
    }

    fn inner(&self) -> &EngineInner {
        &self.handle.inner
    }

    /// How many flusher threads this engine runs (0 for a manual engine).
    pub fn workers(&self) -> usize {
        self.inner().pool.workers
    }

    /// The engine's clock: real time, or a manual engine's.
    pub(crate) fn now(&self) -> Instant {
        self.inner().clock.now()
    }

    /// Whether this engine has no threads (see [`Engine::manual`]).
    pub(crate) fn is_manual(&self) -> bool {
        self.inner().is_manual()
    }

    /// Queues a run of `task` for `partition` on the pool. `poll_after`:
    /// another run is likely within microseconds, and coming late would
    /// stall someone (a producer whose small ring fills), so the worker
    /// polls for it before sleeping; otherwise it sleeps at once.
    pub(crate) fn schedule(&self, task: Arc<dyn Task>, partition: u32, poll_after: bool) {
        self.inner().pool.schedule(task, partition, poll_after);
    }

    /// Replaces flusher thread `worker`, stuck in a run its task gave up on:
    /// it leaves the pool once that run returns, and a new thread takes its
    /// place now. Returns false, changing nothing, when the engine is
    /// stopping, `worker` already left, or `workers` abandoned threads are
    /// alive already (the bound): then the run keeps its thread.
    pub(crate) fn detach(&self, worker: WorkerId) -> bool {
        let inner = &self.handle.inner;
        let Some(index) = inner.pool.detach(worker) else {
            return false;
        };
        match spawn_worker(inner, index) {
            Ok(h) => {
                inner.pool.adopt(index, h);
                true
            }
            Err(_) => {
                inner.pool.undetach(worker);
                false
            }
        }
    }

    /// Flusher threads that were replaced while stuck in a call (see
    /// `BufferConfig::flush_timeout`) and are still running it, now. At most
    /// [`workers`](Self::workers).
    pub fn abandoned_threads(&self) -> usize {
        self.inner().pool.detached()
    }

    /// Flusher threads alive now, abandoned ones included: at most twice
    /// [`workers`](Self::workers) (plus the one timer thread, not counted).
    pub fn live_threads(&self) -> usize {
        self.inner().pool.live()
    }

    /// After [`shutdown`](Self::shutdown): waits until every flusher thread
    /// has exited, abandoned ones included, and joins them. For a caller
    /// that knows no run can still be stuck (a C buffer whose callback gate
    /// is shut).
    pub(crate) fn join_threads(&self) {
        self.inner().pool.join_all();
    }

    /// Arms a deadline: at `at`, the timer calls `task.fire(partition, kind,
    /// gen)` if the task is still alive.
    pub(crate) fn arm(
        &self,
        at: Instant,
        task: Weak<dyn Task>,
        partition: u32,
        kind: TimerKind,
        gen: u64,
    ) {
        self.inner().timer.arm(at, task, partition, kind, gen);
    }

    /// Runs queued work on the calling thread. A thread that waits for
    /// flushes calls this, so that a manual engine (no workers) makes
    /// progress; with workers it does nothing.
    pub(crate) fn assist(&self) -> usize {
        if !self.is_manual() {
            return 0;
        }
        self.inner().pool.run_queued()
    }

    /// Stops the timer and the pool (see [`Engine::stop`]); for a buffer's
    /// private engine, when the buffer closes.
    pub(crate) fn shutdown(&self, deadline: Instant) {
        self.inner().shutdown(deadline);
    }

    /// Registers `name`, with a typed weak handle for [`find`](Self::find)
    /// and what [`stop`](Self::stop) closes.
    pub(crate) fn register(
        &self,
        name: &str,
        typed: Box<dyn Any + Send + Sync>,
        closer: Weak<dyn Closable>,
    ) -> Result<(), RegisterError> {
        self.inner().registry.register(name, typed, closer)
    }

    /// Removes `name` if it still names the object at `at` (a later one may
    /// have taken the name).
    pub(crate) fn unregister(&self, name: &str, at: *const ()) {
        self.inner().registry.unregister(name, at);
    }

    /// The typed handle registered as `name`, if it is of type `W`.
    pub(crate) fn find<W: Any + Clone>(&self, name: &str) -> Option<W> {
        self.inner().registry.find(name)
    }

    /// The names of the buffers registered now, sorted.
    pub fn names(&self) -> Vec<String> {
        self.inner().registry.names()
    }

    /// Closes every buffer in parallel (each flushes what it holds), then
    /// stops the threads. Returns each buffer's report, by name. Within
    /// `timeout` even when a sink never returns.
    pub fn stop(&self, timeout: Duration) -> Vec<(String, CloseReport)> {
        let deadline = Instant::now() + timeout;
        let closers = self.inner().registry.closers();
        // Every buffer starts closing before any is waited for: in parallel.
        for (_, c) in &closers {
            c.begin_close();
        }
        let mut reports: Vec<(String, CloseReport)> = closers
            .iter()
            .map(|(n, c)| (n.clone(), c.finish_close(deadline)))
            .collect();
        reports.sort_by(|a, b| a.0.cmp(&b.0));
        self.shutdown(deadline);
        reports
    }

    /// Runs every queued flush on this thread. For manual engines; an engine
    /// with workers runs them itself, and this returns 0.
    pub fn run_pending(&self) -> usize {
        self.assist()
    }

    /// Moves a manual engine's clock forward by `by`, firing every deadline
    /// that passes in order and running the flushes they cause, as if that
    /// much time had gone by. Returns how many deadlines fired. Does nothing
    /// (returns 0) on an engine with threads: real time moves by itself.
    pub fn advance(&self, by: Duration) -> usize {
        let inner = self.inner();
        if !inner.is_manual() {
            return 0;
        }
        let target = inner.clock.now() + by;
        let mut fired = 0;
        // Step from deadline to deadline, so that a flush re-arming its
        // interval inside the window fires again if it falls due.
        loop {
            self.assist();
            match inner.timer.next_deadline() {
                Some(at) if at <= target => {
                    let now = inner.clock.now();
                    if at > now {
                        inner.clock.advance(at - now);
                    }
                    fired += inner.timer.fire_due(inner.clock.now());
                }
                _ => break,
            }
        }
        let now = inner.clock.now();
        if target > now {
            inner.clock.advance(target - now);
        }
        self.assist();
        fired
    }
}
