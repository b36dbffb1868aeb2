//! A minimal HTTP/1.1 server for the HTTP output's tests, on 127.0.0.1
//! only, inside the test process.
//!
//! Hand-rolled on `std::net` rather than a server crate: the tests need to
//! see every request exactly as it arrived (a body cut short by a killed
//! agent must not count), to answer with any status and header, and to be
//! absent on a port and then appear on it; a few dozen lines do that with no
//! dependency. One connection per request (`Connection: close`), each on
//! its own thread. With [`Server::start_tls`] it speaks HTTPS (rustls).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request, as received in full.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as sent (still compressed if it was).
    pub body: Vec<u8>,
    /// When its last byte arrived.
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body, gunzipped when it says it is gzip.
    pub fn plain_body(&self) -> Vec<u8> {
        if self.header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .expect("a valid gzip body");
            out
        } else {
            self.body.clone()
        }
    }
}

/// What the server answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn ok() -> Self {
        Self::status(200, "")
    }

    pub fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

/// Decides the reply to a request, given how many came before it.
pub type Responder = Box<dyn FnMut(&Request, usize) -> Reply + Send>;

struct Shared {
    requests: Mutex<Vec<Request>>,
    responder: Mutex<Responder>,
    stop: AtomicBool,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running server; stopped when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// A server on a free port of 127.0.0.1.
    pub fn start(responder: Responder) -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap(), responder, None)
    }

    /// An HTTPS server on a free port of 127.0.0.1, with the certificate
    /// chain and PKCS#8 key of these PEM files.
    pub fn start_tls(responder: Responder, cert_pem: &Path, key_pem: &Path) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(cert_pem)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key_pem).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            responder,
            Some(Arc::new(config)),
        )
    }

    /// A server on `addr`, which some other socket may still be leaving:
    /// binding is tried for a few seconds.
    pub fn start_at(addr: SocketAddr, responder: Responder) -> Self {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpListener::bind(addr) {
                Ok(l) => return Self::on(l, responder, None),
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot bind {addr}: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    fn on(
        listener: TcpListener,
        responder: Responder,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        direct();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            responder: Mutex::new(responder),
            stop: AtomicBool::new(false),
            tls,
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    match &s.tls {
                        None => serve(conn, &s),
                        Some(config) => {
                            let Ok(tls) = rustls::ServerConnection::new(Arc::clone(config)) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(tls, conn), &s);
                        }
                    }
                });
            }
        });
        Self {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// A free port of 127.0.0.1 with nothing listening on it (yet).
    pub fn unused_addr() -> SocketAddr {
        direct();
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every complete request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests answered with a 2xx.
    pub fn accepted(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn set_responder(&self, r: Responder) {
        *self.shared.responder.lock().unwrap() = r;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// The agents a test starts talk to its server directly, whatever proxy
/// the environment names (they inherit the test's environment).
fn direct() {
    for v in [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ] {
        std::env::remove_var(v);
    }
}

fn serve(stream: impl Read + Write, s: &Shared) {
    let mut reader = BufReader::new(stream);
    let Some(mut req) = read_request(&mut reader) else {
        return; // cut short (the agent was killed), refused TLS, not HTTP
    };
    // Recorded and answered under one lock, so the index is the order.
    let mut requests = s.requests.lock().unwrap();
    let reply = (s.responder.lock().unwrap())(&req, requests.len());
    req.status = reply.status;
    requests.push(req);
    drop(requests);
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&reply.body);
    let w = reader.get_mut();
    let _ = w.write_all(head.as_bytes());
    let _ = w.flush();
}

fn read_request(r: &mut BufReader<impl Read>) -> Option<Request> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let body = if let Some(len) = find("content-length") {
        let mut body = vec![0; len.parse().ok()?];
        r.read_exact(&mut body).ok()?;
        body
    } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(r)?
    } else {
        Vec::new()
    };
    Some(Request {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
        status: 0,
    })
}

fn read_chunked(r: &mut BufReader<impl Read>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).ok()?;
        let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).ok()?;
        if n == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}
