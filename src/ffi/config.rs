//! `spw_config`: a buffer's configuration, set key by key or from a YAML file.

use core::ffi::c_char;

use super::error::Error;
use super::guard::{self, Fuse};
use super::ptr::{self, Handle};
use super::status::spw_status;
use crate::config::{BufferConfig, ConfigError};
use crate::sync::Mutex;

/// A buffer's configuration: every key starts at its default, and
/// `spw_config_set` / `spw_config_load_yaml` change keys one by one.
///
/// The keys are those of the YAML file and of the Rust `BufferConfig`:
/// `name`, `max_size`, `max_size_jitter`, `max_bytes`, `flush_interval`,
/// `flush_jitter`, `flush_timeout`, `flush_meta`, `partitions`, `capacity`,
/// `capacity_bytes`, `overflow` (`block` | `drop_newest` | `drop_oldest` |
/// `reject` | `spill`; `spill` spills only while the sink is failing),
/// `block_timeout`, `max_retries`, `retry_backoff`, `retry_backoff_max`,
/// `spool_dir`, `spool_max_bytes`, `spool_sync` (`always` | `batch` |
/// `interval` | `never`), `spool_sync_interval`, `workers`. Durations take
/// `250ms`, `2s`, `1m`, or a bare number of milliseconds; sizes take `512`,
/// `64KiB`, `10MiB`, `1GiB`.
///
/// `spw_buffer_new` copies the configuration, so one `spw_config` may build
/// many buffers and may be changed or freed afterwards. Thread-safe: calls
/// from several threads at once each see a whole configuration (`free`
/// excepted, which must be the last call). Create with `spw_config_new`, free
/// with `spw_config_free`.
pub struct spw_config {
    fuse: Fuse,
    config: Mutex<BufferConfig>,
}

impl Handle for spw_config {
    fn fuse(&self) -> &Fuse {
        &self.fuse
    }
}

impl spw_config {
    /// A copy of the configuration as it is now.
    pub(crate) fn snapshot(&self) -> BufferConfig {
        self.fuse.run(|| self.config.lock().clone())
    }
}

/// The status C gets for a refused key, value or file.
fn config_error(e: &ConfigError) -> Error {
    let status = match e {
        ConfigError::Io { .. } => spw_status::SPW_ERR_IO,
        _ => spw_status::SPW_ERR_INVALID,
    };
    Error::new(status, e.to_string())
}

/// Creates a configuration with every key at its default.
///
/// Returns the new configuration, to be freed with `spw_config_free`; NULL
/// only if the library failed internally (`spw_last_error()` says why).
#[no_mangle]
pub extern "C" fn spw_config_new() -> *mut spw_config {
    guard::value("spw_config_new", core::ptr::null_mut(), || {
        Ok(ptr::into_c(spw_config {
            fuse: Fuse::new(),
            config: Mutex::new(BufferConfig::new()),
        }))
    })
}

/// Sets one key from text, e.g. `spw_config_set(cfg, "max_bytes", "4MiB")`.
///
/// Each value is checked on its own here; combinations (say `capacity` below
/// `max_size`) are checked by `spw_buffer_new`. The library copies `key` and
/// `value`; both must be NUL-terminated UTF-8.
///
/// Returns `SPW_OK`; `SPW_ERR_INVALID` for an unknown key or a value the key
/// does not accept (the message names the key and what it accepts), or for a
/// string that is not UTF-8 (the message names the parameter); `SPW_ERR_NULL`
/// (`cfg`, `key` or `value`). A refused call leaves the configuration as it
/// was. Thread-safe.
///
/// # Safety
/// `cfg` is NULL or a live configuration; non-NULL `key` and `value` are
/// NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn spw_config_set(
    cfg: *mut spw_config,
    key: *const c_char,
    value: *const c_char,
) -> spw_status {
    guard::status("spw_config_set", || {
        // SAFETY: the caller passes NULL or a live configuration from spw_config_new.
        let cfg = unsafe { ptr::handle(cfg, "cfg") }?;
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let (key, value) = unsafe { (ptr::str_in(key, "key")?, ptr::str_in(value, "value")?) };
        cfg.fuse
            .run(|| cfg.config.lock().set(key, value))
            .map_err(|e| config_error(&e))
    })
}

/// Applies the keys of a YAML file (a flat mapping of key to value, the same
/// keys and values as `spw_config_set`) on top of the configuration; keys the
/// file does not name keep their values.
///
/// `path` must be NUL-terminated UTF-8.
///
/// Returns `SPW_OK`; `SPW_ERR_IO` when the file cannot be read;
/// `SPW_ERR_INVALID` when it is not a flat YAML mapping or holds a bad key or
/// value, or when `path` is not UTF-8; `SPW_ERR_NULL` (`cfg` or `path`). Every
/// message names the file. A refused file changes nothing. Thread-safe.
///
/// # Safety
/// `cfg` is NULL or a live configuration; a non-NULL `path` is a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn spw_config_load_yaml(
    cfg: *mut spw_config,
    path: *const c_char,
) -> spw_status {
    guard::status("spw_config_load_yaml", || {
        // SAFETY: the caller passes NULL or a live configuration from spw_config_new.
        let cfg = unsafe { ptr::handle(cfg, "cfg") }?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let path = unsafe { ptr::str_in(path, "path") }?;
        // Under the lock throughout, so a concurrent set is not lost.
        cfg.fuse
            .run(|| cfg.config.lock().merge_yaml_file(path))
            .map_err(|e| config_error(&e))
    })
}

/// Frees the configuration. NULL is a no-op. Buffers built from it are not
/// affected (they hold their own copy).
///
/// # Safety
/// `cfg` is NULL or a live configuration that no other thread is using; it
/// is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn spw_config_free(cfg: *mut spw_config) {
    guard::void("spw_config_free", || {
        // SAFETY: the caller passes NULL or a live configuration that nobody else uses.
        drop(unsafe { ptr::take(cfg) });
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::last_error_string;

    #[test]
    fn set_goes_through_the_rust_parser() {
        let cfg = spw_config_new();
        assert!(!cfg.is_null());
        // SAFETY: cfg is live; the strings are NUL-terminated literals.
        unsafe {
            let st = spw_config_set(cfg, c"max_bytes".as_ptr(), c"4MiB".as_ptr());
            assert_eq!(st, spw_status::SPW_OK);
            assert_eq!((*cfg).snapshot().max_bytes, 4 << 20);

            let st = spw_config_set(cfg, c"max_size".as_ptr(), c"abc".as_ptr());
            assert_eq!(st, spw_status::SPW_ERR_INVALID);
            assert_eq!(
                last_error_string(),
                "spw_config_set: invalid value \"abc\" for `max_size`: expected a whole number >= 1"
            );
            assert_eq!((*cfg).snapshot().max_size, 1000);
            spw_config_free(cfg);
        }
    }

    #[test]
    fn io_errors_are_io_and_the_rest_invalid() {
        let io = ConfigError::Io {
            path: "/nope".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(config_error(&io).status(), spw_status::SPW_ERR_IO);
        assert!(config_error(&io).detail().contains("/nope"));
        let bad = BufferConfig::new().set("nope", "1").unwrap_err();
        assert_eq!(config_error(&bad).status(), spw_status::SPW_ERR_INVALID);
    }
}
