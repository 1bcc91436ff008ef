//! Test data: files under a server's web root (real and sparse), records seeded
//! straight into its store, record documents, deterministic bytes and hashes.

use std::path::Path;

use super::server::TestServer;

impl TestServer {
    /// Write a file under the web root and return its URL path.
    pub fn put_web(&self, rel: &str, bytes: &[u8]) -> String {
        let p = self.web_root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        format!("/media/{rel}")
    }

    /// A sparse file under the web root: large on the wire, nothing on disk.
    pub fn sparse(&self, rel: &str, len: u64) -> String {
        let p = self.web_root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
        format!("/media/{rel}")
    }

    /// Upsert records straight into the server's store (whatever its backend).
    pub async fn seed(&self, docs: &[serde_json::Value]) {
        let recs: Vec<_> = docs.iter().map(|d| oipd::oip::model::IndexedRecord::from_value(d).unwrap()).collect();
        self.server.state.records.store.upsert(recs).await.unwrap();
    }

    /// Seed the demo records at `scale` into the server's store.
    pub async fn seed_demo(&self, scale: u32) -> u64 {
        oipd::records::demo::seed_if_empty(&*self.server.state.records.store, scale, |_| {}).await.unwrap()
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

pub fn write_file(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}
