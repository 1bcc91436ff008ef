//! Arweave wallets: the JWK file an Arweave wallet is kept in (an RSA private key,
//! `kty, n, e, d, p, q, dp, dq, qi`, each base64url without padding) read into an
//! [`rsa::PrivateKey`], and the public identity derived from it: the *owner* is
//! the modulus `n` as 512 big-endian bytes, the *address* is
//! base64url(SHA-256(owner)).
//!
//! Arweave keys are 4096-bit with public exponent 65537 (`AQAB`): owners carry
//! only `n`, so verifiers assume that exponent, and a key of another size or
//! exponent could not sign anything Arweave accepts. Such keys are refused here.
//!
//! Bounds: JWK input is refused past [`MAX_JWK_BYTES`] before parsing; each
//! component is at most [`OWNER_BYTES`] bytes. The decoded private components are
//! wiped when dropped; `Debug` shows the address only.
//!
//! Not here: signing (`dataitem`), reading the wallet file from disk.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BoxedUint, PrivateKey, PublicKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// Bytes of an Arweave owner: the modulus of a 4096-bit RSA key.
pub const OWNER_BYTES: usize = 512;

/// Bits of an Arweave key's modulus.
pub const MODULUS_BITS: u32 = 4096;

/// The public exponent every Arweave key has (`AQAB`).
pub const PUBLIC_EXPONENT: u64 = 65537;

/// [`PUBLIC_EXPONENT`] big-endian, as JWK `e` decodes.
const PUBLIC_EXPONENT_BYTES: [u8; 3] = [0x01, 0x00, 0x01];

/// Bound: bytes of JWK JSON looked at. A 4096-bit JWK is about 3.2 KiB; anything
/// far longer is refused unparsed.
pub const MAX_JWK_BYTES: usize = 16 * 1024;

/// Why a wallet or an owner was refused. Messages never contain key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("JWK is longer than {MAX_JWK_BYTES} bytes")]
    TooLong,
    #[error("JWK is not a JSON object with the RSA private key members")]
    Json,
    #[error("JWK kty is not \"RSA\"")]
    NotRsa,
    #[error("JWK member {0} is not base64url")]
    Base64(&'static str),
    #[error("JWK member {0} is longer than the modulus")]
    ComponentTooLong(&'static str),
    #[error("modulus is {0} bytes; an Arweave key has {OWNER_BYTES}")]
    ModulusSize(usize),
    #[error("public exponent is not 65537 (AQAB)")]
    Exponent,
    #[error("the private key components do not form a valid RSA key")]
    InvalidKey,
    #[error("JWK member {0} does not match the key's other components")]
    Inconsistent(&'static str),
}

/// An Arweave wallet: its RSA private key and the owner bytes (`n`).
pub struct ArweaveWallet {
    key: PrivateKey,
    owner: Box<[u8]>,
}

/// The JWK members as found, base64url text. Wiped on drop.
#[derive(serde::Deserialize)]
struct JwkText {
    kty: String,
    n: String,
    e: String,
    d: String,
    p: String,
    q: String,
    dp: String,
    dq: String,
    qi: String,
}

impl Drop for JwkText {
    fn drop(&mut self) {
        for s in [
            &mut self.d,
            &mut self.p,
            &mut self.q,
            &mut self.dp,
            &mut self.dq,
            &mut self.qi,
        ] {
            s.zeroize();
        }
    }
}

/// Decode one base64url member into a bounded, wiped-on-drop buffer.
fn member(name: &'static str, text: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, JwkError> {
    // base64 of OWNER_BYTES is 683 characters; refuse longer before decoding.
    if text.len() > OWNER_BYTES.div_ceil(3) * 4 {
        return Err(JwkError::ComponentTooLong(name));
    }
    let bytes = zeroize::Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| JwkError::Base64(name))?,
    );
    if bytes.len() > OWNER_BYTES {
        return Err(JwkError::ComponentTooLong(name));
    }
    Ok(bytes)
}

/// A secret integer of the key's width from big-endian bytes.
fn secret_uint(name: &'static str, bytes: &[u8]) -> Result<BoxedUint, JwkError> {
    BoxedUint::from_be_slice(bytes, MODULUS_BITS).map_err(|_| JwkError::ComponentTooLong(name))
}

/// Big-endian bytes without leading zeros (JWK integers are written that way).
fn trimmed(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Whether `value` equals the big-endian `expected` (both compared without leading zeros).
fn same_uint(value: &BoxedUint, expected: &[u8]) -> bool {
    let bytes = zeroize::Zeroizing::new(value.to_be_bytes());
    trimmed(&bytes) == trimmed(expected)
}

impl ArweaveWallet {
    /// Read a wallet from its JWK JSON (the content of an Arweave wallet file).
    pub fn from_jwk_json(json: &[u8]) -> Result<Self, JwkError> {
        if json.len() > MAX_JWK_BYTES {
            return Err(JwkError::TooLong);
        }
        let jwk: JwkText = serde_json::from_slice(json).map_err(|_| JwkError::Json)?;
        if jwk.kty != "RSA" {
            return Err(JwkError::NotRsa);
        }
        let n = member("n", &jwk.n)?;
        if n.len() != OWNER_BYTES || n.first() == Some(&0) {
            return Err(JwkError::ModulusSize(trimmed(&n).len()));
        }
        let e = member("e", &jwk.e)?;
        if trimmed(&e) != PUBLIC_EXPONENT_BYTES {
            return Err(JwkError::Exponent);
        }
        let d = member("d", &jwk.d)?;
        let p = member("p", &jwk.p)?;
        let q = member("q", &jwk.q)?;
        let dp = member("dp", &jwk.dp)?;
        let dq = member("dq", &jwk.dq)?;
        let qi = member("qi", &jwk.qi)?;

        let key = PrivateKey::from_components(
            BoxedUint::from_be_slice_vartime(&n),
            BoxedUint::from(PUBLIC_EXPONENT),
            secret_uint("d", &d)?,
            vec![secret_uint("p", &p)?, secret_uint("q", &q)?],
        )
        .map_err(|_| JwkError::InvalidKey)?;

        // The CRT members are redundant: check them, so a damaged file is refused
        // rather than silently repaired.
        match key.dp() {
            Some(v) if same_uint(v, &dp) => {}
            _ => return Err(JwkError::Inconsistent("dp")),
        }
        match key.dq() {
            Some(v) if same_uint(v, &dq) => {}
            _ => return Err(JwkError::Inconsistent("dq")),
        }
        match key.crt_coefficient() {
            Some(v) if same_uint(&v, &qi) => {}
            _ => return Err(JwkError::Inconsistent("qi")),
        }

        Ok(ArweaveWallet {
            key,
            owner: n.to_vec().into_boxed_slice(),
        })
    }

    /// The RSA private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// The owner: the modulus `n`, [`OWNER_BYTES`] big-endian bytes.
    pub fn owner(&self) -> &[u8] {
        &self.owner
    }

    /// The wallet's address: base64url(SHA-256(owner)), 43 characters.
    pub fn address(&self) -> String {
        address_of(&self.owner)
    }
}

impl fmt::Debug for ArweaveWallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArweaveWallet")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

/// The address of an owner: base64url(SHA-256(owner)), no padding.
pub fn address_of(owner: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(owner))
}

/// The RSA public key an owner stands for (`n` = owner, e = 65537); an error when
/// the owner is not a 4096-bit modulus.
pub fn public_key_of(owner: &[u8]) -> Result<PublicKey, JwkError> {
    if owner.len() != OWNER_BYTES || owner.first() == Some(&0) {
        return Err(JwkError::ModulusSize(trimmed(owner).len()));
    }
    let key = PublicKey::new(
        BoxedUint::from_be_slice_vartime(owner),
        BoxedUint::from(PUBLIC_EXPONENT),
    )
    .map_err(|_| JwkError::InvalidKey)?;
    debug_assert_eq!(key.size(), OWNER_BYTES);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::super::test_vectors;
    use super::*;

    fn jwk_value() -> serde_json::Value {
        serde_json::from_str(test_vectors::JWK).expect("test JWK is JSON")
    }

    fn with(member: &str, value: serde_json::Value) -> Vec<u8> {
        let mut jwk = jwk_value();
        jwk[member] = value;
        serde_json::to_vec(&jwk).expect("serialise")
    }

    #[test]
    fn arweave_jwk_loads_with_owner_and_address() {
        let wallet = ArweaveWallet::from_jwk_json(test_vectors::JWK.as_bytes()).expect("test JWK");
        assert_eq!(wallet.owner().len(), OWNER_BYTES);
        let n = jwk_value()["n"].as_str().expect("n").to_owned();
        assert_eq!(URL_SAFE_NO_PAD.encode(wallet.owner()), n);
        assert_eq!(wallet.address(), test_vectors::ADDRESS);
        assert_eq!(wallet.address().len(), 43);
        assert!(public_key_of(wallet.owner()).is_ok());
    }

    #[test]
    fn arweave_jwk_debug_shows_no_private_parts() {
        let wallet = ArweaveWallet::from_jwk_json(test_vectors::JWK.as_bytes()).expect("test JWK");
        let shown = format!("{wallet:?}");
        assert!(shown.contains(test_vectors::ADDRESS), "{shown}");
        let jwk = jwk_value();
        for member in ["n", "d", "p", "q", "dp", "dq", "qi"] {
            let text = jwk[member].as_str().expect("member");
            assert!(!shown.contains(&text[..16]), "Debug shows {member}");
        }
    }

    #[test]
    fn arweave_jwk_malformed_keys_are_errors() {
        let j = serde_json::Value::String;
        assert_eq!(
            ArweaveWallet::from_jwk_json(b"not json").err(),
            Some(JwkError::Json)
        );
        assert_eq!(
            ArweaveWallet::from_jwk_json(&vec![b' '; MAX_JWK_BYTES + 1]).err(),
            Some(JwkError::TooLong)
        );
        assert_eq!(
            ArweaveWallet::from_jwk_json(&with("kty", j("EC".into()))).err(),
            Some(JwkError::NotRsa)
        );
        assert_eq!(
            ArweaveWallet::from_jwk_json(&with("d", j("!!!".into()))).err(),
            Some(JwkError::Base64("d"))
        );
        assert_eq!(
            ArweaveWallet::from_jwk_json(&with("e", j("Aw".into()))).err(),
            Some(JwkError::Exponent)
        );
        assert_eq!(
            ArweaveWallet::from_jwk_json(&with("n", j("AQAB".into()))).err(),
            Some(JwkError::ModulusSize(3))
        );
        assert_eq!(
            ArweaveWallet::from_jwk_json(&with("p", j("Aw".into()))).err(),
            Some(JwkError::InvalidKey)
        );
        assert_eq!(
            ArweaveWallet::from_jwk_json(&with("qi", j("Aw".into()))).err(),
            Some(JwkError::Inconsistent("qi"))
        );
        let mut missing = jwk_value();
        missing.as_object_mut().expect("object").remove("dq");
        assert_eq!(
            ArweaveWallet::from_jwk_json(&serde_json::to_vec(&missing).expect("json")).err(),
            Some(JwkError::Json)
        );
        let long = "A".repeat(800);
        assert_eq!(
            ArweaveWallet::from_jwk_json(&with("d", j(long))).err(),
            Some(JwkError::ComponentTooLong("d"))
        );
    }

    #[test]
    fn arweave_owner_of_wrong_size_is_refused() {
        assert!(public_key_of(&[1u8; 256]).is_err());
        assert!(public_key_of(&[0u8; OWNER_BYTES]).is_err());
    }
}
