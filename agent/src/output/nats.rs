//! A NATS JetStream output: each record is one message on the subject, a
//! batch is published pipelined, and it counts as delivered only once every
//! message's acknowledgement came back.
//!
//! The client (`async-nats`) is asynchronous; it runs on a current-thread
//! tokio runtime of this output's own, which only runs while the sink's
//! thread is inside [`NatsOutput::send`] (or opening the output). Nothing
//! else in the agent sees tokio.
//!
//! **Exactly once.** Every message carries `Nats-Msg-Id`, made of this state
//! directory's agent id, the record's input (its own file's device, inode
//! and truncation epoch, or standard input, whose offsets count bytes of one
//! stream that goes on across runs) and the record's byte offset. A batch sent again - a retry, or
//! the next run after a kill - is dropped by the stream's duplicate window
//! (2 minutes unless the stream says otherwise) for every message it
//! already stored.
//!
//! **Order.** A connection delivers a prefix of what was written to it. So
//! that a batch never lands with a hole that a retry would fill later (out
//! of order), a connection lives only as long as its attempts succeed: the
//! client is not allowed to reconnect by itself (it would send the rest of
//! a batch after a gap), and after a failed attempt the connection is
//! dropped, with whatever it still held, and the next attempt connects
//! afresh, trying the servers in the order given.

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::io::{self, IoSlice};
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy};
use async_nats::jetstream::{self, Context};
use async_nats::{ConnectErrorKind, ConnectOptions, Event, HeaderMap, ServerAddr};
use bytes::Bytes;
use tokio::runtime::Runtime;

use super::nats_spec::{NatsOptions, NatsSpec};
use crate::entries::NatsNames;
use crate::error::AgentError;
use crate::record::{FileId, Span};
use crate::state::{Group, State};
use crate::ui;

/// Publishes whose acknowledgement may be outstanding at once.
const WINDOW: usize = 4096;
/// How long connecting to one server, and each request, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one message's acknowledgement may take.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a wait for an acknowledgement looks whether the connection was
/// lost meanwhile.
const LOST_POLL: Duration = Duration::from_millis(100);

/// A connection, on a runtime of its own: dropping it drops the client's
/// tasks and whatever they still held to send. (Fields drop in order: the
/// client's handle, then the runtime.)
struct Conn {
    /// JetStream on the client (which it holds).
    js: Context,
    /// Set by the client's event callback when the connection drops.
    lost: Arc<AtomicBool>,
    rt: Runtime,
}

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
    /// sent.
    last_sequence: Option<u64>,
    headers: HeaderMap,
}

impl std::fmt::Debug for NatsOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOutput")
            .field("spec", &self.spec)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// Why connecting failed, as far as the agent cares.
enum ConnectFailure {
    /// The user's settings are wrong (exit 2 at start-up).
    Settings(String),
    /// No server could be reached; the next attempt may work.
    Unreachable(String),
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
    /// # Errors
    /// [`AgentError::Input`] (exit 2): an unknown host, refused credentials,
    /// an unreadable credentials or CA file, a TLS failure, no stream for
    /// the subject, or a `--nats-stream` that does not take it.
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
        let mut out = Self {
            id_prefix: format!("{agent:016x}"),
            spec,
            opts,
            names,
            conn: None,
            stream: None,
            last_sequence: None,
            headers,
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
        Ok(out)
    }

    /// Adds the stream sequence of the batch just delivered to `group`, the
    /// checkpoint write that also holds the offsets the batch covers.
    pub fn add_to(&self, group: &mut Group) {
        if let Some(seq) = self.last_sequence {
            self.names.add_sequence(group, seq);
        }
    }

    /// Connects to the first server that answers, in the order given.
    fn connect(&mut self) -> Result<(), ConnectFailure> {
        self.conn = None;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                ConnectFailure::Unreachable(format!("cannot start the NATS client: {e}"))
            })?;
        let lost = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(AtomicBool::new(false));
        let mut options = ConnectOptions::new()
            .name("spillway")
            .retain_servers_order()
            .connection_timeout(CONNECT_TIMEOUT)
            .request_timeout(Some(CONNECT_TIMEOUT));
        {
            let lost = Arc::clone(&lost);
            options = options.event_callback(move |event| {
                let lost = Arc::clone(&lost);
                async move {
                    if matches!(event, Event::Disconnected | Event::Closed) {
                        lost.store(true, Ordering::SeqCst);
                    }
                }
            });
        }
        {
            // Once connected, the client must not reconnect by itself (see
            // the module's doc): its reconnection waits for good; this
            // output drops the connection and makes a new one instead.
            let connected = Arc::clone(&connected);
            options = options.reconnect_delay_callback(move |_| {
                if connected.load(Ordering::SeqCst) {
                    Duration::from_secs(365 * 24 * 3600)
                } else {
                    Duration::ZERO
                }
            });
        }
        if let Some((u, p)) = &self.opts.user {
            options = options.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &self.opts.token {
            options = options.token(t.clone());
        }
        if let Some(ca) = &self.opts.ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if self.spec.tls {
            options = options.require_tls(true);
        }
        let creds = self.opts.creds.clone();
        let mut addrs = Vec::new();
        for url in self.spec.server_urls() {
            let addr: ServerAddr = url.parse().map_err(|e| {
                ConnectFailure::Settings(format!("NATS server {url} of --output: {e}"))
            })?;
            addrs.push(addr);
        }
        let servers = self.spec.servers_text();
        let result = rt.block_on(async move {
            if let Some(path) = creds {
                options = options.credentials_file(&path).await.map_err(|e| {
                    ConnectFailure::Settings(format!(
                        "--nats-creds {} cannot be used: {e}",
                        path.display()
                    ))
                })?;
            }
            let client = options.connect(addrs).await.map_err(|e| {
                let detail = error_chain(&e);
                let kind = if is_tls_failure(&e) {
                    ConnectErrorKind::Tls
                } else {
                    e.kind()
                };
                match kind {
                    ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                        ConnectFailure::Settings(format!(
                            "NATS server {servers} refused the credentials: {detail}"
                        ))
                    }
                    ConnectErrorKind::Tls => ConnectFailure::Settings(format!(
                        "TLS with NATS server {servers} failed: {detail}"
                    )),
                    ConnectErrorKind::Dns | ConnectErrorKind::ServerParse => {
                        ConnectFailure::Settings(format!(
                            "NATS server {servers} of --output: {detail}"
                        ))
                    }
                    _ => ConnectFailure::Unreachable(format!(
                        "no NATS server of {servers} could be reached: {detail}"
                    )),
                }
            })?;
            let js = jetstream::ContextBuilder::new()
                .timeout(ACK_TIMEOUT)
                // Never reached: the publisher keeps at most WINDOW in flight.
                .max_ack_inflight(WINDOW * 2)
                .build(client);
            Ok(js)
        });
        let js = result?;
        connected.store(true, Ordering::SeqCst);
        self.conn = Some(Conn { js, lost, rt });
        Ok(())
    }

    /// Finds the stream for the subject, or creates the `--nats-stream` one.
    /// Needs a connection.
    fn find_stream(&mut self) -> Result<(), String> {
        let Some(conn) = &self.conn else {
            return Err("not connected".into());
        };
        let subject = self.spec.subject.clone();
        let wanted = self.opts.stream.clone();
        let replicas = self.opts.replicas;
        let js = conn.js.clone();
        let found = conn.rt.block_on(async move {
            let by_subject = match js.stream_by_subject(subject.clone()).await {
                Ok(name) => Some(name),
                Err(e) => {
                    use async_nats::jetstream::context::GetStreamByNameErrorKind as K;
                    match e.kind() {
                        K::NotFound => None,
                        _ => {
                            return Err(format!(
                                "cannot look up the JetStream stream of subject {subject} \
                                 (is JetStream enabled on the server?): {}",
                                error_chain(&e)
                            ))
                        }
                    }
                }
            };
            match (wanted, by_subject) {
                (None, Some(name)) => Ok((name, None)),
                (None, None) => Err(format!(
                    "no JetStream stream takes subject {subject}: create one \
                     (nats stream add), or give --nats-stream NAME to have it created"
                )),
                (Some(w), Some(name)) if w == name => Ok((name, None)),
                (Some(w), Some(name)) => Err(format!(
                    "subject {subject} is taken by stream {name}, not by --nats-stream {w}"
                )),
                (Some(w), None) => {
                    // Not taken: either the stream does not exist (create
                    // it) or it exists with other subjects (an error).
                    match js.get_stream(&w).await {
                        Ok(mut s) => {
                            let subjects = s
                                .info()
                                .await
                                .map(|i| i.config.subjects.join(", "))
                                .unwrap_or_default();
                            Err(format!(
                                "stream {w} exists but its subjects ({subjects}) do not take \
                                 subject {subject}"
                            ))
                        }
                        Err(e) if is_not_found(&e) => {
                            let config = StreamConfig {
                                name: w.clone(),
                                subjects: vec![subject.clone()],
                                num_replicas: replicas,
                                discard: DiscardPolicy::Old,
                                duplicate_window: Duration::from_secs(120),
                                ..StreamConfig::default()
                            };
                            js.create_stream(config).await.map_err(|e| {
                                format!(
                                    "cannot create stream {w} for subject {subject}: {}",
                                    error_chain(&e)
                                )
                            })?;
                            Ok((w.clone(), Some(replicas)))
                        }
                        Err(e) => Err(format!("cannot look up stream {w}: {}", error_chain(&e))),
                    }
                }
            }
        });
        let (name, created) = found?;
        if let Some(r) = created {
            ui::note(format!(
                "created JetStream stream {name} for subject {} ({r} replica{})",
                self.spec.subject,
                if r == 1 { "" } else { "s" }
            ));
        }
        if let Some(window) = self.duplicate_window(&name) {
            if window.is_zero() {
                ui::note(format!(
                    "stream {name} keeps no duplicate window: a batch sent again after a \
                     failure or a restart is stored twice (at least once, not exactly once)"
                ));
            }
        }
        self.stream = Some(name);
        Ok(())
    }

    fn duplicate_window(&self, stream: &str) -> Option<Duration> {
        let conn = self.conn.as_ref()?;
        let js = conn.js.clone();
        let stream = stream.to_owned();
        conn.rt.block_on(async move {
            let mut s = js.get_stream(stream).await.ok()?;
            s.info().await.ok().map(|i| i.config.duplicate_window)
        })
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
        let result = self.try_send(parts, origins, deadline);
        if result.is_err() {
            // Whatever the connection still holds of this attempt must never
            // arrive after a gap: it goes with the connection.
            self.conn = None;
        }
        result.map_err(io::Error::other)
    }

    fn try_send(
        &mut self,
        parts: &[IoSlice<'_>],
        origins: &[Span],
        deadline: Instant,
    ) -> Result<(), String> {
        if self.conn.is_none() {
            match self.connect() {
                Ok(()) => {}
                Err(ConnectFailure::Settings(m) | ConnectFailure::Unreachable(m)) => return Err(m),
            }
        }
        if self.stream.is_none() {
            self.find_stream()?;
        }
        let Some(conn) = &self.conn else {
            return Err("not connected".into());
        };
        let lines = split_lines(parts);
        if lines.len() != origins.len() {
            return Err(format!(
                "internal error: {} lines but {} origins in a batch",
                lines.len(),
                origins.len()
            ));
        }
        let subject = self.spec.subject.clone();
        let js = &conn.js;
        let lost = &conn.lost;
        let headers = &self.headers;
        let id_prefix = &self.id_prefix;
        let work = async {
            let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(WINDOW);
            let mut last = 0u64;
            let mut duplicates = 0u64;
            for (data, at) in lines.iter().zip(origins) {
                if pending.len() >= WINDOW {
                    if let Some(f) = pending.pop_front() {
                        let ack = await_ack(f, lost).await?;
                        last = last.max(ack.0);
                        duplicates += u64::from(ack.1);
                    }
                }
                let mut h = headers.clone();
                h.insert("Nats-Msg-Id", message_id(id_prefix, at));
                let msg = jetstream::message::PublishMessage::build()
                    .payload(Bytes::copy_from_slice(data))
                    .headers(h);
                let f = js.send_publish(subject.clone(), msg).await.map_err(|e| {
                    format!("NATS publish on {subject} failed: {}", error_chain(&e))
                })?;
                pending.push_back(f);
            }
            while let Some(f) = pending.pop_front() {
                let ack = await_ack(f, lost).await?;
                last = last.max(ack.0);
                duplicates += u64::from(ack.1);
            }
            Ok::<_, String>((last, duplicates))
        };
        let until = tokio::time::Instant::from_std(deadline);
        let (last, duplicates) = conn
            .rt
            .block_on(async { tokio::time::timeout_at(until, work).await })
            .map_err(|_| {
                format!(
                    "NATS did not acknowledge the batch on {} before flush_timeout",
                    self.spec.subject
                )
            })??;
        if duplicates > 0 {
            ui::note(format!(
                "{duplicates} records were already in the stream (sent before a failure or \
                 a restart) and were not stored again"
            ));
        }
        self.last_sequence = Some(last);
        Ok(())
    }
}

/// Waits for one acknowledgement: the stream sequence and whether the
/// message was a duplicate. A lost connection ends the wait early.
async fn await_ack(f: PublishAckFuture, lost: &AtomicBool) -> Result<(u64, bool), String> {
    let mut fut = f.into_future();
    loop {
        match tokio::time::timeout(LOST_POLL, &mut fut).await {
            Ok(Ok(ack)) => return Ok((ack.sequence, ack.duplicate)),
            Ok(Err(e)) => {
                let why = match e.kind() {
                    PublishErrorKind::StreamNotFound => {
                        "no stream took the message (no stream for the subject, or the stream \
                         has no leader)"
                            .to_owned()
                    }
                    _ => error_chain(&e),
                };
                return Err(format!("NATS did not store a record: {why}"));
            }
            Err(_) => {
                if lost.load(Ordering::SeqCst) {
                    return Err("the connection to the NATS server was lost".into());
                }
            }
        }
    }
}

/// The message id of the record at `at`: the agent id, then which input
/// (a file's device, inode and truncation epoch, or `stdin`, whose offsets
/// count bytes of one stream that goes on across runs), then the record's
/// byte offset. Each part is stable across runs, so a record sent again
/// gets the id it had.
fn message_id(prefix: &str, at: &Span) -> String {
    if at.file == FileId::STDIN {
        format!("{prefix}.stdin.{}", at.start)
    } else {
        let f = at.file;
        format!("{prefix}.{:x}.{:x}.{}.{}", f.dev, f.ino, f.epoch, at.start)
    }
}

/// The lines of a batch, without their newlines.
fn split_lines<'a>(parts: &'a [IoSlice<'a>]) -> Vec<std::borrow::Cow<'a, [u8]>> {
    let mut lines = Vec::new();
    let mut pending: Option<Vec<u8>> = None;
    for part in parts {
        let mut rest: &'a [u8] = part;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let (line, after) = (&rest[..i], &rest[i + 1..]);
            match pending.take() {
                Some(mut head) => {
                    head.extend_from_slice(line);
                    lines.push(std::borrow::Cow::Owned(head));
                }
                None => lines.push(std::borrow::Cow::Borrowed(line)),
            }
            rest = after;
        }
        if !rest.is_empty() {
            pending.get_or_insert_with(Vec::new).extend_from_slice(rest);
        }
    }
    lines
}

/// An error and its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
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

/// Whether a failed connection failed in the TLS handshake (a server
/// certificate that the CA does not vouch for, no common protocol...): a
/// setting to fix, not a server to wait for. The client files the
/// handshake's errors as I/O errors, with rustls's error inside.
fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    use async_nats::rustls::Error as TlsError;
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<TlsError>() {
            return true;
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            if inner.is::<TlsError>() {
                return true;
            }
        }
        next = err.source();
    }
    false
}

fn is_not_found(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind as K;
    use async_nats::jetstream::ErrorCode;
    matches!(e.kind(), K::JetStream(je) if je.error_code() == ErrorCode::STREAM_NOT_FOUND)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_parts_without_their_newlines() {
        let parts = [
            IoSlice::new(b"a\nbb\n"),
            IoSlice::new(b"c"),
            IoSlice::new(b"\n"),
            IoSlice::new(b"\n"),
        ];
        let lines = split_lines(&parts);
        let lines: Vec<&[u8]> = lines.iter().map(|c| c.as_ref()).collect();
        assert_eq!(lines, [&b"a"[..], b"bb", b"c", b""]);
    }

    #[test]
    fn message_ids_tell_apart_agents_files_epochs_offsets_and_stdin() {
        let at = |dev, ino, epoch, start| Span {
            file: FileId { dev, ino, epoch },
            start,
            end: start + 1,
        };
        assert_eq!(message_id("a1", &at(0x10, 0xff, 2, 7)), "a1.10.ff.2.7");
        // Standard input: the stream offset, the same in every run.
        assert_eq!(message_id("a1", &at(0, 0, 0, 7)), "a1.stdin.7");
        let ids = [
            message_id("a1", &at(1, 2, 0, 3)),
            message_id("a2", &at(1, 2, 0, 3)),
            message_id("a1", &at(1, 2, 1, 3)),
            message_id("a1", &at(1, 3, 0, 3)),
            message_id("a1", &at(1, 2, 0, 4)),
            message_id("a1", &at(0, 0, 0, 3)),
            message_id("a2", &at(0, 0, 0, 3)),
        ];
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
