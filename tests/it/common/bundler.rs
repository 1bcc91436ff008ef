//! A test bundler on loopback speaking ArDrive Turbo's wire format: the upload
//! service (`POST /v1/tx/{token}` with a signed ANS-104 data item as
//! `application/octet-stream` → a JSON receipt; `202 Data Item Exists` for a
//! repeat; `402 Insufficient balance`; `400` for an item that does not parse or
//! whose signature does not verify) and the payment service (`GET
//! /v1/price/bytes/{n}` → `{winc}`; `GET /v1/balance` signed with `x-public-key`,
//! `x-nonce`, `x-signature`, the signature checked, `404 User Not Found` for an
//! unknown wallet). It verifies what a real bundler verifies: the item's
//! signature over its deep-hash, and the balance request's signature.
//!
//! Accepted items are bundled onto the test chain (when one is given) at the
//! block after its tip: invisible to GraphQL until the test mines it
//! (`TestGateway::set_tip`), as a real item is pending until its bundle lands.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::json;
use sha2::Digest as _;

use super::chain::{Chain, ChainTx};

/// One accepted data item.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub id: String,
    pub owner_address: String,
    pub tags: Vec<(String, String)>,
    pub data: Vec<u8>,
}

#[derive(Default)]
pub struct BundlerState {
    pub accepted: Mutex<Vec<Accepted>>,
    /// Credit per wallet address, in winc; an address not listed has none.
    pub credit: Mutex<HashMap<String, u128>>,
    pub winc_per_byte: AtomicU64,
    /// Answer every upload with 503.
    pub down: AtomicBool,
    /// Take the next this many uploads (verified, charged, bundled) but never
    /// answer them: the uploader is left between its upload and what follows
    /// (its timeout, or a kill).
    pub hold_next: AtomicU64,
    pub uploads: AtomicU64,
    pub refused_signatures: AtomicU64,
    pub balance_checks: AtomicU64,
    chain: Option<Arc<Mutex<Chain>>>,
}

pub struct TestBundler {
    pub url: String,
    pub state: Arc<BundlerState>,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, [("content-type", "text/plain")], body.to_owned()).into_response()
}

async fn upload(State(st): State<Arc<BundlerState>>, headers: HeaderMap, body: Bytes) -> Response {
    st.uploads.fetch_add(1, Ordering::SeqCst);
    if st.down.load(Ordering::SeqCst) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/octet-stream") {
        return text(StatusCode::BAD_REQUEST, "Invalid Content Type");
    }
    let Ok((header, offset)) = oipd::arweave::dataitem::parse_header(&body) else {
        return text(StatusCode::BAD_REQUEST, "Data item parsing error!");
    };
    let data = &body[offset..];
    if !oipd::arweave::dataitem::verify(&header, [data]) {
        st.refused_signatures.fetch_add(1, Ordering::SeqCst);
        return text(StatusCode::BAD_REQUEST, "Invalid Data Item!");
    }
    let id = header.id();
    let owner = header.owner_address();
    if st.accepted.lock().unwrap().iter().any(|a| a.id == id) {
        return (StatusCode::ACCEPTED, "Data Item Exists").into_response();
    }
    let price = body.len() as u128 * st.winc_per_byte.load(Ordering::SeqCst) as u128;
    {
        let mut credit = st.credit.lock().unwrap();
        let have = credit.get(&owner).copied().unwrap_or(0);
        if have < price {
            return text(StatusCode::PAYMENT_REQUIRED, "Insufficient balance");
        }
        credit.insert(owner.clone(), have - price);
    }
    let tags: Vec<(String, String)> = header
        .tags()
        .iter()
        .map(|t| (String::from_utf8_lossy(&t.name).into_owned(), String::from_utf8_lossy(&t.value).into_owned()))
        .collect();
    let a = Accepted { id: id.clone(), owner_address: owner.clone(), tags: tags.clone(), data: data.to_vec() };
    st.accepted.lock().unwrap().push(a);
    if let Some(chain) = &st.chain {
        let mut c = chain.lock().unwrap();
        let height = c.tip + 1;
        c.txs.push(ChainTx { id: id.clone(), owner_address: owner.clone(), owner_key: b64url(header.owner()), tags, height, data: data.to_vec() });
    }
    if st.hold_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        std::future::pending::<()>().await;
    }
    axum::Json(json!({
        "id": id, "owner": owner, "dataCaches": ["arweave.net"], "fastFinalityIndexes": ["arweave.net"],
        "deadlineHeight": 1_000_000, "timestamp": 1_700_000_000_000u64, "version": "0.2.0", "winc": price.to_string(),
    }))
    .into_response()
}

async fn price(State(st): State<Arc<BundlerState>>, Path(n): Path<String>) -> Response {
    match n.parse::<u64>() {
        Ok(n) => axum::Json(json!({"winc": (n as u128 * st.winc_per_byte.load(Ordering::SeqCst) as u128).to_string(), "adjustments": []})).into_response(),
        Err(_) => text(StatusCode::BAD_REQUEST, "Invalid byte count"),
    }
}

async fn balance(State(st): State<Arc<BundlerState>>, headers: HeaderMap) -> Response {
    st.balance_checks.fetch_add(1, Ordering::SeqCst);
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (Some(key), Some(nonce), Some(sig)) = (h("x-public-key"), h("x-nonce"), h("x-signature")) else {
        return text(StatusCode::FORBIDDEN, "Invalid signature or missing required headers");
    };
    if oipd::indexer::verify::verify_signature(nonce.as_bytes(), &sig, &key).is_err() {
        return text(StatusCode::FORBIDDEN, "Invalid signature or missing required headers");
    }
    let Some(modulus) = oipd::indexer::verify::decode_base64_lenient(&key) else {
        return text(StatusCode::FORBIDDEN, "Invalid signature or missing required headers");
    };
    let address = b64url(&sha2::Sha256::digest(&modulus));
    match st.credit.lock().unwrap().get(&address) {
        Some(c) => axum::Json(json!({"winc": c.to_string(), "adjustments": []})).into_response(),
        None => text(StatusCode::NOT_FOUND, "User Not Found"),
    }
}

impl TestBundler {
    /// A bundler charging `winc_per_byte`; accepted items go onto `chain`.
    pub async fn start(chain: Option<Arc<Mutex<Chain>>>, winc_per_byte: u64) -> Self {
        let st = Arc::new(BundlerState { chain, winc_per_byte: AtomicU64::new(winc_per_byte), ..Default::default() });
        let app = Router::new()
            .route("/v1/tx", post(upload))
            .route("/v1/tx/{token}", post(upload))
            .route("/v1/price/bytes/{n}", get(price))
            .route("/v1/balance", get(balance))
            .layer(axum::extract::DefaultBodyLimit::max(256 * 1024 * 1024))
            .with_state(st.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        TestBundler { url: format!("http://{addr}"), state: st }
    }

    pub fn set_credit(&self, address: &str, winc: u128) {
        self.state.credit.lock().unwrap().insert(address.to_owned(), winc);
    }

    pub fn credit(&self, address: &str) -> u128 {
        self.state.credit.lock().unwrap().get(address).copied().unwrap_or(0)
    }

    pub fn hold_next(&self, uploads: u64) {
        self.state.hold_next.store(uploads, Ordering::SeqCst);
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.state.accepted.lock().unwrap().clone()
    }
}
