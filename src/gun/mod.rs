//! GUN: private records and the relay, built in. The graph lives in the node's
//! store ([`crate::store::gun`]); this module is the logic over it, as plain code
//! the HTTP handlers (`api/gun.rs`) call:
//!
//! - [`node`]: what a relay put may carry (soul, size, depth and key bounds) and
//!   how nodes are shaped for relay answers;
//! - [`crypto`]: AES-256-GCM in the original's wire form, this node's per-user
//!   keys (HKDF of the node secret) and the original's keys, read only;
//! - [`service`]: relay put/get/list, publishing private records, ingestion of
//!   record nodes into the records index, the registry and deletion registry;
//! - [`sync`]: the supervised peer sync task and its bounded caches.
//!
//! Files in the data directory: `gun-secret` (the node secret, when
//! `--gun-encryption-secret` is not given; 0600) and `gun-node-id` (the stable
//! registry node id).

pub mod crypto;
pub mod node;
pub mod service;
pub mod sync;

use std::io::Write as _;
use std::path::Path;

/// The node secret: `--gun-encryption-secret` when given, else the data
/// directory's `gun-secret` (32 random bytes, hex), created on first start.
pub fn load_secret(given: Option<&str>, data_dir: &Path) -> std::io::Result<Vec<u8>> {
    if let Some(s) = given.map(str::trim).filter(|s| !s.is_empty()) {
        return Ok(s.as_bytes().to_vec());
    }
    let path = data_dir.join("gun-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|_| std::io::Error::other("no randomness for the GUN node secret"))?;
    let text = hex::encode(raw);
    write_private(&path, &text)?;
    Ok(text.into_bytes())
}

/// The registry node id: `GUN_NODE_ID_OVERRIDE` when given, else the data
/// directory's `gun-node-id` (16 random hex characters), created on first start.
pub fn load_node_id(given: Option<&str>, data_dir: &Path) -> std::io::Result<String> {
    if let Some(s) = given.map(str::trim).filter(|s| !s.is_empty()) {
        return Ok(s.to_owned());
    }
    let path = data_dir.join("gun-node-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|_| std::io::Error::other("no randomness for the GUN node id"))?;
    let id = hex::encode(raw);
    write_private(&path, &id)?;
    Ok(id)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_and_node_id_are_kept() {
        let d = tempfile::tempdir().unwrap();
        let s1 = load_secret(None, d.path()).unwrap();
        assert_eq!(s1.len(), 64);
        assert_eq!(load_secret(None, d.path()).unwrap(), s1);
        assert_eq!(load_secret(Some("given"), d.path()).unwrap(), b"given");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d.path().join("gun-secret")).unwrap().permissions().mode() & 0o777, 0o600);
        let n1 = load_node_id(None, d.path()).unwrap();
        assert_eq!(n1.len(), 16);
        assert_eq!(load_node_id(None, d.path()).unwrap(), n1);
        assert_eq!(load_node_id(Some("fixed"), d.path()).unwrap(), "fixed");
    }
}
