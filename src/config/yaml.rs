//! YAML files: a flat mapping of key to scalar, every pair fed through
//! [`BufferConfig::set`], and the same layout written back.
//!
//! A scalar is handed to `set` as the text written in the file, whether
//! YAML would read it as a string, a number or a boolean: `max_size: 500`
//! and `max_size: "500"` are the same, and `max_size: 0x10`, which YAML
//! reads as 16, is refused exactly as `set("max_size", "0x10")` is. One
//! parser, one answer. `name: 007` is the name `007`. `null` (or nothing
//! after the colon) unsets an optional key (`spool_dir`, `flush_meta`) and
//! is an error for any other key, so that `max_size:` left blank is caught
//! rather than read as the default. A list or mapping as a value is an error
//! naming the key. An empty file changes nothing.

use std::path::{Path, PathBuf};

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Error as _, Serialize, SerializeMap, Serializer};
use serde_yaml::{Mapping, Value};

use super::{documented_keys, keys, BufferConfig, ConfigError};
use crate::regular_file::{self, Symlinks};

/// The most a configuration file may hold. A real one is a few hundred
/// bytes; the bound keeps `/dev/zero`-like files from exhausting memory.
pub(super) const MAX_FILE_BYTES: u64 = 1 << 20;

impl BufferConfig {
    /// The defaults with the keys of a YAML mapping applied.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Yaml`] for text that is not a flat YAML mapping, and
    /// the errors of [`set`](Self::set) for a bad key or value.
    ///
    /// ```
    /// use spillway::config::{BufferConfig, Overflow};
    ///
    /// let cfg = BufferConfig::from_yaml_str(
    ///     "name: events\nmax_size: 500\nflush_interval: 250ms\noverflow: drop_oldest\n",
    /// )?;
    /// assert_eq!(cfg.max_size, 500);
    /// assert_eq!(cfg.overflow, Overflow::DropOldest);
    /// # Ok::<(), spillway::config::ConfigError>(())
    /// ```
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        let mut cfg = Self::default();
        cfg.merge_yaml_str(text)?;
        Ok(cfg)
    }

    /// Applies the keys of a YAML mapping on top of this configuration.
    ///
    /// # Errors
    ///
    /// As [`from_yaml_str`](Self::from_yaml_str). On any error the
    /// configuration is unchanged.
    pub fn merge_yaml_str(&mut self, text: &str) -> Result<(), ConfigError> {
        let value: Value = serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml {
            path: None,
            reason: e.to_string(),
        })?;
        let written = written_scalars(text);
        let mut merged = self.clone();
        apply(&mut merged, value, written.as_deref())?;
        *self = merged;
        Ok(())
    }

    /// The defaults with the keys of a YAML file applied.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] when the file cannot be read, is not a regular
    /// file (a FIFO or a device is refused at once, never waited on), or
    /// holds more than 1 MiB;
    /// [`ConfigError::Yaml`] when it is not a flat YAML mapping, and
    /// [`ConfigError::InFile`] around the error of [`set`](Self::set) for a
    /// bad key or value. Every one names the file.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let mut cfg = Self::default();
        cfg.merge_yaml_file(path)?;
        Ok(cfg)
    }

    /// Applies the keys of a YAML file on top of this configuration (what C's
    /// `spw_config_load_yaml` does).
    ///
    /// # Errors
    ///
    /// As [`from_yaml_file`](Self::from_yaml_file). On any error the
    /// configuration is unchanged.
    ///
    /// ```no_run
    /// use spillway::config::BufferConfig;
    ///
    /// let mut cfg = BufferConfig::new().name("audit");
    /// cfg.merge_yaml_file("/etc/app/buffer.yaml")?;
    /// # Ok::<(), spillway::config::ConfigError>(())
    /// ```
    pub fn merge_yaml_file(&mut self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let path = path.as_ref();
        let io_error = |source: std::io::Error| ConfigError::Io {
            path: path.to_owned(),
            source,
        };
        // A user may point at a link to their file; what it reaches must be a
        // regular file, read without blocking and within the bound.
        let bytes = regular_file::read(path, MAX_FILE_BYTES, Symlinks::Follow)
            .map_err(|e| io_error(e.into()))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            io_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        self.merge_yaml_str(&text)
            .map_err(|err| name_file(err, path.to_owned()))
    }

    /// Every key and its value as a YAML mapping, in the order of
    /// [`documented_keys`], in the syntax [`set`](Self::set) reads; an unset
    /// option is written as `null`. [`from_yaml_str`](Self::from_yaml_str)
    /// reads it back to an equal configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a `spool_dir` that is not UTF-8,
    /// which YAML cannot hold.
    ///
    /// ```
    /// use spillway::config::BufferConfig;
    ///
    /// let yaml = BufferConfig::new().max_size(64).to_yaml()?;
    /// assert!(yaml.contains("max_size: 64\n"));
    /// assert!(yaml.contains("flush_interval: 1s\n"));
    /// assert_eq!(BufferConfig::from_yaml_str(&yaml)?, BufferConfig::new().max_size(64));
    /// # Ok::<(), spillway::config::ConfigError>(())
    /// ```
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_yaml::to_string(&self.to_mapping()?).map_err(|e| ConfigError::Yaml {
            path: None,
            reason: e.to_string(),
        })
    }

    fn to_mapping(&self) -> Result<Mapping, ConfigError> {
        if let Some(dir) = &self.spool_dir {
            if dir.to_str().is_none() {
                return Err(ConfigError::InvalidValue {
                    key: "spool_dir",
                    value: dir.to_string_lossy().into_owned(),
                    expected: "a UTF-8 path, to be written as YAML".to_owned(),
                });
            }
        }
        let mut map = Mapping::with_capacity(documented_keys().len());
        for doc in documented_keys() {
            let value = match (doc.get)(self) {
                None => Value::Null,
                // A whole number goes out as a YAML number when that reads
                // back as the same text; "007" stays a string.
                Some(text) => match text.parse::<u64>() {
                    Ok(n) if n.to_string() == text => Value::Number(n.into()),
                    _ => Value::String(text),
                },
            };
            map.insert(Value::String(doc.key.to_owned()), value);
        }
        Ok(map)
    }
}

/// Serializes as the mapping [`BufferConfig::to_yaml`] writes, so a
/// configuration can sit inside a larger serde document.
impl Serialize for BufferConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let map = self.to_mapping().map_err(S::Error::custom)?;
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (key, value) in &map {
            out.serialize_entry(key, value)?;
        }
        out.end()
    }
}

/// Deserializes a mapping of keys, applied to the defaults through
/// [`BufferConfig::set`], as [`BufferConfig::from_yaml_str`] does; so a
/// `buffer:` section of a larger configuration file reads the same way.
///
/// One difference: a serde deserializer hands over numbers as the format
/// read them, not as written, so here YAML's `0x10` arrives as 16 and is
/// accepted. [`BufferConfig::from_yaml_str`] and
/// [`BufferConfig::from_yaml_file`] read the text itself and refuse it.
impl<'de> Deserialize<'de> for BufferConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let mut cfg = Self::default();
        apply(&mut cfg, value, None).map_err(serde::de::Error::custom)?;
        Ok(cfg)
    }
}

/// Adds the file to an error found in its text.
fn name_file(err: ConfigError, path: PathBuf) -> ConfigError {
    match err {
        ConfigError::Yaml { reason, .. } => ConfigError::Yaml {
            path: Some(path),
            reason,
        },
        other => ConfigError::InFile {
            path,
            source: Box::new(other),
        },
    }
}

/// The text of each pair of a top-level mapping as written in `text`, in
/// order: the key, and the value's text (`None` for a null). `None` when a
/// value is not a scalar (a list, a mapping): such a document is refused
/// anyway, by the shape checks of [`apply`].
///
/// YAML resolves a plain scalar to a type (`0x10` to the number 16, `007`
/// to 7) before [`Value`] holds it; this second reading asks the parser for
/// every scalar as a string, which it gives as written.
fn written_scalars(text: &str) -> Option<Vec<(String, Option<String>)>> {
    struct Pairs(Vec<(String, Option<String>)>);
    struct Written(String);

    impl<'de> Deserialize<'de> for Written {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Text;
            impl serde::de::Visitor<'_> for Text {
                type Value = Written;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a scalar")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Written, E> {
                    Ok(Written(v.to_owned()))
                }
            }
            deserializer.deserialize_str(Text)
        }
    }

    impl<'de> Deserialize<'de> for Pairs {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Map;
            impl<'de> serde::de::Visitor<'de> for Map {
                type Value = Pairs;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a mapping")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Pairs, A::Error> {
                    let mut pairs = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        let value = map.next_value::<Option<Written>>()?;
                        pairs.push((key, value.map(|w| w.0)));
                    }
                    Ok(Pairs(pairs))
                }
            }
            deserializer.deserialize_map(Map)
        }
    }

    serde_yaml::from_str::<Pairs>(text).ok().map(|p| p.0)
}

/// Feeds every pair of a mapping through `set`; stops at the first error,
/// possibly after changing `cfg` (callers work on a copy). `written`, from
/// [`written_scalars`], gives numbers and booleans as the file spelled
/// them; without it (a serde deserializer), they go as YAML read them.
fn apply(
    cfg: &mut BufferConfig,
    document: Value,
    written: Option<&[(String, Option<String>)]>,
) -> Result<(), ConfigError> {
    let map = match document {
        Value::Mapping(map) => map,
        Value::Null => return Ok(()),
        other => {
            return Err(shape_error(format!(
                "expected a mapping of keys to values, found {}",
                describe(&other)
            )))
        }
    };
    for (index, (key, value)) in map.into_iter().enumerate() {
        let key = match key {
            Value::String(key) => key,
            other => {
                return Err(shape_error(format!(
                    "every key must be a string, found {}",
                    describe(&other)
                )))
            }
        };
        // The pairs of both readings line up: one text, read in order.
        let as_written = written
            .and_then(|w| w.get(index))
            .filter(|(k, _)| *k == key)
            .and_then(|(_, text)| text.clone());
        let doc = keys::find(&key).ok_or(ConfigError::UnknownKey { key })?;
        let text = match (value, as_written) {
            (Value::String(text), _) => text,
            // What YAML read as a number or a boolean goes to `set` as the
            // file spelled it, as it would from C or a flag.
            (Value::Number(_) | Value::Bool(_), Some(written)) => written,
            (Value::Number(n), None) => n.to_string(),
            (Value::Bool(b), None) => b.to_string(),
            (Value::Null, _) => match doc.clear {
                Some(clear) => {
                    clear(cfg);
                    continue;
                }
                None => {
                    return Err(shape_error(format!(
                        "`{}` has no value; expected {}",
                        doc.key, doc.accepts
                    )))
                }
            },
            (other, _) => {
                return Err(shape_error(format!(
                    "`{}` is {}; expected {}",
                    doc.key,
                    describe(&other),
                    doc.accepts
                )))
            }
        };
        cfg.set(doc.key, &text)?;
    }
    Ok(())
}

fn shape_error(reason: String) -> ConfigError {
    ConfigError::Yaml { path: None, reason }
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
