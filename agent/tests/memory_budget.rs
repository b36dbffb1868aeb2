//! The reader's memory budget and the batches it leaves: with an output
//! slower than the reader, the reader waits at its budget without cutting
//! the batch it is filling short (every batch is full); and when the budget
//! fills before any batch is full (long lines, no byte limit), the reader
//! sends what it holds rather than wait for a flush that never comes.

mod common;

use std::fs;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn a_slow_output_gets_full_batches_while_the_reader_waits_at_its_budget() {
    let s = Scratch::new("budget-full-batches");
    let input = s.path("in.log");
    let output = s.path("out.log");
    // 300,000 records weigh more than the 16 MiB budget (bytes and per-record
    // overhead), so the reader waits at it again and again.
    generate(&input, 300_000);
    // Each batch takes at least 50 ms: the reader is always ahead. No time
    // trigger: only a full batch, or the end, sends one.
    let slow = format!("exec:sleep 0.05; cat >> '{}'", output.display());
    let out = ship(&input, &slow, &s.path("state"), &["--flush-interval", "1h"]);
    let err = stderr(&out);
    assert_eq!(code(out.status), 0, "{err}");
    assert!(
        err.contains("shipped 300000 records") && err.contains(" in 15 batches;"),
        "not 15 full batches of 20,000: {err}"
    );
    assert!(fs::read(&input).unwrap() == fs::read(&output).unwrap());
}

#[test]
fn a_budget_full_before_any_batch_is_sent_without_waiting_for_the_flush_interval() {
    let s = Scratch::new("budget-long-lines");
    let input = s.path("in.log");
    let output = s.path("out.log");
    // 512 lines of 64 KiB: 32 MiB, twice the budget, in far fewer lines than
    // a batch (20,000), and no byte limit to end a batch either.
    let mut text = Vec::with_capacity(512 * 65_536);
    for n in 0..512u32 {
        let fill = b'a' + (n % 26) as u8;
        text.extend_from_slice(format!("{n:06} ").as_bytes());
        text.resize(text.len() + 65_535 - 7, fill);
        text.push(b'\n');
    }
    fs::write(&input, &text).unwrap();
    let args = ship_args(
        input.to_str().unwrap(),
        output.to_str().unwrap(),
        &s.path("state"),
        &["--max-bytes", "0", "--flush-interval", "1h"],
    );
    let mut child = spawn(&args, Stdio::null());
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    assert_eq!(code(status), 0, "{err}");
    assert!(err.contains("shipped 512 records"), "{err}");
    assert!(fs::read(&output).unwrap() == text);
}
