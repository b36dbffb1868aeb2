//! Disk full: a child process under `ulimit -f` (writes past the limit fail
//! with EFBIG; SIGXFSZ is ignored) gets a clear error from push and flush,
//! and nothing it had flushed is damaged.

mod spool_support;

use std::path::Path;
use std::process::Command;

use spillway::spool::{Spool, SpoolConfig, SpoolError, SyncMode};
use spool_support::{number, record, TempDir};

const CHILD_ENV: &str = "SPILLWAY_SPOOL_FSIZE_CHILD";
/// `ulimit -f` in dash counts 512-byte blocks: 64 KiB per file.
const LIMIT_BLOCKS: u32 = 128;

fn cfg() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 64 << 20,
        segment_bytes: 1 << 20, // larger than the file size limit
        max_record: 4096,
        sync: SyncMode::Batch,
        memory_bytes: 2048,
        ..SpoolConfig::default()
    }
}

/// The child's side; a no-op unless the parent set [`CHILD_ENV`].
#[test]
fn fsize_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    run_child(Path::new(&dir));
}

fn run_child(dir: &Path) {
    let mut spool = Spool::open(dir, cfg()).unwrap();
    let mut next = 0u64;
    loop {
        let batch: Vec<Vec<u8>> = (next..next + 10).map(|n| record(n, 300)).collect();
        let mut it = batch.into_iter();
        match spool.push_batch(&mut it) {
            Ok(n) => {
                next += n as u64;
                println!("@@ flushed {}", next - 1);
            }
            Err(e) => {
                println!("@@ push-error {e}");
                match &e {
                    SpoolError::NotStored { .. } | SpoolError::Io(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
                break;
            }
        }
        if next > 100_000 {
            println!("@@ no error");
            return;
        }
    }
    match spool.flush() {
        Ok(()) => println!("@@ flush-ok"),
        Err(e) => println!("@@ flush-error {e}"),
    }
    // Reading still works on a full disk.
    let first = spool.pop().unwrap().map(|r| number(&r));
    println!("@@ popped {first:?}");
    drop(spool);
    std::process::exit(0);
}

#[test]
fn a_full_disk_is_a_clear_error_and_flushed_records_survive() {
    let dir = TempDir::new("fsize");
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {LIMIT_BLOCKS}; exec \"$0\" \"$@\""
        ))
        .arg(&exe)
        .args(["--exact", "fsize_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find("@@ ").map(|i| &l[i + 3..]))
        .collect();
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flushed: Option<u64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("flushed ").map(|n| n.parse().unwrap()))
        .next_back();
    let push_err = lines
        .iter()
        .find_map(|l| l.strip_prefix("push-error "))
        .unwrap_or_else(|| panic!("no error from push: {lines:?}"));
    assert!(
        push_err.contains("File too large") && push_err.contains(".seg"),
        "the message says what and where: {push_err}"
    );
    let flush_err = lines
        .iter()
        .find_map(|l| l.strip_prefix("flush-error "))
        .unwrap_or_else(|| panic!("flush did not fail: {lines:?}"));
    assert!(
        flush_err.contains("write") && flush_err.contains("File too large"),
        "{flush_err}"
    );
    assert!(lines.contains(&"popped Some(Some(0))"), "{lines:?}");
    let flushed = flushed.expect("some batches fitted");
    assert!(flushed > 50, "{flushed}");

    // Without the limit: every flushed record is there, intact and in order.
    let mut spool = Spool::open(dir.path(), cfg()).unwrap();
    let got: Vec<u64> = spool
        .read(usize::MAX)
        .unwrap()
        .iter()
        .map(|r| number(r).expect("intact"))
        .collect();
    // The child popped record 0 (not flushed after), so it may come back.
    let start = got.first().copied().unwrap_or(0);
    assert!(start <= 1, "{got:?}");
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap or disorder: {got:?}"
    );
    assert!(
        *got.last().unwrap() >= flushed,
        "lost flushed records up to {flushed}"
    );
    // And it takes new records again.
    spool.push(record(1_000_000, 300)).unwrap();
    spool.flush().unwrap();
}
