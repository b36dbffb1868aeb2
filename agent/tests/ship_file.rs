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
