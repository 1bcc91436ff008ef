//! CORS: off unless origins are configured; allowed origins (exact, scheme-wide
//! or subdomain patterns) get credentials and the exposed headers a media player needs,
//! including `Content-Range`; others get no CORS headers; preflights answer.

use crate::common::*;

#[tokio::test]
async fn off_by_default() {
    let t = TestServer::start().await;
    let p = t.put_web("a.gif", b"gif");
    let r = t.get_raw_path(&p, "Origin: https://app.example\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn allow_list_and_exposed_headers() {
    let t = TestServer::start_with(|c| c.http.cors_origins = "https://app.example, chrome-extension://*".into()).await;
    let p = t.put_web("a.gif", &bytes(1000, 1));
    for origin in ["https://app.example", "chrome-extension://abcdef"] {
        let r = t.get_raw_path(&p, &format!("Origin: {origin}\r\nRange: bytes=0-9\r\n")).await;
        assert_eq!(r.status, 206);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        let exposed = r.header("access-control-expose-headers").unwrap().to_ascii_lowercase();
        for h in ["etag", "content-range", "accept-ranges", "content-length"] {
            assert!(exposed.contains(h), "{h} exposed: {exposed}");
        }
    }
    let r = t.get_raw_path(&p, "Origin: https://evil.example\r\n").await;
    assert_eq!(r.status, 200, "served, but the browser gets no CORS grant");
    assert_eq!(r.header("access-control-allow-origin"), None);
    // no Origin at all (curl, servers): served as always
    assert_eq!(t.get_raw_path(&p, "").await.status, 200);
}

#[tokio::test]
async fn preflight() {
    let t = TestServer::start_with(|c| c.http.cors_origins = "https://app.example".into()).await;
    let r = t
        .raw("OPTIONS /api/media/upload HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, range\r\nConnection: close\r\n\r\n")
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    let allowed = r.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("range"), "{allowed}");
    assert!(r.header("access-control-allow-methods").unwrap().contains("POST"));
    assert_eq!(r.header("access-control-max-age"), Some("86400"));
}

#[tokio::test]
async fn preflights_carry_security_headers_and_bad_patterns_refuse_to_start() {
    let t = TestServer::start_with(|c| c.http.cors_origins = "https://*.example.com".into()).await;
    let r = t
        .raw("OPTIONS /media/a.gif HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n")
        .await;
    assert!(r.status < 300, "{}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example.com"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
    // a look-alike host gets nothing
    let p = t.put_web("a.gif", b"gif");
    let r = t.get_raw_path(&p, "Origin: https://app.example.com.evil.net\r\n").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // a pattern that would have been a loose prefix match is a startup error
    let mut cfg = oipd::config::ServeConfig::with_data_dir(t.dir.path().join("other"));
    cfg.http.listen = "127.0.0.1:0".parse().unwrap();
    cfg.http.cors_origins = "https://app.example.com*".into();
    let err = oipd::RunningServer::start(cfg).await.err().expect("refused");
    assert!(err.to_string().contains("--cors-origins"), "{err}");
}
