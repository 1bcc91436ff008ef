//! `oipd migrate`: a data dir (SQLite + local media) copied into PostgreSQL and
//! an S3-compatible bucket; a second run copies nothing and doubles nothing; a
//! media item whose bytes do not hash to its id is refused; a node on the new
//! stores serves what the old one served, private included.

use std::process::Command;

use serde_json::{json, Value};

use crate::common::*;

fn migrate(data: &std::path::Path, store: &str, bucket: &str, s3: &S3Server) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oipd"))
        .args(["migrate", "--data-dir"])
        .arg(data)
        .args(["--to-store", store, "--to-media", &format!("s3://{bucket}/m")])
        .envs(s3.env())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn a_data_dir_moves_to_postgres_and_s3_idempotently_with_hashes_verified() {
    let s3 = s3_server();
    let bucket = s3.bucket().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("old");
    let old = Oipd::serve(&data, &["--jwt-secret", SECRET]);
    let c = reqwest::Client::new();
    // records (one private, written through GUN), media (public and private)
    let r = c
        .post(old.url("/api/records/newRecord?recordType=note&storage=gun&localId=n1"))
        .bearer_auth(token("alice"))
        .json(&json!({"basic": {"name": "Moved note"}, "note": {"text": "hi"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let note = r.json::<Value>().await.unwrap()["did"].as_str().unwrap().to_owned();
    let public = bytes(300_000, 1);
    let private = bytes(1000, 2);
    assert_eq!(upload_to(&old.url("/api/media/upload"), Some(&token("alice")), public.clone(), "image/gif", Some("public")).await.0, 200);
    assert_eq!(upload_to(&old.url("/api/media/upload"), Some(&token("alice")), private.clone(), "image/gif", Some("private")).await.0, 200);
    drop(old);
    // an item whose bytes were altered on disk
    let forged = data.join("media").join(sha256_hex(b"what it should be"));
    std::fs::create_dir_all(&forged).unwrap();
    std::fs::write(forged.join("original"), b"something else").unwrap();

    let store = database_for(&tmp.path().join("pg"));
    let (ok, out) = migrate(&data, &store, &bucket, s3);
    assert!(!ok, "a hash mismatch fails the run: {out}");
    assert!(out.contains("records: 1 copied, 0 already there"), "{out}");
    assert!(out.contains("GUN nodes: ") && !out.contains("GUN nodes: 0 copied"), "{out}");
    assert!(out.contains("media: 2 copied"), "{out}");
    assert!(out.contains("1 not copied: hash mismatch"), "{out}");
    // again: nothing new, nothing doubled
    let (_, out) = migrate(&data, &store, &bucket, s3);
    assert!(out.contains("records: 0 copied, 1 already there"), "{out}");
    assert!(out.contains("GUN nodes: 0 copied"), "{out}");
    assert!(out.contains("media: 0 copied (0.0 MB), 2 already there"), "{out}");
    assert_eq!(s3.contents(&bucket, "m/").await.0.len(), 2);

    // a fresh node on the new stores serves the same answers
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let new = Oipd::serve_env(&tmp.path().join("new"), &["--store", &store, "--media-store", &format!("s3://{bucket}/m"), "--jwt-secret", SECRET], &env);
    let get = |path: String, tok: Option<String>| {
        let mut r = c.get(new.url(&path));
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let v: Value = get(format!("/api/records?did={note}"), Some(token("alice"))).await.unwrap().json().await.unwrap();
    assert_eq!(v["records"][0]["data"]["basic"]["name"], "Moved note");
    let v: Value = get(format!("/api/records?did={note}"), None).await.unwrap().json().await.unwrap();
    assert_eq!(v["searchResults"], 0, "still private");
    let r = get(format!("/api/media/{}", sha256_hex(&public)), None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), public.as_slice());
    assert_ne!(get(format!("/api/media/{}", sha256_hex(&private)), None).await.unwrap().status(), 200);
    let r = get(format!("/api/media/{}", sha256_hex(&private)), Some(token("alice"))).await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), private.as_slice());
}

#[tokio::test]
async fn a_migration_killed_mid_way_completes_on_the_next_run_with_nothing_lost_or_doubled() {
    use oipd::store::backends::{open, open_dir, StoreUrl};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("old");
    // ~10,000 demo records in the old data dir
    let old = Oipd::serve(&data, &["--demo", "--demo-scale", "16"]);
    let c = reqwest::Client::new();
    let seeded = wait_for(async || {
        let v: Value = match c.get(old.url("/api/records?limit=1")).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        v["searchResults"].as_u64().unwrap_or(0) >= 9_000
    }, 120)
    .await;
    assert!(seeded, "demo records seeded");
    drop(old);
    let total = open_dir(&data).unwrap().records.count_all().await.unwrap();
    assert!(total >= 9_000, "{total}");

    let store = database_for(&tmp.path().join("pg"));
    let target = open(&StoreUrl::parse(&store).unwrap(), std::time::Duration::from_secs(30)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oipd"))
        .args(["migrate", "--data-dir"])
        .arg(&data)
        .args(["--to-store", &store])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill -9 once part of the records are in
    let mut seen = 0;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < until {
        seen = target.records.count_all().await.unwrap();
        if seen > 0 || child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    let killed_at = target.records.count_all().await.unwrap();
    assert!(seen > 0 && killed_at < total, "killed mid-way: {killed_at} of {total} copied");

    // run again: it finishes, copies only what was missing, doubles nothing
    let out = Command::new(env!("CARGO_BIN_EXE_oipd"))
        .args(["migrate", "--data-dir"])
        .arg(&data)
        .args(["--to-store", &store])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let line = text.lines().find(|l| l.starts_with("records: ")).unwrap_or_else(|| panic!("{text}"));
    let nums: Vec<u64> = line.split(|ch: char| !ch.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect();
    let (copied, there) = (nums[0], nums[1]);
    assert_eq!(copied + there, total, "{line}");
    assert!(there >= killed_at && copied >= 1, "{line} (killed at {killed_at})");
    assert_eq!(target.records.count_all().await.unwrap(), total, "every record, once");
}
