//! Publishing routes, thin over [`crate::publish`]: `/api/publish/*`,
//! `/api/templates/newTemplate`, `/api/creators/newCreator`,
//! `/api/organizations/newOrganization`, `/api/media/arweave-upload`,
//! `/api/workout/resolve-exercises` and `/api/publish-status/:jobId` (+
//! `/stream`, SSE). Every publishing route needs a token (the original left
//! `newRecipe` and `newWorkout` open: anyone could spend the node's credit).
//! Bodies are bounded by [`crate::oip::model::MAX_RECORD_BYTES`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{self, PathParam, RequiredUser};
use crate::media::MediaId;
use crate::publish::turbo::BundlerError;
use crate::publish::{recipes, PublishError};
use crate::records::service::RecordsError;
use crate::state::SharedState;

/// How long a status stream stays open at most (the original: 10 minutes).
const STREAM_MAX: Duration = Duration::from_secs(600);

/// Bound: how long a publish job may run before it is failed.
const JOB_MAX_RUN: Duration = Duration::from_secs(1800);

/// The server's identity and vocabulary (templates, its creator registration,
/// organizations) are published by administrators only: an account with
/// `isAdmin`, or the operator's `--admin-token`.
async fn require_admin(st: &SharedState, headers: &http::HeaderMap) -> ApiResult<()> {
    if super::health::is_admin(st, headers) {
        return Ok(());
    }
    let token = extract::bearer(headers).ok_or(ApiError::NoToken)?;
    let user = st.auth.verify(token).ok_or(ApiError::InvalidToken)?;
    match st.accounts.is_admin(&user).await.map_err(ApiError::internal)? {
        true => Ok(()),
        false => Err(ApiError::Forbidden("Administrators only: templates, the creator registration and organizations are published by an administrator".into())),
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::NoWallet => ApiError::Unavailable { message: e.to_string(), retry_after: 3600 },
            PublishError::BadRecord(m) => ApiError::BadRequest(m),
            PublishError::NotRegistered(_) => ApiError::Conflict(e.to_string()),
            PublishError::Bundler(BundlerError::NoCredit(_)) => ApiError::PaymentRequired(e.to_string()),
            PublishError::Bundler(BundlerError::Refused(_)) => ApiError::BadGateway(e.to_string()),
            PublishError::Bundler(BundlerError::Unavailable(_)) => ApiError::Unavailable { message: e.to_string(), retry_after: 30 },
            PublishError::Store(s) => RecordsError::Store(s).into(),
            PublishError::JobsFull(_) => ApiError::Unavailable { message: e.to_string(), retry_after: 30 },
            PublishError::Signing(m) => ApiError::Internal(m),
            PublishError::NoIndexer => ApiError::Unavailable { message: e.to_string(), retry_after: 3600 },
            PublishError::NotIndexed(_) => ApiError::BadRequest(e.to_string()),
            PublishError::Pending => ApiError::Conflict(e.to_string()),
            PublishError::Busy(o) => o.into(),
        }
    }
}

/// A JSON object body within the record bound.
async fn object_body(req: Request) -> ApiResult<Map<String, Value>> {
    let body = extract::body_bytes(req, crate::oip::model::MAX_RECORD_BYTES).await?;
    match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::BadRequest("The body must be a JSON object".into())),
        Err(e) => Err(ApiError::BadRequest(format!("Invalid JSON body: {e}"))),
    }
}

fn with_message(v: Value, message: &str) -> Json<Value> {
    let mut v = v;
    v["message"] = json!(message);
    Json(v)
}

/// `POST /api/publish/newPost`.
pub async fn new_post(State(st): State<SharedState>, RequiredUser(_): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    let body = recipes::post(object_body(req).await?);
    Ok(with_message(st.publisher.record("post", body).await?.response(), "Post published successfully"))
}

/// `POST /api/publish/newNutritionalInfo`: `{basic, nutritionalInfo, image?}`.
pub async fn new_nutritional_info(State(st): State<SharedState>, RequiredUser(_): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    let body = object_body(req).await?;
    Ok(with_message(st.publisher.record("nutritionalInfo", body).await?.response(), "Nutritional info published successfully"))
}

async fn new_media_record(st: &SharedState, kind: &str, req: Request) -> ApiResult<Json<Value>> {
    let body = object_body(req).await?;
    let record = recipes::media(kind, &body)?;
    let mut v = st.publisher.record(kind, record).await?.response();
    v["success"] = json!(true);
    let what = if kind == "video" { "Video" } else { "Image" };
    Ok(with_message(v, &format!("{what} record published successfully")))
}

/// `POST /api/publish/newVideo`.
pub async fn new_video(State(st): State<SharedState>, RequiredUser(_): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    new_media_record(&st, "video", req).await
}

/// `POST /api/publish/newImage`.
pub async fn new_image(State(st): State<SharedState>, RequiredUser(_): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    new_media_record(&st, "image", req).await
}

/// `POST /api/publish/newWorkout`.
pub async fn new_workout(State(st): State<SharedState>, RequiredUser(_): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    let body = object_body(req).await?;
    let (p, non_standard) = recipes::workout(&st.publisher, st.stores.records.as_ref(), &body).await?;
    let note = if non_standard { " as non-standard workout" } else { " with exercise references" };
    Ok(with_message(p.response(), &format!("Workout published successfully{note}")))
}

/// `POST /api/publish/newRecipe`: `202 {jobId, status, message}`; the work runs
/// as a job (`/api/publish-status/:jobId`).
pub async fn new_recipe(State(st): State<SharedState>, RequiredUser(_): RequiredUser, req: Request) -> ApiResult<Response> {
    let body = object_body(req).await?;
    if !body.get("recipe").is_some_and(Value::is_object) {
        return Err(ApiError::BadRequest("recipe: the body needs a recipe section".into()));
    }
    st.publisher.address().ok_or(PublishError::NoWallet)?;
    let job = st.publisher.jobs.create("recipe_publish", "Job initiated...").map_err(PublishError::from)?;
    let id = job.id.clone();
    let st2 = st.clone();
    tokio::spawn(async move {
        job.progress(5, "Starting recipe processing...");
        let progress = |p: u8, m: String| job.progress(p, m);
        let work = recipes::recipe(&st2.publisher, st2.stores.records.as_ref(), body, &progress);
        let out = tokio::time::timeout(JOB_MAX_RUN, work).await;
        match out {
            Ok(Ok(p)) => job.complete(p.response()),
            Ok(Err(e)) => job.fail(e.to_string()),
            Err(_) => job.fail(format!("the job ran longer than {} minutes", JOB_MAX_RUN.as_secs() / 60)),
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({"jobId": id, "status": "pending", "message": "Recipe publishing initiated. This may take a few minutes..."}))).into_response())
}

/// `POST /api/templates/newTemplate`.
pub async fn new_template(State(st): State<SharedState>, req: Request) -> ApiResult<Json<Value>> {
    require_admin(&st, req.headers()).await?;
    let p = st.publisher.template(object_body(req).await?).await?;
    Ok(Json(json!({
        "newTemplate": {"transactionId": p.transaction_id, "did": p.did, "didTx": p.did, "blockchain": "arweave", "provider": "turbo",
                        "url": format!("https://arweave.net/{}", p.transaction_id), "indexedToPendingStatus": true},
        "blockchain": "arweave",
    })))
}

async fn new_typed(st: &SharedState, record_type: &str, req: Request) -> ApiResult<Json<Value>> {
    require_admin(st, req.headers()).await?;
    let p = st.publisher.record(record_type, object_body(req).await?).await?;
    Ok(Json(json!({"transactionId": p.transaction_id, "recordToIndex": p.record_to_index, "blockchain": "arweave"})))
}

/// `POST /api/creators/newCreator`: the server wallet's creator registration.
pub async fn new_creator(State(st): State<SharedState>, req: Request) -> ApiResult<Json<Value>> {
    new_typed(&st, "creatorRegistration", req).await
}

/// `POST /api/organizations/newOrganization`.
pub async fn new_organization(State(st): State<SharedState>, req: Request) -> ApiResult<Json<Value>> {
    new_typed(&st, "organization", req).await
}

/// `POST /api/workout/resolve-exercises`: `{exerciseNames: [...]}`.
pub async fn resolve_exercises(State(st): State<SharedState>, RequiredUser(_): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    let body = object_body(req).await?;
    let Some(Value::Array(names)) = body.get("exerciseNames") else {
        return Err(ApiError::BadRequest("Exercise names array is required".into()));
    };
    let names: Vec<String> = names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect();
    Ok(Json(recipes::resolve_exercises(st.stores.records.as_ref(), &names).await?))
}

/// `POST /api/media/arweave-upload`: `{mediaId}` of the caller's upload → its
/// Arweave transaction, streamed from the media store.
pub async fn arweave_upload(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    let body = object_body(req).await?;
    let Some(raw) = body.get("mediaId").and_then(Value::as_str) else { return Err(ApiError::BadRequest("mediaId is required".into())) };
    let id = MediaId::parse(raw).ok_or_else(|| ApiError::BadRequest("mediaId must be 64 hex characters".into()))?;
    let item = st.media.lookup(&id).await?.ok_or(ApiError::NotFound("Media file not found"))?;
    let m = item.manifest.as_ref();
    let owner = m.and_then(|m| m.user_public_key.as_deref());
    if owner.is_none() || owner != user.public_key() {
        return Err(ApiError::Forbidden("Access denied: not the owner of this media file".into()));
    }
    let mime = m.map_or("application/octet-stream", |m| m.mime_type.as_str());
    let name = m.map_or("", |m| m.original_name.as_str());
    let txid = st.publisher.media(item.source.clone(), item.size, mime, name).await?;
    Ok(Json(json!({
        "success": true, "transactionId": txid, "arweaveUrl": format!("https://arweave.net/{txid}"),
        "message": "File uploaded to Arweave successfully",
    })))
}

/// `GET /api/publish/schema?recordType=`: the original's dynamic schema, from
/// the indexed templates: `template_info`, `example` (`basic` + the type's own
/// section), `field_descriptions`, `template_fields_info` (`{field: {type,
/// index, enumValues}}`, what the reference client maps enums with).
pub async fn schema(State(st): State<SharedState>, Query(q): Query<HashMap<String, String>>) -> ApiResult<Json<Value>> {
    let Some(rt) = q.get("recordType").map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return Err(ApiError::BadRequest("Missing required parameter: recordType (GET /api/publish/schema?recordType=post)".into()));
    };
    let Some(t) = st.publisher.template_named(rt).await? else {
        return Err(ApiError::NotFound("Record type not found: no template of that name is indexed"));
    };
    let sample = |f: &crate::indexer::expand::Field| match f.ty.as_deref().unwrap_or("") {
        "repeated dref" => json!(["did:arweave:<txid>"]),
        t if t.starts_with("repeated") => json!([]),
        "uint64" | "float" | "long" => json!(0),
        "bool" => json!(false),
        "enum" => f.enum_values.as_ref().and_then(|v| v.first()).map_or(Value::Null, |v| v.code.clone()),
        "dref" => json!("did:arweave:<txid>"),
        _ => json!(""),
    };
    let mut info = Map::new();
    let mut own = Map::new();
    let mut basic = Map::new();
    let mut descriptions = Map::new();
    for f in t.fields() {
        let ty = f.ty.clone().unwrap_or_default();
        let mut d = json!({"type": ty, "index": f.index_key});
        if let Some(v) = &f.enum_values {
            d["enumValues"] = Value::Array(v.iter().map(|e| json!({"code": e.code, "name": e.name})).collect());
        }
        info.insert(f.name.clone(), d);
        let section = if rt == "basic" { &mut basic } else { &mut own };
        section.insert(f.name.clone(), sample(f));
        descriptions.insert(format!("{}.{}", if rt == "basic" { "basic" } else { rt }, f.name), json!(format!("{ty} field")));
    }
    if rt != "basic" {
        if let Some(b) = st.publisher.template_named("basic").await? {
            for f in b.fields().iter().filter(|f| ["name", "description", "date", "language", "tagItems"].contains(&f.name.as_str())) {
                basic.insert(f.name.clone(), sample(f));
                descriptions.insert(format!("basic.{}", f.name), json!(format!("{} field", f.ty.clone().unwrap_or_default())));
            }
        }
    }
    let mut example = Map::new();
    example.insert("basic".into(), Value::Object(basic));
    if rt != "basic" {
        example.insert(rt.to_owned(), Value::Object(own));
    }
    example.insert("blockchain".into(), json!("arweave"));
    descriptions.insert("blockchain".into(), json!("Target blockchain ('arweave')"));
    Ok(Json(json!({
        "description": format!("Complete JSON schema for publishing a new {rt} record via POST /api/records/newRecord?recordType={rt} (generated from the indexed template)"),
        "template_info": {"template_name": rt, "template_txid": t.tx_id, "fields_count": t.fields().len()},
        "example": example,
        "field_descriptions": descriptions,
        "template_fields_info": info,
        "note": "Generated from the template this node has indexed; enum fields take a value's code or name.",
        "endpoint_info": {
            "publishing_endpoint": format!("/api/records/newRecord?recordType={rt}&storage=arweave"),
            "publishing_endpoint_gun": format!("/api/records/newRecord?recordType={rt}&storage=gun"),
            "method": "POST", "authentication": "Required", "content_type": "application/json",
        },
    })))
}

/// `GET /api/publish/schemas`.
pub async fn schemas() -> Json<Value> {
    let specific: Map<String, Value> = [
        ("recipe", "newRecipe", "Publish recipe records; ingredients by name are resolved to nutritionalInfo records"),
        ("workout", "newWorkout", "Publish workout records; exercises by name are resolved to exercise records"),
        ("post", "newPost", "Publish article/blog post records"),
        ("nutritionalInfo", "newNutritionalInfo", "Publish nutritional information records"),
        ("video", "newVideo", "Publish video records"),
        ("image", "newImage", "Publish image records"),
    ]
    .into_iter()
    .map(|(k, ep, d)| (k.to_owned(), json!({"endpoint": format!("POST /api/publish/{ep}"), "schema_url": format!("GET /api/publish/schema?recordType={k}"), "description": d})))
    .collect();
    Json(json!({
        "description": "Available JSON schemas for OIP publishing endpoints",
        "dynamic_schema_endpoint": {"url": "GET /api/publish/schema?recordType={recordType}", "description": "A schema for any record type whose template is indexed"},
        "specific_schemas": specific,
    }))
}

/// `GET /api/publish-status/:jobId`.
pub async fn status(State(st): State<SharedState>, PathParam(id): PathParam) -> Response {
    match st.publisher.jobs.watch(&id) {
        Some(rx) => Json(rx.borrow().to_json(&id)).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "Job not found", "message": "Job may have expired or never existed"}))).into_response(),
    }
}

fn sse(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// `GET /api/publish-status/:jobId/stream`: `ping`, then `publishProgress`
/// on every change until the job ends (`error` when unknown); at most
/// [`STREAM_MAX`]. The reader holds only the job's latest state.
pub async fn status_stream(State(st): State<SharedState>, PathParam(id): PathParam) -> Response {
    let rx = st.publisher.jobs.watch(&id);
    let stream = async_stream(id, rx);
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(http::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    resp
}

fn async_stream(
    id: String,
    rx: Option<tokio::sync::watch::Receiver<crate::publish::jobs::JobState>>,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    let now_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let first = sse("ping", &json!({"timestamp": now_ms()}));
    let deadline = tokio::time::Instant::now() + STREAM_MAX;
    // state: (receiver, whether the first state was sent, done)
    let init = (rx, false, false, id);
    let rest = futures_util::stream::unfold(init, move |(rx, sent, done, id)| async move {
        if done {
            return None;
        }
        let Some(mut rx) = rx else {
            let e = sse("error", &json!({"error": "Job not found", "message": "Job may have expired or never existed"}));
            return Some((Ok(e), (None, true, true, id)));
        };
        if sent && tokio::time::timeout_at(deadline, rx.changed()).await.map_or(true, |r| r.is_err()) {
            return None;
        }
        let state = rx.borrow_and_update().clone();
        let mut v = state.to_json(&id);
        if v.get("transactionId").is_none() {
            v["transactionId"] = Value::Null;
        }
        let finished = state.finished();
        Some((Ok(sse("publishProgress", &v)), (Some(rx), true, finished, id)))
    });
    futures_util::StreamExt::chain(futures_util::stream::once(async move { Ok(first) }), rest)
}
