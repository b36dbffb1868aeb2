//! How items become bytes for the disk spool, and back.

use std::fmt;
use std::sync::Arc;

/// Encodes an item to bytes and decodes it back, so that a buffer with
/// `overflow: spill` can keep it in its disk spool.
///
/// `decode(encode(x))` must give back an item equal to `x`. A record that does
/// not decode (a bug, or another program's data) is counted as dropped,
/// never delivered.
///
/// ```
/// use spillway::{Codec, CodecError};
///
/// struct Line { offset: u64, text: Vec<u8> }
///
/// impl Codec for Line {
///     fn encode(&self, out: &mut Vec<u8>) {
///         out.extend_from_slice(&self.offset.to_le_bytes());
///         out.extend_from_slice(&self.text);
///     }
///     fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
///         let (head, text) = bytes.split_at_checked(8).ok_or(CodecError::new("record shorter than 8 bytes"))?;
///         let offset = u64::from_le_bytes(head.try_into().expect("8 bytes"));
///         Ok(Line { offset, text: text.to_vec() })
///     }
/// }
///
/// let mut buf = Vec::new();
/// Line { offset: 7, text: b"hi".to_vec() }.encode(&mut buf);
/// let back = Line::decode(&buf).unwrap();
/// assert_eq!((back.offset, back.text.as_slice()), (7, &b"hi"[..]));
/// ```
pub trait Codec: Sized {
    /// Appends the item's bytes to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Rebuilds an item from what [`encode`](Self::encode) wrote.
    ///
    /// # Errors
    /// [`CodecError`] when the bytes are not a valid encoding.
    fn decode(bytes: &[u8]) -> Result<Self, CodecError>;
}

/// Bytes that are not a valid encoding of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(String);

impl CodecError {
    /// An error with a message saying what is wrong.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

impl Codec for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(bytes.to_vec())
    }
}

impl Codec for Box<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(bytes.into())
    }
}

impl Codec for Arc<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(bytes.into())
    }
}

impl Codec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        String::from_utf8(bytes.to_vec())
            .map_err(|e| CodecError::new(format!("spooled record is not UTF-8: {e}")))
    }
}

macro_rules! codec_le {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
                let arr = bytes.try_into().map_err(|_| {
                    CodecError::new(format!(
                        "spooled record has {} bytes, expected {}",
                        bytes.len(),
                        core::mem::size_of::<$t>()
                    ))
                })?;
                Ok(<$t>::from_le_bytes(arr))
            }
        }
    )*};
}
codec_le!(u16, u32, u64, u128, i16, i32, i64, i128);

/// How a buffer with `overflow: spill` turns its items into spool records
/// and back: given to [`BufferBuilder::spill`](crate::buffer::BufferBuilder::spill).
///
/// [`SpillCodec::of`] takes a type's [`Codec`] implementation;
/// [`SpillCodec::new`] takes two functions, for a type that cannot
/// implement [`Codec`] (one from another crate).
///
/// ```
/// use spillway::{CodecError, SpillCodec};
/// use std::net::Ipv4Addr;
/// // Ipv4Addr is std's: spillway's Codec cannot be implemented for it here.
/// let codec = SpillCodec::<Ipv4Addr>::new(
///     |ip, out| out.extend_from_slice(&ip.octets()),
///     |b| <[u8; 4]>::try_from(b).map(Ipv4Addr::from).map_err(|_| CodecError::new("not 4 bytes")),
/// );
/// # let _ = codec;
/// ```
pub struct SpillCodec<T> {
    pub(crate) encode: fn(&T, &mut Vec<u8>),
    pub(crate) decode: fn(&[u8]) -> Result<T, CodecError>,
}

impl<T> SpillCodec<T> {
    /// A codec from an encoding and a decoding function;
    /// `decode(encode(x))` must give back an item equal to `x`.
    pub fn new(encode: fn(&T, &mut Vec<u8>), decode: fn(&[u8]) -> Result<T, CodecError>) -> Self {
        Self { encode, decode }
    }
}

impl<T: Codec> SpillCodec<T> {
    /// The codec of a type that implements [`Codec`].
    pub fn of() -> Self {
        Self {
            encode: T::encode,
            decode: T::decode,
        }
    }
}

impl<T> Clone for SpillCodec<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SpillCodec<T> {}

impl<T> fmt::Debug for SpillCodec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpillCodec").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Codec + PartialEq + fmt::Debug>(v: T) {
        let mut buf = Vec::new();
        v.encode(&mut buf);
        assert_eq!(T::decode(&buf).unwrap(), v);
    }

    #[test]
    fn built_in_codecs_round_trip() {
        round_trip(b"bytes".to_vec());
        round_trip(Box::<[u8]>::from(&b""[..]));
        round_trip(Arc::<[u8]>::from(&b"x"[..]));
        round_trip("héllo".to_string());
        round_trip(u64::MAX - 1);
        round_trip(-5i32);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert_eq!(
            u64::decode(b"abc").unwrap_err().to_string(),
            "spooled record has 3 bytes, expected 8"
        );
        assert!(String::decode(&[0xff, 0xfe])
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
    }
}
