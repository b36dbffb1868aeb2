//! What a full buffer does with an insert ([`Overflow`]). The other
//! enumerated option, when the spool syncs, is the spool's own
//! [`SyncMode`](crate::spool::SyncMode).

use std::fmt;
use std::str::FromStr;

use super::ConfigError;

// Module-level rather than associated constants: cbindgen exports the
// associated constants of public types into the C header.
pub(super) const OVERFLOW_EXPECTED: &str = "one of block, drop_newest, drop_oldest, reject, spill";
pub(super) const SPOOL_SYNC_EXPECTED: &str = "one of always, batch, interval, never";

/// What an insert does when its partition already holds `capacity` items or
/// `capacity_bytes` bytes (buffered and in flight). Key `overflow`; default [`Block`](Self::Block).
///
/// ```
/// use spillway::config::Overflow;
///
/// let policy: Overflow = "drop_oldest".parse().unwrap();
/// assert_eq!(policy, Overflow::DropOldest);
/// assert_eq!(policy.to_string(), "drop_oldest");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overflow {
    /// `block`: the insert waits for room, at most `block_timeout`, then
    /// fails with a timeout and the caller keeps the item.
    #[default]
    Block,
    /// `drop_newest`: the item being inserted is dropped and counted as
    /// dropped; the insert reports that the buffer was full.
    DropNewest,
    /// `drop_oldest`: the oldest buffered item (not one already handed to
    /// the sink) is dropped and counted, making room for the new one. When
    /// every item held is already with the sink, there is nothing to evict:
    /// the new item is refused as under `drop_newest` (counted inserted and
    /// dropped, the insert reports that the buffer was full).
    DropOldest,
    /// `reject`: the insert fails at once and the caller keeps the item;
    /// nothing is counted as dropped.
    Reject,
    /// `spill`: while the sink is failing (its last attempt on the
    /// partition failed), the partition's items go to the disk spool in
    /// `spool_dir` and are delivered from there, in order, once it recovers.
    /// While the sink is healthy, a full partition is backpressure: the
    /// insert waits as under [`Block`](Self::Block), so a slow but working
    /// sink does not fill the disk. A full or failing spool also falls back
    /// to waiting. Needs `spool_dir`.
    Spill,
}

impl Overflow {
    /// Every policy, in the order the documentation lists them.
    pub const fn all() -> [Self; 5] {
        [
            Self::Block,
            Self::DropNewest,
            Self::DropOldest,
            Self::Reject,
            Self::Spill,
        ]
    }

    /// The snake_case name used by `set`, YAML and C.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::DropNewest => "drop_newest",
            Self::DropOldest => "drop_oldest",
            Self::Reject => "reject",
            Self::Spill => "spill",
        }
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Overflow {
    type Err = ConfigError;

    /// Reads the snake_case name; anything else is an
    /// [`InvalidValue`](ConfigError::InvalidValue) for the key `overflow`.
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        Self::all()
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| ConfigError::InvalidValue {
                key: "overflow",
                value: text.to_owned(),
                expected: OVERFLOW_EXPECTED.to_owned(),
            })
    }
}
