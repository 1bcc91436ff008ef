//! The file-serving fast path over real sockets: bodies sent with `sendfile`
//! arrive byte-exact (whole, single range, multipart); keep-alive connections
//! parked between requests resume for every way a next request can arrive
//! (later, pipelined, split across packets, after a request with a body); a
//! parked connection still closes after the header timeout and at shutdown; the
//! open-file cache sees a file changed or removed at once and is a listed bound.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Reads responses off one kept-alive connection (bytes past one response stay
/// buffered for the next).
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(t: &TestServer) -> Self {
        Conn { s: TcpStream::connect(t.server.addr).await.unwrap(), buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = vec![0u8; 1 << 16];
        let n = tokio::time::timeout(Duration::from_secs(10), self.s.read(&mut chunk)).await.expect("bytes within 10 s").unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// One response: (status, head text, body); `head_only` for HEAD and 304.
    async fn response(&mut self, head_only: bool) -> (u16, String, Vec<u8>) {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(self.fill().await, "connection closed before a response head");
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0);
        let len = if head_only || status == 304 { 0 } else { len };
        while self.buf.len() < end + len {
            assert!(self.fill().await, "connection closed mid-body");
        }
        let body = self.buf[end..end + len].to_vec();
        self.buf.drain(..end + len);
        (status, head, body)
    }

    /// True when the server closes the connection within `within`.
    async fn closed_within(&mut self, within: Duration) -> bool {
        let mut b = [0u8; 64];
        matches!(tokio::time::timeout(within, self.s.read(&mut b)).await, Ok(Ok(0)) | Ok(Err(_)))
    }
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n")
}

#[tokio::test]
async fn sendfile_bodies_are_byte_exact() {
    let t = TestServer::start().await;
    let data = bytes(3 << 20 | 12345, 7);
    let path = t.put_web("fitnessally/big.gif", &data);
    let mut c = Conn::open(&t).await;

    c.send(get(&path, "").as_bytes()).await;
    let (st, head, body) = c.response(false).await;
    assert_eq!(st, 200, "{head}");
    assert!(body == data, "whole body differs");

    c.send(get(&path, "Range: bytes=1000000-1999999\r\n").as_bytes()).await;
    let (st, head, body) = c.response(false).await;
    assert_eq!(st, 206, "{head}");
    assert!(body == data[1000000..2000000], "range differs");

    // multipart: literal parts interleaved with file ranges on one connection
    c.send(get(&path, "Range: bytes=0-9, 3000000-3000099, -5\r\n").as_bytes()).await;
    let (st, head, body) = c.response(false).await;
    assert_eq!(st, 206, "{head}");
    let boundary = head.split("boundary=").nth(1).unwrap().lines().next().unwrap().trim().to_owned();
    let parts = parse_multipart(&body, &boundary);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].1, data[..10]);
    assert_eq!(parts[1].1, data[3000000..3000100]);
    assert_eq!(parts[2].1, data[data.len() - 5..]);

    // HEAD and a 304 carry no body and leave the connection usable
    c.send(format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await;
    let (st, head, _) = c.response(true).await;
    assert_eq!(st, 200);
    let etag = head.lines().find_map(|l| l.strip_prefix("etag: ").or_else(|| l.strip_prefix("ETag: "))).unwrap().to_owned();
    c.send(get(&path, &format!("If-None-Match: {etag}\r\n")).as_bytes()).await;
    assert_eq!(c.response(true).await.0, 304);
    c.send(get(&path, "Range: bytes=5-9\r\n").as_bytes()).await;
    assert_eq!(c.response(false).await.2, data[5..10]);
}

#[tokio::test]
async fn parked_connections_resume_however_the_next_request_comes() {
    let t = TestServer::start().await;
    let a = t.put_web("a.gif", b"first file");
    let b = t.put_web("b.gif", b"second");
    let mut c = Conn::open(&t).await;

    c.send(get(&a, "").as_bytes()).await;
    assert_eq!(c.response(false).await.2, b"first file");
    // idle between requests (past the park delay): parked in the lot (a listed
    // bound), then resumes
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(t.bound("connections_parked").await.1, 1, "parked in the lot");
    c.send(get(&b, "").as_bytes()).await;
    assert_eq!(c.response(false).await.2, b"second");

    // two requests in one packet
    c.send(format!("{}{}", get(&a, ""), get(&b, "")).as_bytes()).await;
    assert_eq!(c.response(false).await.2, b"first file");
    assert_eq!(c.response(false).await.2, b"second");

    // a head split across packets, with pauses inside it and at its blank line
    let req = get(&a, "");
    let (one, rest) = req.split_at(10);
    let (two, three) = rest.split_at(rest.len() - 2);
    for part in [one, two, three] {
        c.send(part.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(c.response(false).await.2, b"first file");

    // a request with a body (its head ends a packet, its body comes later and
    // ends with a blank line too), then a GET on the same connection
    let body = format!("{{\"email\":\"nobody@example.com\",\"password\":\"{}\"}}\r\n\r\n", "x".repeat(3000));
    c.send(format!("POST /api/user/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.send(body.as_bytes()).await;
    let (st, head, _) = c.response(false).await;
    assert!(st >= 200, "{head}");
    assert!(!head.to_ascii_lowercase().contains("connection: close"), "{head}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.send(get(&b, "").as_bytes()).await;
    let (st, _, body) = c.response(false).await;
    assert_eq!((st, body.as_slice()), (200, b"second".as_slice()));

    // quiet spells that raised the park flag while the connection could not
    // park (`c`: after a request with a body; `late`: in the middle of its
    // first head) do not keep it from parking once idle: the flag is armed
    // again after each byte
    let mut late = Conn::open(&t).await;
    let req = get(&a, "");
    let (head, rest) = req.split_at(12);
    late.send(head.as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    late.send(rest.as_bytes()).await;
    assert_eq!(late.response(false).await.2, b"first file");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.bound("connections_parked").await.1, 2, "both idle connections parked");
    late.send(get(&b, "").as_bytes()).await;
    assert_eq!(late.response(false).await.2, b"second");

    // back to back (hyper keeps the connection), then parked again and again
    for i in 0..20 {
        c.send(get(if i % 2 == 0 { &a } else { &b }, "").as_bytes()).await;
        assert_eq!(c.response(false).await.0, 200);
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        c.send(get(&a, "").as_bytes()).await;
        assert_eq!(c.response(false).await.2, b"first file");
    }
}

#[tokio::test]
async fn a_parked_connection_closes_after_the_header_timeout_and_at_shutdown() {
    let t = TestServer::start_with(|c| c.http.header_timeout_secs = 1).await;
    let a = t.put_web("a.gif", b"x");
    let mut c = Conn::open(&t).await;
    c.send(get(&a, "").as_bytes()).await;
    assert_eq!(c.response(false).await.0, 200);
    let started = std::time::Instant::now();
    assert!(c.closed_within(Duration::from_secs(5)).await, "idle connection closed");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");

    // a silent new connection is closed after the header timeout too
    let mut silent = Conn::open(&t).await;
    assert!(silent.closed_within(Duration::from_secs(5)).await);

    // a client sending only blank lines is not kept past the header timeout
    // (a wake must not start the timeout again): trickled every 300 ms, closed
    // within ~1 s of its first line, not held open
    let mut blank = Conn::open(&t).await;
    let started = std::time::Instant::now();
    let mut closed = false;
    for _ in 0..20 {
        if blank.s.write_all(b"\r\n").await.is_err() {
            closed = true;
            break;
        }
        if blank.closed_within(Duration::from_millis(300)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a blank-line trickle kept the connection for {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

    // shutdown does not wait for parked connections
    let mut idle = Conn::open(&t).await;
    idle.send(get(&a, "").as_bytes()).await;
    assert_eq!(idle.response(false).await.0, 200);
    let TestServer { server, dir: _dir } = t;
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_millis(800), "{:?}", started.elapsed());
    assert!(idle.closed_within(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn the_open_file_cache_sees_changes_at_once_and_is_a_listed_bound() {
    let t = TestServer::start_with(|c| {
        c.http.open_file_cache_entries = 2;
        c.http.open_file_cache_valid_secs = 3600;
    })
    .await;
    let path = t.put_web("f.gif", b"version one");
    let file = t.web_root().join("f.gif");
    let first = t.get_raw_path(&path, "").await;
    assert_eq!(first.body, b"version one");
    let again = t.get_raw_path(&path, "").await;
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(t.bound("open_file_cache").await, (2, 1));

    // rewritten in place: the next answer has the new bytes and a new tag
    std::fs::write(&file, b"version two, longer").unwrap();
    let changed = t.get_raw_path(&path, "").await;
    assert_eq!(changed.body, b"version two, longer");
    assert_ne!(changed.header("etag"), first.header("etag"));
    // a conditional with the old tag is not a 304
    let old = first.header("etag").unwrap();
    assert_eq!(t.get_raw_path(&path, &format!("If-None-Match: {old}\r\n")).await.status, 200);

    // replaced by a rename: the new file
    let tmp = t.web_root().join("f.tmp");
    std::fs::write(&tmp, b"version three").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    assert_eq!(t.get_raw_path(&path, "").await.body, b"version three");

    // removed: 404 at once, not the cached descriptor
    std::fs::remove_file(&file).unwrap();
    assert_eq!(t.get_raw_path(&path, "").await.status, 404);

    // bounded
    for i in 0..5 {
        let p = t.put_web(&format!("n{i}.gif"), b"n");
        assert_eq!(t.get_raw_path(&p, "").await.status, 200);
    }
    let (cap, fill) = t.bound("open_file_cache").await;
    assert_eq!(cap, 2);
    assert!(fill <= 2, "{fill}");
}
