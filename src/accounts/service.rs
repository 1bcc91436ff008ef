//! The account use cases behind `/api/user/*`, as plain code: register, login,
//! the mnemonic, wallet import (and recovery), password resets, the admin list and
//! status toggles, calendar tokens and their revocation.
//!
//! Secrets at rest: the password hash (Argon2id; the original's bcrypt hashes
//! verify and are upgraded at the next login), and the private key, mnemonic and
//! GUN salt sealed under a key derived from the password with a per-user salt
//! ([`super::vault`]); the original's fixed-salt PBKDF2 seals are opened once with
//! the password and re-sealed. Keys derive as the original derives them
//! ([`super::keys`]), so an imported user keeps their `publicKey`.
//!
//! Bounds: password hashes and key derivations run on the blocking pool, at most
//! [`HASHING_SLOTS`] at once (a bounded queue, then 503); login attempts are
//! limited per address and per account ([`super::limiter`], bounded maps); a
//! failed login says nothing about whether the email exists and costs the same
//! hash as a real one.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::keys::{self, Wallet, DERIVATION_PATH};
use super::limiter::{LoginLimiter, LoginLimits, RetryAfter};
use super::password;
use super::vault::{self, Kek, KekSalt, Purpose};
use crate::auth::{Auth, Claims, User};
use crate::limits::stream::{Labels, StreamLimiter};
use crate::limits::{BoundReport, BoundSource, Overloaded};
use crate::store::users::{Inserted, UserDoc, UserStore};
use crate::store::StoreError;

/// Bound: password hashes / key derivations running at once (each ~19 MiB, tens of ms).
pub const HASHING_SLOTS: usize = 2;
/// Bound: requests waiting for a hashing slot; past it 503.
pub const HASHING_QUEUE: usize = 64;
/// How long a request waits for a hashing slot.
pub const HASHING_WAIT: Duration = Duration::from_secs(10);
/// Lifetime of a login token (the original's 45 days).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(45 * 86_400);
/// Lifetime of a calendar token (the original's 365 days).
pub const CALENDAR_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// The record types a calendar token may read.
pub const CALENDAR_TYPES: [&str; 2] = ["workoutSchedule", "mealPlan"];
/// Shortest password accepted for new passwords (the original had none).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Bound: bytes of an email address.
pub const MAX_EMAIL_BYTES: usize = 254;
/// Bound: registrations from one address (IPv6: its /64) per 15 minutes.
pub const REGISTRATIONS_PER_ADDRESS: u32 = 10;
/// How often a cheap account update is retried when another write came between.
const UPDATE_RETRIES: usize = 3;
/// Bound: accounts in one admin listing page.
pub const MAX_USERS_PAGE: u32 = 1000;

const HASHING: Labels = Labels {
    name: "password_hashing",
    queue_name: "password_hashing_queue",
    config: "const accounts::service::HASHING_SLOTS",
    queue_config: "const accounts::service::HASHING_QUEUE",
    what: "password hashing",
};

/// Why an account request failed; the API maps each to its status.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    BadRequest(String),
    /// 401: the credentials given do not open this account.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(&'static str),
    /// 409: the account's state does not allow it (keys sealed under an older password).
    #[error("{0}")]
    Conflict(String),
    /// 429: too many failed attempts.
    #[error("Too many failed attempts; try again later")]
    TooManyAttempts(Duration),
    #[error(transparent)]
    Busy(#[from] Overloaded),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<RetryAfter> for AccountError {
    fn from(r: RetryAfter) -> Self {
        AccountError::TooManyAttempts(r.0)
    }
}

type Result<T> = std::result::Result<T, AccountError>;

pub struct AccountsService {
    users: Arc<dyn UserStore>,
    auth: Arc<Auth>,
    limiter: LoginLimiter,
    /// Registrations per client address (each costs two Argon2 runs and a row).
    registrations: LoginLimiter,
    hashing: StreamLimiter,
    registration_limit: Option<u64>,
}

/// What a successful login or registration answers.
pub struct Session {
    pub token: String,
    pub public_key: Option<String>,
    /// Only right after registration: the words to write down.
    pub mnemonic: Option<String>,
    pub user_id: String,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

fn internal(e: impl std::fmt::Display) -> AccountError {
    AccountError::Internal(e.to_string())
}

/// A plausible email: one `@` with text on both sides, no spaces or controls.
pub fn valid_email(e: &str) -> bool {
    let e = e.trim();
    e.len() <= MAX_EMAIL_BYTES
        && e.split('@').count() == 2
        && e.split('@').all(|p| !p.is_empty())
        // no markup or RFC 5322 specials: the address is shown in pages and lists
        && !e.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"'()[]\\,;:`".contains(c))
}

fn check_new_password(p: &str) -> Result<()> {
    if p.chars().count() < MIN_PASSWORD_CHARS || p.len() > password::MAX_PASSWORD_BYTES {
        return Err(AccountError::BadRequest(format!(
            "The password must have at least {MIN_PASSWORD_CHARS} characters (and at most {} bytes)",
            password::MAX_PASSWORD_BYTES
        )));
    }
    Ok(())
}

/// Marks an account that has no sealed private key.
const NO_KEYS: &str = "no private key";

/// The sealed secrets of an account, opened.
struct Opened {
    private_key: zeroize::Zeroizing<String>,
    mnemonic: Option<zeroize::Zeroizing<String>>,
    gun_salt: Option<zeroize::Zeroizing<String>>,
}

/// Does a token's email and key (where it names them) describe this account?
fn token_matches(user: &User, account: &UserDoc) -> bool {
    let email_ok = user.claims.email.as_deref().is_none_or(|e| crate::store::users::email_key(e) == account.email_key());
    let key_ok = match (user.claims.public_key.as_deref(), account.public_key()) {
        (Some(t), Some(a)) => t == a,
        (Some(_), None) => false,
        (None, _) => true,
    };
    email_ok && key_ok
}

impl AccountsService {
    pub fn new(users: Arc<dyn UserStore>, auth: Arc<Auth>, limiter: LoginLimiter, retry_after: u64, registration_limit: Option<u64>) -> Self {
        AccountsService {
            users,
            auth,
            limiter,
            registrations: LoginLimiter::new(LoginLimits {
                per_address_failures: REGISTRATIONS_PER_ADDRESS,
                per_account_failures: REGISTRATIONS_PER_ADDRESS,
                ..LoginLimits::default()
            })
            .named("registration_emails", "registration_addresses"),
            hashing: StreamLimiter::new(HASHING, HASHING_SLOTS, HASHING_QUEUE, HASHING_WAIT, retry_after),
            registration_limit,
        }
    }

    /// Run CPU/memory-heavy crypto on the blocking pool under the hashing bound.
    /// The permit moves into the blocking job: a cancelled request cannot free its
    /// slot while its hash still runs.
    async fn hashing<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = self.hashing.acquire().await?;
        crate::memory::track::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(internal)
    }

    fn mint(&self, user: &UserDoc, is_admin: Option<bool>, lifetime: Duration, extra: Map<String, Value>) -> String {
        let now = now_secs();
        self.auth.mint(&Claims {
            user_id: Some(user.id.clone()),
            email: Some(user.email().to_owned()),
            public_key: user.public_key().map(str::to_owned),
            is_admin,
            iat: Some(now),
            exp: Some(now + lifetime.as_secs()),
            extra,
            ..Default::default()
        })
    }

    /// A new account for `email` with `wallet`, its secrets sealed under `password`.
    async fn create(&self, email: &str, password: &str, wallet: Wallet, imported: bool) -> Result<(UserDoc, Wallet)> {
        let pw = password.to_owned();
        let (hash, salt, sealed, wallet) = self
            .hashing(move || -> std::result::Result<_, String> {
                let hash = password::hash(&pw).map_err(|e| e.to_string())?;
                let salt = KekSalt::generate().map_err(|e| e.to_string())?;
                let kek = Kek::derive(&pw, &salt).map_err(|e| e.to_string())?;
                let gun_salt = hex::encode(KekSalt::generate().map_err(|e| e.to_string())?.as_bytes()) + &hex::encode(KekSalt::generate().map_err(|e| e.to_string())?.as_bytes());
                let sealed = [
                    kek.seal(Purpose::PrivateKey, wallet.private_key_hex()).map_err(|e| e.to_string())?,
                    kek.seal(Purpose::Mnemonic, wallet.mnemonic()).map_err(|e| e.to_string())?,
                    kek.seal(Purpose::GunSalt, &gun_salt).map_err(|e| e.to_string())?,
                ];
                Ok((hash, salt, sealed, wallet))
            })
            .await?
            .map_err(AccountError::Internal)?;
        let id = {
            let r = KekSalt::generate().map_err(internal)?;
            hex::encode(Sha256::digest([r.as_bytes().as_slice(), email.as_bytes()].concat()))[..20].to_owned()
        };
        let [pk, mn, gs] = sealed;
        let mut doc = Map::new();
        doc.insert("email".into(), json!(email.trim()));
        doc.insert("passwordHash".into(), json!(hash));
        doc.insert("publicKey".into(), json!(wallet.public_key_hex()));
        doc.insert("encryptedPrivateKey".into(), json!(pk));
        doc.insert("encryptedMnemonic".into(), json!(mn));
        doc.insert("encryptedGunSalt".into(), json!(gs));
        doc.insert("kekSalt".into(), json!(salt.to_hex()));
        doc.insert("keyDerivationPath".into(), json!(DERIVATION_PATH));
        doc.insert("createdAt".into(), json!(crate::civil::iso_now()));
        doc.insert("waitlistStatus".into(), json!("registered"));
        doc.insert("subscriptionStatus".into(), json!("inactive"));
        doc.insert("paymentMethod".into(), Value::Null);
        doc.insert("isAdmin".into(), json!(false));
        if imported {
            doc.insert("importedWallet".into(), json!(true));
        }
        Ok((UserDoc { id, doc, rev: 0 }, wallet))
    }

    /// `POST /api/user/register`.
    pub async fn register(&self, email: &str, password: &str, addr: IpAddr) -> Result<Session> {
        if !valid_email(email) {
            return Err(AccountError::BadRequest("A valid email is required".into()));
        }
        check_new_password(password)?;
        // every registration counts against its address
        self.registrations.failed(self.registrations.check(email, addr)?);
        if self.users.user_by_email(email).await?.is_some() {
            return Err(AccountError::BadRequest("User is already registered.".into()));
        }
        if let Some(limit) = self.registration_limit {
            if self.users.list_users(1, 0).await?.0 >= limit {
                return Err(AccountError::Forbidden("Registration limit reached. Please join the waitlist first.".into()));
            }
        }
        let wallet = self.hashing(keys::generate).await?.map_err(internal)?;
        let (user, wallet) = self.create(email, password, wallet, false).await?;
        if self.users.insert_user(user.clone()).await? == Inserted::EmailTaken {
            return Err(AccountError::BadRequest("User is already registered.".into()));
        }
        let token = self.mint(&user, Some(false), TOKEN_LIFETIME, Map::new());
        Ok(Session { token, public_key: user.public_key().map(str::to_owned), mnemonic: Some(wallet.mnemonic().to_owned()), user_id: user.id })
    }

    /// Verify `password` against `user` (or against the dummy hash when there is
    /// no such user, so both cost the same); counts toward the limits.
    async fn check_password(&self, email: &str, user: Option<&UserDoc>, password: &str, addr: IpAddr) -> Result<bool> {
        let attempt = self.limiter.check(email, addr)?;
        let stored = user.and_then(|u| u.str("passwordHash")).unwrap_or(password::dummy_hash()).to_owned();
        let pw = password.to_owned();
        let verified = match self.hashing(move || password::verify(&pw, &stored)).await {
            Ok(v) => v,
            Err(e) => {
                // busy or broken: not judged, so not counted
                self.limiter.cancel(attempt);
                return Err(e);
            }
        };
        let ok = verified && user.is_some_and(|u| u.str("passwordHash").is_some());
        if ok {
            self.limiter.succeeded(attempt);
        } else {
            self.limiter.failed(attempt);
        }
        Ok(ok)
    }

    /// Open an account's sealed secrets with its password (either format).
    async fn open_secrets(&self, user: &UserDoc, password: &str) -> Result<Opened> {
        let salt = match user.str("kekSalt") {
            Some(s) => Some(KekSalt::from_hex(s).map_err(internal)?),
            None => None,
        };
        let (pk, mn, gs) = (user.str("encryptedPrivateKey").map(str::to_owned), user.str("encryptedMnemonic").map(str::to_owned), user.str("encryptedGunSalt").map(str::to_owned));
        let pw = password.to_owned();
        let r = self
            .hashing(move || -> std::result::Result<Opened, vault::VaultError> {
                let open = |p: Purpose, s: &Option<String>| s.as_deref().map(|s| vault::open_any(&pw, salt.as_ref(), p, s)).transpose();
                Ok(Opened {
                    private_key: open(Purpose::PrivateKey, &pk)?.ok_or(vault::VaultError::Malformed(NO_KEYS))?,
                    mnemonic: open(Purpose::Mnemonic, &mn)?,
                    gun_salt: open(Purpose::GunSalt, &gs)?,
                })
            })
            .await?;
        r.map_err(|e| match e {
            vault::VaultError::WrongPasswordOrCorrupt | vault::VaultError::MissingKekSalt => AccountError::Conflict(
                "This account's keys were sealed under an earlier password (an administrator reset it). Import your wallet with your mnemonic and current password to restore them.".into(),
            ),
            vault::VaultError::Legacy => AccountError::Conflict("Legacy account: its keys were encrypted in a format that cannot be opened".into()),
            vault::VaultError::Malformed(NO_KEYS) => AccountError::NotFound("No keys are stored for this account"),
            vault::VaultError::Malformed(_) => AccountError::Conflict("This account's stored keys are damaged and cannot be opened".into()),
            other => internal(other),
        })
    }

    /// Seal opened secrets under `password` with a fresh salt, into `user`.
    async fn reseal(&self, user: &mut UserDoc, password: &str, opened: Opened) -> Result<()> {
        let pw = password.to_owned();
        let (salt, pk, mn, gs) = self
            .hashing(move || -> std::result::Result<_, vault::VaultError> {
                let salt = KekSalt::generate()?;
                let kek = Kek::derive(&pw, &salt)?;
                let gun_salt = match &opened.gun_salt {
                    Some(s) => s.to_string(),
                    None => hex::encode(KekSalt::generate()?.as_bytes()) + &hex::encode(KekSalt::generate()?.as_bytes()),
                };
                Ok((
                    salt,
                    kek.seal(Purpose::PrivateKey, &opened.private_key)?,
                    opened.mnemonic.as_ref().map(|m| kek.seal(Purpose::Mnemonic, m)).transpose()?,
                    kek.seal(Purpose::GunSalt, &gun_salt)?,
                ))
            })
            .await?
            .map_err(internal)?;
        user.set("kekSalt", salt.to_hex());
        user.set("encryptedPrivateKey", pk);
        if let Some(mn) = mn {
            user.set("encryptedMnemonic", mn);
        }
        user.set("encryptedGunSalt", gs);
        user.doc.remove("keysSealedWithEarlierPassword");
        Ok(())
    }

    /// `POST /api/user/login`. Every failure is the same answer (no account, no
    /// password, wrong password).
    pub async fn login(&self, email: &str, password: &str, addr: IpAddr) -> Result<Session> {
        const INVALID: &str = "Invalid email or password";
        let user = self.users.user_by_email(email).await?;
        if !self.check_password(email, user.as_ref(), password, addr).await? {
            return Err(AccountError::Unauthorized(INVALID));
        }
        let mut user = user.ok_or(AccountError::Unauthorized(INVALID))?;
        // Upgrades that need the password: a stronger hash, our sealing format.
        let mut changed = false;
        if password::needs_rehash(user.str("passwordHash").unwrap_or("")) {
            let pw = password.to_owned();
            let h = self.hashing(move || password::hash(&pw)).await?.map_err(internal)?;
            user.set("passwordHash", h);
            user.set("passwordUpgradedAt", crate::civil::iso_now());
            changed = true;
        }
        let original_format = ["encryptedPrivateKey", "encryptedMnemonic", "encryptedGunSalt"]
            .iter()
            .any(|k| user.str(k).is_some_and(|v| !v.contains("\"v\"")))
            || (user.str("encryptedPrivateKey").is_some() && user.str("encryptedGunSalt").is_none());
        if original_format {
            match self.open_secrets(&user, password).await {
                Ok(opened) => {
                    self.reseal(&mut user, password, opened).await?;
                    user.set("encryptionUpgradedAt", crate::civil::iso_now());
                    changed = true;
                }
                // busy: the upgrade waits for another login
                Err(AccountError::Busy(_)) => {}
                // keys that cannot be opened stay as they are; the login still works
                Err(e) => tracing::warn!(user = %user.id, error = %e, "sealed keys could not be opened at login; left as they are"),
            }
        }
        // another write came between: the upgrade waits for the next login
        if changed && !self.users.update_user(&user).await? {
            tracing::debug!(user = %user.id, "account changed during login; upgrade left for the next one");
        }
        let admin = user.is_admin().then_some(true);
        let token = self.mint(&user, admin, TOKEN_LIFETIME, Map::new());
        Ok(Session { token, public_key: user.public_key().map(str::to_owned), mnemonic: None, user_id: user.id })
    }

    /// The account a (full, non-calendar) token names.
    pub async fn account_of(&self, user: &User) -> Result<UserDoc> {
        if user.is_calendar_only() {
            return Err(AccountError::Forbidden("Calendar-scoped tokens are read-only".into()));
        }
        let found = match (&user.claims.user_id, &user.claims.email) {
            (Some(id), _) => self.users.user_by_id(id).await?,
            (None, Some(e)) => self.users.user_by_email(e).await?,
            _ => None,
        };
        // the token must still describe this account (an id can change hands on import)
        found.filter(|u| token_matches(user, u)).ok_or(AccountError::NotFound("User not found in database"))
    }

    /// `GET /api/user/mnemonic`: the words, for the account's password.
    pub async fn mnemonic(&self, user: &User, password: &str, addr: IpAddr) -> Result<String> {
        let account = self.account_of(user).await?;
        if !self.check_password(account.email(), Some(&account), password, addr).await? {
            return Err(AccountError::Unauthorized("Invalid password"));
        }
        let opened = self.open_secrets(&account, password).await?;
        opened.mnemonic.map(|m| m.to_string()).ok_or(AccountError::NotFound("No mnemonic found for user"))
    }

    /// `POST /api/user/import-wallet`: an account for a mnemonic made elsewhere
    /// (the same keys as on the original), or, for an existing account whose
    /// password is given and whose `publicKey` the mnemonic derives, its keys
    /// sealed again under that password (recovery after an admin reset).
    pub async fn import_wallet(&self, email: &str, password: &str, mnemonic: &str, addr: IpAddr) -> Result<(bool, Session)> {
        if email.trim().is_empty() || password.is_empty() || mnemonic.trim().is_empty() {
            return Err(AccountError::BadRequest("Email, password, and mnemonic are required".into()));
        }
        if !valid_email(email) {
            return Err(AccountError::BadRequest("A valid email is required".into()));
        }
        let m = mnemonic.to_owned();
        let wallet = self.hashing(move || keys::from_mnemonic(&m)).await?.map_err(|_| AccountError::BadRequest("Invalid mnemonic phrase".into()))?;
        if let Some(mut existing) = self.users.user_by_email(email).await? {
            let same_key = existing.public_key() == Some(wallet.public_key_hex());
            if !same_key || !self.check_password(email, Some(&existing), password, addr).await? {
                return Err(AccountError::BadRequest("User already exists on this node".into()));
            }
            // the GUN salt is kept when this password still opens it (after an
            // administrator's reset it cannot: then a new one is made)
            let gun_salt = self.open_secrets(&existing, password).await.ok().and_then(|o| o.gun_salt);
            let opened = Opened {
                private_key: zeroize::Zeroizing::new(wallet.private_key_hex().to_owned()),
                mnemonic: Some(zeroize::Zeroizing::new(wallet.mnemonic().to_owned())),
                gun_salt,
            };
            self.reseal(&mut existing, password, opened).await?;
            existing.set("walletRestoredAt", crate::civil::iso_now());
            if !self.users.update_user(&existing).await? {
                return Err(AccountError::Conflict("The account was changed by another request meanwhile; try again".into()));
            }
            let token = self.mint(&existing, existing.is_admin().then_some(true), TOKEN_LIFETIME, Map::new());
            return Ok((false, Session { token, public_key: existing.public_key().map(str::to_owned), mnemonic: None, user_id: existing.id }));
        }
        check_new_password(password)?;
        let (user, _) = self.create(email, password, wallet, true).await?;
        if self.users.insert_user(user.clone()).await? == Inserted::EmailTaken {
            return Err(AccountError::BadRequest("User already exists on this node".into()));
        }
        let token = self.mint(&user, Some(false), TOKEN_LIFETIME, Map::new());
        Ok((true, Session { token, public_key: user.public_key().map(str::to_owned), mnemonic: None, user_id: user.id }))
    }

    /// `POST /api/user/reset-password` by the account itself: the current password
    /// opens the keys, which are sealed again under the new one.
    pub async fn change_password(&self, user: &User, current: &str, new: &str, addr: IpAddr) -> Result<()> {
        check_new_password(new)?;
        let mut account = self.account_of(user).await?;
        if !self.check_password(account.email(), Some(&account), current, addr).await? {
            return Err(AccountError::Unauthorized("Invalid password"));
        }
        let opened = self.open_secrets(&account, current).await?;
        self.reseal(&mut account, new, opened).await?;
        let pw = new.to_owned();
        account.set("passwordHash", self.hashing(move || password::hash(&pw)).await?.map_err(internal)?);
        account.set("passwordChangedAt", crate::civil::iso_now());
        if !self.users.update_user(&account).await? {
            return Err(AccountError::Conflict("The account was changed by another request meanwhile; try again".into()));
        }
        Ok(())
    }

    /// `POST /api/user/reset-password` by an administrator: a new password without
    /// the old one. Keys sealed under the old password cannot be opened with it;
    /// the user restores them with their mnemonic (`import-wallet`).
    pub async fn admin_reset(&self, email: &str, new: &str) -> Result<()> {
        check_new_password(new)?;
        let mut account = self.users.user_by_email(email).await?.ok_or(AccountError::NotFound("User not found"))?;
        let pw = new.to_owned();
        account.set("passwordHash", self.hashing(move || password::hash(&pw)).await?.map_err(internal)?);
        account.set("passwordResetByAdminAt", crate::civil::iso_now());
        if account.str("encryptedPrivateKey").is_some() {
            account.set("keysSealedWithEarlierPassword", true);
        }
        if !self.users.update_user(&account).await? {
            return Err(AccountError::Conflict("The account was changed by another request meanwhile; try again".into()));
        }
        Ok(())
    }

    /// Is this caller an administrator (the stored account says so)?
    pub async fn is_admin(&self, user: &User) -> Result<bool> {
        if user.is_calendar_only() {
            return Ok(false);
        }
        let Some(id) = &user.claims.user_id else { return Ok(false) };
        Ok(self.users.user_by_id(id).await?.is_some_and(|u| u.is_admin() && token_matches(user, &u)))
    }

    /// `GET /api/user/admin/users`.
    pub async fn list(&self, limit: u32, page: u64) -> Result<Value> {
        let limit = limit.clamp(1, MAX_USERS_PAGE);
        let (total, users) = self.users.list_users(limit, (page.max(1) - 1).saturating_mul(limit as u64)).await?;
        let users: Vec<Value> = users
            .iter()
            .map(|u| {
                json!({
                    "userId": u.id,
                    "email": u.email(),
                    "subscriptionStatus": u.str("subscriptionStatus").unwrap_or("inactive"),
                    "paymentStatus": if u.doc.get("paymentMethod").is_some_and(|p| !p.is_null()) || u.str("paymentStatus").is_some() { "Active" } else { "Inactive" },
                    "waitlistStatus": u.str("waitlistStatus").unwrap_or("registered"),
                    "isAdmin": u.is_admin(),
                    "publicKey": u.public_key(),
                    "createdAt": u.doc.get("createdAt"),
                })
            })
            .collect();
        Ok(json!({"success": true, "users": users, "total": total, "page": page.max(1), "limit": limit}))
    }

    /// `POST /api/user/admin/update-status`: toggles, as the original's.
    pub async fn update_status(&self, user_id: &str, field: &str) -> Result<()> {
        if !["subscriptionStatus", "paymentStatus"].contains(&field) {
            return Err(AccountError::BadRequest("Invalid field".into()));
        }
        self.update_with_retry(user_id, |u| {
            if field == "subscriptionStatus" {
                let next = if u.str("subscriptionStatus").unwrap_or("inactive") == "inactive" { "active" } else { "inactive" };
                u.set("subscriptionStatus", next);
            } else {
                let next = if u.str("paymentStatus").is_some() { Value::Null } else { json!("Active") };
                u.set("paymentStatus", next);
            }
        })
        .await?;
        Ok(())
    }

    /// Read the account, apply `change`, write it back; again when another write
    /// came between (a whole-document write must not undo a concurrent one).
    async fn update_with_retry(&self, id: &str, change: impl Fn(&mut UserDoc)) -> Result<UserDoc> {
        for _ in 0..UPDATE_RETRIES {
            let mut u = self.users.user_by_id(id).await?.ok_or(AccountError::NotFound("User not found"))?;
            change(&mut u);
            if self.users.update_user(&u).await? {
                return Ok(u);
            }
        }
        Err(AccountError::Conflict("The account was changed by another request meanwhile; try again".into()))
    }

    /// `POST /api/user/generate-calendar-jwt` (and `-token`): a read-only token for
    /// the calendar types, valid 365 days, until revoked (the account keeps its
    /// hash; a newer token replaces it).
    pub async fn calendar_token(&self, user: &User) -> Result<(String, String, u64)> {
        if user.claims.user_id.is_none() || user.claims.email.is_none() || user.public_key().is_none() {
            return Err(AccountError::BadRequest("Invalid user token - missing required fields".into()));
        }
        let account = self.account_of(user).await.map_err(|e| match e {
            AccountError::NotFound(_) => AccountError::NotFound("User not found"),
            other => other,
        })?;
        let mut extra = Map::new();
        extra.insert("scope".into(), json!("calendar-read-only"));
        extra.insert("allowedRecordTypes".into(), json!(CALENDAR_TYPES));
        extra.insert("tokenType".into(), json!("calendar"));
        // unique per token, so a new token never equals (and revives) an old one
        extra.insert("jti".into(), json!(KekSalt::generate().map_err(internal)?.to_hex()));
        let token = self.mint(&account, Some(false), CALENDAR_LIFETIME, extra);
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        let created = now_ms();
        self.update_with_retry(&account.id, |u| {
            u.set("calendarTokenHash", hash.clone());
            u.set("calendarTokenCreatedAt", created);
            u.set("calendarTokenExpiresAt", created + CALENDAR_LIFETIME.as_millis() as u64);
        })
        .await?;
        Ok((token, hash, created))
    }

    /// `POST /api/user/revoke-calendar-jwt` (and `-token`).
    pub async fn revoke_calendar(&self, user: &User) -> Result<()> {
        let account = self.account_of(user).await.map_err(|e| match e {
            AccountError::NotFound(_) => AccountError::NotFound("User not found"),
            other => other,
        })?;
        self.update_with_retry(&account.id, |u| {
            u.set("calendarTokenHash", Value::Null);
            u.set("calendarTokenRevokedAt", now_ms());
        })
        .await?;
        Ok(())
    }

    /// Whether a calendar-scoped `token` naming `user_id` is the account's current
    /// one (revoked or replaced tokens are not). Tokens that name no account (minted
    /// with `oipd token`) cannot be revoked and stay valid until they expire.
    pub async fn calendar_token_current(&self, user_id: Option<&str>, token: &str) -> Result<bool> {
        let Some(id) = user_id else { return Ok(true) };
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        Ok(self.users.user_by_id(id).await?.is_some_and(|u| u.str("calendarTokenHash") == Some(hash.as_str())))
    }

    /// Grant or revoke admin (the `oipd admin` command).
    pub async fn set_admin(&self, email: &str, admin: bool) -> Result<()> {
        let u = self.users.user_by_email(email).await?.ok_or(AccountError::NotFound("User not found"))?;
        self.update_with_retry(&u.id, |u| u.set("isAdmin", admin)).await?;
        Ok(())
    }
}

impl BoundSource for AccountsService {
    fn report(&self, out: &mut Vec<BoundReport>) {
        self.hashing.report(out);
        self.limiter.report(out);
        self.registrations.report(out);
    }
}
