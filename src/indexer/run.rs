//! The indexer: one cycle discovers OIP transactions after the store's resume
//! height, fetches their data, processes them in height order and writes each
//! batch with its ledger rows; then it re-checks the last blocks (the fork
//! window) and forgets transactions the chain no longer has. [`Indexer::run`]
//! repeats cycles under the supervisor; `oipd index --once` runs until caught up.
//!
//! Resume: discovery restarts at the resume height itself (inclusive: a cycle
//! cut off mid-block loses nothing) and the ledger filters what is done, so a
//! restart — or `kill -9` — repeats nothing visible and leaves no gap.
//!
//! Fork safety: blocks newer than `tip - confirmations` are rediscovered every
//! cycle; when that window was listed completely, ledger entries in it that the
//! chain no longer lists (or lists at another height or block) are forgotten,
//! together with what they stored, and processed again if they reappear.
//!
//! Bounds (each listed in `/api/health/memory`): [`Settings::page_size`]
//! transactions per GraphQL page and [`Settings::pages_per_cycle`] pages per cycle
//! (the per-cycle work list is one page); [`Settings::max_data_bytes`] per
//! transaction's data (larger: skipped with a reason, never read);
//! [`Settings::fetch_concurrency`] data fetches in flight; the template cache;
//! [`MAX_FORK_CHECK`] ledger rows per fork check; the skip counters are a fixed
//! table. Nothing here depends on the chain's size.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::gateway::{DataError, Discovered, GatewayError, Gateways, MAX_PAGE_SIZE};
use super::process::{self, reason_label, Ctx, Policy, TemplateCache};
use super::tx::{Tag, Tx};
use crate::limits::{BoundReport, BoundSource};
use crate::store::indexer::{Effect, IndexerStore, Processed};
use crate::store::StoreError;
use crate::tasks::TaskCtx;

/// Bound: ledger rows compared in one fork check.
pub const MAX_FORK_CHECK: u32 = 1000;
/// Bound: processed transactions written per store transaction.
const MAX_BATCH: usize = 100;
/// A transaction whose data cannot be fetched is tried in this many cycles,
/// then skipped with its reason.
pub const MAX_FETCH_ATTEMPTS: u32 = 5;
/// Bound: transactions with failed fetches remembered.
const MAX_RETRYING: usize = 1024;
/// `oipd index --once` gives up after this many failed cycles in a row.
const MAX_CATCH_UP_FAILURES: u32 = 30;
/// The original's first OIP block (discovery never starts lower).
pub const DEFAULT_START_BLOCK: u64 = 1_579_570;
/// ar.io's `MAX_FORK_DEPTH`.
pub const DEFAULT_CONFIRMATIONS: u64 = 18;
/// The original's `MAX_BLOCK_GAP_FOR_FALLBACK`.
pub const DEFAULT_MAX_FALLBACK_GAP: u64 = 1000;

/// The indexer's configuration, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub gateways: Vec<String>,
    pub interval: Duration,
    pub start_block: u64,
    pub confirmations: u64,
    /// A fallback gateway is not asked to cover more blocks than this.
    pub max_fallback_gap: u64,
    pub page_size: u32,
    pub pages_per_cycle: u32,
    pub max_data_bytes: u64,
    pub fetch_concurrency: usize,
    pub policy: Policy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            gateways: Vec::new(),
            interval: Duration::from_secs(10),
            start_block: DEFAULT_START_BLOCK,
            confirmations: DEFAULT_CONFIRMATIONS,
            max_fallback_gap: DEFAULT_MAX_FALLBACK_GAP,
            page_size: MAX_PAGE_SIZE,
            pages_per_cycle: 50,
            max_data_bytes: 4 * 1024 * 1024,
            fetch_concurrency: 8,
            policy: Policy::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The skip labels counted (a fixed table: [`reason_label`]'s outputs).
const SKIP_LABELS: &[&str] = &[
    "not_oip_type", "not_oip", "version", "creator_unknown", "bad_signature", "bad_data", "template",
    "type_filtered", "delete_refused", "handle", "too_large", "fetch_failed", "pending", "other",
];

/// What `/api/health/indexer` shows; updated as the indexer works.
#[derive(Default)]
struct Stats {
    tip: AtomicU64,
    indexed_height: AtomicU64,
    cycles: AtomicU64,
    processed: AtomicU64,
    indexed: AtomicU64,
    forgotten: AtomicU64,
    signature_invalid: AtomicU64,
    skips: [AtomicU64; SKIP_LABELS.len()],
    /// Transactions per second over the last cycle that did work, ×1000.
    rate_milli: AtomicU64,
    last_cycle_ms: AtomicU64,
    /// Data fetches in flight now.
    fetching: AtomicU64,
    /// Ledger rows in all and skipped, as of the last cycle.
    ledger: AtomicU64,
    ledger_skipped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Counts a fetch in flight while it lives.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// One cycle's outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub tip: u64,
    /// The resume height after the cycle.
    pub height: u64,
    pub processed: u64,
    pub forgotten: u64,
    /// Whether discovery reached the end (caught up).
    pub caught_up: bool,
    /// A fetch failed for now (or the gateway changed mid-listing): the rest
    /// waits for the next cycle.
    pub interrupted: bool,
}

/// Progress during a cycle (for `oipd index --once`).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub height: u64,
    pub tip: u64,
    pub processed: u64,
}

pub struct Indexer {
    settings: Settings,
    gateways: Gateways,
    store: Arc<dyn IndexerStore>,
    templates: TemplateCache,
    stats: Stats,
    /// Failed fetch attempts by txid (at most [`MAX_RETRYING`]).
    fetch_attempts: Mutex<HashMap<String, u32>>,
    /// Where a listing cut off by the page bound goes on: (from, gateway, cursor).
    continuation: Mutex<Option<(u64, String, String)>>,
    /// Window transactions missing from the last complete listing (at most
    /// [`MAX_FORK_CHECK`]): forgotten if missing from the next one too.
    fork_suspects: Mutex<std::collections::HashSet<String>>,
}

fn tx_of(d: &Discovered, data: &[u8]) -> Tx {
    Tx {
        id: d.id.clone(),
        owner_address: Some(d.owner_address.clone()),
        tags: d.tags.iter().map(|(n, v)| Tag::new(n.clone(), v.clone())).collect(),
        block_height: d.height,
        block_timestamp: d.timestamp,
        data: Tx::text_from_bytes(data),
    }
}

impl Indexer {
    pub fn new(settings: Settings, gateways: Gateways, store: Arc<dyn IndexerStore>) -> Self {
        Indexer {
            settings,
            gateways,
            store,
            templates: TemplateCache::default(),
            stats: Stats::default(),
            fetch_attempts: Mutex::new(HashMap::new()),
            continuation: Mutex::new(None),
            fork_suspects: Mutex::new(Default::default()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn error(&self, e: &impl std::fmt::Display) {
        let mut text = e.to_string();
        text.truncate(text.char_indices().nth(300).map_or(text.len(), |(i, _)| i));
        *self.stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
    }

    fn count(&self, p: &Processed) {
        self.stats.processed.fetch_add(1, Relaxed);
        match &p.effect {
            Effect::Skipped { reason } => {
                let label = reason_label(reason);
                let i = SKIP_LABELS.iter().position(|l| *l == label).unwrap_or(SKIP_LABELS.len() - 1);
                self.stats.skips[i].fetch_add(1, Relaxed);
                tracing::debug!(txid = %p.txid, %reason, "indexer: skipped");
            }
            Effect::Record(r) => {
                self.stats.indexed.fetch_add(1, Relaxed);
                if r.doc.contains("\"signatureValid\":false") {
                    self.stats.signature_invalid.fetch_add(1, Relaxed);
                }
            }
            _ => {
                self.stats.indexed.fetch_add(1, Relaxed);
            }
        }
    }

    /// A transaction's data, or why not: `Err(Ok(reason))` is final (skip it),
    /// `Err(Err(reason))` is worth another try in a later cycle.
    async fn fetched(&self, d: &Discovered) -> Result<Vec<u8>, Result<String, String>> {
        if let Some(size) = d.data_size.filter(|s| *s > self.settings.max_data_bytes) {
            return Err(Ok(format!("data too large ({size} bytes, at most {})", self.settings.max_data_bytes)));
        }
        self.stats.fetching.fetch_add(1, Relaxed);
        let _in_flight = InFlight(&self.stats.fetching);
        match self.gateways.data(&d.id, self.settings.max_data_bytes).await {
            Ok(b) => Ok(b.to_vec()),
            Err(DataError::TooLarge(max)) => Err(Ok(format!("data too large (over {max} bytes)"))),
            Err(DataError::Missing) => Err(Err("data not found on the gateway".into())),
            Err(DataError::Truncated) => Err(Err("data fetch broke off (truncated)".into())),
            Err(DataError::Gateway(e)) => Err(Err(format!("data fetch failed: {e}"))),
        }
    }

    /// A transient fetch failure: `Some(reason)` once it has failed
    /// [`MAX_FETCH_ATTEMPTS`] times (then it is skipped for good), else `None`
    /// (the page stops there and a later cycle tries again).
    fn fetch_failed(&self, txid: &str, reason: String) -> Option<String> {
        let mut a = self.fetch_attempts.lock().unwrap_or_else(|p| p.into_inner());
        if a.len() >= MAX_RETRYING && !a.contains_key(txid) {
            a.clear(); // bounded: forgetting attempts only delays a final skip
        }
        let n = a.entry(txid.to_owned()).or_insert(0);
        *n += 1;
        if *n >= MAX_FETCH_ATTEMPTS {
            a.remove(txid);
            return Some(format!("{reason} ({MAX_FETCH_ATTEMPTS} attempts; fetch failed)"));
        }
        None
    }

    /// Process a list of discovered transactions (one page, height order):
    /// data fetched with bounded concurrency, processed and written in order.
    /// Stops early (returns `false`) at a transaction whose data could not be
    /// fetched this time, so nothing after it is written before it.
    async fn process_page(&self, txs: Vec<Discovered>, bootstrap: bool, progress: &(dyn Fn(Progress) + Sync)) -> Result<(u64, bool), IndexError> {
        let ids: Vec<String> = txs.iter().map(|d| d.id.clone()).collect();
        let seen: std::collections::HashSet<String> = self.store.seen(ids).await?.into_iter().collect();
        let todo: Vec<Discovered> = txs.into_iter().filter(|d| d.height.is_some() && !seen.contains(&d.id)).collect();
        let mut fetched = stream::iter(todo.into_iter().map(|d| async move {
            let data = self.fetched(&d).await;
            (d, data)
        }))
        .buffered(self.settings.fetch_concurrency.max(1));
        let mut batch: Vec<Processed> = Vec::new();
        let mut n = 0;
        let now_iso = crate::civil::iso_now();
        let tip = self.stats.tip.load(Relaxed);
        while let Some((d, data)) = fetched.next().await {
            let height = d.height.unwrap_or_default();
            let effect = match data {
                Err(Ok(reason)) => Effect::Skipped { reason },
                Err(Err(reason)) => match self.fetch_failed(&d.id, reason.clone()) {
                    Some(reason) => Effect::Skipped { reason },
                    None => {
                        self.error(&format!("{}: {reason}; retried next cycle", d.id));
                        self.flush(&mut batch).await?;
                        return Ok((n, false));
                    }
                },
                Ok(bytes) => {
                    self.fetch_attempts.lock().unwrap_or_else(|p| p.into_inner()).remove(&d.id);
                    let tx = tx_of(&d, &bytes);
                    // A delete reads what earlier transactions stored: write them first.
                    if !batch.is_empty() && tx.data.contains("delete") {
                        self.flush(&mut batch).await?;
                    }
                    let ctx = Ctx { store: &*self.store, templates: &self.templates, policy: &self.settings.policy, now_iso: now_iso.clone() };
                    process::process(&tx, height, &ctx).await?
                }
            };
            let p = Processed { txid: d.id.clone(), height, block_id: d.block_id.clone(), bootstrap, effect };
            self.count(&p);
            // Creators, templates and organizations are read by what follows.
            let read_later = !matches!(p.effect, Effect::Record(_) | Effect::Skipped { .. });
            batch.push(p);
            n += 1;
            if read_later || batch.len() >= MAX_BATCH {
                self.flush(&mut batch).await?;
                progress(Progress { height, tip, processed: self.stats.processed.load(Relaxed) });
            }
        }
        self.flush(&mut batch).await?;
        Ok((n, true))
    }

    async fn flush(&self, batch: &mut Vec<Processed>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let height = batch.iter().filter(|p| !p.bootstrap).map(|p| p.height).max();
        self.store.apply(std::mem::take(batch)).await?;
        if let Some(h) = height {
            self.stats.indexed_height.fetch_max(h, Relaxed);
        }
        Ok(())
    }

    /// The original's bootstrap: with no creator indexed, its known creator
    /// registrations are fetched by id and processed first. They are marked as
    /// such: their heights neither move the resume point (discovery still starts
    /// at the start block) nor enter the fork checks.
    async fn bootstrap(&self) -> Result<(), IndexError> {
        if self.store.creators(1).await?.count > 0 {
            return Ok(());
        }
        let ids = self.settings.policy.bootstrap.clone();
        let seen = self.store.seen(ids.clone()).await?;
        for id in ids.iter().filter(|i| !seen.contains(i)) {
            match self.gateways.transaction(id).await? {
                Some(d) if d.height.is_some() => {
                    self.process_page(vec![d], true, &|_| {}).await?;
                }
                _ => tracing::debug!(txid = %id, "indexer: bootstrap registration not found on the gateways"),
            }
        }
        Ok(())
    }

    /// One cycle: bootstrap, discovery from the resume height, fork check.
    pub async fn cycle(&self, progress: &(dyn Fn(Progress) + Sync)) -> Result<CycleReport, IndexError> {
        let started = Instant::now();
        let tip = self.gateways.tip().await?;
        self.stats.tip.store(tip, Relaxed);
        self.bootstrap().await?;
        let resume = self.store.resume_height().await?.unwrap_or(0);
        let from = resume.max(self.settings.start_block);
        let window = tip.saturating_sub(self.settings.confirmations).max(self.settings.start_block);
        // Rediscover the fork window every cycle; when far behind, start where we are.
        let scan_from = from.min(window);
        // The original's guard, made to hold: a fallback gateway does not fill a large gap.
        let fallback_ok = tip.saturating_sub(from) <= self.settings.max_fallback_gap;
        // A listing cut off by the page bound goes on where it stopped (one block
        // may hold more than a cycle's pages), on the gateway that gave the cursor.
        let continued = self.continuation.lock().unwrap_or_else(|p| p.into_inner()).take().filter(|c| c.0 == scan_from);
        let (mut gateway, mut cursor) = match continued {
            Some((_, g, c)) => (Some(g), Some(c)),
            None => (None, None),
        };
        let fresh = cursor.is_none();
        let mut listed: HashMap<String, (u64, Option<String>)> = HashMap::new();
        let mut reached = 0u64;
        let mut processed = 0;
        let mut caught_up = false;
        let mut interrupted = false;
        for _ in 0..self.settings.pages_per_cycle.max(1) {
            let page = self.gateways.page(scan_from, None, cursor.as_deref(), self.settings.page_size, fallback_ok).await?;
            // Cursors belong to the gateway that gave them: a listing that
            // failed over mid-way is abandoned and started again.
            if gateway.as_ref().is_some_and(|g| *g != page.gateway) {
                interrupted = true;
                break;
            }
            gateway = Some(page.gateway.clone());
            for d in &page.txs {
                if let Some(h) = d.height {
                    reached = reached.max(h);
                    if h >= window && listed.len() < MAX_FORK_CHECK as usize {
                        listed.insert(d.id.clone(), (h, d.block_id.clone()));
                    }
                }
            }
            let (n, complete) = self.process_page(page.txs, false, progress).await?;
            processed += n;
            if !complete {
                interrupted = true;
                break;
            }
            cursor = page.cursor.clone();
            if !page.has_next || page.cursor.is_none() {
                caught_up = true;
                break;
            }
        }
        if !caught_up && !interrupted {
            if let (Some(g), Some(c)) = (gateway.clone(), cursor.clone()) {
                *self.continuation.lock().unwrap_or_else(|p| p.into_inner()) = Some((scan_from, g, c));
            }
        }
        let mut forgotten = 0;
        // Only a complete listing of the window, from one gateway, can prove a
        // transaction gone — and only at heights that listing reached, and only
        // when it was missing from the previous complete listing too.
        if caught_up && fresh && scan_from <= window && listed.len() < MAX_FORK_CHECK as usize {
            let ledger = self.store.ledger_from(window, MAX_FORK_CHECK).await?;
            let missing: Vec<String> = ledger
                .into_iter()
                .filter(|e| e.height <= reached)
                .filter(|e| match listed.get(&e.txid) {
                    None => true,
                    Some((h, block)) => *h != e.height || (block.is_some() && e.block_id.is_some() && *block != e.block_id),
                })
                .map(|e| e.txid)
                .collect();
            let gone: Vec<String> = {
                let mut suspects = self.fork_suspects.lock().unwrap_or_else(|p| p.into_inner());
                let gone: Vec<String> = missing.iter().filter(|t| suspects.contains(*t)).cloned().collect();
                *suspects = missing.into_iter().filter(|t| !gone.contains(t)).collect();
                gone
            };
            if !gone.is_empty() {
                tracing::info!(count = gone.len(), "indexer: transactions left the chain (fork); forgetting them");
                gone.iter().for_each(|t| self.templates.remove(t));
                forgotten = self.store.forget(gone).await?;
                self.stats.forgotten.fetch_add(forgotten, Relaxed);
            }
        }
        let height = self.store.resume_height().await?.unwrap_or(0);
        self.stats.indexed_height.store(height, Relaxed);
        if let Ok((all, skipped)) = self.store.ledger_counts().await {
            self.stats.ledger.store(all, Relaxed);
            self.stats.ledger_skipped.store(skipped, Relaxed);
        }
        self.stats.cycles.fetch_add(1, Relaxed);
        let took = started.elapsed();
        self.stats.last_cycle_ms.store(took.as_millis() as u64, Relaxed);
        if processed > 0 {
            self.stats.rate_milli.store((processed as f64 / took.as_secs_f64().max(1e-3) * 1000.0) as u64, Relaxed);
        }
        progress(Progress { height, tip, processed: self.stats.processed.load(Relaxed) });
        Ok(CycleReport { tip, height, processed, forgotten, caught_up, interrupted })
    }

    /// Cycles until discovery is caught up (`oipd index --once`); failures
    /// back off and retry, as the task does.
    pub async fn catch_up(&self, progress: &(dyn Fn(Progress) + Sync)) -> Result<CycleReport, IndexError> {
        let mut failures = 0u32;
        loop {
            match self.cycle(progress).await {
                Ok(r) if r.caught_up => return Ok(r),
                Ok(r) => {
                    failures = 0;
                    if r.interrupted {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                Err(e) => {
                    self.error(&e);
                    failures += 1;
                    if failures > MAX_CATCH_UP_FAILURES {
                        return Err(e);
                    }
                    tokio::time::sleep(self.backoff(&e, failures)).await;
                }
            }
        }
    }

    fn backoff(&self, e: &IndexError, failures: u32) -> Duration {
        let backoff = match e {
            IndexError::Gateway(GatewayError::NoneAvailable(w)) => *w,
            _ => Duration::from_secs(1u64 << failures.min(8)).min(Duration::from_secs(300)),
        };
        backoff.max(self.settings.interval.min(Duration::from_secs(1)))
    }

    /// The supervised task: a cycle every interval (at once again while behind);
    /// failures back off (the gateways' own waits, else doubling to 5 minutes).
    pub async fn run(self: Arc<Self>, ctx: TaskCtx) -> Result<(), String> {
        let mut failures = 0u32;
        loop {
            let wait = match self.cycle(&|_| {}).await {
                Ok(r) => {
                    failures = 0;
                    ctx.succeeded();
                    ctx.set_detail(format!("height {} of {} (lag {})", r.height, r.tip, r.tip.saturating_sub(r.height)));
                    if r.caught_up || r.interrupted { self.settings.interval } else { Duration::ZERO }
                }
                Err(e) => {
                    self.error(&e);
                    failures += 1;
                    if !ctx.back_off(self.backoff(&e, failures), &e).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            tokio::select! {
                _ = ctx.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// `GET /api/health/indexer`.
    pub async fn health(&self) -> Value {
        let s = &self.stats;
        let (tip, height) = (s.tip.load(Relaxed), s.indexed_height.load(Relaxed));
        let skips: serde_json::Map<String, Value> = SKIP_LABELS
            .iter()
            .zip(s.skips.iter())
            .map(|(l, c)| ((*l).to_owned(), c.load(Relaxed).into()))
            .collect();
        let ledger = Some((s.ledger.load(Relaxed), s.ledger_skipped.load(Relaxed)));
        json!({
            "indexedHeight": height,
            "gatewayTip": tip,
            "lagBlocks": tip.saturating_sub(height),
            "transactionsPerSecond": s.rate_milli.load(Relaxed) as f64 / 1000.0,
            "cycles": s.cycles.load(Relaxed),
            "lastCycleMs": s.last_cycle_ms.load(Relaxed),
            "processed": s.processed.load(Relaxed),
            "indexed": s.indexed.load(Relaxed),
            "signatureInvalid": s.signature_invalid.load(Relaxed),
            "forgottenByForks": s.forgotten.load(Relaxed),
            "skipped": skips,
            "ledger": ledger.map(|(all, skipped)| json!({"transactions": all, "skipped": skipped})),
            "gateways": self.gateways.report(),
            "lastError": s.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            "settings": {
                "intervalSecs": self.settings.interval.as_secs_f64(),
                "confirmations": self.settings.confirmations,
                "startBlock": self.settings.start_block,
                "recordSignatures": format!("{:?}", self.settings.policy.signatures).to_lowercase(),
            },
        })
    }

    /// The Prometheus series.
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write as _;
        use crate::memory::metrics::family;
        let s = &self.stats;
        let gauges: [(&str, &str, u64); 4] = [
            ("oipd_indexer_indexed_height", "Highest block the indexer has indexed.", s.indexed_height.load(Relaxed)),
            ("oipd_indexer_gateway_tip", "The chain tip the gateways report.", s.tip.load(Relaxed)),
            ("oipd_indexer_lag_blocks", "Blocks between the tip and the indexed height.", s.tip.load(Relaxed).saturating_sub(s.indexed_height.load(Relaxed))),
            ("oipd_indexer_transactions_processed_total", "Transactions processed (indexed or skipped).", s.processed.load(Relaxed)),
        ];
        for (name, help, v) in gauges {
            family(out, name, if name.ends_with("_total") { "counter" } else { "gauge" }, help);
            let _ = writeln!(out, "{name} {v}");
        }
        family(out, "oipd_indexer_skipped_total", "counter", "Transactions skipped, by reason.");
        for (l, c) in SKIP_LABELS.iter().zip(s.skips.iter()) {
            let _ = writeln!(out, "oipd_indexer_skipped_total{{reason=\"{l}\"}} {}", c.load(Relaxed));
        }
        family(out, "oipd_indexer_gateway_up", "gauge", "1 when a gateway is usable, 0 while it backs off or its breaker is open.");
        for g in self.gateways.report() {
            let label = g.url.replace('\\', "").replace('"', "").replace('\n', "");
            let _ = writeln!(out, "oipd_indexer_gateway_up{{gateway=\"{label}\"}} {}", u8::from(g.state == "ok"));
        }
    }
}

impl BoundSource for Indexer {
    fn report(&self, out: &mut Vec<BoundReport>) {
        self.templates.report(out);
        let s = &self.settings;
        out.push(BoundReport { name: "indexer_page_size", unit: "transactions", capacity: s.page_size as u64, fill: 0, config: "--index-page-size" });
        out.push(BoundReport { name: "indexer_pages_per_cycle", unit: "pages", capacity: s.pages_per_cycle as u64, fill: 0, config: "--index-pages-per-cycle" });
        out.push(BoundReport { name: "indexer_data_bytes", unit: "bytes", capacity: s.max_data_bytes, fill: 0, config: "--index-max-data-bytes" });
        out.push(BoundReport { name: "indexer_fetches", unit: "requests", capacity: s.fetch_concurrency as u64, fill: self.stats.fetching.load(Relaxed), config: "--index-fetch-concurrency" });
        let suspects = self.fork_suspects.lock().unwrap_or_else(|p| p.into_inner()).len();
        out.push(BoundReport { name: "indexer_fork_suspects", unit: "transactions", capacity: MAX_FORK_CHECK as u64, fill: suspects as u64, config: "const indexer::run::MAX_FORK_CHECK" });
        let retrying = self.fetch_attempts.lock().unwrap_or_else(|p| p.into_inner()).len();
        out.push(BoundReport { name: "indexer_fetch_retries", unit: "transactions", capacity: MAX_RETRYING as u64, fill: retrying as u64, config: "const indexer::run::MAX_RETRYING" });
    }
}
