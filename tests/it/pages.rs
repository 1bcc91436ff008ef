//! The original's pages in front of oipd: the public directory at `/` through the
//! RFC 9110 machinery (revalidated, not immutable), `index.html` for `/`, the
//! `index.html` fallback and where it never applies, and `/config.js` (its value
//! escaped so no configuration can break out of the string — checked by running
//! the script in Node).

use crate::common::*;

async fn with_pages(f: impl FnOnce(&mut oipd::config::ServeConfig)) -> TestServer {
    // the directory must exist when the server starts: make it in a first server's dir
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public");
    write_file(&public.join("index.html"), b"<!doctype html><title>OIP</title>INDEX");
    write_file(&public.join("reference-client.html"), b"<!doctype html>REFERENCE");
    write_file(&public.join("js/app.js"), b"console.log('app')");
    let public2 = public.clone();
    let t = TestServer::start_with(move |c| {
        c.pages.public_dir = Some(public2);
        f(c);
    })
    .await;
    std::mem::forget(dir); // lives as long as the test process (a temp dir)
    t
}

#[tokio::test]
async fn pages_are_served_revalidated_with_validators() {
    let t = with_pages(|_| {}).await;
    let r = t.get_raw_path("/", "").await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).ends_with("INDEX"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let etag = r.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() == 66, "strong content ETag: {etag}");
    // conditional: 304; ranges: 206
    let r = t.get_raw_path("/", &format!("If-None-Match: {etag}\r\n")).await;
    assert_eq!(r.status, 304);
    let r = t.get_raw_path("/reference-client.html", "Range: bytes=0-8\r\n").await;
    assert_eq!((r.status, r.body.as_slice()), (206, &b"<!doctype"[..]));
    let r = t.get_raw_path("/js/app.js", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
    // HEAD like GET, without the body
    let r = t.raw("HEAD /js/app.js HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.header("content-length"), Some("18"));
}

#[tokio::test]
async fn the_fallback_answers_index_except_where_it_must_not() {
    let t = with_pages(|_| {}).await;
    for path in ["/browse", "/record/did:arweave:x", "/deep/path/", "/favicon.png"] {
        let r = t.get_raw_path(path, "").await;
        assert_eq!(r.status, 200, "{path}");
        assert!(String::from_utf8_lossy(&r.body).ends_with("INDEX"), "{path}");
    }
    // never under the API, media, the relay: JSON 404s as before
    for path in ["/api/nope", "/api/records/nope", "/media/nope.gif", "/gun-relay/nope", "/local-media/x"] {
        let r = t.get_raw_path(path, "").await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.json()["error"].is_string(), "{path}");
    }
    // and only for GET/HEAD
    let r = t.raw("POST /browse HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 404);

    // off: unknown paths are 404 even with an index.html
    let t = with_pages(|c| c.pages.spa_fallback = "off".into()).await;
    assert_eq!(t.get_raw_path("/browse", "").await.status, 404);
    assert_eq!(t.get_raw_path("/", "").await.status, 200);
}

#[tokio::test]
async fn no_public_dir_means_no_pages() {
    let t = TestServer::start().await;
    for path in ["/", "/browse", "/index.html"] {
        let r = t.get_raw_path(path, "").await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["error"], "Not found");
    }
}

/// Runs `/config.js` in Node with a `window` object and returns what it set.
fn run_config_js(js: &str) -> serde_json::Value {
    let script = format!("const window = {{}};\n{js}\nprocess.stdout.write(JSON.stringify(window));");
    let out = std::process::Command::new("node").arg("-e").arg(&script).output().expect("node is installed by scripts/test.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn config_js_tells_the_api_base_and_cannot_be_broken_out_of() {
    let t = TestServer::start_with(|c| c.pages.public_api_base_url = "https://api.example.com".into()).await;
    let r = t.get_raw_path("/config.js", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/javascript; charset=utf-8"));
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert_eq!(body.trim(), format!("window.API_BASE_URL = 'https://api.example.com'; window.OIP_PORT = {};", t.server.addr.port()));
    let w = run_config_js(&body);
    assert_eq!(w["API_BASE_URL"], "https://api.example.com");
    assert_eq!(w["OIP_PORT"], t.server.addr.port());

    // a hostile value stays a value
    let hostile = "x'; window.PWNED = 1; '\\\n</script><script>window.PWNED=2</script>\u{2028}\u{2029}`${1}` é😀";
    let t = TestServer::start_with(|c| c.pages.public_api_base_url = hostile.into()).await;
    let body = String::from_utf8(t.get_raw_path("/config.js", "").await.body).unwrap();
    assert!(!body.contains("</script"), "{body}");
    let w = run_config_js(&body);
    assert_eq!(w["API_BASE_URL"], hostile);
    assert!(w.get("PWNED").is_none());
    // empty by default: the pages call their own origin
    let t = TestServer::start().await;
    let w = run_config_js(&String::from_utf8(t.get_raw_path("/config.js", "").await.body).unwrap());
    assert_eq!(w["API_BASE_URL"], "");
    assert_eq!(t.raw("POST /config.js HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await.status, 405);
}
