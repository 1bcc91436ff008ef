//! Password hashes. New hashes are Argon2id PHC strings with the OWASP parameters
//! ([`M_COST_KIB`], [`T_COST`], [`P_COST`]) and a random salt. Verification also
//! accepts the original's bcrypt hashes (`$2b$10$…`, and `$2a$`/`$2y$`) so imported
//! users can log in; [`needs_rehash`] tells login to replace those (and weaker
//! Argon2 hashes) with a fresh [`hash`] once the password is known to be right.
//!
//! Bounds: passwords longer than [`MAX_PASSWORD_BYTES`] are neither hashed nor
//! verified; a stored hash asking for more work than [`MAX_VERIFY_M_COST_KIB`],
//! [`MAX_VERIFY_T_COST`], [`MAX_VERIFY_P_COST`] or [`MAX_BCRYPT_COST`] does not
//! verify, so a bad document cannot stall a worker. Each hash or verify costs
//! ~19 MiB and tens of milliseconds: callers run it on the blocking pool under a
//! concurrency bound.
//!
//! Unknown accounts: verify the password against [`dummy_hash`] and ignore the
//! result, so "no such user" costs as long as "wrong password".
//!
//! bcrypt compatibility: like the original's bcrypt 5.1.1, only the first 72 bytes
//! of a password count against a bcrypt hash.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Argon2id memory cost of new hashes, KiB (OWASP: 19 MiB).
pub const M_COST_KIB: u32 = 19_456;
/// Argon2id passes of new hashes (OWASP: 2).
pub const T_COST: u32 = 2;
/// Argon2id lanes of new hashes (OWASP: 1).
pub const P_COST: u32 = 1;
/// Hash output bytes of new hashes.
pub const OUTPUT_BYTES: usize = 32;
/// Random salt bytes of new hashes.
pub const SALT_BYTES: usize = 16;
/// Bound: bytes of a password we hash or verify. Longer ones are refused (hash)
/// or never match (verify); no human types 1 KiB.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Bound: Argon2 memory cost a stored hash may ask of [`verify`], KiB (256 MiB).
pub const MAX_VERIFY_M_COST_KIB: u32 = 262_144;
/// Bound: Argon2 passes a stored hash may ask of [`verify`].
pub const MAX_VERIFY_T_COST: u32 = 16;
/// Bound: Argon2 lanes a stored hash may ask of [`verify`].
pub const MAX_VERIFY_P_COST: u32 = 8;
/// Bound: bcrypt cost a stored hash may ask of [`verify`] (the original used 10;
/// each step doubles the time).
pub const MAX_BCRYPT_COST: u32 = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the operating system's random source failed")]
    Randomness,
    #[error("password hashing failed")]
    Hash,
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_BYTES)).map_err(|_| PasswordError::Hash)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A new Argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|_| PasswordError::Randomness)?;
    hash_with_salt(password, &salt)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(salt).map_err(|_| PasswordError::Hash)?;
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Whether `password` matches `stored` (Argon2 PHC or bcrypt). Anything
/// unparseable, unsupported or past the bounds is `false`, never a panic.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    if let Some(cost) = bcrypt_cost(stored) {
        return cost <= MAX_BCRYPT_COST && bcrypt::verify(password, stored).unwrap_or(false);
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_M_COST_KIB || params.t_cost() > MAX_VERIFY_T_COST || params.p_cost() > MAX_VERIFY_P_COST {
        return false;
    }
    // Argon2::default() takes algorithm, version and parameters from the PHC string.
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// Whether a stored hash should be replaced by a fresh [`hash`] at the next
/// successful login: bcrypt, another Argon2 variant or version, parameters weaker
/// than today's, or anything unparseable.
pub fn needs_rehash(stored: &str) -> bool {
    if bcrypt_cost(stored).is_some() {
        return true;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT || parsed.version != Some(Version::V0x13.into()) {
        return true;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    params.m_cost() < M_COST_KIB
        || params.t_cost() < T_COST
        || params.p_cost() < P_COST
        || parsed.hash.is_none_or(|h| h.len() < OUTPUT_BYTES)
}

/// A fixed valid hash with today's parameters, computed once: verify against it
/// when the account does not exist, and ignore the result.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // Constant inputs with valid parameters: hashing cannot fail (tested), and
        // if it somehow did, an empty string still makes `verify` return false.
        hash_with_salt("oipd-dummy-password", b"oipd-dummy-salt!").unwrap_or_default()
    })
}

/// The cost of a `$2a$`/`$2b$`/`$2y$` bcrypt hash, `None` if it is not one.
fn bcrypt_cost(stored: &str) -> Option<u32> {
    let rest = ["$2a$", "$2b$", "$2y$"].iter().find_map(|p| stored.strip_prefix(p))?;
    let cost = rest.get(..2)?;
    if rest.get(2..3) != Some("$") || !cost.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    cost.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by the original's bcrypt 5.1.1 (node): hashSync(password, 10).
    const NODE_BCRYPT_2B: &str = "$2b$10$DL/058OWJfmDNlIsXTkrbu2M5nQ287Am0kXjtiwtu6VgTDHEjviki";
    const NODE_BCRYPT_2B_PASSWORD: &str = "correct horse battery staple";
    /// bcrypt 5.1.1: hashSync("hunter2", genSaltSync(10, "a")).
    const NODE_BCRYPT_2A: &str = "$2a$10$W57CWQ2ryxYMvlj7OLhIfuQh2LEachLltPFuxRH8zhMyt4jdpZqzG";
    /// bcrypt 5.1.1: hashSync("x".repeat(80), 10) — bcrypt reads 72 bytes.
    const NODE_BCRYPT_LONG: &str = "$2b$10$tpfPVtv16R/M/flIJOBeUe.cUCH0OcOQIQE2487QCdczjIISCV1NC";

    #[test]
    fn argon2_round_trip() {
        let h = hash("s3cret pass").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("s3cret pass", &h));
        assert!(!verify("s3cret pasS", &h));
        assert!(!verify("", &h));
        assert_ne!(hash("s3cret pass").expect("hash"), h, "random salt");
        assert!(!needs_rehash(&h));
    }

    #[test]
    fn bcrypt_from_the_crate() {
        let h = bcrypt::hash("hunter2", 10).expect("bcrypt");
        assert!(h.starts_with("$2b$10$"));
        assert!(verify("hunter2", &h));
        assert!(!verify("hunter3", &h));
        assert!(needs_rehash(&h));
    }

    #[test]
    fn bcrypt_from_node() {
        assert!(verify(NODE_BCRYPT_2B_PASSWORD, NODE_BCRYPT_2B));
        assert!(!verify("correct horse battery stapler", NODE_BCRYPT_2B));
        assert!(verify("hunter2", NODE_BCRYPT_2A));
        assert!(!verify("Hunter2", NODE_BCRYPT_2A));
        // $2y$ is the same algorithm under PHP's name
        assert!(verify("hunter2", &NODE_BCRYPT_2A.replacen("$2a$", "$2y$", 1)));
        // 72-byte truncation, as the original
        assert!(verify(&"x".repeat(80), NODE_BCRYPT_LONG));
        assert!(verify(&"x".repeat(72), NODE_BCRYPT_LONG));
        assert!(!verify(&"x".repeat(71), NODE_BCRYPT_LONG));
        for h in [NODE_BCRYPT_2B, NODE_BCRYPT_2A] {
            assert!(needs_rehash(h));
        }
    }

    #[test]
    fn garbage_is_false_not_panic() {
        for g in [
            "",
            "$",
            "$2b$",
            "$2b$10$",
            "$2b$xx$abc",
            "$2b$10$short",
            "$2b$1",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$$",
            "$argon2id$v=19$m=abc,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA",
            "plaintext",
            "$2b$10$DL/058OWJfmDNlIsXTkrbu2M5nQ287Am0kXjtiwtu6VgTDHEjvik\u{e9}",
        ] {
            assert!(!verify("hunter2", g), "{g:?}");
            assert!(needs_rehash(g), "{g:?}");
        }
    }

    #[test]
    fn work_bounds() {
        // a bcrypt hash with an absurd cost is refused without running it
        let expensive = NODE_BCRYPT_2B.replacen("$10$", "$31$", 1);
        assert!(!verify(NODE_BCRYPT_2B_PASSWORD, &expensive));
        let heavy = hash("pw").expect("hash").replacen("m=19456", "m=4194304", 1);
        assert!(!verify("pw", &heavy));
        assert_eq!(hash(&"p".repeat(MAX_PASSWORD_BYTES + 1)).unwrap_err(), PasswordError::TooLong);
        assert!(!verify(&"p".repeat(MAX_PASSWORD_BYTES + 1), dummy_hash()));
    }

    #[test]
    fn weaker_argon2_needs_rehash() {
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(4096, 1, 1, Some(32)).expect("params"));
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let h = weak.hash_password(b"pw", &salt).expect("hash").to_string();
        assert!(verify("pw", &h), "weaker hashes still verify");
        assert!(needs_rehash(&h));
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default());
        let h = argon2i.hash_password(b"pw", &salt).expect("hash").to_string();
        assert!(verify("pw", &h));
        assert!(needs_rehash(&h));
    }

    #[test]
    fn dummy_hash_is_a_real_current_hash() {
        let d = dummy_hash();
        assert!(d.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{d}");
        assert!(!needs_rehash(d));
        assert!(verify("oipd-dummy-password", d));
        assert!(!verify("anything", d));
        assert!(std::ptr::eq(d, dummy_hash()), "computed once");
    }
}
