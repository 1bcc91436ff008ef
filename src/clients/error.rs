//! What can go wrong with an outbound request, told without URLs or secrets.

use super::limits::MAX_ERROR_TEXT;

/// What can go wrong with an outbound request. HTTP error statuses are not
/// errors here: callers look at [`super::Response::status`] and decide.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connect, read or total timeout.
    #[error("outbound request timed out")]
    Timeout,
    /// Could not connect (DNS, refused, TLS handshake).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The body is (or declares itself) larger than the cap.
    #[error("response larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// No slot for the request within the wait. `host` is the origin, or `*`
    /// when the global in-flight cap (or the wait queue) was the full one.
    #[error("too many outbound requests in flight to {host}")]
    Busy { host: String },
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: usize },
    /// The body is not the expected JSON.
    #[error("could not decode response: {0}")]
    Decode(String),
    /// The client could not be built (TLS backend, bad limits).
    #[error("could not build the HTTP client: {0}")]
    Build(String),
    #[error("outbound request failed: {0}")]
    Other(String),
}

impl ClientError {
    /// A reqwest error, without its URL, redirect errors aside (the client maps
    /// those, knowing the limit).
    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            ClientError::Timeout
        } else if e.is_connect() {
            ClientError::Connect(describe(&e))
        } else {
            ClientError::Other(describe(&e))
        }
    }

    /// Whether the request was refused for want of a slot (worth retrying later).
    pub fn is_busy(&self) -> bool {
        matches!(self, ClientError::Busy { .. })
    }
}

/// The error and its sources, `a: b: c`, without the URL, bounded.
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = match err.downcast_ref::<reqwest::Error>() {
            Some(r) => strip_url(r),
            None => err.to_string(),
        };
        if !text.is_empty() && !out.ends_with(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            let _ = write!(out, "{text}");
        }
        if out.len() >= MAX_ERROR_TEXT {
            break;
        }
        cur = err.source();
    }
    truncate(out, MAX_ERROR_TEXT)
}

/// A reqwest error's own message (not its sources), without its URL.
fn strip_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text.replace(&format!(" for url ({url})"), "").replace(url.as_str(), "(url)"),
        None => text,
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
