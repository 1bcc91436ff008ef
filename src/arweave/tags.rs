//! ANS-104 tags: the Apache Avro binary encoding of an array of
//! `{name: bytes, value: bytes}` records that a data item carries (ANS-104
//! §1.3.1), and its decoding.
//!
//! Encoding, as arbundles writes it: no tags is *zero bytes* (not an empty Avro
//! array); otherwise one block — the count as a zigzag varint, each tag as its
//! name and value (each a zigzag varint length then the bytes) — and a 0
//! terminator. Decoding accepts any block structure Avro allows (negative counts
//! followed by a byte size, several blocks) and refuses trailing bytes.
//!
//! Bounds (ANS-104 §2.1 and arbundles): at most [`MAX_TAGS`] tags, names of at
//! most [`MAX_TAG_NAME_BYTES`], values of at most [`MAX_TAG_VALUE_BYTES`], and the
//! encoding at most [`MAX_TAG_BYTES`] in all; decoding checks them before it
//! allocates. Empty names or values are refused when encoding (the spec calls
//! them invalid) but accepted when decoding, as arbundles and deployed items do.

use std::fmt;

/// Bound: tags on one data item (ANS-104 §2.1).
pub const MAX_TAGS: usize = 128;

/// Bound: bytes of one tag name (ANS-104 §2.1).
pub const MAX_TAG_NAME_BYTES: usize = 1024;

/// Bound: bytes of one tag value (ANS-104 §2.1).
pub const MAX_TAG_VALUE_BYTES: usize = 3072;

/// Bound: bytes of a data item's encoded tags: arbundles' `MAX_TAG_BYTES`
/// (its encoder throws past it and its verifier refuses more).
pub const MAX_TAG_BYTES: usize = 4096;

/// Bytes of a zigzag varint of a 64-bit integer, at most.
const MAX_VARINT_BYTES: usize = 10;

/// One tag. Names and values are bytes; in practice UTF-8 text.
#[derive(Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl Tag {
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Tag {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}={:?}",
            String::from_utf8_lossy(&self.name),
            String::from_utf8_lossy(&self.value)
        )
    }
}

/// Why tags could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("more than {MAX_TAGS} tags")]
    TooMany,
    #[error("tag {0} has a name longer than {MAX_TAG_NAME_BYTES} bytes")]
    NameTooLong(usize),
    #[error("tag {0} has a value longer than {MAX_TAG_VALUE_BYTES} bytes")]
    ValueTooLong(usize),
    #[error("tag {0} has an empty name")]
    EmptyName(usize),
    #[error("tag {0} has an empty value")]
    EmptyValue(usize),
    #[error("encoded tags are longer than {MAX_TAG_BYTES} bytes")]
    TooLong,
    #[error("encoded tags end early")]
    Truncated,
    #[error("encoded tags have a malformed or negative length")]
    BadLength,
    #[error("encoded tags have bytes after the end of the array")]
    Trailing,
    #[error("an Avro block's byte size does not match its items")]
    BlockSize,
}

/// The zigzag varint of `n` (non-negative here) appended to `out`.
fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Encode `tags` as a data item carries them. No tags encode to no bytes.
pub fn encode_tags(tags: &[Tag]) -> Result<Vec<u8>, TagError> {
    if tags.is_empty() {
        return Ok(Vec::new());
    }
    if tags.len() > MAX_TAGS {
        return Err(TagError::TooMany);
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.name.is_empty() {
            return Err(TagError::EmptyName(i));
        }
        if tag.value.is_empty() {
            return Err(TagError::EmptyValue(i));
        }
        if tag.name.len() > MAX_TAG_NAME_BYTES {
            return Err(TagError::NameTooLong(i));
        }
        if tag.value.len() > MAX_TAG_VALUE_BYTES {
            return Err(TagError::ValueTooLong(i));
        }
    }
    let mut out = Vec::new();
    write_long(&mut out, tags.len() as i64);
    for tag in tags {
        write_long(&mut out, tag.name.len() as i64);
        out.extend_from_slice(&tag.name);
        write_long(&mut out, tag.value.len() as i64);
        out.extend_from_slice(&tag.value);
        if out.len() > MAX_TAG_BYTES {
            return Err(TagError::TooLong);
        }
    }
    write_long(&mut out, 0);
    if out.len() > MAX_TAG_BYTES {
        return Err(TagError::TooLong);
    }
    Ok(out)
}

/// A cursor over encoded tags.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn read_long(&mut self) -> Result<i64, TagError> {
        let mut z: u64 = 0;
        for i in 0..MAX_VARINT_BYTES {
            let byte = *self.bytes.get(self.pos).ok_or(TagError::Truncated)?;
            self.pos += 1;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may carry only the top bit of a 64-bit value.
            if i == MAX_VARINT_BYTES - 1 && bits > 1 {
                return Err(TagError::BadLength);
            }
            z |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(TagError::BadLength)
    }

    /// A length that must be non-negative and at most `max`, else `err`.
    fn read_len(&mut self, max: usize, err: TagError) -> Result<usize, TagError> {
        let n = self.read_long()?;
        let n = usize::try_from(n).map_err(|_| TagError::BadLength)?;
        if n > max {
            return Err(err);
        }
        Ok(n)
    }

    fn read_bytes(&mut self, len: usize) -> Result<&'a [u8], TagError> {
        let end = self.pos.checked_add(len).ok_or(TagError::Truncated)?;
        let bytes = self.bytes.get(self.pos..end).ok_or(TagError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }
}

/// Decode a data item's tag bytes. No bytes decode to no tags.
pub fn decode_tags(bytes: &[u8]) -> Result<Vec<Tag>, TagError> {
    if bytes.len() > MAX_TAG_BYTES {
        return Err(TagError::TooLong);
    }
    let mut tags = Vec::new();
    if bytes.is_empty() {
        return Ok(tags);
    }
    let mut r = Reader { bytes, pos: 0 };
    loop {
        let count = r.read_long()?;
        if count == 0 {
            break;
        }
        // A negative count is followed by the block's size in bytes.
        let block_size = if count < 0 {
            let size = r.read_long()?;
            Some(usize::try_from(size).map_err(|_| TagError::BadLength)?)
        } else {
            None
        };
        let count = usize::try_from(count.unsigned_abs()).map_err(|_| TagError::TooMany)?;
        if count > MAX_TAGS - tags.len() {
            return Err(TagError::TooMany);
        }
        let block_start = r.pos;
        for _ in 0..count {
            let i = tags.len();
            let name_len = r.read_len(MAX_TAG_NAME_BYTES, TagError::NameTooLong(i))?;
            let name = r.read_bytes(name_len)?;
            let value_len = r.read_len(MAX_TAG_VALUE_BYTES, TagError::ValueTooLong(i))?;
            let value = r.read_bytes(value_len)?;
            tags.push(Tag::new(name, value));
        }
        if block_size.is_some_and(|size| size != r.pos - block_start) {
            return Err(TagError::BlockSize);
        }
    }
    if r.pos != bytes.len() {
        return Err(TagError::Trailing);
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::super::test_vectors;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn arweave_tags_encode_as_arbundles() {
        let tags = test_vectors::full_item_tags();
        let encoded = encode_tags(&tags).expect("valid tags");
        assert_eq!(hex::encode(&encoded), test_vectors::FULL_ITEM.tag_bytes_hex);
        assert_eq!(decode_tags(&encoded), Ok(tags));
    }

    #[test]
    fn arweave_tags_none_encode_to_no_bytes_and_decode_either_way() {
        assert_eq!(encode_tags(&[]), Ok(Vec::new()));
        assert_eq!(decode_tags(&[]), Ok(Vec::new()));
        // An empty Avro array (just the terminator) is no tags too.
        assert_eq!(decode_tags(&[0]), Ok(Vec::new()));
    }

    #[test]
    fn arweave_tags_decode_negative_count_blocks_and_several_blocks() {
        // Block of -1 item (zigzag 1), size 4, "a"="b"; then a block of 1: "c"="d"; then 0.
        let bytes = [1, 8, 2, b'a', 2, b'b', 2, 2, b'c', 2, b'd', 0];
        assert_eq!(
            decode_tags(&bytes),
            Ok(vec![Tag::new("a", "b"), Tag::new("c", "d")])
        );
        let wrong_size = [1, 10, 2, b'a', 2, b'b', 0];
        assert_eq!(decode_tags(&wrong_size), Err(TagError::BlockSize));
    }

    #[test]
    fn arweave_tags_bounds_are_errors() {
        let too_many: Vec<Tag> = (0..=MAX_TAGS)
            .map(|i| Tag::new(format!("n{i}"), "v"))
            .collect();
        assert_eq!(encode_tags(&too_many), Err(TagError::TooMany));
        let long_name = [Tag::new(vec![b'n'; MAX_TAG_NAME_BYTES + 1], "v")];
        assert_eq!(encode_tags(&long_name), Err(TagError::NameTooLong(0)));
        let long_value = [Tag::new("n", vec![b'v'; MAX_TAG_VALUE_BYTES + 1])];
        assert_eq!(encode_tags(&long_value), Err(TagError::ValueTooLong(0)));
        let empty = [Tag::new("a", "b"), Tag::new("", "v")];
        assert_eq!(encode_tags(&empty), Err(TagError::EmptyName(1)));
        let empty = [Tag::new("n", "")];
        assert_eq!(encode_tags(&empty), Err(TagError::EmptyValue(0)));
        let too_long = [
            Tag::new("a", vec![b'v'; MAX_TAG_VALUE_BYTES]),
            Tag::new("b", vec![b'v'; MAX_TAG_VALUE_BYTES]),
        ];
        assert_eq!(encode_tags(&too_long), Err(TagError::TooLong));

        assert_eq!(
            decode_tags(&vec![0; MAX_TAG_BYTES + 1]),
            Err(TagError::TooLong)
        );
        // 129 tags claimed in one block.
        let mut claim = Vec::new();
        write_long(&mut claim, (MAX_TAGS + 1) as i64);
        assert_eq!(decode_tags(&claim), Err(TagError::TooMany));
        // A name length past the bound, refused before reading it.
        let mut long = Vec::new();
        write_long(&mut long, 1);
        write_long(&mut long, (MAX_TAG_NAME_BYTES + 1) as i64);
        assert_eq!(decode_tags(&long), Err(TagError::NameTooLong(0)));
        // Negative string length.
        assert_eq!(decode_tags(&[2, 1]), Err(TagError::BadLength));
        // Truncated, trailing, overlong varint.
        assert_eq!(decode_tags(&[2, 2, b'a']), Err(TagError::Truncated));
        assert_eq!(decode_tags(&[0, 0]), Err(TagError::Trailing));
        assert_eq!(decode_tags(&[0xff; 11]), Err(TagError::BadLength));
    }

    proptest! {
        #[test]
        fn arweave_tags_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_tags(&bytes);
        }

        #[test]
        fn arweave_tags_round_trip(
            pairs in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 1..40), proptest::collection::vec(any::<u8>(), 1..200)),
                0..12,
            )
        ) {
            let tags: Vec<Tag> = pairs.into_iter().map(|(n, v)| Tag::new(n, v)).collect();
            let encoded = encode_tags(&tags).expect("within bounds");
            prop_assert_eq!(decode_tags(&encoded), Ok(tags));
        }
    }
}
