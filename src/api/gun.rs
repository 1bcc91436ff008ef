//! The GUN relay's HTTP API, built in, and the sync's health routes.
//!
//! On the main port: `POST /gun-relay/put` (a token whose key owns the soul's
//! prefix, `sha256(publicKey)[0..12]`: none → 401, another's prefix → 403),
//! `GET /gun-relay/get?soul=`, `GET /gun-relay/list?publisherHash=&limit=&offset=&recordType=`.
//! On `--gun-relay-listen` (off by default): the same at `/put` `/get` `/list`, the
//! original relay's paths, with writes only from `--gun-relay-allow` addresses.
//! Answers keep the original relay's shapes: `{success:true, soul}`,
//! `{success:true, data}`, `{success:true, records:[{soul, data, recordType,
//! storedAt}]}`, `{error}`; a missing soul is 404 everywhere.
//!
//! Bounds: a put body is at most the node bound plus [`PUT_OVERHEAD`] (413 past
//! it); a `get` answer is built from the stored text without a value tree; a
//! `list` page streams one record at a time.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{self, RequiredUser};
use crate::gun::node::{DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};
use crate::gun::service::GunError;
use crate::state::SharedState;

/// Bound: bytes of a put body beyond the node bound (the soul and the wrapper).
pub const PUT_OVERHEAD: usize = 64 * 1024;

impl From<GunError> for ApiError {
    fn from(e: GunError) -> Self {
        match e {
            GunError::BadRequest(m) => ApiError::BadRequest(m),
            GunError::TooLarge(m) => ApiError::TooLarge(m),
            GunError::NotFound => ApiError::NotFound("Not found"),
            GunError::Forbidden(m) => ApiError::Forbidden(m),
            GunError::Store(s) => crate::records::service::RecordsError::Store(s).into(),
        }
    }
}

/// `{soul, data}` of a put body.
async fn put_body(st: &SharedState, req: Request) -> Result<(String, Value), ApiError> {
    let body = extract::body_bytes(req, st.gun.limits.max_bytes + PUT_OVERHEAD).await?;
    let v: Value = serde_json::from_slice(&body).map_err(|_| ApiError::BadRequest("Invalid JSON".into()))?;
    drop(body);
    let Value::Object(mut m) = v else { return Err(ApiError::BadRequest("Invalid JSON".into())) };
    let soul = match m.remove("soul") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(ApiError::BadRequest("soul is required".into())),
    };
    let data = m.remove("data").ok_or_else(|| ApiError::BadRequest("data is required (null deletes)".into()))?;
    Ok((soul, data))
}

/// `POST /gun-relay/put`: the caller's own souls only.
pub async fn put_main(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> Result<Json<Value>, ApiError> {
    let key = extract::writer_key(&user)?.to_owned();
    let (soul, data) = put_body(&st, req).await?;
    if crate::store::gun::soul_prefix(&soul) != crate::oip::did::user_hash(&key) || !soul.contains(':') {
        return Err(ApiError::Forbidden("You may only write souls under your own prefix (sha256(publicKey)[0..12]:…)".into()));
    }
    st.gun.put(&soul, data, Some(&key)).await?;
    Ok(Json(json!({"success": true, "soul": soul})))
}

/// `POST /put` on the relay listener: writes from allowed addresses only.
pub async fn put_listener(State(st): State<SharedState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Result<Json<Value>, ApiError> {
    if !st.gun_relay_allow.iter().any(|r| r.contains(peer.ip())) {
        return Err(ApiError::Forbidden("Writes are not accepted from this address (--gun-relay-allow)".into()));
    }
    let (soul, data) = put_body(&st, req).await?;
    st.gun.put(&soul, data, None).await?;
    Ok(Json(json!({"success": true, "soul": soul})))
}

fn query(req: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect()
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

/// `GET /gun-relay/get?soul=` (and `/get`): the node, shaped; 404 when missing or deleted.
pub async fn get_node(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let q = query(&req);
    let soul = param(&q, "soul").filter(|s| !s.is_empty()).ok_or_else(|| ApiError::BadRequest("Soul parameter required".into()))?;
    let parts = st.gun.get(soul).await?;
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let body = Body::from_stream(futures_util::stream::iter(parts.into_iter().map(Ok::<_, std::convert::Infallible>)));
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(r)
}

fn number(q: &[(String, String)], k: &str, default: u64) -> Result<u64, ApiError> {
    match param(q, k).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().map_err(|_| ApiError::BadRequest(format!("Invalid parameter {k}: expected a non-negative integer"))),
    }
}

/// `GET /gun-relay/list` (and `/list`): a publisher's records, one page, streamed.
pub async fn list(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let q = query(&req);
    let hash = param(&q, "publisherHash").filter(|s| !s.is_empty()).ok_or_else(|| ApiError::BadRequest("publisherHash parameter required".into()))?.to_owned();
    let limit = number(&q, "limit", DEFAULT_LIST_LIMIT as u64)?.min(MAX_LIST_LIMIT as u64) as u32;
    let offset = number(&q, "offset", 0)?;
    let record_type = param(&q, "recordType").filter(|s| !s.is_empty()).map(str::to_owned);
    let rows = st.gun.list(&hash, record_type.as_deref(), limit, offset).await?;
    let gun = st.gun.clone();
    // one record per chunk: the page's nodes are never all in memory at once
    let stream = futures_util::stream::unfold((rows.into_iter(), gun, 0u8), |(mut rows, gun, stage)| async move {
        match stage {
            0 => Some((Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(br#"{"success":true,"records":["#)), (rows, gun, 1))),
            1 | 2 => loop {
                let Some(row) = rows.next() else {
                    return Some((Ok(axum::body::Bytes::from_static(b"]}")), (rows, gun, 3)));
                };
                let Ok(Some(crate::store::gun::GunEntry::Live { node, .. })) = gun.graph.gun_get(&row.soul).await else { continue };
                let mut out = Vec::with_capacity(node.len() + 128);
                if stage == 2 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"soul\":");
                let _ = serde_json::to_writer(&mut out, &row.soul);
                out.extend_from_slice(b",\"data\":");
                if crate::gun::node::write_shaped(&node, &mut out).is_err() {
                    continue;
                }
                out.extend_from_slice(b",\"recordType\":");
                let _ = serde_json::to_writer(&mut out, &row.record_type);
                out.extend_from_slice(format!(",\"storedAt\":{}}}", row.stored_ms).as_bytes());
                return Some((Ok(axum::body::Bytes::from(out)), (rows, gun, 2)));
            },
            _ => None,
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// `GET /api/health/gun-sync`.
pub async fn sync_health(State(st): State<SharedState>) -> Response {
    match &st.gun_sync {
        Some(s) => Json(s.status()).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"service": "gun-sync", "status": "unavailable", "message": "GUN sync is off: no peers configured (--gun-peers / GUN_PEERS) or GUN_SYNC_ENABLED=false", "nodeId": st.gun.node_id})),
        )
            .into_response(),
    }
}

/// `POST /api/health/gun-sync/force` (administrators): runs a cycle now and answers when it is done.
pub async fn sync_force(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let headers = req.headers();
    if !super::health::is_admin(&st, headers) {
        let token = extract::bearer(headers).ok_or(ApiError::NoToken)?;
        let user = st.auth.verify(token).ok_or(ApiError::InvalidToken)?;
        if !st.accounts.is_admin(&user).await.map_err(ApiError::internal)? {
            return Err(ApiError::Forbidden("Administrators only".into()));
        }
    }
    let Some(sync) = st.gun_sync.clone() else {
        return Ok((StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "GUN Sync Service not available"}))).into_response());
    };
    let report = sync.run_cycle().await;
    Ok(Json(json!({"message": "Sync cycle completed", "timestamp": crate::civil::iso_now(), "cycle": report})).into_response())
}

