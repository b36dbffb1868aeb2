//! Shipping a file to a file: contents, resumption, and what a restart
//! finds (a changed input, an output with an unconfirmed tail).

mod common;

use std::fs;

use common::*;

#[test]
fn a_million_lines_arrive_line_for_line_and_a_rerun_ships_only_what_is_new() {
    let s = Scratch::new("million");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, 1_000_000);

    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shipped 1000000 records"),
        "{}",
        stderr(&out)
    );
    assert!(fs::read(&input).unwrap() == fs::read(&output).unwrap());

    // Nothing new: nothing shipped. Then only the appended lines.
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0);
    assert!(
        stderr(&out).contains("shipped 0 records"),
        "{}",
        stderr(&out)
    );
    append(&input, 1_000_001, 1_000_010);
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0);
    assert!(
        stderr(&out).contains("shipped 10 records"),
        "{}",
        stderr(&out)
    );
    assert!(fs::read(&input).unwrap() == fs::read(&output).unwrap());

    // inspect shows the input's offset at its end, and the output's length.
    let size = fs::metadata(&input).unwrap().len();
    let out = run(&["inspect", "--state", state.to_str().unwrap()]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("offset {size} ")), "{text}");
    assert!(text.contains(&format!("length {size} ")), "{text}");
}

#[test]
fn a_last_line_without_newline_is_a_record_and_standard_output_works() {
    let s = Scratch::new("stdout");
    let input = s.path("in.log");
    fs::write(&input, "one\n\ntwo\r\nthree").unwrap();
    let out = ship(&input, "-", &s.path("state"), &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "one\n\ntwo\r\nthree\n");
    assert!(
        stderr(&out).contains("shipped 4 records"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_input_that_is_no_longer_the_same_file_is_reported_and_shipped_from_its_start() {
    let s = Scratch::new("replaced");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, 100);
    assert_eq!(
        code(ship(&input, output.to_str().unwrap(), &state, &[]).status),
        0
    );

    // Another file at the same path (a new inode).
    let tmp = s.path("new.log");
    generate(&tmp, 150);
    fs::rename(&tmp, &input).unwrap();
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0);
    let err = stderr(&out);
    assert!(
        err.contains("is not the file the checkpoint knows"),
        "{err}"
    );
    assert!(err.contains("shipped 150 records"), "{err}");

    // The same file, cut shorter than the offset.
    generate(&input, 20);
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    let err = stderr(&out);
    assert!(
        err.contains("is shorter (") && err.contains("truncated"),
        "{err}"
    );
    assert!(err.contains("shipped 20 records"), "{err}");
    let mut want: Vec<u64> = (1..=100).collect();
    want.extend(1..=150);
    want.extend(1..=20);
    assert_eq!(numbers(&output), want);
}

#[test]
fn bytes_written_after_the_last_confirmed_batch_are_cut_off_at_restart() {
    let s = Scratch::new("cut");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, 1000);
    assert_eq!(
        code(ship(&input, output.to_str().unwrap(), &state, &[]).status),
        0
    );

    // As a killed run leaves it: part of a batch that was never confirmed.
    let mut torn = fs::read(&output).unwrap();
    torn.extend_from_slice(b"0000000001 abc\n00000000");
    fs::write(&output, &torn).unwrap();
    append(&input, 1001, 1100);
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0);
    let err = stderr(&out);
    assert!(err.contains("cut 23 bytes"), "{err}");
    assert_eq!(numbers(&output), (1..=1100).collect::<Vec<_>>());
}

! Shipping a file to a file: contents, resumption, and what a restart
//! finds (a changed input, an output with an unconfirmed tail).

mod common;

use std::fs;

use common::*;

#[test]
fn a_million_lines_arrive_line_for_line_and_a_rerun_ships_only_what_is_new() {
    let s = Scratch::new("million");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, 1_000_000);

    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shipped 1000000 records"),
        "{}",
        stderr(&out)
    );
    assert!(fs::read(&input).unwrap() == fs::read(&output).unwrap());

    // Nothing new: nothing shipped. Then only the appended lines.
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0);
    assert!(
        stderr(&out).contains("shipped 0 records"),
        "{}",
        stderr(&out)
    );
    append(&input, 1_000_001, 1_000_010);
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0);
    assert!(
        stderr(&out).contains("shipped 10 records"),
        "{}",
        stderr(&out)
    );
    assert!(fs::read(&input).unwrap() == fs::read(&output).unwrap());

    // inspect shows the input's offset at its end, and the output's length.
    let size = fs::metadata(&input).unwrap().len();
    let out = run(&["inspect", "--state", state.to_str().unwrap()]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("offset {size} ")), "{text}");
    assert!(text.contains(&format!("length {size} ")), "{text}");
}

#[test]
fn a_last_line_without_newline_is_a_record_and_standard_output_works() {
    let s = Scratch::new("stdout");
    let input = s.path("in.log");
    fs::write(&input, "one\n\ntwo\r\nthree").unwrap();
    let out = ship(&input, "-", &s.path("state"), &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "one\n\ntwo\r\nthree\n");
    assert!(
        stderr(&out).contains("shipped 4 records"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_input_that_is_no_longer_the_same_file_is_reported_and_shipped_from_its_start() {
    let s = Scratch::new("replaced");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, 100);
    assert_eq!(
        code(ship(&input, output.to_str().unwrap(), &state, &[]).status),
        0
    );

    // Another file at the same path (a new inode).
    let tmp = s.path("new.log");
    generate(&tmp, 150);
    fs::rename(&tmp, &input).unwrap();
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0);
    let err = stderr(&out);
    assert!(
        err.contains("is not the file the checkpoint knows"),
        "{err}"
    );
    assert!(err.contains("shipped 150 records"), "{err}");

    // The same file, cut shorter than the offset.
    generate(&input, 20);
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    let err = stderr(&out);
    assert!(
        err.contains("is shorter (") && err.contains("truncated"),
        "{err}"
    );
    assert!(err.contains("shipped 20 records"), "{err}");
    let mut want: Vec<u64> = (1..=100).collect();
    want.extend(1..=150);
    want.extend(1..=20);
    assert_eq!(numbers(&output), want);
}

#[test]
fn bytes_written_after_the_last_confirmed_batch_are_cut_off_at_restart() {
    let s = Scratch::new("cut");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, 1000);
    assert_eq!(
        code(ship(&input, output.to_str().unwrap(), &state, &[]).status),
        0
    );

    // As a killed run leaves it: part of a batch that was never confirmed.
    let mut torn = fs::read(&output).unwrap();
    torn.extend_from_slice(b"0000000001 abc\n00000000");
    fs::write(&output, &torn).unwrap();
    append(&input, 1001, 1100);
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0);
    let err = stderr(&out);
    assert!(err.contains("cut 23 bytes"), "{err}");
    assert_eq!(numbers(&output), (1..=1100).collect::<Vec<_>>());
}

/// A checkpoint written by an agent before 0.2, with the files' identity in
/// entries of their own (`PATH#inode`, ...), resumes where it stopped; the
/// next write keeps the identity as fields of the input's and the output's
/// entries, and inspect shows both forms.
#[test]
fn a_checkpoint_of_an_older_agent_resumes_and_gets_fields() {
    use spillway::checkpoint::{Checkpoint, FileCheck};
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, SystemTime};

    let s = Scratch::new("legacy");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, 50);
    fs::copy(&input, &output).unwrap(); // delivered by the "older agent"
    let (inp, out) = (
        fs::canonicalize(&input).unwrap(),
        fs::canonicalize(&output).unwrap(),
    );
    let (im, om) = (fs::metadata(&inp).unwrap(), fs::metadata(&out).unwrap());
    let (i, o) = (inp.to_str().unwrap(), out.to_str().unwrap());
    fs::create_dir_all(&state).unwrap();
    let cp = Checkpoint::open(state.join("checkpoint.yaml"), u32::MAX, Duration::MAX).unwrap();
    let now = SystemTime::now();
    for (name, n) in [
        (i.to_owned(), im.len()),
        (format!("{i}#dev"), im.dev()),
        (format!("{i}#inode"), im.ino()),
        (format!("{i}#epoch"), 0),
        (format!("output:{o}#length"), om.len()),
        (format!("output:{o}#dev"), om.dev()),
        (format!("output:{o}#inode"), om.ino()),
    ] {
        cp.persist(&name, n, now).unwrap();
    }
    cp.shutdown().unwrap();
    drop(cp);

    let shown = stdout(&run(&["inspect", "--state", state.to_str().unwrap()]));
    let legacy_line = format!(
        "offset {} (device {}, inode {}, epoch 0)",
        im.len(),
        im.dev(),
        im.ino()
    );
    assert!(shown.contains(&legacy_line), "{shown}");

    append(&input, 51, 60);
    let run_out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(run_out.status), 0, "{}", stderr(&run_out));
    assert!(
        stderr(&run_out).contains("shipped 10 records"),
        "{}",
        stderr(&run_out)
    );
    // Resumed, not restarted: every line once.
    assert!(fs::read(&input).unwrap() == fs::read(&output).unwrap());

    let (states, report) = Checkpoint::read(state.join("checkpoint.yaml")).unwrap();
    assert_eq!(report.check, FileCheck::Verified);
    let size = fs::metadata(&input).unwrap().len();
    let entry = states.iter().find(|e| e.name == i).unwrap();
    assert_eq!(entry.record_number, size);
    assert_eq!(entry.fields.get_u64("inode"), Some(im.ino()));
    assert_eq!(entry.fields.get_u64("dev"), Some(im.dev()));
    assert_eq!(entry.fields.get_u64("epoch"), Some(0));
    let out_entry = states
        .iter()
        .find(|e| e.name == format!("output:{o}"))
        .unwrap();
    assert_eq!(out_entry.record_number, size);
    assert_eq!(out_entry.fields.get_u64("inode"), Some(om.ino()));

    let shown = stdout(&run(&["inspect", "--state", state.to_str().unwrap()]));
    let line = format!(
        "offset {size} (device {}, inode {}, epoch 0)",
        im.dev(),
        im.ino()
    );
    assert!(shown.contains(&line), "{shown}");
    let line = format!("length {size} (device {}, inode {})", om.dev(), om.ino());
    assert!(shown.contains(&line), "{shown}");
}
