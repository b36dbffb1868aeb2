//! The checkpoint file: winlogbeat's YAML layout, a CRC32C line that plain
//! YAML readers take for a comment, and replacement that a crash cannot tear.
//!
//! ```yaml
//! # spillway checkpoint: the last line is a crc32c of every byte before it
//! update_time: 2016-08-30T12:34:56.123456789Z
//! event_logs:
//! - name: Application
//!   record_number: 1234
//!   timestamp: 2016-08-30T12:34:50.000000000Z
//!   bookmark: <BookmarkList ... />
//! # crc32c: 1a2b3c4d
//! ```
//!
//! The checksum covers every byte before its line. It is what tells a file
//! cut at a line boundary (still valid YAML, with fewer sources) from a whole
//! one. The first line, a comment, says the file carries one: a file that
//! starts with it, or has a `# crc32c` line anywhere, must verify.
//!
//! A file with neither (winlogbeat's own, or one written by hand) is read
//! when it parses completely as the layout and ends with a newline; it is
//! reported as unverified. Fields beyond the layout, of an entry or at the
//! top level, are kept in order and written back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_yaml::{Mapping, Value};

use super::error::CheckpointError;
use super::fields::{Fields, RESERVED};
use super::report::{FileCheck, OpenReport};
use super::rfc3339;
use super::EventLogState;
use crate::regular_file::{self, ReadFileError, Symlinks};

/// The first line of every file spillway writes.
const MARKER: &[u8] = b"# spillway checkpoint: the last line is a crc32c of every byte before it\n";
const CHECKSUM_TAG: &[u8] = b"# crc32c: ";
/// What starts a checksum line, whole or damaged.
const CHECKSUM_START: &[u8] = b"# crc32c";
/// The tag, 8 lowercase hex digits and the newline.
const FOOTER_LEN: usize = CHECKSUM_TAG.len() + 8 + 1;
/// A checkpoint holds one short entry per source; anything larger is not one
/// of ours, and bounding it keeps a damaged file from exhausting memory.
pub(crate) const MAX_FILE_BYTES: u64 = 64 << 20;
const TEMP_INFIX: &str = ".tmp.";

/// A file's content, decoded.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// Sorted by name.
    pub states: Vec<EventLogState>,
    /// Top-level keys beyond the layout, in file order.
    pub top: Mapping,
    pub report: OpenReport,
}

impl Decoded {
    /// What a missing file holds.
    pub fn missing() -> Self {
        Self {
            states: Vec::new(),
            top: Mapping::new(),
            report: OpenReport {
                check: FileCheck::Missing,
                sources: 0,
                extra_fields: 0,
            },
        }
    }
}

/// The whole file for `states` (sorted by the caller) and the top-level
/// fields `top`, marker and checksum lines included.
pub(crate) fn encode(
    states: &[EventLogState],
    top: &Mapping,
    update_time: SystemTime,
) -> Result<Vec<u8>, CheckpointError> {
    let stamp = |t| {
        rfc3339::format(t)
            .map(Value::String)
            .ok_or_else(|| CheckpointError::invalid("a timestamp lies outside the years 0000-9999"))
    };
    let key = |k: &str| Value::String(k.to_owned());
    let mut entries = Vec::with_capacity(states.len());
    for s in states {
        let mut entry = Mapping::with_capacity(3 + s.fields.len());
        entry.insert(key("name"), Value::String(s.name.clone()));
        entry.insert(key("record_number"), Value::Number(s.record_number.into()));
        entry.insert(key("timestamp"), stamp(s.timestamp)?);
        for (k, v) in s.fields.as_mapping() {
            entry.insert(k.clone(), v.clone());
        }
        entries.push(Value::Mapping(entry));
    }
    let mut doc = Mapping::with_capacity(2 + top.len());
    doc.insert(key("update_time"), stamp(update_time)?);
    doc.insert(key("event_logs"), Value::Sequence(entries));
    for (k, v) in top {
        doc.insert(k.clone(), v.clone());
    }
    let yaml = serde_yaml::to_string(&doc)
        .map_err(|e| CheckpointError::invalid(format!("cannot encode the state as YAML: {e}")))?;
    let mut bytes = Vec::with_capacity(MARKER.len() + yaml.len() + FOOTER_LEN + 1);
    bytes.extend_from_slice(MARKER);
    bytes.extend_from_slice(yaml.as_bytes());
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(CHECKSUM_TAG);
    bytes.extend_from_slice(format!("{crc:08x}\n").as_bytes());
    Ok(bytes)
}

/// The content of `bytes`, the file at `path`, or why it is not a whole
/// checkpoint.
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Decoded, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::corrupt(path, reason);
    if bytes.is_empty() {
        return Err(corrupt("the file is empty".into()));
    }
    let (body, check) = checked_body(bytes).map_err(corrupt)?;
    let layout = |detail: String| corrupt(format!("not the checkpoint YAML layout: {detail}"));
    let doc: Value = serde_yaml::from_slice(body).map_err(|e| layout(e.to_string()))?;
    let Value::Mapping(doc) = doc else {
        return Err(layout(format!(
            "expected a mapping with update_time and event_logs, found {}",
            describe(&doc)
        )));
    };
    let (mut update_time, mut event_logs, mut top) = (None, None, Mapping::new());
    for (k, v) in doc {
        match k.as_str() {
            Some("update_time") => update_time = Some(v),
            Some("event_logs") => event_logs = Some(v),
            _ => {
                top.insert(k, v);
            }
        }
    }
    let update_time = update_time.ok_or_else(|| layout("missing field `update_time`".into()))?;
    let update_time = update_time
        .as_str()
        .ok_or_else(|| layout(format!("update_time is {}", describe(&update_time))))?;
    rfc3339::parse(update_time).map_err(|r| corrupt(format!("update_time: {r}")))?;
    let entries = match event_logs {
        Some(Value::Sequence(entries)) => entries,
        Some(other) => return Err(layout(format!("event_logs is {}", describe(&other)))),
        None => return Err(layout("missing field `event_logs`".into())),
    };
    let mut states: Vec<EventLogState> = Vec::with_capacity(entries.len());
    let mut extra_fields = top.len();
    for (i, entry) in entries.into_iter().enumerate() {
        let state = decode_entry(entry).map_err(|detail| match detail {
            EntryError::Layout(d) => layout(format!("entry {}: {d}", i + 1)),
            EntryError::Timestamp { name, reason } => corrupt(format!("source {name:?}: {reason}")),
        })?;
        extra_fields += state.fields.len();
        states.push(state);
    }
    states.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = states.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(corrupt(format!("source {:?} appears twice", pair[0].name)));
    }
    let report = OpenReport {
        check,
        sources: states.len(),
        extra_fields,
    };
    Ok(Decoded {
        states,
        top,
        report,
    })
}

enum EntryError {
    Layout(String),
    Timestamp { name: String, reason: String },
}

/// One item of `event_logs`: the three fields of the layout, and the rest
/// kept in order as [`Fields`].
fn decode_entry(entry: Value) -> Result<EventLogState, EntryError> {
    let Value::Mapping(map) = entry else {
        return Err(EntryError::Layout(format!(
            "expected a mapping, found {}",
            describe(&entry)
        )));
    };
    let (mut name, mut record_number, mut timestamp, mut rest) = (None, None, None, Mapping::new());
    for (k, v) in map {
        match k.as_str() {
            Some("name") => name = Some(v),
            Some("record_number") => record_number = Some(v),
            Some("timestamp") => timestamp = Some(v),
            _ => {
                rest.insert(k, v);
            }
        }
    }
    debug_assert!(RESERVED.iter().all(|r| !rest.contains_key(*r)));
    let missing = |field: &str| EntryError::Layout(format!("missing field `{field}`"));
    let name = match name.ok_or_else(|| missing("name"))? {
        Value::String(name) => name,
        other => {
            return Err(EntryError::Layout(format!(
                "name is {}, not a string",
                describe(&other)
            )))
        }
    };
    let record_number = record_number.ok_or_else(|| missing("record_number"))?;
    let record_number = record_number.as_u64().ok_or_else(|| {
        EntryError::Layout(format!(
            "record_number of {name:?} is {}, not a whole number from 0 to {}",
            describe(&record_number),
            u64::MAX
        ))
    })?;
    let timestamp = timestamp.ok_or_else(|| missing("timestamp"))?;
    let Some(text) = timestamp.as_str() else {
        return Err(EntryError::Layout(format!(
            "timestamp of {name:?} is {}",
            describe(&timestamp)
        )));
    };
    let timestamp = match rfc3339::parse(text) {
        Ok(t) => t,
        Err(reason) => {
            return Err(EntryError::Timestamp {
                name,
                reason: reason.to_owned(),
            })
        }
    };
    Ok(EventLogState {
        name,
        record_number,
        timestamp,
        fields: Fields::from_mapping(rest),
    })
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// The bytes the YAML is read from, and whether a checksum vouched for
/// them; or why the file is refused before its YAML is looked at.
fn checked_body(bytes: &[u8]) -> Result<(&[u8], FileCheck), String> {
    if let Some(split) = bytes.len().checked_sub(FOOTER_LEN) {
        let (body, footer) = bytes.split_at(split);
        let starts_a_line = body.is_empty() || body.ends_with(b"\n");
        if starts_a_line && footer.starts_with(CHECKSUM_TAG) && footer.ends_with(b"\n") {
            return verify(body, footer).map(|body| (body, FileCheck::Verified));
        }
    }
    let has_checksum_line = bytes
        .split(|&b| b == b'\n')
        .any(|line| line.starts_with(CHECKSUM_START));
    if bytes.starts_with(MARKER) || has_checksum_line {
        return Err("it does not end with its checksum line (cut short?)".into());
    }
    if !bytes.ends_with(b"\n") {
        // YAML writers end with a newline; without one, the file was cut
        // inside a line, which may still parse (a shorter number).
        return Err("it has no checksum line and does not end with a newline (cut short?)".into());
    }
    Ok((bytes, FileCheck::Unverified))
}

/// `body` if the checksum in `footer` matches it.
fn verify<'a>(body: &'a [u8], footer: &[u8]) -> Result<&'a [u8], String> {
    let hex = &footer[CHECKSUM_TAG.len()..FOOTER_LEN - 1];
    let stored = std::str::from_utf8(hex)
        .ok()
        .filter(|h| h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| "its checksum line is malformed".to_string())?;
    let actual = crc32c::crc32c(body);
    if stored != actual {
        return Err(format!(
            "checksum mismatch: the file says {stored:08x}, its contents give {actual:08x}"
        ));
    }
    Ok(body)
}

/// What is saved at `path`; nothing if there is no file. Never blocks and
/// never reads more than [`MAX_FILE_BYTES`]: a FIFO, a device, a directory or
/// a symbolic link at `path` cannot be read (an `Io` error, `InvalidInput`),
/// and a larger file is corrupt. Either way it is left as it is.
pub(crate) fn load(path: &Path) -> Result<Decoded, CheckpointError> {
    let bytes = match regular_file::read(path, MAX_FILE_BYTES, Symlinks::Refuse) {
        Ok(bytes) => bytes,
        Err(ReadFileError::NotFound(_)) => return Ok(Decoded::missing()),
        Err(ReadFileError::Io { op, source }) => return Err(CheckpointError::io(path, op, source)),
        Err(too_large @ ReadFileError::TooLarge { .. }) => {
            return Err(CheckpointError::corrupt(path, too_large.to_string()))
        }
        Err(not_regular) => return Err(CheckpointError::io(path, "read", not_regular.into())),
    };
    decode(path, &bytes)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The temporary file of write number `seq`: beside the file, so the rename
/// stays within one file system.
fn temp_path(path: &Path, seq: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!("{TEMP_INFIX}{seq}"));
    path.with_file_name(name)
}

/// Removes temporary files a killed writer left beside `path`, so they
/// cannot pile up. Returns how many there were.
pub(crate) fn remove_stale_temps(path: &Path) -> Result<usize, CheckpointError> {
    let dir = dir_of(path);
    let mut prefix = path.file_name().unwrap_or_default().to_os_string();
    prefix.push(TEMP_INFIX);
    let prefix = prefix.as_encoded_bytes();
    let entries = fs::read_dir(dir).map_err(|e| CheckpointError::io(path, "list directory", e))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| CheckpointError::io(path, "list directory", e))?;
        let name = entry.file_name();
        let is_temp = name
            .as_encoded_bytes()
            .strip_prefix(prefix)
            .is_some_and(|seq| !seq.is_empty() && seq.iter().all(u8::is_ascii_digit));
        if !is_temp {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CheckpointError::io(path, "remove stale temporary file", e)),
        }
    }
    Ok(removed)
}

/// Replaces the file at `path` with `bytes` so that a crash at any moment
/// leaves the old content or the new, whole: write a fresh temporary file,
/// fsync it, rename it over `path`, fsync the directory. On failure the
/// temporary file is removed; each call uses its own `seq`, so a retry never
/// reuses a file (or descriptor) whose write or fsync failed.
pub(crate) fn replace(path: &Path, seq: u64, bytes: &[u8]) -> Result<(), CheckpointError> {
    let temp = temp_path(path, seq);
    let fail = |op, e| {
        // Best effort: a leftover is also removed at the next open.
        let _ = fs::remove_file(&temp);
        CheckpointError::io(path, op, e)
    };
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(CheckpointError::io(path, "remove old temporary file", e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| CheckpointError::io(path, "create temporary file", e))?;
    if let Err(e) = file.write_all(bytes) {
        drop(file);
        return Err(fail("write temporary file", e));
    }
    if let Err(e) = file.sync_all() {
        drop(file);
        return Err(fail("sync temporary file", e));
    }
    drop(file);
    fs::rename(&temp, path).map_err(|e| fail("rename temporary file over it", e))?;
    File::open(dir_of(path))
        .and_then(|dir| dir.sync_all())
        .map_err(|e| CheckpointError::io(path, "sync directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn state(name: &str, record_number: u64, secs: u64, nanos: u32) -> EventLogState {
        EventLogState::new(name, record_number, UNIX_EPOCH + Duration::new(secs, nanos))
    }

    fn states_of(bytes: &[u8]) -> Vec<EventLogState> {
        decode(Path::new("cp.yaml"), bytes).unwrap().states
    }

    #[test]
    fn layout_matches_winlogbeat() {
        let states = [
            state("Application", 1234, 1_472_560_490, 5),
            state("Security", 7, 1_472_560_496, 123_456_789),
        ];
        let update = UNIX_EPOCH + Duration::new(1_472_560_496, 1);
        let bytes = encode(&states, &Mapping::new(), update).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let (body, _) = text.split_at(text.len() - FOOTER_LEN);
        assert_eq!(
            body,
            "# spillway checkpoint: the last line is a crc32c of every byte before it\n\
             update_time: 2016-08-30T12:34:56.000000001Z\n\
             event_logs:\n\
             - name: Application\n  record_number: 1234\n  timestamp: 2016-08-30T12:34:50.000000005Z\n\
             - name: Security\n  record_number: 7\n  timestamp: 2016-08-30T12:34:56.123456789Z\n"
        );
        let crc = crc32c::crc32c(body.as_bytes());
        assert!(text.ends_with(&format!("\n# crc32c: {crc:08x}\n")));
        let decoded = decode(Path::new("cp.yaml"), &bytes).unwrap();
        assert_eq!(decoded.states, states);
        assert_eq!(
            decoded.report,
            OpenReport {
                check: FileCheck::Verified,
                sources: 2,
                extra_fields: 0
            }
        );
    }

    #[test]
    fn plain_yaml_readers_see_the_same_document() {
        let states = [state("a", 1, 2, 3)];
        let bytes = encode(&states, &Mapping::new(), UNIX_EPOCH).unwrap();
        let with: serde_yaml::Value = serde_yaml::from_slice(&bytes).unwrap();
        let without: serde_yaml::Value =
            serde_yaml::from_slice(&bytes[MARKER.len()..bytes.len() - FOOTER_LEN]).unwrap();
        assert_eq!(with, without);
        assert_eq!(with["event_logs"][0]["record_number"], 1);
    }

    #[test]
    fn empty_state_round_trips() {
        let bytes = encode(&[], &Mapping::new(), UNIX_EPOCH).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        let body = &text[MARKER.len()..];
        assert!(body.starts_with("update_time: 1970-01-01T00:00:00.000000000Z\nevent_logs: []\n"));
        assert_eq!(states_of(&bytes), vec![]);
    }

    #[test]
    fn awkward_names_round_trip() {
        let states: Vec<_> = [
            "",
            "# crc32c: 00000000",
            "# spillway checkpoint: the last line is a crc32c of every byte before it",
            "line\nbreak",
            "line\n# crc32c: 00000000\n",
            "colon: space",
            "- dash",
            "null",
            "123",
            "ünïcødé",
            "'quote\"",
        ]
        .iter()
        .enumerate()
        .map(|(i, n)| state(n, i as u64, 0, 0))
        .collect();
        let mut sorted = states.clone();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let bytes = encode(&sorted, &Mapping::new(), UNIX_EPOCH).unwrap();
        assert_eq!(states_of(&bytes), sorted);
    }

    #[test]
    fn extra_fields_round_trip_in_order_whatever_their_shape() {
        let mut a = state("a", 1, 2, 3);
        a.fields
            .set_str("bookmark", "<BookmarkList>\r\n</BookmarkList>")
            .unwrap();
        a.fields.set_u64("inode", u64::MAX).unwrap();
        let mut top = Mapping::new();
        top.insert("version".into(), 2.into());
        top.insert(
            "nested".into(),
            serde_yaml::from_str("{list: [1, two, {x: null}], flag: true}").unwrap(),
        );
        let bytes = encode(std::slice::from_ref(&a), &top, UNIX_EPOCH).unwrap();
        let decoded = decode(Path::new("cp.yaml"), &bytes).unwrap();
        assert_eq!(decoded.states, [a.clone()]);
        assert_eq!(
            decoded.states[0].fields.names().collect::<Vec<_>>(),
            ["bookmark", "inode"]
        );
        assert_eq!(decoded.top, top);
        assert_eq!(decoded.report.extra_fields, 4);
        // Written again, byte for byte the same.
        let again = encode(&decoded.states, &decoded.top, UNIX_EPOCH).unwrap();
        assert_eq!(again, bytes);
    }

    fn with_checksum(body: &str) -> Vec<u8> {
        let mut bytes = body.as_bytes().to_vec();
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(format!("# crc32c: {crc:08x}\n").as_bytes());
        bytes
    }

    fn reason(bytes: &[u8]) -> String {
        match decode(Path::new("/d/cp.yaml"), bytes) {
            Err(CheckpointError::Corrupt { path, reason }) => {
                assert_eq!(path, Path::new("/d/cp.yaml"));
                reason
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn refuses_what_is_not_a_whole_checkpoint() {
        let marker = std::str::from_utf8(MARKER).unwrap();
        assert_eq!(reason(b""), "the file is empty");
        // spillway's first line promises a checksum line at the end.
        assert!(reason(
            format!("{marker}update_time: 2016-08-30T12:34:56Z\nevent_logs: []\n").as_bytes()
        )
        .contains("checksum line"));
        assert!(reason(marker.as_bytes()).contains("checksum line"));
        // A checksum line that is not the last one, or is damaged.
        assert!(
            reason(b"update_time: 2016-08-30T12:34:56Z\n# crc32c: 00000000\nevent_logs: []\n")
                .contains("checksum line")
        );
        assert!(
            reason(b"update_time: 2016-08-30T12:34:56Z\nevent_logs: []\n# crc32c: 1a2b")
                .contains("checksum line")
        );
        assert!(reason(b"# crc32c: 00000001\n").contains("checksum mismatch"));
        assert!(reason(b"x\n# crc32c: 0000000g\n").contains("malformed"));
        assert!(reason(b"x\n# crc32c: 0000000A\n").contains("malformed"));
        // Without a checksum line, a cut inside a line is refused even when
        // what is left parses (record_number 12 of 1234).
        assert_eq!(
            reason(b"update_time: 2016-08-30T12:34:56Z\nevent_logs:\n- name: a\n  timestamp: 2016-08-30T12:34:56Z\n  record_number: 12"),
            "it has no checksum line and does not end with a newline (cut short?)"
        );
        assert!(reason(b"x# crc32c: 00000000\n").contains("layout"));
        assert!(reason(&with_checksum("just text\n")).contains("layout"));
        assert!(reason(&with_checksum("update_time: 2016-08-30T12:34:56Z\n")).contains("layout"));
        assert_eq!(
            reason(&with_checksum("update_time: yesterday\nevent_logs: []\n")),
            "update_time: timestamp has a non-digit where a digit belongs"
        );
        assert_eq!(
            reason(&with_checksum("update_time: 2016-08-30T12:34:56Z\nevent_logs:\n- name: a\n  record_number: -1\n  timestamp: 2016-08-30T12:34:56Z\n")),
            "not the checkpoint YAML layout: entry 1: record_number of \"a\" is the number -1, \
             not a whole number from 0 to 18446744073709551615"
        );
        assert_eq!(
            reason(&with_checksum("update_time: 2016-08-30T12:34:56Z\nevent_logs:\n- name: a\n  timestamp: 2016-08-30T12:34:56Z\n")),
            "not the checkpoint YAML layout: entry 1: missing field `record_number`"
        );
        assert_eq!(
            reason(&with_checksum(
                "update_time: 2016-08-30T12:34:56Z\nevent_logs: {}\n"
            )),
            "not the checkpoint YAML layout: event_logs is a mapping"
        );
        assert_eq!(
            reason(&with_checksum("update_time: 2016-08-30T12:34:56Z\nevent_logs:\n- name: a\n  record_number: 1\n  timestamp: 2016-02-30T12:34:56Z\n")),
            "source \"a\": timestamp has a date that does not exist"
        );
        assert_eq!(
            reason(&with_checksum("update_time: 2016-08-30T12:34:56Z\nevent_logs:\n- name: a\n  record_number: 1\n  timestamp: 2016-08-30T12:34:56Z\n- name: a\n  record_number: 2\n  timestamp: 2016-08-30T12:34:56Z\n")),
            "source \"a\" appears twice"
        );
    }

    #[test]
    fn reads_files_winlogbeat_style_with_a_checksum() {
        // Go trims fraction zeros and may write an offset; both are read.
        let bytes = with_checksum(
            "update_time: 2016-08-30T12:34:56.5+02:00\nevent_logs:\n- name: System\n  record_number: 42\n  timestamp: 2016-08-30T12:34:56Z\n",
        );
        assert_eq!(
            states_of(&bytes),
            vec![state("System", 42, 1_472_560_496, 0)]
        );
    }

    #[test]
    fn a_file_without_checksum_that_parses_whole_is_unverified() {
        let bytes = b"update_time: 2016-08-30T12:34:56.5Z\nevent_logs:\n- name: System\n  record_number: 42\n  timestamp: 2016-08-30T12:34:56Z\n";
        let decoded = decode(Path::new("x"), bytes).unwrap();
        assert_eq!(decoded.states, vec![state("System", 42, 1_472_560_496, 0)]);
        assert_eq!(decoded.report.check, FileCheck::Unverified);
        assert_eq!(
            states_of(b"update_time: 2016-08-30T12:34:56Z\nevent_logs: []\n"),
            vec![]
        );
    }

    #[test]
    fn temp_names_sit_beside_the_file() {
        assert_eq!(
            temp_path(Path::new("/a/b/cp.yaml"), 7),
            Path::new("/a/b/cp.yaml.tmp.7")
        );
        assert_eq!(
            temp_path(Path::new("cp.yaml"), 0),
            Path::new("cp.yaml.tmp.0")
        );
        assert_eq!(dir_of(Path::new("cp.yaml")), Path::new("."));
        assert_eq!(dir_of(Path::new("/a/cp.yaml")), Path::new("/a"));
    }
}
