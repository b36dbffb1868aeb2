//! The checkpoint's layout: a file's identity is stored as fields of its
//! entry, and a checkpoint of the older layout (identity as `NAME#FIELD`
//! entries) resumes where it says and is rewritten in the new one.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use spillway::checkpoint::{Checkpoint, EventLogState};

/// The entries of the checkpoint file in `state`, as a reader sees them.
fn entries(state: &Path) -> Vec<EventLogState> {
    Checkpoint::read(state.join("checkpoint.yaml")).unwrap().0
}

fn entry<'a>(states: &'a [EventLogState], name: &str) -> &'a EventLogState {
    states
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no entry {name}: {states:?}"))
}

/// Field names and whole-number values of `s`, in the file's order.
fn fields(s: &EventLogState) -> Vec<(String, Option<u64>)> {
    s.fields
        .names()
        .map(|n| (n.to_owned(), s.fields.get_u64(n)))
        .collect()
}

fn dev_ino(path: &Path) -> (u64, u64) {
    let m = fs::metadata(path).unwrap();
    (m.dev(), m.ino())
}

/// The checkpoint in `state` holds exactly one entry for `input` and one
/// for `output` (each a path and its device and inode), both at `size`,
/// each file's identity as fields of its entry.
fn assert_new_layout(
    state: &Path,
    (input, (in_dev, in_ino)): (&Path, (u64, u64)),
    (output, (out_dev, out_ino)): (&Path, (u64, u64)),
    size: u64,
) {
    let input_name = fs::canonicalize(input).unwrap().display().to_string();
    let output_name = format!("output:{}", fs::canonicalize(output).unwrap().display());
    let states = entries(state);
    let names: Vec<&str> = states.iter().map(|s| s.name.as_str()).collect();
    let mut want = vec![input_name.as_str(), output_name.as_str()];
    want.sort_unstable();
    assert_eq!(names, want, "one entry per file, no `#` entries");
    let i = entry(&states, &input_name);
    assert_eq!(i.record_number, size);
    assert_eq!(
        fields(i),
        [
            ("dev".to_owned(), Some(in_dev)),
            ("inode".to_owned(), Some(in_ino)),
            ("epoch".to_owned(), Some(0)),
        ]
    );
    let o = entry(&states, &output_name);
    assert_eq!(o.record_number, size);
    assert_eq!(
        fields(o),
        [
            ("dev".to_owned(), Some(out_dev)),
            ("inode".to_owned(), Some(out_ino)),
        ]
    );
}

#[test]
fn identity_is_written_as_fields_of_the_entry_and_read_back() {
    let s = Scratch::new("layout-new");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, 1000);
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));

    let size = fs::metadata(&input).unwrap().len();
    assert_new_layout(
        &state,
        (&input, dev_ino(&input)),
        (&output, dev_ino(&output)),
        size,
    );

    // Read back: a second run knows both files and ships only what is new.
    append(&input, 1001, 1010);
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shipped 10 records"),
        "{}",
        stderr(&out)
    );
    assert_eq!(numbers(&output), (1..=1010).collect::<Vec<u64>>());
}

#[test]
fn an_old_layout_checkpoint_resumes_at_its_offset_and_is_rewritten_in_the_new_one() {
    let s = Scratch::new("layout-old");
    let input = s.path("in.log");
    let output = s.path("out.log");
    let state = s.path("state");
    generate(&input, 100);
    // Lines 1..=40 were delivered by an agent of the old layout.
    generate(&output, 40);
    let delivered = fs::metadata(&output).unwrap().len();
    let input_c = fs::canonicalize(&input).unwrap();
    let output_c = fs::canonicalize(&output).unwrap();
    let (in_dev, in_ino) = dev_ino(&input);
    let (out_dev, out_ino) = dev_ino(&output);
    let i = input_c.display().to_string();
    let o = format!("output:{}", output_c.display());
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let old = [
        EventLogState::new(i.clone(), delivered, t),
        EventLogState::new(format!("{i}#dev"), in_dev, t),
        EventLogState::new(format!("{i}#inode"), in_ino, t),
        EventLogState::new(format!("{i}#epoch"), 0, t),
        EventLogState::new(format!("{o}#length"), delivered, t),
        EventLogState::new(format!("{o}#dev"), out_dev, t),
        EventLogState::new(format!("{o}#inode"), out_ino, t),
    ];
    fs::create_dir_all(&state).unwrap();
    // Written as the old agent wrote it: through the library, checksummed.
    let cp = Checkpoint::open(state.join("checkpoint.yaml"), u32::MAX, Duration::MAX).unwrap();
    cp.persist_many(&old).unwrap();
    cp.shutdown().unwrap();
    drop(cp);
    let text = fs::read_to_string(state.join("checkpoint.yaml")).unwrap();
    assert!(text.contains(&format!("- name: {i}#inode\n")), "{text}");

    // inspect reads the old layout as it is, without writing it.
    let out = run(&["inspect", "--state", state.to_str().unwrap()]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(
        shown.contains(&format!(
            "offset {delivered} (device {in_dev}, inode {in_ino}, epoch 0)"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "length {delivered} (device {out_dev}, inode {out_ino})"
        )),
        "{shown}"
    );
    assert_eq!(
        fs::read_to_string(state.join("checkpoint.yaml")).unwrap(),
        text
    );

    // The run resumes at line 41 of the same file, into the same output:
    // had it not known either identity, it would have shipped from line 1
    // or cut the output back.
    let out = ship(&input, output.to_str().unwrap(), &state, &[]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shipped 60 records"),
        "{}",
        stderr(&out)
    );
    assert_eq!(numbers(&output), (1..=100).collect::<Vec<u64>>());

    // Rewritten in the new layout: the `#` entries are gone.
    let size = fs::metadata(&input).unwrap().len();
    assert_new_layout(
        &state,
        (&input, (in_dev, in_ino)),
        (&output, (out_dev, out_ino)),
        size,
    );
}
