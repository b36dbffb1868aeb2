//! What travels through the buffer: one input line with the place it came
//! from, or a marker that the reader moved on to another file.
//!
//! Lines read from a file share the chunk they were read in (no allocation
//! and no copy per line), and the sink writes runs of them straight from
//! it. Every chunk and every record made on its own is charged to the
//! process-wide [`memory`](crate::memory) account while it exists, so the
//! reader can bound what sits in memory whatever became of earlier records
//! (delivered, spilled or dropped).

use std::fmt;
use std::sync::Arc;

use spillway::{Codec, CodecError, Weigh};

use crate::memory;

/// Which file (or stream) a position belongs to.
///
/// `epoch` tells apart the contents a file had before and after it was
/// truncated in place: same device and inode, offsets counted afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device number of the file.
    pub dev: u64,
    /// Inode number of the file.
    pub ino: u64,
    /// How many times this agent saw the file truncated under it.
    pub epoch: u32,
}

impl FileId {
    /// The stand-in for standard input, whose positions count records in the
    /// stdin spool rather than bytes.
    pub const STDIN: FileId = FileId {
        dev: 0,
        ino: 0,
        epoch: 0,
    };
}

/// Where a line was: `[start, end)` in `file`; `end` is just past its newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The file (or stdin).
    pub file: FileId,
    /// Offset of the line's first byte.
    pub start: u64,
    /// Offset just past the line and its newline (if it had one).
    pub end: u64,
}

/// Bytes read from the input in one go, shared by the lines in them.
#[derive(Debug)]
pub struct Chunk {
    bytes: Vec<u8>,
    charge: u64,
}

impl Chunk {
    /// Wraps bytes just read, holding `lines` lines that will share it; the
    /// bytes and those lines' records are charged until the last is dropped.
    pub fn new(bytes: Vec<u8>, lines: usize) -> Arc<Self> {
        let charge = bytes.capacity() as u64 + lines as u64 * RECORD_OVERHEAD;
        memory::charge(charge);
        Arc::new(Self { bytes, charge })
    }
}

impl Chunk {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        memory::release(self.charge);
    }
}

/// A line's bytes.
enum Data {
    /// `chunk.bytes[off..off + len]`, with its newline right after it.
    Shared {
        chunk: Arc<Chunk>,
        off: u32,
        len: u32,
    },
    /// Its own allocation (a line across chunks, from stdin or the spool).
    Owned(Box<[u8]>),
}

/// One item of the buffer.
pub struct Record(Kind);

enum Kind {
    Line { data: Data, at: Span },
    Switch { file: FileId, offset: u64 },
}

/// What a record is, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum View<'a> {
    /// A line, without its newline.
    Line {
        /// The line's bytes.
        data: &'a [u8],
        /// The line and its newline, when they lie together in a shared
        /// chunk: the sink writes neighbouring lines in one piece.
        with_newline: Option<(&'a Arc<Chunk>, usize, usize)>,
        /// Where it was.
        at: Span,
    },
    /// From here on, lines come from `file`, starting at `offset`: the old
    /// file was finished (rotation, truncation) or could not be resumed.
    Switch {
        /// The file the reader moved to.
        file: FileId,
        /// Where it starts reading it.
        offset: u64,
    },
}

/// Memory a record costs beyond its bytes: the record itself and the
/// allocator's bookkeeping of a heap block.
pub const RECORD_OVERHEAD: u64 = std::mem::size_of::<Record>() as u64 + 16;

impl Record {
    /// A line that is `chunk[off..off + len]`, followed there by its newline.
    /// Charged as part of the chunk.
    ///
    /// # Panics
    /// If the line is not inside the chunk or not followed by a newline
    /// (a bug of the caller).
    pub fn shared(chunk: &Arc<Chunk>, off: usize, len: usize, at: Span) -> Self {
        assert_eq!(
            chunk.bytes.get(off + len),
            Some(&b'\n'),
            "line without its newline"
        );
        let (off, len) = (
            u32::try_from(off).expect("chunk offset fits u32"),
            u32::try_from(len).expect("line length fits u32"),
        );
        Record(Kind::Line {
            data: Data::Shared {
                chunk: Arc::clone(chunk),
                off,
                len,
            },
            at,
        })
    }

    /// A line in its own allocation; charged until dropped.
    pub fn owned(data: Box<[u8]>, at: Span) -> Self {
        memory::charge(data.len() as u64 + RECORD_OVERHEAD);
        Record(Kind::Line {
            data: Data::Owned(data),
            at,
        })
    }

    /// A switch marker; charged until dropped.
    pub fn switch(file: FileId, offset: u64) -> Self {
        memory::charge(RECORD_OVERHEAD);
        Record(Kind::Switch { file, offset })
    }

    /// What the record is.
    pub fn view(&self) -> View<'_> {
        match &self.0 {
            Kind::Line { data, at } => match data {
                Data::Shared { chunk, off, len } => {
                    let (off, len) = (*off as usize, *len as usize);
                    View::Line {
                        data: &chunk.bytes[off..off + len],
                        with_newline: Some((chunk, off, off + len + 1)),
                        at: *at,
                    }
                }
                Data::Owned(b) => View::Line {
                    data: b,
                    with_newline: None,
                    at: *at,
                },
            },
            Kind::Switch { file, offset } => View::Switch {
                file: *file,
                offset: *offset,
            },
        }
    }
}

/// The disk form of a record, for the buffer's spill spool.
///
/// Layout, little-endian: tag `u8` (0 line, 1 switch), `dev u64`, `ino u64`,
/// `epoch u32`, then for a line `start u64`, `end u64` and the bytes to the
/// end; for a switch `offset u64`.
impl Codec for Record {
    fn encode(&self, out: &mut Vec<u8>) {
        match self.view() {
            View::Line { data, at, .. } => {
                out.push(TAG_LINE);
                put_file(out, at.file);
                out.extend_from_slice(&at.start.to_le_bytes());
                out.extend_from_slice(&at.end.to_le_bytes());
                out.extend_from_slice(data);
            }
            View::Switch { file, offset } => {
                out.push(TAG_SWITCH);
                put_file(out, file);
                out.extend_from_slice(&offset.to_le_bytes());
            }
        }
    }

    /// A record read back is a line of its own (charged until dropped).
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Self::decode_parts(bytes).map_err(|e| CodecError::new(e.to_string()))
    }
}

impl Record {
    fn decode_parts(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (&tag, rest) = bytes.split_first().ok_or(DecodeError("empty record"))?;
        let (file, rest) = take_file(rest)?;
        match tag {
            TAG_LINE => {
                let (start, rest) = take_u64(rest)?;
                let (end, data) = take_u64(rest)?;
                if end < start {
                    return Err(DecodeError("line span ends before it starts"));
                }
                Ok(Record::owned(data.into(), Span { file, start, end }))
            }
            TAG_SWITCH => {
                let (offset, rest) = take_u64(rest)?;
                if !rest.is_empty() {
                    return Err(DecodeError("trailing bytes after a switch marker"));
                }
                Ok(Record::switch(file, offset))
            }
            _ => Err(DecodeError("unknown record tag")),
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // A shared line is paid for by its chunk.
        match &self.0 {
            Kind::Line {
                data: Data::Owned(b),
                ..
            } => memory::release(b.len() as u64 + RECORD_OVERHEAD),
            Kind::Switch { .. } => memory::release(RECORD_OVERHEAD),
            Kind::Line { .. } => {}
        }
    }
}

impl Weigh for Record {
    /// The bytes the line takes in the output, newline included; a marker
    /// weighs nothing.
    fn weight(&self) -> Option<usize> {
        match &self.0 {
            Kind::Line {
                data: Data::Shared { len, .. },
                ..
            } => Some(*len as usize + 1),
            Kind::Line {
                data: Data::Owned(b),
                ..
            } => Some(b.len() + 1),
            Kind::Switch { .. } => Some(0),
        }
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.view() {
            View::Line { data, at, .. } => f
                .debug_struct("Line")
                .field("data", &String::from_utf8_lossy(data))
                .field("at", &at)
                .finish(),
            View::Switch { file, offset } => f
                .debug_struct("Switch")
                .field("file", &file)
                .field("offset", &offset)
                .finish(),
        }
    }
}

const TAG_LINE: u8 = 0;
const TAG_SWITCH: u8 = 1;

/// A spooled record that cannot be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DecodeError(&'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad spooled record: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

fn put_file(out: &mut Vec<u8>, file: FileId) {
    out.extend_from_slice(&file.dev.to_le_bytes());
    out.extend_from_slice(&file.ino.to_le_bytes());
    out.extend_from_slice(&file.epoch.to_le_bytes());
}

fn take_file(b: &[u8]) -> Result<(FileId, &[u8]), DecodeError> {
    let (dev, b) = take_u64(b)?;
    let (ino, b) = take_u64(b)?;
    let (epoch, b) = take_array::<4>(b)?;
    let epoch = u32::from_le_bytes(epoch);
    Ok((FileId { dev, ino, epoch }, b))
}

fn take_u64(b: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
    let (v, rest) = take_array::<8>(b)?;
    Ok((u64::from_le_bytes(v), rest))
}

fn take_array<const N: usize>(b: &[u8]) -> Result<([u8; N], &[u8]), DecodeError> {
    let (head, rest) = b
        .split_first_chunk::<N>()
        .ok_or(DecodeError("record cut short"))?;
    Ok((*head, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> FileId {
        FileId {
            dev: 0x0102_0304_0506_0708,
            ino: 42,
            epoch: 3,
        }
    }

    #[test]
    fn a_line_and_a_switch_come_back_as_they_were_encoded() {
        let at = Span {
            file: file(),
            start: 10,
            end: 17,
        };
        for rec in [
            Record::owned(b"hello\r".to_vec().into(), at),
            Record::owned(Box::default(), at),
            Record::switch(file(), 99),
        ] {
            let mut out = Vec::new();
            rec.encode(&mut out);
            let back = Record::decode(&out).unwrap();
            assert_eq!(format!("{back:?}"), format!("{rec:?}"));
        }
    }

    #[test]
    fn damaged_bytes_are_an_error_naming_the_problem() {
        let mut out = Vec::new();
        Record::switch(file(), 1).encode(&mut out);
        let cases: [(&[u8], &str); 4] = [
            (&[], "empty record"),
            (&out[..out.len() - 1], "record cut short"),
            (
                &[&out[..], b"x"].concat(),
                "trailing bytes after a switch marker",
            ),
            (&[&[7u8][..], &out[1..]].concat(), "unknown record tag"),
        ];
        for (bytes, why) in cases {
            let err = Record::decode(bytes).unwrap_err();
            assert_eq!(err.to_string(), format!("bad spooled record: {why}"));
        }
        let mut line = Vec::new();
        let at = Span {
            file: file(),
            start: 9,
            end: 3,
        };
        Record::owned(Box::default(), at).encode(&mut line);
        assert_eq!(
            Record::decode(&line).unwrap_err().to_string(),
            "bad spooled record: line span ends before it starts"
        );
    }

    #[test]
    fn lines_of_a_chunk_share_it_and_see_their_newline() {
        let chunk = Chunk::new(b"ab\ncd\n".to_vec(), 2);
        let at = Span {
            file: FileId::STDIN,
            start: 3,
            end: 6,
        };
        let rec = Record::shared(&chunk, 3, 2, at);
        match rec.view() {
            View::Line {
                data,
                with_newline: Some((c, from, to)),
                ..
            } => {
                assert_eq!(data, b"cd");
                assert!(Arc::ptr_eq(c, &chunk));
                assert_eq!(&chunk.bytes[from..to], b"cd\n");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(rec.weight(), Some(3));
        let mut out = Vec::new();
        rec.encode(&mut out);
        assert_eq!(
            format!("{:?}", Record::decode(&out).unwrap()),
            format!("{rec:?}")
        );
    }

    #[test]
    fn a_line_weighs_its_output_bytes_and_a_marker_nothing() {
        let at = Span {
            file: FileId::STDIN,
            start: 0,
            end: 1,
        };
        assert_eq!(Record::owned(b"abc".to_vec().into(), at).weight(), Some(4));
        assert_eq!(Record::switch(FileId::STDIN, 0).weight(), Some(0));
    }
}
