//! `GET /gun-relay/get` of a large node answers with memory bounded by the
//! answer (issue 12; the original held +50–137 MB per request): every byte the
//! request allocates is charged to its route, so the test can state the bound —
//! at most about twice the answer (the stored text, read once, and the unescaped
//! `data` string) plus a small fixed part — and that nothing stays live after.

use serde_json::{json, Value};

use crate::common::*;

const ROUTE: &str = "GET /gun-relay/get";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_node_get_is_bounded_by_its_answer() {
    let t = TestServer::start_with(|c| c.gun.gun_max_node_bytes = 64 * 1024 * 1024).await;
    let key = "02cccc00000000000000000000000000000000000000000000000000000000cccc";
    let soul = format!("{}:big", oipd::oip::did::user_hash(key));
    // 8 MB of record data, stored the original's way: `data` is a JSON string
    let blob: String = (0..8 * 1024 * 1024 / 16).map(|i| format!("{:015x},", i)).collect();
    let data = json!({"basic": {"name": "big"}, "notes": {"blob": blob}}).to_string();
    let r = reqwest::Client::new()
        .post(t.url("/gun-relay/put"))
        .bearer_auth(token(key))
        .json(&json!({"soul": soul, "data": {"data": data, "oip": "{\"recordType\":\"notes\"}", "meta": {"encrypted": false}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut answer = 0usize;
    for _ in 0..3 {
        let r = reqwest::get(t.url(&format!("/gun-relay/get?soul={soul}"))).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body = r.bytes().await.unwrap();
        answer = body.len();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"]["data"]["notes"]["blob"].as_str().unwrap().len(), blob.len());
    }
    let (_, m) = t.get_json("/api/health/memory", None).await;
    let route = m["routes"].as_array().unwrap().iter().find(|r| r["route"] == ROUTE).expect("route figures").clone();
    let max = route["maxRequestBytes"].as_u64().unwrap() as usize;
    let live = route["liveBytes"].as_i64().unwrap();
    eprintln!("answer {answer} bytes, most a request allocated {max} bytes ({:.2}× the answer), live after {live}", max as f64 / answer as f64);
    assert!(max < answer * 5 / 2 + 2 * 1024 * 1024, "a get allocated {max} bytes for a {answer}-byte answer");
    assert!(live < 1024 * 1024, "{live} bytes stay live after the requests");
    t.server.stop().await;
}
