//! The checkpoint file: winlogbeat's YAML layout, a CRC32C line that plain
//! YAML readers take for a comment, and replacement that a crash cannot tear.
//!
//! ```yaml
//! update_time: 2016-08-30T12:34:56.123456789Z
//! event_logs:
//! - name: Application
//!   record_number: 1234
//!   timestamp: 2016-08-30T12:34:50.000000000Z
//! # crc32c: 1a2b3c4d
//! ```
//!
//! The checksum covers every byte before its line. It is what tells a file
//! cut at a line boundary (still valid YAML, with fewer sources) from a whole
//! one, so a file without it is refused.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::error::CheckpointError;
use super::rfc3339;
use super::EventLogState;
use crate::regular_file::{self, ReadFileError, Symlinks};

const CHECKSUM_TAG: &[u8] = b"# crc32c: ";
/// The tag, 8 lowercase hex digits and the newline.
const FOOTER_LEN: usize = CHECKSUM_TAG.len() + 8 + 1;
/// A checkpoint holds one short entry per source; anything larger is not one
/// of ours, and bounding it keeps a damaged file from exhausting memory.
pub(crate) const MAX_FILE_BYTES: u64 = 64 << 20;
const TEMP_INFIX: &str = ".tmp.";

#[derive(Serialize)]
struct PersistedOut<'a> {
    update_time: String,
    event_logs: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    name: &'a str,
    record_number: u64,
    timestamp: String,
}

#[derive(Deserialize)]
struct PersistedIn {
    update_time: String,
    event_logs: Vec<EntryIn>,
}

#[derive(Deserialize)]
struct EntryIn {
    name: String,
    record_number: u64,
    timestamp: String,
}

/// The whole file for `states` (sorted by the caller), checksum line included.
pub(crate) fn encode(
    states: &[EventLogState],
    update_time: SystemTime,
) -> Result<Vec<u8>, CheckpointError> {
    let stamp = |t| {
        rfc3339::format(t)
            .ok_or_else(|| CheckpointError::invalid("a timestamp lies outside the years 0000-9999"))
    };
    let doc = PersistedOut {
        update_time: stamp(update_time)?,
        event_logs: states
            .iter()
            .map(|s| {
                Ok(EntryOut {
                    name: &s.name,
                    record_number: s.record_number,
                    timestamp: stamp(s.timestamp)?,
                })
            })
            .collect::<Result<_, CheckpointError>>()?,
    };
    let mut bytes = serde_yaml::to_string(&doc)
        .map_err(|e| CheckpointError::invalid(format!("cannot encode the state as YAML: {e}")))?
        .into_bytes();
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(CHECKSUM_TAG);
    bytes.extend_from_slice(format!("{crc:08x}\n").as_bytes());
    Ok(bytes)
}

/// The states in `bytes`, the content of the file at `path`, or why it is
/// not a whole checkpoint.
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Vec<EventLogState>, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::corrupt(path, reason);
    if bytes.is_empty() {
        return Err(corrupt("the file is empty".into()));
    }
    let body = checked_body(bytes).map_err(corrupt)?;
    let doc: PersistedIn = serde_yaml::from_slice(body)
        .map_err(|e| corrupt(format!("not the checkpoint YAML layout: {e}")))?;
    rfc3339::parse(&doc.update_time).map_err(|r| corrupt(format!("update_time: {r}")))?;
    let mut states: Vec<EventLogState> = Vec::with_capacity(doc.event_logs.len());
    for entry in doc.event_logs {
        let timestamp = rfc3339::parse(&entry.timestamp)
            .map_err(|r| corrupt(format!("source {:?}: {r}", entry.name)))?;
        states.push(EventLogState {
            name: entry.name,
            record_number: entry.record_number,
            timestamp,
        });
    }
    states.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = states.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(corrupt(format!("source {:?} appears twice", pair[0].name)));
    }
    Ok(states)
}

/// The bytes before the checksum line, if that line is there and matches.
fn checked_body(bytes: &[u8]) -> Result<&[u8], String> {
    let missing = || "it does not end with its checksum line (cut short?)".to_string();
    let split = bytes.len().checked_sub(FOOTER_LEN).ok_or_else(missing)?;
    let (body, footer) = bytes.split_at(split);
    let starts_a_line = body.is_empty() || body.ends_with(b"\n");
    if !starts_a_line || !footer.starts_with(CHECKSUM_TAG) || !footer.ends_with(b"\n") {
        return Err(missing());
    }
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

/// The states saved at `path`; none if there is no file. Never blocks and
/// never reads more than [`MAX_FILE_BYTES`]: a FIFO, a device, a directory or
/// a symbolic link at `path` cannot be read (an `Io` error, `InvalidInput`),
/// and a larger file is corrupt. Either way it is left as it is.
pub(crate) fn load(path: &Path) -> Result<Vec<EventLogState>, CheckpointError> {
    let bytes = match regular_file::read(path, MAX_FILE_BYTES, Symlinks::Refuse) {
        Ok(bytes) => bytes,
        Err(ReadFileError::NotFound(_)) => return Ok(Vec::new()),
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
        EventLogState {
            name: name.into(),
            record_number,
            timestamp: UNIX_EPOCH + Duration::new(secs, nanos),
        }
    }

    #[test]
    fn layout_matches_winlogbeat() {
        let states = [
            state("Application", 1234, 1_472_560_490, 5),
            state("Security", 7, 1_472_560_496, 123_456_789),
        ];
        let bytes = encode(&states, UNIX_EPOCH + Duration::new(1_472_560_496, 1)).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let (body, _) = text.split_at(text.len() - FOOTER_LEN);
        assert_eq!(
            body,
            "update_time: 2016-08-30T12:34:56.000000001Z\n\
             event_logs:\n\
             - name: Application\n  record_number: 1234\n  timestamp: 2016-08-30T12:34:50.000000005Z\n\
             - name: Security\n  record_number: 7\n  timestamp: 2016-08-30T12:34:56.123456789Z\n"
        );
        let crc = crc32c::crc32c(body.as_bytes());
        assert!(text.ends_with(&format!("\n# crc32c: {crc:08x}\n")));
        assert_eq!(decode(Path::new("cp.yaml"), &bytes).unwrap(), states);
    }

    #[test]
    fn plain_yaml_readers_see_the_same_document() {
        let states = [state("a", 1, 2, 3)];
        let bytes = encode(&states, UNIX_EPOCH).unwrap();
        let with: serde_yaml::Value = serde_yaml::from_slice(&bytes).unwrap();
        let without: serde_yaml::Value =
            serde_yaml::from_slice(&bytes[..bytes.len() - FOOTER_LEN]).unwrap();
        assert_eq!(with, without);
        assert_eq!(with["event_logs"][0]["record_number"], 1);
    }

    #[test]
    fn empty_state_round_trips() {
        let bytes = encode(&[], UNIX_EPOCH).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with("update_time: 1970-01-01T00:00:00.000000000Z\nevent_logs: []\n"));
        assert_eq!(decode(Path::new("x"), &bytes).unwrap(), vec![]);
    }

    #[test]
    fn awkward_names_round_trip() {
        let states: Vec<_> = [
            "",
            "# crc32c: 00000000",
            "line\nbreak",
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
        let bytes = encode(&sorted, UNIX_EPOCH).unwrap();
        assert_eq!(decode(Path::new("x"), &bytes).unwrap(), sorted);
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
    fn refuses_what_it_did_not_write() {
        assert_eq!(reason(b""), "the file is empty");
        assert!(
            reason(b"update_time: 2016-08-30T12:34:56Z\nevent_logs: []\n")
                .contains("checksum line")
        );
        assert!(reason(b"# crc32c: 00000001\n").contains("checksum mismatch"));
        assert!(reason(b"x\n# crc32c: 0000000g\n").contains("malformed"));
        assert!(reason(b"x\n# crc32c: 0000000A\n").contains("malformed"));
        assert!(reason(b"x# crc32c: 00000000\n").contains("checksum line"));
        assert!(reason(&with_checksum("just text\n")).contains("layout"));
        assert!(reason(&with_checksum("update_time: 2016-08-30T12:34:56Z\n")).contains("layout"));
        assert_eq!(
            reason(&with_checksum("update_time: yesterday\nevent_logs: []\n")),
            "update_time: timestamp has a non-digit where a digit belongs"
        );
        assert!(reason(&with_checksum(
            "update_time: 2016-08-30T12:34:56Z\nevent_logs:\n- name: a\n  record_number: -1\n  timestamp: 2016-08-30T12:34:56Z\n"
        ))
        .contains("layout"));
        assert_eq!(
            reason(&with_checksum(
                "update_time: 2016-08-30T12:34:56Z\nevent_logs:\n- name: a\n  record_number: 1\n  timestamp: 2016-02-30T12:34:56Z\n"
            )),
            "source \"a\": timestamp has a date that does not exist"
        );
        assert_eq!(
            reason(&with_checksum(
                "update_time: 2016-08-30T12:34:56Z\nevent_logs:\n- name: a\n  record_number: 1\n  timestamp: 2016-08-30T12:34:56Z\n- name: a\n  record_number: 2\n  timestamp: 2016-08-30T12:34:56Z\n"
            )),
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
            decode(Path::new("x"), &bytes).unwrap(),
            vec![state("System", 42, 1_472_560_496, 0)]
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
