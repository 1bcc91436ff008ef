//! Secrets at rest: a user's private key, mnemonic and GUN salt, encrypted under a
//! key derived from the user's password. Two stored formats, both a JSON *string*
//! kept in the user's document:
//!
//! - **The original's** (read only): `{"encrypted","iv","authTag"}`, standard
//!   base64, AES-256-GCM with a 12-byte IV and 16-byte tag, no AAD; the key is
//!   PBKDF2-HMAC-SHA256(password, a fixed per-[`Purpose`] salt string,
//!   [`ORIGINAL_PBKDF2_ITERATIONS`], 32 bytes). We open what the original wrote so
//!   imported users keep their keys; we never write it (fixed salts let one
//!   password guess test every user at once).
//! - **oipd's, version 2**: `{"v":2,"encrypted","iv","authTag"}`, AES-256-GCM with
//!   a random 12-byte IV and AAD = [`Purpose::name`] (a sealed mnemonic cannot be
//!   passed off as a private key), under a per-user key-encryption key ([`Kek`]):
//!   Argon2id(password, a random 16-byte per-user [`KekSalt`]) with the OWASP
//!   parameters. The parameters are part of the format: changing them would need
//!   a version 3.
//!
//! Bounds: a stored value longer than [`MAX_SEALED_BYTES`] is refused before
//! parsing. Deriving a [`Kek`] costs [`KEK_M_COST_KIB`] KiB of memory and tens of
//! milliseconds of one core; so does each PBKDF2 open. Callers run these on the
//! blocking pool under a semaphore, never on the async workers.
//!
//! Errors never carry secrets or the stored text; plaintexts come back in
//! zeroizing buffers.

use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// PBKDF2-HMAC-SHA256 iterations of the original's password-derived keys.
pub const ORIGINAL_PBKDF2_ITERATIONS: u32 = 100_000;
/// AES-256: key bytes (both formats; also the KEK's length).
pub const KEY_BYTES: usize = 32;
/// AES-GCM IV bytes (both formats).
pub const IV_BYTES: usize = 12;
/// AES-GCM tag bytes (both formats).
pub const TAG_BYTES: usize = 16;
/// The `v` of oipd's format.
pub const SEALED_VERSION: u64 = 2;
/// Bytes of a per-user KEK salt.
pub const KEK_SALT_BYTES: usize = 16;
/// Argon2id memory cost of the KEK, KiB (OWASP: 19 MiB).
pub const KEK_M_COST_KIB: u32 = 19_456;
/// Argon2id passes of the KEK (OWASP: 2).
pub const KEK_T_COST: u32 = 2;
/// Argon2id lanes of the KEK (OWASP: 1).
pub const KEK_P_COST: u32 = 1;
/// Bound: bytes of a stored sealed value accepted for parsing. The largest secret
/// is a 24-word mnemonic (< 220 bytes, ~300 in base64); 4 KiB leaves ample room.
pub const MAX_SEALED_BYTES: usize = 4096;

/// What a sealed secret is. Each has its own fixed salt in the original's format
/// and its own AAD in ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    PrivateKey,
    Mnemonic,
    GunSalt,
}

impl Purpose {
    /// The literal PBKDF2 salt the original used for this secret.
    pub const fn original_salt(self) -> &'static str {
        match self {
            Purpose::PrivateKey => "oip-private-key-encryption",
            Purpose::Mnemonic => "oip-mnemonic-encryption",
            Purpose::GunSalt => "oip-salt-encryption",
        }
    }

    /// The name bound into a version-2 seal as its AAD (stored format: never change).
    pub const fn name(self) -> &'static str {
        match self {
            Purpose::PrivateKey => "privateKey",
            Purpose::Mnemonic => "mnemonic",
            Purpose::GunSalt => "gunSalt",
        }
    }
}

/// Why a secret could not be sealed or opened. Never carries the secret, the
/// password or the stored text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// Not a sealed secret of either format (bad JSON, missing field, bad base64,
    /// wrong IV or tag length, oversize).
    #[error("sealed secret is malformed: {0}")]
    Malformed(&'static str),
    /// The original's pre-JSON encryption (values not starting with `{`), which
    /// even the original could no longer open.
    #[error("legacy encrypted secret: cannot be opened")]
    Legacy,
    /// A `v` this build does not know.
    #[error("sealed secret version {0} is not supported")]
    UnsupportedVersion(u64),
    /// Authentication failed: wrong password, wrong purpose, or altered data.
    #[error("wrong password, or the sealed secret is corrupt")]
    WrongPasswordOrCorrupt,
    /// A version-2 value but no KEK salt to derive its key with.
    #[error("sealed secret needs the user's key salt, which is missing")]
    MissingKekSalt,
    #[error("the operating system's random source failed")]
    Randomness,
    #[error("key derivation failed")]
    Kdf,
}

/// A per-user salt for [`Kek::derive`], stored with the user (not secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KekSalt([u8; KEK_SALT_BYTES]);

impl KekSalt {
    /// A fresh random salt (one per user, made when the user's secrets are first sealed).
    pub fn generate() -> Result<Self, VaultError> {
        let mut salt = [0u8; KEK_SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|_| VaultError::Randomness)?;
        Ok(KekSalt(salt))
    }

    pub fn from_bytes(bytes: [u8; KEK_SALT_BYTES]) -> Self {
        KekSalt(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEK_SALT_BYTES] {
        &self.0
    }

    /// Lowercase hex, as stored.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, VaultError> {
        let mut salt = [0u8; KEK_SALT_BYTES];
        hex::decode_to_slice(s, &mut salt).map_err(|_| VaultError::Malformed("key salt is not 32 hex characters"))?;
        Ok(KekSalt(salt))
    }
}

/// A user's key-encryption key: Argon2id of the password and the user's
/// [`KekSalt`]. Derive it once per operation and seal/open every secret with it.
/// Wiped on drop; `Debug` shows nothing.
pub struct Kek(Zeroizing<[u8; KEY_BYTES]>);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// Argon2id(password, salt) with m = [`KEK_M_COST_KIB`], t = [`KEK_T_COST`],
    /// p = [`KEK_P_COST`], 32 bytes out. CPU- and memory-heavy (~19 MiB, tens of
    /// ms): call it from the blocking pool under a concurrency bound.
    pub fn derive(password: &str, salt: &KekSalt) -> Result<Kek, VaultError> {
        let params = argon2::Params::new(KEK_M_COST_KIB, KEK_T_COST, KEK_P_COST, Some(KEY_BYTES))
            .map_err(|_| VaultError::Kdf)?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        argon
            .hash_password_into(password.as_bytes(), salt.as_bytes(), &mut key[..])
            .map_err(|_| VaultError::Kdf)?;
        Ok(Kek(key))
    }

    /// Seal `plaintext` as a version-2 JSON string (random IV, AAD = purpose name).
    pub fn seal(&self, purpose: Purpose, plaintext: &str) -> Result<String, VaultError> {
        let mut iv = [0u8; IV_BYTES];
        getrandom::fill(&mut iv).map_err(|_| VaultError::Randomness)?;
        let (encrypted, tag) = encrypt(&self.0, &iv, purpose.name().as_bytes(), plaintext)?;
        let wire = SealedV2 {
            v: SEALED_VERSION,
            encrypted: B64.encode(encrypted),
            iv: B64.encode(iv),
            auth_tag: B64.encode(tag),
        };
        serde_json::to_string(&wire).map_err(|_| VaultError::Malformed("cannot serialize"))
    }

    /// Open a version-2 value sealed for `purpose` with this key.
    pub fn open(&self, purpose: Purpose, stored: &str) -> Result<Zeroizing<String>, VaultError> {
        match parse(stored)? {
            Stored::V2(parts) => decrypt(&self.0, purpose.name().as_bytes(), &parts),
            Stored::Original(_) | Stored::MigrationPlaceholder(_) => {
                Err(VaultError::Malformed("not a version-2 sealed secret"))
            }
        }
    }
}

/// Open a stored secret of either format (imports and first logins of imported
/// users; the caller then re-seals it with [`Kek::seal`]):
/// with `"v":2` the key is [`Kek::derive`]`(password, kek_salt)`; without `v` it
/// is the original's PBKDF2 of the password and the purpose's fixed salt. For
/// [`Purpose::GunSalt`] the original's migration placeholder
/// `{"isMigrationPlaceholder":true,"plaintextSalt":…}` yields its plaintext salt,
/// as the original's login did. Each call derives a key: to open several v2
/// secrets, derive one [`Kek`] instead.
pub fn open_any(
    password: &str,
    kek_salt: Option<&KekSalt>,
    purpose: Purpose,
    stored: &str,
) -> Result<Zeroizing<String>, VaultError> {
    match parse(stored)? {
        Stored::V2(parts) => {
            let salt = kek_salt.ok_or(VaultError::MissingKekSalt)?;
            Kek::derive(password, salt)?.open_parts(purpose, &parts)
        }
        Stored::Original(parts) => {
            let key = original_key(password, purpose);
            decrypt(&key, &[], &parts)
        }
        Stored::MigrationPlaceholder(salt) if purpose == Purpose::GunSalt => Ok(salt),
        Stored::MigrationPlaceholder(_) => Err(VaultError::Malformed("placeholder for a secret other than the GUN salt")),
    }
}

impl Kek {
    fn open_parts(&self, purpose: Purpose, parts: &Parts) -> Result<Zeroizing<String>, VaultError> {
        decrypt(&self.0, purpose.name().as_bytes(), parts)
    }
}

/// The original's key: PBKDF2-HMAC-SHA256(password, fixed salt, 100000, 32).
fn original_key(password: &str, purpose: Purpose) -> Zeroizing<[u8; KEY_BYTES]> {
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        purpose.original_salt().as_bytes(),
        ORIGINAL_PBKDF2_ITERATIONS,
        &mut key[..],
    );
    key
}

#[derive(Serialize)]
struct SealedV2 {
    v: u64,
    encrypted: String,
    iv: String,
    #[serde(rename = "authTag")]
    auth_tag: String,
}

/// Every shape we read, fields optional so the decision is ours.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    v: Option<u64>,
    encrypted: Option<String>,
    iv: Option<String>,
    auth_tag: Option<String>,
    is_migration_placeholder: Option<bool>,
    plaintext_salt: Option<String>,
}

impl Drop for Wire {
    fn drop(&mut self) {
        if let Some(s) = self.plaintext_salt.as_mut() {
            s.zeroize();
        }
    }
}

/// Decoded ciphertext, IV and tag.
struct Parts {
    encrypted: Vec<u8>,
    iv: [u8; IV_BYTES],
    tag: [u8; TAG_BYTES],
}

enum Stored {
    V2(Parts),
    Original(Parts),
    MigrationPlaceholder(Zeroizing<String>),
}

fn parse(stored: &str) -> Result<Stored, VaultError> {
    if stored.len() > MAX_SEALED_BYTES {
        return Err(VaultError::Malformed("longer than the bound"));
    }
    if !stored.trim_start().starts_with('{') {
        return Err(VaultError::Legacy);
    }
    let mut wire: Wire =
        serde_json::from_str(stored).map_err(|_| VaultError::Malformed("not the JSON of a sealed secret"))?;
    if wire.is_migration_placeholder == Some(true) {
        return match wire.plaintext_salt.take() {
            Some(salt) => Ok(Stored::MigrationPlaceholder(Zeroizing::new(salt))),
            None => Err(VaultError::Malformed("placeholder without plaintextSalt")),
        };
    }
    let encrypted = wire.encrypted.as_deref().ok_or(VaultError::Malformed("missing encrypted"))?;
    let encrypted = B64.decode(encrypted).map_err(|_| VaultError::Malformed("encrypted is not base64"))?;
    let iv = wire.iv.as_deref().ok_or(VaultError::Malformed("missing iv"))?;
    let iv = decode_fixed::<IV_BYTES>(iv, "iv is not 12 base64 bytes")?;
    let tag = wire.auth_tag.as_deref().ok_or(VaultError::Malformed("missing authTag"))?;
    let tag = decode_fixed::<TAG_BYTES>(tag, "authTag is not 16 base64 bytes")?;
    let parts = Parts { encrypted, iv, tag };
    match wire.v {
        None => Ok(Stored::Original(parts)),
        Some(SEALED_VERSION) => Ok(Stored::V2(parts)),
        Some(v) => Err(VaultError::UnsupportedVersion(v)),
    }
}

fn decode_fixed<const N: usize>(b64: &str, what: &'static str) -> Result<[u8; N], VaultError> {
    let bytes = B64.decode(b64).map_err(|_| VaultError::Malformed(what))?;
    bytes.try_into().map_err(|_| VaultError::Malformed(what))
}

/// AES-256-GCM open; the plaintext must be UTF-8 (every secret is a string).
fn decrypt(key: &[u8; KEY_BYTES], aad: &[u8], parts: &Parts) -> Result<Zeroizing<String>, VaultError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let mut buf = parts.encrypted.clone();
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(&parts.iv), aad, &mut buf, Tag::from_slice(&parts.tag))
        .map_err(|_| VaultError::WrongPasswordOrCorrupt)?;
    match String::from_utf8(buf) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(VaultError::Malformed("plaintext is not UTF-8"))
        }
    }
}

/// AES-256-GCM seal: (ciphertext, tag).
fn encrypt(
    key: &[u8; KEY_BYTES],
    iv: &[u8; IV_BYTES],
    aad: &[u8],
    plaintext: &str,
) -> Result<(Vec<u8>, [u8; TAG_BYTES]), VaultError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let mut buf = plaintext.as_bytes().to_vec();
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(iv), aad, &mut buf)
        .map_err(|_| VaultError::Malformed("plaintext too long"))?;
    let mut tag_bytes = [0u8; TAG_BYTES];
    tag_bytes.copy_from_slice(&tag);
    Ok((buf, tag_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "hunter2";
    const VECTOR_IV: [u8; IV_BYTES] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const PRIVATE_KEY: &str = "e284129cc0922579a535bbf4d1a3b25773090d28c909bc0fed73b5e0222cc372";
    const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    /// Written by the original's code (node crypto), password `hunter2`, fixed IV.
    const ORIGINAL_PRIVATE_KEY: &str = r#"{"encrypted":"rm7MYOM3YhH07FYsPrZHj/uXLsCh3udD2VZVwgzm/7zPo88I21mLcVe2LfQtt9YPACxrC7dHH5ktqi0fmY2DMQ==","iv":"AAECAwQFBgcICQoL","authTag":"ozyJzyc6oA+bX5GQmu/k5w=="}"#;
    const ORIGINAL_MNEMONIC: &str = r#"{"encrypted":"h0oO+gMAXFWmCFdSrFjsU1mboUiRWqQUP/PeH24xPkkjEQubYSzgBiuFmkoHFVkwj315Ac6mpaASQtVpGYsJYQqQceR1xB8VngIDP1uLiXgq7WfLNFtv3KXMkUhP","iv":"AAECAwQFBgcICQoL","authTag":"BhDJAcrMAEjYf0JIxiYDuw=="}"#;
    const ORIGINAL_GUN_SALT: &str = r#"{"encrypted":"hfp4tFkpK9zaJAKohCr9Y4mcqwZ7mjYiPdpxHyi1rtmfk6mcLKT3rkx62GEZ4bk0D0CaltyGpran6zdHokICKA==","iv":"AAECAwQFBgcICQoL","authTag":"xmkWK+p4xtuE6WfYb38L8A=="}"#;

    fn gun_salt() -> String {
        "00".repeat(32)
    }

    fn vectors() -> [(Purpose, &'static str, String); 3] {
        [
            (Purpose::PrivateKey, ORIGINAL_PRIVATE_KEY, PRIVATE_KEY.to_owned()),
            (Purpose::Mnemonic, ORIGINAL_MNEMONIC, MNEMONIC.to_owned()),
            (Purpose::GunSalt, ORIGINAL_GUN_SALT, gun_salt()),
        ]
    }

    /// The original's encryption, with a chosen IV (tests only: we never write it).
    fn seal_original_with_iv(password: &str, purpose: Purpose, plaintext: &str, iv: &[u8; IV_BYTES]) -> String {
        let key = original_key(password, purpose);
        let (ct, tag) = encrypt(&key, iv, &[], plaintext).expect("encrypt");
        format!(
            r#"{{"encrypted":"{}","iv":"{}","authTag":"{}"}}"#,
            B64.encode(ct),
            B64.encode(iv),
            B64.encode(tag)
        )
    }

    fn salt() -> KekSalt {
        KekSalt::from_bytes(*b"0123456789abcdef")
    }

    #[test]
    fn original_vectors_decrypt() {
        for (purpose, stored, plain) in vectors() {
            let got = open_any(PASSWORD, None, purpose, stored).expect("original format opens");
            assert_eq!(got.as_str(), plain, "{purpose:?}");
        }
    }

    #[test]
    fn original_vectors_reencrypt_exactly() {
        for (purpose, stored, plain) in vectors() {
            assert_eq!(seal_original_with_iv(PASSWORD, purpose, &plain, &VECTOR_IV), stored, "{purpose:?}");
        }
    }

    #[test]
    fn original_format_wrong_password_or_purpose_fails() {
        assert_eq!(
            open_any("hunter3", None, Purpose::PrivateKey, ORIGINAL_PRIVATE_KEY).unwrap_err(),
            VaultError::WrongPasswordOrCorrupt
        );
        // the fixed salt differs per purpose, so the key does too
        assert_eq!(
            open_any(PASSWORD, None, Purpose::Mnemonic, ORIGINAL_PRIVATE_KEY).unwrap_err(),
            VaultError::WrongPasswordOrCorrupt
        );
    }

    #[test]
    fn v2_round_trip() {
        let kek = Kek::derive(PASSWORD, &salt()).expect("kek");
        for (purpose, _, plain) in vectors() {
            let sealed = kek.seal(purpose, &plain).expect("seal");
            let v: serde_json::Value = serde_json::from_str(&sealed).expect("json");
            assert_eq!(v["v"], 2);
            let keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
            assert_eq!(keys, ["v", "encrypted", "iv", "authTag"]);
            assert_eq!(kek.open(purpose, &sealed).expect("open").as_str(), plain);
            // open_any recognises the format and derives the same KEK
            assert_eq!(open_any(PASSWORD, Some(&salt()), purpose, &sealed).expect("open_any").as_str(), plain);
        }
        // a random IV per seal
        assert_ne!(kek.seal(Purpose::GunSalt, "x").expect("seal"), kek.seal(Purpose::GunSalt, "x").expect("seal"));
    }

    #[test]
    fn v2_wrong_password_fails() {
        let sealed = Kek::derive(PASSWORD, &salt()).and_then(|k| k.seal(Purpose::PrivateKey, PRIVATE_KEY)).expect("seal");
        let wrong = Kek::derive("hunter3", &salt()).expect("kek");
        assert_eq!(wrong.open(Purpose::PrivateKey, &sealed).unwrap_err(), VaultError::WrongPasswordOrCorrupt);
        // same password, another user's salt
        let other = Kek::derive(PASSWORD, &KekSalt::from_bytes([7; KEK_SALT_BYTES])).expect("kek");
        assert_eq!(other.open(Purpose::PrivateKey, &sealed).unwrap_err(), VaultError::WrongPasswordOrCorrupt);
        assert_eq!(
            open_any(PASSWORD, None, Purpose::PrivateKey, &sealed).unwrap_err(),
            VaultError::MissingKekSalt
        );
    }

    #[test]
    fn v2_purpose_swap_fails() {
        let kek = Kek::derive(PASSWORD, &salt()).expect("kek");
        let sealed_mnemonic = kek.seal(Purpose::Mnemonic, MNEMONIC).expect("seal");
        assert_eq!(kek.open(Purpose::PrivateKey, &sealed_mnemonic).unwrap_err(), VaultError::WrongPasswordOrCorrupt);
        assert_eq!(kek.open(Purpose::GunSalt, &sealed_mnemonic).unwrap_err(), VaultError::WrongPasswordOrCorrupt);
    }

    #[test]
    fn v2_tampering_fails() {
        let kek = Kek::derive(PASSWORD, &salt()).expect("kek");
        let sealed = kek.seal(Purpose::PrivateKey, PRIVATE_KEY).expect("seal");
        let mut v: serde_json::Value = serde_json::from_str(&sealed).expect("json");
        for field in ["encrypted", "iv", "authTag"] {
            let mut bytes = B64.decode(v[field].as_str().expect("string")).expect("b64");
            bytes[0] ^= 1;
            let mut t = v.clone();
            t[field] = B64.encode(&bytes).into();
            assert_eq!(
                kek.open(Purpose::PrivateKey, &t.to_string()).unwrap_err(),
                VaultError::WrongPasswordOrCorrupt,
                "{field}"
            );
        }
        // dropping the version turns it into the original's format: no longer opens
        v.as_object_mut().expect("object").remove("v");
        assert!(kek.open(Purpose::PrivateKey, &v.to_string()).is_err());
        assert_eq!(
            open_any(PASSWORD, Some(&salt()), Purpose::PrivateKey, &v.to_string()).unwrap_err(),
            VaultError::WrongPasswordOrCorrupt
        );
    }

    #[test]
    fn malformed_fails_cleanly() {
        let kek = Kek::derive(PASSWORD, &salt()).expect("kek");
        let cases = [
            "{",
            "{}",
            "{\"v\":null}",
            r#"{"v":2}"#,
            r#"{"v":"2","encrypted":"","iv":"AAECAwQFBgcICQoL","authTag":"ozyJzyc6oA+bX5GQmu/k5w=="}"#,
            r#"{"v":2,"encrypted":"!!","iv":"AAECAwQFBgcICQoL","authTag":"ozyJzyc6oA+bX5GQmu/k5w=="}"#,
            r#"{"v":2,"encrypted":"","iv":"AAEC","authTag":"ozyJzyc6oA+bX5GQmu/k5w=="}"#,
            r#"{"v":2,"encrypted":"","iv":"AAECAwQFBgcICQoL","authTag":"ozyJ"}"#,
            r#"{"v":2,"encrypted":5,"iv":"AAECAwQFBgcICQoL","authTag":"ozyJzyc6oA+bX5GQmu/k5w=="}"#,
        ];
        for c in cases {
            assert!(matches!(kek.open(Purpose::Mnemonic, c), Err(VaultError::Malformed(_))), "{c}");
            assert!(matches!(open_any(PASSWORD, Some(&salt()), Purpose::Mnemonic, c), Err(VaultError::Malformed(_))), "{c}");
        }
        // the original's rule: a value not starting with `{` is its pre-JSON format
        for legacy in ["a1b2c3:deadbeef", "[]", ""] {
            assert_eq!(kek.open(Purpose::Mnemonic, legacy).unwrap_err(), VaultError::Legacy);
        }
        let v3 = r#"{"v":3,"encrypted":"","iv":"AAECAwQFBgcICQoL","authTag":"ozyJzyc6oA+bX5GQmu/k5w=="}"#;
        assert_eq!(kek.open(Purpose::Mnemonic, v3).unwrap_err(), VaultError::UnsupportedVersion(3));
        let huge = format!(r#"{{"encrypted":"{}"}}"#, "A".repeat(MAX_SEALED_BYTES));
        assert!(matches!(kek.open(Purpose::Mnemonic, &huge), Err(VaultError::Malformed(_))));
        // the original format is not accepted where v2 is required
        assert!(matches!(kek.open(Purpose::PrivateKey, ORIGINAL_PRIVATE_KEY), Err(VaultError::Malformed(_))));
    }

    #[test]
    fn migration_placeholder_only_for_gun_salt() {
        let p = format!(r#"{{"isMigrationPlaceholder":true,"plaintextSalt":"{}"}}"#, gun_salt());
        assert_eq!(open_any(PASSWORD, None, Purpose::GunSalt, &p).expect("placeholder").as_str(), gun_salt());
        assert!(matches!(open_any(PASSWORD, None, Purpose::PrivateKey, &p), Err(VaultError::Malformed(_))));
    }

    #[test]
    fn salts_and_debug() {
        let s = KekSalt::generate().expect("random");
        assert_ne!(s, KekSalt::generate().expect("random"));
        assert_eq!(KekSalt::from_hex(&s.to_hex()).expect("hex"), s);
        assert!(KekSalt::from_hex("abcd").is_err());
        let kek = Kek::derive(PASSWORD, &s).expect("kek");
        assert_eq!(format!("{kek:?}"), "Kek(<redacted>)");
        // error messages carry no secret
        let e = open_any("hunter3", None, Purpose::PrivateKey, ORIGINAL_PRIVATE_KEY).unwrap_err();
        assert!(!e.to_string().contains("hunter"));
    }
}
