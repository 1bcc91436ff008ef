//! Arweave gateways as the indexer uses them: GraphQL discovery of OIP
//! transactions (`Index-Method=OIP`, the supported `Ver`s, `sort: HEIGHT_ASC`,
//! paged by cursor), the chain tip (`/info`), transaction data and status — over
//! an ordered list of gateways that fail over, each with exponential backoff with
//! jitter, a circuit breaker, and `Retry-After` honoured on 429 (the original set a
//! 429 backoff that nothing read, and spun when every gateway failed).
//!
//! Bounds: [`MAX_PAGE_SIZE`] transactions per page, [`MAX_GATEWAYS`] gateways,
//! every response read through the outbound client's cap (GraphQL pages at most
//! [`MAX_PAGE_BYTES`]); the state kept per gateway is a few fields.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::clients::{ClientError, OutboundClient};

/// Bound: transactions asked for per GraphQL page (ar.io gateways cap at 1,000).
pub const MAX_PAGE_SIZE: u32 = 100;
/// Bound: bytes of one GraphQL answer read into memory.
pub const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;
/// Bound: gateways configured.
pub const MAX_GATEWAYS: usize = 8;
/// Consecutive failures that open a gateway's circuit breaker.
pub const BREAKER_FAILURES: u32 = 5;
/// How long an open breaker keeps a gateway out.
pub const BREAKER_OPEN: Duration = Duration::from_secs(300);
/// First backoff after a failure; doubles per consecutive failure up to the max.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(120);
/// Wait after a 429 without a usable `Retry-After` (the original's 30 s… minutes).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The OIP versions discovery asks for.
pub const OIP_VERSIONS: &[&str] = &["0.8.0", "0.9.0", "1.0.0"];

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Every gateway is backing off or has its breaker open; the earliest is ready then.
    #[error("no gateway available (the first is ready in {0:?})")]
    NoneAvailable(Duration),
    #[error("gateway {gateway}: {reason}")]
    Failed { gateway: String, reason: String },
    #[error("too many gateways (at most {MAX_GATEWAYS})")]
    TooMany,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data too large (over {0} bytes)")]
    TooLarge(u64),
    /// The gateway does not have the data (404/410): not the gateway's failure.
    #[error("data not found")]
    Missing,
    /// The body broke off before its end.
    #[error("data truncated")]
    Truncated,
    #[error("data fetch: {0}")]
    Gateway(GatewayError),
}

/// One transaction as discovery reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    pub id: String,
    pub owner_address: String,
    /// The owner's RSA modulus (base64url), when the gateway gave it.
    pub owner_key: Option<String>,
    pub tags: Vec<(String, String)>,
    /// `None` while pending (not in a block yet).
    pub height: Option<u64>,
    pub timestamp: Option<u64>,
    /// The block's id (fork checks compare it).
    pub block_id: Option<String>,
    pub data_size: Option<u64>,
}

/// One page of discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The gateway that answered (cursors are only valid there).
    pub gateway: String,
    pub txs: Vec<Discovered>,
    /// The cursor of the last edge (where the next page starts).
    pub cursor: Option<String>,
    pub has_next: bool,
}

/// A gateway's health, as `/api/health/indexer` shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayReport {
    pub url: String,
    /// `ok`, `backing_off` or `breaker_open`.
    pub state: &'static str,
    /// Milliseconds until it is tried again (0 when ok).
    pub retry_in_ms: u64,
    pub consecutive_failures: u32,
    pub rate_limited: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Health {
    failures: u32,
    ready_at: Option<Instant>,
    breaker_open: bool,
    rate_limited: u64,
    last_error: Option<String>,
}

struct Gateway {
    url: String,
    health: Mutex<Health>,
}

pub struct Gateways {
    list: Vec<Gateway>,
    client: OutboundClient,
}

/// Bound: bytes of a gateway's last error kept for reports.
const MAX_ERROR_TEXT: usize = 300;

/// A gateway URL for reports: no credentials, path, query or fragment.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}{}", u.scheme(), u.host_str().unwrap_or(""), u.port().map(|p| format!(":{p}")).unwrap_or_default()),
        Err(_) => "(unparseable gateway URL)".into(),
    }
}

/// `d` ± 25 %, so gateways recovering together are not hit in step.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.75 + fastrand::f64() / 2.0)
}

impl Gateways {
    /// Gateways in the order they are tried (a local ar.io gateway first, as the
    /// original, when the caller puts it first).
    pub fn new(urls: &[String], client: OutboundClient) -> Result<Self, GatewayError> {
        if urls.len() > MAX_GATEWAYS {
            return Err(GatewayError::TooMany);
        }
        let list = urls.iter().map(|u| Gateway { url: u.trim_end_matches('/').to_owned(), health: Mutex::new(Health::default()) }).collect();
        Ok(Gateways { list, client })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn report(&self) -> Vec<GatewayReport> {
        let now = Instant::now();
        self.list
            .iter()
            .map(|g| {
                let h = g.health.lock().unwrap_or_else(|p| p.into_inner());
                let wait = h.ready_at.map_or(Duration::ZERO, |r| r.saturating_duration_since(now));
                GatewayReport {
                    url: redact(&g.url),
                    state: if wait.is_zero() { "ok" } else if h.breaker_open { "breaker_open" } else { "backing_off" },
                    retry_in_ms: wait.as_millis() as u64,
                    consecutive_failures: h.failures,
                    rate_limited: h.rate_limited,
                    last_error: h.last_error.clone(),
                }
            })
            .collect()
    }

    fn succeeded(g: &Gateway) {
        let mut h = g.health.lock().unwrap_or_else(|p| p.into_inner());
        h.failures = 0;
        h.ready_at = None;
        h.breaker_open = false;
    }

    fn failed(g: &Gateway, reason: &str, retry_after: Option<Duration>) {
        let mut h = g.health.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = reason.replace(&g.url, &redact(&g.url));
        text.truncate(text.char_indices().nth(MAX_ERROR_TEXT).map_or(text.len(), |(i, _)| i));
        h.last_error = Some(text);
        let now = Instant::now();
        if let Some(wait) = retry_after {
            h.rate_limited += 1;
            h.ready_at = Some(now + wait);
            return;
        }
        h.failures += 1;
        if h.failures >= BREAKER_FAILURES {
            h.breaker_open = true;
            h.ready_at = Some(now + BREAKER_OPEN);
        } else {
            let backoff = BACKOFF_BASE.saturating_mul(1 << (h.failures - 1).min(16)).min(BACKOFF_MAX);
            h.ready_at = Some(now + jitter(backoff));
        }
    }

    /// Run `f` against the first gateway that is ready, failing over in order.
    async fn with_gateway<T, F, Fut>(&self, f: F) -> Result<T, GatewayError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        self.with_gateways(self.list.len(), true, f).await
    }

    /// [`Self::with_gateway`] over the first `n` gateways only. `resets`: whether
    /// success clears the gateway's failures (`/info` answering says nothing
    /// about its GraphQL, so it does not).
    async fn with_gateways<T, F, Fut>(&self, n: usize, resets: bool, f: F) -> Result<T, GatewayError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let mut last: Option<GatewayError> = None;
        let mut earliest: Option<Duration> = None;
        for g in self.list.iter().take(n.max(1)) {
            let wait = {
                let h = g.health.lock().unwrap_or_else(|p| p.into_inner());
                h.ready_at.map(|r| r.saturating_duration_since(Instant::now())).filter(|w| !w.is_zero())
            };
            if let Some(w) = wait {
                earliest = Some(earliest.map_or(w, |e| e.min(w)));
                continue;
            }
            match f(g.url.clone()).await {
                Ok(v) => {
                    if resets {
                        Self::succeeded(g);
                    }
                    return Ok(v);
                }
                Err(Attempt::RateLimited(wait)) => {
                    Self::failed(g, "rate limited (429)", Some(wait));
                    earliest = Some(earliest.map_or(wait, |e| e.min(wait)));
                    last = Some(GatewayError::Failed { gateway: g.url.clone(), reason: "rate limited (429)".into() });
                }
                Err(Attempt::Failed(reason)) => {
                    Self::failed(g, &reason, None);
                    last = Some(GatewayError::Failed { gateway: g.url.clone(), reason });
                }
            }
        }
        Err(last.unwrap_or(GatewayError::NoneAvailable(earliest.unwrap_or(BACKOFF_BASE))))
    }

    /// One page of OIP transactions at heights `min..=max`, after `cursor`.
    /// `fallback_ok: false` asks only the first gateway (the original's guard:
    /// a fallback gateway is not trusted to fill a large gap).
    pub async fn page(&self, min: u64, max: Option<u64>, cursor: Option<&str>, first: u32, fallback_ok: bool) -> Result<Page, GatewayError> {
        let query = discovery_query(min, max, cursor, first.clamp(1, MAX_PAGE_SIZE));
        let n = if fallback_ok { self.list.len() } else { 1 };
        self.with_gateways(n, true, |base| {
            let query = query.clone();
            async move {
                let body = json!({ "query": query });
                let resp = self.client.post_json(&format!("{base}/graphql"), &body).await.map_err(attempt)?;
                let status = resp.status();
                if status.as_u16() == 429 {
                    return Err(Attempt::RateLimited(retry_after(resp.headers())));
                }
                if !status.is_success() {
                    return Err(Attempt::Failed(format!("GraphQL answered {status}")));
                }
                let bytes = resp.bytes_limited(Some(MAX_PAGE_BYTES)).await.map_err(attempt)?;
                let mut page = parse_page(&bytes).map_err(Attempt::Failed)?;
                page.gateway = base;
                Ok(page)
            }
        })
        .await
    }

    /// One transaction by id (`transaction(id:)`), as discovery reports it;
    /// `None` when the gateways do not know it.
    pub async fn transaction(&self, id: &str) -> Result<Option<Discovered>, GatewayError> {
        let query = format!(
            "query {{ transaction(id: {}) {{ id owner {{ address key }} tags {{ name value }} block {{ height timestamp id }} data {{ size }} }} }}",
            serde_json::to_string(id).unwrap_or_default()
        );
        self.with_gateway(|base| {
            let query = query.clone();
            async move {
                let resp = self.client.post_json(&format!("{base}/graphql"), &json!({ "query": query })).await.map_err(attempt)?;
                if resp.status().as_u16() == 429 {
                    return Err(Attempt::RateLimited(retry_after(resp.headers())));
                }
                if !resp.status().is_success() {
                    return Err(Attempt::Failed(format!("GraphQL answered {}", resp.status())));
                }
                let bytes = resp.bytes_limited(Some(MAX_PAGE_BYTES)).await.map_err(attempt)?;
                // Reuse the page parser: wrap the one node as a one-edge page.
                let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Attempt::Failed(format!("not a GraphQL answer: {e}")))?;
                let node = v.pointer("/data/transaction").cloned().unwrap_or(serde_json::Value::Null);
                if node.is_null() {
                    return match v.get("errors") {
                        Some(e) => Err(Attempt::Failed(format!("GraphQL error: {:.200}", e.to_string()))),
                        None => Ok(None),
                    };
                }
                let page = json!({"data": {"transactions": {"pageInfo": {"hasNextPage": false}, "edges": [{"cursor": "", "node": node}]}}});
                let page = parse_page(page.to_string().as_bytes()).map_err(Attempt::Failed)?;
                Ok(page.txs.into_iter().next())
            }
        })
        .await
    }

    /// A transaction's data (`GET /{id}`), at most `max` bytes: larger data is
    /// [`DataError::TooLarge`] (declared or streamed), a gateway failure fails over.
    pub async fn data(&self, id: &str, max: u64) -> Result<bytes::Bytes, DataError> {
        // What one gateway answered about this transaction; only `Attempt`
        // errors count against the gateway.
        enum Answer {
            Bytes(bytes::Bytes),
            TooLarge,
            Missing,
            Truncated,
        }
        let answer = self
            .with_gateway(|base| async move {
                let resp = self.client.get(&format!("{base}/{id}")).await.map_err(attempt)?;
                let status = resp.status();
                if status.as_u16() == 429 {
                    return Err(Attempt::RateLimited(retry_after(resp.headers())));
                }
                if matches!(status.as_u16(), 404 | 410) {
                    return Ok(Answer::Missing);
                }
                if !status.is_success() {
                    return Err(Attempt::Failed(format!("data answered {status}")));
                }
                Ok(match resp.bytes_limited(Some(max)).await {
                    Ok(b) => Answer::Bytes(b),
                    Err(ClientError::TooLarge { .. }) => Answer::TooLarge,
                    // The gateway answered; one transaction's body broke off.
                    // That is the transaction's problem (retried), not a
                    // reason to back off the gateway.
                    Err(_) => Answer::Truncated,
                })
            })
            .await
            .map_err(DataError::Gateway)?;
        match answer {
            Answer::Bytes(b) => Ok(b),
            Answer::TooLarge => Err(DataError::TooLarge(max)),
            Answer::Missing => Err(DataError::Missing),
            Answer::Truncated => Err(DataError::Truncated),
        }
    }

    /// The chain's current height (`GET /info`).
    pub async fn tip(&self) -> Result<u64, GatewayError> {
        self.with_gateways(self.list.len(), false, |base| async move {
            let resp = self.client.get(&format!("{base}/info")).await.map_err(attempt)?;
            if resp.status().as_u16() == 429 {
                return Err(Attempt::RateLimited(retry_after(resp.headers())));
            }
            if !resp.status().is_success() {
                return Err(Attempt::Failed(format!("/info answered {}", resp.status())));
            }
            #[derive(Deserialize)]
            struct Info {
                height: u64,
            }
            let info: Info = resp.json().await.map_err(attempt)?;
            Ok(info.height)
        })
        .await
    }
}

/// How one gateway call ended, for the failover.
enum Attempt {
    RateLimited(Duration),
    Failed(String),
}

fn attempt(e: ClientError) -> Attempt {
    Attempt::Failed(e.to_string())
}

/// `Retry-After` seconds (an HTTP-date is read as the default), at most an hour.
fn retry_after(h: &reqwest::header::HeaderMap) -> Duration {
    h.get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, |s| Duration::from_secs(s.min(3600)))
}

/// The discovery query, values written in as the original writes them; the
/// cursor is escaped as a GraphQL string.
pub fn discovery_query(min: u64, max: Option<u64>, cursor: Option<&str>, first: u32) -> String {
    let block = match max {
        Some(m) => format!("{{min:{min},max:{m}}}"),
        None => format!("{{min:{min}}}"),
    };
    let versions = OIP_VERSIONS.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(",");
    let after = match cursor {
        Some(c) => serde_json::to_string(c).unwrap_or_else(|_| "null".into()),
        None => "null".into(),
    };
    format!(
        "query {{ transactions(block:{block}, tags:[{{name:\"Index-Method\",values:[\"OIP\"]}},{{name:\"Ver\",values:[{versions}]}}], first:{first}, sort:HEIGHT_ASC, after:{after}) \
         {{ pageInfo {{ hasNextPage }} edges {{ cursor node {{ id owner {{ address key }} tags {{ name value }} block {{ height timestamp id }} data {{ size }} }} }} }} }}"
    )
}

fn txs_is_empty_but_more<T>(edges: &[T], has_next: bool) -> bool {
    edges.is_empty() && has_next
}

/// A GraphQL answer → a page; anything else is a reason.
pub fn parse_page(bytes: &[u8]) -> Result<Page, String> {
    #[derive(Deserialize)]
    struct Root {
        data: Option<Data>,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct Data {
        transactions: Txs,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Txs {
        page_info: PageInfo,
        edges: Vec<Edge>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PageInfo {
        has_next_page: bool,
    }
    #[derive(Deserialize)]
    struct Edge {
        cursor: String,
        node: Node,
    }
    #[derive(Deserialize)]
    struct Node {
        id: String,
        owner: Owner,
        #[serde(default)]
        tags: Vec<Tag>,
        block: Option<Block>,
        data: Option<DataInfo>,
    }
    #[derive(Deserialize)]
    struct Owner {
        address: String,
        key: Option<String>,
    }
    #[derive(Deserialize)]
    struct Tag {
        name: String,
        value: String,
    }
    #[derive(Deserialize)]
    struct Block {
        height: u64,
        timestamp: Option<u64>,
        #[serde(default)]
        id: Option<String>,
    }
    #[derive(Deserialize)]
    struct DataInfo {
        size: Option<serde_json::Value>,
    }
    let root: Root = serde_json::from_slice(bytes).map_err(|e| format!("not a GraphQL answer: {e}"))?;
    let data = match (root.data, root.errors.first()) {
        (Some(d), _) => d,
        (None, Some(e)) => return Err(format!("GraphQL error: {:.200}", e.to_string())),
        (None, None) => return Err("GraphQL answer without data".into()),
    };
    let t = data.transactions;
    if t.edges.len() > MAX_PAGE_SIZE as usize * 10 {
        return Err(format!("a page of {} transactions (asked for at most {MAX_PAGE_SIZE})", t.edges.len()));
    }
    if txs_is_empty_but_more(&t.edges, t.page_info.has_next_page) {
        return Err("an empty page that says more follow".into());
    }
    let cursor = t.edges.last().map(|e| e.cursor.clone());
    let txs = t
        .edges
        .into_iter()
        .map(|e| Discovered {
            id: e.node.id,
            owner_address: e.node.owner.address,
            owner_key: e.node.owner.key,
            tags: e.node.tags.into_iter().map(|t| (t.name, t.value)).collect(),
            height: e.node.block.as_ref().map(|b| b.height),
            timestamp: e.node.block.as_ref().and_then(|b| b.timestamp),
            block_id: e.node.block.and_then(|b| b.id),
            // gateways send the size as a string
            data_size: e.node.data.and_then(|d| d.size).and_then(|s| s.as_u64().or_else(|| s.as_str().and_then(|s| s.parse().ok()))),
        })
        .collect();
    Ok(Page { gateway: String::new(), txs, cursor, has_next: t.page_info.has_next_page })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_shape() {
        let q = discovery_query(1_579_570, None, None, 100);
        assert!(q.contains("block:{min:1579570}"), "{q}");
        assert!(q.contains(r#"{name:"Index-Method",values:["OIP"]}"#));
        assert!(q.contains(r#"values:["0.8.0","0.9.0","1.0.0"]"#));
        assert!(q.contains("first:100, sort:HEIGHT_ASC, after:null"));
        let q = discovery_query(5, Some(9), Some("c\"ur}"), 10);
        assert!(q.contains("block:{min:5,max:9}") && q.contains(r#"after:"c\"ur}""#), "{q}");
    }

    #[test]
    fn pages_parse_and_garbage_is_a_reason() {
        let page = br#"{"data":{"transactions":{"pageInfo":{"hasNextPage":true},"edges":[
            {"cursor":"c1","node":{"id":"tx1","owner":{"address":"a1","key":"k1"},"tags":[{"name":"Index-Method","value":"OIP"}],"block":{"height":1300000,"timestamp":1700000000},"data":{"size":"1234"}}},
            {"cursor":"c2","node":{"id":"tx2","owner":{"address":"a2"},"tags":[],"block":null,"data":{"size":5}}}]}}}"#;
        let p = parse_page(page).unwrap();
        assert!(p.has_next);
        assert_eq!(p.cursor.as_deref(), Some("c2"));
        assert_eq!(p.txs[0].height, Some(1_300_000));
        assert_eq!(p.txs[0].data_size, Some(1234));
        assert_eq!(p.txs[0].tags, vec![("Index-Method".to_owned(), "OIP".to_owned())]);
        assert_eq!((p.txs[1].height, p.txs[1].data_size), (None, Some(5)), "pending: no block");
        for bad in [&b"<html>502</html>"[..], br#"{"errors":[{"message":"boom"}]}"#, br#"{"data":{"transactions":{}}}"#, b"{}"] {
            assert!(parse_page(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
