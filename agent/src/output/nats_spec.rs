//! What a NATS output is told: the servers and subject of
//! `--output nats://HOST:PORT[,HOST:PORT...]/SUBJECT` and the `--nats-*`
//! flags, checked before anything is opened.
//!
//! Always compiled, so that a build without the `nats` feature can still
//! say what a `nats://` output is and that it was left out.

use std::fmt;
use std::path::PathBuf;

use crate::cli::ShipArgs;
use crate::error::AgentError;
use crate::output::OutputSpec;

/// The port of a server named without one.
pub const DEFAULT_PORT: u16 = 4222;

/// `nats://[USER:PASSWORD@|TOKEN@]HOST[:PORT][,HOST[:PORT]...]/SUBJECT`, or
/// the same with `tls://`.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsSpec {
    /// `tls://`: the connection must be encrypted.
    pub tls: bool,
    /// The servers, in the order given: `(host, port)`.
    pub servers: Vec<(String, u16)>,
    /// The subject every record is published on.
    pub subject: String,
    /// Credentials from the URL's userinfo.
    pub userinfo: Option<UserInfo>,
    /// The `--nats-*` flags (see [`with_flags`]).
    pub options: NatsOptions,
}

/// The userinfo of a server URL.
#[derive(Clone, PartialEq, Eq)]
pub enum UserInfo {
    /// `USER:PASSWORD@`.
    Password(String, String),
    /// `TOKEN@`.
    Token(String),
}

impl NatsSpec {
    /// Whether `value` is meant as a NATS output (a `nats://` or `tls://` URL).
    pub fn is_nats(value: &str) -> bool {
        value.starts_with("nats://") || value.starts_with("tls://")
    }

    /// Reads a `nats://` or `tls://` output URL.
    ///
    /// # Errors
    /// One line naming the value, the form expected and what is wrong.
    pub fn parse(value: &str) -> Result<Self, String> {
        Self::parse_parts(value).map_err(|why| {
            format!(
                "invalid value \"{}\" for --output: expected \
                 nats://HOST:PORT[,HOST:PORT...]/SUBJECT ({why})",
                redact(value)
            )
        })
    }

    fn parse_parts(value: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(r) = value.strip_prefix("nats://") {
            (false, r)
        } else if let Some(r) = value.strip_prefix("tls://") {
            (true, r)
        } else {
            return Err("the scheme must be nats:// or tls://".into());
        };
        let (authority, subject) = rest
            .split_once('/')
            .ok_or("no /SUBJECT after the servers")?;
        check_subject(subject)?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((info, hosts)) => (Some(parse_userinfo(info)?), hosts),
            None => (None, authority),
        };
        let mut servers = Vec::new();
        for server in hosts.split(',') {
            servers.push(parse_server(server)?);
        }
        Ok(Self {
            tls,
            servers,
            subject: subject.to_owned(),
            userinfo,
            options: NatsOptions::default(),
        })
    }

    /// The server URLs as the client takes them, credentials left out.
    pub fn server_urls(&self) -> Vec<String> {
        let scheme = if self.tls { "tls" } else { "nats" };
        self.servers
            .iter()
            .map(|(h, p)| {
                if h.contains(':') {
                    format!("{scheme}://[{h}]:{p}")
                } else {
                    format!("{scheme}://{h}:{p}")
                }
            })
            .collect()
    }
}

impl NatsSpec {
    /// The servers as `HOST:PORT,...`, for messages.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub fn servers_text(&self) -> String {
        let s = self.to_string();
        let rest = s.split_once("://").map_or(s.as_str(), |(_, r)| r);
        rest.split_once('/').map_or(rest, |(h, _)| h).to_owned()
    }
}

impl fmt::Display for NatsSpec {
    /// The URL without its credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "tls" } else { "nats" };
        let hosts: Vec<String> = self
            .server_urls()
            .iter()
            .map(|u| u.split_once("://").map_or(u.clone(), |(_, h)| h.to_owned()))
            .collect();
        write!(f, "{scheme}://{}/{}", hosts.join(","), self.subject)
    }
}

impl fmt::Debug for NatsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NatsSpec({self})")
    }
}

/// The value with its userinfo hidden, for messages.
fn redact(value: &str) -> String {
    match value.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            match authority.rsplit_once('@') {
                Some((_, hosts)) => format!("{scheme}://***@{hosts}/{path}"),
                None => value.to_owned(),
            }
        }
        None => value.to_owned(),
    }
}

fn parse_userinfo(info: &str) -> Result<UserInfo, String> {
    match info.split_once(':') {
        Some((user, pass)) => {
            let user = percent_decode(user)?;
            if user.is_empty() {
                return Err("an empty user name before the password".into());
            }
            Ok(UserInfo::Password(user, percent_decode(pass)?))
        }
        None => {
            let token = percent_decode(info)?;
            if token.is_empty() {
                return Err("nothing before @".into());
            }
            Ok(UserInfo::Token(token))
        }
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a bad %-escape in the credentials")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials that are not UTF-8".into())
}

fn parse_server(server: &str) -> Result<(String, u16), String> {
    if server.is_empty() {
        return Err("an empty server in the list".into());
    }
    let (host, port) = if let Some(rest) = server.strip_prefix('[') {
        // [IPv6]:PORT
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("server \"{server}\": no ] after an IPv6 address"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("server \"{server}\": junk after ]")),
        }
    } else {
        match server.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (server, None),
        }
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || "/?#@[]".contains(c))
    {
        return Err(format!("server \"{server}\": a bad host name"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("server \"{server}\": the port must be 1-65535")),
        },
    };
    Ok((host.to_owned(), port))
}

/// A subject records can be published on: dot-separated tokens, none empty,
/// no spaces, no wildcards.
fn check_subject(subject: &str) -> Result<(), String> {
    if subject.is_empty() {
        return Err("no subject after /".into());
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("subject \"{subject}\" holds a space"));
    }
    for token in subject.split('.') {
        if token.is_empty() {
            return Err(format!("subject \"{subject}\" has an empty token"));
        }
        if token == "*" || token == ">" {
            return Err(format!(
                "subject \"{subject}\" has a wildcard; records are published on one subject"
            ));
        }
    }
    Ok(())
}

/// Takes the `--nats-*` flags into a NATS output's spec.
///
/// # Errors
/// A bad flag value, or a `--nats-*` flag with an output that is not NATS.
pub fn with_flags(spec: OutputSpec, args: &ShipArgs) -> Result<OutputSpec, AgentError> {
    match spec {
        OutputSpec::Nats(mut n) => {
            n.options = NatsOptions::from_args(args, &n)?;
            Ok(OutputSpec::Nats(n))
        }
        other => match NatsOptions::any_given(args) {
            Some(flag) => Err(AgentError::input(format!(
                "{flag} applies to a nats:// or tls:// --output only"
            ))),
            None => Ok(other),
        },
    }
}

/// The `--nats-*` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsOptions {
    /// `--nats-creds`: a credentials file (JWT and nkey seed).
    pub creds: Option<PathBuf>,
    /// `--nats-user` and `--nats-password`, or the URL's `USER:PASSWORD@`.
    pub user: Option<(String, String)>,
    /// `--nats-token`, or the URL's `TOKEN@`.
    pub token: Option<String>,
    /// `--nats-ca`: the CA certificates (PEM) that the server's certificate
    /// must chain to; implies TLS.
    pub ca: Option<PathBuf>,
    /// `--nats-header K=V`, in order.
    pub headers: Vec<(String, String)>,
    /// `--nats-stream`: the stream to use, created if no stream takes the
    /// subject.
    pub stream: Option<String>,
    /// `--nats-replicas`: replicas of a stream that is created.
    pub replicas: usize,
    /// `--nats-dedup`: how a record is kept from landing twice.
    pub dedup: Dedup,
}

/// How the NATS output delivers each record once (`--nats-dedup`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dedup {
    /// `sequence` (the default): no header on ordinary messages; each
    /// batch's first message is guarded by the subject's last sequence and
    /// carries a manifest, and what landed unacknowledged is read back.
    /// Exactly once across any restart delay, if the agent is the only
    /// publisher on its subject.
    #[default]
    Sequence,
    /// `msg-id`: `Nats-Msg-Id` on every message, deduplicated by the
    /// stream's duplicate window. Exactly once for a restart within the
    /// window; subjects may be shared.
    MsgId,
}

impl Dedup {
    /// Reads `--nats-dedup`.
    ///
    /// # Errors
    /// A value other than `sequence` or `msg-id`.
    pub fn parse(value: &str) -> Result<Self, AgentError> {
        match value {
            "sequence" => Ok(Self::Sequence),
            "msg-id" => Ok(Self::MsgId),
            _ => Err(AgentError::input(format!(
                "invalid value \"{value}\" for --nats-dedup: expected sequence or msg-id"
            ))),
        }
    }
}

impl NatsOptions {
    /// Reads the `--nats-*` flags, merged with the URL's userinfo.
    ///
    /// # Errors
    /// A bad header, stream name or replica count, or two ways of
    /// authenticating at once.
    pub fn from_args(args: &ShipArgs, spec: &NatsSpec) -> Result<Self, AgentError> {
        let mut opts = Self {
            creds: args.nats_creds.clone(),
            ca: args.nats_ca.clone(),
            token: args.nats_token.clone(),
            replicas: 1,
            ..Self::default()
        };
        if let Some(user) = &args.nats_user {
            let pass = args.nats_password.clone().unwrap_or_default();
            opts.user = Some((user.clone(), pass));
        }
        match &spec.userinfo {
            None => {}
            Some(_) if opts.creds.is_some() || opts.user.is_some() || opts.token.is_some() => {
                return Err(AgentError::input(
                    "the --output URL holds credentials and a --nats-creds, --nats-user or \
                     --nats-token flag is given too: use one of them",
                ))
            }
            Some(UserInfo::Password(u, p)) => opts.user = Some((u.clone(), p.clone())),
            Some(UserInfo::Token(t)) => opts.token = Some(t.clone()),
        }
        for h in &args.nats_header {
            opts.headers.push(parse_header(h)?);
        }
        if let Some(name) = &args.nats_stream {
            if name.is_empty()
                || name
                    .chars()
                    .any(|c| c.is_whitespace() || ".*>/\\".contains(c))
            {
                return Err(AgentError::input(format!(
                    "invalid value \"{name}\" for --nats-stream: a stream name has no spaces \
                     and none of . * > / \\"
                )));
            }
            opts.stream = Some(name.clone());
        }
        if let Some(n) = &args.nats_replicas {
            opts.replicas = match n.parse::<usize>() {
                Ok(n @ 1..=5) => n,
                _ => {
                    return Err(AgentError::input(format!(
                        "invalid value \"{n}\" for --nats-replicas: expected 1 to 5"
                    )))
                }
            };
        }
        if let Some(d) = &args.nats_dedup {
            opts.dedup = Dedup::parse(d)?;
        }
        Ok(opts)
    }

    /// Whether any `--nats-*` flag was given (they only make sense with a
    /// NATS output).
    pub fn any_given(args: &ShipArgs) -> Option<&'static str> {
        let given = [
            ("--nats-creds", args.nats_creds.is_some()),
            ("--nats-user", args.nats_user.is_some()),
            ("--nats-password", args.nats_password.is_some()),
            ("--nats-token", args.nats_token.is_some()),
            ("--nats-ca", args.nats_ca.is_some()),
            ("--nats-header", !args.nats_header.is_empty()),
            ("--nats-stream", args.nats_stream.is_some()),
            ("--nats-replicas", args.nats_replicas.is_some()),
            ("--nats-dedup", args.nats_dedup.is_some()),
        ];
        given.into_iter().find(|(_, g)| *g).map(|(f, _)| f)
    }
}

/// `K=V`: a header name (letters, digits, `-`, `_`) that is not one of
/// NATS's own (`Nats-...`), and a value without line breaks.
fn parse_header(h: &str) -> Result<(String, String), AgentError> {
    let bad = |why: &str| {
        AgentError::input(format!(
            "invalid value \"{h}\" for --nats-header: expected NAME=VALUE ({why})"
        ))
    };
    let (k, v) = h.split_once('=').ok_or_else(|| bad("no ="))?;
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad("a name is letters, digits, - and _"));
    }
    if k.len() >= 5 && k[..5].eq_ignore_ascii_case("nats-") {
        return Err(bad("Nats-* headers are NATS's own"));
    }
    if v.contains(['\r', '\n']) {
        return Err(bad("a line break in the value"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_subject_and_credentials_are_read_from_the_url() {
        let s = NatsSpec::parse("nats://u:p%40ss@h1:4000,[::1],h3/logs.app").unwrap();
        assert!(!s.tls);
        assert_eq!(
            s.servers,
            vec![
                ("h1".to_owned(), 4000),
                ("::1".to_owned(), DEFAULT_PORT),
                ("h3".to_owned(), DEFAULT_PORT)
            ]
        );
        assert_eq!(s.subject, "logs.app");
        assert!(s.userinfo == Some(UserInfo::Password("u".into(), "p@ss".into())));
        assert_eq!(
            s.server_urls(),
            ["nats://h1:4000", "nats://[::1]:4222", "nats://h3:4222"]
        );
        assert_eq!(s.to_string(), "nats://h1:4000,[::1]:4222,h3:4222/logs.app");
        let t = NatsSpec::parse("tls://secret@h:1/x").unwrap();
        assert!(t.tls);
        assert!(t.userinfo == Some(UserInfo::Token("secret".into())));
    }

    #[test]
    fn a_bad_url_is_one_line_naming_the_problem_without_the_password() {
        let cases = [
            ("nats://h:4222", "no /SUBJECT after the servers"),
            ("nats://h:4222/", "no subject after /"),
            (
                "nats://h:99999/x",
                "server \"h:99999\": the port must be 1-65535",
            ),
            ("nats://h:0/x", "the port must be 1-65535"),
            ("nats://h,,g/x", "an empty server in the list"),
            ("nats://h/a..b", "subject \"a..b\" has an empty token"),
            ("nats://h/a.>", "has a wildcard"),
            ("nats://h/a b", "holds a space"),
            ("nats://:p@h/a", "an empty user name"),
            ("nats://h:/x", "the port must be 1-65535"),
        ];
        for (url, why) in cases {
            let err = NatsSpec::parse(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains('\n'));
        }
        let err = NatsSpec::parse("nats://me:hunter2@h/").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("nats://***@h/"), "{err}");
    }

    #[test]
    fn dedup_is_sequence_or_msg_id() {
        assert_eq!(Dedup::default(), Dedup::Sequence);
        assert_eq!(Dedup::parse("sequence").unwrap(), Dedup::Sequence);
        assert_eq!(Dedup::parse("msg-id").unwrap(), Dedup::MsgId);
        let err = Dedup::parse("id").unwrap_err().to_string();
        assert!(
            err.contains("invalid value \"id\" for --nats-dedup: expected sequence or msg-id"),
            "{err}"
        );
    }

    #[test]
    fn headers_are_name_equals_value_and_not_natss_own() {
        assert_eq!(
            parse_header("X-Site=plant 4=b").unwrap(),
            ("X-Site".to_owned(), "plant 4=b".to_owned())
        );
        for bad in [
            "novalue",
            "=v",
            "a b=c",
            "Nats-Msg-Id=1",
            "nats-expected-stream=s",
        ] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
    }
}
