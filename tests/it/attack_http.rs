//! Hostile HTTP: oversized heads, garbage `Range` and `If-*` headers, slowloris
//! clients, idle keep-alive connections, and more clients than the connection
//! bound. The server must answer per RFC 9110 (never a 500), cut off what holds
//! it without progress, and keep serving everyone else promptly.

use std::time::{Duration, Instant};

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// True once the peer has closed the connection (EOF or reset).
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let until = Instant::now() + within;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a response (e.g. 408) before the close
            Err(_) => return false,
        }
    }
}

/// Read one whole response (head + Content-Length body) off a kept-alive connection.
async fn read_response(s: &mut TcpStream, within: Duration) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let until = Instant::now() + within;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = parse_response(&buf[..end + 4], false);
            let len: usize = head.header("content-length").map_or(0, |v| v.parse().unwrap());
            if buf.len() >= end + 4 + len {
                return parse_response(&buf[..end + 4 + len], false);
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, s.read(&mut chunk)).await.expect("response in time").unwrap();
        assert!(n > 0, "connection closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is a 400.
#[tokio::test]
async fn host_header_is_required_once() {
    let t = TestServer::start().await;
    t.put_web("a.gif", b"GIF89a");
    let r = t.raw("GET /media/a.gif HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("Host"));
    let r = t.raw("GET /media/a.gif HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 400);
    // HTTP/1.0 has no such rule
    let r = t.raw("GET /media/a.gif HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(t.get_raw_path("/media/a.gif", "").await.status, 200);
}

#[tokio::test]
async fn oversized_heads_are_431() {
    let t = TestServer::start().await;
    t.put_web("a.gif", b"GIF89a");
    // one huge header
    let r = t.get_raw_path("/media/a.gif", &format!("X-Big: {}\r\n", "a".repeat(70_000))).await;
    assert_eq!(r.status, 431);
    // many headers: the head as a whole is what is capped
    let many: String = (0..3000).map(|i| format!("X-H{i}: {}\r\n", "v".repeat(20))).collect();
    let r = t.get_raw_path("/media/a.gif", &many).await;
    assert!(r.status == 431 || r.status == 400, "{}", r.status);
    // a cookie bomb
    let r = t.get_raw_path("/media/a.gif", &format!("Cookie: {}\r\n", "k=v; ".repeat(15_000))).await;
    assert_eq!(r.status, 431);
    assert_eq!(t.get_raw_path("/media/a.gif", "").await.status, 200);
}

/// Garbage conditional and range headers on both kinds of file route: the answer
/// is always one of the RFC's (ignore → 200, 206 within the file, 304, 412, 416).
#[tokio::test]
async fn garbage_range_and_conditional_headers() {
    let t = TestServer::start().await;
    let data = bytes(10_000, 3);
    t.put_web("g.gif", &data);
    let (_, v) = t.upload(Some(&token("owner")), data.clone(), "image/gif", Some("public")).await;
    let id = v["mediaId"].as_str().unwrap().to_owned();

    let ranges = [
        "bytes=", "bytes=-", "bytes=--1", "bytes=a-b", "bytes=5-1", "bytes=-0", "bytes=0-0,-0", "bytes=10000-", "bytes=99999-",
        "bytes=0-99999999999999999999999", "bytes=99999999999999999999-", "bytes=-99999999999999999999", "bytes=0-1,,,2-3",
        "bytes=0-1, 2-3, 4-5, 6-7, 8-9, 10-11, 12-13, 14-15, 16-17, 18-19, 20-21, 22-23, 24-25, 26-27, 28-29, 30-31, 32-33, 34-35",
        "bytes=0-9999,0-9999,0-9999", "items=0-5", "bytes 0-5", "bytes=0x10-0x20", "bytes=+1-+2", "bytes=1 - 2",
        "bytes=-1-2", "BYTES=0-1", "bytes=0-1;q=1", ",", "", "bytes=18446744073709551615-18446744073709551615",
    ];
    let dates = ["", "garbage", "Sun, 99 Foo 1994 08:49:37 GMT", "0", "-1", "Mon, 01 Jan 10000 00:00:00 GMT", "Thu, 01 Jan 1970 00:00:00 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Fri, 31 Dec 9999 23:59:59 GMT"];
    let etags = ["", "*", "\"", "W/", "W/\"", "\"abc", "abc\"", "\"a\", garbage", ",,,", "W/\"x\", *", &"\"x\",".repeat(2000)];
    let paths = ["/media/g.gif".to_owned(), format!("/api/media/{id}")];
    // control characters are not allowed in a field value at all (RFC 9110 §5.5)
    assert_eq!(t.get_raw_path(&paths[0], "Range: bytes=\0-1\r\n").await.status, 400);
    let mut n = 0;
    for path in &paths {
        let mut cases: Vec<String> = Vec::new();
        for r in ranges {
            cases.push(format!("Range: {r}\r\n"));
            cases.push(format!("Range: {r}\r\nIf-Range: garbage\r\n"));
        }
        for d in dates {
            for h in ["If-Modified-Since", "If-Unmodified-Since", "If-Range"] {
                cases.push(format!("{h}: {d}\r\nRange: bytes=0-9\r\n"));
            }
        }
        for e in etags {
            for h in ["If-None-Match", "If-Match", "If-Range"] {
                cases.push(format!("{h}: {e}\r\nRange: bytes=0-9\r\n"));
            }
        }
        for extra in cases {
            let r = t.get_raw_path(path, &extra).await;
            n += 1;
            match r.status {
                200 => assert_eq!(r.body, data, "{path} {extra:?}"),
                206 => {
                    let ct = r.header("content-type").unwrap_or("");
                    if let Some(boundary) = ct.strip_prefix("multipart/byteranges; boundary=") {
                        for (cr, part) in parse_multipart(&r.body, boundary) {
                            check_part(&cr, &part, &data, path, &extra);
                        }
                    } else {
                        check_part(r.header("content-range").unwrap(), &r.body, &data, path, &extra);
                    }
                }
                304 | 412 => assert!(r.body.is_empty() || r.json()["error"].is_string()),
                416 => assert_eq!(r.header("content-range"), Some("bytes */10000"), "{path} {extra:?}"),
                s => panic!("{path} {extra:?}: status {s}"),
            }
        }
    }
    assert!(n > 200);
}

fn check_part(content_range: &str, part: &[u8], data: &[u8], path: &str, extra: &str) {
    let spec = content_range.strip_prefix("bytes ").unwrap();
    let (range, total) = spec.split_once('/').unwrap();
    assert_eq!(total, "10000");
    let (a, b) = range.split_once('-').unwrap();
    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
    assert!(a <= b && b < data.len(), "{path} {extra:?}: {content_range}");
    assert_eq!(part, &data[a..=b], "{path} {extra:?}");
}

/// Hundreds of clients trickling their headers one byte at a time hold nothing:
/// each is cut off by the header-read timeout, and meanwhile ordinary requests
/// are answered promptly.
#[tokio::test]
async fn slowloris_is_cut_off_and_does_not_hold_service() {
    let t = TestServer::start_with(|c| c.http.header_timeout_secs = 2).await;
    t.put_web("a.gif", b"GIF89a-fine");
    let addr = t.server.addr;
    const SLOW: usize = 400;
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /media/a.gif HTTP/1.1\r\nHost: t\r\nX-Slow: ").await.unwrap();
        slow.push(s);
    }
    let trickle = tokio::spawn(async move {
        // one byte per socket every 300 ms, for longer than the timeout
        let started = Instant::now();
        let mut cut = vec![false; slow.len()];
        while started.elapsed() < Duration::from_secs(6) {
            for (i, s) in slow.iter_mut().enumerate() {
                if !cut[i] && s.write_all(b"a").await.is_err() {
                    cut[i] = true;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // everything still open must have been closed by the server by now
        let mut closed = 0;
        for s in slow.iter_mut() {
            if closed_by_server(s, Duration::from_millis(500)).await {
                closed += 1;
            }
        }
        closed
    });
    // while they trickle, ordinary clients are served promptly
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..20 {
        let started = Instant::now();
        let r = t.get_raw_path("/media/a.gif", "").await;
        assert_eq!(r.status, 200);
        assert!(started.elapsed() < Duration::from_secs(1), "normal request took {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = trickle.await.unwrap();
    assert_eq!(closed, SLOW, "every slowloris socket was closed by the header timeout");
    assert!(wait_for(async || t.bound("connections").await.1 <= 1, 5).await, "connection slots released");
}

/// A keep-alive connection that goes quiet after a response is reaped after the
/// same timeout: idle connections cannot pile up.
#[tokio::test]
async fn idle_keep_alive_connections_are_reaped() {
    let t = TestServer::start_with(|c| c.http.header_timeout_secs = 2).await;
    t.put_web("a.gif", b"GIF89a");
    let mut conns = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(t.server.addr).await.unwrap();
        s.write_all(b"GET /media/a.gif HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        assert_eq!(read_response(&mut s, Duration::from_secs(5)).await.status, 200);
        conns.push(s);
    }
    // connections idle; +1 for the asking connection itself
    assert!(t.bound("connections").await.1 >= 50);
    let started = Instant::now();
    for s in conns.iter_mut() {
        assert!(closed_by_server(s, Duration::from_secs(6)).await, "idle connection reaped");
    }
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(wait_for(async || t.bound("connections").await.1 <= 1, 5).await);
}

/// Past `--max-connections`, new clients wait in the kernel's backlog; the held
/// connections are still served, and service to new clients resumes as soon as
/// some are released.
#[tokio::test]
async fn connection_bound_holds_and_recovers() {
    const MAX: usize = 40;
    let t = TestServer::start_with(|c| {
        c.http.max_connections = MAX;
        c.http.header_timeout_secs = 30;
    })
    .await;
    t.put_web("a.gif", b"GIF89a-fine");
    let addr = t.server.addr;
    // fill every slot with a connection that has sent one request and stays open
    let mut held = Vec::new();
    for _ in 0..MAX {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /media/a.gif HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        assert_eq!(read_response(&mut s, Duration::from_secs(5)).await.status, 200);
        held.push(s);
    }
    // a newcomer is not served while every slot is taken (it sits in the backlog)
    let newcomer = tokio::spawn(async move {
        let started = Instant::now();
        let r = raw(addr, b"GET /media/a.gif HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
        (r.status, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!newcomer.is_finished(), "served past the bound");
    // the held connections are still served, promptly
    for s in held.iter_mut().take(5) {
        let started = Instant::now();
        s.write_all(b"GET /media/a.gif HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        assert_eq!(read_response(s, Duration::from_secs(2)).await.status, 200);
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    // release some: the newcomer gets its answer
    held.truncate(MAX - 5);
    let (status, waited) = tokio::time::timeout(Duration::from_secs(5), newcomer).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert!(waited >= Duration::from_millis(600), "{waited:?}");
    // release all: back to (almost) nothing, and fresh clients are served at once
    drop(held);
    assert!(wait_for(async || t.bound("connections").await.1 <= 1, 5).await);
    for _ in 0..MAX * 2 {
        assert_eq!(t.get_raw_path("/media/a.gif", "").await.status, 200);
    }
}

/// Clients that stop reading a response (or stop sending a body) are closed after
/// `--idle-timeout-secs`, and what they held — stream slots, render slots, upload
/// temp files — is released; meanwhile everyone else is served.
#[tokio::test]
async fn stalled_clients_are_cut_off_and_release_what_they_held() {
    let t = TestServer::start_with(|c| {
        c.http.idle_timeout_secs = 2;
        c.http.max_streams = 4;
        c.http.stream_wait_ms = 10_000;
    })
    .await;
    t.seed_demo(13).await;
    let big = t.sparse("big.gif", 64 << 20);
    let small = t.put_web("small.gif", b"small");
    let _ = t.raw(&format!("HEAD {big} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")).await;

    // four readers that stop reading fill every file stream slot
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(t.open_stalled(&big).await);
    }
    assert_eq!(t.bound("file_streams").await, (4, 4));
    // a reader that stops reading a large records answer holds a render slot
    let athlete = oipd::records::demo::athlete_did(13);
    let mut rec = tokio::net::TcpStream::connect(t.server.addr).await.unwrap();
    rec.write_all(format!("GET /api/records?did={athlete}&resolveDepth=3 HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
    assert!(wait_for(async || t.bound("record_streams").await.1 == 1, 10).await, "the records answer started");
    // an upload that stops sending mid-body holds a temp file
    let tok = token("owner");
    let head = format!(
        "POST /api/media/upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {tok}\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 10000000\r\n\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\n\r\n"
    );
    let mut up = tokio::net::TcpStream::connect(t.server.addr).await.unwrap();
    up.write_all(head.as_bytes()).await.unwrap();
    up.write_all(&bytes(600_000, 3)).await.unwrap();
    let temp = t.media_root().join("temp");
    let temps = || std::fs::read_dir(&temp).map(|d| d.count()).unwrap_or(0);
    assert!(wait_for(async || temps() == 1, 5).await, "upload in progress");

    // all of it is released within the idle timeout (+ slack), without any client acting
    let started = std::time::Instant::now();
    let released = wait_for(
        async || t.bound("file_streams").await.1 == 0 && t.bound("record_streams").await.1 == 0 && temps() == 0,
        20,
    )
    .await;
    assert!(
        released,
        "stalled clients released their slots and temp file: file_streams {:?}, record_streams {:?}, temps {}",
        t.bound("file_streams").await,
        t.bound("record_streams").await,
        temps()
    );
    // 2 s after each one's last byte; the records answer may still have been
    // producing bytes for a while on a busy machine
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    // the server closed those connections
    for mut s in stalled.into_iter().chain([rec, up]) {
        let mut buf = vec![0u8; 1 << 20];
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => continue, // drain what the kernel buffered
                }
            }
        })
        .await
        .unwrap_or(false);
        assert!(closed, "connection closed by the server");
    }
    // and service goes on
    assert_eq!(t.get_raw_path(&small, "").await.status, 200);
}

/// oipd speaks HTTP/1.1 only (browsers use HTTP/2 only over TLS, which belongs to
/// a terminating proxy): an h2c prior-knowledge preface is refused and closed at
/// once, so it cannot be used to hold connection slots.
#[tokio::test]
async fn http2_prior_knowledge_is_refused() {
    let t = TestServer::start_with(|c| c.http.header_timeout_secs = 30).await;
    let mut s = TcpStream::connect(t.server.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    assert!(closed_by_server(&mut s, Duration::from_secs(2)).await, "h2c preface refused and closed");
}
