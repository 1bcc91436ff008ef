//! Request metrics per route, in fixed tables (no growth): status codes,
//! latency and per-request allocated-bytes histograms; and the Prometheus text
//! exposition of them together with process, allocator and bound gauges.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::track::{self, RouteId, MAX_ROUTES};

/// Status codes counted individually; everything else is `other`.
const CODES: [u16; 17] = [200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 412, 413, 416, 500, 501, 503, 507];
/// Latency buckets, seconds.
const LATENCY: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Allocated-bytes buckets per request.
const BYTES: [f64; 10] = [1e3, 1e4, 1e5, 1e6, 4e6, 1.6e7, 6.4e7, 2.56e8, 1e9, 4e9];

struct Hist<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    /// Sum in micro-units (µs or bytes), to stay integral.
    sum: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const Z: AtomicU64 = AtomicU64::new(0);

impl<const N: usize> Hist<N> {
    #[allow(clippy::declare_interior_mutable_const)]
    const NEW: Self = Hist { buckets: [Z; N], count: Z, sum: Z };

    fn observe(&self, bounds: &[f64; N], v: f64, sum_units: u64) {
        for (i, b) in bounds.iter().enumerate() {
            if v <= *b {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(sum_units, Relaxed);
    }
}

struct RouteMetrics {
    codes: [AtomicU64; CODES.len() + 1],
    latency: Hist<{ LATENCY.len() }>,
    bytes: Hist<{ BYTES.len() }>,
}

#[allow(clippy::declare_interior_mutable_const)]
const RM: RouteMetrics = RouteMetrics { codes: [Z; CODES.len() + 1], latency: Hist::NEW, bytes: Hist::NEW };
static ROUTES: [RouteMetrics; MAX_ROUTES] = [RM; MAX_ROUTES];

/// A response's head went out: status and time to it.
pub fn record_response(route: RouteId, status: u16, elapsed: Duration) {
    let m = &ROUTES[route.0 as usize];
    let i = CODES.iter().position(|c| *c == status).unwrap_or(CODES.len());
    m.codes[i].fetch_add(1, Relaxed);
    m.latency.observe(&LATENCY, elapsed.as_secs_f64(), elapsed.as_micros() as u64);
}

/// A request's allocations, once its body is done.
pub fn record_request_bytes(route: RouteId, bytes: u64) {
    ROUTES[route.0 as usize].bytes.observe(&BYTES, bytes as f64, bytes);
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Append one gauge/counter family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The per-route part of `/metrics`.
pub fn render_routes(out: &mut String) {
    let routes = track::routes();
    family(out, "oipd_http_requests_total", "counter", "HTTP responses by route template and status code.");
    for (i, r) in routes.iter().enumerate() {
        let m = &ROUTES[i];
        for (j, c) in m.codes.iter().enumerate() {
            let n = c.load(Relaxed);
            if n > 0 {
                let code = CODES.get(j).map_or("other".to_owned(), |c| c.to_string());
                let _ = writeln!(out, "oipd_http_requests_total{{route=\"{}\",code=\"{code}\"}} {n}", esc(&r.route));
            }
        }
    }
    family(out, "oipd_http_request_duration_seconds", "histogram", "Time to the response head, by route template.");
    for (i, r) in routes.iter().enumerate() {
        let h = &ROUTES[i].latency;
        write_hist(out, "oipd_http_request_duration_seconds", &r.route, &LATENCY, h, 1e-6);
    }
    family(out, "oipd_route_request_allocated_bytes", "histogram", "Bytes allocated per request (handler and body), by route template.");
    for (i, r) in routes.iter().enumerate() {
        let h = &ROUTES[i].bytes;
        write_hist(out, "oipd_route_request_allocated_bytes", &r.route, &BYTES, h, 1.0);
    }
    family(out, "oipd_route_live_bytes", "gauge", "Bytes allocated by a route and not yet freed, wherever the free happens.");
    for r in &routes {
        let _ = writeln!(out, "oipd_route_live_bytes{{route=\"{}\"}} {}", esc(&r.route), r.live_bytes);
    }
    family(out, "oipd_route_allocated_bytes_total", "counter", "Bytes ever allocated by a route.");
    for r in &routes {
        let _ = writeln!(out, "oipd_route_allocated_bytes_total{{route=\"{}\"}} {}", esc(&r.route), r.allocated_bytes);
    }
}

/// Voice turns: time from the turn's start to its first text and first audio
/// frame (`oipd_voice_first_text_seconds`, `oipd_voice_first_audio_seconds`).
static VOICE_FIRST_TEXT: Hist<{ LATENCY.len() }> = Hist::NEW;
static VOICE_FIRST_AUDIO: Hist<{ LATENCY.len() }> = Hist::NEW;

/// A voice turn sent its first text frame this long after it started.
pub fn record_voice_first_text(elapsed: Duration) {
    VOICE_FIRST_TEXT.observe(&LATENCY, elapsed.as_secs_f64(), elapsed.as_micros() as u64);
}

/// A voice turn sent its first audio frame this long after it started.
pub fn record_voice_first_audio(elapsed: Duration) {
    VOICE_FIRST_AUDIO.observe(&LATENCY, elapsed.as_secs_f64(), elapsed.as_micros() as u64);
}

/// The voice part of `/metrics`.
pub fn render_voice(out: &mut String) {
    for (name, help, h) in [
        ("oipd_voice_first_text_seconds", "Time from a voice turn's start to its first text frame.", &VOICE_FIRST_TEXT),
        ("oipd_voice_first_audio_seconds", "Time from a voice turn's start to its first audio frame.", &VOICE_FIRST_AUDIO),
    ] {
        family(out, name, "histogram", help);
        let count = h.count.load(Relaxed);
        for (i, b) in LATENCY.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", h.buckets[i].load(Relaxed));
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", h.sum.load(Relaxed) as f64 * 1e-6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

fn write_hist<const N: usize>(out: &mut String, name: &str, route: &str, bounds: &[f64; N], h: &Hist<N>, unit: f64) {
    let count = h.count.load(Relaxed);
    if count == 0 {
        return;
    }
    let route = esc(route);
    for (i, b) in bounds.iter().enumerate() {
        let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"{b}\"}} {}", h.buckets[i].load(Relaxed));
    }
    let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", h.sum.load(Relaxed) as f64 * unit);
    let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {count}");
}
