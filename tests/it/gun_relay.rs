//! The built-in GUN relay and private GUN records (issue 12): the relay API on the
//! main port (writes by soul prefix) and on `--gun-relay-listen` (writes by
//! address), the original's JSON shapes with its holes fixed (deletes, nested
//! values, `recordType` listing, 404s), the bounds, private records encrypted in
//! the graph and visible to their owner only, the registry and the deletion
//! registry, and a stable node id.

use serde_json::{json, Value};

use oipd::oip::did::user_hash;

use crate::common::*;

const ALICE: &str = "02aaaa00000000000000000000000000000000000000000000000000000000aaaa";
const BOB: &str = "03bbbb00000000000000000000000000000000000000000000000000000000bbbb";

async fn relay_get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:.200}")))
}

async fn relay_put(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

fn record_node(name: &str, record_type: &str, creator: &str) -> Value {
    json!({
        "data": json!({"basic": {"name": name}, record_type: {"note": name}}).to_string(),
        "oip": json!({"recordType": record_type, "ver": "0.8.0", "creator": {"publicKey": creator, "didAddress": format!("did:gun:{}", user_hash(creator))}}).to_string(),
        "meta": {"created": 1, "encrypted": false},
    })
}

#[tokio::test]
async fn relay_on_the_main_port() {
    let s = TestServer::start_with(|c| c.gun.gun_max_node_bytes = 256 * 1024).await;
    let (alice, bob) = (token(ALICE), token(BOB));
    let soul = format!("{}:note1", user_hash(ALICE));
    let put = |body: Value, t: Option<String>| {
        let url = s.url("/gun-relay/put");
        async move { relay_put(&url, t.as_deref(), &body).await }
    };
    let node = record_node("first", "notes", ALICE);

    // writes are authorized by soul prefix
    assert_eq!(put(json!({"soul": soul, "data": node}), None).await.0, 401);
    let (st, body) = put(json!({"soul": soul, "data": node}), Some(bob.clone())).await;
    assert_eq!(st, 403, "{body}");
    assert!(body["error"].is_string());
    assert_eq!(put(json!({"soul": "oip:registry:index:notes", "data": {"x": 1}}), Some(alice.clone())).await.0, 403);
    let (st, body) = put(json!({"soul": soul, "data": node}), Some(alice.clone())).await;
    assert_eq!((st, body), (200, json!({"success": true, "soul": soul})));

    // get: data/oip JSON strings parsed, nested meta a value (not a {"#":…} reference)
    let (st, got) = relay_get(&s.url(&format!("/gun-relay/get?soul={soul}"))).await;
    assert_eq!(st, 200);
    assert_eq!(got["success"], json!(true));
    assert_eq!(got["data"]["data"]["basic"]["name"], json!("first"));
    assert_eq!(got["data"]["oip"]["recordType"], json!("notes"));
    assert_eq!(got["data"]["meta"], json!({"created": 1, "encrypted": false}));

    // a merge keeps the other keys
    put(json!({"soul": soul, "data": {"meta": {"extra": true}}}), Some(alice.clone())).await;
    let (_, got) = relay_get(&s.url(&format!("/gun-relay/get?soul={soul}"))).await;
    assert_eq!(got["data"]["meta"], json!({"created": 1, "encrypted": false, "extra": true}));

    // list by publisher hash, with recordType working (the original matched nothing)
    let other = format!("{}:plan1", user_hash(ALICE));
    put(json!({"soul": other, "data": record_node("plan", "mealPlan", ALICE)}), Some(alice.clone())).await;
    let (st, l) = relay_get(&s.url(&format!("/gun-relay/list?publisherHash={}", user_hash(ALICE)))).await;
    assert_eq!(st, 200);
    assert_eq!(l["records"].as_array().unwrap().len(), 2);
    let (_, l) = relay_get(&s.url(&format!("/gun-relay/list?publisherHash={}&recordType=mealPlan", user_hash(ALICE)))).await;
    let recs = l["records"].as_array().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["soul"], json!(other));
    assert_eq!(recs[0]["recordType"], json!("mealPlan"));
    assert!(recs[0]["storedAt"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(recs[0]["data"]["data"]["basic"]["name"], json!("plan"));
    let (_, l) = relay_get(&s.url(&format!("/gun-relay/list?publisherHash={}&limit=1&offset=1", user_hash(ALICE)))).await;
    assert_eq!(l["records"].as_array().unwrap().len(), 1);
    // the put was indexed: its owner's records listing has it (public: no access level)
    let (_, r) = s.get_json(&format!("/api/records?did=did:gun:{soul}"), None).await;
    assert_eq!(r["records"][0]["data"]["basic"]["name"], json!("first"), "{r}");

    // a record put in another's name is relayed, not indexed
    let forged = format!("{}:forged", user_hash(ALICE));
    assert_eq!(put(json!({"soul": forged, "data": record_node("by bob?", "notes", BOB)}), Some(alice.clone())).await.0, 200);
    let (_, r) = s.get_json(&format!("/api/records?did=did:gun:{forged}"), Some(&bob)).await;
    assert_eq!(r["records"].as_array().unwrap().len(), 0, "{r}");

    // delete: data null is a tombstone, 404 afterwards, and named in the deletion registry
    let (st, body) = put(json!({"soul": soul, "data": null}), Some(alice.clone())).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(relay_get(&s.url(&format!("/gun-relay/get?soul={soul}"))).await, (404, json!({"error": "Not found"})));
    let (_, l) = relay_get(&s.url(&format!("/gun-relay/list?publisherHash={}", user_hash(ALICE)))).await;
    assert_eq!(l["records"].as_array().unwrap().len(), 2);
    let (st, idx) = relay_get(&s.url("/gun-relay/get?soul=oip:deleted:records:index")).await;
    assert_eq!(st, 200);
    assert_eq!(idx["data"][format!("did:gun:{soul}")], json!(true));
    let (_, r) = s.get_json(&format!("/api/records?did=did:gun:{soul}"), None).await;
    assert_eq!(r["records"].as_array().unwrap().len(), 0);

    // errors: 404 for any missing soul, 400s and 413 as JSON, never 500
    assert_eq!(relay_get(&s.url("/gun-relay/get?soul=nothing:here")).await.0, 404);
    assert_eq!(relay_get(&s.url("/gun-relay/get")).await.0, 400);
    assert_eq!(relay_get(&s.url("/gun-relay/list")).await.0, 400);
    assert_eq!(relay_get(&s.url(&format!("/gun-relay/list?publisherHash={}&limit=x", user_hash(ALICE)))).await.0, 400);
    let raw = reqwest::Client::new().post(s.url("/gun-relay/put")).bearer_auth(&alice).body("{not json").send().await.unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(raw.json::<Value>().await.unwrap(), json!({"error": "Invalid JSON"}));
    assert_eq!(put(json!({"data": {}}), Some(alice.clone())).await.0, 400);
    assert_eq!(put(json!({"soul": soul, "data": [1, 2]}), Some(alice.clone())).await.0, 400);
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({"d": deep});
    }
    assert_eq!(put(json!({"soul": soul, "data": deep}), Some(alice.clone())).await.0, 400);
    let long = format!("{}:{}", user_hash(ALICE), "x".repeat(600));
    assert_eq!(put(json!({"soul": long, "data": {"a": 1}}), Some(alice.clone())).await.0, 400);
    let big = json!({"soul": soul, "data": {"blob": "x".repeat(400 * 1024)}});
    let (st, body) = put(big, Some(alice.clone())).await;
    assert_eq!(st, 413, "{body}");
    // a merge that would pass the bound is refused too (nothing stored)
    let half = "y".repeat(150 * 1024);
    assert_eq!(put(json!({"soul": other, "data": {"a": half}}), Some(alice.clone())).await.0, 200);
    assert_eq!(put(json!({"soul": other, "data": {"b": half}}), Some(alice.clone())).await.0, 413);
    // GET on put, PUT on get
    assert_eq!(reqwest::get(s.url("/gun-relay/put")).await.unwrap().status().as_u16(), 405);
    s.server.stop().await;
}

#[tokio::test]
async fn relay_listener_for_original_nodes() {
    // loopback may write (the default)
    let s = TestServer::start_with(|c| c.gun.gun_relay_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = *s.server.state.gun_relay_addr.get().expect("relay listener bound");
    assert_eq!(s.bound("gun_relay_listener").await, (256, 0), "the listener's request bound is listed");
    let base = format!("http://{addr}");
    let soul = format!("{}:n1", user_hash(ALICE));
    let (st, body) = relay_put(&format!("{base}/put"), None, &json!({"soul": soul, "data": record_node("via relay", "notes", ALICE)})).await;
    assert_eq!((st, body), (200, json!({"success": true, "soul": soul})));
    // registry souls too: an original node keeps its registry in its relay
    let (st, _) = relay_put(&format!("{base}/put"), None, &json!({"soul": "oip:registry:index:notes", "data": {soul.clone(): {"soul": soul, "nodeId": "orig"}}})).await;
    assert_eq!(st, 200);
    let (st, got) = relay_get(&format!("{base}/get?soul={soul}")).await;
    assert_eq!(st, 200);
    assert_eq!(got["data"]["data"]["basic"]["name"], json!("via relay"));
    let (_, idx) = relay_get(&format!("{base}/get?soul=oip:registry:index:notes")).await;
    assert_eq!(idx["data"][&soul]["nodeId"], json!("orig"));
    let (_, l) = relay_get(&format!("{base}/list?publisherHash={}&recordType=notes", user_hash(ALICE))).await;
    assert_eq!(l["records"].as_array().unwrap().len(), 1);
    assert_eq!(relay_get(&format!("{base}/get?soul=missing:x")).await.0, 404);
    assert_eq!(relay_get(&format!("{base}/nothing")).await, (404, json!({"error": "Endpoint not found"})));
    // the main port still wants a token for the same write
    assert_eq!(relay_put(&s.url("/gun-relay/put"), None, &json!({"soul": soul, "data": {"a": 1}})).await.0, 401);
    s.server.stop().await;

    // an address outside --gun-relay-allow may read but not write
    let s = TestServer::start_with(|c| {
        c.gun.gun_relay_listen = Some("127.0.0.1:0".parse().unwrap());
        c.gun.gun_relay_allow = "10.0.0.0/8".into();
    })
    .await;
    let base = format!("http://{}", s.server.state.gun_relay_addr.get().unwrap());
    let (st, body) = relay_put(&format!("{base}/put"), None, &json!({"soul": soul, "data": {"a": 1}})).await;
    assert_eq!(st, 403, "{body}");
    assert_eq!(relay_get(&format!("{base}/get?soul={soul}")).await.0, 404);
    s.server.stop().await;

    // off by default
    let s = TestServer::start().await;
    assert!(s.server.state.gun_relay_addr.get().is_none());
    s.server.stop().await;
}

#[tokio::test]
async fn private_records_are_ciphertext_in_the_graph_and_owner_only_everywhere() {
    let s = TestServer::start().await;
    let (alice, bob) = (token(ALICE), token(BOB));
    let secret_text = "alice-secret-meal-plan-7f3a";
    let (st, out) = s
        .post_json(
            "/api/records/newRecord?storage=gun&recordType=mealPlan&localId=plan1",
            Some(&alice),
            &json!({"basic": {"name": secret_text, "tagItems": ["privatetag"]}, "mealPlan": {"meals": ["oats"]}, "accessControl": {"access_level": "private"}}),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["encrypted"], json!(true));
    let soul = format!("{}:plan1", user_hash(ALICE));
    assert_eq!(out["soul"], json!(soul));
    let did = format!("did:gun:{soul}");

    // the graph holds ciphertext in the original's wire form
    let (st, got) = relay_get(&s.url(&format!("/gun-relay/get?soul={soul}"))).await;
    assert_eq!(st, 200);
    let text = got.to_string();
    assert!(!text.contains(secret_text) && !text.contains("oats"), "plaintext in the graph: {text:.300}");
    let d = &got["data"];
    assert_eq!(d["meta"]["encrypted"], json!(true));
    assert_eq!(d["meta"]["encryptionMethod"], json!("aes-256-gcm"));
    assert_eq!(d["meta"]["encryptionType"], json!("per-user"));
    assert_eq!(d["meta"]["encryptedBy"], json!(ALICE));
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
    assert_eq!(b64(&d["data"]["iv"]).len(), 12);
    assert_eq!(b64(&d["data"]["tag"]).len(), 16);
    assert!(!b64(&d["data"]["encrypted"]).is_empty());
    assert_eq!(d["oip"]["recordType"], json!("mealPlan"));

    // the public fallback key (PBKDF2 of the public key) does not open it
    let fallback = oipd::gun::crypto::Keys::new(b"anyone").fallback(ALICE);
    {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let c = aes_gcm::Aes256Gcm::new(aes_gcm::Key::<aes_gcm::Aes256Gcm>::from_slice(&fallback[..]));
        let mut buf = b64(&d["data"]["encrypted"]);
        let r = c.decrypt_in_place_detached(aes_gcm::Nonce::from_slice(&b64(&d["data"]["iv"])), b"", &mut buf, aes_gcm::Tag::from_slice(&b64(&d["data"]["tag"])));
        assert!(r.is_err(), "the fallback key opened a new record");
    }

    // the owner reads plaintext from the records index
    let (_, r) = s.get_json("/api/records?source=gun", Some(&alice)).await;
    assert_eq!(r["records"][0]["data"]["basic"]["name"], json!(secret_text), "{r}");
    // nobody else sees it: list, did, search, tags, counts, relay list data
    for t in [None, Some(bob.as_str())] {
        for path in [
            "/api/records?source=gun".to_owned(),
            format!("/api/records?did={did}"),
            format!("/api/records?search={secret_text}"),
            "/api/records?tags=privatetag".to_owned(),
            "/api/records?recordType=mealPlan".to_owned(),
        ] {
            let (st, r) = s.get_json(&path, t).await;
            assert_eq!(st, 200);
            assert_eq!(r["records"].as_array().unwrap().len(), 0, "{path} as {t:?}: {r}");
            // (queryParams echoes the search term; the counts must not reveal a match)
            assert_eq!(r["searchResults"], json!(0), "{path}");
        }
        let (_, r) = s.get_json("/api/records?summarizeTags=true&tagCount=50", t).await;
        assert!(!r.to_string().contains("privatetag"), "{r}");
        let (_, r) = s.get_json("/api/records/recordTypes", t).await;
        assert!(!r.to_string().contains("mealPlan"), "{r}");
    }
    let (_, l) = relay_get(&s.url(&format!("/gun-relay/list?publisherHash={}", user_hash(ALICE)))).await;
    assert_eq!(l["records"].as_array().unwrap().len(), 1);
    assert!(!l.to_string().contains(secret_text));

    // a public GUN record is stored in plaintext and seen by all
    let (_, out) = s.post_json("/api/records/newRecord?storage=gun&recordType=post&localId=pub1", Some(&alice), &json!({"basic": {"name": "hello all"}, "accessControl": {"access_level": "public"}})).await;
    assert_eq!(out["encrypted"], json!(false));
    let (_, got) = relay_get(&s.url(&format!("/gun-relay/get?soul={}:pub1", user_hash(ALICE)))).await;
    assert_eq!(got["data"]["data"]["basic"]["name"], json!("hello all"));

    // the registry names both, under this node's id
    let node_id = s.server.state.gun.node_id.clone();
    let (st, idx) = relay_get(&s.url("/gun-relay/get?soul=oip:registry:index:mealPlan")).await;
    assert_eq!(st, 200);
    assert_eq!(idx["data"][&soul]["nodeId"], json!(node_id));
    let (st, entry) = relay_get(&s.url(&format!("/gun-relay/get?soul=oip:registry:nodes:{node_id}:{soul}"))).await;
    assert_eq!(st, 200);
    assert_eq!(entry["data"]["did"], json!(did));
    assert_eq!(entry["data"]["creatorPubKey"], json!(ALICE));

    // bounds listed
    let (cap, _) = s.bound("gun_key_cache").await;
    assert!(cap > 0);

    // deleting: only the owner; then a tombstone, gone from the registry, named as deleted
    let (st, _) = s.post_json("/api/records/deleteRecord", Some(&bob), &json!({"delete": {"did": did}})).await;
    assert_eq!(st, 404);
    let (st, out) = s.post_json("/api/records/deleteRecord", Some(&alice), &json!({"delete": {"did": did}})).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["gunRegistryDeletion"], json!(true));
    assert_eq!(relay_get(&s.url(&format!("/gun-relay/get?soul={soul}"))).await.0, 404);
    let (_, idx) = relay_get(&s.url("/gun-relay/get?soul=oip:registry:index:mealPlan")).await;
    assert!(idx["data"].get(&soul).is_none(), "{idx}");
    assert_eq!(relay_get(&s.url(&format!("/gun-relay/get?soul=oip:registry:nodes:{node_id}:{soul}"))).await.0, 404);
    let (_, del) = relay_get(&s.url(&format!("/gun-relay/get?soul=oip:deleted:records:{did}"))).await;
    assert_eq!(del["data"]["deletedBy"], json!(ALICE));

    // sync is off without peers
    let (st, h) = s.get_json("/api/health/gun-sync", None).await;
    assert_eq!(st, 503);
    assert_eq!(h["nodeId"], json!(node_id));
    s.server.stop().await;
}

#[tokio::test]
async fn node_id_and_secret_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut cfg = oipd::config::ServeConfig::with_data_dir(dir.path().join("data"));
        cfg.http.listen = "127.0.0.1:0".parse().unwrap();
        cfg.auth.jwt_secret = Some(SECRET.into());
        cfg.http.shutdown_grace_secs = 1;
        cfg.store.store = (current_backend().url)(&cfg.data_dir);
        oipd::RunningServer::start(cfg)
    };
    let s = start().await.unwrap();
    let alice = token(ALICE);
    let (_, out) = reqwest::Client::new()
        .post(s.url("/api/records/newRecord?storage=gun&recordType=notes&localId=k1"))
        .bearer_auth(&alice)
        .json(&json!({"basic": {"name": "kept"}}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert!(out.status().is_success());
    let id1 = s.state.gun.node_id.clone();
    s.stop().await;
    let s = start().await.unwrap();
    assert_eq!(s.state.gun.node_id, id1);
    // the restarted node still opens what it encrypted (same secret from the data dir)
    let soul = format!("{}:k1", user_hash(ALICE));
    let node = s.state.gun.get_value(&soul).await.unwrap().unwrap();
    let (plain, key) = s.state.gun.keys.decrypt(&node["data"], node["meta"].as_object().unwrap(), None).unwrap();
    assert_eq!((plain["basic"]["name"].as_str(), key), (Some("kept"), "per-user"));
    s.stop().await;
}
