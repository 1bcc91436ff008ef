//! The Arweave indexer end to end, against the test gateway of `common::chain`
//! (Arweave's GraphQL and data wire formats, transactions signed by keys made
//! here): creators → templates → records → deletes indexed into documents equal
//! to the original's shape; restart resumes with no gap and no duplicate; a
//! reorg removes a record; faulty gateways (429, hang, garbage, truncated or
//! 100 MB data) are backed off or skipped with reasons while indexing goes on;
//! `--record-signatures` modes; and `kill -9` mid-cycle loses and repeats nothing.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

/// The templates every test chain starts with, by name → fields.
fn template_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("basic", basic_fields()),
        ("creatorRegistration", json!({
            "address": "string", "index_address": 0, "publicKey": "string", "index_publicKey": 1,
            "handle": "string", "index_handle": 2, "surname": "string", "index_surname": 3
        })),
        ("recipe", json!({
            "servings": "uint64", "index_servings": 0, "ingredient": "repeated dref", "index_ingredient": 1,
            "prep_time_mins": "float", "index_prep_time_mins": 2
        })),
    ]
}

/// A chain with Alice (bootstrap creator), the templates, Bob registered
/// through them, and a few records: the fixture every test starts from.
pub(crate) struct World {
    pub(crate) alice: Signer,
    bob: Signer,
    pub(crate) alice_reg: ChainTx,
    bob_reg: ChainTx,
    pub(crate) templates: std::collections::HashMap<&'static str, String>,
    pub(crate) post: ChainTx,
    recipe: ChainTx,
    bob_post: ChainTx,
    forged: ChainTx,
    pub(crate) chain: Chain,
}

pub(crate) fn world() -> World {
    let (alice, bob) = (Signer::new(), Signer::new());
    let mut txs = Vec::new();
    let alice_reg = tx_registration(&alice, "alice", "Alice", "Liddell", 100);
    txs.push(alice_reg.clone());
    let (published, templates) = templates_by(&alice, &template_fields(), 101);
    txs.extend(published);
    let bob_reg = tx_record(&bob, "creatorRegistration", &json!([
        {"0": bob.address, "1": bob.modulus, "2": "bob", "3": "Builder", "t": templates["creatorRegistration"]},
        {"0": "Bob", "3": 1, "t": templates["basic"]}
    ]), 102);
    txs.push(bob_reg.clone());
    let post = tx_record(&alice, "post", &json!([
        {"0": "Hello", "1": "first post", "2": 1_700_000_000u64, "3": 0, "4": ["a", "b"], "t": templates["basic"]}
    ]), 103);
    let recipe = tx_record(&alice, "recipe", &json!([
        {"0": "Soup", "1": "warm", "3": 1, "t": templates["basic"]},
        {"0": 4, "1": [format!("did:arweave:{}", post.id)], "2": 12.5, "t": templates["recipe"]}
    ]), 103);
    let bob_post = tx_record(&bob, "post", &json!([{"0": "Bob's", "t": templates["basic"]}]), 104);
    // Alice's key signs one thing, the data says another.
    let mut forged = tx_record(&alice, "post", &json!([{"0": "Genuine", "t": templates["basic"]}]), 104);
    forged.data = json!([{"0": "Forged", "t": templates["basic"]}]).to_string().into_bytes();
    txs.extend([post.clone(), recipe.clone(), bob_post.clone(), forged.clone()]);
    World { alice, bob, alice_reg, bob_reg, templates, post, recipe, bob_post, forged, chain: Chain { txs, tip: 130, ..Default::default() } }
}

async fn node(gw: &TestGateway, bootstrap: &str, f: impl FnOnce(&mut oipd::config::ServeConfig)) -> TestServer {
    let url = gw.url.clone();
    let bootstrap = bootstrap.to_owned();
    TestServer::start_with(move |c| {
        index_from(c, &url, &bootstrap, 2, 3);
        f(c);
    })
    .await
}

async fn health(s: &TestServer) -> Value {
    indexer_health(s).await
}

async fn record_by_did(s: &TestServer, did: &str) -> Option<Value> {
    let (st, v) = s.get_json(&format!("/api/records?did={did}"), None).await;
    assert_eq!(st, 200, "{v}");
    v["records"].as_array().and_then(|r| r.first().cloned())
}

pub(crate) fn did(t: &ChainTx) -> String {
    format!("did:arweave:{}", t.id)
}

fn sig(t: &ChainTx) -> String {
    t.tags.iter().find(|(n, _)| n == "CreatorSig").unwrap().1.clone()
}

#[tokio::test]
async fn creators_templates_records_and_deletes_as_the_original_indexes_them() {
    let w = world();
    let gw = TestGateway::start(w.chain).await;
    let s = node(&gw, &w.alice_reg.id, |_| {}).await;
    indexed_to(&s, 104).await;

    // creators: Alice by position, Bob through the creatorRegistration template
    let (st, creators) = s.get_json("/api/creators", None).await;
    assert_eq!(st, 200);
    assert_eq!(creators["qtyCreatorsInDB"], 2, "{creators:#}");
    assert_eq!(creators["maxArweaveCreatorRegBlockInDB"], 102);
    let alice_handle = oipd::indexer::handle::handle_with_digits(&w.alice_reg.id, "alice", 1);
    let bob_handle = oipd::indexer::handle::handle_with_digits(&w.bob_reg.id, "bob", 1);
    let list = creators["creatorsInDB"].as_array().unwrap();
    let bob = list.iter().find(|c| c["oip"]["did"] == did(&w.bob_reg)).expect("bob indexed");
    assert_eq!(bob["data"]["creatorHandle"], bob_handle.as_str());
    assert_eq!(bob["data"]["name"], "Bob");
    assert_eq!(bob["data"]["language"], "Spanish", "enum expanded");
    assert_eq!(bob["oip"]["creator"]["publicKey"], w.bob.modulus.as_str());
    let alice = list.iter().find(|c| c["oip"]["did"] == did(&w.alice_reg)).expect("alice indexed");
    assert_eq!(alice["data"], json!({"name": "Alice", "surname": "Liddell", "language": "en"}));

    // templates, in the original's stored shape
    let (_, t) = s.get_json(&format!("/api/templates?didTx={}", format!("did:arweave:{}", w.templates["basic"])), None).await;
    let tpl = &t["templates"][0];
    assert_eq!(tpl["data"]["template"], "basic", "{t:#}");
    assert_eq!(tpl["data"]["TxId"], w.templates["basic"].as_str());
    assert_eq!(tpl["data"]["fieldsInTemplate"]["language"], json!({"type": "enum", "index": 3}));
    assert_eq!(tpl["data"]["languageValues"][1]["name"], "Spanish");

    // a record: exactly the original's document (indexedAt aside)
    let creator = json!({"creatorHandle": alice_handle, "didAddress": format!("did:arweave:{}", w.alice.address),
        "didTx": did(&w.alice_reg), "publicKey": w.alice.modulus});
    let mut got = record_by_did(&s, &did(&w.post)).await.expect("post indexed");
    assert!(got["oip"]["indexedAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    got["oip"].as_object_mut().unwrap().remove("indexedAt");
    let expected = json!({
        "data": {"basic": {"name": "Hello", "description": "first post", "date": 1_700_000_000u64, "language": "English", "tagItems": ["a", "b"],
            // added when served, as the original's /api/records does
            "dateReadable": "Tue Nov 14 2023"}},
        "oip": {"recordType": "post", "recordStatus": "original", "did": did(&w.post), "didTx": did(&w.post),
            "inArweaveBlock": 103, "ver": "0.8.0", "signature": sig(&w.post),
            "templates": {"basic": w.templates["basic"]}, "creator": creator}
    });
    assert_eq!(got["data"], expected["data"]);
    for (k, v) in expected["oip"].as_object().unwrap() {
        assert_eq!(&got["oip"][k], v, "oip.{k}");
    }
    let recipe = record_by_did(&s, &did(&w.recipe)).await.expect("recipe indexed");
    assert_eq!(recipe["data"]["recipe"]["servings"], 4);
    assert_eq!(recipe["data"]["recipe"]["prep_time_mins"], 12.5);
    assert_eq!(recipe["data"]["basic"]["language"], "Spanish");
    assert!(record_by_did(&s, &did(&w.bob_post)).await.is_some());

    // the forged record: indexed (default `mark`) and marked
    let forged = record_by_did(&s, &did(&w.forged)).await.expect("forged indexed under mark");
    assert_eq!(forged["oip"]["signatureValid"], false);
    assert!(got["oip"].get("signatureValid").is_none(), "valid records keep the original's shape");
    let h = health(&s).await;
    assert_eq!(h["signatureInvalid"], 1, "{h:#}");

    // deletes: Bob may not delete Alice's post; Alice may
    let refused = tx_record(&w.bob, "post", &json!([{"delete": {"didTx": did(&w.post)}}]), 105);
    let allowed = tx_record(&w.alice, "post", &json!([{"delete": {"didTx": did(&w.post)}}]), 106);
    gw.push(refused.clone());
    indexed_to(&s, 105).await;
    assert!(record_by_did(&s, &did(&w.post)).await.is_some(), "another creator's delete removes nothing");
    gw.push(allowed.clone());
    gw.set_tip(130);
    indexed_to(&s, 106).await;
    assert!(record_by_did(&s, &did(&w.post)).await.is_none(), "the creator's own delete removes it");
    let (_, v) = s.get_json("/api/records?recordType=delete&includeDeleteMessages=true&limit=10", None).await;
    assert_eq!(v["records"].as_array().map(Vec::len), Some(2), "both delete messages are kept: {v:#}");

    // health: heights, gateway state, nothing left in error
    let h = health(&s).await;
    assert_eq!(h["gatewayTip"], 130);
    assert_eq!(h["gateways"][0]["state"], "ok");
    assert_eq!(h["lagBlocks"], 130 - h["indexedHeight"].as_u64().unwrap());
    let (_, mem) = s.get_json("/api/health/memory", None).await;
    let names: Vec<&str> = mem["bounds"].as_array().unwrap().iter().filter_map(|b| b["name"].as_str()).collect();
    for b in ["indexer_template_cache", "indexer_page_size", "indexer_data_bytes", "indexer_fetches"] {
        assert!(names.contains(&b), "{b} listed in /api/health/memory: {names:?}");
    }
    let metrics = reqwest::get(s.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("oipd_indexer_indexed_height 106"), "Prometheus series");
}

#[tokio::test]
async fn restart_resumes_without_gap_or_duplicate_and_a_reorg_removes_a_record() {
    let w = world();
    let gw = TestGateway::start(w.chain).await;
    let s = node(&gw, &w.alice_reg.id, |_| {}).await;
    indexed_to(&s, 104).await;
    let ledger_before = health(&s).await["ledger"]["transactions"].as_u64().unwrap();
    let data_dir = s.server.state.config.data_dir.clone();
    let dir = s.dir;
    s.server.stop().await;

    // while the node is down: more blocks, one of them in the same block as the last indexed
    let same_block = tx_record(&w.alice, "post", &json!([{"0": "Same block", "t": w.templates["basic"]}]), 104);
    let later = tx_record(&w.alice, "post", &json!([{"0": "Later", "t": w.templates["basic"]}]), 120);
    gw.push(same_block.clone());
    gw.push(later.clone());
    let graphql_before = gw.graphql_hits.load(std::sync::atomic::Ordering::SeqCst);
    let url = gw.url.clone();
    let bootstrap = w.alice_reg.id.clone();
    let s = TestServer::start_with(move |c| {
        c.data_dir = data_dir;
        c.indexer.arweave_gateways = url;
        c.indexer.index_start_block = 0;
        c.indexer.index_interval = 1;
        c.indexer.index_bootstrap_creators = bootstrap;
    })
    .await;
    drop(dir);
    indexed_to(&s, 120).await;
    assert!(gw.graphql_hits.load(std::sync::atomic::Ordering::SeqCst) > graphql_before);
    assert!(record_by_did(&s, &did(&same_block)).await.is_some(), "no gap: a transaction in the resume block");
    assert!(record_by_did(&s, &did(&later)).await.is_some());
    let h = health(&s).await;
    assert_eq!(h["ledger"]["transactions"].as_u64().unwrap(), ledger_before + 2, "no duplicate: {h:#}");
    assert_eq!(h["processed"], 2, "the restarted node processed only the two new transactions");

    // a record inside the fork window, then a reorg that drops it
    gw.set_tip(140);
    let doomed = tx_record(&w.alice, "post", &json!([{"0": "Orphaned", "t": w.templates["basic"]}]), 135);
    gw.push(doomed.clone());
    indexed_to(&s, 135).await;
    assert!(record_by_did(&s, &did(&doomed)).await.is_some());
    {
        let mut c = gw.chain.lock().unwrap();
        c.txs.retain(|t| t.id != doomed.id);
    }
    let replacement = tx_record(&w.alice, "post", &json!([{"0": "Canonical", "t": w.templates["basic"]}]), 136);
    gw.push(replacement.clone());
    let ok = wait_for(async || record_by_did(&s, &did(&doomed)).await.is_none(), 30).await;
    assert!(ok, "the orphaned record left the index: {:#}", health(&s).await);
    assert!(wait_for(async || record_by_did(&s, &did(&replacement)).await.is_some(), 30).await);
    assert!(health(&s).await["forgottenByForks"].as_u64() >= Some(1));
    // a record older than the window is final: not re-checked away
    assert!(record_by_did(&s, &did(&w.bob_post)).await.is_some());
}

#[tokio::test]
async fn faulty_gateways_are_backed_off_and_bad_data_is_skipped_with_reasons() {
    let w = world();
    let mut chain = w.chain;
    let truncated = tx_record(&w.alice, "post", &json!([{"0": "Truncated", "t": w.templates["basic"]}]), 104);
    let huge = tx_record(&w.alice, "post", &json!([{"0": "Huge", "t": w.templates["basic"]}]), 104);
    let after = tx_record(&w.alice, "post", &json!([{"0": "After the bad ones", "t": w.templates["basic"]}]), 105);
    // a data 429 and a 404 that clear up later: retried, not lost
    let limited = tx_record(&w.alice, "post", &json!([{"0": "Rate limited once", "t": w.templates["basic"]}]), 104);
    let late_data = tx_record(&w.alice, "post", &json!([{"0": "Data arrives late", "t": w.templates["basic"]}]), 104);
    chain.data_faults.insert(truncated.id.clone(), DataFault::Truncated);
    chain.data_faults.insert(huge.id.clone(), DataFault::Huge(100 * 1024 * 1024));
    chain.data_faults.insert(limited.id.clone(), DataFault::RateLimit(1));
    chain.data_faults.insert(late_data.id.clone(), DataFault::Status(404));
    chain.txs.extend([limited.clone(), late_data.clone(), truncated.clone(), huge.clone(), after.clone()]);
    // the first gateway is broken in turn: 429, hang, garbage; the second is healthy
    let bad = TestGateway::start(Chain::default()).await;
    bad.set_fault(Fault::RateLimit(600));
    let good = TestGateway::start(chain).await;
    let urls = format!("{},{}", bad.url, good.url);
    let (limited_id, late_id) = (limited.id.clone(), late_data.id.clone());
    // the 429 and the 404 clear up after a few seconds
    let chain_ref = good.chain.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut c = chain_ref.lock().unwrap();
        c.data_faults.remove(&limited_id);
        c.data_faults.remove(&late_id);
    });
    let s = node(&good, &w.alice_reg.id, |c| {
        c.indexer.arweave_gateways = urls;
        c.indexer.index_max_data_bytes = 1024 * 1024;
    })
    .await;
    indexed_to(&s, 105).await;
    let h = health(&s).await;
    assert_eq!(h["gateways"][0]["state"], "backing_off", "the 429 is honoured: {h:#}");
    assert!(h["gateways"][0]["retryInMs"].as_u64().unwrap() > 500_000, "for its Retry-After");
    assert_eq!(h["gateways"][0]["rateLimited"], 1);
    assert_eq!(bad.graphql_hits.load(std::sync::atomic::Ordering::SeqCst), 0, "/info answered 429 first; GraphQL never asked");
    assert!(record_by_did(&s, &did(&after)).await.is_some(), "indexing went on past the bad transactions");
    assert!(record_by_did(&s, &did(&limited)).await.is_some(), "a data 429 delays a transaction, it does not lose it");
    assert!(record_by_did(&s, &did(&late_data)).await.is_some(), "a 404 is retried: data that arrives late is indexed");
    assert!(record_by_did(&s, &did(&truncated)).await.is_none(), "data that always breaks off is skipped after its attempts");
    assert!(record_by_did(&s, &did(&huge)).await.is_none());
    assert_eq!(h["skipped"]["too_large"], 1, "{h:#}");
    assert_eq!(h["skipped"]["fetch_failed"], 1, "only the always-truncated one: {h:#}");

    // every gateway failing: the task backs off instead of spinning, and recovers
    good.set_fault(Fault::Garbage);
    let hits = good.graphql_hits.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = good.graphql_hits.load(std::sync::atomic::Ordering::SeqCst) - hits;
    assert!(during <= 4, "backing off, not spinning: {during} GraphQL requests in 4 s");
    let h = health(&s).await;
    assert!(h["lastError"].as_str().is_some_and(|e| e.contains("GraphQL")), "{h:#}");
    let ok = wait_for(async || health(&s).await["gateways"][1]["consecutiveFailures"].as_u64() >= Some(2), 20).await;
    assert!(ok, "garbage counts as failures; /info answering does not clear them: {:#}", health(&s).await);
    good.set_fault(Fault::Hang);
    let ok = wait_for(async || health(&s).await["lastError"].as_str().is_some_and(|e| e.contains("timed out") || e.contains("timeout")), 40).await;
    assert!(ok, "a hanging gateway times out: {:#}", health(&s).await);
    good.set_fault(Fault::None);
    let late = tx_record(&w.alice, "post", &json!([{"0": "After recovery", "t": w.templates["basic"]}]), 110);
    good.push(late.clone());
    let ok = wait_for(async || record_by_did(&s, &did(&late)).await.is_some(), 120).await;
    assert!(ok, "indexing resumes once the gateway recovers: {:#}", health(&s).await);
}

#[tokio::test]
async fn record_signature_modes() {
    for (mode, indexed, marked) in [
        (oipd::indexer::process::SignatureMode::Require, false, false),
        (oipd::indexer::process::SignatureMode::Off, true, false),
    ] {
        let mut w = world();
        // a delete of Alice's post claiming to be Alice's, signed by nobody's key
        let mut forged_delete = tx_record(&w.alice, "post", &json!([{"0": "innocent", "t": w.templates["basic"]}]), 104);
        forged_delete.data = json!([{"delete": {"didTx": did(&w.post)}}]).to_string().into_bytes();
        w.chain.txs.push(forged_delete);
        let gw = TestGateway::start(w.chain).await;
        let s = node(&gw, &w.alice_reg.id, |c| c.indexer.record_signatures = mode).await;
        indexed_to(&s, 104).await;
        let forged = record_by_did(&s, &did(&w.forged)).await;
        assert_eq!(forged.is_some(), indexed, "{mode:?}");
        if let Some(f) = forged {
            assert_eq!(f["oip"].get("signatureValid").is_some(), marked, "{mode:?}");
        }
        assert!(record_by_did(&s, &did(&w.post)).await.is_some(), "valid records are indexed, and a forged delete removes nothing, under {mode:?}");
        if mode == oipd::indexer::process::SignatureMode::Require {
            // the forged record and the forged delete
            assert_eq!(health(&s).await["skipped"]["bad_signature"], 2);
        }
    }
}

#[tokio::test]
async fn the_original_bootstrap_registration_as_on_chain() {
    // The original's first creator, as the chain holds it: the hard-coded copy
    // lost one `+` of its signature; the on-chain one verifies.
    const TXID: &str = "eqUwpy6et2egkGlkvS7c5GKi0aBsCXT6Dhlydf3GA3Y";
    let fixture = oipd_fixtures::player();
    let gw = TestGateway::start(Chain {
        txs: vec![ChainTx { id: TXID.into(), owner_address: fixture.0.clone(), owner_key: String::new(), tags: fixture.1.clone(), height: 1_463_761, data: fixture.2.clone().into_bytes() }],
        tip: 1_463_800,
        ..Default::default()
    })
    .await;
    let s = node(&gw, "", |c| c.indexer.index_start_block = 1_579_570).await;
    let ok = wait_for(async || s.get_json("/api/creators", None).await.1["qtyCreatorsInDB"] == 1, 30).await;
    assert!(ok, "the bootstrap registration is fetched by id and verifies: {:#}", health(&s).await);
    let (_, c) = s.get_json("/api/creators", None).await;
    let handle = oipd::indexer::handle::handle_with_digits(TXID, "Player", 1);
    assert_eq!(c["creatorsInDB"][0]["oip"]["creator"]["creatorHandle"], handle.as_str(), "{c:#}");
    assert_eq!(c["maxArweaveCreatorRegBlockInDB"], 1_463_761);
}

/// The original's first creator registration with its on-chain signature.
mod oipd_fixtures {
    /// (owner address, tags, data) of `eqUwpy…` as the chain holds it.
    pub fn player() -> (String, Vec<(String, String)>, String) {
        let raw = include_str!("../data/player_onchain.json");
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let tags = v["tags"].as_array().unwrap().iter().map(|t| (t["name"].as_str().unwrap().to_owned(), t["value"].as_str().unwrap().to_owned())).collect();
        (v["owner"].as_str().unwrap_or_default().to_owned(), tags, v["data"].as_str().unwrap().to_owned())
    }
}

#[test]
fn kill_9_mid_cycle_loses_nothing_and_repeats_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = world();
    let mut chain = w.chain;
    // enough records that a cycle is still running when it is killed
    let mut dids = vec![did(&w.post), did(&w.recipe), did(&w.bob_post), did(&w.forged)];
    for i in 0..600u64 {
        let t = tx_record(&w.alice, "post", &json!([{"0": format!("Bulk {i}"), "t": w.templates["basic"]}]), 105 + i / 20);
        dids.push(did(&t));
        chain.txs.push(t);
    }
    chain.tip = 200;
    let gw = rt.block_on(TestGateway::start(chain));
    let dir = tempfile::tempdir().unwrap();
    let args = ["--arweave-gateways", gw.url.as_str(), "--index-start-block", "0", "--index-interval", "1",
        "--index-bootstrap-creators", w.alice_reg.id.as_str(), "--index-page-size", "20"];
    let get = |url: String| -> Value { rt.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() }) };
    let count = |p: &Oipd| -> u64 { get(p.url("/api/records?recordType=post&limit=1"))["searchResults"].as_u64().unwrap_or(0) };
    let mut p = Oipd::serve(dir.path(), &args);
    // kill it once some but not all records are in
    let mut seen = 0;
    for _ in 0..600 {
        seen = count(&p);
        if seen > 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    p.child.kill().unwrap(); // SIGKILL
    p.child.wait().unwrap();
    assert!(seen > 0 && seen < 603, "killed mid-way ({seen} records)");
    let ledgered: u64 = rusqlite::Connection::open(dir.path().join("oipd.sqlite"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM indexer_txs", [], |r| r.get(0))
        .unwrap();
    let indexed_at = |p: &Oipd, d: &str| get(p.url(&format!("/api/records?did={d}")))["records"][0]["oip"]["indexedAt"].clone();
    let p = Oipd::serve(dir.path(), &args);
    let first_indexed_at = indexed_at(&p, &dids[0]);
    let mut done = false;
    for _ in 0..1200 {
        if count(&p) == 603 {
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(done, "all records after restart: {}", count(&p));
    let h = get(p.url("/api/health/indexer"));
    // ledger: 1 registration + 3 templates + 1 registration + 604 records, each once
    assert_eq!(h["ledger"]["transactions"], 609, "{h:#}");
    // nothing repeated: the restarted node processed exactly what the ledger lacked
    assert_eq!(h["processed"].as_u64().unwrap(), 609 - ledgered, "{h:#}");
    assert_eq!(indexed_at(&p, &dids[0]), first_indexed_at, "a record indexed before the kill was not rewritten");
    for d in dids.iter().take(3) {
        let v = get(p.url(&format!("/api/records?did={d}")));
        assert_eq!(v["records"].as_array().map(Vec::len), Some(1), "{d}");
    }
    drop(gw);
}

#[tokio::test]
async fn organizations_through_the_original_templates() {
    use oipd::indexer::process::{ORG_BASIC_TEMPLATE, ORG_TEMPLATE};
    let w = world();
    let mut chain = w.chain;
    // The organization templates at the txids the original hard-codes.
    let mut basic = tx_template(&w.alice, "basic", &template_fields()[0].1, 101);
    basic.id = ORG_BASIC_TEMPLATE.into();
    let mut org_t = tx_template(&w.alice, "organization", &json!({
        "org_handle": "string", "index_org_handle": 0, "org_public_key": "string", "index_org_public_key": 1,
        "admin_public_keys": "repeated string", "index_admin_public_keys": 2, "membership_policy": "enum",
        "membership_policyValues": [{"code": "invite", "name": "Invite Only"}, {"code": "domain", "name": "Auto-Enroll App Users"}],
        "index_membership_policy": 3
    }), 101);
    org_t.id = ORG_TEMPLATE.into();
    let org = tx_record(&w.alice, "organization", &json!([
        {"0": "Acme", "1": "An organization", "t": ORG_BASIC_TEMPLATE},
        {"0": "acme", "1": w.alice.modulus, "2": [w.alice.modulus], "3": 1, "t": ORG_TEMPLATE}
    ]), 107);
    let forged = {
        let mut t = tx_record(&w.bob, "organization", &json!([{"0": "Evil", "t": ORG_BASIC_TEMPLATE}, {"0": "evil", "t": ORG_TEMPLATE}]), 107);
        t.data = json!([{"0": "Evil2", "t": ORG_BASIC_TEMPLATE}, {"0": "evil", "t": ORG_TEMPLATE}]).to_string().into_bytes();
        t
    };
    chain.txs.extend([basic, org_t, org.clone(), forged]);
    let gw = TestGateway::start(chain).await;
    let s = node(&gw, &w.alice_reg.id, |_| {}).await;
    indexed_to(&s, 107).await;
    let (st, v) = s.get_json("/api/organizations?limit=5", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["qtyOrganizationsInDB"], 1, "the forged registration is refused: {v:#}");
    assert_eq!(v["maxArweaveOrgBlockInDB"], 107);
    let o = &v["organizationsInDB"][0];
    assert_eq!(o["data"]["name"], "Acme");
    assert_eq!(o["data"]["orgHandle"], oipd::indexer::handle::handle_with_digits(&org.id, "acme", 1).as_str());
    assert_eq!(o["data"]["membershipPolicy"], "Auto-Enroll App Users", "enum expanded through the organization template");
    assert_eq!(o["oip"]["did"], did(&org));
}

#[test]
fn oipd_index_once_catches_up_and_exits() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = world();
    let gw = rt.block_on(TestGateway::start(w.chain));
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oipd"))
        .args(["index", "--once", "--arweave-gateways", &gw.url, "--index-start-block", "0", "--index-bootstrap-creators", &w.alice_reg.id, "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("indexed to block 104 (tip 130), 9 transactions"), "{stdout}");
    // what it indexed is there for `serve`
    let p = Oipd::serve(dir.path(), &[]);
    let v: Value = rt.block_on(async { reqwest::get(p.url("/api/records?recordType=post")).await.unwrap().json().await.unwrap() });
    assert_eq!(v["searchResults"], 3, "{v:#}");
    // no gateway: one clear line
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oipd")).args(["index", "--once", "--data-dir"]).arg(dir.path()).env("OIPD_ARWEAVE_GATEWAYS", "").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no gateway configured"));
}

#[tokio::test]
async fn a_bootstrap_registration_above_other_transactions_opens_no_gap() {
    // The bootstrap creator registered at 125, after its own templates and
    // records (101–104): fetched by id first, it must not move the resume point.
    let mut w = world();
    w.chain.txs.iter_mut().find(|t| t.id == w.alice_reg.id).unwrap().height = 125;
    let gw = TestGateway::start(w.chain).await;
    let s = node(&gw, &w.alice_reg.id, |_| {}).await;
    assert!(wait_for(async || record_by_did(&s, &did(&w.post)).await.is_some(), 30).await, "{:#}", health(&s).await);
    assert!(record_by_did(&s, &did(&w.recipe)).await.is_some());
    let (_, c) = s.get_json("/api/creators", None).await;
    assert_eq!(c["qtyCreatorsInDB"], 2, "Bob registered through Alice's templates at 102: {c:#}");
}

#[tokio::test]
async fn a_registration_for_someone_elses_address_is_refused() {
    let w = world();
    let mut chain = w.chain;
    // Mallory signs a registration naming Bob's address with her own key.
    let mallory = Signer::new();
    let items = json!([
        {"0": w.bob.address, "1": mallory.modulus, "2": "bob", "t": w.templates["creatorRegistration"]},
        {"0": "Not Bob", "t": w.templates["basic"]}
    ]);
    let fake = tx_record(&mallory, "creatorRegistration", &items, 101);
    chain.txs.push(fake.clone());
    let gw = TestGateway::start(chain).await;
    let s = node(&gw, &w.alice_reg.id, |_| {}).await;
    indexed_to(&s, 104).await;
    let (_, c) = s.get_json("/api/creators", None).await;
    let dids: Vec<&str> = c["creatorsInDB"].as_array().unwrap().iter().filter_map(|c| c["oip"]["did"].as_str()).collect();
    assert!(!dids.contains(&did(&fake).as_str()), "the impostor is not a creator: {c:#}");
    assert!(record_by_did(&s, &did(&w.bob_post)).await.expect("Bob's post")["oip"].get("signatureValid").is_none(), "Bob's records verify against Bob's key");
}
