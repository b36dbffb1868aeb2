//! A NATS JetStream output: each record is one message on the subject, a
//! batch is published pipelined, and it counts as delivered only once every
//! message's acknowledgement came back.
//!
//! The client (`async-nats`) is asynchronous; it runs on a current-thread
//! tokio runtime of this output's own, which only runs while the sink's
//! thread is inside [`NatsOutput::send`] (or opening the output). Nothing
//! else in the agent sees tokio.
//!
//! **Exactly once, sequence mode** (`--nats-dedup sequence`, the
//! default). Condition: the agent is the only publisher on its subject (a
//! fleet gives each device a subject of its own, `logs.DEVICE`, and one
//! stream takes `logs.>`). Ordinary messages carry no header (a header on
//! every message costs the server 10-30% of its rate, in idle runs of
//! `agent/bench_nats.sh`). Instead:
//!
//! - The checkpoint holds, in the same write as the input offsets a batch
//!   moves, the stream sequence of the last message on the subject that the
//!   agent accounts for (`known`).
//! - A batch goes out as one segment (more only when its records make more
//!   than `nats_manifest::MAX_RUNS` runs). A segment's first message carries
//!   `Nats-Expected-Last-Subject-Sequence: known` and a manifest
//!   (`Spw-Batch`, see `nats_manifest`) that maps the segment's messages,
//!   in order, to the input records they are. It is sent alone and its
//!   acknowledgement awaited; the rest follows pipelined. The server stores
//!   the first message only if the subject still ends at `known`: nothing
//!   the checkpoint does not know of can lie between the checkpoint's last
//!   message and the segment. A refused guard fails the batch.
//! - Before the first batch, after a failed batch and on every new
//!   connection, the agent reads back (`nats_readback`): every message on
//!   the subject after `known`, mapped through the manifests to input
//!   records, which are then delivered: the checkpoint takes their offsets
//!   and the new last sequence in one write, and a batch that holds them
//!   again publishes only the rest. A message there that no manifest maps
//!   (another publisher) is an error naming the subject, never a guess.
//!
//! The read-back maps a segment's messages by their order, so the subject
//! must hold a prefix of each segment. A connection delivers a prefix of
//! what was written to it (below); the stream itself may refuse one message
//! and store the next (a stream without a leader for a moment answers "no
//! responders"; a message over the stream's `max_msg_size` is refused for
//! good): a batch failed that way awaits the acknowledgements still due
//! and removes from the stream the messages stored after the refused one,
//! before it is sent again; the ones acknowledged before it then count as
//! delivered without a read-back (a server may lose track of the subject's
//! last message once the ones after it are deleted). Until they could be
//! removed, the subject is not read back (its manifest would map them to
//! the wrong records) and nothing is sent. Their sequences go to the
//! checkpoint (`Strays`) in a write of their own, as soon as the removal
//! fails, so that a restart does not read them back either; the entry's
//! sequence and segment in that write are the ones last recorded, so it
//! moves nothing else. A later write clears them once they are removed.
//!
//! Why each record lands once, in order. A record is published again only
//! in a batch sent after a read-back that did not find it, and a message
//! that lands after a read-back makes the next guard fail (it is found by
//! the next read-back) - except one of a connection that is already gone
//! but whose data the server had not finished taking in; such a late
//! message is mapped through its segment's manifest, whose first message
//! the checkpoint keeps (`Known::segment`) while not all of it landed.
//! Across `kill -9` the checkpoint and the stream agree by the same
//! read-back at start; a server restart or a leader failover keeps what the
//! stream acknowledged and at most a prefix of what it did not (below), and
//! the read-back finds that prefix. No duplicate window is involved, so
//! this holds whatever time passes before the restart.
//!
//! **Exactly once, msg-id mode** (`--nats-dedup msg-id`, for a subject
//! shared by several publishers). Every message carries `Nats-Msg-Id`, made
//! of this state directory's agent id, the record's input (its own file's
//! device, inode and truncation epoch, or standard input, whose offsets
//! count bytes of one stream that goes on across runs) and the record's
//! byte offset. A batch sent again (a retry, or the next run after a kill)
//! is dropped by the stream's duplicate window (2 minutes unless the stream
//! says otherwise) for every message it already stored. Past the window,
//! delivery is at least once.
//!
//! **Order.** A connection delivers a prefix of what was written to it. So
//! that a batch never lands with a hole that a retry would fill later (out
//! of order), a connection lives only as long as its attempts succeed: the
//! client is not allowed to reconnect by itself (it would send the rest of
//! a batch after a gap), and after a failed attempt the connection is
//! dropped, with whatever it still held, and the next attempt connects
//! afresh, trying the servers in the order given.

mod conn;
mod strays;

use std::cell::Cell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use async_nats::HeaderMap;

use super::nats_publish::{self as publish, Batch, WINDOW};
use super::nats_readback::{self as readback, Known, Landed, ReadBackError};
use super::nats_spec::{Dedup, NatsOptions, NatsSpec};
use crate::entries::NatsNames;
use crate::error::AgentError;
use crate::record::Span;
use crate::state::{CheckpointWriter, Group, State};
use crate::ui;
use conn::{Conn, ConnectFailure, CONNECT_TIMEOUT};
use strays::Unremoved;

/// How often a batch's publishing looks whether the connection was lost
/// meanwhile.
const LOST_POLL: Duration = Duration::from_millis(100);
/// How long the read-back at start-up may take.
const START_READ_BACK: Duration = Duration::from_secs(60);

/// Publishes batches to a JetStream stream.
pub struct NatsOutput {
    spec: NatsSpec,
    opts: NatsOptions,
    names: NatsNames,
    conn: Option<Conn>,
    /// The stream the subject goes to, once it was looked up.
    stream: Option<String>,
    /// `Nats-Msg-Id` prefix of every record: the agent id.
    id_prefix: String,
    /// Stream sequence of the last acknowledged message of the batch just
    /// sent (msg-id mode).
    last_sequence: Option<u64>,
    headers: HeaderMap,
    /// Sequence mode: the last message on the subject the agent accounts
    /// for (acknowledged, or read back).
    known: Known,
    /// Sequence mode: whether the subject may hold messages past `known`
    /// (at start, after a failed batch, on a new connection): they are read
    /// back before anything is published.
    doubt: bool,
    /// Sequence mode: records that landed without an acknowledgement and
    /// were read back; a batch that holds them again does not publish them.
    landed: Vec<Span>,
    /// Sequence mode: what the start-up read-back found, for the sink's
    /// first batch to record in the checkpoint (or, after a refused
    /// message, the batch's acknowledged prefix).
    pending: Option<Landed>,
    /// Sequence mode: messages stored after a refused one that could not
    /// be removed yet.
    unremoved: Option<Unremoved>,
    /// Sequence mode: a stream sequence the subject holds messages up to,
    /// whatever the server says its last one is (see
    /// [`remove_unremoved`](Self::remove_unremoved)); 0: none.
    floor: u64,
    /// Sequence mode: the sequence and segment in the checkpoint write
    /// last made (a write of the strays alone repeats them).
    recorded: Cell<Known>,
    /// Where the strays are recorded at once.
    writer: Arc<CheckpointWriter>,
}

impl std::fmt::Debug for NatsOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOutput")
            .field("spec", &self.spec)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl NatsOutput {
    /// Checks the servers' names, connects, and finds (or, with
    /// `--nats-stream`, creates) the stream for the subject. The agent id
    /// is taken from the checkpoint, or made and written there (durably,
    /// before anything is sent).
    ///
    /// When no server can be reached, the output opens anyway and says so:
    /// batches then fail (and are spooled) until a server answers, and the
    /// stream is looked up then.
    ///
    /// In sequence mode, what landed on the subject after the checkpoint's
    /// last sequence is read back here (see the module doc).
    ///
    /// # Errors
    /// [`AgentError::Input`] (exit 2): an unknown host, refused credentials,
    /// an unreadable credentials or CA file, a TLS failure, no stream for
    /// the subject, a `--nats-stream` that does not take it, or (sequence
    /// mode) a message on the subject that this agent did not send.
    pub fn open(spec: NatsSpec, state: &State) -> Result<Self, AgentError> {
        let opts = spec.options.clone();
        for (host, port) in &spec.servers {
            if let Err(e) = (host.as_str(), *port).to_socket_addrs() {
                return Err(AgentError::input(format!(
                    "NATS server {host}:{port} of --output: unknown host ({e})"
                )));
            }
        }
        for (flag, file) in [("--nats-creds", &opts.creds), ("--nats-ca", &opts.ca)] {
            if let Some(path) = file {
                if let Err(e) = std::fs::File::open(path) {
                    return Err(AgentError::input(format!(
                        "{flag} {} cannot be read: {e}",
                        path.display()
                    )));
                }
            }
        }
        let names = NatsNames::new(&spec.subject);
        let agent = match state.nats_agent(&names) {
            Some(id) => id,
            None => {
                let id = random_u64();
                let mut group = Group::default();
                names.add_agent(&mut group, id);
                state
                    .writer()
                    .commit(group)
                    .map_err(|e| AgentError::runtime(e.to_string()))?;
                id
            }
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &opts.headers {
            headers.insert(k.as_str(), v.as_str());
        }
        let (sequence, segment) = state.nats_known(&names);
        let strays = state.nats_strays(&names).map_err(AgentError::input)?;
        let mut out = Self {
            id_prefix: format!("{agent:016x}"),
            spec,
            opts,
            names,
            conn: None,
            stream: None,
            last_sequence: None,
            headers,
            known: Known { sequence, segment },
            doubt: true,
            landed: Vec::new(),
            pending: None,
            unremoved: strays.map(Unremoved::Restored),
            floor: 0,
            recorded: Cell::new(Known { sequence, segment }),
            writer: Arc::clone(state.writer()),
        };
        match out.connect() {
            Ok(()) => {}
            Err(ConnectFailure::Settings(msg)) => return Err(AgentError::input(msg)),
            Err(ConnectFailure::Unreachable(msg)) => {
                ui::note(format!(
                    "{msg}; records wait in the spool until a server answers"
                ));
                return Ok(out);
            }
        }
        out.find_stream().map_err(AgentError::input)?;
        if out.opts.dedup == Dedup::Sequence {
            let deadline = Instant::now() + START_READ_BACK;
            if let Err(m) = out.remove_unremoved(deadline) {
                // Not read back: tried again (and the batch refused with
                // the same message) before the first batch is published.
                ui::note(m);
                out.conn = None;
                return Ok(out);
            }
            match out.read_back_now(deadline) {
                Ok(landed) => out.pending = landed,
                Err(ReadBackError::Foreign(m)) => return Err(AgentError::input(m)),
                Err(ReadBackError::Failed(m)) => {
                    // Tried again before the first batch is published.
                    ui::note(m);
                    out.conn = None;
                }
            }
        }
        Ok(out)
    }

    /// Adds the stream sequence of the batch just delivered (or of the
    /// messages just read back) to `group`, the checkpoint write that also
    /// holds the offsets they cover.
    pub fn add_to(&self, group: &mut Group) {
        match self.opts.dedup {
            Dedup::Sequence => {
                let strays = match &self.unremoved {
                    Some(Unremoved::Run(r)) => Some(self.strays_of(r)),
                    Some(Unremoved::Restored(s)) => Some(s.clone()),
                    None => None,
                };
                self.names.add_with_strays(
                    group,
                    (self.known.sequence, self.known.segment),
                    strays.as_ref(),
                );
                self.recorded.set(self.known);
            }
            Dedup::MsgId => {
                if let Some(seq) = self.last_sequence {
                    self.names.add_sequence(group, seq, None);
                }
            }
        }
    }

    /// Sequence mode: reads back what landed on the subject past what the
    /// agent knows, when it may have (see `doubt`). `Some` when the
    /// checkpoint must learn something: the records that landed (which the
    /// caller records as delivered, with [`add_to`](Self::add_to)'s
    /// sequence, in one checkpoint write) or a new last sequence.
    ///
    /// # Errors
    /// No server answers, or the subject holds a message this agent did not
    /// send (the message says so); the batch at hand then fails.
    pub fn read_back(&mut self, deadline: Instant) -> io::Result<Option<Landed>> {
        if self.opts.dedup != Dedup::Sequence {
            return Ok(None);
        }
        if !self.doubt {
            return Ok(self.pending.take());
        }
        let result = self
            .ensure_connected()
            .and_then(|()| self.remove_unremoved(deadline))
            .and_then(|()| {
                self.read_back_now(deadline)
                    .map_err(|e| e.text().to_owned())
            });
        let found = match result {
            Ok(found) => found,
            Err(e) => {
                // `pending` stays for the next attempt.
                self.conn = None;
                return Err(io::Error::other(e));
            }
        };
        Ok(match (self.pending.take(), found) {
            (None, found) => found,
            (Some(mut p), found) => {
                if let Some(f) = found {
                    p.ranges.extend(f.ranges);
                    p.messages += f.messages;
                }
                p.known = self.known;
                Some(p)
            }
        })
    }

    /// Reads back now (needs a connection and the stream), and takes what
    /// it found into `known` and `landed`. `None` when nothing changed.
    fn read_back_now(&mut self, deadline: Instant) -> Result<Option<Landed>, ReadBackError> {
        let (Some(conn), Some(stream)) = (&self.conn, &self.stream) else {
            return Err(ReadBackError::Failed("not connected".into()));
        };
        let until = tokio::time::Instant::from_std(deadline);
        let work =
            readback::read_back(&conn.js, stream, &self.spec.subject, self.known, self.floor);
        let landed = conn
            .rt
            .block_on(async { tokio::time::timeout_at(until, work).await })
            .map_err(|_| {
                ReadBackError::Failed(format!(
                    "reading back subject {} did not end before flush_timeout",
                    self.spec.subject
                ))
            })??;
        self.doubt = false;
        self.floor = 0;
        if landed.messages > 0 {
            ui::note(format!(
                "{} records of subject {} had landed in the stream without being \
                 acknowledged (a run was stopped or a batch failed); they count as delivered \
                 and are not sent again",
                landed.messages, self.spec.subject
            ));
        }
        let changed = landed.messages > 0 || landed.known != self.known;
        self.known = landed.known;
        readback::merge(&mut self.landed, &landed.ranges);
        Ok(changed.then_some(landed))
    }

    /// Connects and finds the stream, unless that is done.
    fn ensure_connected(&mut self) -> Result<(), String> {
        if self.conn.is_none() {
            match self.connect() {
                Ok(()) => {}
                Err(ConnectFailure::Settings(m) | ConnectFailure::Unreachable(m)) => return Err(m),
            }
        }
        if self.stream.is_none() {
            self.find_stream()?;
        }
        Ok(())
    }

    /// Publishes one batch: `parts` laid end to end are its lines, each
    /// ending in a newline; `origins[i]` is where line `i` came from. `Ok`
    /// once every message was acknowledged by the stream.
    pub(super) fn send(
        &mut self,
        parts: &[IoSlice<'_>],
        origins: &[Span],
        deadline: Instant,
    ) -> io::Result<()> {
        self.last_sequence = None;
        let result = match self.opts.dedup {
            Dedup::Sequence => self.try_send_guarded(parts, origins, deadline),
            Dedup::MsgId => self.try_send_with_ids(parts, origins, deadline),
        };
        if result.is_err() {
            // Whatever the connection still holds of this attempt must never
            // arrive after a gap: it goes with the connection. Some of it
            // may have landed: read back before the next attempt.
            self.conn = None;
            self.doubt = true;
        }
        result.map_err(io::Error::other)
    }

    /// Sequence mode (see the module doc): the batch's records that did not
    /// land already, as segments; each segment's first message alone,
    /// guarded and with its manifest, then the rest pipelined.
    fn try_send_guarded(
        &mut self,
        parts: &[IoSlice<'_>],
        origins: &[Span],
        deadline: Instant,
    ) -> Result<(), String> {
        if self.doubt || self.conn.is_none() {
            return Err(format!(
                "what landed on subject {} was not read back yet",
                self.spec.subject
            ));
        }
        let batch = Batch {
            parts,
            origins,
            landed: &self.landed,
        };
        let segments = publish::segments(&batch)?;
        let Some(conn) = &self.conn else {
            return Err("not connected".into());
        };
        let mut refusal = publish::Refusal::default();
        let publish = publish::guarded(
            &conn.js,
            &self.spec.subject,
            &self.headers,
            &batch,
            &segments,
            self.known.sequence,
            &mut refusal,
        );
        let result = self.run_batch(publish, deadline);
        let last = match result {
            Ok(last) => last,
            Err(e) if refusal.strays.is_empty() => return Err(e),
            Err(e) => return Err(self.remove_strays(refusal, e, deadline)),
        };
        self.known = Known {
            sequence: last,
            segment: None,
        };
        self.last_sequence = Some(last);
        Ok(())
    }

    /// Takes the acknowledged messages of a batch before one the stream
    /// refused as delivered (see [`remove_strays`](Self::remove_strays)).
    fn account_prefix(&mut self, acked: Landed) {
        self.known = acked.known;
        readback::merge(&mut self.landed, &acked.ranges);
        self.pending = Some(match self.pending.take() {
            None => acked,
            Some(mut p) => {
                p.ranges.extend(acked.ranges);
                p.messages += acked.messages;
                p.known = acked.known;
                p
            }
        });
    }

    /// msg-id mode: every message with its `Nats-Msg-Id`, pipelined.
    fn try_send_with_ids(
        &mut self,
        parts: &[IoSlice<'_>],
        origins: &[Span],
        deadline: Instant,
    ) -> Result<(), String> {
        self.ensure_connected()?;
        let Some(conn) = &self.conn else {
            return Err("not connected".into());
        };
        let batch = Batch {
            parts,
            origins,
            landed: &[],
        };
        let publish = publish::with_ids(
            &conn.js,
            &self.spec.subject,
            &self.headers,
            &batch,
            &self.id_prefix,
        );
        let (last, duplicates) = self.run_batch(publish, deadline)?;
        if duplicates > 0 {
            ui::note(format!(
                "{duplicates} records were already in the stream (sent before a failure or \
                 a restart) and were not stored again"
            ));
        }
        self.last_sequence = Some(last);
        Ok(())
    }

    /// Runs a batch's publishing on the connection until it ends, the
    /// connection is lost, or `deadline` passes.
    fn run_batch<T>(
        &self,
        publish: impl Future<Output = Result<T, String>>,
        deadline: Instant,
    ) -> Result<T, String> {
        let Some(conn) = &self.conn else {
            return Err("not connected".into());
        };
        // One watch for the whole batch, rather than a timer per message: a
        // lost connection ends the wait for acknowledgements early.
        let work = first_of(publish, watch_lost(&conn.lost));
        let until = tokio::time::Instant::from_std(deadline);
        conn.rt
            .block_on(async { tokio::time::timeout_at(until, work).await })
            .map_err(|_| {
                format!(
                    "NATS did not acknowledge the batch on {} before flush_timeout",
                    self.spec.subject
                )
            })?
    }
}

/// Ends with an error once the client says the connection was lost; looks
/// every [`LOST_POLL`].
async fn watch_lost<T>(lost: &AtomicBool) -> Result<T, String> {
    loop {
        tokio::time::sleep(LOST_POLL).await;
        if lost.load(Ordering::SeqCst) {
            return Err("the connection to the NATS server was lost".into());
        }
    }
}

/// The output of whichever of `a` and `b` ends first (`a` is polled first).
async fn first_of<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(move |cx| match a.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(v),
        Poll::Pending => b.as_mut().poll(cx),
    })
    .await
}

/// An error and its sources, on one line.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// 64 random bits: from the kernel, or, failing that, from the clock and the
/// process id.
fn random_u64() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
