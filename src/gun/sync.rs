//! Peer sync: a supervised task that, every `GUN_SYNC_INTERVAL` (default 15 min)
//! or when forced, runs one **cycle** against each peer relay, through the
//! outbound client:
//!
//! 1. **deletions**: the peer's `oip:deleted:records:index`; each named GUN
//!    record is deleted here too (graph tombstone, records index, registry) and
//!    named in this node's own deletion registry;
//! 2. **pull**: the peer's type indexes `oip:registry:index:<type>`; souls this
//!    node has never stored (live or tombstone) are fetched with bounded
//!    concurrency and timeouts, `{"#": …}` references of `data`/`meta` followed
//!    one level (a GUN relay answers nested nodes that way), validated as the
//!    original did, stored in the graph, decrypted when a key opens them and
//!    indexed (kept encrypted otherwise), and registered;
//! 3. **push**: this node's change feed since what the peer last accepted, as
//!    relay puts (`data: null` for tombstones), a few at once — so records
//!    published here are readable on a plain relay; records pulled from peers
//!    ([`PULLED_CACHE`]) are not pushed back out. A peer that refuses writes (401/403, e.g. another
//!    oipd's public port) is not pushed to again for [`PUSH_REFUSED_PAUSE`].
//!
//! Failures are remembered in bounded caches, all listed in `/api/health/memory`
//! and `/api/health/gun-sync`: the **404 cache** ([`MISSING_CACHE`] souls, each
//! for [`MISSING_TTL`]); the **failed-record set** ([`FAILED_CACHE`]: retried with
//! exponential backoff from half the interval up to [`MAX_BACKOFF`], never
//! dropped for good); the **deletion-failure cache** ([`DELETION_FAILURES`]: after
//! [`DELETION_STRIKES`] failed pushes a tombstone is retried with the same
//! backoff, and is never reported as done until a peer accepted it); the
//! **processed set** ([`PROCESSED_CACHE`], cleared hourly). Per cycle and peer:
//! at most [`SOULS_PER_CYCLE`] new souls, [`FETCH_CONCURRENCY`] fetches at once,
//! answers capped at [`MAX_INDEX_BYTES`] (indexes) and the node bound (records),
//! and a peer is abandoned for the cycle after [`MAX_PEER_ERRORS`] failures in a row, so a
//! peer answering 500s or hanging costs bounded time and memory.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::node;
use super::service::{GunService, IngestError, DELETED_ROOT, REGISTRY_ROOT};
use crate::clients::{ClientError, OutboundClient};
use crate::limits::{BoundReport, BoundSource};
use crate::tasks::TaskCtx;

/// Bound: souls remembered as missing on a peer (404), oldest evicted.
pub const MISSING_CACHE: usize = 10_000;
/// How long a 404 is remembered.
pub const MISSING_TTL: Duration = Duration::from_secs(3600);
/// Bound: records whose fetch or ingestion failed, retried with backoff.
pub const FAILED_CACHE: usize = 10_000;
/// Bound: tombstones a peer refused, retried with backoff.
pub const DELETION_FAILURES: usize = 10_000;
/// Failed pushes of a tombstone before it waits with backoff between tries.
pub const DELETION_STRIKES: u32 = 3;
/// Bound: DIDs processed (stored or known), cleared every [`PROCESSED_TTL`].
pub const PROCESSED_CACHE: usize = 100_000;
/// Bound: record souls remembered as pulled from peers (not pushed back out;
/// past the bound, or after a restart, one is pushed again, which merges harmlessly).
pub const PULLED_CACHE: usize = 100_000;
/// How often the processed set is cleared (the original's `GUN_CACHE_MAX_AGE`).
pub const PROCESSED_TTL: Duration = Duration::from_secs(3600);
/// Bound: new souls fetched from one peer in one cycle (the rest wait for the next).
pub const SOULS_PER_CYCLE: usize = 5_000;
/// Bound: record fetches in flight to one peer.
pub const FETCH_CONCURRENCY: usize = 4;
/// Bound: bytes of a type index or deletion index answer.
pub const MAX_INDEX_BYTES: u64 = 4 * 1024 * 1024;
/// Failures in a row (timeouts, 5xx, malformed answers) before a peer is left for
/// the cycle (a peer failing some records keeps being read; one failing all is left).
pub const MAX_PEER_ERRORS: u32 = 8;
/// Timeouts, as the original's: index 5 s, record 10 s, put 10 s.
pub const INDEX_TIMEOUT: Duration = Duration::from_secs(5);
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(10);
pub const PUT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between two retries of a failed record or tombstone.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
/// Bound: changes pushed to one peer per cycle.
pub const PUSH_PER_CYCLE: usize = 10_000;
/// Pause before pushing again to a peer that refused writes.
pub const PUSH_REFUSED_PAUSE: Duration = Duration::from_secs(3600);

/// The record types whose indexes are pulled: the original's `templates.config` types.
pub const RECORD_TYPES: &[&str] = &[
    "basic", "creatorRegistration", "associatedURLOnWeb", "text", "image", "video", "post", "podcast",
    "jfkFilesPageOfDocument", "jfkFilesDocument", "exercise", "workout", "recipe", "nutritionalInfo", "podcastShow",
    "modelProvider", "conversationSession", "multiResolutionGif", "organization", "fitnessEquipment",
    "userFitnessProfile", "workoutSchedule", "mealPlan", "exerciseResult", "workoutCompletion", "weightEntry",
    "shoppingList", "userFitnessAchievment", "accessControl", "music", "summaryNutritionalInfoPerServing",
    "exerciseMETvalues", "notes", "audio", "transcriptionEngine", "noteChunks", "musicReleaseSimple",
];

/// Peer URLs as the original rewrote them: `ws→http`, `wss→https`, `/gun→/gun-relay`
/// (unless already `/gun-relay`), no trailing slash.
pub fn peer_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let p = p.replacen("wss://", "https://", 1).replacen("ws://", "http://", 1);
            let p = if p.contains("/gun-relay") { p } else { p.replacen("/gun", "/gun-relay", 1) };
            p.trim_end_matches('/').to_owned()
        })
        .collect()
}

/// What the sync runs with.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub peers: Vec<String>,
    pub interval: Duration,
    pub enabled: bool,
}

impl SyncSettings {
    /// Whether the task runs: enabled, and peers configured.
    pub fn active(&self) -> bool {
        self.enabled && !self.peers.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    count: u32,
    next: Instant,
}

fn backoff(base: Duration, count: u32) -> Duration {
    base.saturating_mul(1u32 << count.saturating_sub(1).min(20)).min(MAX_BACKOFF)
}

#[derive(Debug, Default, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerState {
    url: String,
    last_success: Option<String>,
    last_error: Option<String>,
    consecutive_failures: u32,
    pulled: u64,
    pushed: u64,
    pushed_seq: u64,
    #[serde(skip)]
    push_refused_until: Option<Instant>,
    push_refused: bool,
}

#[derive(Debug, Default, Clone)]
struct Metrics {
    total_discovered: u64,
    total_synced: u64,
    total_errors: u64,
    last_sync: Option<std::time::SystemTime>,
    average_ms: f64,
    cycles: u64,
    last_cycle_ms: u64,
}

struct Caches {
    missing: lru::LruCache<String, Instant>,
    failed: lru::LruCache<String, Retry>,
    deletion_failures: lru::LruCache<String, Retry>,
    processed: lru::LruCache<String, ()>,
    processed_cleared: Instant,
    /// Record souls this node pulled from a peer: not pushed back out.
    pulled: lru::LruCache<String, ()>,
}

fn lru<V>(n: usize) -> lru::LruCache<String, V> {
    lru::LruCache::new(NonZeroUsize::new(n).expect("nonzero bound"))
}

/// The sync service; one per node.
pub struct GunSync {
    svc: Arc<GunService>,
    client: OutboundClient,
    pub settings: SyncSettings,
    caches: Mutex<Caches>,
    peers: Mutex<Vec<PeerState>>,
    metrics: Mutex<Metrics>,
    /// One cycle at a time (the task's and forced ones).
    cycle: tokio::sync::Mutex<()>,
    running: std::sync::atomic::AtomicBool,
}

/// A cycle's counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CycleReport {
    pub discovered: u64,
    pub synced: u64,
    pub kept_encrypted: u64,
    pub errors: u64,
    pub deleted: u64,
    pub pushed: u64,
}

#[derive(Deserialize)]
struct Answer<T> {
    #[serde(default)]
    success: bool,
    data: Option<T>,
}

#[derive(Deserialize, Default)]
struct IndexEntry {
    soul: Option<String>,
    #[serde(rename = "nodeId")]
    node_id: Option<String>,
    #[serde(rename = "#")]
    reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EntryOrOther {
    Entry(IndexEntry),
    Other(serde::de::IgnoredAny),
}

enum Fetch {
    Node(Map<String, Value>),
    Missing,
    Failed(String),
}

impl GunSync {
    pub fn new(svc: Arc<GunService>, client: OutboundClient, settings: SyncSettings) -> Self {
        let peers = settings.peers.iter().map(|u| PeerState { url: u.clone(), ..Default::default() }).collect();
        GunSync {
            svc,
            client,
            settings,
            caches: Mutex::new(Caches {
                missing: lru(MISSING_CACHE),
                failed: lru(FAILED_CACHE),
                deletion_failures: lru(DELETION_FAILURES),
                processed: lru(PROCESSED_CACHE),
                processed_cleared: Instant::now(),
                pulled: lru(PULLED_CACHE),
            }),
            peers: Mutex::new(peers),
            metrics: Mutex::new(Metrics::default()),
            cycle: tokio::sync::Mutex::new(()),
            running: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn caches(&self) -> std::sync::MutexGuard<'_, Caches> {
        self.caches.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn peer<R>(&self, i: usize, f: impl FnOnce(&mut PeerState) -> R) -> R {
        f(&mut self.peers.lock().unwrap_or_else(|p| p.into_inner())[i])
    }

    fn retry_base(&self) -> Duration {
        (self.settings.interval / 2).max(Duration::from_millis(100))
    }

    /// The supervised task: a cycle now, then one per interval, until cancelled.
    pub async fn run(self: Arc<Self>, ctx: TaskCtx) -> Result<(), String> {
        self.running.store(true, std::sync::atomic::Ordering::Relaxed);
        loop {
            let report = tokio::select! {
                r = self.run_cycle() => r,
                _ = ctx.cancelled() => break,
            };
            ctx.succeeded();
            ctx.set_detail(format!("last cycle: {} synced, {} errors", report.synced, report.errors));
            tokio::select! {
                _ = tokio::time::sleep(self.settings.interval) => {}
                _ = ctx.cancelled() => break,
            }
        }
        self.running.store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.running.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One cycle against every peer (waits for a cycle in progress first).
    pub async fn run_cycle(&self) -> CycleReport {
        let _one = self.cycle.lock().await;
        let started = Instant::now();
        {
            let mut c = self.caches();
            if c.processed_cleared.elapsed() >= PROCESSED_TTL {
                c.processed.clear();
                c.processed_cleared = Instant::now();
            }
        }
        let mut report = CycleReport::default();
        for i in 0..self.settings.peers.len() {
            let url = self.settings.peers[i].clone();
            let errors_before = report.errors;
            let outcome = self.sync_peer(i, &url, &mut report).await;
            self.peer(i, |p| match outcome {
                Ok(()) if report.errors == errors_before => {
                    p.last_success = Some(crate::civil::iso_now());
                    p.consecutive_failures = 0;
                }
                Ok(()) => p.consecutive_failures = 0,
                Err(e) => {
                    p.last_error = Some(e);
                    p.consecutive_failures = p.consecutive_failures.saturating_add(1);
                }
            });
        }
        let ms = started.elapsed().as_millis() as u64;
        let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        m.total_discovered += report.discovered;
        m.total_synced += report.synced;
        m.total_errors += report.errors;
        m.last_sync = Some(std::time::SystemTime::now());
        m.average_ms = if m.cycles == 0 { ms as f64 } else { m.average_ms * 0.7 + ms as f64 * 0.3 };
        m.cycles += 1;
        m.last_cycle_ms = ms;
        report
    }

    async fn sync_peer(&self, i: usize, url: &str, report: &mut CycleReport) -> Result<(), String> {
        // 1. deletions
        let deleted: Map<String, Value> = match self.get_json::<Map<String, Value>>(url, &format!("{DELETED_ROOT}:index"), INDEX_TIMEOUT, MAX_INDEX_BYTES).await {
            Ok(Some(m)) => m,
            Ok(None) => Map::new(),
            Err(e) => {
                report.errors += 1;
                return Err(format!("deletion index: {e}"));
            }
        };
        for (did, flag) in deleted {
            if flag != Value::Bool(true) || !did.starts_with("did:gun:") {
                continue;
            }
            let soul = &did["did:gun:".len()..];
            if node::check_soul(soul).is_err() {
                continue;
            }
            let known_dead = matches!(self.svc.graph.gun_has(soul).await, Ok(Some(false)));
            let announced = self.svc.is_deleted(&did).await.unwrap_or(false);
            if known_dead && announced {
                continue;
            }
            match self.svc.apply_deletion(&did, None, true).await {
                Ok(()) => report.deleted += 1,
                Err(e) => {
                    report.errors += 1;
                    tracing::warn!(error = %e, "gun sync: applying a deletion failed");
                }
            }
        }

        // 2. pull
        let mut errors = 0u32;
        let mut wanted: Vec<(String, Option<String>)> = Vec::new();
        // type indexes, a few at once, taken in order
        let index_souls: Vec<String> = RECORD_TYPES.iter().map(|rt| format!("{REGISTRY_ROOT}:index:{rt}")).collect();
        let mut indexes = futures_util::stream::iter(index_souls.into_iter().map(|soul| async move {
            let r = self.get_json::<Map<String, Value>>(url, &soul, INDEX_TIMEOUT, MAX_INDEX_BYTES).await;
            (soul, r)
        }))
        .buffered(FETCH_CONCURRENCY);
        'types: while let Some((rt, fetched)) = indexes.next().await {
            let rt = rt.rsplit(':').next().unwrap_or_default().to_owned();
            let index = match fetched {
                Ok(Some(m)) => {
                    errors = 0;
                    m
                }
                Ok(None) => {
                    errors = 0;
                    continue;
                }
                Err(e) => {
                    report.errors += 1;
                    errors += 1;
                    if errors >= MAX_PEER_ERRORS || matches!(e, PeerError::Unreachable(_)) {
                        return Err(format!("type index {rt}: {e}"));
                    }
                    continue;
                }
            };
            for (key, entry) in index {
                if key.starts_with('_') || key.starts_with('#') || key.starts_with("oip:") {
                    continue;
                }
                let entry = match serde_json::from_value::<EntryOrOther>(entry) {
                    Ok(EntryOrOther::Entry(e)) => e,
                    _ => continue,
                };
                let soul = match (&entry.soul, &entry.reference) {
                    (Some(s), _) => s.clone(),
                    (None, Some(_)) => key.clone(),
                    _ => continue,
                };
                if entry.node_id.as_deref() == Some(self.svc.node_id.as_str()) || node::check_soul(&soul).is_err() || !super::service::is_record_soul(&soul) {
                    continue;
                }
                let did = format!("did:gun:{soul}");
                if !self.due(&soul, &did) {
                    continue;
                }
                if matches!(self.svc.graph.gun_has(&soul).await, Ok(Some(_))) {
                    self.caches().processed.put(did, ());
                    continue;
                }
                if wanted.iter().any(|(s, _)| *s == soul) {
                    continue;
                }
                wanted.push((soul, entry.node_id));
                if wanted.len() >= SOULS_PER_CYCLE {
                    break 'types;
                }
            }
        }
        drop(indexes);
        // new souls first, retries of failed ones after: a peer that keeps failing some
        // records (and is left after MAX_PEER_ERRORS in a row) never starves new ones
        {
            let c = self.caches();
            wanted.sort_by_key(|(soul, _)| c.failed.contains(&format!("did:gun:{soul}")));
        }
        let mut fetches = futures_util::stream::iter(wanted.into_iter().map(|(soul, from)| async move {
            let r = self.fetch_record(url, &soul).await;
            (soul, from, r)
        }))
        .buffer_unordered(FETCH_CONCURRENCY);
        while let Some((soul, from, fetched)) = fetches.next().await {
            report.discovered += 1;
            let did = format!("did:gun:{soul}");
            if !matches!(fetched, Fetch::Failed(_)) {
                errors = 0;
            }
            match fetched {
                Fetch::Missing => {
                    self.caches().missing.put(soul, Instant::now());
                }
                Fetch::Failed(e) => {
                    report.errors += 1;
                    errors += 1;
                    self.fail(&did);
                    tracing::debug!(soul, error = %e, "gun sync: fetch failed");
                    if errors >= MAX_PEER_ERRORS {
                        return Err(format!("record fetch: {e}"));
                    }
                }
                Fetch::Node(shaped) => match self.take_in(&soul, shaped, from.as_deref()).await {
                    Ok(encrypted_kept) => {
                        self.caches().failed.pop(&did);
                        self.caches().pulled.put(soul.clone(), ());
                        self.caches().processed.put(did, ());
                        if encrypted_kept {
                            report.kept_encrypted += 1;
                        } else {
                            report.synced += 1;
                        }
                        self.peer(i, |p| p.pulled += 1);
                    }
                    Err(e) => {
                        report.errors += 1;
                        self.fail(&did);
                        tracing::debug!(soul, error = %e, "gun sync: record refused");
                    }
                },
            }
        }
        drop(fetches);

        // 3. push
        self.push(i, url, report).await;
        Ok(())
    }

    /// Whether a soul may be fetched now (not processed, not a recent 404, not
    /// waiting out a failure's backoff).
    fn due(&self, soul: &str, did: &str) -> bool {
        let mut c = self.caches();
        if c.processed.contains(did) {
            return false;
        }
        if let Some(at) = c.missing.get(soul).copied() {
            if at.elapsed() < MISSING_TTL {
                return false;
            }
            c.missing.pop(soul);
        }
        !matches!(c.failed.get(did), Some(r) if r.next > Instant::now())
    }

    fn fail(&self, did: &str) {
        let base = self.retry_base();
        let mut c = self.caches();
        let count = c.failed.get(did).map_or(0, |r| r.count) + 1;
        c.failed.put(did.to_owned(), Retry { count, next: Instant::now() + backoff(base, count) });
    }

    /// Store a fetched record node in the graph as the original stores it
    /// (`data` and `oip` as JSON strings unless encrypted), then index it.
    /// `Ok(true)`: stored but kept encrypted (no key opens it).
    async fn take_in(&self, soul: &str, shaped: Map<String, Value>, from: Option<&str>) -> Result<bool, String> {
        let mut stored = shaped.clone();
        let encrypted = super::crypto::is_encrypted(stored.get("meta"));
        for k in ["data", "oip"] {
            if k == "data" && encrypted {
                continue;
            }
            if let Some(v @ (Value::Object(_) | Value::Array(_))) = stored.get(k) {
                let s = v.to_string();
                stored.insert(k.to_owned(), Value::String(s));
            }
        }
        // validate before storing: nothing malformed enters the graph
        match self.svc.ingest(soul, shaped, from).await {
            Ok(_) => {}
            Err(IngestError::KeptEncrypted) => {
                self.svc.put_raw(soul, stored).await.map_err(|e| e.to_string())?;
                return Ok(true);
            }
            Err(e) => return Err(e.to_string()),
        }
        self.svc.put_raw(soul, stored).await.map_err(|e| e.to_string())?;
        Ok(false)
    }

    async fn fetch_record(&self, url: &str, soul: &str) -> Fetch {
        let max = self.svc.limits.max_bytes as u64;
        let mut node = match self.get_json::<Map<String, Value>>(url, soul, RECORD_TIMEOUT, max).await {
            Ok(Some(n)) => node::from_peer_keep_refs(n),
            Ok(None) => return Fetch::Missing,
            Err(e) => return Fetch::Failed(e.to_string()),
        };
        // a GUN relay answers nested nodes as references: follow data and meta one level
        for k in ["data", "meta", "oip"] {
            let Some(reference) = node.get(k).filter(|v| node::is_reference(v)).and_then(|v| v.get("#")).and_then(Value::as_str).map(str::to_owned) else { continue };
            if node::check_soul(&reference).is_err() {
                node.shift_remove(k);
                continue;
            }
            match self.get_json::<Map<String, Value>>(url, &reference, RECORD_TIMEOUT, max).await {
                Ok(Some(child)) => {
                    node.insert(k.to_owned(), Value::Object(node::from_peer(child)));
                }
                Ok(None) => {
                    node.shift_remove(k);
                }
                Err(e) => return Fetch::Failed(e.to_string()),
            }
        }
        let node = node::from_peer(node);
        // the peer's answer parsed `data`/`oip` strings already; parse any it did not
        let mut node = node;
        for k in ["data", "oip"] {
            if let Some(Value::String(s)) = node.get(k) {
                if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(s) {
                    node.insert(k.to_owned(), v);
                }
            }
        }
        Fetch::Node(node)
    }

    /// `GET <peer>/get?soul=`: `Ok(None)` for 404 (or an answer without data).
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str, soul: &str, timeout: Duration, max: u64) -> Result<Option<T>, PeerError> {
        let mut target = reqwest::Url::parse(&format!("{url}/get")).map_err(|e| PeerError::Unreachable(e.to_string()))?;
        target.query_pairs_mut().append_pair("soul", soul);
        let b = self.client.builder(reqwest::Method::GET, target.as_str()).map_err(|e| PeerError::Unreachable(e.to_string()))?.timeout(timeout);
        let resp = self.client.send(b).await.map_err(PeerError::from_client)?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(PeerError::Status(status.as_u16()));
        }
        let body = resp.bytes_limited(Some(max)).await.map_err(PeerError::from_client)?;
        let a: Answer<T> = serde_json::from_slice(&body).map_err(|e| PeerError::Malformed(e.to_string()))?;
        Ok(if a.success { a.data } else { None })
    }

    async fn put_peer(&self, url: &str, soul: &str, data: Value) -> Result<(), PeerError> {
        let b = self
            .client
            .builder(reqwest::Method::POST, &format!("{url}/put"))
            .map_err(|e| PeerError::Unreachable(e.to_string()))?
            .timeout(PUT_TIMEOUT)
            .json(&json!({"soul": soul, "data": data}));
        let resp = self.client.send(b).await.map_err(PeerError::from_client)?;
        let status = resp.status();
        drop(resp);
        match status.as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err(PeerError::Refused(status.as_u16())),
            s => Err(PeerError::Status(s)),
        }
    }

    async fn push(&self, i: usize, url: &str, report: &mut CycleReport) {
        if self.peer(i, |p| p.push_refused_until.is_some_and(|t| t > Instant::now())) {
            return;
        }
        // tombstones that failed before, when due
        let due: Vec<String> = {
            let c = self.caches();
            c.deletion_failures.iter().filter(|(_, r)| r.next <= Instant::now()).map(|(s, _)| s.clone()).take(256).collect()
        };
        for soul in due {
            match self.put_peer(url, &soul, Value::Null).await {
                Ok(()) => {
                    self.caches().deletion_failures.pop(&soul);
                }
                Err(_) => self.deletion_failed(&soul),
            }
        }
        let mut after = self.peer(i, |p| p.pushed_seq);
        let mut sent = 0usize;
        while sent < PUSH_PER_CYCLE {
            let page = match self.svc.graph.gun_changes(after, 200).await {
                Ok(p) if !p.is_empty() => p,
                _ => break,
            };
            // what goes out: skip records pulled from peers (they stay with their
            // origin) and empty nodes (they merge nothing; a GUN relay never acknowledges one)
            let mut items: Vec<(u64, String, Option<Value>)> = Vec::with_capacity(page.len());
            for ch in page {
                let data = match &ch.node {
                    Some(text) => match serde_json::from_str::<Value>(text) {
                        Ok(v) if v.as_object().is_some_and(|m| !m.is_empty()) => Some(v),
                        _ => {
                            items.push((ch.seq, ch.soul, None));
                            continue;
                        }
                    },
                    None => Some(Value::Null),
                };
                let record = ch.soul.strip_prefix(&format!("{REGISTRY_ROOT}:nodes:{}:", self.svc.node_id)).unwrap_or(&ch.soul);
                if data.as_ref().is_some_and(|d| !d.is_null()) && self.caches().pulled.contains(record) {
                    items.push((ch.seq, ch.soul, None));
                    continue;
                }
                items.push((ch.seq, ch.soul, data));
            }
            let mut results = futures_util::stream::iter(items.into_iter().map(|(seq, soul, data)| async move {
                let r = match &data {
                    None => Ok(()),
                    Some(d) => self.put_peer(url, &soul, d.clone()).await,
                };
                (seq, soul, data, r)
            }))
            .buffered(FETCH_CONCURRENCY);
            while let Some((seq, soul, data, r)) = results.next().await {
                let tombstone = data.as_ref().is_some_and(Value::is_null);
                match r {
                    Ok(()) if data.is_some() => {
                        report.pushed += 1;
                        self.peer(i, |p| p.pushed += 1);
                    }
                    Ok(()) => {}
                    Err(PeerError::Refused(code)) => {
                        self.peer(i, |p| {
                            p.push_refused = true;
                            p.push_refused_until = Some(Instant::now() + PUSH_REFUSED_PAUSE);
                            p.last_error = Some(format!("peer refused writes ({code})"));
                        });
                        return;
                    }
                    Err(_) if tombstone => self.deletion_failed(&soul),
                    Err(e) => {
                        // stop here; the next cycle resumes from this change
                        report.errors += 1;
                        self.peer(i, |p| p.last_error = Some(format!("push: {e}")));
                        return;
                    }
                }
                after = seq;
                self.peer(i, |p| p.pushed_seq = after);
                sent += 1;
            }
        }
    }

    fn deletion_failed(&self, soul: &str) {
        let base = self.retry_base();
        let mut c = self.caches();
        let count = c.deletion_failures.get(soul).map_or(0, |r| r.count) + 1;
        // the first strikes are retried every cycle, then with backoff
        let wait = if count < DELETION_STRIKES { Duration::ZERO } else { backoff(base, count - DELETION_STRIKES + 1) };
        c.deletion_failures.put(soul.to_owned(), Retry { count, next: Instant::now() + wait });
    }

    /// `GET /api/health/gun-sync`: the original's fields, per-peer state and every cache's fill.
    pub fn status(&self) -> Value {
        let m = self.metrics.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let success_rate = if m.total_discovered > 0 { (m.total_synced as f64 / m.total_discovered as f64) * 100.0 } else { 100.0 };
        let ago = m.last_sync.and_then(|t| t.elapsed().ok());
        let healthy = self.is_running() && success_rate > 90.0 && ago.is_some_and(|a| a < self.settings.interval * 2 + Duration::from_secs(120));
        let last = m.last_sync.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| crate::civil::iso_from_unix_millis(d.as_millis() as i64));
        let c = self.caches();
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner()).clone();
        json!({
            "service": "gun-sync",
            "status": if healthy { "healthy" } else { "unhealthy" },
            "running": self.is_running(),
            "nodeId": self.svc.node_id,
            "metrics": {
                "totalDiscovered": m.total_discovered,
                "totalSynced": m.total_synced,
                "totalErrors": m.total_errors,
                "successRate": format!("{:.2}%", success_rate),
                "lastSyncTime": last,
                "lastSyncAgo": ago.map_or("never".to_owned(), |a| format!("{}s ago", a.as_secs())),
                "averageSyncTime": format!("{}ms", m.average_ms.round() as u64),
                "lastCycleMs": m.last_cycle_ms,
                "syncCycles": m.cycles,
            },
            "configuration": {
                "syncInterval": self.settings.interval.as_millis() as u64,
                "enabled": self.settings.enabled,
                "peers": self.settings.peers,
                "cacheMaxAge": PROCESSED_TTL.as_millis() as u64,
                "cacheMaxAgeMinutes": PROCESSED_TTL.as_secs() / 60,
                "recordTypes": RECORD_TYPES.len(),
            },
            "peers": peers,
            "caches": {
                "missing404": {"size": c.missing.len(), "capacity": MISSING_CACHE, "ttlSeconds": MISSING_TTL.as_secs()},
                "failedRecords": {"size": c.failed.len(), "capacity": FAILED_CACHE},
                "deletionFailures": {
                    "size": c.deletion_failures.len(), "capacity": DELETION_FAILURES, "strikes": DELETION_STRIKES,
                    "oldest": c.deletion_failures.iter().rev().take(10).map(|(soul, r)| json!({"soul": soul, "failures": r.count, "retryInSeconds": r.next.saturating_duration_since(Instant::now()).as_secs()})).collect::<Vec<_>>(),
                },
                "processedRecords": {"size": c.processed.len(), "capacity": PROCESSED_CACHE},
                "pulledRecords": {"size": c.pulled.len(), "capacity": PULLED_CACHE},
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum PeerError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("answered {0}")]
    Status(u16),
    #[error("refused writes ({0})")]
    Refused(u16),
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("{0}")]
    Client(String),
}

impl PeerError {
    fn from_client(e: ClientError) -> Self {
        if e.is_busy() {
            return PeerError::Client(e.to_string());
        }
        match e {
            ClientError::TooLarge { .. } => PeerError::Malformed(e.to_string()),
            ClientError::Connect(_) => PeerError::Unreachable(e.to_string()),
            other => PeerError::Client(other.to_string()),
        }
    }
}

impl BoundSource for GunSync {
    fn report(&self, out: &mut Vec<BoundReport>) {
        let c = self.caches();
        for (name, fill, capacity) in [
            ("gun_missing_souls", c.missing.len(), MISSING_CACHE),
            ("gun_failed_records", c.failed.len(), FAILED_CACHE),
            ("gun_deletion_failures", c.deletion_failures.len(), DELETION_FAILURES),
            ("gun_processed_records", c.processed.len(), PROCESSED_CACHE),
            ("gun_pulled_records", c.pulled.len(), PULLED_CACHE),
        ] {
            out.push(BoundReport { name, unit: "entries", capacity: capacity as u64, fill: fill as u64, config: "const gun::sync" });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_as_the_original() {
        assert_eq!(
            peer_urls("ws://a:8765/gun, wss://b.example/gun ,http://c:3005/gun-relay/, ,http://d:8765"),
            ["http://a:8765/gun-relay", "https://b.example/gun-relay", "http://c:3005/gun-relay", "http://d:8765"]
        );
    }

    #[test]
    fn backoff_doubles_to_a_ceiling() {
        let b = Duration::from_secs(60);
        assert_eq!(backoff(b, 1), b);
        assert_eq!(backoff(b, 3), b * 4);
        assert_eq!(backoff(b, 40), MAX_BACKOFF);
    }
}
