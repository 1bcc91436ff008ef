//! The memory diagnostics log (`MEMORY_DIAGNOSTICS_ENABLED=true`):
//! `<data-dir>/logs/memory-diagnostics.log`, with the original node's line formats
//! so operators' greps keep working — `[<ISO>] [LEVEL] message` with levels INIT,
//! GROWTH, PERIODIC, SUMMARY, THRESHOLD, HEAP_DUMP — but exact figures:
//!
//! - GROWTH `<METHOD> <route> (<query>): RSS +x.xMB, External +y.yMB`, one per
//!   request that allocated more than 50 MB ("RSS": bytes the request allocated,
//!   exactly) or after which its route holds 10 MB more ("External": change of the
//!   route's live bytes while the request ran);
//! - PERIODIC every 60 s: resident memory, allocator figures (Heap = allocated,
//!   External = resident − active) and growth rates since the last PERIODIC;
//! - SUMMARY when RSS grows over 100 MB/min or External over 50 MB/min: the last
//!   60 s of requests per category, with the top three;
//! - THRESHOLD / HEAP_DUMP when resident memory crosses a configured threshold.
//!
//! Bounds: events reach the writer through a channel of [`EVENT_QUEUE`] (full →
//! the event is dropped and counted, never waited for); [`OPS_PER_CATEGORY`]
//! recent requests per category; the file rotates at [`MAX_LOG_BYTES`], keeping
//! [`KEEP_ROTATED`] old files.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Bound: events queued for the writer.
pub const EVENT_QUEUE: usize = 1024;
/// Bound: recent requests kept per category (the original kept 100).
pub const OPS_PER_CATEGORY: usize = 100;
/// Bound: size of the log file before it rotates.
pub const MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated files kept (`.1` … `.3`).
pub const KEEP_ROTATED: usize = 3;
/// The original's GROWTH thresholds.
pub const GROWTH_RSS_BYTES: u64 = 50 * 1024 * 1024;
pub const GROWTH_EXTERNAL_BYTES: i64 = 10 * 1024 * 1024;

const MB: f64 = 1_048_576.0;

/// One finished request, as the diagnostics see it.
#[derive(Debug, Clone)]
pub struct Op {
    /// `GET /api/records`
    pub kind: String,
    /// The query as JSON, cut to 100 characters (`{}` when empty).
    pub details: String,
    pub allocated: u64,
    pub live_delta: i64,
}

pub enum Event {
    Op(Op),
    Threshold { mb: u64, file: PathBuf, took: Duration },
    ProfileFailed { mb: u64, error: String },
}

/// The sending side, held by the request middleware.
pub struct Diagnostics {
    tx: mpsc::Sender<Event>,
    pub dropped: AtomicU64,
}

impl Diagnostics {
    pub fn send(&self, e: Event) {
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether a request with these figures is logged (and so worth describing).
    pub fn is_growth(allocated: u64, live_delta: i64) -> bool {
        allocated > GROWTH_RSS_BYTES || live_delta.abs() > GROWTH_EXTERNAL_BYTES
    }
}

/// `{"k":"v",...}` of a query string, cut to 100 characters.
pub fn details(query: Option<&str>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned()))).collect())
        .unwrap_or_default();
    let s = serde_json::Value::Object(map).to_string();
    s.chars().take(100).collect()
}

fn signed(b: f64) -> String {
    format!("{}{:.1}MB", if b >= 0.0 { "+" } else { "" }, b / MB)
}

struct Log {
    path: PathBuf,
    file: Option<File>,
    size: u64,
}

impl Log {
    fn open(path: PathBuf) -> Self {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).ok();
        let size = file.as_ref().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
        Log { path, file, size }
    }

    fn rotate(&mut self) {
        self.file = None;
        for i in (1..KEEP_ROTATED).rev() {
            let _ = std::fs::rename(self.path.with_extension(format!("log.{i}")), self.path.with_extension(format!("log.{}", i + 1)));
        }
        let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
        *self = Log::open(self.path.clone());
    }

    fn line(&mut self, level: &str, msg: &str) {
        let text = format!("[{}] [{level}] {msg}\n", crate::civil::iso_now());
        if self.size + text.len() as u64 > MAX_LOG_BYTES {
            self.rotate();
        }
        match self.file.as_mut().map(|f| f.write_all(text.as_bytes())) {
            Some(Ok(())) => self.size += text.len() as u64,
            // The original's fallback: the console, prefixed.
            _ => eprint!("🔬 [Memory Diagnostics] {text}"),
        }
    }
}

#[derive(Clone, Copy)]
struct Snapshot {
    at: Instant,
    rss: u64,
    heap: u64,
    external: u64,
}

fn snapshot() -> Snapshot {
    let a = super::allocator_stats().unwrap_or_default();
    Snapshot {
        at: Instant::now(),
        rss: crate::proc::resident_bytes().unwrap_or(0),
        heap: a.allocated,
        external: a.resident.saturating_sub(a.active),
    }
}

impl crate::limits::BoundSource for Diagnostics {
    fn report(&self, out: &mut Vec<crate::limits::BoundReport>) {
        out.push(crate::limits::BoundReport {
            name: "diagnostics_events",
            unit: "events",
            capacity: EVENT_QUEUE as u64,
            fill: (EVENT_QUEUE - self.tx.capacity()) as u64,
            config: "const memory::diag::EVENT_QUEUE",
        });
    }
}

/// The writer's half: run it as a background task ([`Writer::run`]).
pub struct Writer {
    path: PathBuf,
    periodic: Duration,
    rx: mpsc::Receiver<Event>,
}

/// The diagnostics log: the sender (for the middleware and the memory watch)
/// and the writer to run.
pub fn channel(log_path: PathBuf, periodic: Duration) -> (std::sync::Arc<Diagnostics>, Writer) {
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let d = std::sync::Arc::new(Diagnostics { tx, dropped: AtomicU64::new(0) });
    (d, Writer { path: log_path, periodic, rx })
}

impl Writer {
    /// Write the log until `cancel` (or every sender is gone).
    pub async fn run(self, cancel: tokio_util::sync::CancellationToken) -> Result<(), String> {
        tokio::select! {
            _ = cancel.cancelled() => Ok(()),
            _ = run(self.path, self.periodic, self.rx) => Ok(()),
        }
    }
}

async fn run(path: PathBuf, periodic: Duration, mut rx: mpsc::Receiver<Event>) {
    let mut log = Log::open(path);
    let base = snapshot();
    log.line(
        "INIT",
        &format!(
            "Memory Diagnostics ENABLED - Baseline: RSS: {:.1}MB, Heap: {:.1}MB, External: {:.1}MB",
            base.rss as f64 / MB,
            base.heap as f64 / MB,
            base.external as f64 / MB
        ),
    );
    let mut last = base;
    let mut ops: HashMap<&'static str, VecDeque<(Instant, Op)>> = HashMap::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + periodic, periodic);
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                None => return,
                Some(Event::Op(op)) => {
                    if Diagnostics::is_growth(op.allocated, op.live_delta) {
                        log.line("GROWTH", &format!("{} ({}): RSS {}, External {}", op.kind, op.details, signed(op.allocated as f64), signed(op.live_delta as f64)));
                    }
                    let q = ops.entry(super::category(&op.kind)).or_default();
                    if q.len() == OPS_PER_CATEGORY {
                        q.pop_front();
                    }
                    q.push_back((Instant::now(), op));
                }
                Some(Event::Threshold { mb, file, took }) => {
                    log.line("THRESHOLD", &format!("Crossed {mb}MB threshold - heap dump taken"));
                    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    log.line("HEAP_DUMP", &format!("Created: {name} ({}) in {} ms, server kept serving", file.display(), took.as_millis()));
                }
                Some(Event::ProfileFailed { mb, error }) => {
                    log.line("THRESHOLD", &format!("Crossed {mb}MB threshold - heap dump failed: {error}"));
                }
            },
            _ = tick.tick() => {
                let now = snapshot();
                let minutes = now.at.duration_since(last.at).as_secs_f64() / 60.0;
                let rate = |a: u64, b: u64| if minutes > 0.0 { (a as f64 - b as f64) / MB / minutes } else { 0.0 };
                let (rss_rate, ext_rate) = (rate(now.rss, last.rss), rate(now.external, last.external));
                log.line("PERIODIC", &format!(
                    "Current: RSS: {:.1}MB, Heap: {:.1}MB, External: {:.1}MB | Growth rate: RSS {:.1} MB/min, External {:.1} MB/min",
                    now.rss as f64 / MB, now.heap as f64 / MB, now.external as f64 / MB, rss_rate, ext_rate));
                if ext_rate > 50.0 || rss_rate > 100.0 {
                    summary(&mut log, &ops);
                }
                last = now;
            }
        }
    }
}

fn summary(log: &mut Log, ops: &HashMap<&'static str, VecDeque<(Instant, Op)>>) {
    let cutoff = Instant::now() - Duration::from_secs(60);
    let mut lines = vec!["=== OPERATION CATEGORY SUMMARY (Last 60s) ===".to_owned()];
    let mut cats: Vec<_> = ops.iter().collect();
    cats.sort_by_key(|(c, _)| *c);
    for (cat, q) in cats {
        let recent: Vec<&Op> = q.iter().filter(|(t, _)| *t >= cutoff).map(|(_, o)| o).collect();
        if recent.is_empty() {
            continue;
        }
        let n = recent.len() as f64;
        let rss: f64 = recent.iter().map(|o| o.allocated as f64).sum();
        let ext: f64 = recent.iter().map(|o| o.live_delta as f64).sum();
        lines.push(format!("[{cat}] {} operations:", recent.len()));
        lines.push(format!("  Total Growth: RSS {}, External {}", signed(rss), signed(ext)));
        lines.push(format!("  Avg per op: RSS {}, External {}", signed(rss / n), signed(ext / n)));
        let mut top = recent.clone();
        top.sort_by(|a, b| b.live_delta.cmp(&a.live_delta));
        if top.first().is_some_and(|o| o.live_delta as f64 > MB) {
            lines.push("  Top operations:".to_owned());
            for (i, o) in top.iter().take(3).enumerate() {
                lines.push(format!("    {}. {} ({}): External {}", i + 1, o.kind, o.details, signed(o.live_delta as f64)));
            }
        }
    }
    lines.push("=".repeat(43));
    log.line("SUMMARY", &lines.join("\n"));
}

/// The log file of a data dir.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("logs").join("memory-diagnostics.log")
}
