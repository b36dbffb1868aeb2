//! Helpers of the NATS tests: a real `nats-server` (one node or a cluster)
//! on free local ports with a temporary store, killed when dropped, and a
//! client to read a stream back.
#![allow(dead_code)]

pub mod jwt;
pub mod tls;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, stream::Config};
use futures_util::StreamExt;

/// Holds the other tests of this test binary that call it until the guard
/// drops: for the runs (one per `--nats-dedup` mode) that each keep a
/// server and an agent busy, so that neither runs slow, and past its
/// timing, for the other's sake.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The server binary (Debian's package `nats-server` puts it in /usr/sbin).
pub fn server_bin() -> Option<PathBuf> {
    let candidates = [
        "nats-server",
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
    ];
    candidates.iter().map(PathBuf::from).find(|p| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The server binary, or `None` after saying visibly that the test skips.
pub fn server_or_skip(test: &str) -> Option<PathBuf> {
    let bin = server_bin();
    if bin.is_none() {
        eprintln!("SKIPPED: nats-server not installed ({test}); apt-get install nats-server");
        println!("SKIPPED: nats-server not installed ({test})");
    }
    bin
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One `nats-server -js` process.
pub struct Server {
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    pub port: u16,
    pub name: String,
    log: PathBuf,
}

impl Server {
    /// Starts a JetStream node on a free port, storing in `dir`, with
    /// `extra` arguments; waits until it accepts connections.
    pub fn start(bin: &Path, dir: &Path, name: &str, extra: &[String]) -> Self {
        let port = free_port();
        Self::start_on(bin, dir, name, port, extra)
    }

    /// [`start`](Self::start) with the extra arguments as string slices.
    pub fn start_with(bin: &Path, dir: &Path, name: &str, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        Self::start(bin, dir, name, &extra)
    }

    pub fn start_on(bin: &Path, dir: &Path, name: &str, port: u16, extra: &[String]) -> Self {
        let store = dir.join(format!("store-{name}"));
        std::fs::create_dir_all(&store).unwrap();
        let mut args: Vec<String> = [
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-sd",
            store.to_str().unwrap(),
            "--server_name",
            name,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend_from_slice(extra);
        let mut s = Self {
            bin: bin.to_path_buf(),
            args,
            child: None,
            port,
            name: name.to_owned(),
            log: dir.join(format!("{name}.log")),
        };
        s.run();
        s
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "nats-server {} exited ({status}): {}",
                        self.name,
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "nats-server {} did not listen",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (a clean shutdown that writes out the store), and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if c.try_wait().unwrap().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts it again with the same port and store.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running server");
        self.run();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three JetStream nodes routed together on localhost.
pub fn cluster(bin: &Path, dir: &Path) -> Vec<Server> {
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    (0..3)
        .map(|i| {
            let others: Vec<String> = (0..3)
                .filter(|&j| j != i)
                .map(|j| format!("nats://127.0.0.1:{}", routes[j]))
                .collect();
            let extra = vec![
                "--cluster_name".to_owned(),
                "spillway".to_owned(),
                "--cluster".to_owned(),
                format!("nats://127.0.0.1:{}", routes[i]),
                "--routes".to_owned(),
                others.join(","),
            ];
            Server::start_on(bin, dir, &format!("n{}", i + 1), ports[i], &extra)
        })
        .collect()
}

/// A client of the tests, on a runtime of its own.
pub struct Client {
    rt: tokio::runtime::Runtime,
    js: jetstream::Context,
}

impl Client {
    /// Connects to any of `urls` (retrying for a while: a server may be
    /// starting).
    pub fn connect(urls: &[String]) -> Self {
        Self::connect_with(urls, async_nats::ConnectOptions::new)
    }

    /// Connects with a token.
    pub fn connect_token(urls: &[String], token: &str) -> Self {
        Self::connect_with(urls, || {
            async_nats::ConnectOptions::new().token(token.to_owned())
        })
    }

    /// Connects with a user name and password.
    pub fn connect_as(urls: &[String], user: Option<(&str, &str)>) -> Self {
        Self::connect_with(urls, || {
            let opts = async_nats::ConnectOptions::new();
            match user {
                Some((u, p)) => opts.user_and_password(u.to_owned(), p.to_owned()),
                None => opts,
            }
        })
    }

    /// Connects over TLS, trusting the CA certificates (PEM) in `ca`.
    pub fn connect_tls(urls: &[String], ca: &Path) -> Self {
        Self::connect_with(urls, || {
            async_nats::ConnectOptions::new()
                .add_root_certificates(ca.to_path_buf())
                .require_tls(true)
        })
    }

    /// Connects with a credentials file (a user JWT and its seed).
    pub fn connect_creds(urls: &[String], creds: &Path) -> Self {
        let text = std::fs::read_to_string(creds).unwrap();
        Self::connect_with(urls, || {
            async_nats::ConnectOptions::with_credentials(&text).unwrap()
        })
    }

    fn connect_with(urls: &[String], options: impl Fn() -> async_nats::ConnectOptions) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let js = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let addrs: Vec<async_nats::ServerAddr> =
                    urls.iter().map(|u| u.parse().unwrap()).collect();
                match options().connect(addrs).await {
                    Ok(c) => return jetstream::new(c),
                    Err(e) => {
                        assert!(Instant::now() < deadline, "cannot connect to {urls:?}: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Self { rt, js }
    }

    /// Creates a stream, retrying while JetStream is not ready yet (a
    /// cluster elects its meta leader first).
    pub fn create_stream(&self, name: &str, subject: &str, replicas: usize) {
        self.rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let cfg = Config {
                    name: name.to_owned(),
                    subjects: vec![subject.to_owned()],
                    num_replicas: replicas,
                    ..Config::default()
                };
                match self.js.create_stream(cfg).await {
                    Ok(_) => return,
                    Err(e) => {
                        assert!(
                            Instant::now() < deadline,
                            "cannot create stream {name}: {e}"
                        );
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        });
    }

    /// Creates a stream whose duplicate window is `window`.
    pub fn create_stream_with_window(&self, name: &str, subject: &str, window: Duration) {
        self.rt.block_on(async {
            let cfg = Config {
                name: name.to_owned(),
                subjects: vec![subject.to_owned()],
                duplicate_window: window,
                ..Config::default()
            };
            self.js.create_stream(cfg).await.unwrap();
        });
    }

    /// Creates a stream whose messages (headers and payload) may be at
    /// most `max_msg_size` bytes: the stream refuses a longer one with an
    /// error, and goes on storing the messages after it.
    pub fn create_stream_with_max_msg_size(&self, name: &str, subject: &str, max_msg_size: i32) {
        self.rt.block_on(async {
            let cfg = Config {
                name: name.to_owned(),
                subjects: vec![subject.to_owned()],
                max_message_size: max_msg_size,
                ..Config::default()
            };
            self.js.create_stream(cfg).await.unwrap();
        });
    }

    /// Changes the largest message `stream` takes.
    pub fn set_max_msg_size(&self, stream: &str, max_msg_size: i32) {
        self.rt.block_on(async {
            let mut s = self.js.get_stream(stream).await.unwrap();
            let mut cfg = s.info().await.unwrap().config.clone();
            cfg.max_message_size = max_msg_size;
            self.js.update_stream(cfg).await.unwrap();
        });
    }

    /// The stream's messages now, its last sequence ever assigned, and how
    /// many messages below that were deleted.
    pub fn stream_state(&self, stream: &str) -> (u64, u64, u64) {
        self.rt.block_on(async {
            let mut s = self.js.get_stream(stream).await.unwrap();
            let st = &s.info().await.unwrap().state;
            (
                st.messages,
                st.last_sequence,
                st.deleted_count.unwrap_or_default(),
            )
        })
    }

    /// Publishes `payload` on `subject` with `headers`, and waits for its
    /// acknowledgement: the stream sequence.
    pub fn publish(&self, subject: &str, payload: &[u8], headers: &[(&str, &str)]) -> u64 {
        self.rt.block_on(async {
            let mut h = async_nats::HeaderMap::new();
            for (k, v) in headers {
                h.insert(*k, *v);
            }
            let msg = jetstream::message::PublishMessage::build()
                .payload(payload.to_vec().into())
                .headers(h);
            let ack = self
                .js
                .send_publish(subject.to_owned(), msg)
                .await
                .unwrap()
                .await
                .unwrap();
            ack.sequence
        })
    }

    /// Messages in `stream` now, `None` if it cannot be asked right now.
    pub fn count(&self, stream: &str) -> Option<u64> {
        self.rt.block_on(async {
            let s = self.js.get_stream(stream).await.ok()?;
            s.get_info().await.ok().map(|i| i.state.messages)
        })
    }

    /// The headers of message `seq` of `stream`, as `(name, value)`.
    pub fn headers(&self, stream: &str, seq: u64) -> Vec<(String, String)> {
        self.rt.block_on(async {
            let s = self.js.get_stream(stream).await.unwrap();
            let m = s.get_raw_message(seq).await.unwrap();
            m.headers
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| (k.to_string(), v.to_string())))
                .collect()
        })
    }

    /// The server name of the stream's leader.
    pub fn leader(&self, stream: &str) -> Option<String> {
        self.rt.block_on(async {
            let s = self.js.get_stream(stream).await.ok()?;
            s.get_info().await.ok()?.cluster?.leader
        })
    }

    /// Every message of `stream`, in stream order: payload and Nats-Msg-Id.
    pub fn read_all(&self, stream: &str) -> Vec<(Vec<u8>, String)> {
        self.rt.block_on(async {
            // A cluster that just lost a node may time out a request or
            // two while it settles: each step is retried for a while.
            let deadline = Instant::now() + Duration::from_secs(60);
            let (total, mut messages) = loop {
                let attempt = async {
                    let s = self
                        .js
                        .get_stream(stream)
                        .await
                        .map_err(|e| e.to_string())?;
                    let info = s.get_info().await.map_err(|e| e.to_string())?;
                    let consumer = s
                        .create_consumer(OrderedConfig::default())
                        .await
                        .map_err(|e| e.to_string())?;
                    let messages = consumer.messages().await.map_err(|e| e.to_string())?;
                    Ok::<_, String>((info.state.messages as usize, messages))
                };
                match attempt.await {
                    Ok(found) => break found,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "cannot read {stream}: {e}");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            };
            let mut out = Vec::with_capacity(total);
            let deadline = Instant::now() + Duration::from_secs(300);
            while out.len() < total {
                assert!(Instant::now() < deadline, "read {} of {total}", out.len());
                let m = tokio::time::timeout(Duration::from_secs(30), messages.next())
                    .await
                    .expect("no message for 30 s")
                    .expect("the consumer ended")
                    .expect("a bad message");
                let id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                out.push((m.payload.to_vec(), id));
            }
            out
        })
    }
}

/// How the agent keeps records from landing twice (`--nats-dedup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedup {
    /// The default: a guarded, manifest-bearing first message per batch,
    /// no header on the others.
    Sequence,
    /// `Nats-Msg-Id` on every message.
    MsgId,
}

impl Dedup {
    /// The agent's flags for this mode.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Self::Sequence => &[],
            Self::MsgId => &["--nats-dedup", "msg-id"],
        }
    }
}

/// Checks that the stream holds lines `1..=n` of the generated input, each
/// once, in order; with `Dedup::MsgId` each with a distinct message id, with
/// `Dedup::Sequence` none with a message id.
pub fn assert_exactly_once_in_order(
    got: &[(Vec<u8>, String)],
    n: u64,
    line: impl Fn(u64) -> String,
    dedup: Dedup,
) {
    for (i, (payload, id)) in got.iter().enumerate() {
        let want = line(i as u64 + 1);
        if payload != want.as_bytes() {
            panic!(
                "message {} is {:?}, expected {:?} ({} messages for {n} lines)",
                i + 1,
                String::from_utf8_lossy(payload),
                want,
                got.len()
            );
        }
        match dedup {
            Dedup::MsgId => assert!(!id.is_empty(), "message {} has no Nats-Msg-Id", i + 1),
            Dedup::Sequence => assert!(id.is_empty(), "message {} has Nats-Msg-Id {id}", i + 1),
        }
    }
    assert_eq!(got.len() as u64, n, "messages in the stream");
    if dedup == Dedup::MsgId {
        let ids: std::collections::HashSet<&String> = got.iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), got.len(), "message ids are not distinct");
    }
}
