//! `spillway::config`: the key table, the value syntax, error messages, YAML
//! files, round trips and cross-field validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spillway::config::{documented_keys, BufferConfig, ConfigError, Overflow, SyncMode};

const DURATION_TEXT: &str = "a duration such as 250ms, 2s, 1m or 1h \
    (units ns, us, ms, s, m, h; a bare number is milliseconds)";
const POSITIVE_DURATION_TEXT: &str = "a duration > 0 such as 250ms, 2s, 1m or 1h \
    (units ns, us, ms, s, m, h; a bare number is milliseconds)";
const SIZE_TEXT: &str = "a size such as 512, 64KiB, 10MiB or 1GiB \
    (units B, KiB, MiB, GiB, TiB, kB, MB, GB, TB; a bare number is bytes)";

/// A fresh directory for one test's files.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("config-tests")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn set_err(key: &str, value: &str) -> String {
    let mut cfg = BufferConfig::new();
    let err = cfg.set(key, value).unwrap_err();
    assert_eq!(cfg, BufferConfig::new(), "a refused set changed the config");
    err.to_string()
}

/// Every key once: the text given to `set`, the text `get` gives back, and a
/// check on the typed field.
#[test]
fn every_key_set_from_text_and_read_back() {
    type Check = fn(&BufferConfig) -> bool;
    let cases: [(&str, &str, &str, Check); 21] = [
        ("name", "orders", "orders", |c| c.name == "orders"),
        ("max_size", "500", "500", |c| c.max_size == 500),
        ("max_size_jitter", "25", "25", |c| c.max_size_jitter == 25),
        ("max_bytes", "4MiB", "4MiB", |c| c.max_bytes == 4 << 20),
        ("flush_interval", "250ms", "250ms", |c| {
            c.flush_interval == Duration::from_millis(250)
        }),
        ("flush_jitter", "2000", "2s", |c| {
            c.flush_jitter == Duration::from_secs(2)
        }),
        ("flush_timeout", "1m", "1m", |c| {
            c.flush_timeout == Duration::from_secs(60)
        }),
        ("flush_meta", "db=analytics", "db=analytics", |c| {
            c.flush_meta.as_deref() == Some("db=analytics")
        }),
        ("partitions", "4", "4", |c| c.partitions == 4),
        ("capacity", "20000", "20000", |c| c.capacity == 20_000),
        ("capacity_bytes", "64KiB", "64KiB", |c| {
            c.capacity_bytes == 64 << 10
        }),
        ("overflow", "drop_oldest", "drop_oldest", |c| {
            c.overflow == Overflow::DropOldest
        }),
        ("block_timeout", "0", "0ms", |c| c.block_timeout.is_zero()),
        ("max_retries", "0", "0", |c| c.max_retries == 0),
        ("retry_backoff", "1500us", "1500us", |c| {
            c.retry_backoff == Duration::from_micros(1500)
        }),
        ("retry_backoff_max", "1h", "1h", |c| {
            c.retry_backoff_max == Duration::from_secs(3600)
        }),
        ("spool_dir", "/var/spool/app", "/var/spool/app", |c| {
            c.spool_dir.as_deref() == Some(Path::new("/var/spool/app"))
        }),
        ("spool_max_bytes", "10GB", "10GB", |c| {
            c.spool_max_bytes == 10_000_000_000
        }),
        ("spool_sync", "interval", "interval", |c| {
            c.spool_sync == SyncMode::Interval
        }),
        ("spool_sync_interval", "500ms", "500ms", |c| {
            c.spool_sync_interval == Duration::from_millis(500)
        }),
        ("workers", "8", "8", |c| c.workers == 8),
    ];
    let covered: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let all: Vec<&str> = documented_keys().iter().map(|d| d.key).collect();
    assert_eq!(covered, all, "one case per key, in table order");

    for (key, input, read_back, check) in cases {
        let mut cfg = BufferConfig::new();
        cfg.set(key, input).unwrap();
        assert!(check(&cfg), "{key} = {input:?} gave {cfg:?}");
        assert_eq!(cfg.get(key).unwrap().as_deref(), Some(read_back), "{key}");
        // Only that key changed.
        cfg.reset(key).unwrap();
        assert_eq!(cfg, BufferConfig::new(), "{key}");
    }
}

#[test]
fn key_table_matches_defaults_set_and_to_yaml() {
    let defaults = BufferConfig::default();
    let yaml = defaults.to_yaml().unwrap();
    for doc in documented_keys() {
        assert_eq!(
            defaults.get(doc.key).unwrap().as_deref(),
            doc.default,
            "default of `{}`",
            doc.key
        );
        assert_eq!(doc.is_optional(), doc.default.is_none(), "{}", doc.key);
        if let Some(default) = doc.default {
            let mut cfg = BufferConfig::new();
            cfg.set(doc.key, default).unwrap();
            assert_eq!(cfg, defaults, "setting `{}` to its default", doc.key);
        }
        assert!(
            yaml.lines()
                .any(|l| l.starts_with(&format!("{}:", doc.key))),
            "`{}` missing from:\n{yaml}",
            doc.key
        );
        // The table's `accepts` is what the key's error messages say.
        match BufferConfig::new().set(doc.key, "").unwrap_err() {
            ConfigError::InvalidValue { key, expected, .. } => {
                assert_eq!(key, doc.key);
                assert_eq!(expected, doc.accepts, "`{}`", doc.key);
            }
            other => panic!("{other:?}"),
        }
        assert!(!doc.description.is_empty());
    }
    assert_eq!(yaml.lines().count(), documented_keys().len());
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = BufferConfig::default();
    assert_eq!(c, BufferConfig::new());
    assert_eq!(c.name, "spillway");
    assert_eq!(c.max_size, 1000);
    assert_eq!(c.max_size_jitter, 0);
    assert_eq!(c.max_bytes, 1 << 20);
    assert_eq!(c.flush_interval, Duration::from_secs(1));
    assert_eq!(c.flush_jitter, Duration::ZERO);
    assert_eq!(c.flush_timeout, Duration::from_secs(30));
    assert_eq!(c.flush_meta, None);
    assert_eq!(c.partitions, 1);
    assert_eq!(c.capacity, 10_000);
    assert_eq!(c.overflow, Overflow::Block);
    assert_eq!(c.block_timeout, Duration::from_secs(5));
    assert_eq!(c.max_retries, 3);
    assert_eq!(c.retry_backoff, Duration::from_millis(100));
    assert_eq!(c.retry_backoff_max, Duration::from_secs(10));
    assert_eq!(c.spool_dir, None);
    assert_eq!(c.spool_max_bytes, 1 << 30);
    assert_eq!(c.spool_sync, SyncMode::Batch);
    assert_eq!(c.spool_sync_interval, Duration::from_secs(1));
    assert_eq!(c.workers, 2);
    c.validate().unwrap();
}

#[test]
fn builder_sets_every_field() {
    let c = BufferConfig::new()
        .name("b")
        .max_size(10)
        .max_size_jitter(2)
        .max_bytes(99)
        .flush_interval(Duration::from_millis(5))
        .flush_jitter(Duration::from_millis(6))
        .flush_timeout(Duration::from_millis(7))
        .flush_meta("m")
        .partitions(3)
        .capacity(12)
        .overflow(Overflow::Spill)
        .block_timeout(Duration::from_millis(8))
        .max_retries(9)
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(11))
        .spool_dir("/s")
        .spool_max_bytes(13)
        .spool_sync(SyncMode::Never)
        .spool_sync_interval(Duration::from_millis(14))
        .workers(15);
    let got: Vec<String> = documented_keys()
        .iter()
        .map(|d| c.get(d.key).unwrap().unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "b", "10", "2", "99", "5ms", "6ms", "7ms", "m", "3", "12", "0", "spill", "8ms", "9",
            "10ms", "11ms", "/s", "13", "never", "14ms", "15"
        ]
    );
    c.validate().unwrap();
}

#[test]
fn duration_syntaxes_through_set() {
    let cases = [
        ("250ms", Duration::from_millis(250)),
        ("2s", Duration::from_secs(2)),
        ("1m", Duration::from_secs(60)),
        ("1h", Duration::from_secs(3600)),
        ("1500us", Duration::from_micros(1500)),
        ("10ns", Duration::from_nanos(10)),
        ("750", Duration::from_millis(750)),
        ("0", Duration::ZERO),
        ("8760h", Duration::from_secs(365 * 24 * 3600)),
    ];
    for (text, want) in cases {
        let mut cfg = BufferConfig::new();
        cfg.set("block_timeout", text).unwrap();
        assert_eq!(cfg.block_timeout, want, "{text:?}");
    }
}

#[test]
fn size_syntaxes_through_set() {
    let cases = [
        ("512", 512),
        ("512B", 512),
        ("64KiB", 64 * 1024),
        ("10MiB", 10 * 1024 * 1024),
        ("1GiB", 1 << 30),
        ("1TiB", 1 << 40),
        ("2kB", 2_000),
        ("2KB", 2_000),
        ("3MB", 3_000_000),
        ("4GB", 4_000_000_000),
        ("5TB", 5_000_000_000_000),
        ("0", 0),
    ];
    for (text, want) in cases {
        let mut cfg = BufferConfig::new();
        cfg.set("max_bytes", text).unwrap();
        assert_eq!(cfg.max_bytes, want, "{text:?}");
    }
}

#[test]
fn bad_value_messages() {
    let cases = [
        ("max_size", "abc", "expected a whole number >= 1"),
        ("max_size", "0", "expected a whole number >= 1"),
        ("max_size", "-5", "expected a whole number >= 1"),
        ("max_size", "10 ", "expected a whole number >= 1"),
        ("max_size", "", "expected a whole number >= 1"),
        (
            "max_size",
            "99999999999999999999",
            &format!("expected a whole number from 1 to {}", usize::MAX),
        ),
        ("max_retries", "1.5", "expected a whole number >= 0"),
        (
            "max_retries",
            "4294967296",
            "expected a whole number from 0 to 4294967295",
        ),
        ("partitions", "0", "expected a whole number from 1 to 65536"),
        (
            "partitions",
            "65537",
            "expected a whole number from 1 to 65536",
        ),
        ("workers", "2000", "expected a whole number from 1 to 1024"),
        (
            "flush_interval",
            "0s",
            &format!("expected {POSITIVE_DURATION_TEXT}"),
        ),
        (
            "flush_interval",
            "5 s",
            &format!("expected {POSITIVE_DURATION_TEXT}"),
        ),
        (
            "block_timeout",
            "1.5s",
            &format!("expected {DURATION_TEXT}"),
        ),
        ("block_timeout", "5d", &format!("expected {DURATION_TEXT}")),
        ("block_timeout", "-1s", &format!("expected {DURATION_TEXT}")),
        (
            "block_timeout",
            "9000h",
            "expected a duration of at most 8760h",
        ),
        (
            "block_timeout",
            "18446744073709551615h",
            "expected a duration of at most 8760h",
        ),
        ("max_bytes", "10MiBs", &format!("expected {SIZE_TEXT}")),
        ("max_bytes", "1mib", &format!("expected {SIZE_TEXT}")),
        (
            "max_bytes",
            "17179869184GiB",
            "expected a size of at most 18446744073709551615 bytes",
        ),
        (
            "spool_max_bytes",
            "0",
            "expected a size > 0 such as 512, 64KiB, 10MiB or 1GiB (units B, KiB, MiB, GiB, \
             TiB, kB, MB, GB, TB; a bare number is bytes)",
        ),
        (
            "overflow",
            "Block",
            "expected one of block, drop_newest, drop_oldest, reject, spill",
        ),
        (
            "spool_sync",
            "fsync",
            "expected one of always, batch, interval, never",
        ),
        (
            "name",
            "a\tb",
            "expected a non-empty string without control characters",
        ),
        (
            "spool_dir",
            "",
            "expected a non-empty string without NUL characters",
        ),
        (
            "flush_meta",
            "a\0b",
            "expected a non-empty string without NUL characters",
        ),
    ];
    for (key, value, tail) in cases {
        assert_eq!(
            set_err(key, value),
            format!("invalid value {value:?} for `{key}`: {tail}"),
        );
    }
    // The exact text the C API hands out.
    assert_eq!(
        set_err("max_size", "abc"),
        r#"invalid value "abc" for `max_size`: expected a whole number >= 1"#
    );
}

#[test]
fn invalid_value_carries_the_parts() {
    match BufferConfig::new().set("capacity", "many").unwrap_err() {
        ConfigError::InvalidValue {
            key,
            value,
            expected,
        } => {
            assert_eq!(key, "capacity");
            assert_eq!(value, "many");
            assert_eq!(expected, "a whole number >= 1");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_key_messages() {
    let all = documented_keys()
        .iter()
        .map(|d| d.key)
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        all,
        "name, max_size, max_size_jitter, max_bytes, flush_interval, flush_jitter, \
         flush_timeout, flush_meta, partitions, capacity, capacity_bytes, overflow, block_timeout, \
         max_retries, retry_backoff, retry_backoff_max, spool_dir, spool_max_bytes, \
         spool_sync, spool_sync_interval, workers"
    );
    assert_eq!(
        set_err("max_sise", "10"),
        format!("unknown key `max_sise`, did you mean `max_size`? (known keys: {all})")
    );
    assert_eq!(
        set_err("wrokers", "1"),
        format!("unknown key `wrokers`, did you mean `workers`? (known keys: {all})")
    );
    assert_eq!(
        set_err("colour", "red"),
        format!("unknown key `colour` (known keys: {all})")
    );
    // Keys are exact: no case folding, no dashes.
    assert!(set_err("Max_Size", "1").starts_with("unknown key `Max_Size`"));
    assert!(set_err("max-size", "1").starts_with("unknown key `max-size`, did you mean"));
    let err = BufferConfig::new().set("", "1").unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownKey { key } if key.is_empty()));
    assert!(matches!(
        BufferConfig::new().get("nope"),
        Err(ConfigError::UnknownKey { .. })
    ));
    assert!(matches!(
        BufferConfig::new().reset("nope"),
        Err(ConfigError::UnknownKey { .. })
    ));
}

#[test]
fn refused_set_changes_nothing() {
    let mut cfg = BufferConfig::new().max_size(77).spool_dir("/d");
    let before = cfg.clone();
    for (key, value) in [
        ("max_size", "x"),
        ("max_size", "0"),
        ("spool_dir", ""),
        ("overflow", "panic"),
        ("nope", "1"),
    ] {
        assert!(cfg.set(key, value).is_err());
        assert_eq!(cfg, before, "{key} = {value:?}");
    }
}

#[test]
fn policy_names() {
    for p in Overflow::all() {
        assert_eq!(p.to_string().parse::<Overflow>().unwrap(), p);
    }
    for s in SyncMode::all() {
        assert_eq!(s.to_string().parse::<SyncMode>().unwrap(), s);
    }
    assert_eq!(
        "drop-oldest".parse::<Overflow>().unwrap_err().to_string(),
        "invalid value \"drop-oldest\" for `overflow`: expected one of block, drop_newest, \
         drop_oldest, reject, spill"
    );
}

const ALL_KEYS_YAML: &str = "\
# every key, in the syntax of the C API
name: orders
max_size: 500
max_size_jitter: 50
max_bytes: 4MiB
flush_interval: 250ms
flush_jitter: 100        # bare number: milliseconds
flush_timeout: 2s
flush_meta: \"destination=analytics_db priority=high\"
partitions: 4
capacity: 2000
overflow: spill
block_timeout: 1m
max_retries: 5
retry_backoff: 50ms
retry_backoff_max: 5s
spool_dir: /var/spool/orders
spool_max_bytes: 2GiB
spool_sync: interval
spool_sync_interval: 200ms
workers: 3
";

fn all_keys_expected() -> BufferConfig {
    BufferConfig::new()
        .name("orders")
        .max_size(500)
        .max_size_jitter(50)
        .max_bytes(4 << 20)
        .flush_interval(Duration::from_millis(250))
        .flush_jitter(Duration::from_millis(100))
        .flush_timeout(Duration::from_secs(2))
        .flush_meta("destination=analytics_db priority=high")
        .partitions(4)
        .capacity(2000)
        .overflow(Overflow::Spill)
        .block_timeout(Duration::from_secs(60))
        .max_retries(5)
        .retry_backoff(Duration::from_millis(50))
        .retry_backoff_max(Duration::from_secs(5))
        .spool_dir("/var/spool/orders")
        .spool_max_bytes(2 << 30)
        .spool_sync(SyncMode::Interval)
        .spool_sync_interval(Duration::from_millis(200))
        .workers(3)
}

#[test]
fn yaml_file_with_every_key() {
    let dir = scratch_dir("every_key");
    let path = dir.join("buffer.yaml");
    std::fs::write(&path, ALL_KEYS_YAML).unwrap();
    let cfg = BufferConfig::from_yaml_file(&path).unwrap();
    assert_eq!(cfg, all_keys_expected());
    cfg.validate().unwrap();
}

#[test]
fn merge_yaml_applies_on_top() {
    let dir = scratch_dir("merge");
    let path = dir.join("override.yaml");
    std::fs::write(&path, "max_size: 20\nspool_dir: ~\n").unwrap();
    let mut cfg = BufferConfig::new()
        .name("kept")
        .spool_dir("/gone")
        .capacity(50);
    cfg.merge_yaml_file(&path).unwrap();
    assert_eq!(
        cfg,
        BufferConfig::new().name("kept").capacity(50).max_size(20)
    );
}

#[test]
fn yaml_bad_key_names_the_file_and_changes_nothing() {
    let dir = scratch_dir("bad_key");
    let path = dir.join("buffer.yaml");
    std::fs::write(&path, "max_size: 10\nmax_sise: 20\n").unwrap();
    let mut cfg = BufferConfig::new().name("before");
    let err = cfg.merge_yaml_file(&path).unwrap_err();
    assert_eq!(cfg, BufferConfig::new().name("before"), "nothing applied");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: unknown key `max_sise`, did you mean `max_size`? (known keys: name, ",
            path.display()
        )),
        "{shown}"
    );
    assert_eq!(err.key(), Some("max_sise"));
    match err {
        ConfigError::InFile { path: p, source } => {
            assert_eq!(p, path);
            assert!(matches!(*source, ConfigError::UnknownKey { .. }));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn yaml_bad_value_names_the_file() {
    let dir = scratch_dir("bad_value");
    let path = dir.join("b.yaml");
    std::fs::write(&path, "capacity: -3\n").unwrap();
    let err = BufferConfig::from_yaml_file(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: invalid value \"-3\" for `capacity`: expected a whole number >= 1",
            path.display()
        )
    );
}

#[test]
fn yaml_syntax_and_io_errors_name_the_file() {
    let dir = scratch_dir("syntax");
    let path = dir.join("broken.yaml");
    std::fs::write(&path, "max_size: [1, 2\n").unwrap();
    let err = BufferConfig::from_yaml_file(&path).unwrap_err();
    assert!(matches!(&err, ConfigError::Yaml { path: Some(p), .. } if *p == path));
    assert!(err
        .to_string()
        .starts_with(&format!("{}: ", path.display())));

    let missing = dir.join("missing.yaml");
    let err = BufferConfig::from_yaml_file(&missing).unwrap_err();
    match &err {
        ConfigError::Io { path, source } => {
            assert_eq!(path, &missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with(&format!("cannot read {}: ", missing.display())));
}

/// Reads `path` on another thread, so a read that blocks (on a FIFO) fails
/// the test instead of hanging it.
fn from_file_within_bound(path: &Path) -> Result<BufferConfig, ConfigError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(BufferConfig::from_yaml_file(&path));
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("from_yaml_file blocked on a special file")
}

/// A FIFO, a device or a directory given as the configuration file is
/// refused at once with one line naming it; a file beyond 1 MiB too.
#[test]
fn special_and_oversized_files_are_refused_at_once() {
    let dir = scratch_dir("special");
    let fifo = dir.join("fifo.yaml");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let huge = dir.join("huge.yaml");
    // Valid YAML throughout, so only the size can refuse it.
    std::fs::write(&huge, "# padding\n".repeat(110_000)).unwrap();
    let zero_link = dir.join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero_link).unwrap();
    let cases: [(&Path, &str, std::io::ErrorKind); 5] = [
        (
            &fifo,
            "it is a FIFO, not a regular file",
            std::io::ErrorKind::InvalidInput,
        ),
        (
            Path::new("/dev/zero"),
            "it is a character device, not a regular file",
            std::io::ErrorKind::InvalidInput,
        ),
        (
            &zero_link,
            "it is a character device, not a regular file",
            std::io::ErrorKind::InvalidInput,
        ),
        (
            &dir,
            "it is a directory, not a regular file",
            std::io::ErrorKind::InvalidInput,
        ),
        (
            &huge,
            "it is larger than the 1048576 bytes it may have",
            std::io::ErrorKind::InvalidData,
        ),
    ];
    for (path, reason, kind) in cases {
        let err = from_file_within_bound(path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read {}: {reason}", path.display())
        );
        match err {
            ConfigError::Io { path: p, source } => {
                assert_eq!(p, path);
                assert_eq!(source.kind(), kind, "{}", path.display());
            }
            other => panic!("{other:?}"),
        }
    }
    // A link to a regular file is what users do with configuration files.
    let real = dir.join("real.yaml");
    std::fs::write(&real, "max_size: 7\n").unwrap();
    let link = dir.join("link.yaml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(BufferConfig::from_yaml_file(&link).unwrap().max_size, 7);
}

#[test]
fn yaml_value_shapes() {
    // Numbers and booleans become their text before `set` reads them.
    let cfg = BufferConfig::from_yaml_str("max_size: 42\nname: true\nflush_meta: 1.5\n").unwrap();
    assert_eq!(cfg.max_size, 42);
    assert_eq!(cfg.name, "true");
    assert_eq!(cfg.flush_meta.as_deref(), Some("1.5"));
    // Quoted and unquoted numbers are the same.
    assert_eq!(
        BufferConfig::from_yaml_str("max_size: \"42\"").unwrap(),
        BufferConfig::from_yaml_str("max_size: 42").unwrap()
    );

    let cases = [
        (
            "max_size:\n",
            "YAML configuration: `max_size` has no value; expected a whole number >= 1",
        ),
        (
            "max_size: null\n",
            "YAML configuration: `max_size` has no value; expected a whole number >= 1",
        ),
        (
            "max_size: [1, 2]\n",
            "YAML configuration: `max_size` is a list; expected a whole number >= 1",
        ),
        (
            "overflow: {policy: block}\n",
            "YAML configuration: `overflow` is a mapping; expected one of block, drop_newest, \
             drop_oldest, reject, spill",
        ),
        (
            "max_size: !big 5\n",
            "YAML configuration: `max_size` is a value tagged !big; expected a whole number >= 1",
        ),
        (
            "- max_size: 5\n",
            "YAML configuration: expected a mapping of keys to values, found a list",
        ),
        (
            "just text\n",
            "YAML configuration: expected a mapping of keys to values, found the string \
             \"just text\"",
        ),
        (
            "1: x\n",
            "YAML configuration: every key must be a string, found the number 1",
        ),
        (
            "max_size: 1.5\n",
            "invalid value \"1.5\" for `max_size`: expected a whole number >= 1",
        ),
        (
            "max_size: -5\n",
            "invalid value \"-5\" for `max_size`: expected a whole number >= 1",
        ),
        (
            "buffer:\n  max_size: 5\n",
            "unknown key `buffer` (known keys: name, max_size, max_size_jitter, max_bytes, \
             flush_interval, flush_jitter, flush_timeout, flush_meta, partitions, capacity, \
             capacity_bytes, overflow, block_timeout, max_retries, retry_backoff, retry_backoff_max, \
             spool_dir, spool_max_bytes, spool_sync, spool_sync_interval, workers)",
        ),
    ];
    for (text, message) in cases {
        let mut cfg = BufferConfig::new().name("untouched");
        let err = cfg.merge_yaml_str(text).unwrap_err();
        assert_eq!(err.to_string(), message, "{text:?}");
        assert_eq!(cfg, BufferConfig::new().name("untouched"), "{text:?}");
    }
    // Duplicate keys are refused by the YAML reader.
    assert!(matches!(
        BufferConfig::from_yaml_str("max_size: 1\nmax_size: 2\n"),
        Err(ConfigError::Yaml { path: None, .. })
    ));
    // Empty documents change nothing.
    for empty in ["", "# only a comment\n", "---\n"] {
        assert_eq!(
            BufferConfig::from_yaml_str(empty).unwrap(),
            BufferConfig::new()
        );
    }
}

#[test]
fn yaml_error_midway_changes_nothing() {
    let mut cfg = BufferConfig::new();
    let err = cfg
        .merge_yaml_str("max_size: 5\ncapacity: 7\npartitions: 0\nworkers: 9\n")
        .unwrap_err();
    assert_eq!(err.key(), Some("partitions"));
    assert_eq!(cfg, BufferConfig::new());
}

#[test]
fn round_trip_through_yaml() {
    let unusual = all_keys_expected()
        .name("null")
        .flush_meta("007")
        .spool_dir("dir with spaces: and # marks")
        .max_bytes(1000)
        .retry_backoff(Duration::from_nanos(1_000_001))
        .block_timeout(Duration::ZERO);
    let tricky_names = ["~", "true", "123", "- dash", "'quote", "multi\nline meta"];
    let mut configs = vec![BufferConfig::new(), all_keys_expected(), unusual];
    for text in tricky_names {
        configs.push(BufferConfig::new().flush_meta(text).spool_dir(text));
    }
    for cfg in configs {
        let yaml = cfg.to_yaml().unwrap();
        assert_eq!(BufferConfig::from_yaml_str(&yaml).unwrap(), cfg, "{yaml}");
        // Serde agrees with to_yaml, and a config can sit inside a document.
        assert_eq!(serde_yaml::to_string(&cfg).unwrap(), yaml);
        let nested = format!(
            "buffer:\n{}",
            yaml.lines().map(|l| format!("  {l}\n")).collect::<String>()
        );
        #[derive(serde::Deserialize)]
        struct Outer {
            buffer: BufferConfig,
        }
        let outer: Outer = serde_yaml::from_str(&nested).unwrap();
        assert_eq!(outer.buffer, cfg);
    }
}

#[test]
fn to_yaml_layout() {
    let yaml = BufferConfig::new().to_yaml().unwrap();
    assert_eq!(
        yaml,
        "name: spillway\nmax_size: 1000\nmax_size_jitter: 0\nmax_bytes: 1MiB\n\
         flush_interval: 1s\nflush_jitter: 0ms\nflush_timeout: 30s\nflush_meta: null\n\
         partitions: 1\ncapacity: 10000\ncapacity_bytes: 0\noverflow: block\nblock_timeout: 5s\nmax_retries: 3\n\
         retry_backoff: 100ms\nretry_backoff_max: 10s\nspool_dir: null\n\
         spool_max_bytes: 1GiB\nspool_sync: batch\nspool_sync_interval: 1s\nworkers: 2\n"
    );
}

#[cfg(unix)]
#[test]
fn to_yaml_refuses_a_non_utf8_spool_dir() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let cfg = BufferConfig::new().spool_dir(OsStr::from_bytes(b"/tmp/\xff"));
    let err = cfg.to_yaml().unwrap_err();
    assert_eq!(err.key(), Some("spool_dir"));
    assert!(serde_yaml::to_string(&cfg).is_err());
    cfg.validate().unwrap();
}

#[test]
fn validate_single_values_set_in_code() {
    let cases: [(BufferConfig, &str); 6] = [
        (
            BufferConfig::new().max_size(0),
            "invalid value \"0\" for `max_size`: expected a whole number >= 1",
        ),
        (
            BufferConfig::new().partitions(0),
            "invalid value \"0\" for `partitions`: expected a whole number from 1 to 65536",
        ),
        (
            BufferConfig::new().workers(0),
            "invalid value \"0\" for `workers`: expected a whole number from 1 to 1024",
        ),
        (
            BufferConfig::new().flush_interval(Duration::ZERO),
            &format!("invalid value \"0ms\" for `flush_interval`: expected {POSITIVE_DURATION_TEXT}"),
        ),
        (
            BufferConfig::new().name(""),
            "invalid value \"\" for `name`: expected a non-empty string without control characters",
        ),
        (
            BufferConfig::new().block_timeout(Duration::from_secs(u64::MAX)),
            "invalid value \"18446744073709551615s\" for `block_timeout`: expected a duration of at \
             most 8760h",
        ),
    ];
    for (cfg, message) in cases {
        let err = cfg.validate().unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err:?}");
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn validate_combinations() {
    let cases: [(BufferConfig, &[&str], &str); 5] = [
        (
            BufferConfig::new().max_size(500).capacity(100),
            &["capacity", "max_size"],
            "invalid configuration: `capacity` (100) is less than `max_size` (500); a \
             partition must be able to hold a whole batch",
        ),
        (
            BufferConfig::new()
                .max_size(900)
                .max_size_jitter(200)
                .capacity(1000),
            &["max_size", "max_size_jitter", "capacity"],
            "invalid configuration: `max_size` + `max_size_jitter` (900 + 200) is more than \
             `capacity` (1000); a partition must be able to hold the largest batch",
        ),
        (
            BufferConfig::new()
                .max_size(usize::MAX)
                .max_size_jitter(1)
                .capacity(usize::MAX),
            &["max_size", "max_size_jitter", "capacity"],
            "invalid configuration: `max_size` + `max_size_jitter` (18446744073709551615 + 1) \
             is more than `capacity` (18446744073709551615); a partition must be able to hold \
             the largest batch",
        ),
        (
            BufferConfig::new()
                .retry_backoff(Duration::from_secs(2))
                .retry_backoff_max(Duration::from_secs(1)),
            &["retry_backoff", "retry_backoff_max"],
            "invalid configuration: `retry_backoff` (2s) is more than `retry_backoff_max` (1s)",
        ),
        (
            BufferConfig::new().overflow(Overflow::Spill),
            &["overflow", "spool_dir"],
            "invalid configuration: `overflow` is spill but `spool_dir` is not set; spilling \
             needs a spool directory",
        ),
    ];
    for (cfg, want_keys, message) in cases {
        let err = cfg.validate().unwrap_err();
        match &err {
            ConfigError::Invalid { keys, .. } => assert_eq!(*keys, want_keys),
            other => panic!("{other:?}"),
        }
        assert_eq!(err.to_string(), message);
    }
    // The edges that are allowed.
    BufferConfig::new()
        .max_size(10)
        .max_size_jitter(5)
        .capacity(15)
        .validate()
        .unwrap();
    BufferConfig::new()
        .retry_backoff(Duration::from_secs(3))
        .retry_backoff_max(Duration::from_secs(3))
        .validate()
        .unwrap();
    BufferConfig::new()
        .overflow(Overflow::Spill)
        .spool_dir("/s")
        .validate()
        .unwrap();
}

/// A YAML file and `set` give one answer for the same text: YAML's own
/// readings of a scalar (`0x10` as 16, `+16` as 16, `007` as 7) never let a
/// value through that `set` refuses, nor change one it accepts.
#[test]
fn yaml_and_set_give_one_answer_for_every_value() {
    let values = [
        "16",
        "0x10",
        "0o20",
        "0b10000",
        "+16",
        "016",
        "007",
        "1_000",
        "1e3",
        "16.0",
        ".inf",
        "-1",
        "-0",
        "true",
        "True",
        "false",
        "1KiB",
        "0x400B",
        "250ms",
        "0x10s",
        "drop_oldest",
        "abc",
    ];
    let keys = [
        "max_size",
        "partitions",
        "max_retries",
        "max_bytes",
        "flush_interval",
        "name",
        "flush_meta",
        "overflow",
    ];
    let mut accepted = 0;
    for key in keys {
        for value in values {
            let mut by_set = BufferConfig::new();
            let set = by_set.set(key, value).map(|()| by_set);
            for yaml in [format!("{key}: {value}\n"), format!("{key}: \"{value}\"\n")] {
                let by_yaml = BufferConfig::from_yaml_str(&yaml);
                match (&set, &by_yaml) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{yaml:?}"),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{yaml:?}"),
                    _ => panic!("{yaml:?}: set gives {set:?}, YAML gives {by_yaml:?}"),
                }
            }
            accepted += usize::from(set.is_ok());
        }
    }
    // The table holds both kinds of case.
    assert!(accepted > 10 && accepted < values.len() * keys.len() - 10);
    assert_eq!(
        BufferConfig::from_yaml_str("max_size: 0x10\n")
            .unwrap_err()
            .to_string(),
        "invalid value \"0x10\" for `max_size`: expected a whole number >= 1"
    );
    // A name keeps its digits as written.
    assert_eq!(
        BufferConfig::from_yaml_str("name: 007\n").unwrap().name,
        "007"
    );
}

/// Every kind of configuration error, alone and wrapped by the layers that
/// add context (a file, a buffer): no message says the same thing twice,
/// like "invalid configuration: invalid configuration: ...".
#[test]
fn no_error_message_repeats_its_prefix() {
    let dir = scratch_dir("prefixes");
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let mut errors: Vec<ConfigError> = vec![
        BufferConfig::new().set("max_sise", "1").unwrap_err(),
        BufferConfig::new().set("max_size", "0x10").unwrap_err(),
        BufferConfig::new()
            .max_size(500)
            .capacity(100)
            .validate()
            .unwrap_err(),
        BufferConfig::new()
            .overflow(Overflow::Spill)
            .validate()
            .unwrap_err(),
        BufferConfig::from_yaml_str("max_size: [1]\n").unwrap_err(),
        BufferConfig::from_yaml_str("[1, 2\n").unwrap_err(),
    ];
    for (name, text) in [
        ("syntax.yaml", "max_size: [1, 2\n"),
        ("shape.yaml", "max_size:\n"),
        ("key.yaml", "max_sise: 1\n"),
        ("value.yaml", "max_size: 0x10\n"),
    ] {
        errors.push(BufferConfig::from_yaml_file(file(name, text)).unwrap_err());
    }
    errors.push(BufferConfig::from_yaml_file(dir.join("missing.yaml")).unwrap_err());
    errors.push(BufferConfig::from_yaml_file(&dir).unwrap_err());
    let mut messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    // The buffer wraps a refused configuration.
    let sink = |_: &[u64], _: &spillway::FlushContext<'_>| Ok::<(), std::io::Error>(());
    let refused = spillway::Buffer::new(BufferConfig::new().max_size(500).capacity(100), sink);
    match refused {
        Err(e) => messages.push(e.to_string()),
        Ok(_) => panic!("a buffer was built from an invalid configuration"),
    }
    for message in &messages {
        let parts: Vec<&str> = message.split(": ").collect();
        for (i, part) in parts.iter().enumerate() {
            assert!(
                !parts[i + 1..].iter().any(|later| later.starts_with(part)),
                "{message:?} says {part:?} twice"
            );
        }
    }
    assert_eq!(messages.len(), 13);
}
