//! The GUN use cases over the graph store: the relay's put / get / list, private
//! records published from `newRecord` (encrypted in the graph, plaintext in the
//! owner-only records index), ingestion of record nodes that arrive (relay puts,
//! sync) into the records index, the registry and the deletion registry.
//!
//! Registry (the original's keys, under [`REGISTRY_ROOT`]): per node
//! `oip:registry:nodes:<nodeId>:<soul>` = `{did, soul, recordType, creatorPubKey,
//! nodeId, timestamp, oipVersion}`; per type `oip:registry:index:<type>` = a node
//! `{<soul>: {soul, nodeId, timestamp}}` (merged one key at a time, not rewritten
//! whole). Deletions: `oip:deleted:records:<did>` = `{deletedAt, deletedBy,
//! timestamp, did}` and `oip:deleted:records:index` = `{<did>: true}`.
//! `nodeId` is kept in `<data-dir>/gun-node-id` (or `GUN_NODE_ID_OVERRIDE`), so it
//! survives restarts (the original's changed on every start).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::crypto::{is_encrypted, CryptoError, Keys};
use super::node::{self, NodeError, MAX_NODE_KEYS};
use crate::limits::{BoundReport, BoundSource};
use crate::oip::model::IndexedRecord;
use crate::store::gun::{now_ms, GunEntry, GunListed, GunPut, GunStore, GunWrite, NodeLimits};
use crate::store::{RecordStore, StoreError};

/// The original's `GUN_REGISTRY_ROOT` default.
pub const REGISTRY_ROOT: &str = "oip:registry";
/// The deletion registry's root.
pub const DELETED_ROOT: &str = "oip:deleted:records";

#[derive(Debug, thiserror::Error)]
pub enum GunError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("Not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<NodeError> for GunError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Invalid(m) => GunError::BadRequest(m),
            NodeError::TooLarge(m) => GunError::TooLarge(m),
        }
    }
}

/// Why a record node was not indexed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("not an OIP record: {0}")]
    Invalid(&'static str),
    #[error("encrypted with a key this node does not hold")]
    KeptEncrypted,
    #[error("deleted")]
    Deleted,
    #[error("store: {0}")]
    Store(String),
}

/// How a record node was taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    Indexed { was_encrypted: bool },
}

pub struct GunService {
    pub graph: Arc<dyn GunStore>,
    records: Arc<dyn RecordStore>,
    pub keys: Arc<Keys>,
    pub node_id: String,
    pub limits: NodeLimits,
}

/// Whether a soul names a record (`<hash>:<localId>`), not a registry or index node.
pub fn is_record_soul(soul: &str) -> bool {
    match soul.split_once(':') {
        Some((prefix, rest)) => !rest.is_empty() && prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

impl GunService {
    pub fn new(graph: Arc<dyn GunStore>, records: Arc<dyn RecordStore>, keys: Keys, node_id: String, max_node_bytes: usize) -> Self {
        GunService { graph, records, keys: Arc::new(keys), node_id, limits: NodeLimits { max_bytes: max_node_bytes, max_keys: MAX_NODE_KEYS } }
    }

    async fn write(&self, soul: &str, w: GunWrite) -> Result<GunPut, GunError> {
        match self.graph.gun_put(soul, w, self.limits).await? {
            GunPut::TooLarge => Err(GunError::TooLarge(format!(
                "node over {} bytes or {} keys",
                self.limits.max_bytes, self.limits.max_keys
            ))),
            p => Ok(p),
        }
    }

    /// The relay's `put {soul, data}` (authorization is the caller's): store, then
    /// take record nodes into the records index and deletions into the registry.
    /// `writer`: the key of a main-port writer; a record it puts is indexed only
    /// when its creator is that key (no one publishes in another's name).
    pub async fn put(&self, soul: &str, data: Value, writer: Option<&str>) -> Result<(), GunError> {
        node::check_soul(soul)?;
        let w = node::check_put(data)?;
        let delete = matches!(w, GunWrite::Delete);
        let put = self.write(soul, w).await?;
        if !is_record_soul(soul) {
            return Ok(());
        }
        if delete {
            if put == GunPut::Written {
                self.apply_deletion(&format!("did:gun:{soul}"), None, true).await?;
            }
            return Ok(());
        }
        if let Some(GunEntry::Live { node, .. }) = self.graph.gun_get(soul).await? {
            if let Ok(shaped) = node::shaped_value(&node) {
                let creator = shaped.get("oip").and_then(|o| o.get("creator")).and_then(|c| c.get("publicKey")).and_then(Value::as_str);
                if writer.is_some_and(|w| creator != Some(w)) {
                    tracing::debug!(soul, "relay put by a writer that is not the record's creator: stored, not indexed");
                    return Ok(());
                }
                if let Err(e) = self.ingest(soul, shaped, None).await {
                    tracing::debug!(soul, error = %e, "relay put not indexed");
                }
            }
        }
        Ok(())
    }

    /// Merge a node into the graph as it is (sync: a peer's record, already validated).
    pub async fn put_raw(&self, soul: &str, node: Map<String, Value>) -> Result<(), GunError> {
        node::check_soul(soul)?;
        self.write(soul, GunWrite::Merge(node)).await.map(|_| ())
    }

    /// The relay's `get`: `{"success":true,"data":<shaped node>}` as pieces of
    /// the answer (see [`node::shaped_parts`]: the stored text is not copied).
    pub async fn get(&self, soul: &str) -> Result<Vec<bytes::Bytes>, GunError> {
        node::check_soul(soul)?;
        match self.graph.gun_get(soul).await? {
            Some(GunEntry::Live { node, .. }) => {
                let mut parts = node::shaped_parts(node).map_err(|e| StoreError::Backend(format!("gun node {soul}: {e}")))?;
                parts.insert(0, bytes::Bytes::from_static(br#"{"success":true,"data":"#));
                parts.push(bytes::Bytes::from_static(b"}"));
                Ok(parts)
            }
            _ => Err(GunError::NotFound),
        }
    }

    /// The shaped node at `soul`, if live.
    pub async fn get_value(&self, soul: &str) -> Result<Option<Map<String, Value>>, GunError> {
        match self.graph.gun_get(soul).await? {
            Some(GunEntry::Live { node, .. }) => Ok(node::shaped_value(&node).ok()),
            _ => Ok(None),
        }
    }

    /// The relay's `list`: one page of a publisher's live record souls.
    pub async fn list(&self, publisher_hash: &str, record_type: Option<&str>, limit: u32, offset: u64) -> Result<Vec<GunListed>, GunError> {
        if publisher_hash.is_empty() {
            return Err(GunError::BadRequest("publisherHash parameter required".into()));
        }
        node::check_soul(publisher_hash)?;
        Ok(self.graph.gun_list(publisher_hash, record_type, limit.min(node::MAX_LIST_LIMIT), offset).await?)
    }

    /// `newRecord?storage=gun`: the record `doc` (`{data, oip}`, already in the
    /// records index) into the graph at `soul`, encrypted for `owner` when
    /// `private`, and registered. Answers whether it was encrypted.
    pub async fn publish(&self, owner: &str, soul: &str, doc: &Value, private: bool) -> Result<bool, GunError> {
        let data = doc.get("data").cloned().unwrap_or(Value::Null);
        let oip = doc.get("oip").cloned().unwrap_or(Value::Null);
        let mut meta = json!({"created": now_ms(), "localId": soul.split_once(':').map(|(_, l)| l), "encrypted": false});
        let data_field = if private {
            let (enc, extra) = self.keys.encrypt(owner, &data).map_err(|e| GunError::BadRequest(e.to_string()))?;
            if let Some(m) = meta.as_object_mut() {
                m.extend(extra);
            }
            enc
        } else {
            Value::String(data.to_string())
        };
        let node = json!({"data": data_field, "oip": oip.to_string(), "meta": meta});
        let node = node.as_object().cloned().unwrap_or_default();
        self.write(soul, GunWrite::Merge(node)).await?;
        let did = format!("did:gun:{soul}");
        let rt = oip.get("recordType").and_then(Value::as_str).unwrap_or("");
        self.register(&did, soul, rt, owner).await?;
        Ok(private)
    }

    /// Register a record in this node's registry and its type index.
    pub async fn register(&self, did: &str, soul: &str, record_type: &str, creator: &str) -> Result<(), GunError> {
        if record_type.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let entry = json!({"did": did, "soul": soul, "recordType": record_type, "creatorPubKey": creator, "nodeId": self.node_id, "timestamp": now, "oipVersion": "0.8.0"});
        self.write(&format!("{REGISTRY_ROOT}:nodes:{}:{soul}", self.node_id), GunWrite::Merge(obj(entry))).await?;
        let index = json!({ soul: {"soul": soul, "nodeId": self.node_id, "timestamp": now} });
        self.write(&format!("{REGISTRY_ROOT}:index:{record_type}"), GunWrite::Merge(obj(index))).await?;
        Ok(())
    }

    /// Remove a record from the registry (this node's entry and its type index).
    pub async fn unregister(&self, soul: &str, record_type: Option<&str>) -> Result<(), GunError> {
        self.write(&format!("{REGISTRY_ROOT}:nodes:{}:{soul}", self.node_id), GunWrite::Delete).await?;
        if let Some(rt) = record_type.filter(|t| !t.is_empty()) {
            self.write(&format!("{REGISTRY_ROOT}:index:{rt}"), GunWrite::Merge(obj(json!({ soul: null })))).await?;
        }
        Ok(())
    }

    /// Whether the deletion registry names `did`.
    pub async fn is_deleted(&self, did: &str) -> Result<bool, GunError> {
        let idx = self.get_value(&format!("{DELETED_ROOT}:index")).await?;
        if idx.as_ref().and_then(|m| m.get(did)).and_then(Value::as_bool) == Some(true) {
            return Ok(true);
        }
        Ok(self.get_value(&format!("{DELETED_ROOT}:{did}")).await?.is_some())
    }

    /// Delete a GUN record everywhere on this node — graph (tombstone), records
    /// index, registry — and, when `announce`, name it in the deletion registry
    /// so peers delete it too.
    pub async fn apply_deletion(&self, did: &str, by: Option<&str>, announce: bool) -> Result<(), GunError> {
        let Some(soul) = did.strip_prefix("did:gun:") else { return Ok(()) };
        let record_type = match self.graph.gun_get(soul).await? {
            Some(GunEntry::Live { node, .. }) => serde_json::from_str::<Map<String, Value>>(&node).ok().and_then(|n| crate::store::gun::record_type_of(&n)),
            _ => None,
        };
        self.write(soul, GunWrite::Delete).await?;
        self.records.delete(did).await?;
        self.unregister(soul, record_type.as_deref()).await?;
        if announce {
            let entry = json!({"deletedAt": now_ms(), "deletedBy": by, "timestamp": crate::civil::iso_now(), "did": did});
            self.write(&format!("{DELETED_ROOT}:{did}"), GunWrite::Merge(obj(entry))).await?;
            self.write(&format!("{DELETED_ROOT}:index"), GunWrite::Merge(obj(json!({ did: true })))).await?;
        }
        Ok(())
    }

    /// Take a record node (shaped: `data`/`oip` parsed) into the records index:
    /// validated as the original did, decrypted when a key opens it, private
    /// records kept owner-only, registered.
    pub async fn ingest(&self, soul: &str, node: Map<String, Value>, source_node: Option<&str>) -> Result<Ingested, IngestError> {
        let did = format!("did:gun:{soul}");
        if self.is_deleted(&did).await.map_err(|e| IngestError::Store(e.to_string()))? {
            return Err(IngestError::Deleted);
        }
        let mut oip = match node.get("oip") {
            Some(Value::Object(o)) => o.clone(),
            _ => return Err(IngestError::Invalid("no oip object")),
        };
        validate_oip(&mut oip)?;
        let meta = node.get("meta").and_then(Value::as_object).cloned().unwrap_or_default();
        let was_encrypted = is_encrypted(node.get("meta"));
        let mut data = match node.get("data") {
            Some(d) if was_encrypted => match self.keys.decrypt(d, &meta, None) {
                Ok((plain, _)) => plain,
                Err(CryptoError::NoKey) => return Err(IngestError::KeptEncrypted),
                Err(CryptoError::Malformed(w)) => return Err(IngestError::Invalid(w)),
                Err(CryptoError::Randomness) => return Err(IngestError::KeptEncrypted),
            },
            Some(Value::Object(d)) => Value::Object(d.clone()),
            _ => return Err(IngestError::Invalid("no data object")),
        };
        restore_arrays(&mut data);
        let creator = oip.get("creator").and_then(|c| c.get("publicKey")).and_then(Value::as_str).map(str::to_owned);
        if was_encrypted {
            // encrypted means private: never let a decrypted record become public
            let owner = meta.get("encryptedBy").and_then(Value::as_str).map(str::to_owned).or(creator.clone()).unwrap_or_default();
            if let Some(d) = data.as_object_mut() {
                let ac = d.entry("accessControl").or_insert_with(|| json!({}));
                if !ac.is_object() {
                    *ac = json!({});
                }
                let level = ac.get("access_level").and_then(Value::as_str).unwrap_or("");
                if level.is_empty() || level == "public" {
                    ac["access_level"] = json!("private");
                }
                if ac.get("owner_public_key").and_then(Value::as_str).is_none() {
                    ac["owner_public_key"] = json!(owner);
                }
            }
            oip.insert("wasEncrypted".into(), json!(true));
            if let Some(n) = source_node {
                oip.insert("syncedFromNode".into(), json!(n));
                oip.insert("syncedAt".into(), json!(crate::civil::iso_now()));
            }
        }
        oip.insert("did".into(), json!(did));
        oip.insert("didTx".into(), json!(did));
        oip.insert("storage".into(), json!("gun"));
        oip.entry("indexedAt").or_insert_with(|| json!(crate::civil::iso_now()));
        let record_type = oip.get("recordType").and_then(Value::as_str).unwrap_or("").to_owned();
        let doc = json!({"data": data, "oip": Value::Object(oip)});
        let indexed = IndexedRecord::from_value(&doc).map_err(|_| IngestError::Invalid("record"))?;
        self.records.upsert(vec![indexed]).await.map_err(|e| IngestError::Store(e.to_string()))?;
        self.register(&did, soul, &record_type, creator.as_deref().unwrap_or("")).await.map_err(|e| IngestError::Store(e.to_string()))?;
        Ok(Ingested::Indexed { was_encrypted })
    }
}

/// The original's `isValidOIPRecord` (ver `0.8…`, a recordType, a creator with
/// `publicKey` and `didAddress`, nested or flat), flat creators nested.
fn validate_oip(oip: &mut Map<String, Value>) -> Result<(), IngestError> {
    let ver = oip.get("ver").and_then(Value::as_str).unwrap_or("");
    if !ver.starts_with("0.8") {
        return Err(IngestError::Invalid("ver is not 0.8"));
    }
    if oip.get("recordType").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(IngestError::Invalid("no recordType"));
    }
    let nested = oip.get("creator").is_some_and(|c| c.get("publicKey").and_then(Value::as_str).is_some() && c.get("didAddress").and_then(Value::as_str).is_some());
    if !nested {
        let pk = oip.get("creator_publicKey").and_then(Value::as_str).map(str::to_owned);
        let da = oip.get("creator_didAddress").and_then(Value::as_str).map(str::to_owned);
        match (pk, da) {
            (Some(pk), Some(da)) => {
                oip.shift_remove("creator_publicKey");
                oip.shift_remove("creator_didAddress");
                oip.insert("creator".into(), json!({"publicKey": pk, "didAddress": da}));
            }
            _ => return Err(IngestError::Invalid("no creator")),
        }
    }
    Ok(())
}

/// The original stored arrays in GUN as JSON strings (`"[…]"`); back to arrays.
fn restore_arrays(data: &mut Value) {
    if let Some(sections) = data.as_object_mut() {
        for section in sections.values_mut() {
            if let Some(fields) = section.as_object_mut() {
                for v in fields.values_mut() {
                    if let Value::String(s) = v {
                        if s.starts_with('[') && s.ends_with(']') {
                            if let Ok(a @ Value::Array(_)) = serde_json::from_str::<Value>(s) {
                                *v = a;
                            }
                        }
                    }
                }
            }
        }
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[async_trait::async_trait]
impl crate::records::service::GunPublisher for GunService {
    async fn publish(&self, owner: &str, soul: &str, doc: &Value, private: bool) -> Result<bool, String> {
        GunService::publish(self, owner, soul, doc, private).await.map_err(|e| e.to_string())
    }

    async fn deleted(&self, did: &str, by: &str) -> Result<(), String> {
        self.apply_deletion(did, Some(by), true).await.map_err(|e| e.to_string())
    }
}

impl BoundSource for GunService {
    fn report(&self, out: &mut Vec<BoundReport>) {
        self.keys.report(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_souls() {
        assert!(is_record_soul("abc123abc123:r1"));
        assert!(is_record_soul("abc123abc123:h:0011"));
        assert!(!is_record_soul("oip:registry:index:post"));
        assert!(!is_record_soul("abc123abc123:"));
        assert!(!is_record_soul("index:abc123abc123"));
    }

    #[test]
    fn validation_as_the_original() {
        let mut ok = json!({"ver": "0.8.0", "recordType": "post", "creator_publicKey": "k", "creator_didAddress": "d"}).as_object().unwrap().clone();
        validate_oip(&mut ok).unwrap();
        assert_eq!(ok["creator"], json!({"publicKey": "k", "didAddress": "d"}));
        for bad in [json!({"ver": "0.7", "recordType": "post", "creator": {"publicKey": "k", "didAddress": "d"}}), json!({"ver": "0.8.0", "creator": {"publicKey": "k", "didAddress": "d"}}), json!({"ver": "0.8.0", "recordType": "post", "creator": {"publicKey": "k"}})] {
            assert!(validate_oip(&mut bad.as_object().unwrap().clone()).is_err(), "{bad}");
        }
        let mut d = json!({"recipe": {"ingredient": "[\"a\",\"b\"]", "note": "[x"}});
        restore_arrays(&mut d);
        assert_eq!(d, json!({"recipe": {"ingredient": ["a", "b"], "note": "[x"}}));
    }
}
