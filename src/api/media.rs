//! `/api/media`: the content-addressed media API (upload, fetch, info) with the
//! original's contract and its bugs fixed: uploads stream and never change an
//! existing owner; `organization` media is not public; a file without a manifest
//! takes the configured default level (private), never public; fetches go through
//! the same conditional/range machinery as `/media`.

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, HeaderValue, Method};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{self, MaybeUser, RequiredUser};
use crate::auth::User;
use crate::http::file::Representation;
use crate::media::access::{self, Denied};
use crate::media::backend::UploadSink;
use crate::media::{AccessLevel, Manifest, MediaId, NewMedia, StoredMedia, UploadError};
use crate::state::SharedState;

/// Multipart framing allowed on top of `--upload-max-bytes` (part headers,
/// boundaries, the `access_level` field).
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Bound: bytes read from a non-file form field (`access_level` and any other).
const MAX_TEXT_FIELD: usize = 1024;

const PUBLIC_CC: &str = "public, max-age=31536000, immutable";
/// Private media may be cached by the caller's own browser only, and caches must
/// key it by the credentials that unlocked it.
const PRIVATE_CC: &str = "private, max-age=31536000, immutable";

pub async fn upload(
    State(st): State<SharedState>,
    RequiredUser(user): RequiredUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Json<Value>> {
    let owner = extract::writer_key(&user)?.to_owned();
    let limit = st.media.max_upload();
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) {
        if len > limit + MULTIPART_OVERHEAD {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let mut multipart =
        multipart.map_err(|_| ApiError::BadRequest("Expected a multipart/form-data body".into()))?;

    let mut access = AccessLevel::Private;
    let mut file: Option<(Box<dyn UploadSink>, String, String)> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(e, limit))? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(ApiError::BadRequest("Only one file may be uploaded per request".into()));
                }
                let original_name = field.file_name().unwrap_or("").to_owned();
                let mime = field
                    .content_type()
                    .filter(|m| HeaderValue::from_str(m).is_ok())
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let mut up = st.media.begin_upload().await.map_err(upload_error)?;
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
                    up.push(&chunk).await.map_err(upload_error)?;
                }
                file = Some((up, original_name, mime));
            }
            "access_level" => {
                let v = small_text(&mut field, limit).await?;
                access = AccessLevel::parse(&v).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "Invalid access_level {v:?}: expected public, private or organization"
                    ))
                })?;
            }
            other if field.file_name().is_some() => {
                return Err(ApiError::BadRequest(format!(
                    "Unexpected field {other:?}: the file must be sent in the field \"file\""
                )));
            }
            _ => {
                small_text(&mut field, limit).await?;
            }
        }
    }
    let Some((up, original_name, mime_type)) = file else {
        return Err(ApiError::BadRequest("No file provided".into()));
    };
    let size = up.size();
    let url_base = format!("{}/api/media/", origin(&headers));
    let ingested = up
        .finish(NewMedia { original_name, mime_type, owner, access, url_base: url_base.clone() })
        .await
        .map_err(upload_error)?;

    // Known bytes owned by someone else: confirm the id only, reveal nothing of
    // the owner's item (who owns it, its name, type or level).
    let mine = ingested.created || ingested.manifest.as_ref().and_then(|m| m.user_public_key.as_deref()) == user.public_key();
    let m = ingested.manifest.as_ref().filter(|_| mine);
    let level = access::level(m, st.media.default_access());
    let message = if ingested.created {
        "File uploaded successfully"
    } else {
        "File already exists; its owner and access level are unchanged"
    };
    Ok(Json(json!({
        "success": true,
        "mediaId": ingested.media_id,
        "magnetURI": "",
        "infoHash": "",
        "httpUrl": format!("{url_base}{}", ingested.media_id),
        "size": if mine { Some(m.map_or(size, |m| if m.file_size > 0 { m.file_size } else { size })) } else { None },
        "mime": m.map(|m| m.mime_type.clone()),
        "originalName": m.map(|m| m.original_name.clone()),
        "access_level": if mine { Some(level.as_str()) } else { None },
        "owner": m.and_then(|m| m.user_public_key.clone()),
        "message": message,
        "torrentAvailable": false,
    })))
}

pub async fn get(
    State(st): State<SharedState>,
    extract::PathParam(media_id): extract::PathParam,
    MaybeUser(user): MaybeUser,
    req: Request,
) -> Result<Response, ApiError> {
    extract::get_or_head(req.method())?;
    let (item, level) = find_authorized(&st, &media_id, user.as_ref(), FETCH_DENIAL).await?;
    let content_type = item
        .manifest
        .as_ref()
        .and_then(|m| HeaderValue::from_str(&m.mime_type).ok())
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let public = level == AccessLevel::Public;
    // The type was declared by the uploader: anything that a browser could run
    // (HTML, SVG, XML, JS, ...) is served as a download, and every response is
    // sandboxed, so an upload can never script this origin.
    let inline = content_type.to_str().is_ok_and(is_inert_media_type);
    let rep = Representation {
        source: item.source,
        size: item.size,
        modified: item.modified,
        etag: media_id.to_ascii_lowercase(),
        cache_control: HeaderValue::from_static(if public { PUBLIC_CC } else { PRIVATE_CC }),
        vary: (!public).then(|| HeaderValue::from_static("Authorization")),
        content_type,
    };
    let sendfile = req.extensions().get::<crate::http::sendfile::Sendfile>().cloned();
    let mut resp = st.files.respond(req.method(), req.headers(), rep, sendfile).await?;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    if !inline {
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    Ok(resp)
}

/// Bound: bytes of a JSON body of the media flows (createRecord, web-setup).
const MAX_FLOW_BODY: usize = 64 * 1024;

/// The caller's own item, or 404 — for a missing item and for someone else's
/// alike (the original answered 403 for the latter, telling it exists).
async fn owned(st: &SharedState, media_id: &str, user: &User) -> ApiResult<StoredMedia> {
    const MISSING: &str = "Media file not found. Upload file first.";
    let item = match find(st, media_id).await {
        Err(ApiError::NotFound(_)) => return Err(ApiError::NotFound(MISSING)),
        other => other?,
    };
    let owner = item.manifest.as_ref().and_then(|m| m.user_public_key.as_deref());
    match (owner, user.public_key()) {
        (Some(o), Some(k)) if o == k => Ok(item),
        _ => Err(ApiError::NotFound(MISSING)),
    }
}

fn json_object(body: &[u8]) -> ApiResult<serde_json::Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::BadRequest("The body must be a JSON object".into())),
        Err(e) => Err(ApiError::BadRequest(format!("Invalid JSON body: {e}"))),
    }
}

/// `POST /api/media/createRecord`: an image, video or audio record (private GUN
/// record, `localId` `media_<mediaId>`) describing media the caller uploaded, in
/// the original's shape.
pub async fn create_record(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    let key = extract::writer_key(&user)?.to_owned();
    let b = json_object(&extract::body_bytes(req, MAX_FLOW_BODY).await?)?;
    let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let (Some(media_id), Some(record_type)) = (text("mediaId"), text("recordType")) else {
        return Err(ApiError::BadRequest("mediaId and recordType are required".into()));
    };
    if !["image", "video", "audio"].contains(&record_type) {
        return Err(ApiError::BadRequest("recordType must be image, video, or audio".into()));
    }
    let item = owned(&st, media_id, &user).await?;
    let m = item.manifest.as_ref();
    let original_name = m.map(|m| m.original_name.clone()).unwrap_or_default();
    let mime = m.map(|m| m.mime_type.clone()).unwrap_or_else(|| "application/octet-stream".into());
    let info = b.get("basicInfo").and_then(Value::as_object).cloned().unwrap_or_default();
    let ac_in = b.get("accessControl").and_then(Value::as_object).cloned().unwrap_or_default();
    let num = |k: &str| b.get(k).and_then(Value::as_f64).filter(|n| n.is_finite() && *n >= 0.0).unwrap_or(0.0);
    let type_title = format!("{}{}", record_type[..1].to_uppercase(), &record_type[1..]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let basic = json!({
        "name": info.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned).unwrap_or_else(|| original_name.clone()),
        "description": info.get("description").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
            .unwrap_or_else(|| format!("{type_title} file: {original_name}")),
        "language": info.get("language").and_then(Value::as_str).unwrap_or("en"),
        "date": now,
        "nsfw": info.get("nsfw").and_then(Value::as_bool).unwrap_or(false),
        "tagItems": info.get("tagItems").filter(|t| t.is_array()).cloned().unwrap_or_else(|| json!([])),
    });
    let level = ac_in.get("access_level").and_then(Value::as_str).map(str::to_owned)
        .or_else(|| m.and_then(|m| m.access_level.clone()))
        .unwrap_or_else(|| "private".into());
    let mut access = json!({"access_level": level, "owner_public_key": key});
    if level == "organization" {
        if let Some(s) = ac_in.get("shared_with") {
            access["shared_with"] = s.clone();
        }
    }
    let size = item.size;
    let section = match record_type {
        "image" => json!({"bittorrentAddress": "", "filename": original_name, "width": num("width"), "height": num("height"), "size": size, "contentType": mime}),
        "video" => json!({"bittorrentAddress": "", "filename": original_name, "width": num("width"), "height": num("height"), "size": size, "duration": num("duration"), "contentType": mime, "thumbnails": []}),
        _ => json!({"bittorrentAddress": "", "filename": original_name, "size": size, "duration": num("duration"), "contentType": mime}),
    };
    let record = json!({"basic": basic, record_type: section, "accessControl": access});
    let media_id = media_id.to_ascii_lowercase();
    let query = format!("storage=gun&recordType={record_type}&localId=media_{media_id}");
    let body = serde_json::to_vec(&record).map_err(ApiError::internal)?;
    let out = st.records.new_record(&key, &query, &body).await?;
    Ok(Json(json!({
        "success": true,
        "did": out["did"],
        "recordType": record_type,
        "mediaId": media_id,
        "storage": "gun",
        "encrypted": out["encrypted"],
        "message": format!("{type_title} record created successfully"),
    })))
}

/// `POST /api/media/web-setup`: a copy of the caller's media under the static web
/// root, served at `/media/<COMPOSE_PROJECT_NAME>/<filename>`; answers its `webUrl`.
pub async fn web_setup(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> ApiResult<Json<Value>> {
    use crate::media::webcopy::{self, WebCopyError};
    extract::writer_key(&user)?;
    let headers = req.headers().clone();
    let b = json_object(&extract::body_bytes(req, MAX_FLOW_BODY).await?)?;
    let text = |k: &str| b.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (Some(media_id), Some(filename)) = (text("mediaId"), text("filename")) else {
        return Err(ApiError::BadRequest("mediaId and filename are required".into()));
    };
    if !webcopy::valid_copy_name(filename) {
        return Err(ApiError::BadRequest(WebCopyError::BadName.to_string()));
    }
    let item = owned(&st, media_id, &user).await?;
    // the stored type must be inert media too (its bytes, not only its new name)
    let mime = item.manifest.as_ref().map_or("application/octet-stream", |m| m.mime_type.as_str());
    if !is_inert_media_type(mime) || mime.starts_with("application/") || mime.starts_with("text/") {
        return Err(ApiError::BadRequest(format!("Only image, video and audio media can be set up for the web (this item is {mime})")));
    }
    // a copy is a file stream: it takes a stream slot like any body
    let _slot = st.files.streams().acquire().await?;
    let project = &st.config.media.web_setup_dir;
    webcopy::copy_to(item, &media_id.to_ascii_lowercase(), &st.web_root.join(project), filename).await.map_err(|e| match e {
        WebCopyError::BadName => ApiError::BadRequest(e.to_string()),
        WebCopyError::Conflict => ApiError::Conflict("A different file already has that name under /media; choose another filename".into()),
        WebCopyError::NoSpace => ApiError::InsufficientStorage,
        WebCopyError::Io(e) => ApiError::Internal(e.to_string()),
    })?;
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    /// What a path segment may not carry literally (RFC 3986 pchar).
    const SEGMENT: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'/').add(b'<').add(b'>').add(b'?').add(b'[').add(b']').add(b'\\').add(b'^').add(b'`').add(b'{').add(b'|').add(b'}');
    let seg = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
    let web_url = format!("{}/media/{}/{}", origin(&headers), seg(project), seg(filename));
    Ok(Json(json!({"success": true, "webUrl": web_url, "filename": filename, "message": "Web access setup successfully"})))
}

/// Media types a browser renders without running anything.
fn is_inert_media_type(ct: &str) -> bool {
    let t = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    (t.starts_with("image/") && !t.contains("svg") && !t.contains("xml"))
        || t.starts_with("video/")
        || t.starts_with("audio/")
        || t == "application/pdf"
        || t == "text/plain"
}

pub async fn info(
    State(st): State<SharedState>,
    method: Method,
    extract::PathParam(media_id): extract::PathParam,
    MaybeUser(user): MaybeUser,
) -> ApiResult<Response> {
    extract::get_or_head(&method)?;
    let (item, level) = find_authorized(&st, &media_id, user.as_ref(), INFO_DENIAL).await?;
    let manifest = item.manifest.unwrap_or_else(|| Manifest {
        media_id: media_id.to_ascii_lowercase(),
        original_name: String::new(),
        mime_type: "application/octet-stream".into(),
        file_size: item.size,
        magnet_uri: String::new(),
        info_hash: String::new(),
        http_url: String::new(),
        created_at: String::new(),
        user_public_key: None,
        access_level: Some(level.as_str().into()),
        extra: Default::default(),
    });
    let mut v = serde_json::to_value(manifest).map_err(ApiError::internal)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("seeding".into(), json!(false));
        o.insert("seedingInfo".into(), Value::Null);
    }
    // Who asks decides the answer (200, 401 or 404): no cache may keep it.
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::VARY, HeaderValue::from_static("Authorization")),
    ];
    Ok((headers, Json(v)).into_response())
}

/// The original's wording of a refusal to an anonymous caller, per route.
const FETCH_DENIAL: &str = "Authentication required for private media";
const INFO_DENIAL: &str = "Authentication required";

/// Look an item up and apply the access rule; returns it with its effective level.
///
/// The answer depends on who asks, never on whether a hidden item exists: an
/// anonymous caller gets 401 for anything that is not public *including ids that
/// do not exist*, and a signed-in caller gets 404 for anything they may not see,
/// exactly as for a missing id. (The original answered 401/403 for private items
/// and 404 for missing ones, which told anyone whether a file with a given
/// SHA-256 had been uploaded.)
async fn find_authorized(
    st: &SharedState,
    media_id: &str,
    user: Option<&User>,
    anonymous_denial: &'static str,
) -> ApiResult<(StoredMedia, AccessLevel)> {
    // A calendar-scoped token reads calendar records only: for media it is anonymous.
    let user = user.filter(|u| !u.is_calendar_only());
    let item = match find(st, media_id).await {
        Err(ApiError::NotFound(_)) if user.is_none() => return Err(ApiError::Unauthorized(anonymous_denial)),
        other => other?,
    };
    let level = access::level(item.manifest.as_ref(), st.media.default_access());
    let owner = item.manifest.as_ref().and_then(|m| m.user_public_key.as_deref());
    access::authorize(level, owner, user.and_then(User::public_key)).map_err(|denied| match denied {
        Denied::Anonymous => ApiError::Unauthorized(anonymous_denial),
        Denied::NotOwner => ApiError::NotFound("Media not found"),
    })?;
    Ok((item, level))
}

async fn find(st: &SharedState, media_id: &str) -> ApiResult<StoredMedia> {
    let id = MediaId::parse(media_id)
        .ok_or_else(|| ApiError::BadRequest("Invalid mediaId: expected 64 hexadecimal characters".into()))?;
    st.media.lookup(&id).await?.ok_or(ApiError::NotFound("Media not found"))
}

/// `<proto>://<host>` from X-Forwarded-* or Host, as the original built `httpUrl`.
fn origin(headers: &HeaderMap) -> String {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
    };
    let proto = get("x-forwarded-proto").filter(|p| p == "http" || p == "https").unwrap_or_else(|| "http".into());
    let host = get("x-forwarded-host").or_else(|| get("host")).unwrap_or_else(|| "localhost".into());
    format!("{proto}://{host}")
}

async fn small_text(field: &mut Field<'_>, limit: u64) -> ApiResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
        if buf.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(ApiError::BadRequest(format!("Form field over {MAX_TEXT_FIELD} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| ApiError::BadRequest("Form field is not UTF-8".into()))
}

fn multipart_error(e: MultipartError, limit: u64) -> ApiError {
    if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::BadRequest(format!("Malformed multipart body: {}", e.body_text()))
    }
}

fn upload_error(e: UploadError) -> ApiError {
    match e {
        UploadError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
        UploadError::NoSpace => ApiError::InsufficientStorage,
        UploadError::Io(e) => ApiError::from(e),
        UploadError::Unavailable(_) => ApiError::Overloaded { what: "the media object store", retry_after: 5 },
        UploadError::Busy(o) => ApiError::from(o),
    }
}
