//! `--output http(s)://…`: one POST per batch, with `ureq` (rustls).
//!
//! What a response means:
//! - 2xx: the batch is delivered.
//! - 429, 408, 5xx, or no response at all (connection refused or reset, a
//!   timeout, a TLS failure, an unknown host): the attempt failed and the
//!   buffer retries it, then spools it, as for any output. A `Retry-After`
//!   on such a response is honoured by waiting inside the failed attempt
//!   (up to `retry_backoff_max`, and never past the call's deadline) before
//!   the buffer's own backoff starts: the library's backoff cannot be told
//!   a delay, and waiting here keeps the next attempt from coming early.
//! - Any other status (another 4xx, a 3xx: redirects are not followed, since
//!   a POST redirected to a GET would lose the body): a permanent failure.
//!   No retry can fix the URL, the credentials or the batch size, so the
//!   output refuses every later attempt without sending anything and raises
//!   its halt flag; the agent stops, keeps what it read (spool and
//!   checkpoint) and exits 1. The message holds the status and the first
//!   line of the response's body, so the user can fix the endpoint or the
//!   flags, and the next run delivers.
//!
//! 408 is retried although it is a 4xx: a server sends it when it closed an
//! idle connection, which a new attempt on a new connection gets past.

use std::io::{self, IoSlice, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ureq::http::header::{CONTENT_ENCODING, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use ureq::http::{HeaderName, HeaderValue, Response, Uri};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::{Agent, Body};

use super::http_body::{self, Format};
use crate::cli::HttpArgs;
use crate::error::AgentError;
use crate::settings::Settings;

/// How much of a response body is read to find its first line.
const BODY_PEEK: u64 = 4096;
/// How much of a 2xx body is read (and dropped) so that its connection can
/// be used again; a longer one closes it.
const BODY_DRAIN: u64 = 64 * 1024;
/// The longest first line of a body shown in a message.
const SHOWN_LINE: usize = 200;

/// Headers the agent sets itself: one given with `--http-header` would
/// contradict the body as sent.
const OWN_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "content-encoding"];

/// Posts each batch to a URL.
pub struct HttpOutput {
    agent: Agent,
    url: String,
    /// The URL as messages show it: without a password.
    shown: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// `--http-header` gave a Content-Type, which then replaces the format's.
    own_content_type: bool,
    format: Format,
    gzip: bool,
    timeout: Duration,
    retry_after_max: Duration,
    body: Vec<u8>,
    scratch: Vec<u8>,
    /// Set by a permanent failure: every later attempt fails with it.
    refused: Option<String>,
    halt: Arc<AtomicBool>,
}

impl std::fmt::Debug for HttpOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOutput")
            .field("url", &self.shown)
            .field("format", &self.format)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

/// Checks an `http://` or `https://` value of `--output`; returns it.
///
/// # Errors
/// One line naming the value and what is wrong with it.
pub fn parse_url(text: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!(
            "invalid value \"{}\" for --output: {why} (expected http(s)://HOST[:PORT][/PATH])",
            redact(text)
        )
    };
    let uri: Uri = text.parse().map_err(|e| bad(&format!("{e}")))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
        _ => return Err(bad("not an http or https URL")),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => {}
        _ => return Err(bad("no host")),
    }
    if text.contains('#') {
        return Err(bad("a fragment (#...) is never sent"));
    }
    Ok(text.to_owned())
}

/// `--http-*` flags are refused with any output but an HTTP one: they
/// would silently do nothing.
///
/// # Errors
/// [`AgentError::Input`] naming the first such flag.
pub fn reject_unused(args: &HttpArgs) -> Result<(), AgentError> {
    let given = [
        ("--http-format", args.http_format.is_some()),
        ("--http-field", !args.http_field.is_empty()),
        ("--http-header", !args.http_header.is_empty()),
        ("--http-gzip", args.http_gzip),
        ("--http-timeout", args.http_timeout.is_some()),
        ("--http-ca", args.http_ca.is_some()),
    ];
    match given.iter().find(|(_, on)| *on) {
        Some((flag, _)) => Err(AgentError::input(format!(
            "{flag} applies only to an http:// or https:// --output"
        ))),
        None => Ok(()),
    }
}

impl HttpOutput {
    /// An output posting to `url` (checked by [`parse_url`]) as `args` say.
    ///
    /// # Errors
    /// [`AgentError::Input`] for a bad flag value, an unreadable `--http-ca`,
    /// or an https URL on a system with no CA certificates.
    pub fn open(url: &str, args: &HttpArgs, settings: &Settings) -> Result<Self, AgentError> {
        let format = match args.http_format.as_deref() {
            None | Some("lines") => {
                if let Some(f) = args.http_field.first() {
                    return Err(AgentError::input(format!(
                        "--http-field {f} needs --http-format json (lines have no fields)"
                    )));
                }
                Format::Lines
            }
            Some("json") => Format::json(&parse_fields(&args.http_field)?),
            Some(other) => {
                return Err(AgentError::input(format!(
                    "invalid value \"{other}\" for --http-format: expected lines or json"
                )))
            }
        };
        let headers = parse_headers(&args.http_header, args.http_gzip)?;
        let own_content_type = headers.iter().any(|(k, _)| k == CONTENT_TYPE);
        let flush_timeout = settings.buffer.flush_timeout;
        let timeout = match &args.http_timeout {
            Some(v) => parse_duration("--http-timeout", v)?,
            None => flush_timeout,
        };

        let https = url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        let roots = match (&args.http_ca, https) {
            (Some(_), false) => {
                return Err(AgentError::input(
                    "--http-ca applies only to an https:// --output",
                ))
            }
            (Some(path), true) => load_ca(path)?,
            (None, true) => system_roots()?,
            // Unused for http://; an empty set costs nothing.
            (None, false) => Vec::new(),
        };
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build();
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            .user_agent(format!("spillway/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            agent,
            url: url.to_owned(),
            shown: redact(url),
            headers,
            own_content_type,
            format,
            gzip: args.http_gzip,
            timeout,
            retry_after_max: settings.buffer.retry_backoff_max,
            body: Vec::new(),
            scratch: Vec::new(),
            refused: None,
            halt: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Raised by a permanent failure: the agent stops reading and exits 1.
    pub fn halt_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.halt)
    }

    /// Posts one batch (see [`super::Output::send`]); the request ends by
    /// `deadline` whatever `--http-timeout` says.
    pub(super) fn send(
        &mut self,
        parts: &[IoSlice<'_>],
        len: usize,
        deadline: Instant,
    ) -> io::Result<()> {
        if let Some(msg) = &self.refused {
            return Err(io::Error::other(msg.clone()));
        }
        http_body::encode(
            &self.format,
            self.gzip,
            parts,
            len,
            &mut self.body,
            &mut self.scratch,
        )?;
        let timeout = self
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("POST {}: no time left before flush_timeout", self.shown),
            ));
        }
        let mut req = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build();
        if !self.own_content_type {
            req = req.header(CONTENT_TYPE, self.format.content_type());
        }
        if self.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        match req.send(&self.body[..]) {
            Ok(resp) => self.judge(resp, deadline),
            Err(e) => Err(io::Error::other(format!("POST {}: {e}", self.shown))),
        }
    }

    /// What a response means for the batch (see the module's notes).
    fn judge(&mut self, mut resp: Response<Body>, deadline: Instant) -> io::Result<()> {
        let status = resp.status();
        if status.is_success() {
            // Read so the connection can serve the next batch; the server
            // already accepted this one, whatever happens to its body.
            let _ = io::copy(
                &mut resp.body_mut().as_reader().take(BODY_DRAIN),
                &mut io::sink(),
            );
            return Ok(());
        }
        let code = status.as_u16();
        let mut what = format!("HTTP {code}");
        if let Some(reason) = status.canonical_reason() {
            what.push(' ');
            what.push_str(reason);
        }
        what.push_str(&format!(" from {}", self.shown));
        let retry_after = header_text(&resp, &RETRY_AFTER).and_then(|v| retry_after(&v));
        let location = header_text(&resp, &LOCATION);
        let line = first_line(resp.body_mut());
        if !line.is_empty() {
            what.push_str(": ");
            what.push_str(&line);
        }
        if code == 408 || code == 429 || status.is_server_error() || code >= 600 {
            if let Some(asked) = retry_after {
                let wait = asked
                    .min(self.retry_after_max)
                    .min(deadline.saturating_duration_since(Instant::now()));
                what.push_str(&format!(
                    " (Retry-After {}s: waited {} ms)",
                    asked.as_secs(),
                    wait.as_millis()
                ));
                std::thread::sleep(wait);
            }
            return Err(io::Error::other(what));
        }
        if status.is_redirection() {
            let to = location.unwrap_or_else(|| "elsewhere".into());
            what.push_str(&format!(
                "; redirects are not followed: point --output at {to}"
            ));
        }
        what.push_str(
            "; not retried (fix the URL, the --http-header flags or the batch size): \
             stopping; what is left is shipped by the next run",
        );
        self.refused = Some(what.clone());
        self.halt.store(true, Ordering::SeqCst);
        Err(io::Error::other(what))
    }
}

fn header_text(resp: &Response<Body>, name: &HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// `Retry-After`: seconds, or an HTTP date (past dates mean now).
fn retry_after(value: &str) -> Option<Duration> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still "a long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The first non-blank line of a response body, made safe to print.
fn first_line(body: &mut Body) -> String {
    let mut bytes = Vec::new();
    let _ = body.as_reader().take(BODY_PEEK).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut shown: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SHOWN_LINE)
        .collect();
    if line.chars().count() > SHOWN_LINE {
        shown.push('…');
    }
    shown
}

/// `K=V` pairs of `--http-field`.
fn parse_fields(given: &[String]) -> Result<Vec<(String, String)>, AgentError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for f in given {
        let Some((k, v)) = f.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(AgentError::input(format!(
                "invalid value \"{f}\" for --http-field: expected KEY=VALUE"
            )));
        };
        if k == "message" {
            return Err(AgentError::input(
                "--http-field message=...: \"message\" is the record's own field",
            ));
        }
        if fields.iter().any(|(seen, _)| seen == k) {
            return Err(AgentError::input(format!(
                "--http-field {k} is given twice"
            )));
        }
        fields.push((k.to_owned(), v.to_owned()));
    }
    Ok(fields)
}

/// `'K: V'` values of `--http-header`.
fn parse_headers(
    given: &[String],
    gzip: bool,
) -> Result<Vec<(HeaderName, HeaderValue)>, AgentError> {
    let mut headers = Vec::new();
    for h in given {
        let bad = |why: &str| {
            AgentError::input(format!(
                "invalid value \"{h}\" for --http-header: {why} (expected 'Name: value')"
            ))
        };
        let (k, v) = h.split_once(':').ok_or_else(|| bad("no colon"))?;
        let name = HeaderName::from_bytes(k.trim().as_bytes()).map_err(|_| bad("a bad name"))?;
        let value = HeaderValue::from_str(v.trim()).map_err(|_| bad("a bad value"))?;
        if OWN_HEADERS.contains(&name.as_str()) {
            let why = if name == CONTENT_ENCODING && !gzip {
                "the agent sets it (use --http-gzip)"
            } else {
                "the agent sets it from the body"
            };
            return Err(bad(why));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// A duration in the configuration's syntax (`250ms`, `2s`), above zero.
fn parse_duration(flag: &str, value: &str) -> Result<Duration, AgentError> {
    let mut scratch = spillway::BufferConfig::new();
    scratch.set("flush_interval", value).map_err(|_| {
        AgentError::input(format!(
            "invalid value \"{value}\" for {flag}: expected a duration above zero \
             (250ms, 2s, 1m)"
        ))
    })?;
    Ok(scratch.flush_interval)
}

/// The certificates of a PEM file.
fn load_ca(path: &Path) -> Result<Vec<Certificate<'static>>, AgentError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| AgentError::input(format!("--http-ca {shown} cannot be read: {e}")))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(AgentError::input(format!(
                    "--http-ca {shown} is not valid PEM: {e}"
                )))
            }
        }
    }
    if certs.is_empty() {
        return Err(AgentError::input(format!(
            "--http-ca {shown} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

/// The system's CA certificates (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the
/// distribution's bundle).
fn system_roots() -> Result<Vec<Certificate<'static>>, AgentError> {
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<_> = found
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if certs.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none installed".to_owned(), ToString::to_string);
        return Err(AgentError::input(format!(
            "https needs CA certificates and the system has none that can be read ({why}): \
             install them (ca-certificates) or give --http-ca FILE"
        )));
    }
    Ok(certs)
}

/// `url` with the password of its `user:password@` replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user = authority[..at].split(':').next().unwrap_or("");
    format!("{}{user}:***@{}", &url[..scheme_end + 3], &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_a_scheme_of_http_and_a_host() {
        assert_eq!(
            parse_url("http://h:8080/x?y=1").unwrap(),
            "http://h:8080/x?y=1"
        );
        assert!(parse_url("HTTPS://h/").is_ok());
        for bad in ["http://", "http:///path", "http://h/a b", "http://h/#frag"] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains("for --output"), "{e}");
        }
    }

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(redact("https://u:secret@h:1/p@x"), "https://u:***@h:1/p@x");
        assert_eq!(redact("http://u@h/"), "http://u:***@h/");
        assert_eq!(redact("http://h/p?a@b"), "http://h/p?a@b");
        let e = parse_url("http://u:secret@/").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("0"), Some(Duration::ZERO));
        assert_eq!(
            retry_after("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(100));
        let d = retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(90) && d <= Duration::from_secs(100),
            "{d:?}"
        );
        assert_eq!(retry_after("soon"), None);
        assert_eq!(retry_after("-1"), None);
    }

    #[test]
    fn fields_and_headers_are_checked() {
        let ok = parse_fields(&["a=1".into(), "b=x=y".into(), "c=".into()]).unwrap();
        assert_eq!(
            ok,
            [("a", "1"), ("b", "x=y"), ("c", "")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        for bad in [&["noequals"][..], &["=v"], &["message=x"], &["a=1", "a=2"]] {
            let args: Vec<String> = bad.iter().map(|s| (*s).to_owned()).collect();
            assert!(parse_fields(&args).is_err(), "{bad:?}");
        }
        let h = parse_headers(
            &["X-Token: a b ".into(), "content-type:text/csv".into()],
            false,
        )
        .unwrap();
        assert_eq!(h[0].0, "x-token");
        assert_eq!(h[0].1, "a b");
        assert_eq!(h[1].0, CONTENT_TYPE);
        for bad in ["NoColon", "Bad Name: v", "X: a\nb", "Content-Length: 3"] {
            let e = parse_headers(&[bad.into()], false).unwrap_err().to_string();
            assert!(e.contains("--http-header"), "{e}");
        }
        let e = parse_headers(&["Content-Encoding: br".into()], false).unwrap_err();
        assert!(e.to_string().contains("--http-gzip"), "{e}");
    }

    #[test]
    fn the_first_line_of_a_body_is_trimmed_and_printable() {
        let mut body = Body::builder().data("\n  bad token\x1b[31m \r\nmore\n");
        assert_eq!(first_line(&mut body), "bad token [31m");
        let long = "x".repeat(300);
        let mut body = Body::builder().data(long);
        let shown = first_line(&mut body);
        assert_eq!(shown.chars().count(), SHOWN_LINE + 1);
        assert!(shown.ends_with('…'));
    }
}
