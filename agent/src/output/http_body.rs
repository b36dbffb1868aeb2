//! The body of one HTTP request: a batch laid out as lines or as JSON
//! objects, optionally gzip-compressed.
//!
//! JSON strings are escaped as RFC 8259 requires: `"` and `\`, and every
//! control character below U+0020 (`\n`, `\r`, `\t`, `\b`, `\f` by name, the
//! others as `\u00XX`). Valid UTF-8 goes through as it is. JSON cannot hold
//! bytes that are not UTF-8, so each invalid sequence in a record becomes
//! U+FFFD (the replacement character), as `String::from_utf8_lossy` does:
//! the object stays valid JSON and the rest of the record is kept. Use
//! `--http-format lines` to ship records byte for byte.

use std::io::{self, IoSlice, Write};

use flate2::write::GzEncoder;
use flate2::Compression;

/// How records are laid out in a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Each record and its newline, as a file output holds them.
    Lines,
    /// One object per line: `{"message":"RECORD"` then the constant
    /// fields, each already rendered as `,"K":"V"`, then `}`.
    Json {
        /// The `--http-field` constants, rendered once.
        fields: Vec<u8>,
    },
}

impl Format {
    /// The JSON format with these `(key, value)` constants after `message`.
    pub fn json(fields: &[(String, String)]) -> Self {
        let mut rendered = Vec::new();
        for (k, v) in fields {
            rendered.push(b',');
            push_json_string(&mut rendered, k.as_bytes());
            rendered.push(b':');
            push_json_string(&mut rendered, v.as_bytes());
        }
        Self::Json { fields: rendered }
    }

    /// The `Content-Type` the body is sent with unless a header overrides it.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Lines => "text/plain",
            Self::Json { .. } => "application/x-ndjson",
        }
    }
}

/// Lays out the batch `parts` (lines, each ending in a newline, `len`
/// bytes in all) into `body`, replacing what it held; compresses it when
/// `gzip`. `scratch` is working space kept between batches.
///
/// # Errors
/// Only from the compressor, which writes to memory: practically never.
pub fn encode(
    format: &Format,
    gzip: bool,
    parts: &[IoSlice<'_>],
    len: usize,
    body: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    body.clear();
    match format {
        Format::Lines => {
            if gzip {
                let mut z = GzEncoder::new(std::mem::take(body), Compression::fast());
                for p in parts {
                    z.write_all(p)?;
                }
                *body = z.finish()?;
            } else {
                body.reserve(len);
                for p in parts {
                    body.extend_from_slice(p);
                }
            }
        }
        Format::Json { fields } => {
            // The lines whole first (a line may span parts), then objects.
            scratch.clear();
            scratch.reserve(len);
            for p in parts {
                scratch.extend_from_slice(p);
            }
            body.reserve(len + len / 8 + 16);
            if let Some(text) = scratch.strip_suffix(b"\n") {
                for line in text.split(|&b| b == b'\n') {
                    body.extend_from_slice(b"{\"message\":");
                    push_json_string(body, line);
                    body.extend_from_slice(fields);
                    body.extend_from_slice(b"}\n");
                }
            }
            if gzip {
                // The lines' buffer takes the compressed body; the plain
                // JSON's becomes the next batch's lines buffer.
                scratch.clear();
                let mut z = GzEncoder::new(std::mem::take(scratch), Compression::fast());
                z.write_all(body)?;
                let zipped = z.finish()?;
                *scratch = std::mem::replace(body, zipped);
            }
        }
    }
    Ok(())
}

/// Appends `bytes` to `out` as a JSON string, quotes included (see the
/// module's notes on escaping and on bytes that are not UTF-8).
pub fn push_json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        push_escaped(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
    out.push(b'"');
}

fn push_escaped(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let named: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if named.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(named);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn json(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        push_json_string(&mut out, bytes);
        String::from_utf8(out).expect("always UTF-8")
    }

    fn body(format: &Format, gzip: bool, text: &[&[u8]]) -> Vec<u8> {
        let parts: Vec<IoSlice<'_>> = text.iter().map(|t| IoSlice::new(t)).collect();
        let len = text.iter().map(|t| t.len()).sum();
        let (mut b, mut s) = (Vec::new(), Vec::new());
        encode(format, gzip, &parts, len, &mut b, &mut s).unwrap();
        b
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_every_control_character() {
        assert_eq!(json(b"plain"), r#""plain""#);
        assert_eq!(json(br#"a "q" \ b"#), r#""a \"q\" \\ b""#);
        assert_eq!(json(b"\n\r\t\x08\x0c"), r#""\n\r\t\b\f""#);
        assert_eq!(json(b"\x00\x01\x1b\x1f"), r#""\u0000\u0001\u001b\u001f""#);
        // DEL and non-ASCII are not control characters JSON must escape.
        assert_eq!(json("\x7fé€😀".as_bytes()), "\"\x7fé€😀\"");
        assert_eq!(json(b""), r#""""#);
    }

    #[test]
    fn bytes_that_are_not_utf8_become_one_replacement_character_per_sequence() {
        assert_eq!(json(b"a\xffb"), "\"a\u{FFFD}b\"");
        // A truncated 3-byte sequence is one invalid sequence.
        assert_eq!(json(b"x\xe2\x82"), "\"x\u{FFFD}\"");
        assert_eq!(json(b"\xc0\xafq\""), "\"\u{FFFD}\u{FFFD}q\\\"\"");
    }

    #[test]
    fn lines_are_the_batch_as_it_is_and_json_is_one_object_per_record() {
        let parts: [&[u8]; 3] = [b"one\ntw", b"o\n", b"th\"ree\n"];
        assert_eq!(body(&Format::Lines, false, &parts), b"one\ntwo\nth\"ree\n");
        let fields = [
            ("host".to_owned(), "dev-1".to_owned()),
            ("k\"".to_owned(), "v\n".to_owned()),
        ];
        let got = body(&Format::json(&fields), false, &parts);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "{\"message\":\"one\",\"host\":\"dev-1\",\"k\\\"\":\"v\\n\"}\n\
             {\"message\":\"two\",\"host\":\"dev-1\",\"k\\\"\":\"v\\n\"}\n\
             {\"message\":\"th\\\"ree\",\"host\":\"dev-1\",\"k\\\"\":\"v\\n\"}\n"
        );
        // An empty record is an empty message.
        let got = body(&Format::json(&[]), false, &[b"\nx\n"]);
        assert_eq!(got, b"{\"message\":\"\"}\n{\"message\":\"x\"}\n");
    }

    #[test]
    fn gzip_bodies_decode_to_the_plain_ones() {
        let parts: [&[u8]; 2] = [b"alpha\nbeta\n", b"gamma\n"];
        for format in [Format::Lines, Format::json(&[("a".into(), "b".into())])] {
            let plain = body(&format, false, &parts);
            let zipped = body(&format, true, &parts);
            assert_eq!(&zipped[..2], b"\x1f\x8b", "gzip magic");
            assert_eq!(gunzip(&zipped), plain);
        }
    }

    #[test]
    fn the_buffers_are_reused_across_batches_without_leftovers() {
        let format = Format::json(&[]);
        let (mut b, mut s) = (Vec::new(), Vec::new());
        for (gzip, text) in [
            (true, &b"first line\n"[..]),
            (false, b"2\n"),
            (true, b"3\n"),
        ] {
            encode(
                &format,
                gzip,
                &[IoSlice::new(text)],
                text.len(),
                &mut b,
                &mut s,
            )
            .unwrap();
            let plain = if gzip { gunzip(&b) } else { b.clone() };
            let want = format!(
                "{{\"message\":\"{}\"}}\n",
                std::str::from_utf8(&text[..text.len() - 1]).unwrap()
            );
            assert_eq!(String::from_utf8(plain).unwrap(), want);
        }
    }
}
