//! Where batches go: a file, standard output, a command per batch, an
//! HTTP endpoint (one POST per batch; cargo feature `http`) or a NATS
//! JetStream subject (one message per line; cargo feature `nats`).
//!
//! Each output takes a whole batch, already laid out as lines, and says
//! whether it accepted it. A file output is synced before it accepts, and
//! can take back what it wrote but was never confirmed.

mod exec;
pub(crate) mod file;
#[cfg(feature = "http")]
pub(crate) mod http;
#[cfg(feature = "http")]
mod http_body;
#[cfg(feature = "nats")]
pub(crate) mod nats;
#[cfg(feature = "nats")]
mod nats_ids;
#[cfg(feature = "nats")]
mod nats_manifest;
#[cfg(feature = "nats")]
mod nats_publish;
#[cfg(feature = "nats")]
pub(crate) mod nats_readback;
pub(crate) mod nats_spec;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IoSlice, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{atomic::AtomicBool, Arc};
use std::time::Instant;

pub use exec::ExecOutput;
pub use file::{FileOutput, Reconciled, Recorded};
#[cfg(feature = "nats")]
pub use nats::NatsOutput;
pub use nats_spec::NatsSpec;

#[cfg(feature = "http")]
pub use http::HttpOutput;

use crate::record::Span;

/// What `--output` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// `PATH`: append to a file.
    File(PathBuf),
    /// `-`: standard output.
    Stdout,
    /// `exec:COMMAND`: run `sh -c COMMAND` per batch.
    Exec(String),
    /// `nats://HOST:PORT[,...]/SUBJECT`: publish to NATS JetStream.
    Nats(Box<NatsSpec>),
    /// `http://...` or `https://...`: POST each batch there.
    #[cfg(feature = "http")]
    Http(String),
}

impl OutputSpec {
    /// Reads `--output`.
    ///
    /// # Errors
    /// An empty value, or `exec:` with no command.
    pub fn parse(value: &OsString) -> Result<Self, String> {
        if value.is_empty() {
            return Err("invalid value \"\" for --output: expected PATH, - or exec:COMMAND".into());
        }
        if value == "-" {
            return Ok(Self::Stdout);
        }
        if let Some(text) = value.to_str() {
            if NatsSpec::is_nats(text) {
                if cfg!(not(feature = "nats")) {
                    return Err(format!(
                        "invalid value \"{text}\" for --output: this spillway was built \
                         without the NATS output (cargo feature nats)"
                    ));
                }
                return NatsSpec::parse(text).map(|n| Self::Nats(Box::new(n)));
            }
            if let Some(cmd) = text.strip_prefix("exec:") {
                if cmd.trim().is_empty() {
                    return Err(
                        "invalid value \"exec:\" for --output: expected a command after exec:"
                            .into(),
                    );
                }
                return Ok(Self::Exec(cmd.to_owned()));
            }
            if is_http_url(text) {
                #[cfg(feature = "http")]
                return http::parse_url(text).map(Self::Http);
                #[cfg(not(feature = "http"))]
                return Err(format!(
                    "--output {text}: this spillway was built without the HTTP output \
                     (cargo feature `http`)"
                ));
            }
        }
        Ok(Self::File(PathBuf::from(value)))
    }
}

impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Stdout => f.write_str("standard output"),
            Self::Exec(c) => write!(f, "exec:{c}"),
            Self::Nats(n) => write!(f, "{n}"),
            #[cfg(feature = "http")]
            Self::Http(url) => f.write_str(&http::redact(url)),
        }
    }
}

/// `http://` or `https://`, in any case: what `--output` takes as a URL.
fn is_http_url(text: &str) -> bool {
    let lower = |n: usize| text.get(..n).map(str::to_ascii_lowercase);
    lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://")
}

/// An open output.
#[derive(Debug)]
pub enum Output {
    /// A file, appended to and synced.
    File(FileOutput),
    /// Standard output.
    Stdout,
    /// A command per batch.
    Exec(ExecOutput),
    /// A NATS JetStream subject.
    #[cfg(feature = "nats")]
    Nats(Box<NatsOutput>),
    /// A POST per batch.
    #[cfg(feature = "http")]
    Http(HttpOutput),
}

impl Output {
    /// Sends one batch: `parts` laid end to end are its lines, each ending
    /// in a newline, `len` bytes in all. `Ok` means the output accepted it:
    /// written and synced for a file, written (and synced, if it is a file)
    /// for standard output, exit status 0 before `deadline` for a command,
    /// every message acknowledged for NATS. `origins[i]` is where line `i`
    /// came from.
    ///
    /// # Errors
    /// What went wrong, in one line; the batch counts as not delivered.
    pub fn send(
        &mut self,
        parts: &[IoSlice<'_>],
        len: usize,
        origins: &[Span],
        deadline: Instant,
    ) -> io::Result<()> {
        let _ = origins; // only NATS, when built in, names records by origin
        match self {
            Self::File(f) => f.send(parts),
            Self::Stdout => send_stdout(parts),
            Self::Exec(e) => {
                let mut payload = Vec::with_capacity(len);
                for p in parts {
                    payload.extend_from_slice(p);
                }
                e.send(payload, deadline)
            }
            #[cfg(feature = "nats")]
            Self::Nats(n) => n.send(parts, origins, deadline),
            #[cfg(feature = "http")]
            Self::Http(h) => h.send(parts, len, deadline),
        }
    }

    /// A flag the output raises when it failed in a way no retry can fix:
    /// the agent then stops reading and keeps what it has for the next run.
    pub fn halt_flag(&self) -> Option<Arc<AtomicBool>> {
        match self {
            #[cfg(feature = "http")]
            Self::Http(h) => Some(h.halt_flag()),
            _ => None,
        }
    }

    /// The batch just sent is recorded as delivered (a file output will not
    /// take it back any more).
    pub fn confirm(&mut self) {
        if let Self::File(f) = self {
            f.confirm();
        }
    }
}

fn send_stdout(parts: &[IoSlice<'_>]) -> io::Result<()> {
    let stdout = io::stdout();
    let mut lock = stdout.lock();
    write_all_vectored(&mut lock, parts)?;
    lock.flush()?;
    // Redirected to a file, standard output is synced like a file output.
    let fd = lock.as_fd().try_clone_to_owned()?;
    let file = std::fs::File::from(fd);
    if file.metadata()?.is_file() {
        file.sync_data()?;
    }
    Ok(())
}

/// Writes every byte of `parts`, in as few calls as the system allows
/// (`Write::write_all_vectored` is not stable yet).
pub(crate) fn write_all_vectored(w: &mut impl Write, parts: &[IoSlice<'_>]) -> io::Result<()> {
    let mut owned: Vec<IoSlice<'_>> = parts.iter().filter(|p| !p.is_empty()).copied().collect();
    let mut rest = &mut owned[..];
    while !rest.is_empty() {
        match w.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
