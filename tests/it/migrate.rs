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
