//! Arweave's deep-hash: the SHA-384 digest of a tree of byte strings that
//! Arweave 2.0 transactions and ANS-104 data items sign (arweave-js
//! `src/common/lib/deepHash.ts`, and arbundles' copy with a streamed blob).
//!
//! - A blob `b` hashes to `SHA384(SHA384("blob" ‖ len(b)) ‖ SHA384(b))`, the
//!   length written in ASCII decimal.
//! - A list of `n` items starts from `acc = SHA384("list" ‖ n)` (n in ASCII
//!   decimal) and folds each item in order: `acc = SHA384(acc ‖ deep_hash(item))`.
//!
//! [`deep_hash`] hashes a tree held in memory; [`BlobHasher`] hashes one large blob
//! whose bytes arrive in chunks (the data of a data item is never held whole), and
//! [`ListHasher`] folds a list item by item so its last item can be such a blob.
//!
//! Bounds: a hasher holds a few SHA-384 states (a few hundred bytes) whatever the
//! size of what it hashes. Trees given to [`deep_hash`] are built by our own code,
//! never parsed from input, so their depth is that of the code that builds them.

use sha2::{Digest, Sha384};

/// Bytes of a deep-hash (SHA-384).
pub const DEEP_HASH_BYTES: usize = 48;

/// A deep-hash digest.
pub type DeepHash = [u8; DEEP_HASH_BYTES];

/// A node of the tree a deep-hash is taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeepHashItem<'a> {
    /// A byte string (strings are given as their UTF-8 bytes).
    Blob(&'a [u8]),
    /// An ordered list of nodes.
    List(Vec<DeepHashItem<'a>>),
}

/// Why an incremental deep-hash could not be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeepHashError {
    #[error("a blob declared as {declared} bytes delivered {delivered}")]
    BlobLength { declared: u64, delivered: u64 },
    #[error("a list declared with {declared} items was given {given}")]
    ListLength { declared: u64, given: u64 },
}

/// The deep-hash of `item`.
pub fn deep_hash(item: &DeepHashItem<'_>) -> DeepHash {
    match item {
        DeepHashItem::Blob(bytes) => {
            let mut blob = BlobHasher::new(bytes.len() as u64);
            blob.update(bytes);
            blob.finish_delivered()
        }
        DeepHashItem::List(items) => {
            let mut list = ListHasher::new(items.len() as u64);
            for child in items {
                list.push_hash(&deep_hash(child));
            }
            list.finish_unchecked()
        }
    }
}

/// `SHA384(prefix ‖ decimal(n))`: the tag that opens a blob or a list.
fn tag_hash(prefix: &[u8], n: u64) -> DeepHash {
    let mut tag = Sha384::new();
    tag.update(prefix);
    tag.update(n.to_string().as_bytes());
    tag.finalize().into()
}

/// The deep-hash of one blob whose bytes are fed in chunks. Its length is
/// declared up front (the caller writes it into a header before the bytes) and
/// checked when finished.
#[derive(Clone)]
pub struct BlobHasher {
    declared: u64,
    delivered: u64,
    data: Sha384,
}

impl BlobHasher {
    /// A hasher for a blob of `declared_len` bytes.
    pub fn new(declared_len: u64) -> Self {
        BlobHasher {
            declared: declared_len,
            delivered: 0,
            data: Sha384::new(),
        }
    }

    /// Feed the next bytes of the blob.
    pub fn update(&mut self, chunk: &[u8]) {
        self.delivered = self.delivered.saturating_add(chunk.len() as u64);
        self.data.update(chunk);
    }

    /// Bytes fed so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The blob's deep-hash; an error when the bytes fed differ from the length declared.
    pub fn finish(self) -> Result<DeepHash, DeepHashError> {
        if self.delivered != self.declared {
            return Err(DeepHashError::BlobLength {
                declared: self.declared,
                delivered: self.delivered,
            });
        }
        Ok(self.finish_delivered())
    }

    /// The deep-hash of the bytes fed, whatever length was declared (the tag is
    /// the delivered length, as arbundles' streamed blob): for a verifier that
    /// learns the length only at the end.
    pub fn finish_delivered(self) -> DeepHash {
        let mut tagged = Sha384::new();
        tagged.update(tag_hash(b"blob", self.delivered));
        tagged.update(self.data.finalize());
        tagged.finalize().into()
    }
}

/// The deep-hash of a list folded one item at a time, so that an item (typically
/// the last, a data item's data) can be a [`BlobHasher`] fed from a stream.
#[derive(Clone)]
pub struct ListHasher {
    declared: u64,
    given: u64,
    acc: DeepHash,
}

impl ListHasher {
    /// A hasher for a list of `count` items.
    pub fn new(count: u64) -> Self {
        ListHasher {
            declared: count,
            given: 0,
            acc: tag_hash(b"list", count),
        }
    }

    /// Fold in the next item, given as its deep-hash.
    pub fn push_hash(&mut self, item_hash: &DeepHash) {
        let mut pair = Sha384::new();
        pair.update(self.acc);
        pair.update(item_hash);
        self.acc = pair.finalize().into();
        self.given = self.given.saturating_add(1);
    }

    /// Fold in the next item.
    pub fn push(&mut self, item: &DeepHashItem<'_>) {
        self.push_hash(&deep_hash(item));
    }

    /// The list's deep-hash; an error when the items given differ from the count declared.
    pub fn finish(self) -> Result<DeepHash, DeepHashError> {
        if self.given != self.declared {
            return Err(DeepHashError::ListLength {
                declared: self.declared,
                given: self.given,
            });
        }
        Ok(self.acc)
    }

    fn finish_unchecked(self) -> DeepHash {
        self.acc
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_vectors::{self, big_blob};
    use super::*;
    use DeepHashItem::{Blob, List};

    fn hex_of(h: &DeepHash) -> String {
        hex::encode(h)
    }

    #[test]
    fn deep_hash_matches_arweave_js_and_arbundles() {
        let v = &test_vectors::DEEP_HASHES;
        assert_eq!(hex_of(&deep_hash(&Blob(b""))), v.empty_blob);
        assert_eq!(hex_of(&deep_hash(&Blob(b"hello"))), v.hello_blob);
        assert_eq!(hex_of(&deep_hash(&List(vec![]))), v.empty_list);
        let nested = List(vec![
            Blob(b"a"),
            List(vec![Blob(b"b"), Blob(b"")]),
            List(vec![]),
            Blob(b"dataitem"),
        ]);
        assert_eq!(hex_of(&deep_hash(&nested)), v.nested);
        let big = big_blob();
        assert_eq!(hex_of(&deep_hash(&Blob(&big))), v.big_blob_100000);
    }

    #[test]
    fn deep_hash_streamed_blob_equals_whole_blob_for_any_chunking() {
        let big = big_blob();
        for chunk in [1usize, 7, 4096, 65536, big.len()] {
            let mut blob = BlobHasher::new(big.len() as u64);
            for part in big.chunks(chunk) {
                blob.update(part);
            }
            assert_eq!(blob.delivered(), big.len() as u64);
            let h = blob.finish().expect("declared length delivered");
            assert_eq!(hex_of(&h), test_vectors::DEEP_HASHES.big_blob_100000);
        }
    }

    #[test]
    fn deep_hash_list_hasher_equals_tree() {
        let tree = List(vec![Blob(b"x"), List(vec![Blob(b"y")]), Blob(b"zz")]);
        let mut list = ListHasher::new(3);
        list.push(&Blob(b"x"));
        list.push(&List(vec![Blob(b"y")]));
        let mut last = BlobHasher::new(2);
        last.update(b"z");
        last.update(b"z");
        list.push_hash(&last.finish().expect("2 bytes"));
        assert_eq!(list.finish(), Ok(deep_hash(&tree)));
    }

    #[test]
    fn deep_hash_length_mismatches_are_errors() {
        let mut blob = BlobHasher::new(3);
        blob.update(b"ab");
        assert_eq!(
            blob.finish(),
            Err(DeepHashError::BlobLength {
                declared: 3,
                delivered: 2
            })
        );
        let mut list = ListHasher::new(2);
        list.push(&Blob(b""));
        assert_eq!(
            list.finish(),
            Err(DeepHashError::ListLength {
                declared: 2,
                given: 1
            })
        );
    }
}
