//! The original's web pages, served as the original served them: `--public-dir`
//! at `/` through the same RFC 9110 file machinery as media (strong ETags,
//! conditionals, ranges), revalidated rather than immutable (`no-cache` for HTML,
//! a short max-age otherwise); `/` is `index.html`; with the fallback on (default:
//! when the directory has an `index.html`), any other `GET` outside `/api/`,
//! `/media/`, `/gun-relay/` and `/config.js` that names no file answers
//! `index.html`, as the original's `app.get('*')`. And `GET /config.js`, the
//! script the pages load for their API base.
//!
//! No bounds of its own: file bodies take the file-stream bound.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, Method};

use super::error::ApiError;
use super::static_media;
use crate::state::SharedState;

/// Path prefixes the fallback never answers with `index.html` (the original's list).
const NOT_PAGES: &[&str] = &["/api/", "/media/", "/gun-relay/", "/local-media/"];

/// `GET /config.js`: `window.API_BASE_URL = '…'; window.OIP_PORT = <port>;`,
/// the value escaped so that no configuration can leave the string.
pub async fn config_js(State(st): State<SharedState>, method: Method) -> Result<Response, ApiError> {
    super::extract::get_or_head(&method)?;
    let body = format!(
        "window.API_BASE_URL = '{}'; window.OIP_PORT = {};\n",
        js_single_quoted(&st.config.pages.public_api_base_url),
        st.config.http.listen.port()
    );
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/javascript; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    // (hyper sends no body for HEAD, with the same Content-Length)
    Ok((headers, body).into_response())
}

/// The contents of a single-quoted JavaScript string: everything but plain
/// printable ASCII (and the quote, backslash, `<` and `>`, which could end a
/// string or a `<script>` element) becomes a `\uXXXX` escape.
pub fn js_single_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' '..='~' if !matches!(c, '\'' | '"' | '\\' | '<' | '>' | '`' | '&') => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

/// Everything no route matched: a page (or the `index.html` fallback) for `GET`
/// and `HEAD`, else the JSON 404 every unknown path gets.
pub async fn fallback(State(st): State<SharedState>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    match page(&st, &parts).await {
        Some(Ok(resp)) => resp,
        Some(Err(e)) => e.into_response(),
        None => ApiError::NotFound("Not found").into_response(),
    }
}

async fn page(st: &SharedState, req: &http::request::Parts) -> Option<Result<Response, ApiError>> {
    let root = st.public_root.as_deref()?;
    let path = req.uri.path();
    if !(req.method == Method::GET || req.method == Method::HEAD) || NOT_PAGES.iter().any(|p| path.starts_with(p)) {
        return None;
    }
    let mut raw = path.trim_start_matches('/').to_owned();
    if raw.is_empty() || raw.ends_with('/') {
        raw.push_str("index.html");
    }
    let cc = |p: &std::path::Path| st.page_cache_control(p);
    match static_media::serve(st, root, &raw, &req.method, &req.headers, &req.extensions, cc).await {
        Err(ApiError::NotFound(_)) if st.spa_fallback => {
            Some(static_media::serve(st, root, "index.html", &req.method, &req.headers, &req.extensions, cc).await)
        }
        Err(ApiError::NotFound(_)) => None,
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::js_single_quoted;

    #[test]
    fn config_values_cannot_leave_the_string() {
        assert_eq!(js_single_quoted("https://api.example.com:8443/x?y=1"), "https://api.example.com:8443/x?y=1");
        let hostile = "'; alert(1); '\\\n</script><script>alert(2)</script>\u{2028}é😀`${x}`\"";
        let q = js_single_quoted(hostile);
        for bad in ['\'', '"', '\\', '\n', '<', '>', '\u{2028}', '`', 'é', '😀'] {
            if bad == '\\' {
                assert!(q.split("\\u").skip(1).all(|h| h.len() >= 4 && h[..4].chars().all(|c| c.is_ascii_hexdigit())), "{q}");
            } else {
                assert!(!q.contains(bad), "{bad:?} in {q}");
            }
        }
        assert!(q.contains("\\u0027") && q.contains("\\u003c") && q.contains("\\ud83d\\ude00"));
    }
}
