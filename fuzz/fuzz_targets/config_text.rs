//! Configuration from YAML text and from key/value pairs.
//!
//! Input: one mode byte, then UTF-8 text.
//! - Even mode: the text is a YAML document. A document that loads reads
//!   back equal from its own `to_yaml`, and every key's value round-trips
//!   through `get`/`set`; a refused one leaves a configuration it was
//!   merged into unchanged, with a one-line message.
//! - Odd mode: the text is `key=value` lines, applied with `set` one by one.
//!   A refused `set` changes nothing; an accepted value reads back with `get`
//!   as text that `set` takes to the same configuration (and `get` then
//!   gives the same text). YAML gives the same answer as `set` for the same
//!   value: always for a double-quoted YAML string, and for a plain scalar
//!   too (say `max_size: 0x10`), except for the text keys, where the
//!   documented `name: 007` -> `7` applies, and for YAML's null spellings,
//!   which unset an optional key.

#![no_main]

use libfuzzer_sys::fuzz_target;
use spillway::config::{documented_keys, BufferConfig};

/// Keys whose value is free text: a plain YAML scalar that looks like a
/// number is documented to lose its formatting there.
const TEXT_KEYS: [&str; 3] = ["name", "flush_meta", "spool_dir"];

/// Every key's value, read back through `set`, gives the same configuration.
fn check_get_set(cfg: &BufferConfig) {
    for doc in documented_keys() {
        let Some(text) = cfg.get(doc.key).expect("a documented key") else {
            continue;
        };
        let mut again = cfg.clone();
        again
            .set(doc.key, &text)
            .unwrap_or_else(|e| panic!("get({}) gave {text:?}, which set refuses: {e}", doc.key));
        assert_eq!(&again, cfg, "set({}, {text:?}) changed the value", doc.key);
        assert_eq!(again.get(doc.key).unwrap().as_deref(), Some(&*text));
    }
}

fn check_one_line(what: &str, msg: &str) {
    assert!(!msg.contains('\n'), "{what}: a multi-line error: {msg:?}");
    assert!(!msg.is_empty(), "{what}: an empty error message");
}

/// A YAML double-quoted scalar holding exactly `s`.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20
                || c == '\u{7f}'
                || c == '\u{85}'
                || c == '\u{2028}'
                || c == '\u{2029}' =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value YAML reads as a plain scalar with no structure: a string, a
/// number or a boolean, whose text `set` is also asked to read.
fn plain_scalar(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
        && !matches!(v, "null" | "Null" | "NULL")
        && !v.starts_with('-')
}

/// `set` and YAML give the same answer for `key: yaml_value`.
fn check_yaml_agrees(key: &str, value: &str, yaml_value: &str) {
    let by_set = {
        let mut cfg = BufferConfig::default();
        cfg.set(key, value).map(|()| cfg)
    };
    let doc = format!("{key}: {yaml_value}\n");
    let by_yaml = BufferConfig::from_yaml_str(&doc);
    match (&by_set, &by_yaml) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "set({key:?}, {value:?}) and YAML {doc:?} differ"),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "set({key:?}, {value:?}) gives {:?} but YAML {doc:?} gives {:?}",
            by_set.as_ref().map(|_| "Ok").map_err(|e| e.to_string()),
            by_yaml.as_ref().map(|_| "Ok").map_err(|e| e.to_string())
        ),
    }
}

fn yaml_document(text: &str) {
    match BufferConfig::from_yaml_str(text) {
        Ok(cfg) => {
            let yaml = cfg
                .to_yaml()
                .expect("a loaded configuration writes as YAML");
            let back = BufferConfig::from_yaml_str(&yaml)
                .unwrap_or_else(|e| panic!("its own YAML does not load: {e}\n{yaml}"));
            assert_eq!(back, cfg, "to_yaml then from_yaml changed it:\n{yaml}");
            check_get_set(&cfg);
            let _ = cfg.validate();
        }
        Err(e) => {
            check_one_line("from_yaml_str", &e.to_string());
            let base = BufferConfig::new()
                .name("base")
                .max_size(7)
                .spool_dir("/base");
            let mut merged = base.clone();
            assert!(merged.merge_yaml_str(text).is_err());
            assert_eq!(merged, base, "a refused merge changed the configuration");
        }
    }
}

fn key_value_lines(text: &str) {
    let mut cfg = BufferConfig::default();
    for line in text.lines().take(64) {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let before = cfg.clone();
        match cfg.set(key, value) {
            Ok(()) => {
                if let Some(text) = cfg.get(key).expect("set accepted the key") {
                    let mut again = before.clone();
                    again.set(key, &text).unwrap_or_else(|e| {
                        panic!("set({key:?}, {value:?}) then get gave {text:?}, which set refuses: {e}")
                    });
                    assert_eq!(again, cfg, "{key}: {value:?} and {text:?} differ");
                    assert_eq!(again.get(key).unwrap().as_deref(), Some(&*text));
                }
            }
            Err(e) => {
                check_one_line("set", &e.to_string());
                assert_eq!(cfg, before, "a refused set({key:?}, {value:?}) changed it");
            }
        }
        if documented_keys().iter().any(|d| d.key == key) {
            check_yaml_agrees(key, value, &quoted(value));
            if plain_scalar(value) && !TEXT_KEYS.contains(&key) {
                check_yaml_agrees(key, value, value);
            }
        }
    }
    check_get_set(&cfg);
    let _ = cfg.validate();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 2 == 0 {
        yaml_document(text);
    } else {
        key_value_lines(text);
    }
});
