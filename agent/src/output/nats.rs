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
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy};
use async_nats::jetstream::{self, Context};
use async_nats::{ConnectErrorKind, ConnectOptions, Event, HeaderMap, ServerAddr, Subject};
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
/// How often a batch's publishing looks whether the connection was lost
/// meanwhile.
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
        // Lines are taken one by one as they are published (a batch's list
        // of them would be one more allocation the size of the batch).
        let newlines: usize = parts
            .iter()
            .map(|p| memchr::memchr_iter(b'\n', p).count())
            .sum();
        if newlines != origins.len() {
            return Err(format!(
                "internal error: {newlines} lines but {} origins in a batch",
                origins.len()
            ));
        }
        let lines = Lines::new(parts);
        // Made once per batch: each message then costs a reference count
        // for the subject and a short string for its id, nothing more.
        let subject = Subject::from(self.spec.subject.as_str());
        let js = &conn.js;
        let headers = &self.headers;
        let mut ids = MessageIds::new(&self.id_prefix);
        let publish = async {
            let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(WINDOW);
            let mut last = 0u64;
            let mut duplicates = 0u64;
            for (data, at) in lines.zip(origins) {
                if pending.len() >= WINDOW {
                    if let Some(f) = pending.pop_front() {
                        let ack = acknowledged(f.await)?;
                        last = last.max(ack.0);
                        duplicates += u64::from(ack.1);
                    }
                }
                let mut h = headers.clone();
                h.insert(NATS_MESSAGE_ID, ids.id(at));
                let msg = jetstream::message::PublishMessage::build()
                    .payload(Bytes::copy_from_slice(&data))
                    .headers(h);
                let f = js.send_publish(subject.clone(), msg).await.map_err(|e| {
                    format!("NATS publish on {subject} failed: {}", error_chain(&e))
                })?;
                pending.push_back(f);
            }
            while let Some(f) = pending.pop_front() {
                let ack = acknowledged(f.await)?;
                last = last.max(ack.0);
                duplicates += u64::from(ack.1);
            }
            Ok::<_, String>((last, duplicates))
        };
        // One watch for the whole batch, rather than a timer per message: a
        // lost connection ends the wait for acknowledgements early.
        let work = first_of(publish, watch_lost(&conn.lost));
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

/// The stream sequence of one acknowledgement and whether the message was a
/// duplicate, or why the stream did not store it.
fn acknowledged(ack: Result<PublishAck, PublishError>) -> Result<(u64, bool), String> {
    match ack {
        Ok(ack) => Ok((ack.sequence, ack.duplicate)),
        Err(e) => {
            let why = match e.kind() {
                PublishErrorKind::StreamNotFound => {
                    "no stream took the message (no stream for the subject, or the stream \
                     has no leader)"
                        .to_owned()
                }
                _ => error_chain(&e),
            };
            Err(format!("NATS did not store a record: {why}"))
        }
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

/// Makes the message ids of a batch (see [`message_id`]): the part before
/// the offset is made once per input, not once per record.
struct MessageIds<'a> {
    prefix: &'a str,
    file: Option<FileId>,
    head: String,
}

impl<'a> MessageIds<'a> {
    fn new(prefix: &'a str) -> Self {
        Self {
            prefix,
            file: None,
            head: String::new(),
        }
    }

    fn id(&mut self, at: &Span) -> String {
        if self.file != Some(at.file) {
            self.head = id_head(self.prefix, at.file);
            self.file = Some(at.file);
        }
        let mut id = String::with_capacity(self.head.len() + 20);
        id.push_str(&self.head);
        push_decimal(&mut id, at.start);
        id
    }
}

/// The message id of the record at `at`: the agent id, then which input
/// (a file's device, inode and truncation epoch, or `stdin`, whose offsets
/// count bytes of one stream that goes on across runs), then the record's
/// byte offset. Each part is stable across runs, so a record sent again
/// gets the id it had.
#[cfg(test)]
fn message_id(prefix: &str, at: &Span) -> String {
    MessageIds::new(prefix).id(at)
}

/// Everything of a message id before the record's offset.
fn id_head(prefix: &str, file: FileId) -> String {
    if file == FileId::STDIN {
        format!("{prefix}.stdin.")
    } else {
        format!("{prefix}.{:x}.{:x}.{}.", file.dev, file.ino, file.epoch)
    }
}

/// Appends `n` in decimal, without the formatting machinery (once per
/// message).
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

/// The lines of a batch, without their newlines, one at a time: a line is
/// borrowed from its part, or put together when it spans parts (a line and
/// its newline given apart). Bytes after the last newline are not a line.
struct Lines<'a> {
    parts: std::slice::Iter<'a, IoSlice<'a>>,
    rest: &'a [u8],
    head: Option<Vec<u8>>,
}

impl<'a> Lines<'a> {
    fn new(parts: &'a [IoSlice<'a>]) -> Self {
        Self {
            parts: parts.iter(),
            rest: &[],
            head: None,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = std::borrow::Cow<'a, [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', self.rest) {
                let (line, after) = (&self.rest[..i], &self.rest[i + 1..]);
                self.rest = after;
                return Some(match self.head.take() {
                    Some(mut head) => {
                        head.extend_from_slice(line);
                        std::borrow::Cow::Owned(head)
                    }
                    None => std::borrow::Cow::Borrowed(line),
                });
            }
            if !self.rest.is_empty() {
                self.head
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(self.rest);
            }
            let part: &'a [u8] = self.parts.next()?;
            self.rest = part;
        }
    }
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
            IoSlice::new(b"no newline"),
        ];
        let lines: Vec<Vec<u8>> = Lines::new(&parts).map(|c| c.into_owned()).collect();
        let lines: Vec<&[u8]> = lines.iter().map(|c| c.as_slice()).collect();
        assert_eq!(lines, [&b"a"[..], b"bb", b"c", b""]);
    }

    #[test]
    fn ids_made_in_a_batch_are_those_of_each_record_alone() {
        let at = |ino, start| Span {
            file: FileId {
                dev: 3,
                ino,
                epoch: 0,
            },
            start,
            end: start + 1,
        };
        let records = [at(9, 0), at(9, 10), at(7, 0), at(9, u64::MAX - 1), at(0, 5)];
        let mut ids = MessageIds::new("a1");
        let got: Vec<String> = records.iter().map(|r| ids.id(r)).collect();
        assert_eq!(
            got,
            [
                "a1.3.9.0.0",
                "a1.3.9.0.10",
                "a1.3.7.0.0",
                "a1.3.9.0.18446744073709551614",
                "a1.3.0.0.5"
            ]
        );
        for (r, id) in records.iter().zip(&got) {
            assert_eq!(&message_id("a1", r), id);
        }
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
