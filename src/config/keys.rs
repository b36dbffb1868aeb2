//! The table of keys: one row per key holds its documentation and how its
//! value is read and written. `set`, `get`, YAML, `validate`, the C ABI and
//! any `--help` text all go through this table, so they cannot disagree.

use std::fmt;
use std::path::PathBuf;

use super::policy::{OVERFLOW_EXPECTED, SPOOL_SYNC_EXPECTED};
use super::value::{render_duration, render_size, DurationRule, SizeRule, TextRule, Whole};
use super::BufferConfig;

/// Reads a value into its field; on failure returns what the key accepts.
type SetFn = fn(&mut BufferConfig, &str) -> Result<(), String>;
/// Writes the field in the syntax `SetFn` reads; `None` for an unset option.
type GetFn = fn(&BufferConfig) -> Option<String>;

/// One configuration key: its name, default, accepted values and meaning.
///
/// ```
/// use spillway::config::documented_keys;
///
/// let max_size = documented_keys().iter().find(|k| k.key == "max_size").unwrap();
/// assert_eq!(max_size.default, Some("1000"));
/// assert_eq!(max_size.accepts, "a whole number >= 1");
/// ```
pub struct KeyDoc {
    /// The key, as `set`, YAML and C spell it.
    pub key: &'static str,
    /// The default in `set` syntax; `None` for an option that is unset by
    /// default.
    pub default: Option<&'static str>,
    /// What the key accepts, as error messages say it after "expected".
    pub accepts: &'static str,
    /// One line on what the key does.
    pub description: &'static str,
    pub(super) set: SetFn,
    pub(super) get: GetFn,
    /// How to unset an optional key; `None` for keys that always have a value.
    pub(super) clear: Option<fn(&mut BufferConfig)>,
}

impl KeyDoc {
    /// Whether the key may be unset (YAML `null`), like `spool_dir`.
    pub fn is_optional(&self) -> bool {
        self.clear.is_some()
    }
}

impl fmt::Debug for KeyDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyDoc")
            .field("key", &self.key)
            .field("default", &self.default)
            .field("accepts", &self.accepts)
            .field("description", &self.description)
            .finish()
    }
}

/// Every key, with its default and a one-line description, in the order
/// [`BufferConfig::to_yaml`] writes them.
///
/// ```
/// for doc in spillway::config::documented_keys() {
///     let default = doc.default.unwrap_or("(unset)");
///     println!("{:<20} {:<10} {}", doc.key, default, doc.description);
/// }
/// ```
pub fn documented_keys() -> &'static [KeyDoc] {
    &KEYS
}

pub(super) fn find(key: &str) -> Option<&'static KeyDoc> {
    KEYS.iter().find(|doc| doc.key == key)
}

/// The known key closest to a misspelt one, if it is close enough to be
/// the likely intent (at most two edits, and fewer than half the letters).
pub(super) fn suggest_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|doc| (edit_distance(key, doc.key), doc.key))
        .filter(|&(d, _)| d <= 2 && d * 2 < key.chars().count().max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

const USIZE_MAX: u64 = usize::MAX as u64;
const MAX_SIZE: Whole = Whole::at_least(1, USIZE_MAX);
const JITTER: Whole = Whole::at_least(0, USIZE_MAX);
const CAPACITY: Whole = Whole::at_least(1, USIZE_MAX);
/// Flush info hands the partition to C as a u32; beyond that, a typo would
/// allocate a lock, a ring and a timer entry per partition by the million.
const PARTITIONS: Whole = Whole::between(1, 65_536);
/// Each worker is an OS thread; a typo should not start a million of them.
const WORKERS: Whole = Whole::between(1, 1_024);
const RETRIES: Whole = Whole::at_least(0, u32::MAX as u64);
const ANY_DURATION: DurationRule = DurationRule { nonzero: false };
const POSITIVE_DURATION: DurationRule = DurationRule { nonzero: true };
const ANY_SIZE: SizeRule = SizeRule { nonzero: false };
const POSITIVE_SIZE: SizeRule = SizeRule { nonzero: true };

const DURATION_TEXT: &str = "a duration such as 250ms, 2s, 1m or 1h \
    (units ns, us, ms, s, m, h; a bare number is milliseconds)";
const POSITIVE_DURATION_TEXT: &str = "a duration > 0 such as 250ms, 2s, 1m or 1h \
    (units ns, us, ms, s, m, h; a bare number is milliseconds)";
const SIZE_TEXT: &str = "a size such as 512, 64KiB, 10MiB or 1GiB \
    (units B, KiB, MiB, GiB, TiB, kB, MB, GB, TB; a bare number is bytes)";
const POSITIVE_SIZE_TEXT: &str = "a size > 0 such as 512, 64KiB, 10MiB or 1GiB \
    (units B, KiB, MiB, GiB, TiB, kB, MB, GB, TB; a bare number is bytes)";

// The `accepts` texts repeat what the rules above say in their messages;
// a test checks every row's text against the message its parser gives.
static KEYS: [KeyDoc; 21] = [
    KeyDoc {
        key: "name",
        default: Some("spillway"),
        accepts: "a non-empty string without control characters",
        description: "Name of the buffer, for engine lookup, logs and events.",
        set: |c, v| {
            c.name = TextRule::Name.parse(v)?;
            Ok(())
        },
        get: |c| Some(c.name.clone()),
        clear: None,
    },
    KeyDoc {
        key: "max_size",
        default: Some("1000"),
        accepts: "a whole number >= 1",
        description: "Items buffered in a partition that trigger a flush (the batch size).",
        set: |c, v| {
            c.max_size = MAX_SIZE.parse_usize(v)?;
            Ok(())
        },
        get: |c| Some(c.max_size.to_string()),
        clear: None,
    },
    KeyDoc {
        key: "max_size_jitter",
        default: Some("0"),
        accepts: "a whole number >= 0",
        description: "Up to this many items added at random to max_size, drawn afresh each cycle.",
        set: |c, v| {
            c.max_size_jitter = JITTER.parse_usize(v)?;
            Ok(())
        },
        get: |c| Some(c.max_size_jitter.to_string()),
        clear: None,
    },
    KeyDoc {
        key: "max_bytes",
        default: Some("1MiB"),
        accepts: SIZE_TEXT,
        description:
            "Bytes buffered in a partition that trigger a flush; 0 turns this trigger off.",
        set: |c, v| {
            c.max_bytes = ANY_SIZE.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_size(c.max_bytes)),
        clear: None,
    },
    KeyDoc {
        key: "flush_interval",
        default: Some("1s"),
        accepts: POSITIVE_DURATION_TEXT,
        description: "Longest time items wait in a partition; restarts after each flush.",
        set: |c, v| {
            c.flush_interval = POSITIVE_DURATION.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_duration(c.flush_interval)),
        clear: None,
    },
    KeyDoc {
        key: "flush_jitter",
        default: Some("0ms"),
        accepts: DURATION_TEXT,
        description:
            "Up to this much time added at random to flush_interval, drawn afresh each cycle.",
        set: |c, v| {
            c.flush_jitter = ANY_DURATION.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_duration(c.flush_jitter)),
        clear: None,
    },
    KeyDoc {
        key: "flush_timeout",
        default: Some("30s"),
        accepts: POSITIVE_DURATION_TEXT,
        description: "Time a sink call may take before it is reported as timed out.",
        set: |c, v| {
            c.flush_timeout = POSITIVE_DURATION.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_duration(c.flush_timeout)),
        clear: None,
    },
    KeyDoc {
        key: "flush_meta",
        default: None,
        accepts: "a non-empty string without NUL characters",
        description: "Opaque string handed to every sink call; unset by default.",
        set: |c, v| {
            c.flush_meta = Some(TextRule::Opaque.parse(v)?);
            Ok(())
        },
        get: |c| c.flush_meta.clone(),
        clear: Some(|c| c.flush_meta = None),
    },
    KeyDoc {
        key: "partitions",
        default: Some("1"),
        accepts: "a whole number from 1 to 65536",
        description:
            "Independent partitions; each inserting thread gets one (round-robin), or by key.",
        set: |c, v| {
            c.partitions = PARTITIONS.parse_usize(v)?;
            Ok(())
        },
        get: |c| Some(c.partitions.to_string()),
        clear: None,
    },
    KeyDoc {
        key: "capacity",
        default: Some("10000"),
        accepts: "a whole number >= 1",
        description: "Items a partition holds at most, in flight included; then overflow applies.",
        set: |c, v| {
            c.capacity = CAPACITY.parse_usize(v)?;
            Ok(())
        },
        get: |c| Some(c.capacity.to_string()),
        clear: None,
    },
    KeyDoc {
        key: "capacity_bytes",
        default: Some("0"),
        accepts: SIZE_TEXT,
        description: "Bytes a partition holds at most, in flight included (item weights); \
                      then overflow applies; 0 = no byte bound.",
        set: |c, v| {
            c.capacity_bytes = ANY_SIZE.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_size(c.capacity_bytes)),
        clear: None,
    },
    KeyDoc {
        key: "overflow",
        default: Some("block"),
        accepts: OVERFLOW_EXPECTED,
        description: "What an insert into a full partition does; spill spills only while the \
                      sink is failing, and waits like block while it is healthy.",
        set: |c, v| {
            c.overflow = v.parse().map_err(|_| OVERFLOW_EXPECTED.to_owned())?;
            Ok(())
        },
        get: |c| Some(c.overflow.as_str().to_owned()),
        clear: None,
    },
    KeyDoc {
        key: "block_timeout",
        default: Some("5s"),
        accepts: DURATION_TEXT,
        description: "With overflow = block (or spill with a healthy sink or a full spool), how \
                      long an insert waits for room; 0 = not at all.",
        set: |c, v| {
            c.block_timeout = ANY_DURATION.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_duration(c.block_timeout)),
        clear: None,
    },
    KeyDoc {
        key: "max_retries",
        default: Some("3"),
        accepts: "a whole number >= 0",
        description: "Retries of a failed flush before its items are spilled or dropped.",
        set: |c, v| {
            c.max_retries = RETRIES.parse_u32(v)?;
            Ok(())
        },
        get: |c| Some(c.max_retries.to_string()),
        clear: None,
    },
    KeyDoc {
        key: "retry_backoff",
        default: Some("100ms"),
        accepts: DURATION_TEXT,
        description: "Wait before the first retry; doubles for each further retry.",
        set: |c, v| {
            c.retry_backoff = ANY_DURATION.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_duration(c.retry_backoff)),
        clear: None,
    },
    KeyDoc {
        key: "retry_backoff_max",
        default: Some("10s"),
        accepts: DURATION_TEXT,
        description: "Cap on the doubling retry wait.",
        set: |c, v| {
            c.retry_backoff_max = ANY_DURATION.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_duration(c.retry_backoff_max)),
        clear: None,
    },
    KeyDoc {
        key: "spool_dir",
        default: None,
        accepts: "a non-empty string without NUL characters",
        description: "Directory of the disk spool; unset = no spool (needed by overflow = spill).",
        set: |c, v| {
            c.spool_dir = Some(PathBuf::from(TextRule::Opaque.parse(v)?));
            Ok(())
        },
        get: |c| {
            c.spool_dir
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
        },
        clear: Some(|c| c.spool_dir = None),
    },
    KeyDoc {
        key: "spool_max_bytes",
        default: Some("1GiB"),
        accepts: POSITIVE_SIZE_TEXT,
        description: "Most bytes the spool keeps on disk.",
        set: |c, v| {
            c.spool_max_bytes = POSITIVE_SIZE.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_size(c.spool_max_bytes)),
        clear: None,
    },
    KeyDoc {
        key: "spool_sync",
        default: Some("batch"),
        accepts: SPOOL_SYNC_EXPECTED,
        description: "When the spool syncs its writes to disk.",
        set: |c, v| {
            c.spool_sync = v.parse().map_err(|_| SPOOL_SYNC_EXPECTED.to_owned())?;
            Ok(())
        },
        get: |c| Some(c.spool_sync.as_str().to_owned()),
        clear: None,
    },
    KeyDoc {
        key: "spool_sync_interval",
        default: Some("1s"),
        accepts: POSITIVE_DURATION_TEXT,
        description: "With spool_sync = interval, the longest time between syncs.",
        set: |c, v| {
            c.spool_sync_interval = POSITIVE_DURATION.parse(v)?;
            Ok(())
        },
        get: |c| Some(render_duration(c.spool_sync_interval)),
        clear: None,
    },
    KeyDoc {
        key: "workers",
        default: Some("2"),
        accepts: "a whole number from 1 to 1024",
        description: "Flusher threads of the buffer's private engine (unused in a shared engine).",
        set: |c, v| {
            c.workers = WORKERS.parse_usize(v)?;
            Ok(())
        },
        get: |c| Some(c.workers.to_string()),
        clear: None,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("max_sise", "max_size"), 1);
        assert_eq!(edit_distance("wrokers", "workers"), 2);
        assert_eq!(edit_distance("", "name"), 4);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(suggest_key("max_sise"), Some("max_size"));
        assert_eq!(suggest_key("capacty"), Some("capacity"));
        assert_eq!(suggest_key("spool_dri"), Some("spool_dir"));
        assert_eq!(suggest_key("nam"), Some("name"));
        // Too short or too far to be a typo.
        assert_eq!(suggest_key("x"), None);
        assert_eq!(suggest_key("colour"), None);
        assert_eq!(suggest_key(""), None);
    }

    #[test]
    fn keys_are_unique_snake_case() {
        for (i, doc) in KEYS.iter().enumerate() {
            assert!(doc.key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(KEYS[..i].iter().all(|other| other.key != doc.key));
        }
    }
}
