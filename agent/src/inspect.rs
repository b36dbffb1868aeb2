//! `spillway inspect`: what a state directory holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spillway::checkpoint::{Checkpoint, EventLogState, FileCheck};
use spillway::spool::{Spool, SpoolConfig};

use crate::cli::InspectArgs;
use crate::error::{AgentError, EXIT_OK};
use crate::state::{
    self, CHECKPOINT_FILE, DEV, EPOCH, INODE, OUTPUT_PREFIX, SPILL_SPOOL, STDIN_SPOOL,
};
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
    print_checkpoint(dir)?;
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

fn print_checkpoint(dir: &Path) -> Result<(), AgentError> {
    let path = dir.join(CHECKPOINT_FILE);
    // A read-only load: safe while an agent replaces the file (each write
    // replaces it whole), and it never blocks on a FIFO standing there.
    let (states, report) = Checkpoint::read(&path).map_err(state::checkpoint_error)?;
    match report.check {
        FileCheck::Missing => {
            println!("checkpoint: none yet (nothing delivered)");
            return Ok(());
        }
        FileCheck::Unverified => println!(
            "checkpoint: {} (no checksum line: written by winlogbeat or by hand)",
            path.display()
        ),
        _ => println!("checkpoint: {}", path.display()),
    }
    let mut inputs: BTreeMap<String, Entries> = BTreeMap::new();
    let mut outputs: BTreeMap<String, Entries> = BTreeMap::new();
    for s in states {
        let (group, name) = match s.name.strip_prefix(OUTPUT_PREFIX) {
            Some(rest) => (&mut outputs, rest.to_owned()),
            None => (&mut inputs, s.name.clone()),
        };
        // Agents before 0.2 kept the identity in entries `BASE#FIELD`.
        let (base, field) = match name.rsplit_once('#') {
            Some((b, f)) if LEGACY_FIELDS.contains(&f) => (b.to_owned(), f.to_owned()),
            _ => (name, String::new()),
        };
        group.entry(base).or_default().0.insert(field, s);
    }
    for (path, e) in &inputs {
        println!("  input {path}");
        println!(
            "    offset {} (device {}, inode {}, epoch {}), updated {}",
            e.own(""),
            e.field(DEV),
            e.field(INODE),
            e.field(EPOCH),
            e.updated("")
        );
    }
    for (path, e) in &outputs {
        println!("  output {path}");
        println!(
            "    length {} (device {}, inode {}), updated {}",
            e.own("length"),
            e.field(DEV),
            e.field(INODE),
            e.updated("length")
        );
    }
    Ok(())
}

#[derive(Default)]
struct Entries(BTreeMap<String, EventLogState>);

/// The fields older agents kept as entries of their own.
const LEGACY_FIELDS: [&str; 4] = ["dev", "inode", "epoch", "length"];

impl Entries {
    /// The entry itself (`""`), or before 0.2 the entry `legacy`.
    fn main(&self, legacy: &str) -> Option<&EventLogState> {
        self.0.get("").or_else(|| self.0.get(legacy))
    }

    /// The group's own number: an input's offset, an output's length.
    fn own(&self, legacy: &str) -> String {
        self.main(legacy)
            .map_or_else(|| "?".to_owned(), |s| s.record_number.to_string())
    }

    /// A field of the entry, or before 0.2 the entry `BASE#field`.
    fn field(&self, field: &str) -> String {
        self.0
            .get("")
            .and_then(|s| s.fields.get_u64(field))
            .or_else(|| self.0.get(field).map(|s| s.record_number))
            .map_or_else(|| "?".to_owned(), |n| n.to_string())
    }

    fn updated(&self, legacy: &str) -> String {
        self.main(legacy)
            .map_or_else(|| "?".to_owned(), |s| ui::timestamp(s.timestamp))
    }
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
