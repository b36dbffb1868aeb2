//! Connecting the NATS output: the client on its own runtime, the servers
//! tried in order, and the stream that takes the subject (found, or made
//! with `--nats-stream`).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy};
use async_nats::jetstream::{self, Context};
use async_nats::{ConnectErrorKind, ConnectOptions, Event, ServerAddr};
use tokio::runtime::Runtime;

use super::{error_chain, NatsOutput, WINDOW};
use crate::output::nats_spec::Dedup;
use crate::ui;

/// How long connecting to one server, and each request, may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one message's acknowledgement may take.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection, on a runtime of its own: dropping it drops the client's
/// tasks and whatever they still held to send. (Fields drop in order: the
/// client's handle, then the runtime.)
pub(super) struct Conn {
    /// JetStream on the client (which it holds).
    pub(super) js: Context,
    /// Set by the client's event callback when the connection drops.
    pub(super) lost: Arc<AtomicBool>,
    pub(super) rt: Runtime,
}

/// Why connecting failed, as far as the agent cares.
pub(super) enum ConnectFailure {
    /// The user's settings are wrong (exit 2 at start-up).
    Settings(String),
    /// No server could be reached; the next attempt may work.
    Unreachable(String),
}

impl NatsOutput {
    /// Connects to the first server that answers, in the order given.
    pub(super) fn connect(&mut self) -> Result<(), ConnectFailure> {
        self.conn = None;
        // What a dropped connection still held may have landed.
        self.doubt = true;
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
    pub(super) fn find_stream(&mut self) -> Result<(), String> {
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
        let window = match self.opts.dedup {
            Dedup::MsgId => self.duplicate_window(&name),
            Dedup::Sequence => None,
        };
        if let Some(window) = window {
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
