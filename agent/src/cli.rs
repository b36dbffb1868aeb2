//! The command line: `spillway ship` and `spillway inspect`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str =
    "Ship newline-delimited records from a file or stdin to an output, in batches, \
                     at least once across crashes and outages.";

const SHIP_ABOUT: &str = "Ship the lines of a file (or stdin) to an output in batches";

const SHIP_LONG: &str = "\
Ship the lines of a file (or stdin) to an output in batches.

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
                Exactly once: every message carries Nats-Msg-Id (the state
                directory's agent id, the input's device, inode and
                truncation count, the record's byte offset), so a batch
                sent again - a retry, or the next run after a kill - is
                dropped by the stream's duplicate window, if it comes
                within that window (2 minutes unless the stream sets
                another). Past it, or with --input -, delivery is at least
                once. A new --state is a new agent id.

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

INPUTS:
  PATH    A regular file, read from the checkpoint on. If the file at PATH is
          no longer the one the checkpoint knows (another inode, or shorter
          than the offset), this is reported and it is shipped from its
          beginning. With --follow, the agent keeps reading as the file
          grows, and when the file is rotated (renamed and replaced by a new
          one, or truncated in place) it finishes the old one and goes on
          with the new one from its beginning.
  -       Standard input, which cannot be read twice: records go into the
          spool in DIR/stdin and are synced, in groups, before they count as
          read; a record leaves the spool only once the output accepted it.
          A kill loses no record that was read, and the next run ships what
          is left before reading stdin again. (--follow changes nothing:
          stdin is read to its end.)

STATE DIRECTORY:
  DIR/checkpoint.yaml holds the input's identity and the byte offset after
  the last delivered record, and the output file's length after it (for
  NATS: the agent id and the last acknowledged stream sequence). It is
  replaced atomically and never overwritten when it is found corrupt.
  DIR/stdin is the stdin spool. DIR/lock keeps a second agent out.
  `spillway inspect --state DIR` shows what is there.

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
     the same --state), or shipping failed
  2  bad input: an unknown flag or a bad value, a missing or unreadable
     input, an unusable or busy state directory, a corrupt checkpoint, an
     output that cannot be opened; for NATS: a bad URL, an unknown host,
     credentials the server refuses, an unreadable --nats-creds or --nats-ca
     file, a TLS failure, no stream for SUBJECT, a --nats-stream that does
     not take SUBJECT; nothing was shipped

A summary line goes to stderr at the end: records, batches, retries,
dropped, still spooled.";

const INSPECT_LONG: &str = "\
Show a state directory: the checkpoint (each input's file and the offset
after its last delivered record, each output's length) and the spools
(records, bytes, segments). Works while an agent runs (it then shows the
checkpoint as last written). Exit status 2 if DIR is not a state directory
or its checkpoint is corrupt.";

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
    Ship(Box<ShipArgs>),
    /// Show the checkpoint and spools of a state directory.
    #[command(long_about = INSPECT_LONG)]
    Inspect(InspectArgs),
}

/// Flags of `spillway ship`.
#[derive(Debug, Args)]
pub struct ShipArgs {
    /// File to ship, or - for standard input.
    #[arg(long, value_name = "PATH|-")]
    pub input: OsString,
    /// Where records go: a file (appended), - (standard output),
    /// exec:COMMAND (run per batch with the batch on its stdin), or
    /// nats://HOST:PORT[,HOST:PORT...]/SUBJECT (NATS JetStream).
    #[arg(long, value_name = "PATH|-|exec:COMMAND|nats://...")]
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
    /// Keep reading as the file grows, and follow it through rotation.
    #[arg(long)]
    pub follow: bool,
    /// Most bytes the spool may hold on disk [default: 1GiB].
    #[arg(long, value_name = "SIZE")]
    pub spool_max: Option<String>,
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
}

const NATS_HEADING: &str = "NATS output (--output nats://...)";

/// Flags of `spillway inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The state directory to show.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
}
