//! How the agent's positions are stored in the checkpoint: one entry per
//! input, output and standard input, a file's identity as fields of its
//! entry, and the migration from the older layout, where the identity had
//! entries of its own.
//!
//! ```text
//! - name: /var/log/app.log          # an input (canonical path)
//!   record_number: 4096             # offset just past the last delivered line
//!   timestamp: ...
//!   dev: 2049                       # the file that offset is in
//!   inode: 1234
//!   epoch: 0                        # truncations seen
//! - name: output:/srv/out.log       # an output file
//!   record_number: 8192             # its length after the last delivered batch
//!   dev: 2049
//!   inode: 5678
//! - name: output:nats:SUBJECT       # a NATS output
//!   record_number: 17               # stream sequence of the last acknowledged
//!                                   # message (0: none yet)
//!   agent: 81985529216486895        # the Nats-Msg-Id prefix, made once
//!   segment: 0                      # sequence mode: the first message of
//!                                   # the segment that message 17 is inside,
//!                                   # when not all of it landed (0: none)
//!   strays: "9:10-19"               # sequence mode: messages the stream stored
//!                                   # after one it refused, not removed yet:
//!                                   # the last message acknowledged before the
//!                                   # refused one, then their sequences as
//!                                   # ranges ("": none)
//! - name: stdin                     # standard input's delivered stream offset
//! ```
//!
//! Until 0.2 the fields were entries of their own (`PATH#dev`, `PATH#inode`,
//! `PATH#epoch`, `output:PATH#length`, `output:PATH#dev`, `output:PATH#inode`,
//! `output:nats:SUBJECT#agent`, `output:nats:SUBJECT#sequence`).
//! [`migrate`] reads them into the layout above; [`crate::state::State`]
//! applies it at open, so the next write leaves them out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use spillway::checkpoint::EventLogState;

use crate::record::FileId;

/// Prefix of every output entry's name.
pub const OUTPUT_PREFIX: &str = "output:";
/// Prefix of a NATS output's entry name, before its subject.
const NATS_PREFIX: &str = "output:nats:";
/// The checkpoint entry of standard input's delivered offset.
pub const STDIN_ENTRY: &str = "stdin";

/// Field: device of the file an offset or length belongs to.
const DEV: &str = "dev";
/// Field: its inode.
const INODE: &str = "inode";
/// Field: truncations of an input seen.
const EPOCH: &str = "epoch";
/// Field: a NATS output's agent id.
const AGENT: &str = "agent";
/// Field: a NATS output's unfinished segment (sequence mode).
#[cfg(feature = "nats")]
const SEGMENT: &str = "segment";
/// Field: a NATS output's messages stored after a refused one that are not
/// removed yet (sequence mode), as text: see [`Strays`].
#[cfg(feature = "nats")]
const STRAYS: &str = "strays";

/// Entries that reach the checkpoint file together, in one write, or not
/// at all: a batch's output length with the input offsets it covers.
#[derive(Debug, Default)]
pub struct Group(pub(crate) Vec<Entry>);

/// One entry of a [`Group`]: a position and the fields that go with it.
/// Fields it does not name keep their value in the checkpoint.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) value: u64,
    pub(crate) fields: Vec<(&'static str, u64)>,
    /// Fields whose value is text.
    pub(crate) texts: Vec<(&'static str, String)>,
}

impl Entry {
    /// The entry as the checkpoint takes it, stamped `now`.
    ///
    /// # Errors
    /// A field takes a name of the layout itself (a defect: the names are
    /// this module's constants).
    pub(crate) fn state(
        &self,
        now: SystemTime,
    ) -> Result<EventLogState, spillway::checkpoint::CheckpointError> {
        let mut s = EventLogState::new(self.name.clone(), self.value, now);
        for &(field, value) in &self.fields {
            s.fields.set_u64(field, value)?;
        }
        for (field, value) in &self.texts {
            s.fields.set_str(field, value)?;
        }
        Ok(s)
    }
}

impl Group {
    /// Adds entry `name` with `value` and no fields of its own (an output
    /// that keeps entries of its own, such as NATS's stream sequence, names
    /// them itself).
    pub fn add(&mut self, name: &str, value: u64) {
        self.0.push(Entry {
            name: name.to_owned(),
            value,
            fields: Vec::new(),
            texts: Vec::new(),
        });
    }

    fn add_with(&mut self, name: &str, value: u64, fields: Vec<(&'static str, u64)>) {
        self.0.push(Entry {
            name: name.to_owned(),
            value,
            fields,
            texts: Vec::new(),
        });
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Adds standard input's delivered `offset` to `group`.
pub fn add_stdin(group: &mut Group, offset: u64) {
    group.add(STDIN_ENTRY, offset);
}

/// The checkpoint entry of one input.
#[derive(Debug, Clone)]
pub struct InputNames {
    /// The entry's name: the input's canonical path.
    pub entry: String,
}

impl InputNames {
    /// The entry for input `path` (canonical).
    pub fn new(path: &Path) -> Self {
        Self {
            entry: path.to_string_lossy().into_owned(),
        }
    }

    /// Adds `file` and `offset` to `group`.
    pub fn add_to(&self, group: &mut Group, file: FileId, offset: u64) {
        let fields = vec![
            (DEV, file.dev),
            (INODE, file.ino),
            (EPOCH, u64::from(file.epoch)),
        ];
        group.add_with(&self.entry, offset, fields);
    }
}

/// The checkpoint entry of one output file.
#[derive(Debug, Clone)]
pub struct OutputNames {
    /// The entry's name: `output:` and the file's canonical path.
    pub entry: String,
}

impl OutputNames {
    /// The entry for output `path` (canonical).
    pub fn new(path: &Path) -> Self {
        Self {
            entry: format!("{OUTPUT_PREFIX}{}", path.to_string_lossy()),
        }
    }

    /// Adds the output's identity and length to `group`.
    pub fn add_to(&self, group: &mut Group, (dev, ino): (u64, u64), length: u64) {
        group.add_with(&self.entry, length, vec![(DEV, dev), (INODE, ino)]);
    }
}

/// The checkpoint entry of a NATS output.
#[cfg(feature = "nats")]
#[derive(Debug, Clone)]
pub struct NatsNames {
    /// The entry's name: `output:nats:` and the subject.
    pub entry: String,
}

#[cfg(feature = "nats")]
impl NatsNames {
    /// The entry for `subject`.
    pub fn new(subject: &str) -> Self {
        Self {
            entry: format!("{NATS_PREFIX}{subject}"),
        }
    }

    /// Adds a new agent id to `group`, with no acknowledged message yet.
    pub fn add_agent(&self, group: &mut Group, agent: u64) {
        group.add_with(&self.entry, 0, vec![(AGENT, agent)]);
    }

    /// Adds the stream sequence of the last acknowledged (or read back)
    /// message to `group`, and the first message of the segment it is
    /// inside when that segment did not land whole (the agent id stays as
    /// it is).
    pub fn add_sequence(&self, group: &mut Group, sequence: u64, segment: Option<u64>) {
        group.add_with(&self.entry, sequence, vec![(SEGMENT, segment.unwrap_or(0))]);
    }

    /// Adds, with the same sequence and segment, the messages stored after
    /// a refused one that are not removed yet (`None`: there are none, and
    /// the field is cleared).
    pub fn add_with_strays(
        &self,
        group: &mut Group,
        (sequence, segment): (u64, Option<u64>),
        strays: Option<&Strays>,
    ) {
        self.add_sequence(group, sequence, segment);
        if let Some(e) = group.0.last_mut() {
            e.texts
                .push((STRAYS, strays.map_or_else(String::new, Strays::encode)));
        }
    }

    /// The messages stored after a refused one that `state` (this output's
    /// entry) says are not removed yet; none without the field (an older
    /// agent's entry) or with an empty one.
    ///
    /// # Errors
    /// The field does not read as [`Strays`] (the text says why).
    pub fn strays(state: &EventLogState) -> Result<Option<Strays>, String> {
        match state.fields.get_str(STRAYS) {
            None | Some("") => Ok(None),
            Some(text) => Strays::decode(text).map(Some).ok_or_else(|| {
                format!(
                    "field {STRAYS} of entry {} is not valid: {text:?}",
                    state.name
                )
            }),
        }
    }

    /// The agent id that `state` (this output's entry) holds.
    pub fn agent(state: &EventLogState) -> Option<u64> {
        state.fields.get_u64(AGENT)
    }

    /// The last stream sequence and unfinished segment that `state` (this
    /// output's entry) holds.
    pub fn known(state: &EventLogState) -> (u64, Option<u64>) {
        let segment = state.fields.get_u64(SEGMENT).filter(|&s| s > 0);
        (state.record_number, segment)
    }
}

/// Sequence mode: messages the stream stored after one it refused, which
/// the agent could not remove yet. Kept in the checkpoint so that a
/// restart does not read them back as the records that follow the refused
/// one. Written `AFTER:RANGES`, as `9:10-19,21`.
#[cfg(feature = "nats")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strays {
    /// Stream sequence of the last message acknowledged before the refused
    /// one: the subject ends there once they are removed (a server may not
    /// say so itself, see the NATS output).
    pub after: u64,
    /// Their stream sequences, ascending.
    pub sequences: Vec<u64>,
}

#[cfg(feature = "nats")]
impl Strays {
    fn encode(&self) -> String {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for &s in &self.sequences {
            match ranges.last_mut() {
                Some((_, hi)) if s == *hi + 1 => *hi = s,
                _ => ranges.push((s, s)),
            }
        }
        let list: Vec<String> = ranges
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        format!("{}:{}", self.after, list.join(","))
    }

    fn decode(text: &str) -> Option<Self> {
        let (after, list) = text.split_once(':')?;
        let after = after.parse().ok()?;
        let mut sequences = Vec::new();
        for r in list.split(',') {
            let (lo, hi) = match r.split_once('-') {
                Some((lo, hi)) => (lo.parse::<u64>().ok()?, hi.parse::<u64>().ok()?),
                None => {
                    let s = r.parse::<u64>().ok()?;
                    (s, s)
                }
            };
            if lo > hi || sequences.last().is_some_and(|&l| l >= lo) {
                return None;
            }
            sequences.extend(lo..=hi);
        }
        Some(Self { after, sequences })
    }
}

/// The checkpoint's entries as inputs, outputs and stdin.
#[derive(Debug, Default)]
pub struct Entries {
    /// Input files by canonical path.
    pub inputs: BTreeMap<String, Fields>,
    /// Outputs by canonical path, or `nats:SUBJECT`.
    pub outputs: BTreeMap<String, Fields>,
    /// Standard input's delivered offset.
    pub stdin: Option<EventLogState>,
}

/// What the checkpoint holds for one input or output.
#[derive(Debug)]
pub struct Fields(EventLogState);

impl Fields {
    /// An input's offset past its last delivered line.
    pub fn offset(&self) -> u64 {
        self.0.record_number
    }

    /// An output file's length after its last delivered batch.
    pub fn length(&self) -> u64 {
        self.0.record_number
    }

    /// Device and inode of the file.
    pub fn identity(&self) -> (Option<u64>, Option<u64>) {
        (self.0.fields.get_u64(DEV), self.0.fields.get_u64(INODE))
    }

    /// Truncations seen (inputs).
    pub fn epoch(&self) -> Option<u64> {
        self.0.fields.get_u64(EPOCH)
    }

    /// A NATS output's last acknowledged stream sequence (`None`: nothing
    /// acknowledged yet; JetStream numbers messages from 1).
    pub fn sequence(&self) -> Option<u64> {
        Some(self.0.record_number).filter(|&s| s > 0)
    }

    /// A NATS output's agent id (the `Nats-Msg-Id` prefix).
    pub fn agent(&self) -> Option<u64> {
        self.0.fields.get_u64(AGENT)
    }

    /// When the offset, length or stream sequence was last written.
    pub fn updated(&self) -> SystemTime {
        self.0.timestamp
    }
}

/// Sorts checkpoint `states`, in either layout, into inputs, outputs and
/// stdin.
pub fn read_entries(states: Vec<EventLogState>) -> Entries {
    let mut e = Entries::default();
    for s in migrate(&states).apply(states) {
        if s.name == STDIN_ENTRY {
            e.stdin = Some(s);
            continue;
        }
        match s.name.strip_prefix(OUTPUT_PREFIX) {
            Some(rest) => e.outputs.insert(rest.to_owned(), Fields(s)),
            None => e.inputs.insert(s.name.clone(), Fields(s)),
        };
    }
    e
}

/// The change from the older layout to this one.
#[derive(Debug, Default)]
pub struct Migration {
    /// The entries that take the old entries' values, whole.
    pub entries: Vec<EventLogState>,
    /// The old entries (`NAME#FIELD`), to remove.
    pub removed: Vec<String>,
}

impl Migration {
    /// Whether there is nothing to migrate.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
    }

    /// `states` after the migration, sorted by name.
    pub fn apply(&self, states: Vec<EventLogState>) -> Vec<EventLogState> {
        let gone: HashSet<&str> = self.removed.iter().map(String::as_str).collect();
        let mut by_name: BTreeMap<String, EventLogState> = states
            .into_iter()
            .filter(|s| !gone.contains(s.name.as_str()))
            .map(|s| (s.name.clone(), s))
            .collect();
        for s in &self.entries {
            by_name.insert(s.name.clone(), s.clone());
        }
        by_name.into_values().collect()
    }
}

/// Reads the older layout's entries in `states` into this one's.
///
/// An old entry is `NAME#FIELD` with no fields of its own, where FIELD is
/// one that layout used for that kind of entry; any other name with a `#`
/// (a path can hold one) is an entry as it is. `output:PATH#length` and
/// `output:nats:SUBJECT#sequence` become the record number of their entry,
/// with its timestamp; the others become fields.
pub fn migrate(states: &[EventLogState]) -> Migration {
    let by_name: HashMap<&str, &EventLogState> =
        states.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut merged: BTreeMap<&str, EventLogState> = BTreeMap::new();
    let mut removed = Vec::new();
    // Fields in the order the new layout writes them, whatever the file's.
    let mut old: Vec<(&str, usize, &str, &EventLogState)> = states
        .iter()
        .filter_map(|s| legacy_name(s).map(|(base, rank, field)| (base, rank, field, s)))
        .collect();
    old.sort_by_key(|&(base, rank, _, _)| (base, rank));
    for (base, _, field, s) in old {
        let entry = merged
            .entry(base)
            .or_insert_with(|| match by_name.get(base) {
                Some(&main) => main.clone(),
                None => EventLogState::new(base, 0, s.timestamp),
            });
        if field == "length" || field == "sequence" {
            entry.record_number = s.record_number;
            entry.timestamp = s.timestamp;
        } else if entry.fields.set_u64(field, s.record_number).is_err() {
            // Not reachable with the fields `legacy_name` accepts; if it
            // were, the old entry stays rather than its value being lost.
            continue;
        }
        removed.push(s.name.clone());
    }
    Migration {
        entries: merged.into_values().collect(),
        removed,
    }
}

/// `(NAME, rank of FIELD, FIELD)` when `s` is an entry of the older
/// layout.
fn legacy_name(s: &EventLogState) -> Option<(&str, usize, &str)> {
    if !s.fields.is_empty() {
        return None;
    }
    let (base, field) = s.name.rsplit_once('#')?;
    let fields: &[&str] = if base.starts_with(NATS_PREFIX) {
        &[AGENT, "sequence"]
    } else if base.starts_with(OUTPUT_PREFIX) {
        &["length", DEV, INODE]
    } else {
        &[DEV, INODE, EPOCH]
    };
    let rank = fields.iter().position(|&f| f == field)?;
    (!base.is_empty()).then_some((base, rank, field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn old(name: &str, n: u64, t: u64) -> EventLogState {
        EventLogState::new(name, n, at(t))
    }

    #[test]
    fn old_entries_become_fields_of_their_entry() {
        let states = vec![
            old("/in/a#b.log", 5, 1), // a path with '#', not an old field
            old("/in/app.log", 4096, 10),
            old("/in/app.log#dev", 7, 10),
            old("/in/app.log#epoch", 2, 10),
            old("/in/app.log#inode", 99, 10),
            old("output:/out.log#dev", 8, 11),
            old("output:/out.log#inode", 100, 11),
            old("output:/out.log#length", 8192, 12),
            old("output:nats:logs#agent", 0xabc, 3),
            old("output:nats:logs#sequence", 17, 13),
            old("stdin", 3, 14),
        ];
        let m = migrate(&states);
        assert_eq!(m.removed.len(), 8);
        let after = m.apply(states);
        let names: Vec<&str> = after.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "/in/a#b.log",
                "/in/app.log",
                "output:/out.log",
                "output:nats:logs",
                "stdin"
            ]
        );
        let input = &after[1];
        assert_eq!((input.record_number, input.timestamp), (4096, at(10)));
        let f = &input.fields;
        let got: Vec<(&str, Option<u64>)> = f.names().map(|n| (n, f.get_u64(n))).collect();
        assert_eq!(
            got,
            [("dev", Some(7)), ("inode", Some(99)), ("epoch", Some(2))]
        );
        let out = &after[2];
        assert_eq!((out.record_number, out.timestamp), (8192, at(12)));
        assert_eq!(
            (out.fields.get_u64("dev"), out.fields.get_u64("inode")),
            (Some(8), Some(100))
        );
        let nats = &after[3];
        assert_eq!((nats.record_number, nats.timestamp), (17, at(13)));
        assert_eq!(nats.fields.get_u64("agent"), Some(0xabc));
        assert!(
            migrate(&after).is_empty(),
            "the new layout has nothing to migrate"
        );
    }

    /// Sequence mode's unfinished segment is a field of the NATS entry;
    /// 0 (or no field: an older agent's entry) reads as none.
    #[cfg(feature = "nats")]
    #[test]
    fn a_nats_entry_keeps_its_sequence_and_unfinished_segment() {
        let names = NatsNames::new("logs.a");
        let mut g = Group::default();
        names.add_sequence(&mut g, 170, Some(101));
        let s = g.0[0].state(at(5)).unwrap();
        assert_eq!(s.name, "output:nats:logs.a");
        assert_eq!(NatsNames::known(&s), (170, Some(101)));
        let mut g = Group::default();
        names.add_sequence(&mut g, 200, None);
        assert_eq!(NatsNames::known(&g.0[0].state(at(6)).unwrap()), (200, None));
        assert_eq!(
            NatsNames::known(&old("output:nats:logs.a", 17, 3)),
            (17, None)
        );
    }

    /// Unremoved strays are a text field of the NATS entry, written as
    /// ranges; no field (an older agent) or an empty one reads as none.
    #[cfg(feature = "nats")]
    #[test]
    fn a_nats_entry_keeps_its_unremoved_strays_until_cleared() {
        let names = NatsNames::new("logs.a");
        let strays = Strays {
            after: 9,
            sequences: vec![10, 11, 12, 15, 17, 18],
        };
        let mut g = Group::default();
        names.add_with_strays(&mut g, (9, Some(1)), Some(&strays));
        let s = g.0[0].state(at(5)).unwrap();
        assert_eq!(s.fields.get_str("strays"), Some("9:10-12,15,17-18"));
        assert_eq!(NatsNames::known(&s), (9, Some(1)));
        assert_eq!(NatsNames::strays(&s), Ok(Some(strays)));
        let mut g = Group::default();
        names.add_with_strays(&mut g, (9, None), None);
        let s = g.0[0].state(at(6)).unwrap();
        assert_eq!(s.fields.get_str("strays"), Some(""));
        assert_eq!(NatsNames::strays(&s), Ok(None));
        assert_eq!(
            NatsNames::strays(&old("output:nats:logs.a", 17, 3)),
            Ok(None)
        );
        let mut bad = old("output:nats:logs.a", 17, 3);
        bad.fields.set_str("strays", "9:12-10").unwrap();
        assert_eq!(
            NatsNames::strays(&bad),
            Err("field strays of entry output:nats:logs.a is not valid: \"9:12-10\"".into())
        );
    }

    /// A NATS output that never had a message acknowledged: its entry has
    /// the agent id and sequence 0, which reads as none.
    #[test]
    fn agent_id_alone_makes_an_entry_with_no_sequence() {
        let states = vec![old("output:nats:s#agent", 42, 3)];
        let e = read_entries(states);
        let f = &e.outputs["nats:s"];
        assert_eq!((f.agent(), f.sequence()), (Some(42), None));
    }
}
