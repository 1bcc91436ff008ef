//! Wallet keys, derived exactly as the original node derives them (routes/user.js,
//! bip39 3.1.0 + bip32 4.0.0 on secp256k1): a 12-word English BIP-39 mnemonic from
//! 128 bits of OS randomness; seed = BIP-39 `mnemonicToSeed` with an empty
//! passphrase; BIP-32 master key from the seed; the account key at
//! [`DERIVATION_PATH`]. The public key is the 33-byte compressed SEC1 point as 66
//! lowercase hex characters (the `publicKey` of users and JWTs); the private key is
//! 32 bytes as 64 hex characters.
//!
//! Bounds: mnemonic input is refused past [`MAX_MNEMONIC_INPUT_BYTES`] before any
//! parsing. Secrets (mnemonic, seed, private key) live in zeroizing buffers and are
//! wiped when dropped; `Debug` never shows them.
//!
//! Not here: encrypting the secrets at rest (`vault`), storing users, HTTP.

use std::fmt::{self, Write as _};

use bip32::{DerivationPath, XPrv};
use bip39::{Language, Mnemonic};
use zeroize::Zeroizing;

/// The path the original derives every user key at (`keyDerivationPath` of its users).
pub const DERIVATION_PATH: &str = "m/44'/0'/0'/0/0";

/// Words of a generated mnemonic (the original's `bip39.generateMnemonic()` default).
pub const MNEMONIC_WORDS: usize = 12;

/// Entropy behind a generated mnemonic: 128 bits gives [`MNEMONIC_WORDS`] words.
pub const ENTROPY_BYTES: usize = 16;

/// Bytes of a secp256k1 private key.
pub const PRIVATE_KEY_BYTES: usize = 32;

/// Bound: bytes of mnemonic input looked at. 24 words of at most 8 letters with
/// separators is under 220 bytes; anything far longer is refused unparsed.
pub const MAX_MNEMONIC_INPUT_BYTES: usize = 1024;

/// Why a mnemonic was refused or keys could not be made. Messages never contain
/// the mnemonic or any of its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("mnemonic is longer than {MAX_MNEMONIC_INPUT_BYTES} bytes")]
    TooLong,
    #[error("mnemonic has {0} words; BIP-39 needs 12, 15, 18, 21 or 24")]
    WordCount(usize),
    #[error("mnemonic word number {0} is not in the English BIP-39 word list")]
    UnknownWord(usize),
    #[error("mnemonic checksum does not match")]
    Checksum,
    #[error("mnemonic is not valid BIP-39")]
    Invalid,
    #[error("the operating system's random source failed")]
    Randomness,
    #[error("BIP-32 key derivation failed")]
    Derivation,
}

/// A user's wallet: the mnemonic and the key pair derived from it at
/// [`DERIVATION_PATH`]. The secret parts are wiped from memory on drop.
pub struct Wallet {
    mnemonic: Zeroizing<String>,
    private_key_hex: Zeroizing<String>,
    public_key_hex: String,
}

impl Wallet {
    /// The mnemonic, canonical: lowercase words separated by single spaces.
    pub fn mnemonic(&self) -> &str {
        &self.mnemonic
    }

    /// The secp256k1 private key, 64 lowercase hex characters.
    pub fn private_key_hex(&self) -> &str {
        &self.private_key_hex
    }

    /// The compressed SEC1 public key, 66 lowercase hex characters.
    pub fn public_key_hex(&self) -> &str {
        &self.public_key_hex
    }
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("mnemonic", &"<redacted>")
            .field("private_key_hex", &"<redacted>")
            .field("public_key_hex", &self.public_key_hex)
            .finish()
    }
}

/// A new wallet from 128 bits of OS randomness (12 English words).
pub fn generate() -> Result<Wallet, KeyError> {
    let mut entropy = Zeroizing::new([0u8; ENTROPY_BYTES]);
    getrandom::fill(&mut entropy[..]).map_err(|_| KeyError::Randomness)?;
    let mnemonic = Mnemonic::from_entropy_in(Language::English, &entropy[..]).map_err(map_bip39)?;
    derive(&mnemonic)
}

/// The wallet of an existing mnemonic (import). Whitespace is normalised (any run
/// of whitespace is one separator, ends trimmed) and words are lowercased; then the
/// English word list and the checksum are checked. Any valid BIP-39 length is
/// accepted (12–24 words), as the original's `validateMnemonic`; for every input the
/// original accepts, the keys are the ones it derived.
pub fn from_mnemonic(input: &str) -> Result<Wallet, KeyError> {
    if input.len() > MAX_MNEMONIC_INPUT_BYTES {
        return Err(KeyError::TooLong);
    }
    let lower = Zeroizing::new(input.to_lowercase());
    // Capacity up front: the buffer never reallocates, so no unwiped copy is left.
    let mut canonical = Zeroizing::new(String::with_capacity(lower.len()));
    for (i, word) in lower.split_whitespace().enumerate() {
        if i > 0 {
            canonical.push(' ');
        }
        canonical.push_str(word);
    }
    let mnemonic = Mnemonic::parse_in(Language::English, canonical.as_str()).map_err(map_bip39)?;
    derive(&mnemonic)
}

fn map_bip39(e: bip39::Error) -> KeyError {
    match e {
        bip39::Error::BadWordCount(n) => KeyError::WordCount(n),
        // bip39 counts words from 0; people count from 1.
        bip39::Error::UnknownWord(i) => KeyError::UnknownWord(i.saturating_add(1)),
        bip39::Error::InvalidChecksum => KeyError::Checksum,
        _ => KeyError::Invalid,
    }
}

/// A zeroizing copy of `s`, allocated once at its final size.
fn secret_string(s: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(s.len()));
    out.push_str(s);
    out
}

/// Seed (empty passphrase) → BIP-32 master → [`DERIVATION_PATH`].
fn derive(mnemonic: &Mnemonic) -> Result<Wallet, KeyError> {
    let seed = Zeroizing::new(mnemonic.to_seed_normalized(""));
    let path: DerivationPath = DERIVATION_PATH.parse().map_err(|_| KeyError::Derivation)?;
    // XPrv wraps a k256 signing key, which wipes itself on drop.
    let xprv = XPrv::derive_from_path(&seed[..], &path).map_err(|_| KeyError::Derivation)?;
    let private_key = Zeroizing::new(xprv.to_bytes());
    let mut hex_buf = Zeroizing::new([0u8; 2 * PRIVATE_KEY_BYTES]);
    hex::encode_to_slice(&private_key[..], &mut hex_buf[..]).map_err(|_| KeyError::Derivation)?;
    let private_key_hex = secret_string(std::str::from_utf8(&hex_buf[..]).map_err(|_| KeyError::Derivation)?);
    let public_key_hex = hex::encode(xprv.public_key().to_bytes());
    // Written into a buffer that never reallocates, so no unwiped copy is left.
    let mut words = Zeroizing::new(String::with_capacity(MAX_MNEMONIC_INPUT_BYTES));
    write!(words, "{mnemonic}").map_err(|_| KeyError::Invalid)?;
    Ok(Wallet {
        mnemonic: words,
        private_key_hex,
        public_key_hex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    /// Measured by running the original's locked packages (bip39 3.1.0, bip32 4.0.0).
    const ABANDON_PUBLIC: &str = "03aaeb52dd7494c361049de67cc680e83ebcbbbdbeb13637d92cd845f70308af5e";
    const ABANDON_PRIVATE: &str = "e284129cc0922579a535bbf4d1a3b25773090d28c909bc0fed73b5e0222cc372";

    #[test]
    fn original_vector() {
        let w = from_mnemonic(ABANDON).expect("valid mnemonic");
        assert_eq!(w.public_key_hex(), ABANDON_PUBLIC);
        assert_eq!(w.private_key_hex(), ABANDON_PRIVATE);
        assert_eq!(w.mnemonic(), ABANDON);
    }

    #[test]
    fn seed_is_bip39_with_empty_passphrase() {
        // bip39 3.1.0's mnemonicToSeedSync(ABANDON), as printed by node.
        let m = Mnemonic::parse_in(Language::English, ABANDON).expect("valid");
        assert_eq!(
            hex::encode(m.to_seed_normalized("")),
            "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1\
             9a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4"
        );
    }

    #[test]
    fn whitespace_and_case_are_normalised() {
        let messy = format!("  {}\n", ABANDON.replace(' ', " \t ").replacen("abandon", "ABANDON", 2));
        let w = from_mnemonic(&messy).expect("normalised");
        assert_eq!(w.public_key_hex(), ABANDON_PUBLIC);
        assert_eq!(w.mnemonic(), ABANDON);
    }

    #[test]
    fn invalid_checksum_rejected() {
        let twelve_abandons = ["abandon"; 12].join(" ");
        assert_eq!(from_mnemonic(&twelve_abandons).unwrap_err(), KeyError::Checksum);
    }

    #[test]
    fn wrong_word_count_rejected() {
        let eleven = ["abandon"; 11].join(" ");
        assert_eq!(from_mnemonic(&eleven).unwrap_err(), KeyError::WordCount(11));
        let thirteen = format!("{ABANDON} abandon");
        assert_eq!(from_mnemonic(&thirteen).unwrap_err(), KeyError::WordCount(13));
        assert_eq!(from_mnemonic("").unwrap_err(), KeyError::WordCount(0));
    }

    #[test]
    fn unknown_word_and_oversize_rejected() {
        let bad = ABANDON.replacen("abandon", "xyzzy", 1);
        assert_eq!(from_mnemonic(&bad).unwrap_err(), KeyError::UnknownWord(1));
        let huge = "abandon ".repeat(200);
        assert_eq!(from_mnemonic(&huge).unwrap_err(), KeyError::TooLong);
    }

    #[test]
    fn generated_wallets_round_trip() {
        let a = generate().expect("os randomness");
        let b = generate().expect("os randomness");
        assert_ne!(a.mnemonic(), b.mnemonic());
        for w in [&a, &b] {
            assert_eq!(w.mnemonic().split(' ').count(), MNEMONIC_WORDS);
            assert_eq!(w.private_key_hex().len(), 64);
            assert_eq!(w.public_key_hex().len(), 66);
            assert!(w.public_key_hex().starts_with("02") || w.public_key_hex().starts_with("03"));
            let again = from_mnemonic(w.mnemonic()).expect("own mnemonic is valid");
            assert_eq!(again.public_key_hex(), w.public_key_hex());
            assert_eq!(again.private_key_hex(), w.private_key_hex());
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let w = from_mnemonic(ABANDON).expect("valid");
        let shown = format!("{w:?}");
        assert!(!shown.contains("abandon"));
        assert!(!shown.contains(ABANDON_PRIVATE));
        assert!(shown.contains(ABANDON_PUBLIC));
    }
}
