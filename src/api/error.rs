//! The API's one error type: every failure a handler can return, mapped to a status
//! code and the original node's JSON shape (`{"error": "..."}`, plus `details` or
//! `message` where it had them). Anything a request can influence ends here, never
//! in a panic.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::error::HttpError;
use crate::limits::Overloaded;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a malformed request; the message names what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 401: a route that needs a token got none.
    #[error("No token provided")]
    NoToken,
    /// 403: the token did not verify (bad signature, expired, malformed).
    #[error("Invalid token")]
    InvalidToken,
    /// 401 with the route's own wording (e.g. private media, anonymous caller).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403 with the route's own wording.
    #[error("{0}")]
    Forbidden(String),
    /// 404 with the route's own wording.
    #[error("{0}")]
    NotFound(&'static str),
    /// 409: the request conflicts with what is stored (e.g. a name taken by other bytes).
    #[error("{0}")]
    Conflict(String),
    /// 405, with the methods the resource does allow.
    #[error("Method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// 412: an If-Match / If-Unmodified-Since precondition failed.
    #[error("Precondition Failed")]
    PreconditionFailed,
    /// 413: the upload is over the configured limit.
    #[error("File too large")]
    PayloadTooLarge { limit: u64 },
    /// 413 for anything but uploads: a body or an answer over its bound.
    #[error("{0}")]
    TooLarge(String),
    /// 415: a body (or an uploaded file) of a type the route does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 431: the request head is over its bound.
    #[error("Request header fields too large")]
    HeadTooLarge,
    /// 416: no requested range overlaps the representation.
    #[error("Range Not Satisfiable")]
    RangeNotSatisfiable { size: u64 },
    /// 503: a bound is full and the wait for it timed out (or its queue is full).
    #[error("Server busy: {what}")]
    Overloaded { what: &'static str, retry_after: u64 },
    /// 402: a paid service (the bundler) has not enough credit.
    #[error("{0}")]
    PaymentRequired(String),
    /// 502: a service we called answered wrongly or refused.
    #[error("{0}")]
    BadGateway(String),
    /// 503 with its own message: a service is not configured or not reachable now.
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    /// 507: the data directory's filesystem is full.
    #[error("Insufficient storage")]
    InsufficientStorage,
    /// 501: a feature this node does not have yet.
    #[error("{0}")]
    NotImplemented(String),
    /// 500: our fault; the detail is logged, the client gets a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NoToken | ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::InvalidToken | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } | ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Overloaded { .. } | ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        if crate::media::item::is_no_space(&e) {
            ApiError::InsufficientStorage
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl From<Overloaded> for ApiError {
    fn from(o: Overloaded) -> Self {
        ApiError::Overloaded {
            what: o.what,
            retry_after: o.retry_after,
        }
    }
}

impl From<HttpError> for ApiError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::PreconditionFailed => ApiError::PreconditionFailed,
            HttpError::RangeNotSatisfiable { size } => ApiError::RangeNotSatisfiable { size },
            HttpError::Overloaded(o) => o.into(),
            HttpError::Io(e) => e.into(),
            HttpError::Header(m) => ApiError::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                json!({ "error": "Server error" })
            }
            ApiError::PayloadTooLarge { limit } => {
                json!({ "error": "File too large", "limit": limit })
            }
            ApiError::Overloaded { what, retry_after } => json!({
                "error": "Server busy",
                "details": format!("{what} is full; retry in {retry_after}s"),
            }),
            ApiError::InsufficientStorage => json!({
                "error": "Insufficient storage",
                "details": "the data directory's filesystem is full",
            }),
            other => json!({ "error": other.to_string() }),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        // An error may depend on who asked (401, a hidden item's 404) or on the
        // moment (503): no cache keeps one.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::RangeNotSatisfiable { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            ApiError::Overloaded { retry_after, .. } | ApiError::Unavailable { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            // RFC 9110 §15.5.2: a 401 carries the challenge that would succeed.
            ApiError::NoToken | ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"oipd\""));
            }
            _ => {}
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
