//! Cutting a byte stream into lines, remembering where each one was.

/// The longest record: a longer line is shipped in pieces of this size (it
/// must fit the spool's largest record, and bounds memory per record).
pub const MAX_LINE: usize = 1 << 20;

/// One line handed out by [`Lines::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// The line is `chunk[off..off + len]` of the chunk just fed, and its
    /// newline follows it there: `chunk[off + len] == b'\n'`.
    InChunk {
        /// Where it starts in the chunk.
        off: usize,
        /// Its length, without the newline.
        len: usize,
    },
    /// The line (or a piece of an over-long one) in a buffer of its own: it
    /// began in an earlier chunk, or is not followed by its newline.
    Carried(&'a [u8]),
}

/// Splits bytes fed in chunks into lines, with their offsets in the stream.
///
/// A line that has not ended yet is carried over to the next chunk; a line
/// longer than the limit is handed out in pieces of the limit.
#[derive(Debug)]
pub struct Lines {
    carry: Vec<u8>,
    /// Stream offset of the first byte of `carry` (or of the next line).
    carry_start: u64,
    /// Stream offset of the next byte to be fed.
    pos: u64,
    max_line: usize,
    /// Lines that were longer than the limit, ever.
    split: u64,
    /// The line being read has already gone out in part.
    in_long: bool,
}

impl Lines {
    /// A splitter whose next byte is at `offset` in the stream.
    pub fn new(offset: u64) -> Self {
        Self::with_limit(offset, MAX_LINE)
    }

    /// As [`new`](Self::new), with another longest line.
    pub fn with_limit(offset: u64, max_line: usize) -> Self {
        Self {
            carry: Vec::new(),
            carry_start: offset,
            pos: offset,
            max_line: max_line.max(1),
            split: 0,
            in_long: false,
        }
    }

    /// Offset of the next byte to be fed.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Lines longer than the limit seen so far (each was shipped in pieces).
    pub fn split_lines(&self) -> u64 {
        self.split
    }

    /// Feeds the next bytes of the stream; `emit(line, start, end)` gets
    /// each line that ends in them (`end` is past its newline).
    pub fn feed(&mut self, chunk: &[u8], mut emit: impl FnMut(Piece<'_>, u64, u64)) {
        let base = self.pos;
        let mut from = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            let end = base + nl as u64 + 1;
            if self.carry.is_empty() && nl - from <= self.max_line {
                let piece = Piece::InChunk {
                    off: from,
                    len: nl - from,
                };
                emit(piece, base + from as u64, end);
            } else if self.carry.is_empty() {
                self.emit_long(&chunk[from..nl], base + from as u64, end, &mut emit);
            } else {
                self.carry.extend_from_slice(&chunk[from..nl]);
                let line = std::mem::take(&mut self.carry);
                self.emit_long(&line, self.carry_start, end, &mut emit);
                self.carry = line;
                self.carry.clear();
            }
            self.carry_start = end;
            self.in_long = false;
            from = nl + 1;
        }
        self.pos = base + chunk.len() as u64;
        let rest = &chunk[from..];
        if self.carry.is_empty() {
            self.carry_start = base + from as u64;
        }
        self.carry.extend_from_slice(rest);
        // A line with no end in sight goes out in pieces, so memory stays
        // bounded; one exactly at the limit waits, its newline may come next.
        while self.carry.len() > self.max_line {
            let start = self.carry_start;
            let end = start + self.max_line as u64;
            emit(Piece::Carried(&self.carry[..self.max_line]), start, end);
            self.carry.drain(..self.max_line);
            self.carry_start = end;
            self.note_long();
        }
    }

    /// The stream ended: hands out the last line if it had no newline.
    pub fn finish(&mut self, mut emit: impl FnMut(Piece<'_>, u64, u64)) {
        if !self.carry.is_empty() {
            let end = self.carry_start + self.carry.len() as u64;
            emit(Piece::Carried(&self.carry), self.carry_start, end);
            self.carry.clear();
            self.carry_start = end;
        }
        self.in_long = false;
    }

    fn note_long(&mut self) {
        if !self.in_long {
            self.split += 1;
            self.in_long = true;
        }
    }

    fn emit_long(
        &mut self,
        line: &[u8],
        start: u64,
        end: u64,
        emit: &mut impl FnMut(Piece<'_>, u64, u64),
    ) {
        if line.len() <= self.max_line {
            emit(Piece::Carried(line), start, end);
            return;
        }
        self.note_long();
        let mut at = start;
        let mut pieces = line.chunks(self.max_line).peekable();
        while let Some(piece) = pieces.next() {
            let piece_end = if pieces.peek().is_some() {
                at + piece.len() as u64
            } else {
                end
            };
            emit(Piece::Carried(piece), at, piece_end);
            at = piece_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &mut Lines, chunks: &[&[u8]], finish: bool) -> Vec<(String, u64, u64)> {
        let mut got = Vec::new();
        for c in chunks {
            lines.feed(c, |p, s, e| got.push((text(c, p), s, e)));
        }
        if finish {
            lines.finish(|p, s, e| got.push((text(b"", p), s, e)));
        }
        got
    }

    fn text(chunk: &[u8], p: Piece<'_>) -> String {
        let bytes = match p {
            Piece::InChunk { off, len } => {
                assert_eq!(
                    chunk[off + len],
                    b'\n',
                    "a line in the chunk is followed by its newline"
                );
                &chunk[off..off + len]
            }
            Piece::Carried(b) => b,
        };
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn owned(v: &[(&str, u64, u64)]) -> Vec<(String, u64, u64)> {
        v.iter().map(|(l, s, e)| (l.to_string(), *s, *e)).collect()
    }

    #[test]
    fn lines_across_chunks_keep_their_offsets() {
        let mut l = Lines::new(100);
        let got = run(&mut l, &[b"ab\ncd", b"e\n\nf", b"g"], false);
        assert_eq!(
            got,
            owned(&[("ab", 100, 103), ("cde", 103, 107), ("", 107, 108)])
        );
        assert_eq!(l.pos(), 110);
        let got = run(&mut l, &[], true);
        assert_eq!(got, owned(&[("fg", 108, 110)]));
    }

    #[test]
    fn a_line_over_the_limit_goes_out_in_pieces() {
        let mut l = Lines::with_limit(0, 4);
        let got = run(&mut l, &[b"0123456789\nab\n"], false);
        assert_eq!(
            got,
            owned(&[
                ("0123", 0, 4),
                ("4567", 4, 8),
                ("89", 8, 11),
                ("ab", 11, 14)
            ])
        );
        assert_eq!(l.split_lines(), 1);

        let mut l = Lines::with_limit(0, 4);
        let got = run(&mut l, &[b"01", b"2345", b"678", b"\n"], false);
        assert_eq!(got, owned(&[("0123", 0, 4), ("4567", 4, 8), ("8", 8, 10)]));
        assert_eq!(l.split_lines(), 1);
    }

    #[test]
    fn a_line_exactly_at_the_limit_waits_for_its_newline() {
        let mut l = Lines::with_limit(0, 4);
        let got = run(&mut l, &[b"0123", b"\n"], false);
        assert_eq!(got, owned(&[("0123", 0, 5)]));
    }
}
