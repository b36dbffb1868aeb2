//! `spillway inspect`: what a state directory holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use spillway::checkpoint::{Checkpoint, EventLogState};
use spillway::spool::{Spool, SpoolConfig};

use crate::cli::InspectArgs;
use crate::error::{AgentError, EXIT_OK};
use crate::state::{self, CHECKPOINT_FILE, OUTPUT_PREFIX, SPILL_SPOOL, STDIN_SPOOL};
use crate::ui;

/// Runs `spillway inspect`; prints to stdout and returns the exit status.
///
/// # Errors
/// DIR is not a directory, or its checkpoint is corrupt (exit 2).
pub fn run(args: &InspectArgs) -> Result<u8, AgentError> {
    let dir = &args.state;
    if !dir.is_dir() {
        return Err(AgentError::input(format!(
            "state directory {} does not exist",
            dir.display()
        )));
    }
    // Holding the lock keeps an agent from starting meanwhile; when an agent
    // holds it, only copies and file listings are read.
    let lock = state::lock_dir(dir)?;
    let running = lock.is_none();
    println!(
        "state directory: {}{}",
        dir.display(),
        if running {
            " (in use by a running agent)"
        } else {
            ""
        }
    );
    print_checkpoint(dir, running)?;
    let stdin = dir.join(STDIN_SPOOL);
    if stdin.is_dir() {
        print_spool(&stdin, "stdin", running);
    }
    // The buffer keeps one spool per partition: SPILL_SPOOL/p0, ...
    let mut spill: Vec<PathBuf> = std::fs::read_dir(dir.join(SPILL_SPOOL))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    spill.sort();
    for p in spill {
        print_spool(&p, "spill", running);
    }
    drop(lock);
    Ok(EXIT_OK)
}

fn print_checkpoint(dir: &Path, running: bool) -> Result<(), AgentError> {
    let path = dir.join(CHECKPOINT_FILE);
    if !path.exists() {
        println!("checkpoint: none yet (nothing delivered)");
        return Ok(());
    }
    let states = if running {
        // The agent may be replacing the file: read a copy of it.
        let copy_dir =
            std::env::temp_dir().join(format!("spillway-inspect-{}", std::process::id()));
        let copy = copy_dir.join(CHECKPOINT_FILE);
        let _ = std::fs::create_dir_all(&copy_dir);
        let states = std::fs::copy(&path, &copy)
            .map_err(|e| AgentError::input(format!("checkpoint file {}: {e}", path.display())))
            .and_then(|_| load(&copy).map_err(|e| e.replace(&copy, &path)));
        let _ = std::fs::remove_dir_all(&copy_dir);
        states?
    } else {
        load(&path)?
    };
    println!("checkpoint: {}", path.display());
    let mut inputs: BTreeMap<String, Entries> = BTreeMap::new();
    let mut outputs: BTreeMap<String, Entries> = BTreeMap::new();
    for s in states {
        let (group, name) = match s.name.strip_prefix(OUTPUT_PREFIX) {
            Some(rest) => (&mut outputs, rest.to_owned()),
            None => (&mut inputs, s.name.clone()),
        };
        let (base, field) = match name.rsplit_once('#') {
            Some((b, f)) => (b.to_owned(), f.to_owned()),
            None => (name, String::new()),
        };
        group.entry(base).or_default().0.insert(field, s);
    }
    for (path, e) in &inputs {
        println!("  input {path}");
        println!(
            "    offset {} (device {}, inode {}, epoch {}), updated {}",
            e.num(""),
            e.num("dev"),
            e.num("inode"),
            e.num("epoch"),
            e.updated("")
        );
    }
    for (path, e) in &outputs {
        if let Some(subject) = path.strip_prefix("nats:") {
            println!("  output NATS subject {subject}");
            println!(
                "    last acknowledged stream sequence {}, updated {} (agent id {})",
                e.num("sequence"),
                e.updated("sequence"),
                e.0.get("agent")
                    .map_or_else(|| "?".to_owned(), |s| format!("{:016x}", s.record_number))
            );
            continue;
        }
        println!("  output {path}");
        println!(
            "    length {} (device {}, inode {}), updated {}",
            e.num("length"),
            e.num("dev"),
            e.num("inode"),
            e.updated("length")
        );
    }
    Ok(())
}

#[derive(Default)]
struct Entries(BTreeMap<String, EventLogState>);

impl Entries {
    fn num(&self, field: &str) -> String {
        self.0
            .get(field)
            .map_or_else(|| "?".to_owned(), |s| s.record_number.to_string())
    }

    fn updated(&self, field: &str) -> String {
        self.0
            .get(field)
            .map_or_else(|| "?".to_owned(), |s| ui::timestamp(s.timestamp))
    }
}

fn load(path: &Path) -> Result<Vec<EventLogState>, AgentError> {
    let cp = Checkpoint::open(path, u32::MAX, Duration::MAX).map_err(state::checkpoint_error)?;
    let states = cp.states();
    drop(cp);
    Ok(states)
}

fn print_spool(dir: &Path, what: &str, running: bool) {
    let (segments, bytes) = segment_files(dir);
    let records = if running {
        "? records (in use)".to_owned()
    } else {
        match Spool::open(dir, SpoolConfig::default()) {
            Ok(mut spool) => {
                let n = spool.len();
                let _ = spool.close();
                format!("{n} records")
            }
            Err(e) => format!("? records ({e})"),
        }
    };
    println!(
        "spool {what} ({}): {records}, {}, {segments} segments",
        dir.display(),
        ui::bytes(bytes)
    );
}

/// The spool's segment files and their total size, from the directory.
fn segment_files(dir: &Path) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let segs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    let bytes = segs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    (segs.len(), bytes)
}

trait ReplacePath {
    fn replace(self, from: &Path, to: &Path) -> Self;
}

impl ReplacePath for AgentError {
    /// Names the real file rather than the copy that was read.
    fn replace(self, from: &Path, to: &Path) -> Self {
        let (from, to) = (from.display().to_string(), to.display().to_string());
        match self {
            AgentError::Input(m) => AgentError::Input(m.replace(&from, &to)),
            AgentError::Runtime(m) => AgentError::Runtime(m.replace(&from, &to)),
        }
    }
}
