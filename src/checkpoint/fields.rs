//! The fields of an entry beyond its name, record number and timestamp:
//! those later winlogbeat versions add (`bookmark`), kept as read, and those
//! a program stores with a position (a file's device and inode).

use std::fmt;

use serde_yaml::{Mapping, Value};

use super::error::CheckpointError;

/// The keys the layout itself uses; a field cannot take them.
pub(crate) const RESERVED: [&str; 3] = ["name", "record_number", "timestamp"];

/// The extra fields of one checkpoint entry, in the order they are written.
///
/// A file's unknown fields (winlogbeat's `bookmark`, or anything a later
/// version adds) are kept here exactly as read, whatever their YAML shape,
/// and written back unchanged. A program can add its own, as whole numbers
/// or strings, to keep something with a position: the agent keeps the
/// device and inode of the file an offset belongs to.
///
/// # Examples
///
/// ```
/// use spillway::checkpoint::Fields;
///
/// let mut fields = Fields::new();
/// fields.set_u64("inode", 1234)?;
/// fields.set_str("host", "db1")?;
/// assert_eq!(fields.get_u64("inode"), Some(1234));
/// assert_eq!(fields.get_str("host"), Some("db1"));
/// assert_eq!(fields.get_u64("host"), None); // not a whole number
/// assert_eq!(fields.names().collect::<Vec<_>>(), ["inode", "host"]);
/// assert!(fields.set_u64("record_number", 1).is_err()); // the layout's own key
/// # Ok::<(), spillway::checkpoint::CheckpointError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Fields(Mapping);

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names of the fields, in order. A key that is not a string (YAML
    /// allows it) is kept and written back, but not listed.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.keys().filter_map(Value::as_str)
    }

    /// Whether a field of this name exists, whatever its value.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The value of field `name` if it is a whole number from 0 to
    /// `u64::MAX`.
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.0.get(name).and_then(Value::as_u64)
    }

    /// The value of field `name` if it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// Sets field `name` to a whole number, in place if it exists, else
    /// last.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Invalid`] for `name`, `record_number` or
    /// `timestamp`, which the layout itself uses; nothing changes.
    pub fn set_u64(&mut self, name: &str, value: u64) -> Result<(), CheckpointError> {
        self.set(name, Value::Number(value.into()))
    }

    /// Sets field `name` to a string, in place if it exists, else last.
    ///
    /// # Errors
    ///
    /// As [`set_u64`](Self::set_u64).
    pub fn set_str(&mut self, name: &str, value: &str) -> Result<(), CheckpointError> {
        self.set(name, Value::String(value.to_owned()))
    }

    /// Removes field `name`; returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.0.shift_remove(name).is_some()
    }

    fn set(&mut self, name: &str, value: Value) -> Result<(), CheckpointError> {
        if RESERVED.contains(&name) {
            return Err(CheckpointError::invalid(format!(
                "`{name}` is a key of the checkpoint layout, not a free field"
            )));
        }
        match self.0.get_mut(name) {
            Some(slot) => *slot = value,
            None => {
                self.0.insert(Value::String(name.to_owned()), value);
            }
        }
        Ok(())
    }

    /// Sets every field of `other` here, keeping the fields only this one
    /// has.
    pub(crate) fn merge_from(&mut self, other: &Fields) {
        for (key, value) in &other.0 {
            match self.0.get_mut(key) {
                Some(slot) => slot.clone_from(value),
                None => {
                    self.0.insert(key.clone(), value.clone());
                }
            }
        }
    }

    /// Fields read from a file (the caller has taken the reserved keys out).
    pub(crate) fn from_mapping(map: Mapping) -> Self {
        Self(map)
    }

    pub(crate) fn as_mapping(&self) -> &Mapping {
        &self.0
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.0 {
            match (key.as_str(), value) {
                (Some(k), Value::String(s)) => map.entry(&k, s),
                (Some(k), Value::Number(n)) => map.entry(&k, &format_args!("{n}")),
                (Some(k), other) => map.entry(&k, other),
                (None, other) => map.entry(key, other),
            };
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_the_position_of_an_existing_field() {
        let mut f = Fields::new();
        f.set_u64("a", 1).unwrap();
        f.set_str("b", "x").unwrap();
        f.set_u64("a", 2).unwrap();
        assert_eq!(f.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(f.get_u64("a"), Some(2));
        assert!(f.remove("a"));
        assert!(!f.remove("a"));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn reserved_names_are_refused() {
        let mut f = Fields::new();
        for name in RESERVED {
            let err = f.set_u64(name, 1).unwrap_err();
            assert!(matches!(err, CheckpointError::Invalid { .. }));
            assert!(err.to_string().contains(name));
        }
        assert!(f.is_empty());
    }

    #[test]
    fn merge_sets_given_fields_and_keeps_the_rest() {
        let mut mine = Fields::new();
        mine.set_str("bookmark", "<x/>").unwrap();
        mine.set_u64("inode", 1).unwrap();
        let mut update = Fields::new();
        update.set_u64("inode", 2).unwrap();
        update.set_u64("dev", 3).unwrap();
        mine.merge_from(&update);
        assert_eq!(
            mine.names().collect::<Vec<_>>(),
            ["bookmark", "inode", "dev"]
        );
        assert_eq!(mine.get_u64("inode"), Some(2));
        assert_eq!(mine.get_str("bookmark"), Some("<x/>"));
    }
}
