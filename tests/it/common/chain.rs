//! A test Arweave: transactions signed by RSA keys the test generates (creator
//! registrations, templates, records, deletes, in the original's message
//! formats), and a gateway on loopback that serves them over Arweave's real wire
//! format — GraphQL `transactions(block, tags, first, sort, after)` with
//! `edges{cursor node{id owner{address key} tags{name value} block{height
//! timestamp id} data{size type}}} pageInfo{hasNextPage}`, `transaction(id:)`,
//! `GET /{id}` data, `/tx/{id}/status` and `/info` — with faults to order: 429
//! with `Retry-After`, a hang, garbage GraphQL, truncated or oversized data, and
//! reorgs (transactions removed or moved).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use oipd::indexer::tx::Tag;
use oipd::indexer::verify::{record_message, template_message};
use rsa::pss::SigningKey;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use serde_json::{json, Value};
use sha2::Digest as _;

/// A creator's key, generated here.
pub struct Signer {
    key: rsa::PrivateKey,
    /// The RSA modulus, base64url (a registration's `"1"`).
    pub modulus: String,
    /// The Arweave address: base64url(sha256(modulus)).
    pub address: String,
}

fn rng() -> impl rsa::rand_core::CryptoRng {
    rsa::rand_core::UnwrapErr(getrandom::SysRng)
}

impl Signer {
    pub fn new() -> Self {
        let key = rsa::PrivateKey::new(&mut rng(), 2048).expect("key generation");
        let n = rsa::traits::PublicKeyParts::n(&key.to_public_key()).to_be_bytes();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Signer { modulus: b64.encode(&n), address: b64.encode(sha2::Sha256::digest(&n)), key }
    }

    /// RSA-PSS SHA-256 with a 32-byte salt (WebCrypto's), standard base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let signer = SigningKey::<rsa::sha2::Sha256>::new_with_salt_len(self.key.clone(), 32);
        base64::engine::general_purpose::STANDARD.encode(signer.sign_with_rng(&mut rng(), message).to_bytes())
    }
}

/// A random 43-character transaction id.
pub fn txid() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// One transaction on the test chain.
#[derive(Clone, Debug)]
pub struct ChainTx {
    pub id: String,
    pub owner_address: String,
    pub owner_key: String,
    pub tags: Vec<(String, String)>,
    pub height: u64,
    pub data: Vec<u8>,
}

fn base_tags(s: &Signer, ty: &str) -> Vec<Tag> {
    vec![
        Tag::new("Content-Type", "application/json"),
        Tag::new("Index-Method", "OIP"),
        Tag::new("Ver", "0.8.0"),
        Tag::new("Type", ty),
        Tag::new("Creator", s.address.clone()),
    ]
}

fn finish(s: &Signer, mut tags: Vec<Tag>, data: String, message: String, height: u64) -> ChainTx {
    tags.push(Tag::new("CreatorSig", s.sign(message.as_bytes())));
    ChainTx {
        id: txid(),
        owner_address: s.address.clone(),
        owner_key: s.modulus.clone(),
        tags: tags.into_iter().map(|t| (t.name, t.value)).collect(),
        height,
        data: data.into_bytes(),
    }
}

/// A record (`RecordType` tag) with `items` as its data, signed over
/// `JSON.stringify(tagsWithoutSig) + data`.
pub fn tx_record(s: &Signer, record_type: &str, items: &Value, height: u64) -> ChainTx {
    let mut tags = base_tags(s, "Record");
    tags.insert(4, Tag::new("RecordType", record_type));
    let data = items.to_string();
    let message = record_message(&tags, &data);
    finish(s, tags, data, message, height)
}

/// A creator registration in the bootstrap (positional) form.
pub fn tx_registration(s: &Signer, handle: &str, name: &str, surname: &str, height: u64) -> ChainTx {
    let items = json!([
        {"0": s.address, "1": s.modulus, "2": handle, "3": name, "t": "creatorRegistration"},
        {"0": surname, "3": 37, "t": "basic"}
    ]);
    tx_record(s, "creatorRegistration", &items, height)
}

/// A template (`TemplateName` tag), signed over
/// `JSON.stringify(JSON.parse(data)) + JSON.stringify(tagsWithoutSig)`.
pub fn tx_template(s: &Signer, name: &str, fields: &Value, height: u64) -> ChainTx {
    let mut tags = base_tags(s, "Template");
    tags.insert(4, Tag::new("TemplateName", name));
    let data = fields.to_string();
    let message = template_message(&data, &tags).expect("template message");
    finish(s, tags, data, message, height)
}

/// Templates (name → field definition) published by `s` at `height`: the
/// transactions, and each template's id by name.
pub fn templates_by(s: &Signer, fields: &[(&'static str, Value)], height: u64) -> (Vec<ChainTx>, HashMap<&'static str, String>) {
    let txs: Vec<ChainTx> = fields.iter().map(|(name, f)| tx_template(s, name, f, height)).collect();
    let ids = fields.iter().zip(&txs).map(|((name, _), t)| (*name, t.id.clone())).collect();
    (txs, ids)
}

/// The `basic` template of the benchmarks' chains.
pub fn basic_fields() -> Value {
    json!({
        "name": "string", "index_name": 0, "description": "string", "index_description": 1,
        "date": "uint64", "index_date": 2, "language": "enum",
        "languageValues": [{"code": "en", "name": "English"}, {"code": "es", "name": "Spanish"}],
        "index_language": 3, "tagItems": "repeated string", "index_tagItems": 4
    })
}

/// What the gateway does instead of answering.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    None,
    /// 429 with this `Retry-After`.
    RateLimit(u64),
    /// Accept and never answer.
    Hang,
    /// 200 with a body that is not GraphQL.
    Garbage,
}

/// How one transaction's data is served.
#[derive(Clone, Debug, PartialEq)]
pub enum DataFault {
    /// The body stops half-way (the connection is cut).
    Truncated,
    /// A body of this many bytes of junk (streamed; GraphQL still says small).
    Huge(u64),
    Status(u16),
    /// 429 with this `Retry-After`.
    RateLimit(u64),
}

#[derive(Default)]
pub struct Chain {
    pub txs: Vec<ChainTx>,
    pub tip: u64,
    pub data_faults: HashMap<String, DataFault>,
}

pub struct TestGateway {
    pub url: String,
    pub chain: Arc<Mutex<Chain>>,
    pub fault: Arc<Mutex<Fault>>,
    pub graphql_hits: Arc<AtomicU64>,
}

#[derive(Clone)]
struct St {
    chain: Arc<Mutex<Chain>>,
    fault: Arc<Mutex<Fault>>,
    graphql_hits: Arc<AtomicU64>,
}

fn block_id(height: u64) -> String {
    format!("block-{height}")
}

fn node(t: &ChainTx) -> Value {
    json!({
        "id": t.id,
        "owner": {"address": t.owner_address, "key": t.owner_key},
        "tags": t.tags.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        "block": {"height": t.height, "timestamp": 1_700_000_000 + t.height, "id": block_id(t.height)},
        "data": {"size": t.data.len().to_string(), "type": "application/json"},
    })
}

fn number_after(q: &str, key: &str) -> Option<u64> {
    let rest = q.split(key).nth(1)?;
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

fn string_after(q: &str, key: &str) -> Option<String> {
    let rest = q.split(key).nth(1)?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest.split('"').next()?.to_owned())
}

/// Whether a transaction matches the discovery filter the query names (the
/// `Index-Method` and `Ver` tag values).
fn matches_tags(q: &str, t: &ChainTx) -> bool {
    let values = |name: &str| -> Option<Vec<String>> {
        let rest = q.split(&format!("name:\"{name}\",values:[")).nth(1)?;
        Some(rest.split(']').next()?.split(',').map(|v| v.trim().trim_matches('"').to_owned()).collect())
    };
    [("Index-Method", values("Index-Method")), ("Ver", values("Ver"))].iter().all(|(name, want)| match want {
        None => true,
        Some(want) => t.tags.iter().any(|(n, v)| n == name && want.contains(v)),
    })
}

async fn graphql(State(st): State<St>, body: axum::Json<Value>) -> Response {
    st.graphql_hits.fetch_add(1, Ordering::SeqCst);
    let fault = st.fault.lock().unwrap().clone();
    match fault {
        Fault::None => {}
        Fault::RateLimit(secs) => return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "slow down").into_response(),
        Fault::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Fault::Garbage => return (StatusCode::OK, "<html>not graphql</html>").into_response(),
    }
    let q = body["query"].as_str().unwrap_or("").to_owned();
    let chain = st.chain.lock().unwrap();
    if q.contains("transaction(id:") {
        let id = string_after(&q, "transaction(id:").unwrap_or_default();
        let t = chain.txs.iter().find(|t| t.id == id && t.height <= chain.tip);
        return axum::Json(json!({"data": {"transaction": t.map(node)}})).into_response();
    }
    let min = number_after(&q, "block:{min:").unwrap_or(0);
    let max = number_after(&q, ",max:").unwrap_or(u64::MAX).min(chain.tip);
    let first = number_after(&q, "first:").unwrap_or(10).clamp(1, 100) as usize;
    let after = string_after(&q, "after:");
    let mut list: Vec<&ChainTx> = chain.txs.iter().filter(|t| t.height >= min && t.height <= max && matches_tags(&q, t)).collect();
    list.sort_by_key(|t| t.height); // stable: insertion order within a block
    let start = match after {
        Some(c) => list.iter().position(|t| t.id == c).map_or(list.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<Value> = list.iter().skip(start).take(first).map(|t| json!({"cursor": t.id, "node": node(t)})).collect();
    let has_next = start + page.len() < list.len();
    axum::Json(json!({"data": {"transactions": {"pageInfo": {"hasNextPage": has_next}, "edges": page}}})).into_response()
}

async fn data(State(st): State<St>, Path(id): Path<String>) -> Response {
    let (bytes, fault) = {
        let chain = st.chain.lock().unwrap();
        let t = chain.txs.iter().find(|t| t.id == id);
        (t.map(|t| t.data.clone()), chain.data_faults.get(&id).cloned())
    };
    let Some(bytes) = bytes else { return (StatusCode::NOT_FOUND, "not found").into_response() };
    match fault {
        None => (StatusCode::OK, bytes).into_response(),
        Some(DataFault::Status(s)) => (StatusCode::from_u16(s).unwrap(), "error").into_response(),
        Some(DataFault::RateLimit(secs)) => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "slow down").into_response(),
        Some(DataFault::Truncated) => {
            let half = bytes[..bytes.len() / 2].to_vec();
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(half), Err(std::io::Error::other("cut"))];
            let mut resp = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
            resp.headers_mut().insert("content-length", bytes.len().to_string().parse().unwrap());
            resp
        }
        Some(DataFault::Huge(n)) => {
            let chunk = vec![b'x'; 64 * 1024];
            let count = n / chunk.len() as u64;
            let s = futures_util::stream::iter((0..count).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            Response::new(Body::from_stream(s))
        }
    }
}

async fn status(State(st): State<St>, Path(id): Path<String>) -> Response {
    let chain = st.chain.lock().unwrap();
    match chain.txs.iter().find(|t| t.id == id) {
        Some(t) => axum::Json(json!({"block_height": t.height, "block_indep_hash": block_id(t.height), "number_of_confirmations": chain.tip.saturating_sub(t.height)})).into_response(),
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

async fn info(State(st): State<St>) -> Response {
    let fault = st.fault.lock().unwrap().clone();
    if let Fault::RateLimit(secs) = fault {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "slow down").into_response();
    }
    let tip = st.chain.lock().unwrap().tip;
    axum::Json(json!({"network": "arweave.N.1", "height": tip, "current": block_id(tip), "blocks": tip + 1})).into_response()
}

impl TestGateway {
    pub async fn start(chain: Chain) -> Self {
        Self::start_on("127.0.0.1:0", chain).await
    }

    /// [`TestGateway::start`] on a given address.
    pub async fn start_on(listen: &str, chain: Chain) -> Self {
        let st = St {
            chain: Arc::new(Mutex::new(chain)),
            fault: Arc::new(Mutex::new(Fault::None)),
            graphql_hits: Arc::new(AtomicU64::new(0)),
        };
        let app = Router::new()
            .route("/graphql", post(graphql))
            .route("/info", get(info))
            .route("/tx/{id}/status", get(status))
            .route("/{id}", get(data))
            .with_state(st.clone());
        let l = tokio::net::TcpListener::bind(listen).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        TestGateway { url: format!("http://{addr}"), chain: st.chain, fault: st.fault, graphql_hits: st.graphql_hits }
    }

    pub fn set_fault(&self, f: Fault) {
        *self.fault.lock().unwrap() = f;
    }

    pub fn push(&self, t: ChainTx) {
        let mut c = self.chain.lock().unwrap();
        c.tip = c.tip.max(t.height);
        c.txs.push(t);
    }

    pub fn set_tip(&self, tip: u64) {
        self.chain.lock().unwrap().tip = tip;
    }
}
