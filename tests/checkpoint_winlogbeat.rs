//! A user moving from winlogbeat resumes from their `.winlogbeat.yml`: a file
//! without spillway's checksum line opens as unverified, its fields beyond
//! the layout are kept and written back, and the rewritten file carries the
//! checksum. A checksummed file that fails its check is still refused.

mod checkpoint_support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use checkpoint_support::ScratchDir;
use serde_yaml::Value;
use spillway::checkpoint::{Checkpoint, CheckpointError, EventLogState, FileCheck};

const NEVER: Duration = Duration::MAX;

/// Seed 004's `PersistedState` (`update_time`, `event_logs` of `name`,
/// `record_number`, `timestamp`) as Go's yaml.v2 writes it: sequences flush
/// with their key, times in RFC 3339 with Windows' 100 ns digits, and the
/// `bookmark` later versions add, an XML string with CR LF line ends in
/// double quotes. One top-level key no version of spillway knows.
const WINLOGBEAT: &str = "\
update_time: 2019-05-31T10:19:07.0465785Z
event_logs:
- name: Application
  record_number: 1366
  timestamp: 2019-05-31T10:18:49.2946174Z
  bookmark: \"<BookmarkList>\\r\\n  <Bookmark Channel='Application' RecordId='1366' IsCurrent='true'/>\\r\\n</BookmarkList>\"
- name: Security
  record_number: 20934
  timestamp: 2019-05-31T10:19:02Z
  bookmark: \"<BookmarkList>\\r\\n  <Bookmark Channel='Security' RecordId='20934' IsCurrent='true'/>\\r\\n</BookmarkList>\"
- name: Microsoft-Windows-Sysmon/Operational
  record_number: 7
  timestamp: 2019-05-31T12:18:49+02:00
registry_version: 2
";

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn bookmark(channel: &str, id: u64) -> String {
    format!(
        "<BookmarkList>\r\n  <Bookmark Channel='{channel}' RecordId='{id}' IsCurrent='true'/>\r\n</BookmarkList>"
    )
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_winlogbeat_file_opens_unverified_with_every_field() {
    let dir = ScratchDir::new("wlb-open");
    let path = dir.join(".winlogbeat.yml");
    std::fs::write(&path, WINLOGBEAT).unwrap();

    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    let report = cp.report();
    assert_eq!(report.check, FileCheck::Unverified);
    assert_eq!(report.sources, 3);
    // Two bookmarks and the top-level key.
    assert_eq!(report.extra_fields, 3);

    let states = cp.states();
    let names: Vec<_> = states.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Application",
            "Microsoft-Windows-Sysmon/Operational",
            "Security"
        ]
    );
    let app = &states[0];
    assert_eq!(app.record_number, 1366);
    // 2019-05-31T10:18:49.2946174Z
    assert_eq!(app.timestamp, at(1_559_297_929, 294_617_400));
    assert_eq!(
        app.fields.get_str("bookmark"),
        Some(bookmark("Application", 1366).as_str())
    );
    // An offset is read as UTC.
    assert_eq!(states[1].timestamp, at(1_559_297_929, 0));
    assert!(states[1].fields.is_empty());

    // Opening (and an idle shutdown) never rewrites the file.
    cp.shutdown().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), WINLOGBEAT);
}

#[test]
fn unknown_fields_are_written_back_unchanged_and_the_checksum_added() {
    let dir = ScratchDir::new("wlb-roundtrip");
    let path = dir.join(".winlogbeat.yml");
    std::fs::write(&path, WINLOGBEAT).unwrap();
    let original = yaml(&path);

    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    // A new position for one source keeps its bookmark as it was.
    cp.persist("Application", 1400, at(1_559_300_000, 0))
        .unwrap();
    cp.persist("System", 5, at(1_559_300_001, 0)).unwrap();
    cp.shutdown().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("# crc32c: ") && last.len() == 18, "{last}");
    let written = yaml(&path);
    assert_eq!(written["registry_version"], original["registry_version"]);
    let logs = written["event_logs"].as_sequence().unwrap();
    let names: Vec<_> = logs.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "Application",
            "Microsoft-Windows-Sysmon/Operational",
            "Security",
            "System"
        ]
    );
    let original_logs = original["event_logs"].as_sequence().unwrap();
    // Application: new number, same bookmark, fields in winlogbeat's order.
    let app = logs[0].as_mapping().unwrap();
    let keys: Vec<_> = app.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(keys, ["name", "record_number", "timestamp", "bookmark"]);
    assert_eq!(app["record_number"], 1400);
    assert_eq!(app["bookmark"], original_logs[0]["bookmark"]);
    // Security: untouched, bookmark and all.
    assert_eq!(logs[2]["bookmark"], original_logs[1]["bookmark"]);
    assert_eq!(logs[2]["record_number"], 20934);
    assert_eq!(logs[3].as_mapping().unwrap().len(), 3);

    // The rewritten file verifies and holds the same fields.
    let again = Checkpoint::open(&path, 1000, NEVER).unwrap();
    assert_eq!(again.report().check, FileCheck::Verified);
    assert_eq!(again.report().extra_fields, 3);
    assert_eq!(
        again.get("Security").unwrap().fields.get_str("bookmark"),
        Some(bookmark("Security", 20934).as_str())
    );
    drop(again);

    // And winlogbeat's reader, which ignores comments, sees its layout.
    let reread = Checkpoint::read(&path).unwrap();
    assert_eq!(reread.0.len(), 4);
}

#[test]
fn a_damaged_checksummed_file_is_still_refused_and_left_untouched() {
    let dir = ScratchDir::new("wlb-damaged");
    let path = dir.join(".winlogbeat.yml");
    std::fs::write(&path, WINLOGBEAT).unwrap();
    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    cp.persist("Application", 1400, at(1_559_300_000, 0))
        .unwrap();
    cp.shutdown().unwrap();
    drop(cp);
    let good = std::fs::read(&path).unwrap();

    let text = String::from_utf8(good.clone()).unwrap();
    let cases = [
        // A changed number inside a checksummed file.
        (
            "changed",
            text.replace("record_number: 20934", "record_number: 20935"),
        ),
        // A changed bookmark.
        (
            "bookmark",
            text.replace("RecordId='1366'", "RecordId='1367'"),
        ),
        // The checksum line cut off: spillway's first line says it had one.
        (
            "no checksum line",
            text[..text.rfind("# crc32c").unwrap()].to_owned(),
        ),
        // Cut inside the checksum line.
        ("cut checksum", text[..text.len() - 4].to_owned()),
    ];
    for (what, damaged) in cases {
        assert_ne!(damaged.as_bytes(), good, "{what}: the case changes nothing");
        std::fs::write(&path, &damaged).unwrap();
        match Checkpoint::open(&path, 1000, NEVER) {
            Err(e @ CheckpointError::Corrupt { .. }) => {
                assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            }
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            damaged,
            "{what}: the file changed"
        );
    }
}

#[test]
fn a_file_without_checksum_must_parse_completely() {
    let dir = ScratchDir::new("wlb-partial");
    let path = dir.join(".winlogbeat.yml");
    let cases = [
        // Cut inside a line: still YAML, with a shorter number.
        (
            "cut in a line",
            &WINLOGBEAT[..WINLOGBEAT.find("1366").unwrap() + 2],
        ),
        // Cut after a key: an entry without its timestamp.
        (
            "cut in an entry",
            &WINLOGBEAT[..WINLOGBEAT
                .find("  timestamp: 2019-05-31T10:19:02Z")
                .unwrap()],
        ),
        (
            "no event_logs",
            "update_time: 2019-05-31T10:19:07.0465785Z\n",
        ),
    ];
    for (what, text) in cases {
        std::fs::write(&path, text).unwrap();
        match Checkpoint::open(&path, 1000, NEVER) {
            Err(CheckpointError::Corrupt { .. }) => {}
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{what}");
    }
}

#[test]
fn fields_of_an_entry_are_set_merged_and_kept() {
    let dir = ScratchDir::new("wlb-fields");
    let path = dir.join("cp.yaml");
    std::fs::write(&path, WINLOGBEAT).unwrap();
    let cp = Checkpoint::open(&path, 1000, NEVER).unwrap();
    let t = at(1_559_300_000, 0);

    let mut update = EventLogState::new("Application", 1500, t);
    update.fields.set_u64("inode", 42).unwrap();
    cp.persist_many([&update]).unwrap();
    let app = cp.get("Application").unwrap();
    assert_eq!(
        app.fields.names().collect::<Vec<_>>(),
        ["bookmark", "inode"]
    );
    assert_eq!(app.fields.get_u64("inode"), Some(42));

    // persist leaves the fields alone.
    cp.persist("Application", 1501, t).unwrap();
    assert_eq!(cp.get("Application").unwrap().fields, app.fields);
    cp.flush().unwrap();
    drop(cp);

    let (states, report) = Checkpoint::read(&path).unwrap();
    assert_eq!(report.check, FileCheck::Verified);
    let app = states.iter().find(|s| s.name == "Application").unwrap();
    assert_eq!(app.record_number, 1501);
    assert_eq!(app.fields.get_u64("inode"), Some(42));
    assert_eq!(
        app.fields.get_str("bookmark"),
        Some(bookmark("Application", 1366).as_str())
    );
}
