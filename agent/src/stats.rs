//! `--stats DUR`: a line every DUR on stderr, or a progress bar on a
//! terminal when the input's size is known.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use spillway::Buffer;

use crate::input::StdinSpool;
use crate::record::Record;
use crate::sink::Counters;
use crate::ui;

/// How far the reader is, published by the reading thread.
#[derive(Debug)]
pub struct Progress {
    /// Bytes read of the current input file (or of stdin).
    pub pos: AtomicU64,
    /// The input's size, or `u64::MAX` when unknown.
    pub size: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            pos: AtomicU64::new(0),
            size: AtomicU64::new(u64::MAX),
        }
    }
}

impl Progress {
    /// Publishes the reader's position and the input's size.
    pub fn set(&self, pos: u64, size: Option<u64>) {
        self.pos.store(pos, Ordering::Relaxed);
        self.size.store(size.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// What the reporter looks at.
pub struct Sources {
    /// The sink's totals.
    pub counters: Arc<Counters>,
    /// The buffer, for its gauges.
    pub buffer: Buffer<Record>,
    /// The reader's position.
    pub progress: Arc<Progress>,
    /// The stdin spool, when reading stdin.
    pub stdin: Option<Arc<StdinSpool>>,
}

/// The reporting thread; stopped (and joined) by [`Reporter::stop`].
pub struct Reporter {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Reports every `every`; as a bar when `bar` and the size is known.
    pub fn start(every: Duration, sources: Sources, bar: bool) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("spillway-stats".into())
            .spawn(move || {
                let mut last = Snapshot::take(&sources);
                let mut last_at = Instant::now();
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    let now = Instant::now();
                    let snap = Snapshot::take(&sources);
                    let secs = (now - last_at).as_secs_f64().max(1e-9);
                    let rate = Rate {
                        records: snap.lines.saturating_sub(last.lines) as f64 / secs,
                        bytes: snap.bytes.saturating_sub(last.bytes) as f64 / secs,
                    };
                    let size = sources.progress.size.load(Ordering::Relaxed);
                    if bar && size != u64::MAX {
                        ui::bar(&bar_line(&sources, size, &rate));
                    } else {
                        ui::note(stats_line(&snap, &rate));
                    }
                    last = snap;
                    last_at = now;
                }
            })
            .ok();
        Self { stop: tx, thread }
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Rate {
    records: f64,
    bytes: f64,
}

struct Snapshot {
    lines: u64,
    bytes: u64,
    batches: u64,
    buffered: u64,
    spooled: u64,
    /// Bytes of stdin read and not delivered yet (reading stdin).
    stdin: Option<u64>,
    retries: u64,
    dropped: u64,
}

impl Snapshot {
    fn take(s: &Sources) -> Self {
        let stats = s.buffer.stats();
        let c = &stats.counts;
        Self {
            lines: s.counters.lines.load(Ordering::Relaxed),
            bytes: s.counters.bytes.load(Ordering::Relaxed),
            batches: s.counters.batches.load(Ordering::Relaxed),
            buffered: c.buffered.saturating_add(c.in_flight),
            spooled: c.spooled,
            stdin: s.stdin.as_ref().map(|sp| sp.pending_bytes()),
            retries: c.retries,
            dropped: c.dropped,
        }
    }
}

fn stats_line(s: &Snapshot, r: &Rate) -> String {
    let mut line = format!(
        "{:.0} records/s, {}/s; batches {}, buffered {}, spooled {}, retries {}, dropped {}",
        r.records,
        ui::bytes(r.bytes as u64),
        s.batches,
        s.buffered,
        s.spooled,
        s.retries,
        s.dropped
    );
    if let Some(n) = s.stdin {
        line.push_str(&format!(", stdin undelivered {n} bytes"));
    }
    line
}

fn bar_line(s: &Sources, size: u64, r: &Rate) -> String {
    const WIDTH: usize = 30;
    let pos = s.progress.pos.load(Ordering::Relaxed).min(size);
    let frac = if size == 0 {
        1.0
    } else {
        pos as f64 / size as f64
    };
    let filled = ((frac * WIDTH as f64) as usize).min(WIDTH);
    let eta = if r.bytes > 0.0 && size > pos {
        format!(
            "  ETA {}",
            ui::duration(Duration::from_secs_f64((size - pos) as f64 / r.bytes))
        )
    } else {
        String::new()
    };
    format!(
        "[{}{}] {:5.1}% {} / {}  {}/s  {:.0} records/s{eta}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        frac * 100.0,
        ui::bytes(pos),
        ui::bytes(size),
        ui::bytes(r.bytes as u64),
        r.records
    )
}
