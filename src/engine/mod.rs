//! The engine: one timer thread and a bounded pool of flusher threads shared
//! by many named buffers, with typed lookup by name.
//!
//! A [`Buffer`] built without an engine gets a private
//! one. [`Engine::manual`] builds an engine with no threads and a clock that
//! only moves when told to: flushes run when the test calls
//! [`Engine::run_pending`] or [`Engine::advance`], so time-based behaviour is
//! tested exactly, without sleeps.

mod clock;
pub(crate) mod timer;

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::buffer::{Buffer, BufferError, CloseReport};
use crate::config::BufferConfig;
use crate::observer::Observer;
use crate::sink::Sink;
use crate::sync::rc::{Arc, Weak};
use crate::sync::thread::{current, Builder, JoinHandle};
use crate::sync::{Condvar, Mutex};
use crate::weigh::Weigh;

use clock::Clock;
use timer::Timer;
pub(crate) use timer::TimerKind;

/// Work the engine runs for a buffer: flush a partition, or react to one of
/// its deadlines. Implemented by the buffer's shared core.
pub(crate) trait Task: Send + Sync + 'static {
    fn run(&self, partition: u32);
    fn fire(&self, partition: u32, kind: TimerKind, gen: u64);
}

/// What the engine needs to close a buffer it holds, whatever its item type.
pub(crate) trait Closable: Send + Sync + 'static {
    fn begin_close(&self);
    fn finish_close(&self, deadline: Instant) -> CloseReport;
}

struct RegistryEntry {
    /// A `Weak<BufferHandle<T>>`, recovered by type in [`Engine::get`].
    typed: Box<dyn Any + Send + Sync>,
    closer: Weak<dyn Closable>,
}

#[derive(Default)]
struct WorkQueue {
    tasks: VecDeque<(Arc<dyn Task>, u32)>,
    idle: usize,
    stopping: bool,
    /// Indices of the workers that have left their loop.
    exited: Vec<usize>,
}

pub(crate) struct EngineInner {
    work: Mutex<WorkQueue>,
    work_ready: Condvar,
    worker_exited: Condvar,
    timer: Timer,
    clock: Clock,
    workers: usize,
    registry: Mutex<HashMap<String, RegistryEntry>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl EngineInner {
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    pub(crate) fn is_manual(&self) -> bool {
        self.workers == 0
    }

    /// Queues a partition's flush; wakes a worker only if one is idle.
    pub(crate) fn schedule(&self, task: Arc<dyn Task>, partition: u32) {
        let mut q = self.work.lock();
        q.tasks.push_back((task, partition));
        let wake = q.idle > 0;
        drop(q);
        if wake {
            self.work_ready.notify_one();
        }
    }

    pub(crate) fn arm(
        &self,
        at: Instant,
        task: Weak<dyn Task>,
        partition: u32,
        kind: TimerKind,
        gen: u64,
    ) {
        self.timer.arm(at, task, partition, kind, gen);
    }

    /// Runs queued work on the calling thread. A thread that waits for
    /// flushes calls this, so that a manual engine (no workers) makes
    /// progress; with workers it does nothing.
    pub(crate) fn assist(&self) -> usize {
        if !self.is_manual() {
            return 0;
        }
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

    fn worker_loop(&self, index: usize) {
        let mut q = self.work.lock();
        loop {
            if let Some((task, partition)) = q.tasks.pop_front() {
                drop(q);
                // The buffer catches sink panics itself; this only keeps a
                // worker alive through a bug, so one bad flush cannot shrink
                // the pool.
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

    /// Stops the threads. Workers finish what is queued first, and every
    /// thread that stops is joined, so none outlives the engine; only a
    /// worker still stuck in a sink that never returns is left behind
    /// (detached) once `deadline` passes, so shutdown never hangs. Idempotent.
    /// When the last reference to the engine goes on one of its own threads
    /// (a flush held it), that thread neither waits for nor joins itself.
    pub(crate) fn shutdown_threads(&self, deadline: Instant) {
        self.timer.stop();
        // Workers first, then the timer thread (see `Engine::new`).
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

/// Why an engine could not be built or a buffer registered.
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

/// Keeps the threads running while any engine handle or buffer lives; the
/// last one to go stops them.
pub(crate) struct EngineHandle {
    pub(crate) inner: Arc<EngineInner>,
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.inner
            .shutdown_threads(Instant::now() + Duration::from_secs(5));
    }
}

/// Many named buffers sharing one timer thread and a bounded pool of
/// flusher threads.
///
/// ```
/// use spillway::{BufferConfig, Engine, FlushContext, SinkError};
/// use std::time::Duration;
///
/// let engine = Engine::new(2).unwrap();
/// let logs = engine
///     .buffer::<String>(BufferConfig::new().name("logs"), |b: &[String], _: &FlushContext<'_>| {
///         Ok::<(), SinkError>(println!("{} log lines", b.len()))
///     })
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
    pub(crate) handle: Arc<EngineHandle>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.handle.inner.workers)
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
        let mut threads = Vec::with_capacity(workers + 1);
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| Builder::new().name(name).spawn(f);
        for i in 0..workers {
            let me = Arc::clone(inner);
            match spawn(
                format!("spillway-flush-{i}"),
                Box::new(move || me.worker_loop(i)),
            ) {
                Ok(h) => threads.push(h),
                Err(e) => {
                    inner.threads.lock().extend(threads);
                    return Err(EngineError::Spawn(e));
                }
            }
        }
        let me = Arc::clone(inner);
        match spawn("spillway-timer".into(), Box::new(move || me.timer.run())) {
            Ok(h) => threads.push(h),
            Err(e) => {
                inner.threads.lock().extend(threads);
                return Err(EngineError::Spawn(e));
            }
        }
        inner.threads.lock().extend(threads);
        Ok(engine)
    }

    /// An engine with no threads and a manual clock, for deterministic tests:
    /// flushes run on the thread that calls [`run_pending`](Self::run_pending),
    /// [`advance`](Self::advance), or waits in `sync_flush`/`close`.
    ///
    /// ```
    /// use spillway::{BufferConfig, Engine, FlushContext, SinkError};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let engine = Engine::manual();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let buf = engine
    ///     .buffer::<u32>(
    ///         BufferConfig::new().max_size(100).flush_interval(Duration::from_secs(1)),
    ///         move |b: &[u32], _: &FlushContext<'_>| Ok::<(), SinkError>(s.lock().unwrap().extend_from_slice(b)),
    ///     )
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
                    work: Mutex::new(WorkQueue::default()),
                    work_ready: Condvar::new(),
                    worker_exited: Condvar::new(),
                    timer: Timer::new(),
                    clock,
                    workers,
                    registry: Mutex::new(HashMap::new()),
                    threads: Mutex::new(Vec::new()),
                }),
            }),
        }
    }

    /// How many flusher threads this engine runs (0 for a manual engine).
    pub fn workers(&self) -> usize {
        self.handle.inner.workers
    }

    /// Builds a buffer on this engine, registered under `config.name`.
    ///
    /// # Errors
    /// An invalid configuration, or a name already registered.
    pub fn buffer<T: Weigh + Send + 'static>(
        &self,
        config: BufferConfig,
        sink: impl Sink<T>,
    ) -> Result<Buffer<T>, BufferError> {
        Buffer::build(config, Box::new(sink), None, None, Some(self.clone()))
    }

    /// Like [`buffer`](Self::buffer), with an [`Observer`] for telemetry.
    ///
    /// # Errors
    /// As [`buffer`](Self::buffer).
    pub fn buffer_with_observer<T: Weigh + Send + 'static>(
        &self,
        config: BufferConfig,
        sink: impl Sink<T>,
        observer: Arc<dyn Observer>,
    ) -> Result<Buffer<T>, BufferError> {
        Buffer::build(
            config,
            Box::new(sink),
            Some(observer),
            None,
            Some(self.clone()),
        )
    }

    /// A buffer on this engine that may spill to disk: see
    /// [`Buffer::spilling`].
    ///
    /// # Errors
    /// As [`Buffer::spilling`], or a name already registered.
    pub fn spilling_buffer<T: Weigh + crate::Codec + Send + 'static>(
        &self,
        config: BufferConfig,
        sink: impl Sink<T>,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Buffer<T>, BufferError> {
        Buffer::build(
            config,
            Box::new(sink),
            observer,
            Some(crate::codec::SpillCodec::of()),
            Some(self.clone()),
        )
    }

    pub(crate) fn register<T: Weigh + Send + 'static>(
        &self,
        name: &str,
        typed: Weak<crate::buffer::BufferHandle<T>>,
        closer: Weak<dyn Closable>,
    ) -> Result<(), BufferError> {
        let mut reg = self.handle.inner.registry.lock();
        // A name whose buffer has gone may be taken again.
        if let Some(old) = reg.get(name) {
            if old.closer.strong_count() > 0 {
                return Err(BufferError::NameTaken(name.to_string()));
            }
        }
        reg.insert(
            name.to_string(),
            RegistryEntry {
                typed: Box::new(typed),
                closer,
            },
        );
        Ok(())
    }

    /// Removes `name` if it still names the buffer whose core is at `core`
    /// (a later buffer may have taken the name).
    pub(crate) fn unregister(&self, name: &str, core: *const ()) {
        let mut reg = self.handle.inner.registry.lock();
        if reg
            .get(name)
            .is_some_and(|e| e.closer.as_ptr().cast::<()>() == core)
        {
            reg.remove(name);
        }
    }

    /// The buffer registered as `name`, if it is open and holds items of
    /// type `T`.
    pub fn get<T: Weigh + Send + 'static>(&self, name: &str) -> Option<Buffer<T>> {
        let reg = self.handle.inner.registry.lock();
        let entry = reg.get(name)?;
        let weak = entry
            .typed
            .downcast_ref::<Weak<crate::buffer::BufferHandle<T>>>()?;
        weak.upgrade().map(Buffer::from_handle)
    }

    /// The names of the buffers registered now, sorted.
    pub fn names(&self) -> Vec<String> {
        let reg = self.handle.inner.registry.lock();
        let mut names: Vec<String> = reg
            .iter()
            .filter(|(_, e)| e.closer.strong_count() > 0)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// Closes every buffer in parallel (each flushes what it holds), then
    /// stops the threads. Returns each buffer's report, by name. Within
    /// `timeout` even when a sink never returns.
    pub fn stop(&self, timeout: Duration) -> Vec<(String, CloseReport)> {
        let deadline = Instant::now() + timeout;
        let closers: Vec<(String, Arc<dyn Closable>)> = {
            let reg = self.handle.inner.registry.lock();
            reg.iter()
                .filter_map(|(n, e)| e.closer.upgrade().map(|c| (n.clone(), c)))
                .collect()
        };
        // Every buffer starts closing before any is waited for: in parallel.
        for (_, c) in &closers {
            c.begin_close();
        }
        let mut reports: Vec<(String, CloseReport)> = closers
            .iter()
            .map(|(n, c)| (n.clone(), c.finish_close(deadline)))
            .collect();
        reports.sort_by(|a, b| a.0.cmp(&b.0));
        self.handle.inner.shutdown_threads(deadline);
        reports
    }

    /// Runs every queued flush on this thread. For manual engines; an engine
    /// with workers runs them itself, and this returns 0.
    pub fn run_pending(&self) -> usize {
        self.handle.inner.assist()
    }

    /// Moves a manual engine's clock forward by `by`, firing every deadline
    /// that passes in order and running the flushes they cause, as if that
    /// much time had gone by. Returns how many deadlines fired. Does nothing
    /// (returns 0) on an engine with threads: real time moves by itself.
    pub fn advance(&self, by: Duration) -> usize {
        let inner = &self.handle.inner;
        if !inner.is_manual() {
            return 0;
        }
        let target = inner.now() + by;
        let mut fired = 0;
        // Step from deadline to deadline, so that a flush re-arming its
        // interval inside the window fires again if it falls due.
        loop {
            inner.assist();
            match inner.timer.next_deadline() {
                Some(at) if at <= target => {
                    let now = inner.now();
                    if at > now {
                        inner.clock.advance(at - now);
                    }
                    fired += inner.timer.fire_due(inner.now());
                }
                _ => break,
            }
        }
        let now = inner.now();
        if target > now {
            inner.clock.advance(target - now);
        }
        inner.assist();
        fired
    }
}
