//! The records use cases, as plain library code the HTTP handlers call:
//! list (query → store → resolution → streaming render), tag summaries, record
//! types, templates, and the two writes (newRecord, deleteRecord).
//!
//! Bound: record responses rendering at once (`--max-record-streams`, with the
//! same bounded wait queue and 503 as file streams); everything else one response
//! holds is bounded by the query limits and the resolution limits.

use std::sync::Arc;

use axum::body::Body;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::render::{streaming_body, RenderCtx, RootDoc};
use super::resolve::{self, refs_of, ResolveError, ResolveLimits};
use crate::limits::stream::StreamLimiter;
use crate::limits::{BoundReport, BoundSource, Overloaded};
use crate::oip::model::{IndexedRecord, RecordError};
use crate::oip::query::{self, QueryError};
use crate::store::{RecordStore, StoreError, TemplateFilter, Viewer};

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Busy(#[from] Overloaded),
    #[error("{0}")]
    BadRequest(String),
    #[error("Record not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotImplemented(String),
}

impl From<RecordError> for RecordsError {
    fn from(e: RecordError) -> Self {
        RecordsError::BadRequest(format!("Invalid record: {e}"))
    }
}

pub struct RecordsService {
    pub store: Arc<dyn RecordStore>,
    renders: StreamLimiter,
    pub limits: ResolveLimits,
    pub max_depth: u32,
    /// Where `storage=gun` records also go (the GUN graph), when the node has one.
    gun: Option<Arc<dyn GunPublisher>>,
}

/// The GUN side of GUN records, implemented by `gun::service` (records does not
/// know how the graph stores or encrypts them).
#[async_trait::async_trait]
pub trait GunPublisher: Send + Sync {
    /// Put the record `doc` into the graph at `soul` for `owner`, encrypted when
    /// `private`, and register it; answers whether it was encrypted.
    async fn publish(&self, owner: &str, soul: &str, doc: &Value, private: bool) -> Result<bool, String>;
    /// A GUN record was deleted by `by`: tombstone it and announce the deletion.
    async fn deleted(&self, did: &str, by: &str) -> Result<(), String>;
}

/// Bound: bytes of a `localId` (the original's media records use `media_<sha256>`, 70).
pub const MAX_LOCAL_ID: usize = 128;

/// A parsed `GET /api/records` query.
pub struct ListQuery {
    pub q: query::RecordQuery,
    /// `queryParams` of the answer.
    pub echo: Value,
}

/// Where `newRecord` publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Gun,
    Arweave,
}

/// A parsed `newRecord` request.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub storage: Storage,
    pub record_type: String,
    /// The record's sections, request options removed.
    pub data: Map<String, Value>,
    pub local_id: Option<String>,
}

/// What the caller is, as the original echoes it under `auth`.
pub struct Caller {
    pub viewer: Viewer,
    pub auth: Value,
}

impl RecordsService {
    pub fn new(store: Arc<dyn RecordStore>, renders: StreamLimiter, limits: ResolveLimits, max_depth: u32) -> Self {
        RecordsService { store, renders, limits, max_depth, gun: None }
    }

    /// GUN records also go to (and are deleted from) this graph.
    pub fn with_gun(mut self, gun: Arc<dyn GunPublisher>) -> Self {
        self.gun = Some(gun);
        self
    }

    pub fn renders(&self) -> &StreamLimiter {
        &self.renders
    }

    /// Parse a `GET /api/records` query string, once: the typed query and the
    /// `queryParams` echo the answer carries.
    pub fn parse_list(&self, raw_query: &str) -> Result<ListQuery, RecordsError> {
        let pairs = query::pairs(raw_query)?;
        let q = query::parse(&pairs, self.max_depth)?;
        Ok(ListQuery { echo: query::echo(&pairs), q })
    }

    /// `GET /api/records`: the JSON body, streamed.
    pub async fn list(&self, list: ListQuery, caller: Caller) -> Result<Body, RecordsError> {
        let ListQuery { q, echo } = list;
        let permit = self.renders.acquire().await?;
        let viewer = &caller.viewer;
        let stats = self.store.stats(viewer).await?;
        let tags = match q.summarize_tags {
            Some(ts) => Some(self.store.tag_summary(&q, viewer, ts.tag_count, ts.tag_page).await?),
            None => None,
        };
        let page = self.store.search(&q, viewer).await?;

        // Each root is parsed once: here when its references are needed, else by
        // the renderer.
        let mut roots = Vec::with_capacity(page.rows.len());
        let mut rows = Vec::with_capacity(page.rows.len());
        for row in page.rows {
            let (doc, refs) = if q.resolve.depth > 0 {
                let v: Value = serde_json::from_str(row.doc.get()).map_err(|e| StoreError::Backend(e.to_string()))?;
                let refs = refs_of(&v, &q.resolve);
                (RootDoc::Parsed(v), refs)
            } else {
                (RootDoc::Raw(row.doc), Vec::new())
            };
            roots.push((row.did.clone(), refs));
            rows.push((row.did, doc, row.scores));
        }
        let resolved = resolve::gather(&*self.store, viewer, &roots, &q.resolve, self.limits).await?;
        let nodes = resolved.count_emitted(&roots, &q.resolve, self.limits.max_nodes)?;
        tracing::debug!(
            docs = resolved.len(),
            raw_bytes = resolved.bytes(),
            packed_bytes = resolved.packed_bytes(),
            nodes,
            "resolution set"
        );
        drop(roots);

        let total_pages = page.total.div_ceil(q.limit as u64);
        let mut head: Vec<(&str, Value)> = vec![
            ("message", json!("Records retrieved successfully")),
            ("latestArweaveBlockInDB", json!(stats.latest_block)),
            // oipd indexes no chain, so it cannot know how far behind it is.
            ("indexingProgress", Value::Null),
            ("totalRecords", json!(stats.total_records)),
        ];
        let tag_scores = tags.is_some() && q.tags.is_none();
        match tags {
            Some((summary, distinct)) => {
                head.push(("searchResults", json!(page.total)));
                head.push(("tagSummary", Value::Array(summary.into_iter().map(|(tag, count)| json!({"tag": tag, "count": count})).collect())));
                head.push(("tagCount", json!(distinct)));
                head.push(("pageSize", json!(q.limit)));
                head.push(("currentPage", json!(q.page)));
                head.push(("totalPages", json!(distinct.div_ceil(q.limit as u64))));
            }
            None => {
                head.push(("pageSize", json!(q.limit)));
                head.push(("currentPage", json!(q.page)));
                head.push(("searchResults", json!(page.total)));
                head.push(("queryParams", echo));
                head.push(("totalPages", json!(total_pages)));
            }
        }
        let head: Vec<(String, Value)> = head.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let auth = caller.auth;
        let (opts, shaping) = (q.resolve.clone(), q.shaping);
        Ok(streaming_body(permit, move |w| {
            use std::io::Write;
            w.write_all(b"{")?;
            for (k, v) in &head {
                serde_json::to_writer(&mut *w, k)?;
                w.write_all(b":")?;
                serde_json::to_writer(&mut *w, v)?;
                w.write_all(b",")?;
            }
            w.write_all(b"\"records\":[")?;
            let ctx = RenderCtx { resolved: &resolved, opts: &opts, shaping };
            for (i, (did, doc, scores)) in rows.into_iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                let mut extra = scores.pairs;
                if tag_scores {
                    extra.push(("score", json!(1.0)));
                }
                ctx.write_record(w, &did, doc, &extra)?;
            }
            w.write_all(b"],\"auth\":")?;
            serde_json::to_writer(&mut *w, &auth)?;
            w.write_all(b"}")?;
            Ok(())
        }))
    }

    /// `GET /api/records/recordTypes`.
    pub async fn record_types(&self, viewer: &Viewer) -> Result<Value, RecordsError> {
        let types = self.store.record_types(viewer).await?;
        let total: u64 = types.iter().map(|(_, n)| n).sum();
        Ok(json!({
            "message": "Record types retrieved successfully",
            "totalRecords": total,
            "recordTypeCount": types.len(),
            "recordTypes": types.into_iter().map(|(t, n)| json!({"recordType": t, "count": n})).collect::<Vec<_>>(),
        }))
    }

    /// `GET /api/templates`.
    pub async fn templates(&self, raw_query: &str) -> Result<Value, RecordsError> {
        let pairs = query::pairs(raw_query)?;
        let get = |k: &str| pairs.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.trim().to_owned()).filter(|v| !v.is_empty());
        let num = |k: &'static str, default: u64| -> Result<u64, RecordsError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| QueryError { param: k, reason: format!("expected a number, got {v:?}") }.into()),
            }
        };
        let limit = num("limit", 100)?.clamp(1, query::MAX_LIMIT as u64) as u32;
        let page = num("page", 1)?.clamp(1, query::MAX_PAGE as u64);
        let ascending = match get("sortBy").as_deref() {
            None | Some("inArweaveBlock:desc") | Some("inArweaveBlock") => false,
            Some("inArweaveBlock:asc") => true,
            Some(v) => return Err(QueryError { param: "sortBy", reason: format!("expected inArweaveBlock:asc|desc, got {v:?}") }.into()),
        };
        let f = TemplateFilter {
            creator_did_address: get("creatorDidAddress"),
            did_tx: get("didTx"),
            name_contains: get("templateName"),
            ascending,
            limit,
            offset: (page - 1) * limit as u64,
        };
        let stats = self.store.stats(&Viewer::anonymous()).await?;
        let (total, docs) = self.store.templates(&f).await?;
        let templates: Vec<Value> = docs.iter().filter_map(|d| serde_json::from_str(d.get()).ok()).collect();
        Ok(json!({
            "message": "Templates retreived successfully",
            "latestArweaveBlockInDB": stats.latest_block,
            "totalTemplates": total,
            "searchResults": templates.len(),
            "templates": templates,
        }))
    }

    /// `POST /api/records/newRecord`'s request: storage, record type, sections.
    pub fn parse_new_record(raw_query: &str, body: &[u8]) -> Result<NewRecord, RecordsError> {
        let pairs = query::pairs(raw_query)?;
        let get = |k: &str| pairs.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut data: Map<String, Value> = match serde_json::from_slice(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(RecordsError::BadRequest("The body must be a JSON object of record sections".into())),
            Err(e) => return Err(RecordsError::BadRequest(format!("Invalid JSON body: {e}"))),
        };
        // The original left these request options inside the stored record.
        let body_storage = data.remove("storage").and_then(|v| v.as_str().map(str::to_owned));
        let body_local_id = data.remove("localId").and_then(|v| v.as_str().map(str::to_owned));
        let body_chain = data.remove("blockchain").and_then(|v| v.as_str().map(str::to_owned));
        // the original: body.storage || query.storage || body.blockchain || query.blockchain || 'arweave'
        let storage = body_storage.or_else(|| get("storage")).or(body_chain).or_else(|| get("blockchain")).unwrap_or_else(|| "arweave".into());
        let record_type = get("recordType")
            .or_else(|| data.keys().find(|k| !["basic", "accessControl"].contains(&k.as_str())).cloned())
            .ok_or_else(|| RecordsError::BadRequest("Missing recordType".into()))?;
        if !data.values().all(Value::is_object) || data.is_empty() {
            return Err(RecordsError::BadRequest("Every record section must be a JSON object".into()));
        }
        let storage = match storage.as_str() {
            "gun" => Storage::Gun,
            "arweave" | "irys" | "turbo" => Storage::Arweave,
            other => return Err(RecordsError::BadRequest(format!("Unknown storage {other:?}: expected gun or arweave"))),
        };
        Ok(NewRecord { storage, record_type, data, local_id: get("localId").or(body_local_id) })
    }

    /// A GUN record from a `newRecord`-style query and body (callers that
    /// write the user's own records: media records, notes); `storage` must be gun.
    pub async fn new_record(&self, user_key: &str, raw_query: &str, body: &[u8]) -> Result<Value, RecordsError> {
        let req = Self::parse_new_record(raw_query, body)?;
        if req.storage != Storage::Gun {
            return Err(RecordsError::BadRequest("This route writes GUN records only (storage=gun)".into()));
        }
        self.new_gun_record(user_key, req).await
    }

    /// `POST /api/records/newRecord` with storage=gun for `user_key`.
    pub async fn new_gun_record(&self, user_key: &str, req: NewRecord) -> Result<Value, RecordsError> {
        let NewRecord { record_type, mut data, local_id, .. } = req;
        let local_id = match local_id {
            Some(l) if l.len() <= MAX_LOCAL_ID && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => l,
            Some(l) => return Err(RecordsError::BadRequest(format!("Invalid localId {l:?}"))),
            None => {
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
                let h = Sha256::digest(format!("{user_key}:{nanos}:{:p}", &data).as_bytes());
                format!("h:{}", &hex::encode(h)[..12])
            }
        };
        let soul = format!("{}:{local_id}", crate::oip::did::user_hash(user_key));
        let did = format!("did:gun:{soul}");
        // Records written here are the caller's: access control always names them
        // as owner, and defaults to private (GUN records are the private path).
        let ac = data.entry("accessControl").or_insert_with(|| json!({}));
        if let Some(ac) = ac.as_object_mut() {
            ac.entry("access_level").or_insert_with(|| json!("private"));
            ac.insert("owner_public_key".into(), json!(user_key));
            ac.insert("created_by".into(), json!(user_key));
        }
        let doc = json!({
            "data": Value::Object(data),
            "oip": {
                "did": did, "didTx": did, "recordType": record_type,
                "indexedAt": crate::civil::iso_now(), "ver": "0.8.0", "storage": "gun",
                "creator": {"publicKey": user_key, "didAddress": format!("did:gun:{}", crate::oip::did::user_hash(user_key))},
            }
        });
        let indexed = IndexedRecord::from_value(&doc)?;
        // private = any level but public, or the original's accessControl.private flag
        let ac = &doc["data"]["accessControl"];
        let private = ac["access_level"].as_str().is_some_and(|l| l != "public") || ac["private"].as_bool() == Some(true) || ac["private"].as_str() == Some("true");
        self.store.upsert(vec![indexed]).await?;
        let encrypted = match &self.gun {
            Some(g) => g.publish(user_key, &soul, &doc, private).await.map_err(|e| StoreError::Backend(format!("GUN graph: {e}")))?,
            None => false,
        };
        Ok(json!({"recordToIndex": doc, "storage": "gun", "did": did, "soul": soul, "encrypted": encrypted}))
    }

    /// `POST /api/records/clear-cache`: the original's answer. oipd keeps no
    /// records cache (every answer is read from the store), so nothing is cleared.
    pub fn clear_cache(&self) -> Value {
        json!({
            "status": "success",
            "message": "oipd keeps no records cache: every answer is read from the store, so there was nothing to clear",
            "timestamp": crate::civil::iso_now(),
        })
    }

    /// `POST /api/records/deleteRecord`, first half: the record `body` names,
    /// checked to be deletable by `user_key` (its owner, or `is_admin` for what
    /// the server wallet `server_key` published).
    pub async fn delete_target(&self, user_key: &str, is_admin: bool, server_key: Option<&str>, body: &[u8]) -> Result<DeleteTarget, RecordsError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| RecordsError::BadRequest(format!("Invalid JSON body: {e}")))?;
        let did = v
            .get("delete")
            .and_then(|d| d.get("did"))
            .and_then(Value::as_str)
            .filter(|d| d.starts_with("did:"))
            .ok_or_else(|| RecordsError::BadRequest("Expected {\"delete\": {\"did\": \"did:...\"}}".into()))?
            .to_owned();
        let viewer = Viewer::user(user_key);
        let Some(raw) = self.store.fetch_one(&did, &viewer).await? else { return Err(RecordsError::NotFound) };
        let rec: Value = serde_json::from_str(raw.get()).map_err(|e| StoreError::Backend(e.to_string()))?;
        let server_created = server_key.is_some_and(|k| rec["oip"]["creator"]["publicKey"].as_str() == Some(k));
        if !crate::oip::did::owns(user_key, &did, &rec) && !(is_admin && server_created) {
            return Err(RecordsError::Forbidden("Access denied: you do not own this record".into()));
        }
        let status = rec["oip"].get("recordStatus").cloned().unwrap_or(json!("original"));
        Ok(DeleteTarget { did, status, server_created })
    }

    /// Second half: delete it here (and from the GUN graph); `message` is the
    /// delete message published to Arweave for it, when one was.
    pub async fn delete_record(&self, user_key: &str, t: DeleteTarget, message: Option<Result<String, String>>) -> Result<Value, RecordsError> {
        let DeleteTarget { did, status, .. } = t;
        self.store.delete(&did).await?;
        let gun_deleted = match (&self.gun, did.starts_with("did:gun:")) {
            (Some(g), true) => Some(g.deleted(&did, user_key).await.is_ok()),
            _ => None,
        };
        let mut v = json!({
            "success": true,
            "message": "Record deleted successfully",
            "did": did,
            "deletedCount": 1,
            "recordStatus": status,
            "blockchainDeletion": matches!(message, Some(Ok(_))),
        });
        match (message, gun_deleted) {
            (Some(Ok(txid)), _) => {
                v["deleteMessageTxId"] = json!(txid);
                v["propagationNote"] = json!("Delete message published to Arweave: other nodes delete the record when they index it.");
            }
            (Some(Err(e)), _) => v["propagationNote"] = json!(format!("Deleted from this node's index only; the delete message was not published: {e}")),
            (None, g) => {
                v["gunRegistryDeletion"] = json!(g);
                v["propagationNote"] = json!(match g {
                    Some(true) => "Deleted from this node's index and GUN graph, and named in the GUN deletion registry: peers delete it at their next sync.",
                    _ => "Deleted from this node's index.",
                });
            }
        }
        Ok(v)
    }
}

/// A record checked for deletion ([`RecordsService::delete_target`]).
#[derive(Debug, Clone)]
pub struct DeleteTarget {
    pub did: String,
    /// Its `oip.recordStatus` (`original` when it has none).
    pub status: Value,
    /// Whether the server wallet published it (only then can this node's
    /// delete message remove it elsewhere: indexers require the creator).
    pub server_created: bool,
}

impl DeleteTarget {
    /// An Arweave record this node published.
    pub fn on_chain_by_server(&self) -> bool {
        self.did.starts_with("did:arweave:") && self.server_created
    }

    /// Still pending confirmation (its transaction not yet seen in a block).
    pub fn pending(&self) -> bool {
        self.status == crate::store::indexer::PENDING_STATUS
    }
}

impl BoundSource for RecordsService {
    fn report(&self, out: &mut Vec<BoundReport>) {
        self.renders.report(out);
        self.store.report(out);
    }
}
