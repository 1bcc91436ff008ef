//! Exact per-route memory attribution: a route that allocates a known amount is
//! charged within ±5 %, a leaking route shows rising live bytes while a
//! well-behaved one stays flat, concurrent requests to different routes do not
//! blur, and `/metrics` is valid Prometheus exposition with the per-route series.

use std::collections::HashMap;

use crate::common::*;
use serde_json::Value;

async fn routes(t: &TestServer) -> HashMap<String, Value> {
    let (_, v) = t.get_json("/api/health/memory", None).await;
    assert_eq!(v["tracking"], true);
    v["routes"].as_array().unwrap().iter().map(|r| (r["route"].as_str().unwrap().to_owned(), r.clone())).collect()
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// The route tables are process-wide (one server per process in production);
/// these tests take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Requests of a route so far (0 if unseen).
async fn requests(t: &TestServer, route: &str) -> u64 {
    routes(t).await.get(route).map_or(0, |r| u(r, "requests"))
}

const ALLOC_ROUTE: &str = "GET /__test/alloc";
const LEAK_ROUTE: &str = "GET /__test/leak";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_allocation_is_attributed_within_5_percent() {
    let _turn = SERIAL.lock().await;
    let t = TestServer::start_with(|c| c.demo.test_routes = true).await;
    let before = requests(&t, ALLOC_ROUTE).await;
    let bytes_before = routes(&t).await.get(ALLOC_ROUTE).map_or(0, |r| u(r, "requestBytes"));
    let n: u64 = 8 * 1024 * 1024;
    for _ in 0..3 {
        let (s, _) = t.get_json(&format!("/__test/alloc?bytes={n}&hold_ms=10"), None).await;
        assert_eq!(s, 200);
    }
    let r = &routes(&t).await[ALLOC_ROUTE];
    assert_eq!(u(r, "requests") - before, 3);
    let max = u(r, "maxRequestBytes") as f64;
    assert!((max - n as f64).abs() / (n as f64) < 0.05, "max request bytes {max} vs {n}");
    let mean = (u(r, "requestBytes") - bytes_before) as f64 / 3.0;
    assert!((mean - n as f64).abs() / (n as f64) < 0.05, "mean {mean}");
    assert!(u(r, "liveBytes") < 64 * 1024, "freed again: {r}");
    assert_eq!(r["category"], "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leak_shows_as_rising_live_bytes() {
    let _turn = SERIAL.lock().await;
    let t = TestServer::start_with(|c| c.demo.test_routes = true).await;
    let mut leak_live = Vec::new();
    let mut alloc_live = Vec::new();
    for _ in 0..4 {
        t.get_json("/__test/leak?bytes=1048576", None).await;
        t.get_json("/__test/alloc?bytes=1048576", None).await;
        let r = routes(&t).await;
        leak_live.push(u(&r[LEAK_ROUTE], "liveBytes"));
        alloc_live.push(u(&r[ALLOC_ROUTE], "liveBytes"));
    }
    for w in leak_live.windows(2) {
        let grew = w[1] as i64 - w[0] as i64;
        assert!((grew - 1_048_576).abs() < 64 * 1024, "leak grew by {grew}: {leak_live:?}");
    }
    assert!(alloc_live.iter().all(|b| *b < 64 * 1024), "well-behaved route stays flat: {alloc_live:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_routes_do_not_blur() {
    let _turn = SERIAL.lock().await;
    let t = TestServer::start_with(|c| c.demo.test_routes = true).await;
    let before = requests(&t, ALLOC_ROUTE).await;
    let bytes_before = routes(&t).await.get(ALLOC_ROUTE).map_or(0, |r| u(r, "requestBytes"));
    let media_before = routes(&t).await.get("GET /media/{*path}").map_or((0, 0), |r| (u(r, "requests"), u(r, "requestBytes")));
    let gif = t.put_web("fitnessally/x.gif", &bytes(2 << 20, 9));
    let n: u64 = 4 * 1024 * 1024;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let c = client.clone();
        let url = if i % 2 == 0 { t.url(&format!("/__test/alloc?bytes={n}&hold_ms=300")) } else { t.url(&gif) };
        tasks.push(tokio::spawn(async move { c.get(url).send().await.unwrap().bytes().await.unwrap().len() }));
    }
    // While the holders hold: the alloc route holds ~8 × 4 MB, the media route little.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let during = routes(&t).await;
    let held = u(&during[ALLOC_ROUTE], "liveBytes");
    assert!(held >= 7 * n && held < 9 * n, "alloc route holds {held}");
    for task in tasks {
        task.await.unwrap();
    }
    let after = routes(&t).await;
    let a = &after[ALLOC_ROUTE];
    let m = &after["GET /media/{*path}"];
    assert_eq!(u(a, "requests") - before, 8);
    let mean = (u(a, "requestBytes") - bytes_before) as f64 / 8.0;
    assert!((mean - n as f64).abs() / (n as f64) < 0.05, "each alloc request is its own 4 MB: {mean}");
    let media_mean = (u(m, "requestBytes") - media_before.1) / (u(m, "requests") - media_before.0);
    // A media request is charged its own bytes — a few KiB: its 2 MB go from
    // the file to the socket with sendfile, through no buffer of ours — and
    // never the holders' 4 MB.
    assert!(media_mean > 0 && media_mean < 256 * 1024, "media requests are charged their own bytes only: {media_mean}");
    assert!(u(m, "liveBytes") < 256 * 1024, "{m}");
    assert_eq!(m["category"], "static_media");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_prometheus_exposition() {
    let _turn = SERIAL.lock().await;
    let t = TestServer::start_with(|c| c.demo.test_routes = true).await;
    t.get_json("/__test/alloc?bytes=1000", None).await;
    t.get_json("/api/records?limit=1", None).await;
    let text = reqwest::get(t.url("/metrics")).await.unwrap().text().await.unwrap();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "TYPE twice: {name}");
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        // name{labels} value
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        value.parse::<f64>().unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad name: {line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split("\",") {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                assert!(!v.trim_end_matches('"').contains('"') || v.contains("\\\""), "{line}");
            }
        }
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).filter(|f| types.get(*f).is_some_and(|k| k == "histogram")).unwrap_or(name);
        assert!(types.contains_key(family), "series before its TYPE: {line}");
        seen.insert(family.to_owned());
    }
    for want in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_threads",
        "process_start_time_seconds",
        "oipd_http_requests_total",
        "oipd_http_request_duration_seconds",
        "oipd_route_request_allocated_bytes",
        "oipd_route_live_bytes",
        "oipd_bound_fill",
        "oipd_bound_capacity",
    ] {
        assert!(seen.contains(want), "missing {want}");
    }
    assert!(text.contains("oipd_http_requests_total{route=\"GET /api/records\",code=\"200\"}"), "{text}");
    assert!(text.contains("oipd_bound_fill{bound=\"file_streams\""));
}

#[tokio::test]
async fn metrics_can_require_the_admin_token() {
    let t = TestServer::start_with(|c| {
        c.auth.metrics_require_admin = true;
        c.auth.admin_token = Some("s3cret-admin".into());
    })
    .await;
    assert_eq!(reqwest::get(t.url("/metrics")).await.unwrap().status(), 401);
    let r = reqwest::Client::new().get(t.url("/metrics")).bearer_auth("s3cret-admin").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::Client::new().get(t.url("/metrics")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn memory_report_shape() {
    let t = TestServer::start().await;
    let (_, v) = t.get_json("/api/health/memory", None).await;
    assert_eq!(v["status"], "healthy");
    for k in ["rss", "heapUsed", "heapTotal", "external", "arrayBuffers"] {
        assert!(v["memory"][k]["bytes"].is_u64() && v["memory"][k]["mb"].is_number(), "{k}");
    }
    let bounds: Vec<&str> = v["bounds"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    for b in ["file_streams", "file_stream_queue", "etag_cache", "etag_hashing", "record_streams", "record_stream_queue", "sqlite_readers", "connections", "connections_parked", "memory_samples", "memory_route_slots", "blocking_threads"] {
        assert!(bounds.contains(&b), "bound {b} in {bounds:?}");
    }
    assert!(v["growth"].is_object());
    let (_, a) = t.get_json("/api/health/memory/analyze", None).await;
    for k in ["memory", "ratios", "connections", "heap"] {
        assert!(a[k].is_object(), "{k}");
    }
    // a tiny budget turns the status critical, with a warning
    let t = TestServer::start_with(|c| c.memory.memory_budget_mb = 1).await;
    let (_, v) = t.get_json("/api/health/memory", None).await;
    assert_eq!(v["status"], "critical");
    assert!(v["warnings"][0].as_str().unwrap().contains("budget"));
}
