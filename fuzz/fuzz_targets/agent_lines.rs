//! The agent's line splitter (`agent/src/lines.rs`) on any bytes, cut into
//! chunks anywhere.
//!
//! The agent is a binary crate, so the file is compiled in here with
//! `#[path]`: the very code the agent runs, with no change to the agent
//! (no library target whose API would then have to be kept). It needs only
//! `std` and `memchr`; if it ever uses another module of the agent, this
//! target stops compiling and says so.
//!
//! Checked, against the stream itself:
//! - the pieces cover the stream exactly: each starts where the previous
//!   ended, the first at the start offset, the last (after `finish`) at the
//!   end; each is the stream's bytes at its offsets, followed by the newline
//!   its `end` includes, if any;
//! - no piece holds a newline or is longer than the limit; a piece without
//!   its newline is a full-limit piece of an over-long line or the last
//!   line, handed out by `finish`;
//! - a piece `InChunk` is in the chunk just fed, followed there by `\n`;
//! - `pos` counts every byte fed; `split_lines` counts the lines longer than
//!   the limit.

#![no_main]

#[allow(dead_code)]
#[path = "../../agent/src/lines.rs"]
mod lines;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lines::{Lines, Piece};

#[derive(Arbitrary, Debug)]
struct Input {
    /// The stream starts at `offset × 4096` (a file position; far from
    /// overflowing a u64).
    offset: u32,
    /// The longest line; 0 = the agent's default, `MAX_LINE`.
    limit: u8,
    /// Sizes of the chunks fed (0 feeds an empty chunk); the rest of the
    /// stream goes in one last chunk.
    cuts: Vec<u8>,
    stream: Vec<u8>,
}

struct Out {
    bytes: Vec<u8>,
    start: u64,
    end: u64,
    in_chunk: bool,
    at_finish: bool,
}

fn record(out: &mut Vec<Out>, chunk: &[u8], p: Piece<'_>, start: u64, end: u64, at_finish: bool) {
    let (bytes, in_chunk) = match p {
        Piece::InChunk { off, len } => {
            assert_eq!(
                chunk.get(off + len),
                Some(&b'\n'),
                "InChunk is followed by its newline"
            );
            (chunk[off..off + len].to_vec(), true)
        }
        Piece::Carried(b) => (b.to_vec(), false),
    };
    out.push(Out {
        bytes,
        start,
        end,
        in_chunk,
        at_finish,
    });
}

fuzz_target!(|input: Input| {
    let offset = u64::from(input.offset) * 4096;
    let (mut lines, limit) = match input.limit {
        0 => (Lines::new(offset), lines::MAX_LINE),
        n => (Lines::with_limit(offset, usize::from(n)), usize::from(n)),
    };
    let stream = &input.stream;
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in &input.cuts {
        let end = (at + usize::from(cut)).min(stream.len());
        let chunk = &stream[at..end];
        lines.feed(chunk, |p, s, e| record(&mut out, chunk, p, s, e, false));
        at = end;
        assert_eq!(lines.pos(), offset + at as u64);
    }
    let chunk = &stream[at..];
    lines.feed(chunk, |p, s, e| record(&mut out, chunk, p, s, e, false));
    assert_eq!(lines.pos(), offset + stream.len() as u64);
    lines.finish(|p, s, e| record(&mut out, b"", p, s, e, true));

    let mut next = offset;
    for (i, piece) in out.iter().enumerate() {
        assert_eq!(
            piece.start, next,
            "piece {i} does not start where the last ended"
        );
        let from = (piece.start - offset) as usize;
        let len = piece.bytes.len();
        assert!(
            len <= limit,
            "piece {i} is {len} bytes, over the limit {limit}"
        );
        assert!(!piece.bytes.contains(&b'\n'), "piece {i} holds a newline");
        assert_eq!(
            &stream[from..from + len],
            &piece.bytes[..],
            "piece {i} is not the stream"
        );
        let with_newline = match piece.end - piece.start {
            n if n == len as u64 => false,
            n if n == len as u64 + 1 => true,
            n => panic!("piece {i}: {len} bytes but spans {n}"),
        };
        if with_newline {
            assert_eq!(
                stream[from + len],
                b'\n',
                "piece {i}'s end is past no newline"
            );
        } else {
            assert!(!piece.in_chunk, "piece {i} is InChunk without its newline");
            assert!(
                len == limit || piece.at_finish,
                "piece {i} ({len} bytes) has no newline, yet is neither a full piece nor the last"
            );
            if piece.at_finish {
                assert_eq!(
                    from + len,
                    stream.len(),
                    "finish's piece is not the stream's tail"
                );
            }
        }
        if piece.at_finish {
            assert!(len > 0, "finish handed out an empty piece");
        }
        next = piece.end;
    }
    assert_eq!(
        next,
        offset + stream.len() as u64,
        "the pieces do not reach the end"
    );

    let long_lines = stream
        .split(|&b| b == b'\n')
        .filter(|l| l.len() > limit)
        .count();
    assert_eq!(
        lines.split_lines(),
        long_lines as u64,
        "split_lines miscounts"
    );
});
