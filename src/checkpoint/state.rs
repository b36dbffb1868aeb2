//! What the checkpoint holds in memory between writes.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use serde_yaml::Mapping;

use super::{CheckpointError, EventLogState, Fields};

#[derive(Debug)]
pub(super) struct State {
    pub(super) sources: HashMap<String, Position>,
    /// The file's top-level keys beyond the layout, written back as read.
    pub(super) top: Mapping,
    /// Bumped by every persist; the file is current when it equals `saved`.
    pub(super) version: u64,
    /// The version the file on disk holds.
    pub(super) saved: u64,
    /// Persists since the last write attempt (or cycle start).
    pub(super) pending: u32,
    /// When the current interval started: the last write attempt or idle tick.
    pub(super) cycle_start: Instant,
    /// Finished write attempts, successful or not.
    pub(super) generation: u64,
    /// The error of the latest attempt, if it failed.
    pub(super) last_error: Option<CheckpointError>,
    pub(super) closed: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Position {
    pub(super) record_number: u64,
    pub(super) timestamp: SystemTime,
    pub(super) fields: Fields,
}

impl Position {
    pub(super) fn state(&self, name: &str) -> EventLogState {
        EventLogState {
            name: name.to_owned(),
            record_number: self.record_number,
            timestamp: self.timestamp,
            fields: self.fields.clone(),
        }
    }
}

impl State {
    pub(super) fn is_current(&self) -> bool {
        self.version == self.saved
    }

    pub(super) fn snapshot(&self) -> Vec<EventLogState> {
        let mut states: Vec<EventLogState> =
            self.sources.iter().map(|(name, p)| p.state(name)).collect();
        states.sort_by(|a, b| a.name.cmp(&b.name));
        states
    }
}
