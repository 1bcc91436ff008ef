//! The in-process server: `TestServer` on 127.0.0.1:0 with its own temp data
//! dir, its configuration, JSON requests against it, its bounds, and tokens
//! minted with the JWT secret it is configured with.

use std::path::PathBuf;
use std::time::Duration;

use oipd::auth::{Auth, Claims};
use oipd::config::ServeConfig;
use oipd::RunningServer;

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
        if cfg.store.store.is_none() {
            cfg.store.store = (super::contract::current_backend().url)(&cfg.data_dir);
        }
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

    /// The `bounds[]` entry `name` from /api/health/memory: (capacity, fill).
    pub async fn bound(&self, name: &str) -> (u64, u64) {
        // raw and `Connection: close`, so the asking leaves no pooled connection behind
        let v = self.get_raw_path("/api/health/memory", "").await.json();
        let b = v["bounds"].as_array().unwrap().iter().find(|b| b["name"] == name).unwrap();
        (b["capacity"].as_u64().unwrap(), b["fill"].as_u64().unwrap())
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

pub fn token(public_key: &str) -> String {
    Auth::new(Some(SECRET)).mint(&Claims { public_key: Some(public_key.into()), ..Default::default() })
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

/// Point `c`'s indexer at a test gateway: from block 0, a cycle a second, the
/// given bootstrap registration, short outbound timeouts (`read`, `total` s).
pub fn index_from(c: &mut ServeConfig, gateway: &str, bootstrap: &str, read: u64, total: u64) {
    c.indexer.arweave_gateways = gateway.to_owned();
    c.indexer.index_start_block = 0;
    c.indexer.index_interval = 1;
    c.indexer.index_bootstrap_creators = bootstrap.to_owned();
    c.clients.outbound_read_timeout_secs = read;
    c.clients.outbound_timeout_secs = total;
}

/// `GET /api/health/indexer`.
pub async fn indexer_health(s: &TestServer) -> serde_json::Value {
    s.get_json("/api/health/indexer", None).await.1
}

/// Wait until the indexer has finished a cycle at or past `height`; its health then.
pub async fn indexed_to(s: &TestServer, height: u64) -> serde_json::Value {
    indexed_to_at(&s.url("/api/health/indexer"), height).await
}

/// [`indexed_to`] for any node (a child process too), by its `/api/health/indexer` URL.
pub async fn indexed_to_at(health_url: &str, height: u64) -> serde_json::Value {
    let health = async || -> serde_json::Value { reqwest::get(health_url).await.unwrap().json().await.unwrap() };
    let cycles = health().await["cycles"].as_u64().unwrap_or(0);
    let ok = wait_for(async || {
        let h = health().await;
        h["indexedHeight"].as_u64() >= Some(height) && h["cycles"].as_u64().unwrap_or(0) > cycles
    }, 60)
    .await;
    let h = health().await;
    assert!(ok, "indexer did not reach {height}: {h:#}");
    h
}
