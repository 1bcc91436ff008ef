//! Query abuse on `/api/records`: absurd numbers, huge strings, deeply nested
//! JSON, unknown and repeated parameters. Each is a 400 naming the parameter or a
//! documented clamp, answered fast, and no request allocates past a fixed bound
//! (read from the route's own `maxRequestBytes` in `/api/health/memory`).

use std::time::{Duration, Instant};

use crate::common::*;

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn abusive_queries_are_refused_or_clamped_fast() {
    let t = TestServer::start().await;
    t.seed_demo(2).await;
    let nested = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let many_keys = format!("{{{}}}", (0..100).map(|i| format!("\"data.basic.k{i}\":1")).collect::<Vec<_>>().join(","));
    let nested_obj = format!("{}{}", "{\"a\":".repeat(600), "}".repeat(600));
    let cases: Vec<(String, &[u16])> = vec![
        ("limit=99999999999999999999999".into(), &[400]),
        ("limit=18446744073709551615".into(), &[200]),
        ("limit=-1".into(), &[400]),
        ("limit=1e9".into(), &[400]),
        ("limit=0".into(), &[400]),
        ("page=99999999999".into(), &[400]),
        ("page=1000000&limit=1000".into(), &[200]),
        ("page=-5".into(), &[400]),
        ("resolveDepth=1000000".into(), &[400]),
        ("resolveDepth=-1".into(), &[400]),
        ("resolveDepth=5&limit=1000".into(), &[200, 413]),
        (format!("search={}", "a".repeat(10_000)), &[400]),
        (format!("search={}", enc(&"word ".repeat(100))), &[400]),
        (format!("search={}", enc("\"*:-()^~&|")), &[200]),
        (format!("search={}", enc("NEAR(a b) OR c* AND NOT d")), &[200]),
        (format!("exactMatch={}", enc(&nested_obj)), &[400]),
        (format!("exactMatch={}", &enc(&nested)[..8_000]), &[400]),
        (format!("exactMatch={}", enc(&many_keys)), &[400]),
        (format!("tags={}", (0..500).map(|i| format!("t{i}")).collect::<Vec<_>>().join(",")), &[400]),
        (format!("did={}", "did:arweave:x".repeat(1000)), &[200, 400]),
        (format!("recordType={}", "x".repeat(5000)), &[200, 400]),
        (format!("sortBy={}", "date:asc,".repeat(500)), &[400]),
        (format!("fieldName=a&fieldSearch={}", "x,".repeat(400)), &[200, 400]),
        ("dateStart=99999999999999999999&dateEnd=-99999999999999999999".into(), &[200, 400]),
        ("dateStart=9999-99-99".into(), &[400]),
        ("inArweaveBlock=99999999999999999999999".into(), &[400]),
        (format!("unknownParam={}&forceRefresh=true&x=y", "z".repeat(1000)), &[200]),
        ((0..1500).map(|i| format!("p{i}=1")).collect::<Vec<_>>().join("&"), &[200, 400]),
        ("limit=5&limit=6&limit=abc".into(), &[400]),
        ("summarizeTags=true&tagCount=99999999&tagPage=99999999".into(), &[200]),
        (format!("{}=1", "%".repeat(100)), &[200, 400]),
        ("search=%ff%fe".into(), &[200, 400]),
        ("search=%00".into(), &[400]),
        ("search=a%00b".into(), &[400]),
        ("tags=a%01b".into(), &[400]),
        ("scheduledOn=9223372036854775807".into(), &[400]),
        ("scheduledOn=-9223372036854775808".into(), &[400]),
        ("scheduledOn=99999999999999999-01-01".into(), &[400]),
        ("scheduledOn=2024-02-30".into(), &[200, 400]),
        ("scheduledOn=9999-12-31".into(), &[200]),
        (format!("q={}", "a".repeat(20_000)), &[400]),
    ];
    for (q, allowed) in &cases {
        let started = Instant::now();
        let r = t.get_raw_path(&format!("/api/records?{q}"), "").await;
        let took = started.elapsed();
        assert!(allowed.contains(&r.status), "{q:.120}: status {} {:.300}", r.status, String::from_utf8_lossy(&r.body));
        // the largest legitimate answer (1,000 records resolved 5 deep) is real work
        // in a debug build; everything else must be refused or answered quickly
        let budget = Duration::from_secs(if q.starts_with("resolveDepth=5") { 60 } else { 5 });
        assert!(took < budget, "{q:.120}: took {took:?}");
        if r.status == 400 {
            assert!(r.json()["error"].as_str().unwrap().starts_with("Invalid parameter"), "{q:.120}");
        }
        if r.status == 200 {
            let v = r.json();
            assert!(v["records"].as_array().unwrap().len() <= 1000, "{q:.120}: clamped page");
        }
    }
    // No request allocated more than a fixed bound (64 MiB) along the way.
    let v = t.get_raw_path("/api/health/memory", "").await.json();
    let route = v["routes"].as_array().unwrap().iter().find(|r| r["route"] == "GET /api/records").unwrap().clone();
    let max = route["maxRequestBytes"].as_u64().unwrap();
    assert!(max < 64 << 20, "a query allocated {max} bytes");
    // and the server still answers normally
    let (s, v) = t.get_json("/api/records?recordType=workout&resolveDepth=2&limit=5", None).await;
    assert_eq!(s, 200);
    assert!(v["searchResults"].as_u64().unwrap() > 0);
}

/// Bodies of the record writes: not JSON, nested beyond serde's limit, huge.
#[tokio::test]
async fn abusive_record_bodies() {
    let t = TestServer::start().await;
    let tok = token("owner");
    let c = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        c.post(t.url("/api/records/newRecord?recordType=note&storage=gun&localId=z"))
            .bearer_auth(&tok)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, allowed) in [
        (b"not json".to_vec(), &[400][..]),
        (b"[]".to_vec(), &[400]),
        (b"null".to_vec(), &[400]),
        (format!("{}{}", "[".repeat(200_000), "]".repeat(200_000)).into_bytes(), &[400, 413]),
        (format!("{{\"basic\":{}1{}}}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(), &[400, 413]),
        (vec![b' '; 20 << 20], &[400, 413]),
        (b"{\"basic\": {\"name\": \"\\ud800\"}}".to_vec(), &[200, 400]),
    ] {
        let r = post(body).await.unwrap();
        let s = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(allowed.contains(&s), "{s}: {v}");
        assert!(v["error"].is_string() || s == 200, "{v}");
    }
    let r = c.post(t.url("/api/records/deleteRecord")).bearer_auth(&tok).body("{\"delete\": 5}").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

/// A query past the time budget is interrupted inside SQLite and answered 503
/// with Retry-After; its reader connection is returned and service goes on.
#[tokio::test]
async fn queries_over_the_time_budget_are_interrupted() {
    let t = TestServer::start_with(|c| c.store.query_timeout_ms = 1).await;
    t.seed_demo(4).await;
    let mut interrupted = 0;
    for q in ["search=workout%20strength&limit=1000", "ingredientNames=beef,tomato,lime", "sortBy=date:desc&limit=1000&page=3", "didTxRef=x"] {
        let r = t.get_raw_path(&format!("/api/records?{q}"), "").await;
        assert!([200, 503].contains(&r.status), "{q}: {}", r.status);
        if r.status == 503 {
            interrupted += 1;
            assert_eq!(r.header("retry-after"), Some("2"));
            assert!(r.json()["details"].as_str().unwrap().contains("time budget"), "{q}");
        }
    }
    assert!(interrupted >= 2, "a 1 ms budget interrupts the heavy queries ({interrupted})");
    assert_eq!(t.bound("sqlite_readers").await.1, 0, "every reader returned");
    // the same store with the default budget answers them
    let t2 = TestServer::start().await;
    t2.seed_demo(4).await;
    let (s, _) = t2.get_json("/api/records?didTxRef=x", None).await;
    assert_eq!(s, 200);
}
