//! Encryption of private GUN records: the original's wire form, keys outsiders
//! cannot compute.
//!
//! Wire form (the original's): AES-256-GCM, random 12-byte IV, 16-byte tag, no
//! AAD; the node's `data` becomes `{encrypted, iv, tag}` (standard base64) and
//! `meta` gains `encrypted: true, encryptionMethod: "aes-256-gcm", encryptionType:
//! "per-user", encryptedBy: <publicKey>`. The plaintext is the record's `data`
//! JSON-encoded twice (`JSON.stringify(JSON.stringify(data))`, as the original).
//!
//! Keys:
//! - **new records** ([`KDF_V1`], named in `meta.keyDerivation`): HKDF-SHA256 of
//!   the node secret (`--gun-encryption-secret` / `OIPD_GUN_SECRET`, shared by
//!   the nodes of one deployment; generated into the data directory when not
//!   given) with the user's public key as `info`. Without the secret the key
//!   cannot be derived from anything public.
//! - the original's, **read only**: per-user with the user's GUN salt
//!   (`PBKDF2(pubKey + ":" + salt, "oip-gun-encryption")`), the "fallback"
//!   (`PBKDF2(pubKey, "oip-gun-fallback")` — computable by anyone who knows the
//!   public key), and the legacy key (`PBKDF2("gun-encryption-key", "salt")`),
//!   all PBKDF2-HMAC-SHA256, 100,000 iterations, 32 bytes. Organization
//!   encryption never worked in the original (it always threw); such records are
//!   kept encrypted.
//!
//! Bound: [`KEY_CACHE`] derived PBKDF2 keys kept (each costs 100,000 HMACs).

use std::num::NonZeroUsize;
use std::sync::Mutex;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::limits::{BoundReport, BoundSource};

/// `meta.keyDerivation` of records encrypted here.
pub const KDF_V1: &str = "oipd-hkdf-sha256-v1";
/// HKDF salt of [`KDF_V1`] (domain separation).
const HKDF_SALT: &[u8] = b"oipd gun per-user key v1";
/// The original's PBKDF2 iterations.
pub const PBKDF2_ITERATIONS: u32 = 100_000;
/// Bound: PBKDF2-derived keys cached (fallback and legacy), LRU.
pub const KEY_CACHE: usize = 1024;

type Key32 = Zeroizing<[u8; 32]>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("not an encrypted node: {0}")]
    Malformed(&'static str),
    #[error("no key this node holds opens it")]
    NoKey,
    #[error("randomness unavailable")]
    Randomness,
}

/// HKDF-SHA256 (RFC 5869) to 32 bytes: one expand block.
pub fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Key32 {
    let mut ext = <Hmac<Sha256> as Mac>::new_from_slice(salt).expect("HMAC takes any key length");
    ext.update(ikm);
    let prk = ext.finalize().into_bytes();
    let mut exp = <Hmac<Sha256> as Mac>::new_from_slice(&prk).expect("HMAC takes any key length");
    exp.update(info);
    exp.update(&[1]);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&exp.finalize().into_bytes());
    out
}

fn pbkdf2(password: &[u8], salt: &[u8]) -> Key32 {
    let mut out = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, PBKDF2_ITERATIONS, &mut out[..]);
    out
}

/// The keys of this node: its secret, and a bounded cache of the original's keys.
pub struct Keys {
    secret: Zeroizing<Vec<u8>>,
    cache: Mutex<lru::LruCache<String, Key32>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    pub fn new(secret: &[u8]) -> Self {
        Keys {
            secret: Zeroizing::new(secret.to_vec()),
            cache: Mutex::new(lru::LruCache::new(NonZeroUsize::new(KEY_CACHE).expect("nonzero"))),
        }
    }

    /// The key of records this node encrypts for `public_key`.
    pub fn per_user(&self, public_key: &str) -> Key32 {
        hkdf32(HKDF_SALT, &self.secret, public_key.as_bytes())
    }

    fn cached(&self, id: String, derive: impl FnOnce() -> Key32) -> Key32 {
        if let Some(k) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return k.clone();
        }
        let k = derive();
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(id, k.clone());
        k
    }

    /// The original's "fallback" per-user key (public-key derived).
    pub fn fallback(&self, public_key: &str) -> Key32 {
        self.cached(format!("fallback:{public_key}"), || pbkdf2(public_key.as_bytes(), b"oip-gun-fallback"))
    }

    /// The original's legacy key (one for everyone).
    pub fn legacy(&self) -> Key32 {
        self.cached("legacy".into(), || pbkdf2(b"gun-encryption-key", b"salt"))
    }

    /// The original's per-user key with the user's GUN salt (not cached: the salt is a secret).
    pub fn salted(public_key: &str, salt: &str) -> Key32 {
        pbkdf2(format!("{public_key}:{salt}").as_bytes(), b"oip-gun-encryption")
    }

    /// Encrypt a record's `data` for its owner: the node's `data` and the `meta`
    /// fields to add.
    pub fn encrypt(&self, public_key: &str, data: &Value) -> Result<(Value, Map<String, Value>), CryptoError> {
        let key = self.per_user(public_key);
        let inner = serde_json::to_string(data).map_err(|_| CryptoError::Malformed("data"))?;
        let plaintext = Zeroizing::new(serde_json::to_string(&inner).map_err(|_| CryptoError::Malformed("data"))?);
        let mut iv = [0u8; 12];
        getrandom::fill(&mut iv).map_err(|_| CryptoError::Randomness)?;
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key[..]));
        let mut buf = plaintext.as_bytes().to_vec();
        let tag = cipher.encrypt_in_place_detached(Nonce::from_slice(&iv), b"", &mut buf).map_err(|_| CryptoError::Malformed("too long"))?;
        let data = json!({"encrypted": B64.encode(&buf), "iv": B64.encode(iv), "tag": B64.encode(tag)});
        let meta = json!({
            "encrypted": true, "encryptionMethod": "aes-256-gcm", "encryptionType": "per-user",
            "encryptedBy": public_key, "keyDerivation": KDF_V1,
        });
        Ok((data, meta.as_object().cloned().unwrap_or_default()))
    }

    /// Decrypt a node's encrypted `data` with the keys its `meta` calls for (this
    /// node's own first, then the original's); `salt` is the owner's GUN salt
    /// when known. Answers the record's `data` and which key opened it.
    pub fn decrypt(&self, data: &Value, meta: &Map<String, Value>, salt: Option<&str>) -> Result<(Value, &'static str), CryptoError> {
        let parts = Parts::of(data)?;
        let s = |k: &str| meta.get(k).and_then(Value::as_str);
        if s("encryptionType") == Some("organization") {
            return Err(CryptoError::NoKey);
        }
        let mut keys: Vec<(&'static str, Key32)> = Vec::new();
        match s("encryptedBy") {
            Some(by) => {
                keys.push(("per-user", self.per_user(by)));
                if let Some(salt) = salt {
                    keys.push(("salted", Self::salted(by, salt)));
                }
                keys.push(("fallback", self.fallback(by)));
            }
            None if s("encryptionType") == Some("per-user") => {}
            None => keys.push(("legacy", self.legacy())),
        }
        for (name, key) in keys {
            if let Some(plain) = parts.open(&key) {
                return Ok((decode_plaintext(&plain)?, name));
            }
        }
        Err(CryptoError::NoKey)
    }
}

/// The plaintext JSON, parsed, and parsed again when it is a string (the
/// original encoded twice), to the record's `data` object.
fn decode_plaintext(plain: &str) -> Result<Value, CryptoError> {
    let mut v: Value = serde_json::from_str(plain).map_err(|_| CryptoError::Malformed("plaintext is not JSON"))?;
    for _ in 0..2 {
        match v {
            Value::String(s) => v = serde_json::from_str(&s).map_err(|_| CryptoError::Malformed("plaintext is not JSON"))?,
            _ => break,
        }
    }
    if v.is_object() {
        Ok(v)
    } else {
        Err(CryptoError::Malformed("plaintext is not an object"))
    }
}

struct Parts {
    encrypted: Vec<u8>,
    iv: [u8; 12],
    tag: [u8; 16],
}

impl Parts {
    fn of(data: &Value) -> Result<Self, CryptoError> {
        let field = |k: &str, what| data.get(k).and_then(Value::as_str).ok_or(CryptoError::Malformed(what)).and_then(|s| B64.decode(s).map_err(|_| CryptoError::Malformed(what)));
        Ok(Parts {
            encrypted: field("encrypted", "encrypted is not base64")?,
            iv: field("iv", "iv is not base64")?.try_into().map_err(|_| CryptoError::Malformed("iv is not 12 bytes"))?,
            tag: field("tag", "tag is not base64")?.try_into().map_err(|_| CryptoError::Malformed("tag is not 16 bytes"))?,
        })
    }

    fn open(&self, key: &[u8; 32]) -> Option<Zeroizing<String>> {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
        let mut buf = self.encrypted.clone();
        cipher.decrypt_in_place_detached(Nonce::from_slice(&self.iv), b"", &mut buf, Tag::from_slice(&self.tag)).ok()?;
        String::from_utf8(buf).ok().map(Zeroizing::new)
    }
}

/// Whether a node's `meta` says its `data` is encrypted.
pub fn is_encrypted(meta: Option<&Value>) -> bool {
    meta.and_then(|m| m.get("encrypted")).and_then(Value::as_bool).unwrap_or(false)
}

impl BoundSource for Keys {
    fn report(&self, out: &mut Vec<BoundReport>) {
        out.push(BoundReport {
            name: "gun_key_cache",
            unit: "keys",
            capacity: KEY_CACHE as u64,
            fill: self.cache.lock().unwrap_or_else(|p| p.into_inner()).len() as u64,
            config: "const gun::crypto::KEY_CACHE",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 test case 1 (first 32 bytes of its OKM).
    #[test]
    fn hkdf_rfc5869() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        assert_eq!(hex::encode(&hkdf32(&salt, &ikm, &info)[..]), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
    }

    #[test]
    fn round_trip_and_isolation() {
        let keys = Keys::new(b"deployment secret");
        let data = json!({"basic": {"name": "plan"}, "mealPlan": {"meals": ["a", "b"]}});
        let (enc, meta) = keys.encrypt("02abc", &data).unwrap();
        assert_eq!(meta["encryptedBy"], json!("02abc"));
        assert_eq!(keys.decrypt(&enc, &meta, None).unwrap(), (data.clone(), "per-user"));
        // another deployment's secret cannot open it, nor can the public fallback
        assert_eq!(Keys::new(b"other").decrypt(&enc, &meta, None).unwrap_err(), CryptoError::NoKey);
        // the wrong owner named cannot either
        let mut m2 = meta.clone();
        m2.insert("encryptedBy".into(), json!("02def"));
        assert_eq!(keys.decrypt(&enc, &m2, None).unwrap_err(), CryptoError::NoKey);
        // tampering fails the tag
        let mut t = enc.clone();
        t["encrypted"] = json!(B64.encode(b"xxxxxxxxxxxx"));
        assert!(keys.decrypt(&t, &meta, None).is_err());
        assert!(matches!(keys.decrypt(&json!({"iv": 1}), &meta, None), Err(CryptoError::Malformed(_))));
        let mut org = meta.clone();
        org.insert("encryptionType".into(), json!("organization"));
        assert_eq!(keys.decrypt(&enc, &org, None).unwrap_err(), CryptoError::NoKey);
    }
}
