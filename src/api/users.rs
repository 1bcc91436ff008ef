//! `/api/user/*`: accounts, with the original's request fields and response keys
//! (`{success, message, token, publicKey, mnemonic}`, errors `{success:false,
//! error}`), over [`crate::accounts::service`]. Differences from the original,
//! each deliberate: a failed login does not tell whether the email exists (401
//! for both); attempts are limited (429 + `Retry-After`); `reset-password` needs
//! the account's current password or an administrator; the admin routes need an
//! administrator (the original's never let anyone in); `import-wallet` works (the
//! original's always answered "exists"); calendar-token revocation holds.

use std::net::{IpAddr, Ipv4Addr};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{self, RequiredUser};
use crate::accounts::service::{AccountError, CALENDAR_LIFETIME, CALENDAR_TYPES};
use crate::auth::User;
use crate::limits::connections::PeerAddr;
use crate::state::SharedState;

/// Bound: bytes of an account request body.
const MAX_BODY: usize = 16 * 1024;

/// An account failure as the original shaped it: `{success:false, error}`; or
/// any other API error as it is (413, 503, …).
pub enum AccountFailure {
    Account(AccountError),
    Api(ApiError),
}

impl From<AccountError> for AccountFailure {
    fn from(e: AccountError) -> Self {
        AccountFailure::Account(e)
    }
}

impl From<ApiError> for AccountFailure {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::BadRequest(m) => AccountFailure::Account(AccountError::BadRequest(m)),
            ApiError::NoToken => AccountFailure::Account(AccountError::Unauthorized("No token provided")),
            ApiError::Forbidden(m) => AccountFailure::Account(AccountError::Forbidden(m)),
            ApiError::InvalidToken => AccountFailure::Account(AccountError::Forbidden("Invalid token".into())),
            other => AccountFailure::Api(other),
        }
    }
}

impl IntoResponse for AccountFailure {
    fn into_response(self) -> Response {
        let e = match self {
            AccountFailure::Api(e) => return e.into_response(),
            AccountFailure::Account(e) => e,
        };
        let (status, retry) = match &e {
            AccountError::BadRequest(_) => (StatusCode::BAD_REQUEST, None),
            AccountError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, None),
            AccountError::Forbidden(_) => (StatusCode::FORBIDDEN, None),
            AccountError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            AccountError::Conflict(_) => (StatusCode::CONFLICT, None),
            // rounded up: a client that waits this long is never early
            AccountError::TooManyAttempts(d) => (StatusCode::TOO_MANY_REQUESTS, Some((d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1))),
            AccountError::Busy(o) => return ApiError::from(*o).into_response(),
            AccountError::Store(e) => return ApiError::from(crate::records::service::RecordsError::Store(clone_store_error(e))).into_response(),
            AccountError::Internal(detail) => {
                tracing::error!(%detail, "account request failed");
                return ApiError::Internal("account request failed".into()).into_response();
            }
        };
        let mut resp = (status, Json(json!({"success": false, "error": e.to_string()}))).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(s) = retry {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"oipd\""));
        }
        resp
    }
}

fn clone_store_error(e: &crate::store::StoreError) -> crate::store::StoreError {
    use crate::store::StoreError as S;
    match e {
        S::Busy => S::Busy,
        S::Full => S::Full,
        S::TimedOut => S::TimedOut,
        S::Interrupted => S::Interrupted,
        S::Backend(m) => S::Backend(m.clone()),
    }
}

type AccountResult = Result<Response, AccountFailure>;

/// Answers with `Cache-Control: no-store` (tokens and words must not be cached).
fn ok(status: StatusCode, body: Value) -> AccountResult {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The client's address for the login limits: the socket's peer, or — when that
/// peer is one of `--trusted-proxies` — the rightmost `X-Forwarded-For` entry
/// that is not a trusted proxy (entries further left are the client's to forge).
fn client_ip(st: &SharedState, req: &Request) -> IpAddr {
    let peer = req.extensions().get::<PeerAddr>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip());
    if !st.trusted_proxies.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded.into_iter().rev().find(|a| !st.trusted_proxies.contains(a)).unwrap_or(peer)
}

async fn body(req: Request) -> Result<Map<String, Value>, AccountFailure> {
    let bytes = extract::body_bytes(req, MAX_BODY).await?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(AccountError::BadRequest("The body must be a JSON object".into()).into()),
        Err(_) => Err(AccountError::BadRequest("The body must be JSON".into()).into()),
    }
}

fn field<'a>(b: &'a Map<String, Value>, k: &str) -> &'a str {
    b.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `POST /api/user/register {email, password}` → 201.
pub async fn register(State(st): State<SharedState>, req: Request) -> AccountResult {
    let addr = client_ip(&st, &req);
    let b = body(req).await?;
    let s = st.accounts.register(field(&b, "email"), field(&b, "password"), addr).await?;
    ok(StatusCode::CREATED, json!({"success": true, "message": "User registered successfully", "token": s.token, "publicKey": s.public_key, "mnemonic": s.mnemonic}))
}

/// `POST /api/user/login {email, password}`.
pub async fn login(State(st): State<SharedState>, req: Request) -> AccountResult {
    let addr = client_ip(&st, &req);
    let b = body(req).await?;
    let s = st.accounts.login(field(&b, "email"), field(&b, "password"), addr).await?;
    ok(StatusCode::OK, json!({"success": true, "message": "Login successful", "token": s.token, "publicKey": s.public_key}))
}

/// `GET /api/user/mnemonic?password=` (the original's form) or `POST` with
/// `{password}` (which keeps the password out of URLs and logs).
pub async fn mnemonic(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> AccountResult {
    let addr = client_ip(&st, &req);
    let from_query = req
        .uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "password").map(|(_, v)| v.into_owned()));
    let password = match from_query {
        Some(p) => p,
        None => field(&body(req).await?, "password").to_owned(),
    };
    if password.is_empty() {
        return Err(AccountError::BadRequest("Password required to access mnemonic".into()).into());
    }
    let words = st.accounts.mnemonic(&user, &password, addr).await?;
    ok(StatusCode::OK, json!({"success": true, "mnemonic": words, "message": "Save this mnemonic securely. You can use it to import your wallet on other OIP nodes."}))
}

/// `POST /api/user/import-wallet {email, password, mnemonic}` → 201 (new account)
/// or 200 (an existing account's keys restored).
pub async fn import_wallet(State(st): State<SharedState>, req: Request) -> AccountResult {
    let addr = client_ip(&st, &req);
    let b = body(req).await?;
    let (created, s) = st.accounts.import_wallet(field(&b, "email"), field(&b, "password"), field(&b, "mnemonic"), addr).await?;
    let (status, message) =
        if created { (StatusCode::CREATED, "Wallet imported successfully") } else { (StatusCode::OK, "Wallet restored: your keys are sealed under this password again") };
    ok(status, json!({"success": true, "message": message, "token": s.token, "publicKey": s.public_key}))
}

/// The caller of an account-admin route: an administrator account, or the
/// operator's `--admin-token`.
async fn require_admin(st: &SharedState, headers: &http::HeaderMap) -> Result<(), AccountFailure> {
    if super::health::is_admin(st, headers) {
        return Ok(());
    }
    let token = extract::bearer(headers).ok_or(AccountError::Unauthorized("No token provided"))?;
    let user = st.auth.verify(token).ok_or(AccountError::Forbidden("Invalid token".into()))?;
    if st.accounts.is_admin(&user).await? {
        Ok(())
    } else {
        Err(AccountError::Forbidden("Unauthorized access".into()).into())
    }
}

/// `POST /api/user/reset-password`: `{currentPassword, newPassword}` with the
/// account's own token, or `{email, newPassword}` by an administrator.
pub async fn reset_password(State(st): State<SharedState>, req: Request) -> AccountResult {
    let addr = client_ip(&st, &req);
    let bearer = extract::bearer(req.headers()).map(str::to_owned);
    let caller: Option<User> = bearer.as_deref().and_then(|t| st.auth.verify(t));
    let headers = req.headers().clone();
    let is_admin = require_admin(&st, &headers).await.is_ok();
    let b = body(req).await?;
    let new = field(&b, "newPassword");
    let current = ["currentPassword", "oldPassword", "password"].iter().map(|k| field(&b, k)).find(|v| !v.is_empty()).unwrap_or("");
    match (caller, is_admin) {
        (_, true) if !field(&b, "email").is_empty() => st.accounts.admin_reset(field(&b, "email"), new).await?,
        (Some(user), _) if !current.is_empty() => st.accounts.change_password(&user, current, new, addr).await?,
        (Some(_), _) => return Err(AccountError::BadRequest("currentPassword and newPassword are required".into()).into()),
        (None, _) if bearer.is_some() => return Err(AccountError::Forbidden("Invalid token".into()).into()),
        (None, _) => return Err(AccountError::Unauthorized("Sign in (or ask an administrator) to reset a password").into()),
    }
    ok(StatusCode::OK, json!({"success": true, "message": "Password reset successful"}))
}

/// `GET /api/user/admin/users?limit=&page=` (administrators).
pub async fn admin_users(State(st): State<SharedState>, req: Request) -> AccountResult {
    let query = req.uri().query().unwrap_or("").to_owned();
    require_admin(&st, req.headers()).await?;
    let q: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let num = |k: &str, d: u64| q.iter().rev().find(|(key, _)| key == k).and_then(|(_, v)| v.parse::<u64>().ok()).unwrap_or(d);
    let v = st.accounts.list(num("limit", 100).min(u32::MAX as u64) as u32, num("page", 1)).await?;
    ok(StatusCode::OK, v)
}

/// `POST /api/user/admin/update-status {userId, field}` (administrators).
pub async fn admin_update_status(State(st): State<SharedState>, req: Request) -> AccountResult {
    let headers = req.headers().clone();
    require_admin(&st, &headers).await?;
    let b = body(req).await?;
    st.accounts.update_status(field(&b, "userId"), field(&b, "field")).await?;
    ok(StatusCode::OK, json!({"success": true, "message": "User status updated successfully"}))
}

/// `POST /api/user/generate-calendar-jwt` and `generate-calendar-token`.
pub async fn generate_calendar(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> AccountResult {
    let (token, hash, created) = st.accounts.calendar_token(&user).await?;
    let long = req.uri().path().ends_with("generate-calendar-token");
    let mut v = json!({
        "success": true,
        "calendarJWT": token,
        "tokenHash": hash,
        "createdAt": created,
        "expiresIn": CALENDAR_LIFETIME.as_secs(),
        "message": "Calendar token generated successfully. This token provides read-only access to your workout and meal schedules.",
    });
    if long {
        v["scope"] = json!("calendar-read-only");
        v["allowedRecordTypes"] = json!(CALENDAR_TYPES);
    }
    ok(StatusCode::OK, v)
}

/// `POST /api/user/revoke-calendar-jwt` and `revoke-calendar-token`.
pub async fn revoke_calendar(State(st): State<SharedState>, RequiredUser(user): RequiredUser) -> AccountResult {
    st.accounts.revoke_calendar(&user).await?;
    ok(StatusCode::OK, json!({"success": true, "message": "Calendar token revoked successfully. Generate a new token to restore calendar access."}))
}
