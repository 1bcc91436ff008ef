//! The bundler, as ArDrive Turbo's services speak: the upload service takes a
//! signed ANS-104 data item (`POST /v1/tx/arweave`, `application/octet-stream`,
//! answering a JSON receipt `{id, owner, dataCaches, fastFinalityIndexes, …}`,
//! `202 Data Item Exists` for a repeat, `402` without credit, `400` for a bad
//! item); the payment service prices bytes (`GET /v1/price/bytes/{n}` →
//! `{winc}`) and tells the wallet's balance to a signed request (`GET
//! /v1/balance` with `x-public-key`, `x-nonce`, `x-signature` = the wallet's
//! RSA-PSS signature of the nonce, base64url).
//!
//! Every call goes through the one [`OutboundClient`]. Uploads: the data item
//! streams (header, then the data from memory or a stored file, re-read on a retry),
//! at most `attempts` tries on transport errors, 429 and 5xx, backoff doubling
//! from 500 ms (capped at 30 s, `Retry-After` honoured). Bounds: response
//! bodies read at most [`MAX_ANSWER_BYTES`]; nothing of the data is held.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::Method;
use rsa::pss::SigningKey;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use serde_json::Value;

use crate::arweave::dataitem::DataItemHeader;
use crate::arweave::jwk::ArweaveWallet;
use crate::clients::{ClientError, OutboundClient};
use crate::http::source::ByteSource;

/// Bound: bytes of a bundler or payment-service answer read.
pub const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Longest backoff between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The data of an upload: small bytes, or a stored file read as it is sent.
#[derive(Clone)]
pub enum ItemData {
    Bytes(Bytes),
    Source { source: Arc<dyn ByteSource>, len: u64 },
}

impl ItemData {
    pub fn len(&self) -> u64 {
        match self {
            ItemData::Bytes(b) => b.len() as u64,
            ItemData::Source { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The bundler's receipt for an accepted item.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub id: String,
    /// The receipt as the bundler gave it (`{}` for a `202` repeat).
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BundlerError {
    /// `402`, or a balance below the price.
    #[error("the bundler has not enough credit for this upload: {0}")]
    NoCredit(String),
    /// `400` and other refusals: retrying cannot help.
    #[error("the bundler refused the data item: {0}")]
    Refused(String),
    /// Transport errors, 429 and 5xx after every attempt.
    #[error("the bundler is unavailable: {0}")]
    Unavailable(String),
}

/// The payment service's request signature: RSA-PSS (SHA-256, 32-byte salt)
/// of the nonce by the wallet, base64url. Milliseconds of CPU: callers run it
/// on the blocking pool.
pub fn sign_nonce(wallet: &ArweaveWallet, nonce: &str) -> String {
    let key = SigningKey::<rsa::sha2::Sha256>::new_with_salt_len(wallet.private_key().clone(), 32);
    let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.sign_with_rng(&mut rng, nonce.as_bytes()).to_bytes())
}

/// A Turbo-compatible bundler.
#[derive(Clone)]
pub struct Bundler {
    client: OutboundClient,
    upload_url: String,
    payment_url: Option<String>,
    attempts: u32,
}

fn trim_url(u: &str) -> String {
    u.trim().trim_end_matches('/').to_owned()
}

fn text_of(v: &Bytes) -> String {
    let s = String::from_utf8_lossy(v);
    s.chars().take(200).collect()
}

fn retry_after(h: &http::HeaderMap) -> Option<Duration> {
    h.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl Bundler {
    /// `upload_url`: the upload service's base; `payment_url`: the payment
    /// service's (empty: no cost check).
    pub fn new(client: OutboundClient, upload_url: &str, payment_url: &str, attempts: u32) -> Self {
        let payment = trim_url(payment_url);
        Bundler {
            client,
            upload_url: trim_url(upload_url),
            payment_url: (!payment.is_empty()).then_some(payment),
            attempts: attempts.max(1),
        }
    }

    /// A GET to the payment service, retried as uploads are.
    async fn payment_get(&self, path: &str, headers: &[(&str, String)]) -> Result<Option<(u16, Bytes)>, BundlerError> {
        let Some(base) = &self.payment_url else { return Ok(None) };
        let url = format!("{base}{path}");
        let mut delay = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let mut b = self.client.builder(Method::GET, &url).map_err(|e| BundlerError::Unavailable(e.to_string()))?;
            for (k, v) in headers {
                b = b.header(*k, v);
            }
            match self.client.send(b).await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let wait = retry_after(r.headers());
                    let body = r.bytes_limited(Some(MAX_ANSWER_BYTES)).await.unwrap_or_default();
                    if status == 429 || status >= 500 {
                        last = format!("payment service answered {status}: {}", text_of(&body));
                        if attempt < self.attempts {
                            tokio::time::sleep(wait.unwrap_or(delay).min(MAX_BACKOFF)).await;
                            delay = (delay * 2).min(MAX_BACKOFF);
                        }
                        continue;
                    }
                    return Ok(Some((status, body)));
                }
                Err(e) => last = e.to_string(),
            }
            if attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
        Err(BundlerError::Unavailable(last))
    }

    fn winc(body: &Bytes) -> Option<u128> {
        let v: Value = serde_json::from_slice(body).ok()?;
        match v.get("winc")? {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_u64().map(u128::from),
            _ => None,
        }
    }

    /// What `bytes` of data items cost, in winc (`None`: no payment service).
    pub async fn price(&self, bytes: u64) -> Result<Option<u128>, BundlerError> {
        match self.payment_get(&format!("/v1/price/bytes/{bytes}"), &[]).await? {
            None => Ok(None),
            Some((200, body)) => Self::winc(&body).map(Some).ok_or_else(|| BundlerError::Unavailable("the price answer has no winc".into())),
            Some((s, body)) => Err(BundlerError::Unavailable(format!("price: {s} {}", text_of(&body)))),
        }
    }

    /// The wallet's credit, in winc (`None`: no payment service), asked with a
    /// signed request: `owner` is the wallet's modulus (base64url), `signature`
    /// [`sign_nonce`]'s of `nonce`. A wallet the service does not know has none.
    pub async fn balance(&self, owner: &str, nonce: &str, signature: &str) -> Result<Option<u128>, BundlerError> {
        let headers = [("x-public-key", owner.to_owned()), ("x-nonce", nonce.to_owned()), ("x-signature", signature.to_owned())];
        match self.payment_get("/v1/balance", &headers).await? {
            None => Ok(None),
            Some((200, body)) => Self::winc(&body).map(Some).ok_or_else(|| BundlerError::Unavailable("the balance answer has no winc".into())),
            Some((404, _)) => Ok(Some(0)),
            Some((s, body)) => Err(BundlerError::Unavailable(format!("balance: {s} {}", text_of(&body)))),
        }
    }

    fn body(header: &DataItemHeader, data: &ItemData) -> reqwest::Body {
        let head = Bytes::from(header.to_bytes());
        match data {
            ItemData::Bytes(b) => {
                let mut all = Vec::with_capacity(head.len() + b.len());
                all.extend_from_slice(&head);
                all.extend_from_slice(b);
                reqwest::Body::from(all)
            }
            ItemData::Source { source, len } => {
                let s = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(head) }).chain(source.range(0, *len));
                reqwest::Body::wrap_stream(s)
            }
        }
    }

    /// Send the item made of `header` and `data`; its id is `header.id()`.
    pub async fn upload(&self, header: &DataItemHeader, data: &ItemData) -> Result<Receipt, BundlerError> {
        let url = format!("{}/v1/tx/arweave", self.upload_url);
        let id = header.id();
        let total = header.encoded_len() as u64 + data.len();
        let mut delay = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let b = self
                .client
                .builder(Method::POST, &url)
                .map_err(|e| BundlerError::Unavailable(e.to_string()))?
                .header(http::header::CONTENT_TYPE, "application/octet-stream")
                .header(http::header::CONTENT_LENGTH, total)
                .timeout(Duration::from_secs(60 + total / 1_000_000))
                .body(Self::body(header, data));
            let mut wait = None;
            match self.client.send(b).await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    wait = retry_after(r.headers());
                    let body = r.bytes_limited(Some(MAX_ANSWER_BYTES)).await.unwrap_or_default();
                    match status {
                        200 | 201 => {
                            let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            if raw.get("id").and_then(Value::as_str).is_some_and(|got| got != id) {
                                return Err(BundlerError::Refused(format!("the receipt names another item ({})", text_of(&body))));
                            }
                            return Ok(Receipt { id, raw });
                        }
                        // already posted (a retry whose first answer was lost)
                        202 => return Ok(Receipt { id, raw: Value::Object(Default::default()) }),
                        402 => return Err(BundlerError::NoCredit(text_of(&body))),
                        429 | 500..=599 => last = format!("{status}: {}", text_of(&body)),
                        _ => return Err(BundlerError::Refused(format!("{status}: {}", text_of(&body)))),
                    }
                }
                Err(ClientError::TooLarge { .. }) => return Err(BundlerError::Refused("the answer is too large".into())),
                Err(e) => last = e.to_string(),
            }
            if attempt < self.attempts {
                tokio::time::sleep(wait.unwrap_or(delay).min(MAX_BACKOFF)).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
        // the last attempt may have reached the bundler: say which item it was
        Err(BundlerError::Unavailable(format!("{last} (data item {id}: if the bundler did take it, it is indexed when it lands)")))
    }
}
