//! The manifest of a segment of messages in sequence mode (see the NATS
//! output's module doc): carried by the segment's first message in the
//! `Spw-Batch` header, it maps the segment's messages, in order, back to the
//! input records they came from, so that messages that landed but were
//! never checkpointed can be read back into input positions.
//!
//! A manifest is a list of runs. A run is `count` consecutive records of
//! one file (or stdin) that lie end to end, from offset `start` to offset
//! `end`; every record of a run but the last is its message's payload and a
//! newline, the last may lack the newline (a file's last line, or a piece
//! of an over-long line). So the span of the k-th message follows from the
//! payload lengths of the messages before it in its run, and the run's
//! `end` cross-checks them: a mapping that does not add up is an error,
//! never a guess.
//!
//! Wire form: `1` (the version), then one `DEV.INO.EPOCH.START.COUNT.END`
//! per run (decimal; standard input is `0.0.0`), separated by spaces:
//!
//! ```text
//! Spw-Batch: 1 2049.1234.0.4096.20000.2004096
//! ```

use crate::record::{FileId, Span};

/// The header that carries a manifest.
pub const HEADER: &str = "Spw-Batch";
/// The wire form's version, its first token.
const VERSION: &str = "1";
/// The most runs in one manifest: a batch whose records make more runs (many
/// files interleaved) is sent as several segments, each with a manifest of
/// its own, so that a header stays small (the server's payload limit counts
/// the headers too).
pub const MAX_RUNS: usize = 256;

/// Records of one file that lie end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The file (or stdin).
    pub file: FileId,
    /// Offset of the run's first record.
    pub start: u64,
    /// Records in the run (at least 1).
    pub count: u64,
    /// Offset just past the run's last record.
    pub end: u64,
}

/// The runs of one segment, in message order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    runs: Vec<Run>,
    /// Whether the last run's last record ends in a newline (a record that
    /// follows it in the same file can then join the run).
    open: bool,
}

impl Manifest {
    /// How many messages the segment has.
    pub fn messages(&self) -> u64 {
        self.runs.iter().map(|r| r.count).sum()
    }

    /// Whether it lists no message.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Adds the next record: its payload is `len` bytes (without the
    /// newline), and it was at `at`.
    ///
    /// # Errors
    /// `Full` when the record would start a run past [`MAX_RUNS`] (the
    /// caller starts a new segment with it); `Bad` when its span is not its
    /// payload with or without a newline (a defect: the mapping back could
    /// not be trusted).
    pub fn push(&mut self, len: usize, at: Span) -> Result<(), PushError> {
        let len = len as u64;
        let newline = match at.end.checked_sub(at.start) {
            Some(n) if n == len + 1 => true,
            Some(n) if n == len => false,
            _ => return Err(PushError::Bad(at)),
        };
        if let Some(last) = self.runs.last_mut() {
            if self.open && last.file == at.file && last.end == at.start {
                last.count += 1;
                last.end = at.end;
                self.open = newline;
                return Ok(());
            }
        }
        if self.runs.len() >= MAX_RUNS {
            return Err(PushError::Full);
        }
        self.runs.push(Run {
            file: at.file,
            start: at.start,
            count: 1,
            end: at.end,
        });
        self.open = newline;
        Ok(())
    }

    /// The header value.
    pub fn encode(&self) -> String {
        let mut out = String::from(VERSION);
        for r in &self.runs {
            let f = r.file;
            out.push_str(&format!(
                " {}.{}.{}.{}.{}.{}",
                f.dev, f.ino, f.epoch, r.start, r.count, r.end
            ));
        }
        out
    }

    /// Reads a header value.
    ///
    /// # Errors
    /// What is wrong with it, in a few words.
    pub fn decode(text: &str) -> Result<Self, String> {
        let mut tokens = text.split(' ');
        match tokens.next() {
            Some(VERSION) => {}
            _ => return Err(format!("unknown {HEADER} version in \"{text}\"")),
        }
        let mut runs = Vec::new();
        for t in tokens {
            let n: Vec<u64> = t
                .split('.')
                .map(str::parse::<u64>)
                .collect::<Result<_, _>>()
                .map_err(|_| format!("bad run \"{t}\" in {HEADER}"))?;
            let [dev, ino, epoch, start, count, end] = n[..] else {
                return Err(format!("bad run \"{t}\" in {HEADER}"));
            };
            let epoch = u32::try_from(epoch)
                .map_err(|_| format!("bad epoch in run \"{t}\" of {HEADER}"))?;
            // Each record takes at least its newline but the last one.
            if count == 0 || end < start || end - start < count - 1 {
                return Err(format!("impossible run \"{t}\" in {HEADER}"));
            }
            runs.push(Run {
                file: FileId { dev, ino, epoch },
                start,
                count,
                end,
            });
        }
        if runs.is_empty() {
            return Err(format!("{HEADER} lists no run"));
        }
        Ok(Self { runs, open: false })
    }

    /// The runs, in order.
    #[cfg(test)]
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }
}

/// Why [`Manifest::push`] refused a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The manifest has [`MAX_RUNS`] runs and the record starts another.
    Full,
    /// The record's span is not its payload and at most a newline.
    Bad(Span),
}

/// Walks a segment's messages, in order, to the spans they came from.
#[derive(Debug)]
pub struct Cursor {
    manifest: Manifest,
    /// The run the next message is in.
    run: usize,
    /// Messages of that run already walked.
    in_run: u64,
    /// Offset of the next message's record in its run.
    next_start: u64,
}

impl Cursor {
    /// A cursor before the segment's first message.
    pub fn new(manifest: Manifest) -> Self {
        let next_start = manifest.runs.first().map_or(0, |r| r.start);
        Self {
            manifest,
            run: 0,
            in_run: 0,
            next_start,
        }
    }

    /// Whether every message the manifest lists was walked.
    pub fn is_complete(&self) -> bool {
        self.run >= self.manifest.runs.len()
    }

    /// The span of the segment's next message, whose payload is `len`
    /// bytes.
    ///
    /// # Errors
    /// The manifest lists no more messages, or the payload lengths do not
    /// add up to the run's end.
    pub fn next(&mut self, len: usize) -> Result<Span, String> {
        let Some(r) = self.manifest.runs.get(self.run).copied() else {
            return Err(format!(
                "more messages than the {} its {HEADER} lists",
                self.manifest.messages()
            ));
        };
        let start = self.next_start;
        let len = len as u64;
        let last = self.in_run + 1 == r.count;
        let end = if last {
            r.end
        } else {
            start.saturating_add(len).saturating_add(1)
        };
        let fits = if last {
            end.checked_sub(start)
                .is_some_and(|n| n == len || n == len + 1)
        } else {
            end < r.end
        };
        if !fits {
            return Err(format!(
                "message {} of a run of {} does not fit the run [{}, {}) with its {len} bytes",
                self.in_run + 1,
                r.count,
                r.start,
                r.end
            ));
        }
        if last {
            self.run += 1;
            self.in_run = 0;
            self.next_start = self.manifest.runs.get(self.run).map_or(0, |n| n.start);
        } else {
            self.in_run += 1;
            self.next_start = end;
        }
        Ok(Span {
            file: r.file,
            start,
            end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(ino: u64) -> FileId {
        FileId {
            dev: 2049,
            ino,
            epoch: 0,
        }
    }

    fn span(file: FileId, start: u64, end: u64) -> Span {
        Span { file, start, end }
    }

    /// Records as `(payload, span)`; the manifest made from them, then
    /// decoded from its header value, walks back to the same spans.
    fn round_trip(records: &[(&str, Span)]) -> Manifest {
        let mut m = Manifest::default();
        for (payload, at) in records {
            m.push(payload.len(), *at).unwrap();
        }
        let back = Manifest::decode(&m.encode()).unwrap();
        assert_eq!(back.runs(), m.runs());
        assert_eq!(back.messages(), records.len() as u64);
        let mut c = Cursor::new(back);
        for (payload, at) in records {
            assert!(!c.is_complete());
            assert_eq!(c.next(payload.len()).unwrap(), *at, "{payload}");
        }
        assert!(c.is_complete());
        assert!(c.next(0).is_err());
        m
    }

    #[test]
    fn lines_end_to_end_make_one_run() {
        let f = file(7);
        let m = round_trip(&[
            ("ab", span(f, 100, 103)),
            ("", span(f, 103, 104)),
            ("cde", span(f, 104, 108)),
        ]);
        assert_eq!(m.encode(), "1 2049.7.0.100.3.108");
    }

    #[test]
    fn a_last_line_without_its_newline_ends_the_run() {
        let f = file(7);
        // The file ended without a newline, then grew: the next record
        // starts where the unterminated one ended, but is a run of its own.
        let m = round_trip(&[
            ("ab", span(f, 0, 3)),
            ("cd", span(f, 3, 5)),
            ("ef", span(f, 5, 8)),
        ]);
        assert_eq!(m.encode(), "1 2049.7.0.0.2.5 2049.7.0.5.1.8");
    }

    #[test]
    fn pieces_of_an_over_long_line_are_runs_of_one() {
        let f = file(7);
        let m = round_trip(&[
            ("0123", span(f, 0, 4)),
            ("4567", span(f, 4, 8)),
            ("89", span(f, 8, 11)),
            ("x", span(f, 11, 13)),
        ]);
        assert_eq!(m.runs().len(), 3);
    }

    #[test]
    fn several_files_and_a_gap_make_a_run_each() {
        let (a, b) = (file(1), file(2));
        let m = round_trip(&[
            ("a1", span(a, 0, 3)),
            ("b1", span(b, 10, 13)),
            ("b2", span(b, 13, 16)),
            ("a2", span(a, 3, 6)),
            ("a4", span(a, 9, 12)),
        ]);
        let starts: Vec<(u64, u64, u64)> = m
            .runs()
            .iter()
            .map(|r| (r.file.ino, r.start, r.count))
            .collect();
        assert_eq!(starts, [(1, 0, 1), (2, 10, 2), (1, 3, 1), (1, 9, 1)]);
    }

    #[test]
    fn stdin_is_file_zero() {
        let m = round_trip(&[
            ("x", span(FileId::STDIN, 5, 7)),
            ("yz", span(FileId::STDIN, 7, 10)),
        ]);
        assert_eq!(m.encode(), "1 0.0.0.5.2.10");
    }

    #[test]
    fn a_prefix_of_a_segment_maps_to_the_positions_of_its_records() {
        let f = file(3);
        let mut m = Manifest::default();
        for i in 0..10u64 {
            m.push(9, span(f, i * 10, i * 10 + 10)).unwrap();
        }
        let mut c = Cursor::new(Manifest::decode(&m.encode()).unwrap());
        let landed: Vec<Span> = (0..4).map(|_| c.next(9).unwrap()).collect();
        assert_eq!(landed.last(), Some(&span(f, 30, 40)));
        assert!(!c.is_complete());
    }

    #[test]
    fn lengths_that_do_not_add_up_are_an_error() {
        let f = file(3);
        let mut m = Manifest::default();
        m.push(2, span(f, 0, 3)).unwrap();
        m.push(2, span(f, 3, 6)).unwrap();
        let header = m.encode();
        // A longer first message runs past the run.
        let mut c = Cursor::new(Manifest::decode(&header).unwrap());
        assert!(c.next(5).unwrap_err().contains("does not fit"));
        // A last message that is not what is left of the run.
        let mut c = Cursor::new(Manifest::decode(&header).unwrap());
        c.next(2).unwrap();
        assert!(c.next(1).is_err());
        // A span that is not the payload and a newline is refused.
        let mut m = Manifest::default();
        let bad = span(f, 0, 9);
        assert_eq!(m.push(2, bad), Err(PushError::Bad(bad)));
    }

    #[test]
    fn a_manifest_holds_at_most_max_runs() {
        let mut m = Manifest::default();
        for i in 0..MAX_RUNS as u64 {
            m.push(1, span(file(i), 0, 2)).unwrap();
        }
        assert_eq!(m.push(1, span(file(9999), 0, 2)), Err(PushError::Full));
        // One that joins the last run still fits.
        m.push(1, span(file(MAX_RUNS as u64 - 1), 2, 4)).unwrap();
    }

    #[test]
    fn bad_header_values_are_refused() {
        for bad in [
            "",
            "2 1.2.0.0.1.3",
            "1",
            "1 1.2.0.0.1",
            "1 1.2.0.0.0.3",
            "1 1.2.0.5.1.3",
            "1 1.2.x.0.1.3",
            "1 1.2.99999999999.0.1.3",
            "1 1.2.0.0.5.3",
        ] {
            assert!(Manifest::decode(bad).is_err(), "{bad}");
        }
    }
}
