//! Shared helpers for the integration tests: an in-process server on 127.0.0.1:0
//! with its own temp data dir, a raw HTTP/1.1 client for requests that ordinary
//! clients would normalise (`..`, `%2e`, bad headers), and token minting.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oipd::auth::{Auth, Claims};
use oipd::config::ServeConfig;
use oipd::RunningServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const SECRET: &str = "test-secret";

pub struct TestServer {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(f: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServeConfig::with_data_dir(dir.path().join("data"));
        cfg.http.listen = "127.0.0.1:0".parse().unwrap();
        cfg.auth.jwt_secret = Some(SECRET.into());
        cfg.media.generate_media_dir = Some(dir.path().join("generated"));
        cfg.http.shutdown_grace_secs = 2;
        f(&mut cfg);
        let server = RunningServer::start(cfg).await.unwrap();
        TestServer { server, dir }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub fn web_root(&self) -> PathBuf {
        self.dir.path().join("data/media/web")
    }

    pub fn media_root(&self) -> PathBuf {
        self.dir.path().join("data/media")
    }

    /// Write a file under the web root and return its URL path.
    pub fn put_web(&self, rel: &str, bytes: &[u8]) -> String {
        let p = self.web_root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        format!("/media/{rel}")
    }

    pub async fn raw(&self, request: &str) -> RawResponse {
        raw(self.server.addr, request.as_bytes()).await
    }

    pub async fn get_raw_path(&self, path: &str, extra_headers: &str) -> RawResponse {
        self.raw(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra_headers}Connection: close\r\n\r\n"))
            .await
    }

    /// The `bounds[]` entry `name` from /api/health/memory: (capacity, fill).
    pub async fn bound(&self, name: &str) -> (u64, u64) {
        // raw and `Connection: close`, so the asking leaves no pooled connection behind
        let v = self.get_raw_path("/api/health/memory", "").await.json();
        let b = v["bounds"].as_array().unwrap().iter().find(|b| b["name"] == name).unwrap();
        (b["capacity"].as_u64().unwrap(), b["fill"].as_u64().unwrap())
    }
}

impl TestServer {
    /// Upsert records straight into the server's store.
    pub fn seed(&self, docs: &[serde_json::Value]) {
        let store = oipd::store::sqlite::SqliteStore::open(&self.dir.path().join("data/oipd.sqlite")).unwrap();
        let recs: Vec<_> = docs.iter().map(|d| oipd::oip::model::IndexedRecord::from_value(d).unwrap()).collect();
        store.upsert_blocking(&recs).unwrap();
    }

    /// Seed the demo records at `scale`.
    pub async fn seed_demo(&self, scale: u32) -> u64 {
        let store = oipd::store::backends::open_dir(&self.dir.path().join("data")).unwrap();
        oipd::records::demo::seed_if_empty(&*store, scale, |_| {}).await.unwrap()
    }

    /// GET a JSON API path, optionally with a bearer token: (status, body).
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new().get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text:.300}"));
        (status, v)
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new().post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

impl TestServer {
    /// A sparse file under the web root: large on the wire, nothing on disk.
    pub fn sparse(&self, rel: &str, len: u64) -> String {
        let p = self.web_root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
        format!("/media/{rel}")
    }

    /// Open a GET and read only the response head; the body stays unread.
    pub async fn open_stalled(&self, path: &str) -> tokio::net::TcpStream {
        let mut s = tokio::net::TcpStream::connect(self.server.addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&buf[..n]));
        s
    }
}

/// `POST <upload_url>` as a browser form: field `file` (named `clip.<ext of mime>`
/// with the given type) and, if given, `access_level`: (status, JSON answer).
pub async fn upload_to(upload_url: &str, token: Option<&str>, data: Vec<u8>, mime: &str, access: Option<&str>) -> (u16, serde_json::Value) {
    use reqwest::multipart::{Form, Part};
    let ext = mime.rsplit('/').next().unwrap_or("bin");
    let mut form = Form::new().part("file", Part::bytes(data).file_name(format!("clip.{ext}")).mime_str(mime).unwrap());
    if let Some(a) = access {
        form = form.text("access_level", a.to_owned());
    }
    let mut req = reqwest::Client::new().post(upload_url).multipart(form);
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

impl TestServer {
    /// [`upload_to`] this server.
    pub async fn upload(&self, token: Option<&str>, data: Vec<u8>, mime: &str, access: Option<&str>) -> (u16, serde_json::Value) {
        upload_to(&self.url("/api/media/upload"), token, data, mime, access).await
    }
}

/// A minimal record document.
pub fn record(did: &str, record_type: &str, name: &str, data: serde_json::Value) -> serde_json::Value {
    let mut d = serde_json::json!({"basic": {"name": name, "date": 1713783811, "tagItems": []}});
    if let serde_json::Value::Object(extra) = data {
        for (k, v) in extra {
            d[k] = v;
        }
    }
    serde_json::json!({"data": d, "oip": {"did": did, "didTx": did, "recordType": record_type, "inArweaveBlock": 1_600_000, "creator": {"creatorHandle": "h", "didAddress": "did:arweave:creator", "publicKey": "node-key"}}})
}

pub fn token(public_key: &str) -> String {
    Auth::new(Some(SECRET)).mint(&Claims { public_key: Some(public_key.into()), ..Default::default() })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    oipd::http::etag::sha256_hex(bytes).unwrap()
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Lower-cased names; repeated headers joined with ", ".
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Send `request` verbatim and read the response until the server closes.
pub async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> RawResponse {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("response within 20s")
        .ok();
    parse_response(&buf, request.starts_with(b"HEAD"))
}

pub fn parse_response(buf: &[u8], head: bool) -> RawResponse {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head_text = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers: HashMap<String, String> = HashMap::new();
    for l in lines {
        let (k, v) = l.split_once(':').unwrap();
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim().to_owned();
        headers.entry(k).and_modify(|e| {
            e.push_str(", ");
            e.push_str(&v)
        }).or_insert(v);
    }
    let mut body = buf[end + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        body = dechunk(&body);
    }
    if head {
        assert!(body.is_empty(), "HEAD response carried a body");
    }
    RawResponse { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

/// Poll `f` every 50 ms until it holds or `secs` pass; whether it held.
pub async fn wait_for(mut f: impl AsyncFnMut() -> bool, secs: u64) -> bool {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Count this process's open fds.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

pub fn write_file(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// Parse a multipart/byteranges body into (content-range, bytes) parts.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delim = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    // body starts with CRLF--boundary
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, delim.as_bytes()).expect("first boundary");
    rest = &rest[start + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let hdr_end = find(rest, b"\r\n\r\n").expect("part header end");
        let hdrs = std::str::from_utf8(&rest[..hdr_end]).unwrap();
        let cr = hdrs
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .expect("part Content-Range")
            .to_owned();
        rest = &rest[hdr_end + 4..];
        let next = find(rest, delim.as_bytes()).expect("next boundary");
        parts.push((cr, rest[..next].to_vec()));
        rest = &rest[next + delim.len()..];
    }
    parts
}

/// The real `oipd` binary as a child process, killed on drop.
pub struct Oipd {
    pub child: std::process::Child,
    pub port: u16,
}

impl Oipd {
    /// `oipd serve --listen 127.0.0.1:<free port> --data-dir <data_dir> <extra...>`,
    /// returned once it accepts connections.
    pub fn serve(data_dir: &Path, extra: &[&str]) -> Self {
        Self::serve_env(data_dir, extra, &[])
    }

    /// [`Oipd::serve`] with extra environment variables.
    pub fn serve_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_oipd"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let me = Oipd { child, port };
        for _ in 0..1200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return me;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("oipd did not start on port {port}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Resident memory of the server, kB (`VmRSS`).
    pub fn rss_kb(&self) -> u64 {
        rss_kb(self.pid())
    }
}

impl Drop for Oipd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of a process, kB (0 once it is gone).
pub fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
