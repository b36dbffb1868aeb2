//! One source's saved position: the unit the checkpoint file lists.

use std::time::SystemTime;

use super::fields::Fields;

/// The saved position of one source (an event log, a file, a partition).
///
/// # Examples
///
/// ```
/// use spillway::checkpoint::EventLogState;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let mut s = EventLogState::new(
///     "Application",
///     1234,
///     UNIX_EPOCH + Duration::from_secs(1_472_560_496),
/// );
/// s.fields.set_u64("inode", 77)?;
/// assert_eq!(s.clone(), s);
/// # Ok::<(), spillway::checkpoint::CheckpointError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventLogState {
    /// The source's name; the key of the state.
    pub name: String,
    /// The last record read from it.
    pub record_number: u64,
    /// The time of that record; saved with nanoseconds, in UTC.
    pub timestamp: SystemTime,
    /// The entry's fields beyond the three above: kept from the file (such
    /// as winlogbeat's `bookmark`) or set by the program, and written after
    /// them in this order.
    pub fields: Fields,
}

impl EventLogState {
    /// A state with no extra fields.
    pub fn new(name: impl Into<String>, record_number: u64, timestamp: SystemTime) -> Self {
        Self {
            name: name.into(),
            record_number,
            timestamp,
            fields: Fields::new(),
        }
    }
}
