//! Checkpoint decode: `Checkpoint::open` on a file of arbitrary bytes.
//!
//! Input: one mode byte, then the file. Mode bit 0 set: the target appends
//! the `# crc32c:` line that matches the bytes, so the fuzzer reaches the
//! YAML and timestamp decoding behind the checksum; clear: the bytes are the
//! whole file (checksum line included, or not).
//!
//! Checked:
//! - open either succeeds or fails with `Corrupt`, whose message is one line
//!   and names the file, and the refused file is left byte for byte as it was;
//! - a file that opens holds distinct source names, and its states survive a
//!   write: persisting each again, flushing and reopening gives them back
//!   equal (names of any text, every record number, nanosecond timestamps).

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use spillway::checkpoint::{Checkpoint, CheckpointError};
use spillway_fuzz::fresh_dir;

/// Never written by time or count during a run: only `flush` writes.
const NEVER: Duration = Duration::from_secs(3600);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut file = body.to_vec();
    if mode & 1 == 1 {
        let crc = crc32c::crc32c(&file);
        file.extend_from_slice(format!("# crc32c: {crc:08x}\n").as_bytes());
    }
    let dir = fresh_dir("checkpoint");
    let path = dir.join("checkpoint.yaml");
    std::fs::write(&path, &file).expect("write the checkpoint file");

    let cp = match Checkpoint::open(&path, u32::MAX, NEVER) {
        Ok(cp) => cp,
        Err(err @ CheckpointError::Corrupt { .. }) => {
            let msg = err.to_string();
            assert!(!msg.contains('\n'), "a multi-line error: {msg:?}");
            assert!(
                msg.contains(&*path.to_string_lossy()),
                "the error does not name the file: {msg:?}"
            );
            let after = std::fs::read(&path).expect("read the refused file back");
            assert!(after == file, "a refused file was changed");
            return;
        }
        Err(err) => panic!("open failed other than as Corrupt: {err}"),
    };
    let states = cp.states();
    let mut names: Vec<&str> = states.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), states.len(), "a source name appears twice");

    // Write the same states back (a persist marks the file out of date).
    for s in &states {
        cp.persist(&s.name, s.record_number, s.timestamp)
            .unwrap_or_else(|e| panic!("persisting a state that was read back failed: {e}"));
    }
    cp.shutdown().expect("write the state");
    drop(cp);

    let again = Checkpoint::open(&path, u32::MAX, NEVER)
        .unwrap_or_else(|e| panic!("a file the checkpoint wrote does not open: {e}"));
    let mut want = states;
    want.sort_by(|a, b| a.name.cmp(&b.name));
    let mut got = again.states();
    got.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got, want, "the states changed through a write and a read");
    again.shutdown().expect("shut down");
});
