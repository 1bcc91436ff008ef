//! `/media/*` and `/api/generate/media/*` over real HTTP: validators, caching
//! headers, RFC 9110 conditionals and ranges, HEAD, 405, path safety.

use crate::common::*;

const LM_PAST: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

#[tokio::test]
async fn health() {
    let t = TestServer::start().await;
    let r = t.get_raw_path("/api/health", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"status": "OK"}));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
}

#[tokio::test]
async fn full_response_headers() {
    let t = TestServer::start().await;
    let data = bytes(300_000, 1);
    let path = t.put_web("fitnessally/a.gif", &data);
    let r = t.get_raw_path(&path, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header("content-type"), Some("image/gif"));
    assert_eq!(r.header("content-length"), Some("300000"));
    assert_eq!(r.header("transfer-encoding"), None, "streams with a known length");
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("etag").unwrap(), format!("\"{}\"", sha256_hex(&data)));
    let lm = httpdate::parse_http_date(r.header("last-modified").unwrap()).unwrap();
    let mtime = std::fs::metadata(t.web_root().join("fitnessally/a.gif")).unwrap().modified().unwrap();
    assert!(mtime.duration_since(lm).unwrap().as_secs() < 1);
}

#[tokio::test]
async fn etag_is_content_derived_not_mtime_or_inode() {
    let t = TestServer::start().await;
    let data = bytes(10_000, 2);
    let a = t.put_web("a.gif", &data);
    let b = t.put_web("sub/b.gif", &data);
    // different mtime on b
    let f = std::fs::File::options().write(true).open(t.web_root().join("sub/b.gif")).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).unwrap();
    drop(f);
    let ra = t.get_raw_path(&a, "").await;
    let rb = t.get_raw_path(&b, "").await;
    assert_eq!(ra.header("etag"), rb.header("etag"));
    assert_ne!(ra.header("last-modified"), rb.header("last-modified"));

    // Same size, same mtime, other bytes (rsync -a, restored backups): a new tag.
    let same_size = bytes(10_000, 99);
    let lm_before = std::fs::metadata(t.web_root().join("sub/b.gif")).unwrap().modified().unwrap();
    std::fs::write(t.web_root().join("sub/b.gif"), &same_size).unwrap();
    let f = std::fs::File::options().write(true).open(t.web_root().join("sub/b.gif")).unwrap();
    f.set_modified(lm_before).unwrap();
    drop(f);
    let rb2 = t.get_raw_path(&b, "").await;
    assert_eq!(rb2.header("etag").unwrap(), format!("\"{}\"", sha256_hex(&same_size)));
    assert_eq!(rb2.header("last-modified"), rb.header("last-modified"));

    // Changing the content changes the tag (cache keyed by size+mtime).
    let new = bytes(10_001, 3);
    std::fs::write(t.web_root().join("a.gif"), &new).unwrap();
    let rc = t.get_raw_path(&a, "").await;
    assert_eq!(rc.header("etag").unwrap(), format!("\"{}\"", sha256_hex(&new)));
    assert_eq!(rc.body, new);
}

#[tokio::test]
async fn cache_control_and_content_type_by_extension() {
    let t = TestServer::start().await;
    let cases = [
        ("x.gif", "image/gif", true),
        ("x.JPG", "image/jpeg", true),
        ("x.png", "image/png", true),
        ("x.webp", "image/webp", true),
        ("x.svg", "image/svg+xml", true),
        ("x.mp4", "video/mp4", true),
        ("x.webm", "video/webm", true),
        ("x.mp3", "audio/mpeg", true),
        ("x.wav", "audio/wav", true),
        ("x.json", "application/json", false),
        ("x.txt", "text/plain", false),
        ("noext", "application/octet-stream", false),
    ];
    for (name, ct, immutable) in cases {
        let p = t.put_web(name, b"abc");
        let r = t.get_raw_path(&p, "").await;
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("content-type"), Some(ct), "{name}");
        let cc = if immutable { "public, max-age=31536000, immutable" } else { "public, max-age=0" };
        assert_eq!(r.header("cache-control"), Some(cc), "{name}");
    }
}

#[tokio::test]
async fn cache_rules_are_configurable() {
    let t = TestServer::start_with(|c| {
        c.http.immutable_extensions = "gif".into();
        c.http.other_cache_control = "no-cache".into();
    })
    .await;
    let g = t.put_web("a.gif", b"x");
    let p = t.put_web("a.png", b"x");
    assert_eq!(t.get_raw_path(&g, "").await.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(t.get_raw_path(&p, "").await.header("cache-control"), Some("no-cache"));
}

#[tokio::test]
async fn conditionals_over_http() {
    let t = TestServer::start().await;
    let data = bytes(5000, 4);
    let path = t.put_web("c.gif", &data);
    let first = t.get_raw_path(&path, "").await;
    let etag = first.header("etag").unwrap().to_owned();
    let lm = first.header("last-modified").unwrap().to_owned();
    let weak = format!("W/{etag}");
    // (headers, status, body expected?)
    let cases: Vec<(String, u16)> = vec![
        (format!("If-None-Match: {etag}\r\n"), 304),
        (format!("If-None-Match: {weak}\r\n"), 304),
        ("If-None-Match: \"nope\"\r\n".into(), 200),
        ("If-None-Match: *\r\n".into(), 304),
        (format!("If-Modified-Since: {lm}\r\n"), 304),
        (format!("If-Modified-Since: {LM_PAST}\r\n"), 200),
        ("If-Modified-Since: garbage\r\n".into(), 200),
        (format!("If-None-Match: \"nope\"\r\nIf-Modified-Since: {lm}\r\n"), 200),
        (format!("If-Match: {etag}\r\n"), 200),
        ("If-Match: *\r\n".into(), 200),
        ("If-Match: \"nope\"\r\n".into(), 412),
        (format!("If-Match: {weak}\r\n"), 412),
        (format!("If-Unmodified-Since: {LM_PAST}\r\n"), 412),
        (format!("If-Unmodified-Since: {lm}\r\n"), 200),
        ("If-Unmodified-Since: garbage\r\n".into(), 200),
        (format!("If-Match: \"nope\"\r\nIf-None-Match: {etag}\r\n"), 412),
    ];
    for (h, want) in cases {
        let r = t.get_raw_path(&path, &h).await;
        assert_eq!(r.status, want, "{h:?}");
        match want {
            304 => {
                assert!(r.body.is_empty());
                assert_eq!(r.header("etag"), Some(etag.as_str()), "304 carries the validator");
                assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
                assert_eq!(r.header("last-modified"), Some(lm.as_str()));
            }
            412 => assert_eq!(r.json()["error"], "Precondition Failed"),
            _ => assert_eq!(r.body, data, "{h:?}"),
        }
    }
}

#[tokio::test]
async fn ranges_over_http() {
    let t = TestServer::start().await;
    let data = bytes(10_000, 5);
    let path = t.put_web("r.gif", &data);
    // (Range, status, expected body for single ranges, content-range)
    let single = [
        ("bytes=0-499", 0, 499),
        ("bytes=500-999", 500, 999),
        ("bytes=-500", 9500, 9999),
        ("bytes=9500-", 9500, 9999),
        ("bytes=9990-20000", 9990, 9999),
        ("bytes=0-0", 0, 0),
        ("bytes=-20000", 0, 9999),
        ("bytes=20000-30000,0-9", 0, 9),
    ];
    for (range, s, e) in single {
        let r = t.get_raw_path(&path, &format!("Range: {range}\r\n")).await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("content-range").unwrap(), format!("bytes {s}-{e}/10000"), "{range}");
        assert_eq!(r.header("content-length").unwrap(), (e - s + 1).to_string());
        assert_eq!(r.header("content-type"), Some("image/gif"));
        assert_eq!(r.body, &data[s..=e], "{range}");
    }
    // unsatisfiable → 416 with bytes */size, JSON body
    for range in ["bytes=10000-", "bytes=10000-10005", "bytes=-0", "bytes=20000-30000,40000-"] {
        let r = t.get_raw_path(&path, &format!("Range: {range}\r\n")).await;
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */10000"));
        assert_eq!(r.json()["error"], "Range Not Satisfiable");
    }
    // malformed, over-long, overlapping-past-size → full 200, never 500
    for range in ["bytes=abc", "bytes=5-3", "bytes=-", "chars=0-1", "bytes=0-1;", "bytes=0-9999,0-9999", "bytes=0-,0-"] {
        let r = t.get_raw_path(&path, &format!("Range: {range}\r\n")).await;
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.body, data, "{range}");
        assert_eq!(r.header("content-range"), None);
    }
    let many: Vec<String> = (0..40).map(|i| format!("{}-{}", i * 10, i * 10 + 1)).collect();
    let r = t.get_raw_path(&path, &format!("Range: bytes={}\r\n", many.join(","))).await;
    assert_eq!(r.status, 200, "more ranges than the bound");
}

#[tokio::test]
async fn multipart_byteranges() {
    let t = TestServer::start().await;
    let data = bytes(10_000, 6);
    let path = t.put_web("m.gif", &data);
    let r = t.get_raw_path(&path, "Range: bytes=0-99, 200-299, -100\r\n").await;
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").expect(ct);
    assert_eq!(r.header("content-length").unwrap(), r.body.len().to_string());
    let parts = parse_multipart(&r.body, boundary);
    assert_eq!(
        parts,
        vec![
            ("bytes 0-99/10000".to_string(), data[0..100].to_vec()),
            ("bytes 200-299/10000".to_string(), data[200..300].to_vec()),
            ("bytes 9900-9999/10000".to_string(), data[9900..].to_vec()),
        ]
    );
    assert!(String::from_utf8_lossy(&r.body).contains("Content-Type: image/gif"));
    // two responses get different boundaries
    let r2 = t.get_raw_path(&path, "Range: bytes=0-1,5-6\r\n").await;
    assert_ne!(r2.header("content-type"), r.header("content-type"));
}

#[tokio::test]
async fn if_range() {
    let t = TestServer::start().await;
    let data = bytes(1000, 7);
    let path = t.put_web("ir.gif", &data);
    let first = t.get_raw_path(&path, "").await;
    let etag = first.header("etag").unwrap().to_owned();
    let lm = first.header("last-modified").unwrap().to_owned();
    let cases = [
        (etag.clone(), 206),
        (format!("W/{etag}"), 200),
        ("\"other\"".to_string(), 200),
        (lm.clone(), 206),
        (LM_PAST.to_string(), 200),
        ("garbage".to_string(), 200),
    ];
    for (ir, want) in cases {
        let r = t.get_raw_path(&path, &format!("Range: bytes=0-9\r\nIf-Range: {ir}\r\n")).await;
        assert_eq!(r.status, want, "If-Range: {ir}");
        if want == 200 {
            assert_eq!(r.body, data);
        } else {
            assert_eq!(r.body, &data[..10]);
        }
    }
}

#[tokio::test]
async fn head_and_methods() {
    let t = TestServer::start().await;
    let data = bytes(4321, 8);
    let path = t.put_web("h.gif", &data);
    let get = t.get_raw_path(&path, "").await;
    let head = t.raw(&format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")).await;
    assert_eq!(head.status, 200);
    for h in ["content-length", "content-type", "etag", "last-modified", "cache-control", "accept-ranges"] {
        assert_eq!(head.header(h), get.header(h), "{h}");
    }
    let head_range = t.raw(&format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n")).await;
    assert_eq!(head_range.status, 206);
    assert_eq!(head_range.header("content-length"), Some("10"));
    for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = t.raw(&format!("{m} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")).await;
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{m}");
        assert!(r.json()["error"].is_string());
    }
}

#[tokio::test]
async fn generate_mount_and_query_form() {
    let t = TestServer::start().await;
    write_file(&t.dir.path().join("generated/tts/a.mp3"), b"ID3audio");
    let r = t.get_raw_path("/api/generate/media/tts/a.mp3", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ID3audio");
    assert_eq!(r.header("content-type"), Some("audio/mpeg"));
    let q = t.get_raw_path("/api/generate/media?id=tts%2Fa.mp3", "").await;
    assert_eq!(q.status, 400, "an encoded slash is not a separator");
    write_file(&t.dir.path().join("generated/b c.mp3"), b"B");
    let q = t.get_raw_path("/api/media?id=b+c.mp3", "").await;
    assert_eq!(q.status, 200);
    assert_eq!(q.body, b"B");
    let q = t.get_raw_path("/api/media?id=b%20c.mp3", "").await;
    assert_eq!(q.status, 200);
    let missing = t.get_raw_path("/api/media", "").await;
    assert_eq!(missing.status, 400);
    let r = t.get_raw_path("/api/generate/media/nope.mp3", "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let t = TestServer::start().await;
    let r = t.get_raw_path("/nope", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "Not found");
}
