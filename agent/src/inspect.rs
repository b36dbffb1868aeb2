//! `spillway inspect`: what a state directory holds.

use std::path::{Path, PathBuf};

use spillway::checkpoint::Checkpoint;
use spillway::spool::{Spool, SpoolConfig};

use crate::cli::InspectArgs;
use crate::error::{AgentError, EXIT_OK};
use crate::state::{self, CHECKPOINT_FILE, SPILL_SPOOL, STDIN_SPOOL};
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
    if !path.exists() {
        println!("checkpoint: none yet (nothing delivered)");
        return Ok(());
    }
    // Only reads: never writes the file, never blocks on a FIFO standing
    // there, and safe while an agent runs (each write replaces it whole).
    let (states, _report) = Checkpoint::read(&path).map_err(state::checkpoint_error)?;
    println!("checkpoint: {}", path.display());
    let entries = crate::entries::read_entries(states);
    if let Some(s) = &entries.stdin {
        println!(
            "  input standard input: delivered through byte {} of its stream, updated {}",
            s.record_number,
            ui::timestamp(s.timestamp)
        );
    }
    for (path, f) in &entries.inputs {
        let (dev, ino) = f.identity();
        println!("  input {path}");
        println!(
            "    offset {} (device {}, inode {}, epoch {}), {}, updated {}",
            f.offset(),
            shown(dev),
            shown(ino),
            shown(f.epoch()),
            lag(Path::new(path), f),
            ui::timestamp(f.updated())
        );
    }
    for (path, f) in &entries.outputs {
        if let Some(subject) = path.strip_prefix("nats:") {
            println!("  output NATS subject {subject}");
            println!(
                "    last acknowledged stream sequence {}, updated {} (agent id {})",
                f.sequence()
                    .map_or_else(|| "none yet".to_owned(), |n| n.to_string()),
                ui::timestamp(f.updated()),
                f.agent()
                    .map_or_else(|| "?".to_owned(), |id| format!("{id:016x}"))
            );
            continue;
        }
        let (dev, ino) = f.identity();
        println!("  output {path}");
        println!(
            "    length {} (device {}, inode {}), updated {}",
            f.length(),
            shown(dev),
            shown(ino),
            ui::timestamp(f.updated())
        );
    }
    Ok(())
}

/// How far the file at `path` runs past the checkpoint's offset, when it
/// is still the file the checkpoint knows.
fn lag(path: &Path, f: &state::Fields) -> String {
    use std::os::unix::fs::MetadataExt;
    let offset = f.offset();
    let (Some(dev), Some(ino)) = f.identity() else {
        return "lag unknown".to_owned();
    };
    match std::fs::metadata(path) {
        Ok(m) if (m.dev(), m.ino()) == (dev, ino) => format!(
            "lag {} bytes (file is {} bytes)",
            m.len().saturating_sub(offset),
            m.len()
        ),
        Ok(_) => "lag unknown (another file is at the path now: rotated)".to_owned(),
        Err(_) => "lag unknown (the file is gone)".to_owned(),
    }
}

fn shown(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
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
