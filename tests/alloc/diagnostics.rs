//! The diagnostics log keeps the original's line formats (operators' greps keep
//! working) with exact figures; heap profiles are taken at thresholds and on
//! demand without stopping the server, and only for the admin.

use std::time::Duration;

use crate::common::*;
use regex::Regex;

fn lines_of(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // SUMMARY entries span lines; join continuation lines to their entry.
    let entry = Regex::new(r"^\[\d{4}-").unwrap();
    let mut out: Vec<String> = Vec::new();
    for l in text.lines() {
        if entry.is_match(l) {
            out.push(l.to_owned());
        } else if let Some(last) = out.last_mut() {
            last.push('\n');
            last.push_str(l);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_parse_with_the_original_formats() {
    // its 60 MB request would stay the alloc route's process-wide maxRequestBytes
    // (and its leak and memory_attribution's blur each other's live bytes): alone
    // in a process, not among memory_attribution's tests
    if !in_own_process(module_path!(), "log_lines_parse_with_the_original_formats") {
        return;
    }
    let t = TestServer::start_with(|c| {
        c.demo.test_routes = true;
        c.memory.memory_diagnostics = "true".into();
        c.memory.diagnostics_period_secs = 1;
        c.memory.disable_heap_dumps = true;
    })
    .await;
    let (_, m) = t.get_json("/api/health/memory", None).await;
    assert!(m["bounds"].as_array().unwrap().iter().any(|b| b["name"] == "diagnostics_events"), "the event queue is a listed bound");
    // a GROWTH by allocation (> 50 MB) and one by what the route keeps (> 10 MB)
    t.get_json("/__test/alloc?bytes=62914560", None).await;
    t.get_json("/__test/leak?bytes=12582912&x=1", None).await;
    t.get_json("/__test/alloc?bytes=1000", None).await; // no line
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let path = t.dir.path().join("data/logs/memory-diagnostics.log");
    let lines = lines_of(&path);

    let head = Regex::new(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] \[(INIT|GROWTH|PERIODIC|SUMMARY|THRESHOLD|HEAP_DUMP)\] ").unwrap();
    let init = Regex::new(r"\[INIT\] Memory Diagnostics ENABLED - Baseline: RSS: \d+\.\dMB, Heap: \d+\.\dMB, External: \d+\.\dMB$").unwrap();
    let growth = Regex::new(r"\[GROWTH\] (GET|POST|PUT|DELETE|HEAD) \S+ \((.*)\): RSS [+-]\d+\.\dMB, External [+-]\d+\.\dMB$").unwrap();
    let periodic = Regex::new(r"\[PERIODIC\] Current: RSS: \d+\.\dMB, Heap: \d+\.\dMB, External: \d+\.\dMB \| Growth rate: RSS -?\d+\.\d MB/min, External -?\d+\.\d MB/min$").unwrap();
    for l in &lines {
        assert!(head.is_match(l), "line format: {l}");
    }
    assert!(lines.iter().any(|l| init.is_match(l)), "{lines:#?}");
    assert!(lines.iter().filter(|l| periodic.is_match(l)).count() >= 1, "{lines:#?}");
    // a 60 MB request within a second is > 100 MB/min: a SUMMARY block follows
    let summary = lines.iter().find(|l| l.contains("[SUMMARY]")).unwrap_or_else(|| panic!("no SUMMARY: {lines:#?}"));
    let block: Vec<&str> = summary.lines().collect();
    assert!(block[0].ends_with("[SUMMARY] === OPERATION CATEGORY SUMMARY (Last 60s) ==="), "{summary}");
    assert!(Regex::new(r"^\[other\] \d+ operations:$").unwrap().is_match(block[1]), "{summary}");
    assert!(block[2].starts_with("  Total Growth: RSS +") && block[3].starts_with("  Avg per op: RSS "), "{summary}");
    assert_eq!(*block.last().unwrap(), "=".repeat(43));
    let growths: Vec<_> = lines.iter().filter_map(|l| growth.captures(l)).collect();
    assert_eq!(growths.len(), 2, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("GET /__test/alloc ({\"bytes\":\"62914560\"}): RSS +60.0MB")), "exact: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("GET /__test/leak ({\"bytes\":\"12582912\",\"x\":\"1\"}): RSS +12.0MB, External +12.0MB")), "{lines:#?}");
}

#[test]
fn heap_profiles_on_threshold_and_on_demand_for_the_admin_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Oipd::serve_env(
        &data,
        &[],
        &[
            ("OIPD_ADMIN_TOKEN", "admin-token-1"),
            ("OIPD_HEAP_PROFILE_THRESHOLDS_MB", "1,100000"),
            ("MEMORY_MONITOR_INTERVAL", "1000"),
            ("MEMORY_DIAGNOSTICS_ENABLED", "true"),
        ],
    );
    // the first sample crosses 1 MB at once
    let profiles = data.join("logs/heap-profiles");
    let mut found = Vec::new();
    for _ in 0..50 {
        found = std::fs::read_dir(&profiles).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        if !found.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(found.len(), 1, "one profile for the one threshold crossed");
    let bytes = std::fs::read(&found[0]).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzipped pprof");
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(data.join("logs/memory-diagnostics.log")).unwrap();
    assert!(Regex::new(r"\[THRESHOLD\] Crossed 1MB threshold - heap dump taken").unwrap().is_match(&log), "{log}");
    assert!(log.contains("[HEAP_DUMP] Created: heapprofile_threshold_1MB_"), "{log}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let url = server.url("/debug/pprof/heap");
        assert_eq!(c.get(&url).send().await.unwrap().status(), 401, "never public");
        assert_eq!(c.get(&url).bearer_auth("wrong").send().await.unwrap().status(), 401);
        let r = c.get(&url).bearer_auth("admin-token-1").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let b = r.bytes().await.unwrap();
        assert_eq!(&b[..2], &[0x1f, 0x8b]);
        // the server answers other requests while profiles are taken
        let (a, h) = tokio::join!(c.get(&url).bearer_auth("admin-token-1").send(), c.get(server.url("/api/health")).send());
        assert_eq!(a.unwrap().status(), 200);
        assert_eq!(h.unwrap().status(), 200);
        // the real allocator is in use: exact figures and tracking are on
        let m: serde_json::Value = c.get(server.url("/api/health/memory")).send().await.unwrap().json().await.unwrap();
        assert_eq!(m["tracking"], true);
        assert!(m["allocator"]["allocated"].as_u64().unwrap() > 0);
    });
}
