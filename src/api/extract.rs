//! Request extractors and small checks every handler shares: the caller's identity
//! from `Authorization: Bearer` ([`RequiredUser`]: no token → 401 `No token
//! provided`, bad token → 403 `Invalid token`; [`MaybeUser`]: a bad or missing
//! token is anonymous; a revoked or replaced calendar token is no token), path
//! parameters refused as JSON, the method rule, the key a write is owned by, and
//! bounded request bodies.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use http::header;

use super::error::ApiError;
use crate::auth::User;
use crate::state::SharedState;

/// The bearer token of a request, if any.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// A verified token, unless it is a calendar token that was revoked or replaced.
async fn verified(state: &SharedState, token: &str) -> Option<User> {
    let user = state.auth.verify(token)?;
    if user.is_calendar_only() {
        match state.accounts.calendar_token_current(user.claims.user_id.as_deref(), token).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                // fail closed: an unreadable store must not revive a revoked token
                tracing::warn!(error = %e, "could not check a calendar token against its account");
                return None;
            }
        }
    }
    Some(user)
}

/// A route that requires a valid token.
pub struct RequiredUser(pub User);

/// A route where a token is optional; a bad one counts as none.
pub struct MaybeUser(pub Option<User>);

impl FromRequestParts<SharedState> for RequiredUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or(ApiError::NoToken)?;
        verified(state, token).await.map(RequiredUser).ok_or(ApiError::InvalidToken)
    }
}

impl FromRequestParts<SharedState> for MaybeUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        Ok(MaybeUser(match bearer(&parts.headers) {
            Some(t) => verified(state, t).await,
            None => None,
        }))
    }
}

/// 405 unless the method is GET or HEAD.
pub fn get_or_head(method: &http::Method) -> Result<(), ApiError> {
    if method == http::Method::GET || method == http::Method::HEAD {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
    }
}

/// The key a write is owned by: refused (403) for calendar-scoped tokens, which
/// are read-only, and for tokens that name no key (the original made those the
/// server's own).
pub fn writer_key(user: &crate::auth::User) -> Result<&str, ApiError> {
    if user.is_calendar_only() {
        return Err(ApiError::Forbidden(
            "Calendar-scoped tokens are read-only".into(),
        ));
    }
    user.public_key().ok_or_else(|| {
        ApiError::Forbidden("Token has no publicKey or publisherPubKey claim".into())
    })
}

/// One path parameter, as `axum::extract::Path<String>` but refused as a JSON 400
/// (axum's own rejection is plain text, e.g. for a segment that is not UTF-8).
pub struct PathParam(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(p)| PathParam(p))
            .map_err(|e| ApiError::BadRequest(format!("Invalid path: {}", e.body_text())))
    }
}

/// The request body, at most `limit` bytes (→ 413 past it).
pub async fn body_bytes(req: axum::extract::Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::TooLarge(format!("Request body over {limit} bytes")))
        }
        Err(e) => Err(ApiError::BadRequest(format!("Could not read the request body: {e}"))),
    }
}
