//! The original's default security headers on every kind of response — files,
//! partial content, 304s, JSON answers and every error, including those made
//! before routing (431) — so no path serves a page that can be framed or sniffed.

use crate::common::*;

#[tokio::test]
async fn nosniff_and_frame_options_everywhere() {
    let t = TestServer::start().await;
    t.put_web("a.gif", b"GIF89a....");
    let etag = t.get_raw_path("/media/a.gif", "").await.header("etag").unwrap().to_owned();
    let cases: Vec<(String, String, u16)> = vec![
        ("/media/a.gif".into(), String::new(), 200),
        ("/media/a.gif".into(), "Range: bytes=0-1\r\n".into(), 206),
        ("/media/a.gif".into(), format!("If-None-Match: {etag}\r\n"), 304),
        ("/media/a.gif".into(), "Range: bytes=50-60\r\n".into(), 416),
        ("/media/missing.gif".into(), String::new(), 404),
        ("/media/../x".into(), String::new(), 400),
        ("/api/health".into(), String::new(), 200),
        ("/api/records?limit=abc".into(), String::new(), 400),
        ("/api/records".into(), String::new(), 200),
        (format!("/api/media/{}", "a".repeat(64)), String::new(), 401),
        ("/nowhere".into(), String::new(), 404),
        ("/media/a.gif".into(), format!("X-Big: {}\r\n", "a".repeat(66_000)), 431),
    ];
    for (path, extra, want) in cases {
        let r = t.get_raw_path(&path, &extra).await;
        assert_eq!(r.status, want, "{path} {extra:.40}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path} {want}");
        assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"), "{path} {want}");
        if want >= 400 {
            assert_eq!(r.header("cache-control"), Some("no-store"), "{path} {want}: errors are not cached");
        }
    }
    let r = t.raw("DELETE /media/a.gif HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}
