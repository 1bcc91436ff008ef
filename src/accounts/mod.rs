//! User accounts as plain library code (no HTTP): the pieces the `/api/user/*`
//! routes are built from, and the service that puts them together.
//!
//! - [`keys`]: wallet keys exactly as the original derives them (BIP-39 mnemonic,
//!   BIP-32 `m/44'/0'/0'/0/0` on secp256k1).
//! - [`vault`]: secrets at rest — opens the original's PBKDF2 + AES-GCM format,
//!   seals new secrets under a per-user Argon2id key-encryption key.
//! - [`password`]: password hashes — Argon2id for new ones, the original's bcrypt
//!   accepted and flagged for rehash.
//! - [`limiter`]: bounded login attempt limiting per account and per address.
//! - [`service`]: the use cases of `/api/user/*` over them and the user store.
//!
//! JWTs are `crate::auth`. The costly operations here (Argon2id, PBKDF2, bcrypt)
//! block a core for tens of milliseconds and hold ~19 MiB: callers run them on the
//! blocking pool under a concurrency bound. Nothing here logs or displays a secret.

pub mod keys;
pub mod limiter;
pub mod password;
pub mod service;
pub mod vault;
