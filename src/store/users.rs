//! The user-account store: one document per account, in the original's `users`
//! index shape (`email`, `passwordHash`, `publicKey`, `encryptedPrivateKey`,
//! `encryptedMnemonic`, `encryptedGunSalt`, `keyDerivationPath`, `isAdmin`,
//! `waitlistStatus`, `subscriptionStatus`, `createdAt`, calendar-token fields, …),
//! keyed by a `userId` and unique by lowercased email. Every backend implements it
//! beside [`super::RecordStore`]; the accounts logic lives in `accounts/`.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{StoreError, Upserted};

/// Bound: bytes of one user document (an account is a few KB).
pub const MAX_USER_BYTES: usize = 64 * 1024;

/// One account.
#[derive(Clone, PartialEq)]
pub struct UserDoc {
    /// `userId` in tokens.
    pub id: String,
    /// The original's fields.
    pub doc: Map<String, Value>,
    /// The stored revision this copy was read at (0 for a new one): a write of
    /// an older copy is refused, so no read-modify-write undoes another.
    pub rev: u64,
}

impl std::fmt::Debug for UserDoc {
    // never print password hashes or sealed keys
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDoc").field("id", &self.id).field("email", &self.email()).finish_non_exhaustive()
    }
}

impl UserDoc {
    pub fn str(&self, k: &str) -> Option<&str> {
        self.doc.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    pub fn email(&self) -> &str {
        self.str("email").unwrap_or("")
    }

    /// The unique key: the email, trimmed and lowercased.
    pub fn email_key(&self) -> String {
        email_key(self.email())
    }

    pub fn public_key(&self) -> Option<&str> {
        self.str("publicKey")
    }

    pub fn is_admin(&self) -> bool {
        self.doc.get("isAdmin").and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn set(&mut self, k: &str, v: impl Into<Value>) {
        self.doc.insert(k.to_owned(), v.into());
    }
}

/// The lookup key of an email.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Whether an insert created the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// An account with that email exists; nothing was written.
    EmailTaken,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Create an account, unless its email is taken.
    async fn insert_user(&self, user: UserDoc) -> Result<Inserted, StoreError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<UserDoc>, StoreError>;
    async fn user_by_id(&self, id: &str) -> Result<Option<UserDoc>, StoreError>;
    /// Replace an account's document (by id) if it is still at `user.rev`; false
    /// when it does not exist or was written since it was read.
    async fn update_user(&self, user: &UserDoc) -> Result<bool, StoreError>;
    /// A page of accounts, oldest first, with the total.
    async fn list_users(&self, limit: u32, offset: u64) -> Result<(u64, Vec<UserDoc>), StoreError>;
    /// Import: insert or replace by email (idempotent); the account takes the
    /// imported id (tokens of an earlier account of that email stop matching it).
    async fn upsert_users(&self, users: Vec<UserDoc>) -> Result<Vec<Upserted>, StoreError>;
}
