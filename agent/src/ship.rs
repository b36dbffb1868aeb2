//! `spillway ship`: read, buffer, deliver, checkpoint; then say how it went.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use spillway::buffer::SyncFlushError;
use spillway::observer::{DropEvent, DropReason, FlushEnd, Observer};
use spillway::{Buffer, InsertError};

use crate::cli::ShipArgs;
use crate::error::{AgentError, EXIT_OK, EXIT_UNDELIVERED};
use crate::input::{FileInput, Input, StdinInput, StdinSpool, Step};
use crate::memory;
use crate::output::{ExecOutput, FileOutput, Output, OutputSpec, Reconciled};
use crate::record::{FileId, Record};
use crate::settings::Settings;
use crate::sink::{Ack, Counters, Shipper};
use crate::state::{self, InputNames, OutputNames, State};
use crate::stats::{Progress, Reporter, Sources};
use crate::ui;

/// How often a waiting reader looks at signals and the output's health.
const TICK: Duration = Duration::from_millis(100);

/// Runs `spillway ship`; returns the exit status.
///
/// # Errors
/// Bad input (exit 2) before anything is shipped, or a failure while
/// shipping (exit 1).
pub fn run(args: &ShipArgs) -> Result<u8, AgentError> {
    let settings = Settings::from_args(args)?;
    let spec = OutputSpec::parse(&args.output).map_err(AgentError::input)?;
    let spec = crate::output::nats_spec::with_flags(spec, args)?;
    let stdin_input = args.input == "-";
    // The checkpoint's writing mode depends on the output and input; both
    // are known from the flags before anything is opened.
    let background = !stdin_input && matches!(spec, OutputSpec::File(_));
    let state = State::open(&args.state, background)?;
    let stop = install_signals()?;

    let (output, output_names) = open_output(&spec, &state)?;
    let (mut input, ack, start_pos, stdin_spool) = if stdin_input {
        let spool = Arc::new(StdinSpool::open(
            &state.dir().join(state::STDIN_SPOOL),
            settings.buffer.spool_max_bytes,
        )?);
        let input = StdinInput::open(Arc::clone(&spool))?;
        if input.backlog() > 0 {
            ui::note(format!(
                "{} records from an earlier run are in the stdin spool; shipping them first",
                input.backlog()
            ));
        }
        (
            Input::Stdin(input),
            Ack::Stdin(Arc::clone(&spool)),
            Some((FileId::STDIN, 0)),
            Some(spool),
        )
    } else {
        let path = Path::new(&args.input);
        let input = FileInput::open(
            path,
            |canonical| state.input_position(canonical),
            settings.follow,
        )?;
        if let Output::File(out) = &output {
            if out.identity() == input.identity() {
                return Err(AgentError::input(format!(
                    "input {} and output {} are the same file",
                    path.display(),
                    out.path().display()
                )));
            }
        }
        let names = InputNames::new(input.canonical());
        // Delivered up to where reading starts: the checkpoint's offset when
        // the file is the one it knows, else the file's beginning.
        let start = Some(input.position());
        (Input::File(input), Ack::File(names), start, None)
    };

    record_start(&state, &output, output_names.as_ref(), &input)?;

    let counters = Arc::new(Counters::default());
    let watch = Arc::new(Watch::new(settings.max_retries));
    let sink = Shipper::new(
        output,
        output_names,
        Arc::clone(state.checkpoint()),
        ack,
        start_pos,
        Arc::clone(&counters),
    );
    let buffer = if stdin_input {
        Buffer::with_observer(settings.retrying(), sink, watch.clone())
    } else {
        let spool_dir = state.dir().join(state::SPILL_SPOOL);
        Buffer::spilling_with_observer(settings.spilling(&spool_dir), sink, watch.clone())
    }
    .map_err(|e| AgentError::input(format!("cannot start the buffer: {e}")))?;

    let progress = Arc::new(Progress::default());
    let reporter = settings.stats.map(|every| {
        let sources = Sources {
            counters: Arc::clone(&counters),
            buffer: buffer.clone(),
            progress: Arc::clone(&progress),
            stdin: stdin_spool.clone(),
        };
        Reporter::start(every, sources, std::io::stderr().is_terminal())
    });

    let pumped = pump(&mut input, &buffer, &settings, &watch, &stop, &progress);
    let delivered_all = pumped.is_ok() && drain(&buffer, &watch);
    let closed = buffer.close(if delivered_all {
        settings.buffer.flush_timeout
    } else {
        Duration::from_millis(500)
    });
    if let Some(r) = reporter {
        r.stop();
    }
    drop(buffer);

    let mut failure = pumped.err();
    if let Err(e) = state.checkpoint().shutdown() {
        failure.get_or_insert(AgentError::runtime(e.to_string()));
    }
    let spooled_stdin = stdin_spool.as_ref().map_or(0, |s| s.len());
    if let Some(s) = &stdin_spool {
        if let Err(e) = s.close() {
            failure.get_or_insert(AgentError::runtime(format!("stdin spool: {e}")));
        }
    }

    let c = &closed.counts;
    let undelivered = c.inserted - c.delivered - c.dropped - c.spooled;
    let lines = counters.lines.load(Ordering::Relaxed);
    let mut summary = format!(
        "shipped {lines} records ({}) in {} batches; {} retries, {} dropped, {} still spooled",
        ui::bytes(counters.bytes.load(Ordering::Relaxed)),
        counters.batches.load(Ordering::Relaxed),
        c.retries,
        c.dropped,
        c.spooled + spooled_stdin
    );
    if undelivered > 0 && !stdin_input {
        summary.push_str(&format!(
            "; {undelivered} read but not delivered (left after the checkpoint, shipped next run)"
        ));
    }
    let split = input.split_lines();
    if split > 0 {
        summary.push_str(&format!(
            "; {split} lines longer than {} were shipped in pieces",
            ui::bytes(crate::lines::MAX_LINE as u64)
        ));
    }
    ui::note(summary);
    if let Some(e) = failure {
        return Err(e);
    }
    let complete =
        delivered_all && undelivered == 0 && c.dropped == 0 && c.spooled == 0 && spooled_stdin == 0;
    Ok(if complete { EXIT_OK } else { EXIT_UNDELIVERED })
}

fn open_output(
    spec: &OutputSpec,
    state: &State,
) -> Result<(Output, Option<OutputNames>), AgentError> {
    match spec {
        OutputSpec::Stdout => Ok((Output::Stdout, None)),
        OutputSpec::Exec(cmd) => Ok((Output::Exec(ExecOutput::new(cmd.clone())), None)),
        #[cfg(feature = "nats")]
        OutputSpec::Nats(n) => {
            let out = crate::output::NatsOutput::open((**n).clone(), state.checkpoint())?;
            Ok((Output::Nats(Box::new(out)), None))
        }
        #[cfg(not(feature = "nats"))]
        OutputSpec::Nats(_) => Err(AgentError::input(
            "this spillway was built without the NATS output (cargo feature nats)",
        )),
        OutputSpec::File(path) => {
            let cannot = |e: std::io::Error| {
                AgentError::input(format!("output {} cannot be opened: {e}", path.display()))
            };
            // The checkpoint knows the output by its canonical path, which
            // exists only once the file does.
            let canonical = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .and_then(|_| std::fs::canonicalize(path))
                .map_err(cannot)?;
            let recorded = state.output_record(&canonical);
            let (out, found) = FileOutput::open(path, recorded).map_err(cannot)?;
            match found {
                Reconciled::Clean => {}
                Reconciled::Cut(n) => ui::note(format!(
                    "output {}: cut {n} bytes that the previous run wrote after its last \
                     delivered batch; they are sent again",
                    path.display()
                )),
                Reconciled::Shorter(n) => ui::note(format!(
                    "output {} is {n} bytes shorter than the checkpoint says: it was \
                     truncated by someone else; appending to it as it is",
                    path.display()
                )),
            }
            let names = out.is_regular().then(|| OutputNames::new(&canonical));
            Ok((Output::File(out), names))
        }
    }
}

/// Writes where this run starts before anything is sent: the output's
/// length now, and the input's file and offset. A run killed before its
/// first background checkpoint write is then cut back to this length.
fn record_start(
    state: &State,
    output: &Output,
    output_names: Option<&OutputNames>,
    input: &Input,
) -> Result<(), AgentError> {
    let cp = state.checkpoint();
    let now = SystemTime::now();
    let fail = |e: spillway::checkpoint::CheckpointError| AgentError::runtime(e.to_string());
    if let (Some(names), Output::File(f)) = (output_names, output) {
        names
            .persist(cp, f.identity(), f.sent_len(), now)
            .map_err(fail)?;
    }
    if let Input::File(f) = input {
        let (file, offset) = f.position();
        InputNames::new(f.canonical())
            .persist(cp, file, offset, now)
            .map_err(fail)?;
    }
    cp.flush().map_err(fail)
}

/// SIGINT and SIGTERM set the flag; a second one exits at once.
fn install_signals() -> Result<Arc<AtomicBool>, AgentError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        flag::register_conditional_shutdown(sig, i32::from(EXIT_UNDELIVERED), Arc::clone(&stop))
            .and_then(|_| flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| AgentError::runtime(format!("cannot handle signals: {e}")))?;
    }
    Ok(stop)
}

/// Reads the input into the buffer until it ends, the agent is stopped, or
/// (without `--follow`) the output is given up on.
fn pump(
    input: &mut Input,
    buffer: &Buffer<Record>,
    settings: &Settings,
    watch: &Watch,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<(), AgentError> {
    let mut recs = Vec::new();
    loop {
        insert_all(buffer, &mut recs, stop)?;
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if (!settings.follow && watch.is_down()) || watch.gave_up() {
            return Ok(());
        }
        if memory::live() > settings.budget {
            // Whatever is buffered goes out now, so memory comes back
            // even when no batch is full yet.
            buffer.flush();
            if !memory::wait_below(settings.budget, TICK) {
                continue;
            }
        }
        let step = input
            .next(&mut recs, TICK)
            .map_err(|e| AgentError::runtime(format!("cannot read the input: {e}")))?;
        let (pos, size) = input.progress();
        progress.set(pos, size);
        match step {
            Step::Data => {}
            Step::Idle => {
                if matches!(input, Input::File(_)) {
                    // A file at its end is polled; stdin already waited.
                    std::thread::sleep(TICK);
                }
            }
            Step::Done => {
                insert_all(buffer, &mut recs, stop)?;
                return Ok(());
            }
        }
    }
}

/// Moves `recs` into the buffer, waiting while its partition is full.
fn insert_all(
    buffer: &Buffer<Record>,
    recs: &mut Vec<Record>,
    stop: &AtomicBool,
) -> Result<(), AgentError> {
    let mut rest = std::mem::take(recs).into_iter();
    let mut refused: Option<Record> = None;
    loop {
        let batch = refused.take().into_iter().chain(rest.by_ref());
        match buffer.insert_batch(batch) {
            Ok(_) => return Ok(()),
            Err(e) => match e.error {
                InsertError::Timeout(rec) | InsertError::Full(rec) => {
                    if stop.load(Ordering::Relaxed) {
                        // Not delivered, not lost: it is after the checkpoint.
                        return Ok(());
                    }
                    refused = Some(rec);
                }
                InsertError::Closed(_) => {
                    return Err(AgentError::runtime("the buffer closed while reading"))
                }
            },
        }
    }
}

/// Waits until everything inserted was delivered; `false` if the output
/// was given up on first.
fn drain(buffer: &Buffer<Record>, watch: &Watch) -> bool {
    loop {
        if buffer.is_empty() && buffer.stats().counts.spooled == 0 {
            return true;
        }
        if watch.is_down() || watch.gave_up() {
            return false;
        }
        match buffer.sync_flush(TICK * 2) {
            Ok(_) | Err(SyncFlushError::Timeout(_)) => {}
            Err(SyncFlushError::Closed) => return false,
        }
    }
}

/// Watches sink calls: says when the output fails and recovers, and when a
/// batch has failed `max_retries + 1` times in a row (the output is down).
struct Watch {
    max_retries: u32,
    down: AtomicBool,
    failing: AtomicBool,
    /// A batch could not be spilled (the spool is full) and was given up.
    gave_up: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Watch {
    fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            down: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            gave_up: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn gave_up(&self) -> bool {
        self.gave_up.load(Ordering::SeqCst)
    }
}

impl Observer for Watch {
    fn on_flush_end(&self, e: &FlushEnd<'_>) {
        match e.error {
            Some(msg) => {
                let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
                if !self.failing.swap(true, Ordering::SeqCst) || last.as_deref() != Some(msg) {
                    ui::note(format!("output failed: {msg}"));
                }
                *last = Some(msg.to_owned());
                // The last attempt failed: the batch spills (or, from stdin,
                // is retried on).
                if e.attempt >= self.max_retries {
                    self.down.store(true, Ordering::SeqCst);
                }
            }
            None => {
                if self.failing.swap(false, Ordering::SeqCst) {
                    ui::note("output accepted a batch again");
                }
                self.down.store(false, Ordering::SeqCst);
            }
        }
    }

    fn on_drop(&self, e: &DropEvent<'_>) {
        if e.reason == DropReason::SinkFailed && !self.gave_up.swap(true, Ordering::SeqCst) {
            ui::note(format!(
                "the spool is full: {} records were not kept; stopping (they stay after the \
                 checkpoint and are shipped by the next run)",
                e.count
            ));
        }
    }
}
