//! The command line: `spillway ship` and `spillway inspect`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str =
    "Ship newline-delimited records from a file or stdin to an output, in batches, \
                     at least once across crashes and outages.";

const SHIP_ABOUT: &str = "Ship the lines of files (or stdin) to an output in batches";

const SHIP_LONG: &str = "\
Ship the lines of files (named, or matched by a glob) or of stdin to an
output in batches.

A record is one line, without its newline. Records go to the output in
batches, in the order they were read; a batch goes out when it holds
--max-size records or --max-bytes bytes, or when --flush-interval passes.
The checkpoint in --state moves only after the output accepted a batch, so
a run that is killed, or whose output is down, loses nothing: the next run
with the same --state resumes after the last delivered record.";

const SHIP_AFTER: &str = "\
OUTPUTS:
  PATH          Records are appended one per line. Each batch is synced to
                disk (fdatasync) before it counts as delivered. The file is
                locked while the agent runs. At start, bytes that a killed run
                wrote after its last delivered batch are cut off and sent
                again, so a file output holds every record exactly once.
  -             Standard output (synced too when it is a regular file).
  exec:COMMAND  `sh -c COMMAND` runs once per batch with the batch on its
                standard input, one record per line. Exit status 0 accepts the
                batch; any other status, or running past flush_timeout (then
                it is killed), fails it.
  nats://HOST:PORT[,HOST:PORT...]/SUBJECT  (or tls://...)
                NATS JetStream: each record is one message on SUBJECT. A
                batch is published pipelined and is delivered once the
                stream acknowledged every message; a negative or missing
                acknowledgement fails it. Servers are tried in the order
                given; after a failure the agent reconnects (while none
                answers, batches are retried and spooled). USER:PASSWORD@
                or TOKEN@ before the servers authenticate, or the
                --nats-* flags. At start-up the stream that takes SUBJECT
                is looked up (--nats-stream creates it when none does).
                Exactly once (--nats-dedup sequence, the default), if
                the agent is the only publisher on SUBJECT: the first
                message of each batch carries
                Nats-Expected-Last-Subject-Sequence (the last sequence on
                SUBJECT the checkpoint knows) and a manifest (Spw-Batch)
                mapping the batch's messages to input records; the others
                carry no header. At start, after a failed batch and on
                reconnecting, the agent reads back what landed on SUBJECT
                past the sequence it knows and counts it as delivered, so
                nothing is sent twice whatever time passes before a
                restart. A message there that it did not send (another
                publisher) is an error naming SUBJECT.
                With --nats-dedup msg-id every message carries
                Nats-Msg-Id (the state directory's agent id; the record's
                own file's device, inode and truncation count, or stdin;
                the record's byte offset), so a batch sent again - a
                retry, or the next run after a kill - is dropped by the
                stream's duplicate window, if it comes within that window
                (2 minutes unless the stream sets another). Past it,
                delivery is at least once. SUBJECT may be shared.
  http://URL, https://URL
                One POST per batch (see HTTP OUTPUT below).

FAILURES:
  A failed batch is retried with exponential backoff (retry_backoff, capped
  at retry_backoff_max). After max_retries retries it goes to the spool in
  DIR/spool (stdin's records are already spooled: they are retried on), and
  the spool is sent, oldest first, when the output accepts batches again.
  Without --follow, once a batch has failed max_retries + 1 times the agent
  stops reading, spools what it holds and exits 1; the next run ships the
  spool first, then the file from the checkpoint on, sending nothing twice.
  With --follow it keeps reading and retrying until the output recovers or
  it is stopped. A full spool (--spool-max) stops the agent (exit 1): what
  it could not keep is after the checkpoint, and the next run ships it.

HTTP OUTPUT (cargo feature `http`, in the default build):
  Each batch is one POST to the URL. The body is the batch's records, one
  per line (--http-format lines, Content-Type text/plain), or one JSON
  object per line (--http-format json, application/x-ndjson):
  {\"message\":\"RECORD\"} followed by the --http-field constants as strings.
  JSON escapes \\\" \\\\ and every control character; bytes that are not UTF-8
  become U+FFFD (use lines to ship records byte for byte). --http-gzip
  compresses the body (Content-Encoding: gzip). user:password@ in the URL
  sends Basic authentication (messages hide the password). https checks
  the server against the system's CA certificates, or only those of
  --http-ca FILE. A proxy comes from ALL_PROXY, HTTPS_PROXY or HTTP_PROXY
  (the first set), except for the hosts NO_PROXY names.
  A response decides the batch:
    2xx                delivered.
    429, 408, 5xx, no response (refused, reset, timeout, TLS, DNS)
                       the attempt failed: retried, then spooled, as above.
                       Retry-After (seconds or a date) is waited for, up to
                       retry_backoff_max, before the usual backoff.
    other 4xx, 3xx     permanent: no retry can fix it (redirects are not
                       followed). The message shows the status and the
                       first line of the response's body; the agent stops
                       (even with --follow), keeps what it read in the spool
                       and after the checkpoint, and exits 1: fix the
                       endpoint or the flags, and the next run delivers it.
  At least once: a batch is sent again only when no 2xx for it was seen
  (a kill, a timeout, a lost response), and then whole: repeats are whole
  batches, never parts of one.

INPUTS:
  PATH    A regular file, read from the checkpoint on. If the file at PATH is
          no longer the one the checkpoint knows (another inode, or shorter
          than the offset), this is reported and it is shipped from its
          beginning. With --follow, the agent keeps reading as the file
          grows, and when the file is rotated (renamed and replaced by a new
          one, or truncated in place) it finishes the old one and goes on
          with the new one from its beginning.
  GLOB    '/var/log/app/*.log' (quoted): every regular file it matches (*,
          ?, [...] in any component; * skips hidden files). --input may be
          repeated; each file has its own checkpoint entry and keeps its
          order; files are taken in turn. Files are told apart by device and
          inode: with --follow the globs are matched again every second and
          a file that starts to match is read from its beginning, while a
          file already read (a rotated name that still matches) is not read
          twice. A file rotated away while no agent ran is found next to its
          old path and finished from the checkpoint before the new file at
          that path. A file deleted while it is read is reported and shipped
          to its end from the open descriptor. A glob that matches nothing
          is an error without --follow (exit 2); a match that is the output
          file is skipped.
  -       Standard input, which cannot be read twice. A reader thread reads
          it in chunks of at most --stdin-chunk bytes and syncs each chunk
          to the spool in DIR/stdin before it reads the next one and before
          any of its lines is sent; a chunk leaves the spool only after the
          checkpoint records every line in it as delivered. The next run
          ships what is left before reading stdin again, and drops what the
          checkpoint says was delivered, so a file output gets every line
          exactly once across kills. SIGINT/SIGTERM (any orderly stop) loses
          nothing read: the chunk in hand is spooled first. kill -9 loses at
          most the chunk read and not yet synced: --stdin-chunk bytes. If
          the output fails max_retries + 1 times in a row, the agent reads
          the rest of stdin into the spool until stdin ends or the spool is
          full (--spool-max), then exits 1; the next run ships the spool.
          (--follow changes nothing: stdin is read to its end.)

STATE DIRECTORY:
  DIR/checkpoint.yaml holds each input file's identity and the byte offset
  after its last delivered record (for stdin, the offset in its stream
  across runs), and the output file's length after them (for NATS: the
  agent id and the last acknowledged stream sequence), all written in one
  atomic write. It is never overwritten when it is found corrupt. DIR/stdin
  is the stdin spool. DIR/lock keeps a second agent out.
  `spillway inspect --state DIR` shows what is there, with each input
  file's lag (bytes past its checkpoint offset).

CONFIGURATION:
  --config FILE.yaml takes the keys of spillway's BufferConfig (max_size,
  max_bytes, flush_interval, flush_timeout, max_retries, retry_backoff,
  retry_backoff_max, capacity, workers, ...); the flags override the file.
  The agent ships in order, so `partitions` must be 1; records are never
  dropped, so `overflow` must be block or spill; the spool lives in DIR, so
  `spool_dir` must not be set. capacity is raised to twice max_size when it
  is smaller. Defaults: max_size 20000, max_bytes 4MiB, flush_interval 1s,
  flush_timeout 30s, max_retries 3. Memory stays near 4 x max_bytes (at
  least 16 MiB) whatever the input's size.
  SIZE: 512, 64KiB, 10MiB, 1GiB (or kB, MB, GB). DUR: 250ms, 2s, 1m, 1h.

SIGNALS:
  SIGINT or SIGTERM: stop reading, deliver what was read, write the
  checkpoint and exit. A second one exits at once (nothing delivered is
  lost: the checkpoint only ever trails the output).

EXIT STATUS:
  0  everything read was delivered
  1  something read is left undelivered (it is shipped by the next run with
     the same --state): the output was down, the spool was full, a signal
     stopped a run whose output failed, or an HTTP output failed for good;
     or shipping failed
  2  bad input: an unknown flag or a bad value, a missing or unreadable
     input, a glob that matches no file (without --follow), - with other
     inputs, an unusable or busy state directory, a corrupt checkpoint, an
     output that cannot be opened (a bad URL, --http-* flag or --http-ca
     file); for NATS: a bad URL, an unknown host, credentials the server
     refuses, an unreadable --nats-creds or --nats-ca file, a TLS failure,
     no stream for SUBJECT, a --nats-stream that does not take SUBJECT, a
     message on SUBJECT this agent did not send (--nats-dedup sequence);
     nothing was shipped

A summary line goes to stderr at the end: records, batches, retries,
dropped, still spooled; for stdin also the bytes read and the bytes left in
its spool.";

const INSPECT_LONG: &str = "\
Show a state directory: the checkpoint (every input file, with the offset
after its last delivered record and its lag: how many bytes the file has
past that offset now; standard input's delivered offset; each file
output's length; each NATS subject with its last acknowledged stream
sequence) and the spools (records, bytes, segments). Works while an agent
runs (it then shows the checkpoint as last written).

Exit status: 0 when DIR was shown; 2 if DIR is not a state directory or
its checkpoint is corrupt.";

/// The `spillway` command.
#[derive(Debug, Parser)]
#[command(name = "spillway", version, about = ABOUT, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ship the lines of a file (or stdin) to an output.
    #[command(about = SHIP_ABOUT, long_about = SHIP_LONG, after_long_help = SHIP_AFTER)]
    // Boxed: ship's flags outweigh inspect's many times over.
    Ship(Box<ShipArgs>),
    /// Show the checkpoint and spools of a state directory.
    #[command(long_about = INSPECT_LONG)]
    Inspect(InspectArgs),
}

/// Flags of `spillway ship`.
#[derive(Debug, Args)]
pub struct ShipArgs {
    /// File to ship, a glob of files ('/var/log/app/*.log', quoted), or -
    /// for standard input. Repeat it for more files; - stands alone.
    #[arg(long, value_name = "PATH|GLOB|-", required = true)]
    pub input: Vec<OsString>,
    /// Where records go: a file (appended), - (standard output),
    /// exec:COMMAND (run per batch with the batch on its stdin),
    /// http(s)://URL (one POST per batch) or
    /// nats://HOST:PORT[,HOST:PORT...]/SUBJECT (NATS JetStream).
    #[arg(long, value_name = "PATH|-|exec:COMMAND|URL|nats://...")]
    pub output: OsString,
    /// Directory of the checkpoint and the spool (created if missing).
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// YAML file of buffer settings (BufferConfig keys); flags override it.
    #[arg(long, value_name = "FILE.yaml")]
    pub config: Option<PathBuf>,
    /// Records per batch at most [default: 20000].
    #[arg(long, value_name = "N")]
    pub max_size: Option<String>,
    /// Bytes per batch at most, newlines included; 0 = no limit [default: 4MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_bytes: Option<String>,
    /// Longest a record waits before its batch goes out [default: 1s].
    #[arg(long, value_name = "DUR")]
    pub flush_interval: Option<String>,
    /// Keep reading as files grow, follow them through rotation, and read
    /// files that start to match a glob.
    #[arg(long)]
    pub follow: bool,
    /// Most bytes the spool may hold on disk [default: 1GiB].
    #[arg(long, value_name = "SIZE")]
    pub spool_max: Option<String>,
    /// Most bytes read from standard input before they are synced to the
    /// stdin spool; what `kill -9` can lose of stdin [default: 256KiB].
    #[arg(long, value_name = "SIZE")]
    pub stdin_chunk: Option<String>,
    /// Print a stats line on stderr every DUR (a progress bar on a terminal
    /// when the input's size is known).
    #[arg(long, value_name = "DUR")]
    pub stats: Option<String>,
    /// NATS credentials file (user JWT and nkey seed).
    #[arg(long, value_name = "FILE", help_heading = NATS_HEADING,
          conflicts_with_all = ["nats_user", "nats_token"])]
    pub nats_creds: Option<PathBuf>,
    /// NATS user name (with --nats-password; or USER:PASSWORD@ in the URL).
    #[arg(long, value_name = "USER", help_heading = NATS_HEADING,
          conflicts_with = "nats_token")]
    pub nats_user: Option<String>,
    /// NATS password of --nats-user.
    #[arg(long, value_name = "PASSWORD", help_heading = NATS_HEADING, requires = "nats_user")]
    pub nats_password: Option<String>,
    /// NATS authentication token (or TOKEN@ in the URL).
    #[arg(long, value_name = "TOKEN", help_heading = NATS_HEADING)]
    pub nats_token: Option<String>,
    /// CA certificates (PEM) the NATS server's certificate must chain to;
    /// TLS is then required, as with a tls:// URL.
    #[arg(long, value_name = "FILE", help_heading = NATS_HEADING)]
    pub nats_ca: Option<PathBuf>,
    /// Header added to every NATS message (repeatable).
    #[arg(long, value_name = "K=V", help_heading = NATS_HEADING)]
    pub nats_header: Vec<String>,
    /// JetStream stream to use; created for SUBJECT when no stream takes
    /// SUBJECT (an existing one is used as it is).
    #[arg(long, value_name = "NAME", help_heading = NATS_HEADING)]
    pub nats_stream: Option<String>,
    /// Replicas of the stream that --nats-stream creates (1-5) [default: 1].
    #[arg(long, value_name = "N", help_heading = NATS_HEADING, requires = "nats_stream")]
    pub nats_replicas: Option<String>,
    /// How each record is kept from landing twice: sequence (the default:
    /// the agent must be the only publisher on SUBJECT; exactly once
    /// across any restart delay) or msg-id (Nats-Msg-Id on every message;
    /// exactly once for a restart within the stream's duplicate window,
    /// SUBJECT may be shared). See OUTPUTS below.
    #[arg(long, value_name = "sequence|msg-id", help_heading = NATS_HEADING)]
    pub nats_dedup: Option<String>,
    /// Flags of the HTTP output.
    #[cfg(feature = "http")]
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Flags of the HTTP output (`--output http(s)://...`); refused with any
/// other output.
#[cfg(feature = "http")]
#[derive(Debug, Args)]
#[command(next_help_heading = "HTTP output (--output http(s)://URL)")]
pub struct HttpArgs {
    /// Body: the records one per line, or one {"message": RECORD} JSON
    /// object per line [default: lines].
    #[arg(long, value_name = "FORMAT", value_parser = ["lines", "json"])]
    pub http_format: Option<String>,
    /// A constant string field of every JSON object (repeatable; needs
    /// --http-format json).
    #[arg(long, value_name = "KEY=VALUE")]
    pub http_field: Vec<String>,
    /// An extra request header, e.g. 'Authorization: Bearer TOKEN'
    /// (repeatable; a Content-Type given here replaces the format's).
    #[arg(long, value_name = "'NAME: VALUE'")]
    pub http_header: Vec<String>,
    /// Compress each body with gzip (Content-Encoding: gzip).
    #[arg(long)]
    pub http_gzip: bool,
    /// Longest one request may take, connecting to the response's end
    /// [default and most: flush_timeout, 30s].
    #[arg(long, value_name = "DUR")]
    pub http_timeout: Option<String>,
    /// PEM file of the CA certificates to trust for https, instead of the
    /// system's.
    #[arg(long, value_name = "FILE")]
    pub http_ca: Option<PathBuf>,
}

const NATS_HEADING: &str = "NATS output (--output nats://...)";

/// Flags of `spillway inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The state directory to show.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
}
