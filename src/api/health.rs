//! Health and memory endpoints: `/api/health` (liveness, the original's answer),
//! `/api/health/tasks` (the background tasks; also under `tasks` in the memory answer),
//! `/api/health/memory` (the original's shape with exact figures, plus every bound,
//! the per-route table and growth rates), `/api/health/memory/analyze`, and
//! `/metrics` (Prometheus text).
//!
//! Mapping of the original's V8 figures onto jemalloc's (documented in the README):
//! `heapUsed` = allocated (live bytes), `heapTotal` = active (pages holding them),
//! `external` = resident − active (freed memory the allocator still holds, and its
//! metadata), `arrayBuffers` = live bytes of the media routes (file chunks in flight).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::memory::{self, track};
use crate::state::SharedState;

const MB: f64 = 1_048_576.0;

fn mb(b: u64) -> f64 {
    (b as f64 / MB * 100.0).round() / 100.0
}

fn figure(b: u64) -> Value {
    json!({"bytes": b, "mb": mb(b)})
}

/// `GET /api/health`: the original's answer, byte for byte (peers and monitors
/// compare it).
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "OK" }))
}

/// `GET /api/health/tasks`: the background tasks and their state (running /
/// backing off / failed / stopped, last error, last success, restarts).
pub async fn tasks(State(st): State<SharedState>) -> Json<Value> {
    Json(json!({ "status": "OK", "tasks": st.tasks.report() }))
}

/// The figures both memory endpoints use.
struct Figures {
    rss: u64,
    alloc: memory::AllocatorStats,
    external: u64,
    array_buffers: u64,
}

fn figures() -> Figures {
    let rss = crate::proc::resident_bytes().unwrap_or(0);
    let alloc = memory::allocator_stats().unwrap_or_default();
    let array_buffers = track::routes()
        .iter()
        .filter(|r| memory::category(&r.route) == "static_media")
        .map(|r| r.live_bytes)
        .sum();
    Figures { rss, alloc, external: alloc.resident.saturating_sub(alloc.active), array_buffers }
}

pub async fn memory(State(st): State<SharedState>) -> Json<Value> {
    let f = figures();
    let budget = st.config.memory.memory_budget_mb * 1024 * 1024;
    let used = if budget > 0 { f.rss as f64 / budget as f64 * 100.0 } else { 0.0 };
    let warn_at = st.config.memory.memory_warning_threshold as f64;
    let mut warnings = Vec::new();
    let status = if used > 90.0 {
        warnings.push(format!("Resident memory at {used:.1}% of the {} MB budget", st.config.memory.memory_budget_mb));
        "critical"
    } else if used > warn_at {
        warnings.push(format!("Resident memory at {used:.1}% of the {} MB budget", st.config.memory.memory_budget_mb));
        "warning"
    } else {
        "healthy"
    };
    let bounds = st.bounds.report();
    for b in &bounds {
        if b.capacity > 0 && b.fill >= b.capacity {
            warnings.push(format!("{} is full ({}/{} {})", b.name, b.fill, b.capacity, b.unit));
        }
    }
    let growth = st.sampler.growth();
    let mut routes = track::routes();
    routes.sort_by(|a, b| b.live_bytes.cmp(&a.live_bytes));
    let routes: Vec<Value> = routes
        .into_iter()
        .map(|r| {
            let category = memory::category(&r.route);
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            v["category"] = json!(category);
            v
        })
        .collect();
    Json(json!({
        "status": status,
        "warnings": warnings,
        "timestamp": crate::civil::iso_now(),
        "uptime": st.started.elapsed().as_secs_f64(),
        "memory": {
            "rss": figure(f.rss),
            "heapUsed": figure(f.alloc.allocated),
            "heapTotal": figure(f.alloc.active),
            "external": figure(f.external),
            "arrayBuffers": figure(f.array_buffers),
        },
        "heap": {
            "sizeLimit": budget,
            "totalAvailable": budget.saturating_sub(f.rss),
            "usedHeapSize": f.alloc.allocated,
            "utilization": format!("{used:.1}%"),
        },
        "allocator": f.alloc,
        "tracking": track::active(),
        "bounds": bounds,
        "tasks": st.tasks.report(),
        "routes": routes,
        "growth": growth,
        "sampler": {"intervalMs": st.sampler.interval.as_millis() as u64, "samples": st.sampler.len()},
        "process": {
            "openFds": crate::proc::open_fds(),
            "threads": crate::proc::threads(),
        },
    }))
}

pub async fn analyze(State(st): State<SharedState>) -> Json<Value> {
    let f = figures();
    let pct = |a: u64, b: u64| if b > 0 { (a as f64 / b as f64 * 1000.0).round() / 10.0 } else { 0.0 };
    let bounds = st.bounds.report();
    let fill = |name: &str| bounds.iter().find(|b| b.name == name).map_or(0, |b| b.fill);
    Json(json!({
        "memory": {
            "heapUsedMB": mb(f.alloc.allocated),
            "heapTotalMB": mb(f.alloc.active),
            "rssMB": mb(f.rss),
            "externalMB": mb(f.external),
            "arrayBuffersMB": mb(f.array_buffers),
        },
        "ratios": {
            "externalToHeapPercent": pct(f.external, f.alloc.active),
            "arrayBuffersToExternalPercent": pct(f.array_buffers, f.external),
            "heapToRssPercent": pct(f.alloc.allocated, f.rss),
        },
        "connections": {
            "activeHandles": fill("connections"),
            "activeRequests": fill("file_streams") + fill("record_streams"),
            "handleTypes": {"tcpConnections": fill("connections"), "openFds": crate::proc::open_fds()},
            "requestTypes": {"fileStreams": fill("file_streams"), "recordStreams": fill("record_streams"), "waiting": fill("file_stream_queue") + fill("record_stream_queue")},
        },
        "heap": {
            "heapSizeLimitMB": st.config.memory.memory_budget_mb,
            "totalAvailableMB": mb((st.config.memory.memory_budget_mb * 1024 * 1024).saturating_sub(f.rss)),
            "mallocedMB": mb(f.alloc.allocated),
        },
        "hints": {
            "externalToHeap": "resident-but-free allocator memory vs pages in use; stays low because jemalloc returns free pages within ~1 s",
            "routes": "a route whose liveBytes climbs across requests is holding memory: see /api/health/memory routes[]",
        },
    }))
}

/// Whether `headers` carry the configured admin token.
pub fn is_admin(st: &SharedState, headers: &HeaderMap) -> bool {
    let Some(want) = st.config.auth.admin_token.as_deref().filter(|t| !t.is_empty()) else { return false };
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // constant-time comparison
    got.len() == want.len() && got.bytes().zip(want.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

pub async fn metrics(State(st): State<SharedState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if st.config.auth.metrics_require_admin && !is_admin(&st, &headers) {
        return Err(ApiError::Unauthorized("Admin token required"));
    }
    let mut out = String::with_capacity(16 * 1024);
    crate::memory::exposition::render(&mut out, &st.bounds.report());
    if let Some(ix) = &st.indexer {
        ix.render_prometheus(&mut out);
    }
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(resp)
}

/// `GET /debug/pprof/heap`: a heap profile (pprof, gzipped protobuf), admin only.
pub async fn pprof_heap(State(st): State<SharedState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !is_admin(&st, &headers) {
        return Err(ApiError::Unauthorized("Admin token required"));
    }
    let (bytes, took) = crate::memory::profile::heap_pprof().await.map_err(|e| ApiError::NotImplemented(e.to_string()))?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"heap.pb.gz\""));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("dump;dur={}", took.as_secs_f64() * 1e3)) {
        h.insert(axum::http::HeaderName::from_static("server-timing"), v);
    }
    Ok(resp)
}

/// `GET /api/health/memory/samples`: the sampler's ring (bounded), oldest first.
pub async fn samples(State(st): State<SharedState>) -> Json<Value> {
    Json(json!({"intervalMs": st.sampler.interval.as_millis() as u64, "samples": st.sampler.samples()}))
}

/// The operator page, compiled into the binary: no CDN, no build step at run time.
const MEMORY_PAGE: &str = include_str!("assets/memory.html");

/// `GET /admin/memory`: live charts of resident and allocated memory, the
/// per-route table, and the bounds with their fill.
pub async fn memory_page() -> Response {
    let mut resp = (StatusCode::OK, MEMORY_PAGE).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        axum::http::HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'"),
    );
    resp
}
