//! ANS-104 data items with signature type 1 (Arweave: RSA-PSS with SHA-256 by a
//! 4096-bit wallet key): build and sign them, serialise their header, parse a
//! header and verify an item, with the data streamed through in chunks.
//!
//! Layout (ANS-104 §1.3; integers little-endian):
//! `signature type (2) | signature (512) | owner (512) | target flag (1) [+ 32] |
//! anchor flag (1) [+ 32] | tag count (8) | tag bytes length (8) | tag bytes | data`.
//! The data runs to the end of the item; its length is in no header.
//!
//! The signed message is the deep-hash of
//! `["dataitem", "1", "1", owner, target, anchor, tag bytes, data]` (the strings
//! as UTF-8; the third is the signature type; an absent target or anchor is an
//! empty blob; the tags as their raw encoding). That is what arbundles signs and
//! verifies (`ar-data-base.ts`, and its stream parser); ANS-104 §2 lists a
//! different structure (no signature type, tags as nested lists) that arbundles
//! does not use. The id is base64url(SHA-256(signature)).
//!
//! Signing uses a PSS salt of [`PSS_SALT_BYTES`], as WebCrypto signers do; Node's
//! verifier (automatic salt length) and arweave-js's WebCrypto one (tries 0, 32
//! and the maximum) both accept it. Verification here detects the salt length,
//! since Node signers (arbundles' `ArweaveSigner` on Node) use the maximum, 478.
//!
//! Bounds: a header is at most [`MAX_HEADER_BYTES`] (tag bytes at most
//! [`MAX_TAG_BYTES`]); [`parse_header`] refuses larger tag sections before looking
//! at them. Data is never held: signing and verifying keep only SHA-384 states.
//!
//! Not here: HTTP (posting items to a bundler), bundles of several items.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pss::{Signature, VerifyingKey};
use rsa::sha2::Sha256 as PssSha256;
use rsa::signature::Verifier as _;
use rsa::Pss;
use sha2::{Digest, Sha256};

use super::deephash::{BlobHasher, DeepHash, DeepHashError, DeepHashItem, ListHasher};
use super::jwk::{address_of, public_key_of, ArweaveWallet, JwkError, OWNER_BYTES};
use super::tags::{decode_tags, encode_tags, Tag, TagError, MAX_TAGS, MAX_TAG_BYTES};

/// The signature type of Arweave keys (RSA-PSS, SHA-256, 4096-bit).
pub const SIGNATURE_TYPE_ARWEAVE: u16 = 1;

/// Bytes of an Arweave signature.
pub const SIGNATURE_BYTES: usize = 512;

/// Bytes of a target (an Arweave address, raw).
pub const TARGET_BYTES: usize = 32;

/// Bytes of an anchor.
pub const ANCHOR_BYTES: usize = 32;

/// PSS salt length used when signing: the SHA-256 output size.
pub const PSS_SALT_BYTES: usize = 32;

/// Bytes of the signature type field.
const SIGNATURE_TYPE_BYTES: usize = 2;

/// Bytes of the tag count and of the tag bytes length fields.
const COUNT_BYTES: usize = 8;

/// Offset of the target presence byte: after type, signature and owner.
const TARGET_FLAG_OFFSET: usize = SIGNATURE_TYPE_BYTES + SIGNATURE_BYTES + OWNER_BYTES;

/// Bytes of the smallest header: no target, no anchor, no tags.
pub const MIN_HEADER_BYTES: usize = TARGET_FLAG_OFFSET + 1 + 1 + 2 * COUNT_BYTES;

/// Bound: bytes of the largest header a data item may have (target, anchor and
/// [`MAX_TAG_BYTES`] of tags). Reading this many bytes of an item is always
/// enough for [`parse_header`].
pub const MAX_HEADER_BYTES: usize = MIN_HEADER_BYTES + TARGET_BYTES + ANCHOR_BYTES + MAX_TAG_BYTES;

/// The strings that open the signed list.
const DATAITEM_TAG: &[u8] = b"dataitem";
const FORMAT_VERSION: &[u8] = b"1";
const SIGNATURE_TYPE_TEXT: &[u8] = b"1";

/// Items in the signed list.
const SIGNED_LIST_ITEMS: u64 = 8;

/// Why an item could not be signed or its header parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DataItemError {
    #[error("data item header ends early: {needed} bytes needed")]
    Truncated { needed: usize },
    #[error("signature type {0} is not supported (only 1, Arweave)")]
    SignatureType(u16),
    #[error("{field} presence byte is {value}, not 0 or 1")]
    PresenceByte { field: &'static str, value: u8 },
    #[error("tag section of {0} bytes is longer than {MAX_TAG_BYTES}")]
    TagBytesTooLong(u64),
    #[error("header declares {declared} tags, its tag bytes hold {decoded}")]
    TagCount { declared: u64, decoded: usize },
    #[error("tags: {0}")]
    Tags(#[from] TagError),
    #[error("key: {0}")]
    Key(#[from] JwkError),
    #[error("data: {0}")]
    Data(#[from] DeepHashError),
    #[error("RSA-PSS signing failed")]
    Signing,
}

/// Everything of a signed data item but its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataItemHeader {
    signature: Box<[u8]>,
    owner: Box<[u8]>,
    target: Option<[u8; TARGET_BYTES]>,
    anchor: Option<[u8; ANCHOR_BYTES]>,
    tags: Vec<Tag>,
    tag_bytes: Vec<u8>,
}

impl DataItemHeader {
    /// Always [`SIGNATURE_TYPE_ARWEAVE`]: the only type built or parsed here.
    pub fn signature_type(&self) -> u16 {
        SIGNATURE_TYPE_ARWEAVE
    }

    /// The signature, [`SIGNATURE_BYTES`].
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The owner (the signer's RSA modulus), [`OWNER_BYTES`].
    pub fn owner(&self) -> &[u8] {
        &self.owner
    }

    /// The owner's Arweave address.
    pub fn owner_address(&self) -> String {
        address_of(&self.owner)
    }

    pub fn target(&self) -> Option<&[u8; TARGET_BYTES]> {
        self.target.as_ref()
    }

    pub fn anchor(&self) -> Option<&[u8; ANCHOR_BYTES]> {
        self.anchor.as_ref()
    }

    /// The tags, decoded.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// The tags as encoded in the item (and signed).
    pub fn tag_bytes(&self) -> &[u8] {
        &self.tag_bytes
    }

    /// SHA-256 of the signature: the id, raw.
    pub fn raw_id(&self) -> [u8; 32] {
        Sha256::digest(&self.signature).into()
    }

    /// The id: base64url(SHA-256(signature)), 43 characters.
    pub fn id(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.raw_id())
    }

    /// Bytes of the serialised header; the data starts at this offset.
    pub fn encoded_len(&self) -> usize {
        MIN_HEADER_BYTES
            + self.target.map_or(0, |_| TARGET_BYTES)
            + self.anchor.map_or(0, |_| ANCHOR_BYTES)
            + self.tag_bytes.len()
    }

    /// The serialised header: write it, then the data, to have the item.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&SIGNATURE_TYPE_ARWEAVE.to_le_bytes());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.owner);
        for field in [&self.target, &self.anchor] {
            match field {
                Some(bytes) => {
                    out.push(1);
                    out.extend_from_slice(bytes);
                }
                None => out.push(0),
            }
        }
        out.extend_from_slice(&(self.tags.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.tag_bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.tag_bytes);
        out
    }

    /// Start verifying this item: feed its data to the verifier, then finish.
    pub fn verifier(&self) -> ItemVerifier<'_> {
        ItemVerifier {
            header: self,
            digest: ItemDigest::start(&self.owner, self.target, self.anchor, &self.tag_bytes, 0),
        }
    }

    /// The deep-hash this item's signature signs, given its data.
    pub fn message<'a>(
        &self,
        data_chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<DeepHash, DataItemError> {
        let mut digest =
            ItemDigest::start(&self.owner, self.target, self.anchor, &self.tag_bytes, 0);
        for chunk in data_chunks {
            digest.update(chunk);
        }
        Ok(digest.finish_delivered()?)
    }
}

/// The deep-hash of the signed list, its last item (the data) streamed.
struct ItemDigest {
    list: ListHasher,
    data: BlobHasher,
}

impl ItemDigest {
    fn start(
        owner: &[u8],
        target: Option<[u8; TARGET_BYTES]>,
        anchor: Option<[u8; ANCHOR_BYTES]>,
        tag_bytes: &[u8],
        data_len: u64,
    ) -> Self {
        let mut list = ListHasher::new(SIGNED_LIST_ITEMS);
        let target = target.as_ref().map_or(&[][..], |t| &t[..]);
        let anchor = anchor.as_ref().map_or(&[][..], |a| &a[..]);
        for blob in [
            DATAITEM_TAG,
            FORMAT_VERSION,
            SIGNATURE_TYPE_TEXT,
            owner,
            target,
            anchor,
            tag_bytes,
        ] {
            list.push(&DeepHashItem::Blob(blob));
        }
        ItemDigest {
            list,
            data: BlobHasher::new(data_len),
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        self.data.update(chunk);
    }

    /// The message, checking the data length declared at the start.
    fn finish(mut self) -> Result<DeepHash, DeepHashError> {
        self.list.push_hash(&self.data.finish()?);
        self.list.finish()
    }

    /// The message over the data delivered, whatever its length.
    fn finish_delivered(mut self) -> Result<DeepHash, DeepHashError> {
        self.list.push_hash(&self.data.finish_delivered());
        self.list.finish()
    }
}

/// A data item being signed: its fields fixed, its data fed in chunks. Finish it
/// for the header; the item is that header followed by the same data.
pub struct ItemSigner<'w> {
    wallet: &'w ArweaveWallet,
    target: Option<[u8; TARGET_BYTES]>,
    anchor: Option<[u8; ANCHOR_BYTES]>,
    tags: Vec<Tag>,
    tag_bytes: Vec<u8>,
    data_len: u64,
    digest: ItemDigest,
}

impl<'w> ItemSigner<'w> {
    /// Start an item by `wallet` with these fields and `data_len` bytes of data.
    pub fn new(
        wallet: &'w ArweaveWallet,
        target: Option<[u8; TARGET_BYTES]>,
        anchor: Option<[u8; ANCHOR_BYTES]>,
        tags: Vec<Tag>,
        data_len: u64,
    ) -> Result<Self, DataItemError> {
        let tag_bytes = encode_tags(&tags)?;
        let digest = ItemDigest::start(wallet.owner(), target, anchor, &tag_bytes, data_len);
        Ok(ItemSigner {
            wallet,
            target,
            anchor,
            tags,
            tag_bytes,
            data_len,
            digest,
        })
    }

    /// Feed the next bytes of the data.
    pub fn update(&mut self, chunk: &[u8]) {
        self.digest.update(chunk);
    }

    /// Sign; an error when the data fed was not `data_len` bytes.
    pub fn finish(self) -> Result<SignedHeader, DataItemError> {
        let wallet = self.wallet;
        self.prepare()?.sign(wallet)
    }

    /// The hashed item, not yet signed: the data is done with, and the RSA
    /// signature (milliseconds of CPU) can be made elsewhere with
    /// [`UnsignedItem::sign`] by the same wallet. An error when the data fed
    /// was not `data_len` bytes.
    pub fn prepare(self) -> Result<UnsignedItem, DataItemError> {
        let message = self.digest.finish()?;
        Ok(UnsignedItem {
            message: message.to_vec(),
            owner: self.wallet.owner().into(),
            target: self.target,
            anchor: self.anchor,
            tags: self.tags,
            tag_bytes: self.tag_bytes,
            data_len: self.data_len,
        })
    }
}

/// A data item whose deep-hash is computed, waiting for its signature.
#[derive(Debug, Clone)]
pub struct UnsignedItem {
    message: Vec<u8>,
    owner: Box<[u8]>,
    target: Option<[u8; TARGET_BYTES]>,
    anchor: Option<[u8; ANCHOR_BYTES]>,
    tags: Vec<Tag>,
    tag_bytes: Vec<u8>,
    data_len: u64,
}

impl UnsignedItem {
    /// Sign with `wallet`, which must be the wallet the item was started with.
    pub fn sign(self, wallet: &ArweaveWallet) -> Result<SignedHeader, DataItemError> {
        if *self.owner != *wallet.owner() {
            return Err(DataItemError::Signing);
        }
        let signature = wallet
            .private_key()
            .sign(Pss::<PssSha256>::new_with_salt(PSS_SALT_BYTES), &Sha256::digest(&self.message))
            .map_err(|_| DataItemError::Signing)?;
        if signature.len() != SIGNATURE_BYTES {
            return Err(DataItemError::Signing);
        }
        Ok(SignedHeader {
            header: DataItemHeader {
                signature: signature.into_boxed_slice(),
                owner: self.owner,
                target: self.target,
                anchor: self.anchor,
                tags: self.tags,
                tag_bytes: self.tag_bytes,
            },
            data_len: self.data_len,
        })
    }
}

/// A signed header and the length of the data it was signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeader {
    pub header: DataItemHeader,
    pub data_len: u64,
}

impl SignedHeader {
    /// The item's id.
    pub fn id(&self) -> String {
        self.header.id()
    }

    /// Bytes of the whole item: header and data.
    pub fn item_len(&self) -> u64 {
        (self.header.encoded_len() as u64).saturating_add(self.data_len)
    }
}

/// Sign an item whose `data_len` bytes of data arrive as `data_chunks`; the
/// caller then writes `header.to_bytes()` followed by the same data.
pub fn sign_streaming<'a>(
    wallet: &ArweaveWallet,
    target: Option<[u8; TARGET_BYTES]>,
    anchor: Option<[u8; ANCHOR_BYTES]>,
    tags: Vec<Tag>,
    data_len: u64,
    data_chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<SignedHeader, DataItemError> {
    let mut signer = ItemSigner::new(wallet, target, anchor, tags, data_len)?;
    for chunk in data_chunks {
        signer.update(chunk);
    }
    signer.finish()
}

/// Sign a small item held in memory and return its bytes.
pub fn sign(
    wallet: &ArweaveWallet,
    target: Option<[u8; TARGET_BYTES]>,
    anchor: Option<[u8; ANCHOR_BYTES]>,
    tags: Vec<Tag>,
    data: &[u8],
) -> Result<Vec<u8>, DataItemError> {
    let signed = sign_streaming(wallet, target, anchor, tags, data.len() as u64, [data])?;
    let mut item = signed.header.to_bytes();
    item.extend_from_slice(data);
    Ok(item)
}

/// A data item being verified: feed its data, then finish.
pub struct ItemVerifier<'h> {
    header: &'h DataItemHeader,
    digest: ItemDigest,
}

impl ItemVerifier<'_> {
    /// Feed the next bytes of the data.
    pub fn update(&mut self, chunk: &[u8]) {
        self.digest.update(chunk);
    }

    /// Whether the signature is the owner's over the header and the data fed.
    pub fn finish(self) -> bool {
        match self.digest.finish_delivered() {
            Ok(message) => verify_message(self.header, &message),
            Err(_) => false,
        }
    }
}

/// Whether `header`'s signature is its owner's RSA-PSS signature (SHA-256, any
/// salt length) of `message`.
fn verify_message(header: &DataItemHeader, message: &DeepHash) -> bool {
    let Ok(key) = public_key_of(&header.owner) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(&header.signature[..]) else {
        return false;
    };
    VerifyingKey::<PssSha256>::new_with_auto_salt_len(key)
        .verify(message, &signature)
        .is_ok()
}

/// Whether the item made of `header` and the data in `data_chunks` is signed by
/// its owner.
pub fn verify<'a>(
    header: &DataItemHeader,
    data_chunks: impl IntoIterator<Item = &'a [u8]>,
) -> bool {
    let mut verifier = header.verifier();
    for chunk in data_chunks {
        verifier.update(chunk);
    }
    verifier.finish()
}

/// `N` bytes at `*pos`, advancing it; `Truncated` when `bytes` ends first.
fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], DataItemError> {
    let end = *pos + n;
    let slice = bytes
        .get(*pos..end)
        .ok_or(DataItemError::Truncated { needed: end })?;
    *pos = end;
    Ok(slice)
}

/// An optional 32-byte field behind its presence byte.
fn optional_field(
    bytes: &[u8],
    pos: &mut usize,
    field: &'static str,
) -> Result<Option<[u8; 32]>, DataItemError> {
    match take(bytes, pos, 1)?[0] {
        0 => Ok(None),
        1 => {
            let mut out = [0u8; 32];
            out.copy_from_slice(take(bytes, pos, 32)?);
            Ok(Some(out))
        }
        value => Err(DataItemError::PresenceByte { field, value }),
    }
}

fn read_u64(bytes: &[u8], pos: &mut usize) -> Result<u64, DataItemError> {
    let mut le = [0u8; COUNT_BYTES];
    le.copy_from_slice(take(bytes, pos, COUNT_BYTES)?);
    Ok(u64::from_le_bytes(le))
}

/// Parse the header at the start of `bytes` (the whole item, or at least its
/// first [`MAX_HEADER_BYTES`]); returns it and the offset where the data starts.
/// Does not verify the signature.
pub fn parse_header(bytes: &[u8]) -> Result<(DataItemHeader, usize), DataItemError> {
    let mut pos = 0;
    let mut sig_type = [0u8; SIGNATURE_TYPE_BYTES];
    sig_type.copy_from_slice(take(bytes, &mut pos, SIGNATURE_TYPE_BYTES)?);
    let sig_type = u16::from_le_bytes(sig_type);
    if sig_type != SIGNATURE_TYPE_ARWEAVE {
        return Err(DataItemError::SignatureType(sig_type));
    }
    let signature = take(bytes, &mut pos, SIGNATURE_BYTES)?;
    let owner = take(bytes, &mut pos, OWNER_BYTES)?;
    let target = optional_field(bytes, &mut pos, "target")?;
    let anchor = optional_field(bytes, &mut pos, "anchor")?;
    let tag_count = read_u64(bytes, &mut pos)?;
    let tag_len = read_u64(bytes, &mut pos)?;
    if tag_len > MAX_TAG_BYTES as u64 {
        return Err(DataItemError::TagBytesTooLong(tag_len));
    }
    if tag_count > MAX_TAGS as u64 {
        return Err(DataItemError::Tags(TagError::TooMany));
    }
    let tag_bytes = take(bytes, &mut pos, tag_len as usize)?;
    let tags = decode_tags(tag_bytes)?;
    if tags.len() as u64 != tag_count {
        return Err(DataItemError::TagCount {
            declared: tag_count,
            decoded: tags.len(),
        });
    }
    let header = DataItemHeader {
        signature: signature.into(),
        owner: owner.into(),
        target,
        anchor,
        tags,
        tag_bytes: tag_bytes.to_vec(),
    };
    debug_assert_eq!(header.encoded_len(), pos);
    Ok((header, pos))
}

/// Vectors: `test_vectors` (arbundles 0.11.2 and arweave-js 1.15.7, via Node).
/// Beyond these tests, items made by this module (with and without target,
/// anchor and tags, and one with 100,000 bytes of streamed data) were checked once
/// by hand with arbundles 0.11.2's `DataItem.verify`, which accepted them and
/// computed the same ids.
#[cfg(test)]
mod tests {
    use super::super::test_vectors::{self, ItemVector};
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// The fixed test wallet, loaded once (RSA key checks take a moment).
    fn wallet() -> &'static ArweaveWallet {
        static WALLET: OnceLock<ArweaveWallet> = OnceLock::new();
        WALLET.get_or_init(|| {
            ArweaveWallet::from_jwk_json(test_vectors::JWK.as_bytes()).expect("test JWK")
        })
    }

    fn raw(v: &ItemVector) -> Vec<u8> {
        STANDARD.decode(v.raw_b64).expect("vector base64")
    }

    fn target_of(v: &ItemVector) -> Option<[u8; 32]> {
        v.target.map(|t| {
            let bytes = URL_SAFE_NO_PAD.decode(t).expect("target base64url");
            bytes.try_into().expect("32-byte target")
        })
    }

    fn anchor_of(v: &ItemVector) -> Option<[u8; 32]> {
        v.anchor
            .map(|a| a.as_bytes().try_into().expect("32-byte anchor"))
    }

    #[test]
    fn arweave_item_from_arbundles_parses_verifies_and_has_its_id() {
        for v in [&test_vectors::FULL_ITEM, &test_vectors::BARE_ITEM] {
            let item = raw(v);
            let (header, offset) = parse_header(&item).expect("arbundles item parses");
            assert_eq!(&item[offset..], v.data.as_bytes());
            assert_eq!(header.id(), v.id);
            assert_eq!(header.owner_address(), test_vectors::ADDRESS);
            assert_eq!(header.owner(), wallet().owner());
            assert_eq!(header.target(), target_of(v).as_ref());
            assert_eq!(header.anchor(), anchor_of(v).as_ref());
            assert_eq!(header.tags(), v.tags().as_slice());
            assert_eq!(hex::encode(header.tag_bytes()), v.tag_bytes_hex);
            assert_eq!(
                hex::encode(header.message([&item[offset..]]).expect("message")),
                v.message_hex
            );
            assert_eq!(header.to_bytes(), &item[..offset]);
            assert!(
                verify(&header, [&item[offset..]]),
                "arbundles item verifies"
            );
            // In chunks too.
            assert!(verify(&header, item[offset..].chunks(3)));
        }
    }

    #[test]
    fn arweave_item_from_arbundles_uses_the_maximum_salt_length() {
        // Node's default PSS salt for a 4096-bit key and SHA-256: 512 - 32 - 2.
        let v = &test_vectors::FULL_ITEM;
        let item = raw(v);
        let (header, offset) = parse_header(&item).expect("parses");
        let message = header.message([&item[offset..]]).expect("message");
        let key = public_key_of(header.owner()).expect("owner");
        let signature = Signature::try_from(header.signature()).expect("signature");
        let fixed = |salt| {
            VerifyingKey::<PssSha256>::new_with_salt_len(key.clone(), salt)
                .verify(&message, &signature)
                .is_ok()
        };
        assert!(fixed(478));
        assert!(!fixed(PSS_SALT_BYTES));
    }

    #[test]
    fn arweave_item_ours_matches_arbundles_but_the_signature_and_verifies() {
        for v in [&test_vectors::FULL_ITEM, &test_vectors::BARE_ITEM] {
            let theirs = raw(v);
            let ours = sign(
                wallet(),
                target_of(v),
                anchor_of(v),
                v.tags(),
                v.data.as_bytes(),
            )
            .expect("signs");
            assert_eq!(ours.len(), theirs.len());
            // Type, then (after the signature) owner, target, anchor, tags and data.
            assert_eq!(ours[..2], theirs[..2]);
            assert_ne!(ours[2..2 + SIGNATURE_BYTES], theirs[2..2 + SIGNATURE_BYTES]);
            assert_eq!(ours[2 + SIGNATURE_BYTES..], theirs[2 + SIGNATURE_BYTES..]);
            let (header, offset) = parse_header(&ours).expect("ours parses");
            assert_eq!(
                hex::encode(header.message([&ours[offset..]]).expect("message")),
                v.message_hex
            );
            assert!(verify(&header, [&ours[offset..]]));
            // Our salt length is 32, which a fixed-32 (WebCrypto) verifier needs.
            let key = public_key_of(header.owner()).expect("owner");
            let signature = Signature::try_from(header.signature()).expect("signature");
            assert!(
                VerifyingKey::<PssSha256>::new_with_salt_len(key, PSS_SALT_BYTES)
                    .verify(
                        &header.message([&ours[offset..]]).expect("message"),
                        &signature
                    )
                    .is_ok()
            );
        }
    }

    #[test]
    fn arweave_item_streamed_signing_equals_whole_and_checks_length() {
        let data = test_vectors::big_blob();
        let tags = vec![Tag::new("Content-Type", "application/octet-stream")];
        let signed = sign_streaming(
            wallet(),
            None,
            None,
            tags.clone(),
            data.len() as u64,
            data.chunks(4096),
        )
        .expect("signs");
        assert_eq!(signed.data_len, data.len() as u64);
        assert_eq!(
            signed.item_len(),
            (signed.header.encoded_len() + data.len()) as u64
        );
        assert_eq!(signed.id().len(), 43);
        assert!(verify(&signed.header, data.chunks(1000)));
        let mut item = signed.header.to_bytes();
        item.extend_from_slice(&data);
        let (parsed, offset) = parse_header(&item).expect("parses");
        assert_eq!(parsed, signed.header);
        assert_eq!(offset, signed.header.encoded_len());

        let short = sign_streaming(
            wallet(),
            None,
            None,
            tags,
            data.len() as u64 + 1,
            data.chunks(4096),
        );
        assert!(matches!(
            short,
            Err(DataItemError::Data(DeepHashError::BlobLength { .. }))
        ));
    }

    #[test]
    fn arweave_item_tampering_fails_verification() {
        let v = &test_vectors::FULL_ITEM;
        let item = raw(v);
        let (header, offset) = parse_header(&item).expect("parses");
        let data = &item[offset..];

        let mut other = data.to_vec();
        other[0] ^= 1;
        assert!(!verify(&header, [&other[..]]), "changed data");
        assert!(!verify(&header, [&data[..data.len() - 1]]), "shorter data");
        assert!(!verify(&header, [data, b"x"]), "longer data");

        // A changed tag value (same length, so the header still parses).
        let tag_at = offset - header.tag_bytes().len();
        let mut tampered = item.clone();
        let last_value_byte = offset - 2; // the byte before the 0 terminator
        assert!(last_value_byte > tag_at);
        tampered[last_value_byte] ^= 1;
        let (bad, _) = parse_header(&tampered).expect("still parses");
        assert!(!verify(&bad, [data]), "changed tag");

        // A changed anchor, target, owner or signature.
        for at in [
            TARGET_FLAG_OFFSET + 1,
            TARGET_FLAG_OFFSET + 1 + TARGET_BYTES + 1,
            2 + SIGNATURE_BYTES + 7,
            2 + 100,
        ] {
            let mut tampered = item.clone();
            tampered[at] ^= 0x40;
            let (bad, _) = parse_header(&tampered).expect("still parses");
            assert!(!verify(&bad, [data]), "changed byte {at}");
        }
    }

    #[test]
    fn arweave_item_malformed_headers_are_errors() {
        let item = raw(&test_vectors::FULL_ITEM);
        assert_eq!(
            parse_header(&[]).err(),
            Some(DataItemError::Truncated { needed: 2 })
        );
        assert_eq!(
            parse_header(&[2, 0]).err(),
            Some(DataItemError::SignatureType(2))
        );
        assert!(matches!(
            parse_header(&item[..600]),
            Err(DataItemError::Truncated { .. })
        ));
        let (header, offset) = parse_header(&item).expect("parses");
        // Every proper prefix of the header is truncated.
        for cut in [1, 513, 1026, 1027, 1060, 1094, 1101, offset - 1] {
            assert!(
                matches!(
                    parse_header(&item[..cut]),
                    Err(DataItemError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut bad = item.clone();
        bad[TARGET_FLAG_OFFSET] = 2;
        assert_eq!(
            parse_header(&bad).err(),
            Some(DataItemError::PresenceByte {
                field: "target",
                value: 2
            })
        );
        let tags_at = offset - header.tag_bytes().len() - 2 * COUNT_BYTES;
        let mut bad = item.clone();
        bad[tags_at] = 3; // declared tag count
        assert_eq!(
            parse_header(&bad).err(),
            Some(DataItemError::TagCount {
                declared: 3,
                decoded: 4
            })
        );
        let mut bad = item.clone();
        bad[tags_at + COUNT_BYTES..tags_at + 2 * COUNT_BYTES]
            .copy_from_slice(&(MAX_TAG_BYTES as u64 + 1).to_le_bytes());
        assert_eq!(
            parse_header(&bad).err(),
            Some(DataItemError::TagBytesTooLong(MAX_TAG_BYTES as u64 + 1))
        );
        let mut bad = item.clone();
        bad[tags_at + COUNT_BYTES..tags_at + 2 * COUNT_BYTES]
            .copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            parse_header(&bad).err(),
            Some(DataItemError::TagBytesTooLong(u64::MAX))
        );
        let mut bad = item.clone();
        bad[tags_at..tags_at + COUNT_BYTES].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            parse_header(&bad).err(),
            Some(DataItemError::Tags(TagError::TooMany))
        );
    }

    #[test]
    fn arweave_item_signing_refuses_bad_tags() {
        let bad = vec![Tag::new("", "v")];
        assert_eq!(
            sign(wallet(), None, None, bad, b"x").err(),
            Some(DataItemError::Tags(TagError::EmptyName(0)))
        );
    }

    #[test]
    fn arweave_item_header_bounds_are_consistent() {
        assert_eq!(MIN_HEADER_BYTES, 2 + 512 + 512 + 1 + 1 + 8 + 8);
        assert_eq!(MAX_HEADER_BYTES, MIN_HEADER_BYTES + 64 + MAX_TAG_BYTES);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arweave_item_parse_random_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..1200)
        ) {
            let _ = parse_header(&bytes);
        }

        #[test]
        fn arweave_item_parse_mutated_header_never_panics(
            edits in proptest::collection::vec((0usize..1200, any::<u8>()), 1..8),
            cut in 0usize..1800,
        ) {
            let mut item = raw(&test_vectors::FULL_ITEM);
            for (at, byte) in edits {
                if let Some(b) = item.get_mut(at) {
                    *b = byte;
                }
            }
            item.truncate(cut);
            if let Ok((header, offset)) = parse_header(&item) {
                prop_assert!(offset <= item.len());
                prop_assert_eq!(header.encoded_len(), offset);
            }
        }
    }
}
