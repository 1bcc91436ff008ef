//! GUN peer sync against real peers (issue 12): a relay peer on the real `gun`
//! npm package behind the original relay's HTTP protocol
//! (`bench/peers/gun-relay/relay.js`, installed by scripts/test.sh), records
//! encrypted by Node's own `crypto` the way the original encrypted them, two
//! oipd nodes converging after a partition, and peers that fail in every way
//! the original's sync leaked on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use oipd::oip::did::user_hash;

use crate::common::*;

const ALICE: &str = "02aaaa00000000000000000000000000000000000000000000000000000000aaaa";
const BOB: &str = "03bbbb00000000000000000000000000000000000000000000000000000000bbbb";
const ADMIN: &str = "gun-admin-token";

fn node_path() -> PathBuf {
    std::env::var_os("GUN_PEER_NODE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/gun-peer/node_modules"))
}

/// The gun relay peer as a child process, killed on drop.
struct GunPeer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl GunPeer {
    fn start(extra: &[&str]) -> Self {
        let np = node_path();
        assert!(np.join("gun/package.json").is_file(), "the gun package is not installed at {} (scripts/test.sh installs it)", np.display());
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/peers/gun-relay/relay.js"))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path().join("radata"))
            .args(extra)
            .env("NODE_PATH", &np)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return GunPeer { child, port, _dir: dir };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the gun peer did not start");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn put(&self, soul: &str, data: Value) {
        let r = reqwest::Client::new().post(self.url("/put")).json(&json!({"soul": soul, "data": data})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    }

    /// `/get`, following `{"#": …}` references of the top level one step.
    async fn get(&self, soul: &str) -> Option<Value> {
        let r = reqwest::get(self.url(&format!("/get?soul={}", urlenc(soul)))).await.unwrap();
        if r.status().as_u16() == 404 {
            return None;
        }
        let mut v: Value = r.json().await.unwrap();
        let mut data = v["data"].take();
        if let Some(m) = data.as_object_mut() {
            for (_, x) in m.iter_mut() {
                if let Some(child) = x.get("#").and_then(Value::as_str) {
                    let r = reqwest::get(self.url(&format!("/get?soul={}", urlenc(child)))).await.unwrap();
                    if r.status().is_success() {
                        *x = r.json::<Value>().await.unwrap()["data"].take();
                    }
                }
            }
        }
        Some(data)
    }
}

impl Drop for GunPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Records encrypted by Node's own `crypto` exactly as the original's `gun.js`
/// did (PBKDF2-SHA256 100,000 → AES-256-GCM, plaintext JSON-encoded twice).
fn node_vectors(public_key: &str, salt: &str) -> Value {
    let script = r#"
const crypto = require('crypto');
const [pk, salt] = process.argv.slice(1);
const enc = (key, data) => {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  const pt = Buffer.from(JSON.stringify(JSON.stringify(data)), 'utf8');
  const e = Buffer.concat([c.update(pt), c.final()]);
  return { encrypted: e.toString('base64'), iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64') };
};
const k = (p, s) => crypto.pbkdf2Sync(p, s, 100000, 32, 'sha256');
const rec = (n) => ({ basic: { name: n }, notes: { body: n + ' body' } });
console.log(JSON.stringify({
  fallback: enc(k(pk, 'oip-gun-fallback'), rec('fallback secret')),
  legacy: enc(k('gun-encryption-key', 'salt'), rec('legacy secret')),
  salted: enc(k(pk + ':' + salt, 'oip-gun-encryption'), rec('salted secret')),
}));
"#;
    let out = Command::new("node").args(["-e", script, public_key, salt]).output().expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn oip(record_type: &str, creator: &str) -> String {
    json!({"recordType": record_type, "ver": "0.8.0", "creator": {"publicKey": creator, "didAddress": format!("did:arweave:{}", user_hash(creator))}}).to_string()
}

async fn force(s: &TestServer) -> Value {
    let r = reqwest::Client::new().post(s.url("/api/health/gun-sync/force")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json::<Value>().await.unwrap()["cycle"].take()
}

async fn sees(s: &TestServer, did: &str, t: Option<&str>) -> Option<Value> {
    let (st, r) = s.get_json(&format!("/api/records?did={did}"), t).await;
    assert_eq!(st, 200);
    r["records"].as_array().unwrap().first().cloned()
}

#[tokio::test]
async fn node_crypto_vectors_open_with_the_original_keys() {
    let v = node_vectors(ALICE, &"ab".repeat(32));
    let keys = oipd::gun::crypto::Keys::new(b"this deployment");
    let per_user = json!({"encrypted": true, "encryptionMethod": "aes-256-gcm", "encryptionType": "per-user", "encryptedBy": ALICE});
    let m = per_user.as_object().unwrap();
    let (d, k) = keys.decrypt(&v["fallback"], m, None).unwrap();
    assert_eq!((d["basic"]["name"].as_str(), k), (Some("fallback secret"), "fallback"));
    let (d, k) = keys.decrypt(&v["salted"], m, Some(&"ab".repeat(32))).unwrap();
    assert_eq!((d["basic"]["name"].as_str(), k), (Some("salted secret"), "salted"));
    assert!(keys.decrypt(&v["salted"], m, None).is_err(), "opened without the salt");
    let legacy = json!({"encrypted": true, "encryptionMethod": "aes-256-gcm"});
    let (d, k) = keys.decrypt(&v["legacy"], legacy.as_object().unwrap(), None).unwrap();
    assert_eq!((d["basic"]["name"].as_str(), k), (Some("legacy secret"), "legacy"));
}

#[tokio::test]
async fn syncs_with_a_gun_relay_peer_both_ways() {
    let peer = GunPeer::start(&[]);
    let salt = "cd".repeat(32);
    let v = node_vectors(ALICE, &salt);
    let h = user_hash(ALICE);
    let souls = [format!("{h}:pub"), format!("{h}:fb"), format!("{h}:leg"), format!("{h}:salted")];
    // as an original node writes them into its relay: record, then the type index
    peer.put(&souls[0], json!({"data": json!({"basic": {"name": "public from peer"}, "notes": {"tags": "[\"a\",\"b\"]"}}).to_string(), "oip": oip("notes", ALICE), "meta": {"created": 1, "encrypted": false}})).await;
    let per_user = |d: &Value| json!({"data": d, "oip": oip("notes", ALICE), "meta": {"created": 1, "encrypted": true, "encryptionMethod": "aes-256-gcm", "encryptionType": "per-user", "encryptedBy": ALICE}});
    peer.put(&souls[1], per_user(&v["fallback"])).await;
    peer.put(&souls[2], json!({"data": v["legacy"], "oip": oip("notes", ALICE), "meta": {"created": 1, "encrypted": true, "encryptionMethod": "aes-256-gcm"}})).await;
    peer.put(&souls[3], per_user(&v["salted"])).await;
    for s in &souls {
        peer.put("oip:registry:index:notes", json!({ s.as_str(): {"soul": s, "nodeId": "original-node", "timestamp": 1} })).await;
    }

    let s = TestServer::start_with(|c| {
        c.gun.gun_peers = format!("ws://127.0.0.1:{}/gun", peer.port).replace("/gun", "");
        c.gun.gun_sync_interval = 3_600_000;
        c.auth.admin_token = Some(ADMIN.into());
    })
    .await;
    let (alice, bob) = (token(ALICE), token(BOB));
    // force needs an administrator
    assert_eq!(reqwest::Client::new().post(s.url("/api/health/gun-sync/force")).send().await.unwrap().status().as_u16(), 401);
    assert_eq!(reqwest::Client::new().post(s.url("/api/health/gun-sync/force")).bearer_auth(&bob).send().await.unwrap().status().as_u16(), 403);
    // (the task's start-up cycle may have done the work already; force waits for it, then runs one more)
    force(&s).await;

    // the public record, arrays restored from the original's JSON strings
    let did = |i: usize| format!("did:gun:{}", souls[i]);
    let r = sees(&s, &did(0), None).await.expect("public record synced");
    assert_eq!(r["data"]["notes"]["tags"], json!(["a", "b"]));
    // encrypted by the original (fallback and legacy keys): decrypted, owner-only
    for (i, name) in [(1, "fallback secret"), (2, "legacy secret")] {
        assert!(sees(&s, &did(i), None).await.is_none(), "{name} visible anonymously");
        assert!(sees(&s, &did(i), Some(&bob)).await.is_none(), "{name} visible to another user");
        let r = sees(&s, &did(i), Some(&alice)).await.unwrap_or_else(|| panic!("{name} not synced"));
        assert_eq!(r["data"]["basic"]["name"], json!(name));
        assert_eq!(r["oip"]["wasEncrypted"], json!(true));
    }
    // the salted one: no key here; kept encrypted in the graph, not indexed
    assert!(sees(&s, &did(3), Some(&alice)).await.is_none());
    let (st, g) = s.get_json(&format!("/gun-relay/get?soul={}", souls[3]), None).await;
    assert_eq!(st, 200);
    assert!(g["data"]["data"]["encrypted"].is_string(), "{g}");

    // the health route: the original's fields, peers, caches
    let (st, hs) = s.get_json("/api/health/gun-sync", None).await;
    assert_eq!(st, 200);
    assert_eq!(hs["service"], json!("gun-sync"));
    assert!(hs["metrics"]["syncCycles"].as_u64().unwrap() >= 1);
    assert_eq!(hs["peers"][0]["url"], json!(format!("http://127.0.0.1:{}", peer.port)));
    assert!(hs["caches"]["missing404"]["capacity"].as_u64().unwrap() == 10_000);

    // oipd → peer: a private record published here is readable there (ciphertext)
    let (st, out) = s.post_json("/api/records/newRecord?storage=gun&recordType=mealPlan&localId=mine", Some(&alice), &json!({"basic": {"name": "oipd plan"}})).await;
    assert_eq!(st, 200, "{out}");
    let mine = format!("{h}:mine");
    let c = force(&s).await;
    assert!(c["pushed"].as_u64().unwrap() > 0, "{c}");
    let there = peer.get(&mine).await.expect("pushed to the peer");
    assert_eq!(there["oip"]["recordType"], json!("mealPlan"));
    assert_eq!(there["meta"]["encrypted"], json!(true));
    assert!(there["data"]["encrypted"].is_string() && !there.to_string().contains("oipd plan"), "{there}");
    let idx = peer.get("oip:registry:index:mealPlan").await.expect("registry pushed");
    assert_eq!(idx[&mine]["soul"], json!(mine));

    // deletions: here → peer
    let (st, _) = s.post_json("/api/records/deleteRecord", Some(&alice), &json!({"delete": {"did": did(0)}})).await;
    assert_eq!(st, 200);
    force(&s).await;
    assert!(peer.get(&souls[0]).await.is_none(), "deleted here, still on the peer");
    assert_eq!(peer.get("oip:deleted:records:index").await.unwrap()[did(0)], json!(true));
    // peer → here, as an original node marks a deletion
    peer.put(&format!("oip:deleted:records:{}", did(1)), json!({"deletedAt": 1, "deletedBy": ALICE, "did": did(1)})).await;
    peer.put("oip:deleted:records:index", json!({ did(1): true })).await;
    let c = force(&s).await;
    assert!(c["deleted"].as_u64().unwrap() >= 1, "{c}");
    assert!(sees(&s, &did(1), Some(&alice)).await.is_none(), "deleted on the peer, still here");
    assert_eq!(s.get_json(&format!("/gun-relay/get?soul={}", souls[1]), None).await.0, 404);
    // and it is not pulled back in
    force(&s).await;
    assert!(sees(&s, &did(1), Some(&alice)).await.is_none());
    s.server.stop().await;
}

fn oipd_config(dir: &Path, port: u16, peer_port: u16) -> oipd::config::ServeConfig {
    let mut c = oipd::config::ServeConfig::with_data_dir(dir.join("data"));
    c.http.listen = format!("127.0.0.1:{port}").parse().unwrap();
    c.auth.jwt_secret = Some(SECRET.into());
    c.auth.admin_token = Some(ADMIN.into());
    c.http.shutdown_grace_secs = 1;
    c.store.store = (current_backend().url)(&c.data_dir);
    c.gun.gun_peers = format!("http://127.0.0.1:{peer_port}/gun-relay");
    c.gun.gun_sync_interval = 3_600_000;
    c.gun.gun_encryption_secret = Some("one deployment's secret".into());
    c
}

async fn force_url(base: &str) -> Value {
    let r = reqwest::Client::new().post(format!("{base}/api/health/gun-sync/force")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json::<Value>().await.unwrap()["cycle"].take()
}

async fn visible(base: &str, did: &str, t: &str) -> Option<Value> {
    let r: Value = reqwest::Client::new().get(format!("{base}/api/records?did={did}")).bearer_auth(t).send().await.unwrap().json().await.unwrap();
    r["records"].as_array().unwrap().first().cloned()
}

async fn publish(base: &str, t: &str, local: &str, name: &str, level: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/records/newRecord?storage=gun&recordType=notes&localId={local}"))
        .bearer_auth(t)
        .json(&json!({"basic": {"name": name}, "accessControl": {"access_level": level}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn two_oipd_nodes_converge_after_a_partition() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (pa, pb) = (free_port(), free_port());
    let a = oipd::RunningServer::start(oipd_config(da.path(), pa, pb)).await.unwrap();
    let b = oipd::RunningServer::start(oipd_config(db.path(), pb, pa)).await.unwrap();
    let (ua, ub) = (a.url(""), b.url(""));
    let (alice, bob) = (token(ALICE), token(BOB));
    let (ha, hb) = (user_hash(ALICE), user_hash(BOB));
    publish(&ua, &alice, "r1", "alice private on A", "private").await;
    publish(&ub, &bob, "r2", "bob public on B", "public").await;
    force_url(&ua).await;
    force_url(&ub).await;
    // A's private record reached B encrypted and B (same deployment secret) opened it for its owner only
    let r1 = format!("did:gun:{ha}:r1");
    assert_eq!(visible(&ub, &r1, &alice).await.expect("r1 on B")["data"]["basic"]["name"], json!("alice private on A"));
    assert!(visible(&ub, &r1, &bob).await.is_none());
    assert!(visible(&ua, &format!("did:gun:{hb}:r2"), &alice).await.is_some());

    // partition: B stops; A goes on
    b.stop().await;
    publish(&ua, &alice, "r3", "written during the partition on A", "private").await;
    let c = force_url(&ua).await;
    assert!(c["errors"].as_u64().unwrap() >= 1, "{c}");
    let (_, h) = (0, reqwest::get(format!("{ua}/api/health/gun-sync")).await.unwrap().json::<Value>().await.unwrap());
    assert!(h["peers"][0]["lastError"].is_string(), "{h}");
    // B comes back (same data dir and port) and writes too
    let b = oipd::RunningServer::start(oipd_config(db.path(), pb, pa)).await.unwrap();
    publish(&ub, &bob, "r4", "written on B after the restart", "public").await;
    force_url(&ua).await;
    force_url(&ub).await;
    assert!(visible(&ub, &format!("did:gun:{ha}:r3"), &alice).await.is_some(), "r3 did not reach B");
    assert!(visible(&ua, &format!("did:gun:{hb}:r4"), &bob).await.is_some(), "r4 did not reach A");
    // a deletion on A reaches B
    let r = reqwest::Client::new().post(format!("{ua}/api/records/deleteRecord")).bearer_auth(&alice).json(&json!({"delete": {"did": r1}})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    force_url(&ub).await;
    assert!(visible(&ub, &r1, &alice).await.is_none(), "deleted on A, still on B");
    force_url(&ua).await;
    assert!(visible(&ua, &r1, &alice).await.is_none(), "pulled back from B");
    a.stop().await;
    b.stop().await;
}

/// One faulty peer against the real binary: the cycle completes in bounded time,
/// resident memory stays bounded, the failures land in bounded caches.
async fn faulty(mode: &str, extra: &[&str], max_growth_mb: u64, max_secs: u64) -> Value {
    let peer = GunPeer::start(&[&["--fault", mode], extra].concat());
    let dir = tempfile::tempdir().unwrap();
    let peers = format!("http://127.0.0.1:{}", peer.port);
    let node = Oipd::serve_env(dir.path(), &["--gun-peers", &peers, "--gun-sync-interval", "3600000", "--gun-max-node-bytes", "4194304"], &[("OIPD_ADMIN_TOKEN", ADMIN)]);
    let base = node.url("");
    // let the start-up cycle pass (it holds the cycle lock), then measure
    let started = Instant::now();
    force_url(&base).await;
    let before = node.rss_kb();
    let t = Instant::now();
    let mut last = Value::Null;
    for _ in 0..3 {
        last = force_url(&base).await;
    }
    let took = t.elapsed();
    let after = node.rss_kb();
    assert!(took < Duration::from_secs(max_secs * 3), "{mode}: three cycles took {took:?}");
    assert!(after.saturating_sub(before) < max_growth_mb * 1024, "{mode}: resident memory grew {} kB over three cycles", after.saturating_sub(before));
    let h: Value = reqwest::get(format!("{base}/api/health/gun-sync")).await.unwrap().json().await.unwrap();
    for c in ["missing404", "failedRecords", "deletionFailures", "processedRecords"] {
        assert!(h["caches"][c]["size"].as_u64().unwrap() <= h["caches"][c]["capacity"].as_u64().unwrap());
    }
    eprintln!("{mode}: first cycle {:?}, three more {took:?}, rss {before} → {after} kB, last cycle {last}", started.elapsed());
    h
}

#[tokio::test]
async fn faulty_peers_cost_bounded_memory_and_cycles_complete() {
    // 500 for every record: each failure lands in the failed set (backoff), none is synced
    let h = faulty("500", &[], 16, 20).await;
    assert!(h["caches"]["failedRecords"]["size"].as_u64().unwrap() >= 8, "{h}");
    assert_eq!(h["metrics"]["totalSynced"], json!(0));
    // a peer that never answers: each cycle waits one index timeout and moves on
    let h = faulty("hang", &[], 16, 12).await;
    assert!(h["peers"][0]["lastError"].as_str().unwrap().contains("index"), "{h}");
    // 50 MB nodes: refused past the node bound while they stream (4 MiB here)
    let h = faulty("big", &["--big-mb", "50"], 48, 30).await;
    assert!(h["caches"]["failedRecords"]["size"].as_u64().unwrap() >= 1, "{h}");
    // malformed JSON answers
    let h = faulty("malformed", &[], 16, 20).await;
    assert!(h["caches"]["failedRecords"]["size"].as_u64().unwrap() >= 1, "{h}");
    // a soul flood: 20,000 souls, all 404 — at most SOULS_PER_CYCLE fetched per cycle, the 404 cache capped
    let h = faulty("flood", &["--flood", "20000"], 48, 60).await;
    let missing = h["caches"]["missing404"]["size"].as_u64().unwrap();
    assert!(missing > 0 && missing <= 10_000, "{h}");
}

#[tokio::test]
async fn a_refused_delete_is_retried_with_backoff_never_reported_done() {
    // the original relay's answer to data:null: 500 "Data at root of graph must be a node"
    let peer = GunPeer::start(&["--fault", "original-delete"]);
    let s = TestServer::start_with(|c| {
        c.gun.gun_peers = format!("http://127.0.0.1:{}", peer.port);
        c.gun.gun_sync_interval = 3_600_000;
        c.auth.admin_token = Some(ADMIN.into());
    })
    .await;
    let alice = token(ALICE);
    let (st, _) = s.post_json("/api/records/newRecord?storage=gun&recordType=workoutSchedule&localId=w1", Some(&alice), &json!({"basic": {"name": "week 1"}})).await;
    assert_eq!(st, 200);
    force(&s).await;
    let soul = format!("{}:w1", user_hash(ALICE));
    assert!(peer.get(&soul).await.is_some());
    let (st, _) = s.post_json("/api/records/deleteRecord", Some(&alice), &json!({"delete": {"did": format!("did:gun:{soul}")}})).await;
    assert_eq!(st, 200);
    let failures = |h: &Value| h["caches"]["deletionFailures"]["oldest"].as_array().unwrap().iter().find(|e| e["soul"] == json!(soul)).map(|e| e["failures"].as_u64().unwrap());
    let mut seen = Vec::new();
    for _ in 0..5 {
        force(&s).await;
        let (_, h) = s.get_json("/api/health/gun-sync", None).await;
        seen.push(failures(&h).expect("the refused delete is remembered"));
    }
    // three tries on consecutive cycles, then it waits (backoff from half the interval): not retried, not forgotten
    assert_eq!(seen, [1, 2, 3, 3, 3]);
    let (_, h) = s.get_json("/api/health/gun-sync", None).await;
    let e = &h["caches"]["deletionFailures"]["oldest"][0];
    assert!(e["retryInSeconds"].as_u64().unwrap() > 60, "{e}");
    // the peer still has it (nothing claimed success), and the deletion registry reached it
    assert!(peer.get(&soul).await.is_some());
    assert_eq!(peer.get("oip:deleted:records:index").await.unwrap()[format!("did:gun:{soul}")], json!(true));
    // the cache is a listed bound (the record and its registry entry)
    let (cap, fill) = s.bound("gun_deletion_failures").await;
    assert_eq!((cap, fill), (10_000, 2));
    s.server.stop().await;
}
