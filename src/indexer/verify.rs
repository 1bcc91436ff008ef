//! Creator signatures, verified exactly as the original node verifies them.
//!
//! Its job: build the signed message for each kind of transaction and check
//! the `CreatorSig` against the creator's public key.
//!
//! * Scheme (`helpers/utils.js` `verifySignature` → arbundles
//!   `ArweaveSigner.verify` → Node `crypto.verify`): RSASSA-PSS with SHA-256
//!   and MGF1-SHA-256, e = 65537, modulus `n` = the creator's public key
//!   (base64url), signature in base64. Node verifies with an automatically
//!   detected salt length; signers differ (Node's `crypto.sign` uses the
//!   maximum, WebCrypto 32), so we detect it too.
//! * Template message (`processNewTemplate`):
//!   `JSON.stringify(JSON.parse(data)) + JSON.stringify(tagsWithoutLast)`.
//! * Creator-registration message (`indexNewCreatorRegistration`) and
//!   ordinary-record message: `JSON.stringify(tagsWithoutLast) + data`. For
//!   ordinary records this is how the publisher signs them
//!   (`helpers/templateHelper.js` `publishNewRecord`, lines 457–469 at
//!   `ccfdf3e`: `dataForSignature = JSON.stringify(tags) + recordData`, with
//!   `tags` the six tags before `CreatorSig` and `recordData` the published
//!   text); the original builds the same string in `processNewRecord` but
//!   never checks it.
//!
//! Its bounds: one RSA public-key operation per call; moduli from
//! [`MIN_MODULUS_BITS`] to [`MAX_MODULUS_BITS`]. The message is hashed as
//! given, so its size is the data size the caller admitted.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use rsa::pss::{Signature, VerifyingKey};
use rsa::sha2::Sha256;
use rsa::signature::Verifier as _;
use rsa::{BoxedUint, PublicKey};
use serde_json::Value;

use super::js::write_js_string;
use super::tx::{Tag, Tx};

pub use super::js::js_stringify;

/// Bound: the smallest modulus accepted (the `rsa` crate's default floor).
pub const MIN_MODULUS_BITS: usize = 1024;
/// Bound: the largest modulus accepted. Arweave wallets are 4096-bit; a larger
/// key would only make each verification slower.
pub const MAX_MODULUS_BITS: usize = 4096;
/// `AQAB`, the exponent of every Arweave key (arweave-js fixes it).
pub const PUBLIC_EXPONENT: u32 = 65_537;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the public key is not base64url")]
    KeyEncoding,
    #[error("the public key is not a usable RSA modulus: {0}")]
    Key(String),
    #[error("the signature is not base64")]
    SignatureEncoding,
    #[error("the signature has {got} bytes where the key needs {want}")]
    SignatureLength { got: usize, want: usize },
    #[error("the signature does not match the message")]
    Mismatch,
    #[error("the transaction has no CreatorSig tag")]
    NoSignature,
    #[error("the template data is not JSON: {0}")]
    TemplateJson(String),
}

/// Decoding that takes either alphabet's text once mapped to the standard one,
/// with or without padding, as Node's lenient base64 decoding does.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// base64 or base64url, padded or not, ASCII white space ignored.
pub fn decode_base64_lenient(text: &str) -> Option<Vec<u8>> {
    let normalized: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT.decode(normalized.trim_end_matches('=')).ok()
}

/// `JSON.stringify(tags)`: `[{"name":…,"value":…},…]`, in the given order.
pub fn tags_json(tags: &[Tag]) -> String {
    let mut out = String::from("[");
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        write_js_string(&mut out, &tag.name);
        out.push_str(",\"value\":");
        write_js_string(&mut out, &tag.value);
        out.push('}');
    }
    out.push(']');
    out
}

/// The message of an ordinary record: `JSON.stringify(signedTags) + data`.
pub fn record_message(signed_tags: &[Tag], data: &str) -> String {
    let mut m = tags_json(signed_tags);
    m.push_str(data);
    m
}

/// The message of a creator registration: the same form as a record's.
pub fn creator_registration_message(signed_tags: &[Tag], data: &str) -> String {
    record_message(signed_tags, data)
}

/// The message of a template: `JSON.stringify(JSON.parse(data)) +
/// JSON.stringify(signedTags)` (data first, unlike records).
pub fn template_message(data: &str, signed_tags: &[Tag]) -> Result<String, VerifyError> {
    let parsed: Value = serde_json::from_str(data).map_err(|e| VerifyError::TemplateJson(e.to_string()))?;
    let mut m = js_stringify(&parsed);
    m.push_str(&tags_json(signed_tags));
    Ok(m)
}

/// The creator's RSA public key from its modulus (base64url `n`), e = 65537.
pub fn public_key(modulus_b64url: &str) -> Result<PublicKey, VerifyError> {
    let bytes = decode_base64_lenient(modulus_b64url).ok_or(VerifyError::KeyEncoding)?;
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let n = BoxedUint::from_be_slice_vartime(&bytes[first..]);
    let e = BoxedUint::from(u64::from(PUBLIC_EXPONENT));
    PublicKey::new_with_size_limits(n, e, MIN_MODULUS_BITS..=MAX_MODULUS_BITS).map_err(|e| VerifyError::Key(e.to_string()))
}

/// Verify `signature` (base64) over `message` with automatic salt length.
pub fn verify_signature(message: &[u8], signature: &str, modulus_b64url: &str) -> Result<(), VerifyError> {
    verify_signature_with_salt_len(message, signature, modulus_b64url, None)
}

/// Verify with a fixed salt length (`Some`), or detect it (`None`).
pub fn verify_signature_with_salt_len(
    message: &[u8],
    signature: &str,
    modulus_b64url: &str,
    salt_len: Option<usize>,
) -> Result<(), VerifyError> {
    let key = public_key(modulus_b64url)?;
    let sig = decode_base64_lenient(signature).ok_or(VerifyError::SignatureEncoding)?;
    let want = rsa::traits::PublicKeyParts::size(&key);
    if sig.len() != want {
        return Err(VerifyError::SignatureLength { got: sig.len(), want });
    }
    let sig = Signature::try_from(sig.as_slice()).map_err(|_| VerifyError::SignatureEncoding)?;
    let verifier = match salt_len {
        Some(len) => VerifyingKey::<Sha256>::new_with_salt_len(key, len),
        None => VerifyingKey::<Sha256>::new_with_auto_salt_len(key),
    };
    verifier.verify(message, &sig).map_err(|_| VerifyError::Mismatch)
}

/// Verify a record or creator registration transaction: its `CreatorSig` over
/// `JSON.stringify(tagsWithoutLast) + data`.
pub fn verify_record_tx(tx: &Tx, modulus_b64url: &str) -> Result<(), VerifyError> {
    let sig = tx.creator_sig().ok_or(VerifyError::NoSignature)?;
    verify_signature(record_message(tx.signed_tags(), &tx.data).as_bytes(), &sig, modulus_b64url)
}

/// Verify a template transaction: its `CreatorSig` over
/// `JSON.stringify(JSON.parse(data)) + JSON.stringify(tagsWithoutLast)`.
pub fn verify_template_tx(tx: &Tx, modulus_b64url: &str) -> Result<(), VerifyError> {
    let sig = tx.creator_sig().ok_or(VerifyError::NoSignature)?;
    let message = template_message(&tx.data, tx.signed_tags())?;
    verify_signature(message.as_bytes(), &sig, modulus_b64url)
}

#[cfg(test)]
mod tests;
