//! Several nodes on one PostgreSQL (the test cluster of `common::pg`): two real
//! `oipd serve` processes share a database; a record written on one is readable
//! on the other at once (and private stays private); the indexer, singleton
//! work, runs on exactly one of them, and when that one is killed with -9 it
//! moves to the other within the lease's bound. And the faults of one node's
//! database: refused connections (503, then recovery), a query over its budget
//! (`statement_timeout` → 503), a client leaving (its query cancelled).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;
use crate::indexer::{did, world};

/// The indexer task's detail on a node (`standby: …` when it does not hold the lease).
fn indexer_detail(rt: &tokio::runtime::Runtime, p: &Oipd) -> String {
    let v: Value = rt.block_on(async { reqwest::get(p.url("/api/health/tasks")).await.unwrap().json().await.unwrap() });
    let t = v["tasks"].as_array().unwrap().iter().find(|t| t["name"] == "indexer").cloned().unwrap_or_default();
    t["detail"].as_str().unwrap_or("").to_owned()
}

#[test]
fn two_nodes_share_one_postgres_and_the_indexer_moves_when_its_node_is_killed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = world();
    let gw = rt.block_on(TestGateway::start(w.chain));
    let tmp = tempfile::tempdir().unwrap();
    let store = database_for(&tmp.path().join("shared"));
    const TTL: u64 = 2;
    let args = ["--store", &store, "--arweave-gateways", gw.url.as_str(), "--index-start-block", "0", "--index-interval", "1",
        "--index-bootstrap-creators", w.alice_reg.id.as_str(), "--lease-ttl-secs", "2", "--jwt-secret", SECRET];
    let mut nodes = vec![Oipd::serve(&tmp.path().join("a"), &args), Oipd::serve(&tmp.path().join("b"), &args)];
    let get = |url: String, tok: Option<&str>| -> Value {
        rt.block_on(async {
            let mut r = reqwest::Client::new().get(url);
            if let Some(t) = tok {
                r = r.bearer_auth(t);
            }
            r.send().await.unwrap().json().await.unwrap()
        })
    };
    let total = |p: &Oipd, q: &str| get(p.url(&format!("/api/records?{q}")), None)["searchResults"].as_u64().unwrap_or(0);

    // exactly one node indexes; both answer from the shared store
    let post = did(&w.post);
    let mut holder = None;
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let details: Vec<String> = nodes.iter().map(|n| indexer_detail(&rt, n)).collect();
        let working: Vec<usize> = (0..2).filter(|&i| !details[i].is_empty() && !details[i].starts_with("standby")).collect();
        if working.len() == 1 && details[1 - working[0]].starts_with("standby") && total(&nodes[0], &format!("did={post}")) == 1 {
            holder = Some(working[0]);
            break;
        }
        assert!(working.len() <= 1, "both nodes run the indexer: {details:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let holder = holder.expect("one node indexes, the other stands by");
    let standby = 1 - holder;
    assert_eq!(total(&nodes[standby], &format!("did={post}")), 1, "the standby node reads what the indexer wrote");
    let processed = |p: &Oipd| get(p.url("/api/health/indexer"), None)["processed"].as_u64().unwrap_or(0);
    assert_eq!(processed(&nodes[standby]), 0, "the standby node processed nothing");

    // a record written on one node is readable on the other at once; private stays private
    let alice = token("alice-key");
    let r = rt.block_on(async {
        reqwest::Client::new()
            .post(nodes[standby].url("/api/records/newRecord?recordType=note&storage=gun&localId=n1"))
            .bearer_auth(&alice)
            .json(&json!({"basic": {"name": "Shared note"}, "note": {"text": "hi"}}))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(r.status(), 200);
    let note: Value = rt.block_on(r.json()).unwrap();
    let note = note["did"].as_str().unwrap().to_owned();
    assert_eq!(get(nodes[holder].url(&format!("/api/records?did={note}")), Some(&alice))["searchResults"], 1);
    assert_eq!(get(nodes[holder].url(&format!("/api/records?did={note}")), None)["searchResults"], 0, "private on every node");

    // kill -9 the indexing node; a new record on chain is indexed by the other within the lease bound
    let killed_at = Instant::now();
    nodes[holder].child.kill().unwrap();
    nodes[holder].child.wait().unwrap();
    let t = tx_record(&w.alice, "post", &json!([{"0": "After the kill", "t": w.templates["basic"]}]), 131);
    let late = did(&t);
    gw.push(t);
    gw.set_tip(140);
    let survivor = &nodes[standby];
    let mut took_over = None;
    while killed_at.elapsed() < Duration::from_secs(30) {
        if total(survivor, &format!("did={late}")) == 1 {
            took_over = Some(killed_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = took_over.expect("the surviving node took the indexer over");
    eprintln!("indexer moved to the surviving node and indexed a new record {:.1} s after kill -9 (lease TTL {TTL} s)", took.as_secs_f64());
    // the lease expires within TTL; standby polls every TTL/3; one indexer cycle (interval 1 s)
    assert!(took < Duration::from_secs(TTL + 6), "took {took:?}");
    assert!(!indexer_detail(&rt, survivor).starts_with("standby"));
    // it resumed from the shared ledger: only what was new
    let h = get(survivor.url("/api/health/indexer"), None);
    assert_eq!(h["processed"], 1, "{h:#}");
    drop(gw);
}

/// The database refusing connections under a running node (as during a restart):
/// requests answer 503 + `Retry-After`, never 500 or a hang; when it accepts them
/// again the pool recovers by itself.
#[tokio::test]
async fn the_database_going_away_is_503_and_the_pool_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let url = database_for(&tmp.path().join("db"));
    let db = url.rsplit('/').next().unwrap().to_owned();
    let t = TestServer::start_with(|c| c.store.store = Some(url.clone())).await;
    t.seed(&[record("did:arweave:pg1", "post", "One", json!({"post": {}}))]).await;
    let psql = |sql: String| {
        let out = cluster().client("psql").args(["-d", "postgres", "-qAt", "-c", &sql]).output().unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let get = || async { reqwest::get(t.url("/api/records?limit=1")).await.unwrap() };
    assert_eq!(get().await.status(), 200);
    psql(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"));
    psql(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"));
    for _ in 0..3 {
        let r = get().await;
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].is_string(), "{v}");
    }
    psql(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"));
    let r = get().await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["searchResults"], 1);
    assert_eq!(t.bound("postgres_pool").await.1, 0, "no connection left checked out");
}

/// A query stuck behind a lock: past the query budget it is cancelled by
/// `statement_timeout` → 503 + `Retry-After`; a client that leaves first has its
/// query cancelled at once (not left running until the budget).
#[tokio::test]
async fn the_query_budget_is_statement_timeout_and_a_leaving_client_cancels_its_query() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let url = database_for(&tmp.path().join("db"));
    let db = url.rsplit('/').next().unwrap().to_owned();
    let t = TestServer::start_with(|c| {
        c.store.store = Some(url.clone());
        c.store.query_timeout_ms = 3000;
    })
    .await;
    t.seed(&[record("did:arweave:pg1", "post", "One", json!({"post": {}}))]).await;
    let psql_out = |sql: &str| {
        let out = cluster().client("psql").args(["-d", "postgres", "-qAt", "-c", sql]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // another session holds the records table
    let mut locker = cluster().client("psql").args(["-d", &db, "-q"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn().unwrap();
    locker.stdin.as_mut().unwrap().write_all(b"BEGIN; LOCK TABLE records IN ACCESS EXCLUSIVE MODE;\n").unwrap();
    locker.stdin.as_mut().unwrap().flush().unwrap();
    let waiting = format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = 'oipd' AND wait_event_type = 'Lock'");
    assert!(wait_for(async || psql_out(&format!("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = '{db}' AND l.mode = 'AccessExclusiveLock' AND l.granted")) != "0", 10).await);

    // a client that leaves: its query does not wait out the budget
    let u = t.url("/api/records?limit=1");
    let client = tokio::spawn(async move { reqwest::get(u).await });
    assert!(wait_for(async || psql_out(&waiting) == "1", 2).await, "the query waits on the lock");
    client.abort(); // the client goes away
    let left = std::time::Instant::now();
    assert!(wait_for(async || psql_out(&waiting) == "0", 2).await, "the query was cancelled when its client left");
    assert!(left.elapsed() < std::time::Duration::from_millis(2500), "before the 3 s budget");

    // one that waits: 503 + Retry-After at the budget
    let started = std::time::Instant::now();
    let r = reqwest::get(t.url("/api/records?limit=1")).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(started.elapsed() >= std::time::Duration::from_millis(2900), "{:?}", started.elapsed());
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].is_string(), "{v}");

    drop(locker.stdin.take()); // psql ends: the lock goes
    locker.wait().unwrap();
    let r = reqwest::get(t.url("/api/records?limit=1")).await.unwrap();
    assert_eq!(r.status(), 200);
}
