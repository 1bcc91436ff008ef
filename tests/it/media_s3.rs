//! Media in an S3-compatible object store (the test server of `common::s3`)
//! with manifests in a shared PostgreSQL: two real nodes; an upload on one is
//! served by the other at once, with ranges (across a part boundary) and
//! conditionals; first uploader owns; private stays private; an aborted upload
//! leaves no object and no multipart upload behind; uploads a dead node left are
//! swept; a missing bucket refuses to start with one line; the object store
//! dying mid-upload answers 503 and publishes nothing.

use std::time::{Duration, Instant};

use crate::common::*;

fn node(dir: &std::path::Path, store: &str, bucket: &str, s3: &S3Server) -> Oipd {
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Oipd::serve_env(dir, &["--store", store, "--media-store", &format!("s3://{bucket}/node"), "--jwt-secret", SECRET], &env)
}

#[tokio::test]
async fn media_on_s3_is_shared_by_nodes_ranged_conditional_and_leaves_nothing_behind() {
    let s3 = s3_server();
    let bucket = s3.bucket().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = database_for(&tmp.path().join("shared"));
    let (a, b) = (node(&tmp.path().join("a"), &store, &bucket, s3), node(&tmp.path().join("b"), &store, &bucket, s3));

    // two parts: 5 MiB and the rest
    let data = bytes(5 * 1024 * 1024 + 300_000, 7);
    let (s, v) = upload_to(&a.url("/api/media/upload"), Some(&token("alice")), data.clone(), "image/gif", Some("public")).await;
    assert_eq!(s, 200, "{v}");
    let id = sha256_hex(&data);
    assert_eq!(v["mediaId"], id.as_str());
    assert_eq!(v["size"], data.len());
    // the part buffers are a listed bound, released with the upload
    let mem: serde_json::Value = reqwest::get(a.url("/api/health/memory")).await.unwrap().json().await.unwrap();
    let buffers = mem["bounds"].as_array().unwrap().iter().find(|b| b["name"] == "s3_upload_buffers").cloned().expect("s3_upload_buffers listed");
    assert_eq!((buffers["capacity"].as_u64(), buffers["fill"].as_u64()), (Some(16), Some(0)), "{buffers}");

    // served by the other node at once
    let c = reqwest::Client::new();
    let r = c.get(b.url(&format!("/api/media/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.contains(&id), "{etag}");
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    // a range across the part boundary is one ranged GET
    let at = 5 * 1024 * 1024 - 10;
    let r = c.get(b.url(&format!("/api/media/{id}"))).header("range", format!("bytes={at}-{}", at + 19)).send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[at..at + 20]);
    // conditionals from the manifest
    let r = c.get(a.url(&format!("/api/media/{id}"))).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);

    // private stays private on every node; first uploader owns
    let secret = bytes(2000, 9);
    let (s, v) = upload_to(&b.url("/api/media/upload"), Some(&token("alice")), secret.clone(), "image/gif", Some("private")).await;
    assert_eq!(s, 200, "{v}");
    let sid = sha256_hex(&secret);
    assert_ne!(c.get(a.url(&format!("/api/media/{sid}"))).send().await.unwrap().status(), 200);
    let r = c.get(a.url(&format!("/api/media/{sid}"))).bearer_auth(token("alice")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), secret.as_slice());
    let (_, v) = upload_to(&a.url("/api/media/upload"), Some(&token("mallory")), secret.clone(), "image/gif", Some("public")).await;
    assert!(v["message"].as_str().unwrap().contains("already exists"), "{v}");
    assert_ne!(c.get(a.url(&format!("/api/media/{sid}"))).send().await.unwrap().status(), 200);

    // a client that goes away mid-upload leaves nothing behind
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\nContent-Type: image/gif\r\n\r\n".to_vec()), Ok(bytes(6 * 1024 * 1024, 3)), Err(std::io::Error::other("gone"))];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let _ = c.post(a.url("/api/media/upload")).bearer_auth(token("alice")).header("content-type", "multipart/form-data; boundary=x").body(body).send().await;
    let until = Instant::now() + Duration::from_secs(20);
    let mut last = (vec![], 0);
    while Instant::now() < until {
        last = s3.contents(&bucket, "node/").await;
        if last.1 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last.1, 0, "no multipart upload left");
    assert_eq!(last.0.len(), 2, "one object per item, the duplicate deleted, nothing partial: {:?}", last.0);
}

/// Uploads left by a dead node (never completed, never aborted) are aborted by the sweep.
#[tokio::test]
async fn the_sweep_aborts_uploads_a_dead_node_left() {
    let s3 = s3_server();
    let bucket = s3.bucket().await;
    let tmp = tempfile::tempdir().unwrap();
    let stores = open_stores(tmp.path());
    let env = s3.env();
    let cfg = oipd::media::s3::S3Config::parse(&format!("s3://{bucket}/x"), |k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let client = oipd::clients::OutboundClient::new(Default::default()).unwrap();
    let media = oipd::media::s3::S3Media::open(&cfg, client, stores.media.clone()).await.unwrap();
    use oipd::media::backend::MediaBackend;
    let mut sink = media.begin_upload(1 << 30).await.unwrap();
    sink.push(b"partial").await.unwrap();
    std::mem::forget(sink); // as if the node died: nobody aborts it
    assert_eq!(s3.contents(&bucket, "x/").await.1, 1);
    assert_eq!(media.sweep(Duration::from_secs(3600)).await.unwrap(), 0, "a young upload is left alone");
    assert_eq!(media.sweep(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(s3.contents(&bucket, "x/").await, (vec![], 0));
}

#[test]
fn a_missing_bucket_refuses_to_start_with_one_line() {
    let s3 = s3_server();
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oipd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .args(["--media-store", "s3://no-such-bucket/p"])
        .envs(s3.env())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("bucket \"no-such-bucket\" does not exist"), "{err}");
}

/// The object store dying mid-upload: the upload answers 503 JSON and nothing is
/// published under the bytes' id.
#[tokio::test]
async fn the_object_store_failing_mid_upload_is_503_and_publishes_nothing() {
    let (s3, mut moto) = s3_server_private();
    let bucket = s3.bucket().await;
    let tmp = tempfile::tempdir().unwrap();
    let n = node(&tmp.path().join("a"), &database_for(&tmp.path().join("db")), &bucket, &s3);
    let data = bytes(12 * 1024 * 1024, 5);
    let head = b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\nContent-Type: image/gif\r\n\r\n".to_vec();
    // the first part goes through; then the server is killed before the rest is sent
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let req = tokio::spawn(reqwest::Client::new().post(n.url("/api/media/upload")).bearer_auth(token("alice")).header("content-type", "multipart/form-data; boundary=x").body(body).send());
    tx.send(Ok(head)).await.unwrap();
    tx.send(Ok(data[..6 * 1024 * 1024].to_vec())).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    moto.kill().unwrap();
    moto.wait().unwrap();
    let _ = tx.send(Ok(data[6 * 1024 * 1024..].to_vec())).await;
    let _ = tx.send(Ok(b"\r\n--x--\r\n".to_vec())).await;
    drop(tx);
    let r = req.await.unwrap().unwrap();
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].is_string(), "{v}");
    let r = reqwest::Client::new().get(n.url(&format!("/api/media/{}", sha256_hex(&data)))).bearer_auth(token("alice")).send().await.unwrap();
    assert_eq!(r.status(), 404, "nothing published");
}

fn tokio_stream_from(mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
