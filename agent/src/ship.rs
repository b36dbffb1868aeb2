//! `spillway ship`: read, buffer, deliver, checkpoint; then say how it went.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spillway::buffer::SyncFlushError;
use spillway::observer::{DropEvent, DropReason, FlushEnd, Observer};
use spillway::{Buffer, InsertError, SpillCodec};

use crate::cli::ShipArgs;
use crate::error::{AgentError, EXIT_OK, EXIT_UNDELIVERED};
use crate::input::{Files, Input, StdinEnd, StdinInput, StdinSpool, Step};
use crate::memory;
use crate::output::{ExecOutput, FileOutput, Output, OutputSpec, Reconciled};
use crate::record::{FileId, Record};
use crate::settings::Settings;
use crate::sink::{Ack, Counters, Shipper};
use crate::state::{self, Group, InputKeys, InputNames, OutputNames, State};
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
    #[cfg(feature = "http")]
    if !matches!(spec, OutputSpec::Http(_)) {
        crate::output::http::reject_unused(&args.http)?;
    }
    let stdin_input = args.input.iter().any(|i| i == "-");
    if stdin_input && args.input.len() > 1 {
        return Err(AgentError::input(
            "--input - (standard input) cannot be given with other inputs",
        ));
    }
    let state = State::open(&args.state)?;
    let stop = install_signals()?;

    let (output, output_names) = open_output(&spec, &state, args, &settings)?;
    let (mut input, ack, start_pos, stdin_spool) = if stdin_input {
        let delivered = state.stdin_delivered();
        let spool = Arc::new(StdinSpool::open(
            &state.dir().join(state::STDIN_SPOOL),
            settings.buffer.spool_max_bytes,
            delivered,
        )?);
        let delivered = delivered.unwrap_or(0);
        // The stdin entry exists before the first chunk is spooled: a spool
        // with records and no entry is then one an older agent left.
        record_stdin_start(&state, delivered)?;
        let input = StdinInput::open(Arc::clone(&spool), settings.stdin_chunk)?;
        if input.backlog() > 0 {
            ui::note(format!(
                "{} of standard input from an earlier run are in the stdin spool; shipping \
                 them first",
                ui::bytes(input.backlog_bytes())
            ));
        }
        (
            Input::Stdin(input),
            Ack::Stdin(Arc::clone(&spool)),
            Some((FileId::STDIN, delivered)),
            Some(spool),
        )
    } else {
        let specs: Vec<PathBuf> = args.input.iter().map(PathBuf::from).collect();
        let out_file = match &output {
            Output::File(f) => Some((f.identity(), f.path().to_path_buf())),
            _ => None,
        };
        let keys = Arc::new(InputKeys::default());
        let files = Files::open(
            &specs,
            state.input_entries(),
            settings.follow,
            out_file,
            Arc::clone(&keys),
        )?;
        (Input::Files(files), Ack::Files(keys), None, None)
    };

    record_start(&state, &output, output_names.as_ref(), &input)?;

    let counters = Arc::new(Counters::default());
    let mut watch = Watch::new(settings.max_retries);
    watch.halt = output.halt_flag();
    let watch = Arc::new(watch);
    if Shipper::background_checkpoint(&output, &ack) {
        state
            .writer()
            .run_in_background()
            .map_err(|e| AgentError::runtime(format!("cannot start the checkpoint writer: {e}")))?;
    }
    let sink = Shipper::new(
        output,
        output_names,
        Arc::clone(state.writer()),
        ack,
        start_pos,
        Arc::clone(&counters),
    );
    let buffer = if stdin_input {
        Buffer::builder(settings.retrying())
            .sink(sink)
            .observer(watch.clone())
            .build()
    } else {
        let spool_dir = state.dir().join(state::SPILL_SPOOL);
        Buffer::builder(settings.spilling(&spool_dir))
            .sink(sink)
            .observer(watch.clone())
            .spill(SpillCodec::of())
            .build()
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
    // Standard input with the output down: read the rest into the stdin
    // spool (until its end, or the spool is full), for the next run.
    let mut stdin_note = None;
    if let (Ok(Pumped::OutputDown), Input::Stdin(s)) = (&pumped, &mut input) {
        ui::note("the output is down: reading the rest of standard input into the stdin spool");
        stdin_note = Some(match s.spool_rest(&stop, TICK) {
            StdinEnd::Eof => "standard input ended".to_owned(),
            StdinEnd::Full => format!(
                "the stdin spool is full (--spool-max {}): stopped reading standard input",
                ui::bytes(settings.buffer.spool_max_bytes)
            ),
            StdinEnd::Stopped => "stopped".to_owned(),
            StdinEnd::Failed(e) => e,
        });
    }
    let delivered_all =
        matches!(pumped, Ok(Pumped::Ended | Pumped::Stopped)) && drain(&buffer, &watch);
    let closed = buffer.close(if delivered_all {
        settings.buffer.flush_timeout
    } else {
        Duration::from_millis(500)
    });
    if let Some(r) = reporter {
        r.stop();
    }
    drop(buffer);
    let stdin_read = match &input {
        Input::Stdin(s) => Some(s.bytes_read()),
        Input::Files(_) => None,
    };
    // The stdin reader is stopped and joined before its spool closes.
    if let Input::Stdin(s) = &mut input {
        s.stop(&mut Vec::new());
    }

    let mut failure = pumped.err();
    if let Err(e) = state.shutdown() {
        failure.get_or_insert(AgentError::runtime(e.to_string()));
    }
    let stdin_left = stdin_spool.as_ref().map_or(0, |s| s.pending_bytes());
    if let Some(s) = &stdin_spool {
        if let Err(e) = s.close() {
            failure.get_or_insert(AgentError::runtime(format!("stdin spool: {e}")));
        }
    }

    let c = &closed.counts;
    let lines = counters.lines.load(Ordering::Relaxed);
    let undelivered = undelivered(c);
    let mut summary = format!(
        "shipped {lines} records ({}) in {} batches; {} retries, {} dropped, {} still spooled",
        ui::bytes(counters.bytes.load(Ordering::Relaxed)),
        counters.batches.load(Ordering::Relaxed),
        c.retries,
        c.dropped,
        c.spooled
    );
    if undelivered > 0 && !stdin_input {
        summary.push_str(&format!(
            "; {undelivered} read but not delivered (left after the checkpoint, shipped next run)"
        ));
    }
    if let Some(read) = stdin_read {
        summary.push_str(&format!("; {read} bytes read from standard input"));
        if stdin_left > 0 {
            summary.push_str(&format!(
                ", {stdin_left} bytes of it wait in the stdin spool for the next run"
            ));
        }
    }
    if let Some(n) = stdin_note {
        ui::note(n);
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
        delivered_all && undelivered == 0 && c.dropped == 0 && c.spooled == 0 && stdin_left == 0;
    Ok(if complete { EXIT_OK } else { EXIT_UNDELIVERED })
}

fn open_output(
    spec: &OutputSpec,
    state: &State,
    #[allow(unused_variables)] args: &ShipArgs,
    #[allow(unused_variables)] settings: &Settings,
) -> Result<(Output, Option<OutputNames>), AgentError> {
    match spec {
        OutputSpec::Stdout => Ok((Output::Stdout, None)),
        #[cfg(feature = "http")]
        OutputSpec::Http(url) => Ok((
            Output::Http(crate::output::HttpOutput::open(url, &args.http, settings)?),
            None,
        )),
        OutputSpec::Exec(cmd) => Ok((Output::Exec(ExecOutput::new(cmd.clone())), None)),
        #[cfg(feature = "nats")]
        OutputSpec::Nats(n) => {
            let out = crate::output::NatsOutput::open((**n).clone(), state)?;
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
    let mut group = Group::default();
    if let (Some(names), Output::File(f)) = (output_names, output) {
        names.add_to(&mut group, f.identity(), f.sent_len());
    }
    if let Input::Files(files) = input {
        for f in files.inputs() {
            let (file, offset) = f.position();
            InputNames::new(f.canonical()).add_to(&mut group, file, offset);
        }
    }
    state
        .writer()
        .commit(group)
        .map_err(|e| AgentError::runtime(e.to_string()))
}

/// Makes sure the checkpoint has a stdin entry (the delivered offset)
/// before anything is read from stdin.
fn record_stdin_start(state: &State, delivered: u64) -> Result<(), AgentError> {
    if state.stdin_delivered().is_none() {
        let mut group = Group::default();
        state::add_stdin(&mut group, delivered);
        state
            .writer()
            .commit(group)
            .map_err(|e| AgentError::runtime(e.to_string()))?;
    }
    Ok(())
}

/// Records read but neither delivered, dropped nor spooled, from the
/// buffer's counts. The counts come from the library and are not trusted
/// to add up (issue 13: a full disk once made `spooled` exceed what was
/// really spooled): this never underflows, and counts that do not add up
/// give 0 rather than a wrapped number.
fn undelivered(c: &spillway::stats::Counts) -> u64 {
    let accounted = c
        .delivered
        .saturating_add(c.dropped)
        .saturating_add(c.spooled);
    c.inserted.saturating_sub(accounted)
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

/// Why reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pumped {
    /// The input ended; everything read is in the buffer.
    Ended,
    /// A signal: everything read is in the buffer (or, from stdin, spooled).
    Stopped,
    /// The output is down (a batch failed `max_retries + 1` times) and the
    /// agent does not keep going (no `--follow`, or stdin).
    OutputDown,
    /// A batch could not be spilled (the spool is full).
    GaveUp,
}

/// Reads the input into the buffer until it ends, the agent is stopped, or
/// the output is given up on (see [`Pumped`]).
fn pump(
    input: &mut Input,
    buffer: &Buffer<Record>,
    settings: &Settings,
    watch: &Watch,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<Pumped, AgentError> {
    // Stdin is read to its end whatever --follow says.
    let keep_going = settings.follow && matches!(input, Input::Files(_));
    let why = || {
        if stop.load(Ordering::Relaxed) {
            Some(Pumped::Stopped)
        } else if watch.gave_up() {
            Some(Pumped::GaveUp)
        } else if !keep_going && watch.is_down() {
            Some(Pumped::OutputDown)
        } else {
            None
        }
    };
    let mut recs = Vec::new();
    loop {
        insert_all(buffer, &mut recs, &why)?;
        if let Some(end) = why() {
            if end == Pumped::Stopped {
                if let Input::Stdin(s) = input {
                    // What the reader spooled and did not hand on yet goes
                    // out with the rest (it stays spooled if it cannot).
                    s.stop(&mut recs);
                    insert_all(buffer, &mut recs, &why)?;
                }
            }
            return Ok(end);
        }
        if memory::live() > settings.budget {
            if nothing_will_free_memory(buffer, settings) {
                // Whatever is buffered goes out now, so memory comes back
                // even when no batch is full yet.
                buffer.flush();
            }
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
                if matches!(input, Input::Files(_)) {
                    // A file at its end is polled; stdin already waited.
                    std::thread::sleep(TICK);
                }
            }
            Step::Done => {
                insert_all(buffer, &mut recs, &why)?;
                return Ok(why().unwrap_or(Pumped::Ended));
            }
        }
    }
}

/// Whether the reader, over its memory budget, must flush the buffer to
/// get memory back: no batch is in flight (or waiting for a retry) and no
/// full batch waits, so only a batch that is not full yet holds the memory.
/// Otherwise the batch under way, or the full one next, frees it when it is
/// delivered; a flush then would only cut the open batch short (with a
/// sink slower than the reader, every batch: 72 batches of ~13,900 lines
/// instead of 50 of 20,000 for a million lines), and every batch costs the
/// output a round trip and the checkpoint a synced write.
fn nothing_will_free_memory(buffer: &Buffer<Record>, settings: &Settings) -> bool {
    let counts = buffer.stats().counts;
    // A batch with the most jitter: below it, a batch may be open, not full.
    let cfg = &settings.buffer;
    let full = cfg.max_size.saturating_add(cfg.max_size_jitter) as u64;
    counts.in_flight == 0 && counts.buffered < full
}

/// Moves `recs` into the buffer, waiting while its partition is full,
/// unless `why` says reading stops (then the rest is not delivered, not
/// lost: it is after the checkpoint, or in the stdin spool).
fn insert_all(
    buffer: &Buffer<Record>,
    recs: &mut Vec<Record>,
    why: &dyn Fn() -> Option<Pumped>,
) -> Result<(), AgentError> {
    let mut rest = std::mem::take(recs).into_iter();
    let mut refused: Option<Record> = None;
    loop {
        let batch = refused.take().into_iter().chain(rest.by_ref());
        match buffer.insert_batch(batch) {
            Ok(_) => return Ok(()),
            Err(e) => match e.error {
                InsertError::Timeout(rec) | InsertError::Full(rec) => {
                    if why().is_some() {
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
            // InsideSink: not called from a sink; were it, waiting would hang.
            Err(SyncFlushError::Closed | SyncFlushError::InsideSink) => return false,
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
    /// Raised by an output that failed in a way no retry fixes (an HTTP
    /// output's permanent 4xx): stop as when the spool is full, even with
    /// --follow.
    halt: Option<Arc<AtomicBool>>,
    last_error: Mutex<Option<String>>,
}

impl Watch {
    fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            down: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            gave_up: AtomicBool::new(false),
            halt: None,
            last_error: Mutex::new(None),
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn gave_up(&self) -> bool {
        self.gave_up.load(Ordering::SeqCst)
            || self.halt.as_ref().is_some_and(|h| h.load(Ordering::SeqCst))
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

#[cfg(test)]
mod tests {
    use super::*;
    use spillway::stats::Counts;

    #[test]
    fn counts_that_do_not_add_up_never_underflow_the_undelivered_count() {
        // Issue 13: a spill onto a full disk reported 2000 spooled and 1700
        // dropped of 2000 inserted; the agent printed 2^64 - 3400.
        let broken = Counts {
            inserted: 2000,
            dropped: 1700,
            spooled: 2000,
            ..Counts::default()
        };
        assert_eq!(undelivered(&broken), 0);
        let extreme = Counts {
            inserted: 5,
            delivered: u64::MAX,
            dropped: u64::MAX,
            spooled: u64::MAX,
            ..Counts::default()
        };
        assert_eq!(undelivered(&extreme), 0);
        let honest = Counts {
            inserted: 100,
            delivered: 60,
            dropped: 5,
            spooled: 10,
            ..Counts::default()
        };
        assert_eq!(undelivered(&honest), 25);
    }
}
