//! The static mounts: `/media/<path>` from `<data-dir>/media/web/` and
//! `/api/generate/media/<file>` from the generate-media dir, plus the original's
//! query forms `GET /api/media?id=F` and `GET /api/generate/media?id=F` (both served
//! from the generate-media dir, as the original did — without its traversal hole).

use std::path::Path;

use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method};

use super::error::ApiError;
use super::extract;
use crate::http::file::FileSpec;
use crate::http::safe_path::{self, PathError};
use crate::state::SharedState;

pub async fn web(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let raw = mount_relative(&req, "/media/");
    serve(&st, &st.web_root, &raw, req.method(), req.headers(), |p| st.static_cache_control(p)).await
}

pub async fn generate(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let raw = mount_relative(&req, "/api/generate/media/");
    serve(&st, &st.generate_root, &raw, req.method(), req.headers(), |p| st.static_cache_control(p)).await
}

/// `?id=<file>`: the id is taken still percent-encoded from the raw query and goes
/// through the same path rules as a URL path.
pub async fn generate_by_query(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let raw = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("id=")))
        .map(|v| v.replace('+', "%20"))
        .ok_or_else(|| ApiError::BadRequest("Missing id parameter".into()))?;
    serve(&st, &st.generate_root, &raw, req.method(), req.headers(), |p| st.static_cache_control(p)).await
}

fn mount_relative(req: &Request, prefix: &str) -> String {
    req.uri().path().strip_prefix(prefix).unwrap_or("").to_owned()
}

/// Serve `raw` (a still percent-encoded path relative to `root`) through the file
/// machinery, its `Cache-Control` chosen by `cache_control`. A missing file is
/// `ApiError::NotFound`, a path the rules refuse `ApiError::BadRequest`.
pub async fn serve(
    st: &SharedState,
    root: &Path,
    raw: &str,
    method: &Method,
    headers: &HeaderMap,
    cache_control: impl Fn(&Path) -> HeaderValue,
) -> Result<Response, ApiError> {
    extract::get_or_head(method)?;
    let root = root.to_path_buf();
    let raw = raw.to_owned();
    let opened = crate::memory::track::spawn_blocking(move || safe_path::open(&root, &raw)).await.map_err(ApiError::internal)?;
    let (path, file, meta) = opened.map_err(|e| match e {
        PathError::Invalid => ApiError::BadRequest("Invalid path".into()),
        PathError::NotFound => ApiError::NotFound("File not found"),
    })?;
    let content_type = mime_guess::from_path(&path)
        .first_raw()
        .map(HeaderValue::from_static)
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let spec = FileSpec {
        cache_control: cache_control(&path),
        size: meta.len(),
        modified: meta.modified().ok(),
        file,
        path,
        content_type,
        etag: None,
        vary: None,
    };
    Ok(st.files.respond_local(method, headers, spec).await?)
}
