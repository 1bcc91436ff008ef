//! `/api/creators`, `/api/organizations` (the original's shapes) and
//! `/api/health/indexer`: thin handlers over [`crate::store::indexer`] and
//! [`crate::indexer::run::Indexer`].

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiResult;
use crate::records::service::RecordsError;
use crate::state::SharedState;
use crate::store::indexer::{Listing, MAX_LIST};

/// Bound: creators listed (the original's `size: 100`).
const CREATORS_LISTED: u32 = 100;

fn listing_response(count_key: &str, max_key: &str, docs_key: &str, l: Listing) -> Response {
    // The documents are stored JSON: written out as they are.
    let mut out = String::with_capacity(64 + l.docs.iter().map(|d| d.len() + 1).sum::<usize>());
    out.push_str(&format!("{{\"{count_key}\":{},\"{max_key}\":{},\"{docs_key}\":[", l.count, l.max_block.unwrap_or(0)));
    for (i, d) in l.docs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(d);
    }
    out.push_str("]}");
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `GET /api/creators`: `{qtyCreatorsInDB, maxArweaveCreatorRegBlockInDB, creatorsInDB}`.
pub async fn creators(State(st): State<SharedState>) -> ApiResult<Response> {
    let l = st.stores.indexer.creators(CREATORS_LISTED).await.map_err(RecordsError::Store)?;
    Ok(listing_response("qtyCreatorsInDB", "maxArweaveCreatorRegBlockInDB", "creatorsInDB", l))
}

#[derive(serde::Deserialize)]
pub struct LimitParam {
    limit: Option<String>,
}

/// `GET /api/organizations?limit=` (default 100, at most 1000, as the original).
pub async fn organizations(State(st): State<SharedState>, Query(q): Query<LimitParam>) -> ApiResult<Response> {
    let limit = q.limit.and_then(|l| l.trim().parse::<u32>().ok()).filter(|l| *l > 0).unwrap_or(100).min(MAX_LIST);
    let l = st.stores.indexer.organizations(limit).await.map_err(RecordsError::Store)?;
    Ok(listing_response("qtyOrganizationsInDB", "maxArweaveOrgBlockInDB", "organizationsInDB", l))
}

/// `GET /api/health/indexer`.
pub async fn health(State(st): State<SharedState>) -> Json<Value> {
    match &st.indexer {
        Some(ix) => {
            let mut v = ix.health().await;
            v["enabled"] = Value::Bool(true);
            Json(v)
        }
        None => Json(json!({"enabled": false, "reason": "no Arweave gateway configured (--arweave-gateways)"})),
    }
}
