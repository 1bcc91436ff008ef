//! The static mounts: `/media/<path>` from `<data-dir>/media/web/` and
//! `/api/generate/media/<file>` from the generate-media dir, plus the original's
//! query forms `GET /api/media?id=F` and `GET /api/generate/media?id=F` (both served
//! from the generate-media dir, as the original did — without its traversal hole).

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::{Extensions, HeaderMap, HeaderValue, Method};

use super::error::ApiError;
use super::extract;
use crate::http::open_cache::OpenFile;
use crate::http::safe_path::{self, PathError};
use crate::http::sendfile::Sendfile;
use crate::state::SharedState;

pub async fn web(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let raw = mount_relative(&req, "/media/");
    serve(&st, &st.web_root, &raw, req.method(), req.headers(), req.extensions(), |p| st.static_cache_control(p)).await
}

pub async fn generate(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let raw = mount_relative(&req, "/api/generate/media/");
    serve(&st, &st.generate_root, &raw, req.method(), req.headers(), req.extensions(), |p| st.static_cache_control(p)).await
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
    serve(&st, &st.generate_root, &raw, req.method(), req.headers(), req.extensions(), |p| st.static_cache_control(p)).await
}

fn mount_relative(req: &Request, prefix: &str) -> String {
    req.uri().path().strip_prefix(prefix).unwrap_or("").to_owned()
}

/// Serve `raw` (a still percent-encoded path relative to `root`) through the file
/// machinery, its `Cache-Control` chosen by `cache_control`. A missing file is
/// `ApiError::NotFound`, a path the rules refuse `ApiError::BadRequest`. A file
/// in the open-file cache is answered without leaving this thread; its body goes
/// with `sendfile` when the connection offers it (`ext`).
pub async fn serve(
    st: &SharedState,
    root: &Path,
    raw: &str,
    method: &Method,
    headers: &HeaderMap,
    ext: &Extensions,
    cache_control: impl Fn(&Path) -> HeaderValue,
) -> Result<Response, ApiError> {
    extract::get_or_head(method)?;
    let opened = match st.files.open_files().get(root, raw) {
        Some(hit) => hit,
        None => open(st, root, raw).await?,
    };
    let cc = cache_control(&opened.path);
    Ok(st.files.respond_open(method, headers, &opened, cc, ext.get::<Sendfile>().cloned()).await?)
}

/// Resolve, open and check `raw` on the blocking pool, hash it for its ETag (or
/// find the hash cached), and remember it in the open-file cache.
async fn open(st: &SharedState, root: &Path, raw: &str) -> Result<Arc<OpenFile>, ApiError> {
    let (root_owned, raw_owned) = (root.to_path_buf(), raw.to_owned());
    let opened = crate::memory::track::spawn_blocking(move || safe_path::open(&root_owned, &raw_owned)).await.map_err(ApiError::internal)?;
    let (path, file, meta) = opened.map_err(|e| match e {
        PathError::Invalid => ApiError::BadRequest("Invalid path".into()),
        PathError::NotFound => ApiError::NotFound("File not found"),
    })?;
    let file = Arc::new(file);
    let mtime = meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    let etag = st.files.hashes().get_or_compute(&path, &file, meta.len(), mtime).await.map_err(crate::http::error::HttpError::from)?;
    let opened = Arc::new(OpenFile::new(path, file, &meta, etag));
    st.files.open_files().insert(root, raw, opened.clone());
    Ok(opened)
}
