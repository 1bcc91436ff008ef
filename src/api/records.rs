//! `/api/records*` and `/api/templates`: thin handlers over
//! [`crate::records::service`]. Auth is optional on reads (a bad or missing token
//! is anonymous, as the original) and required on writes.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{self, MaybeUser, RequiredUser};
use crate::auth::User;
use crate::records::resolve::ResolveError;
use crate::records::service::{Caller, RecordsError, RecordsService, Storage};
use crate::state::SharedState;
use crate::store::{StoreError, Viewer};

/// Names the query parameters that were understood but ignored (an unknown
/// `sortBy` field: the default order stands, as in the original).
pub const IGNORED_PARAMETERS: http::HeaderName = http::HeaderName::from_static("oip-ignored-parameters");

/// Record types a `calendar-read-only` token may read (the original's default).
const CALENDAR_TYPES: &[&str] = &["workoutSchedule", "mealPlan"];

impl From<RecordsError> for ApiError {
    fn from(e: RecordsError) -> Self {
        match e {
            RecordsError::Query(q) => ApiError::BadRequest(q.to_string()),
            RecordsError::BadRequest(m) => ApiError::BadRequest(m),
            RecordsError::Store(StoreError::Busy) => ApiError::Overloaded { what: "record store", retry_after: 2 },
            RecordsError::Store(StoreError::Backend(m)) => ApiError::Internal(m),
            RecordsError::Store(StoreError::Full) => ApiError::InsufficientStorage,
            RecordsError::Store(StoreError::TimedOut) => ApiError::Overloaded { what: "the query time budget", retry_after: 2 },
            // the caller is gone; nobody reads this answer
            RecordsError::Store(StoreError::Interrupted) => ApiError::Internal("query cancelled".into()),
            RecordsError::Resolve(ResolveError::Store(s)) => RecordsError::Store(s).into(),
            RecordsError::Resolve(r) => ApiError::TooLarge(r.to_string()),
            RecordsError::Busy(o) => o.into(),
            RecordsError::NotFound => ApiError::NotFound("Record not found"),
            RecordsError::Forbidden(m) => ApiError::Forbidden(m),
            RecordsError::NotImplemented(m) => ApiError::NotImplemented(m),
        }
    }
}

fn caller(user: Option<&User>) -> Caller {
    let viewer = Viewer { key: user.and_then(|u| u.public_key()).map(str::to_owned) };
    let auth = match user {
        None => json!({"authenticated": false, "user": null}),
        Some(u) => {
            let c = &u.claims;
            json!({"authenticated": true, "user": {
                "email": c.email, "userId": c.user_id, "publicKey": u.public_key(),
                "scope": c.extra.get("scope").cloned().unwrap_or(json!("full")),
                "tokenType": c.extra.get("tokenType").cloned().unwrap_or(json!("standard")),
            }})
        }
    };
    Caller { viewer, auth }
}

fn calendar_only(user: Option<&User>) -> bool {
    user.is_some_and(User::is_calendar_only)
}

fn calendar_refusal() -> ApiError {
    ApiError::Forbidden(format!("Calendar-scoped tokens may only read recordType {}", CALENDAR_TYPES.join(" or ")))
}

pub async fn list(State(st): State<SharedState>, MaybeUser(user): MaybeUser, req: Request) -> Result<Response, ApiError> {
    extract::get_or_head(req.method())?;
    let list = st.records.parse_list(req.uri().query().unwrap_or(""))?;
    if calendar_only(user.as_ref()) {
        // A calendar type must be named, and only calendar types: the original let
        // such a token read everything when it named none.
        let types: Vec<&str> = list.q.record_type.as_deref().map_or_else(Vec::new, |t| t.split(',').map(str::trim).collect());
        if types.is_empty() || !types.iter().all(|t| CALENDAR_TYPES.contains(t)) {
            return Err(calendar_refusal());
        }
    }
    let ignored = (!list.q.ignored.is_empty()).then(|| list.q.ignored.join(", "));
    let body = st.records.list(list, caller(user.as_ref())).await?;
    let mut resp = body.into_response();
    if let Some(v) = ignored.and_then(|v| HeaderValue::from_str(&v).ok()) {
        // what the original silently ignored is named, so a client can notice
        resp.headers_mut().insert(IGNORED_PARAMETERS, v);
    }
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("Authorization"));
    Ok(resp)
}

pub async fn record_types(State(st): State<SharedState>, MaybeUser(user): MaybeUser) -> ApiResult<Json<Value>> {
    if calendar_only(user.as_ref()) {
        return Err(calendar_refusal());
    }
    Ok(Json(st.records.record_types(&caller(user.as_ref()).viewer).await?))
}

pub async fn templates(State(st): State<SharedState>, req: Request) -> ApiResult<Json<Value>> {
    Ok(Json(st.records.templates(req.uri().query().unwrap_or("")).await?))
}

pub async fn new_record(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = extract::body_bytes(req, crate::oip::model::MAX_RECORD_BYTES).await?;
    let parsed = RecordsService::parse_new_record(&query, &body)?;
    match parsed.storage {
        Storage::Gun => {
            let key = extract::writer_key(&user)?.to_owned();
            Ok(Json(st.records.new_gun_record(&key, parsed).await?))
        }
        Storage::Arweave => {
            let p = st.publisher.record(&parsed.record_type, parsed.data).await?;
            Ok(Json(json!({"recordToIndex": p.record_to_index, "storage": "arweave", "transactionId": p.transaction_id, "blockchain": "arweave"})))
        }
    }
}

pub async fn delete_record(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    let key = extract::writer_key(&user)?.to_owned();
    let admin = st.accounts.is_admin(&user).await.map_err(ApiError::internal)?;
    let body = extract::body_bytes(req, MAX_DELETE_BODY).await?;
    let target = st.records.delete_target(&key, admin, st.publisher.public_key().as_deref(), &body).await?;
    // A record this node published is deleted everywhere by a delete message;
    // if that cannot be published the record stays (the caller can retry). A
    // pending one would land after its delete and come back: refused until
    // it is confirmed.
    let message = match (target.on_chain_by_server(), target.pending()) {
        (true, true) => return Err(crate::publish::PublishError::Pending.into()),
        (true, false) => Some(st.publisher.delete(&target.did).await?),
        (false, _) => None,
    };
    Ok(Json(st.records.delete_record(&key, target, message.map(Ok)).await?))
}

pub async fn clear_cache(State(st): State<SharedState>) -> Json<Value> {
    Json(st.records.clear_cache())
}

/// Bound: bytes of a deleteRecord body.
const MAX_DELETE_BODY: usize = 64 * 1024;
