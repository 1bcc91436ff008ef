//! Publishing to Arweave: records, templates, delete messages and media files
//! signed by the server's wallet (`WALLET_FILE`) and sent as ANS-104 data items
//! to a Turbo-compatible bundler. A published record is indexed at once as
//! `recordStatus: "pending confirmation in Arweave"` under its final DID; when
//! the indexer sees the transaction on chain it replaces that document by DID
//! (the ledger knows only confirmed transactions), so there is never a
//! duplicate and never a gap.
//!
//! - [`wire`]: record/template/delete → data and tags, creator signature.
//! - [`turbo`]: the bundler's upload and payment services.
//! - [`jobs`]: the bounded job table behind `/api/publish-status`.
//! - [`recipes`]: the original's `newRecipe`/`newWorkout`/… bodies → records.
//!
//! Order of a publish: template lookup and compression (a record that does not
//! fit → [`PublishError::BadRecord`] naming the field), the pending document
//! built and checked — all before anything is signed or spent; then the
//! signature, the cost check, the upload (retried, bounded), and only once the
//! bundler accepted, the pending document is written. Nothing is marked pending
//! that the bundler did not take; once it took an item the answer is a success
//! (with `indexedToPendingStatus: false` if the pending write failed).
//!
//! Bounds: publishes in flight ([`MAX_IN_FLIGHT`], `publish_in_flight`; past
//! it 503), RSA signatures at once (one per core, `publish_signatures`, on the
//! blocking pool; the data item's deep-hash stays on the task), a record's size
//! capped by the caller; media uploads by `--arweave-upload-max-bytes` and
//! streamed twice (hash, then send) from the media store, never held.

pub mod jobs;
pub mod recipes;
pub mod turbo;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::arweave::dataitem::{DataItemError, ItemSigner};
use crate::arweave::jwk::ArweaveWallet;
use crate::arweave::tags::Tag as ItemTag;
use crate::clients::OutboundClient;
use crate::config::PublishConfig;
use crate::http::source::ByteSource;
use crate::indexer::expand::{self, CreatorInfo, ExpandError, Template, TemplateSet};
use crate::indexer::process::TypeFilter;
use crate::indexer::tx::{Tag, Tx};
use crate::limits::Permits;
use crate::oip::model::{IndexedRecord, IndexedTemplate};
use crate::store::indexer::{IndexerStore, PENDING_STATUS};
use crate::store::{RecordStore, StoreError, TemplateFilter};

use self::jobs::{Jobs, JobsFull};
use self::turbo::{Bundler, BundlerError, ItemData};
use self::wire::Signed;

/// Bound: templates of one name considered when picking the one to publish with.
const MAX_SAME_NAME: u32 = 64;

/// Bound: publishes (records, templates, deletes, media) in flight at once.
pub const MAX_IN_FLIGHT: usize = 16;

/// How long a publish waits for a slot (in flight, or an RSA signature) before 503.
const SLOT_WAIT: Duration = Duration::from_secs(5);

/// Keys of a `newRecord` body that are request options, not record sections.
pub const OPTION_KEYS: &[&str] = &["blockchain", "storage", "localId", "publishFiles", "addMediaToArweave", "addMediaToIPFS", "addMediaToArFleet"];

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No `WALLET_FILE`: 503 with one message.
    #[error("Publishing to Arweave is not configured on this node: set WALLET_FILE to the server's Arweave wallet (JWK)")]
    NoWallet,
    /// The record does not fit its templates (or is not a record): 400.
    #[error("{0}")]
    BadRecord(String),
    /// The server's own creator registration is not indexed: 409.
    #[error("The server's creator registration ({0}) is not indexed yet: publish it with POST /api/creators/newCreator and wait until the indexer confirms it")]
    NotRegistered(String),
    #[error(transparent)]
    Bundler(#[from] BundlerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    JobsFull(#[from] JobsFull),
    /// Signing failed (a tag over its bound is reported as BadRecord).
    #[error("signing the data item: {0}")]
    Signing(String),
    /// No indexer (no gateway configured): nothing would ever confirm.
    #[error("Publishing to Arweave needs this node's indexer to confirm what it publishes: set --arweave-gateways / OIPD_ARWEAVE_GATEWAYS")]
    NoIndexer,
    /// The indexer's type policy (`RECORD_TYPE_INDEX_MODE`) skips this type.
    #[error("Record type {0:?} is not indexed by this node (RECORD_TYPE_INDEX_MODE): it would stay pending forever")]
    NotIndexed(String),
    /// A pending record cannot be deleted on chain yet.
    #[error("The record is pending confirmation in Arweave; delete it once it is confirmed")]
    Pending,
    /// A slot (publishes in flight, RSA signatures) stayed full.
    #[error(transparent)]
    Busy(#[from] crate::limits::Overloaded),
}

impl From<ExpandError> for PublishError {
    fn from(e: ExpandError) -> Self {
        PublishError::BadRecord(e.to_string())
    }
}

impl From<crate::indexer::verify::VerifyError> for PublishError {
    fn from(e: crate::indexer::verify::VerifyError) -> Self {
        PublishError::BadRecord(e.to_string())
    }
}

impl From<DataItemError> for PublishError {
    fn from(e: DataItemError) -> Self {
        match e {
            DataItemError::Signing => PublishError::Signing(e.to_string()),
            other => PublishError::BadRecord(other.to_string()),
        }
    }
}

/// What a publish answers: the original's `transactionId`, `didTx` and
/// `recordToIndex`.
#[derive(Debug, Clone)]
pub struct Published {
    pub transaction_id: String,
    pub did: String,
    pub record_to_index: Value,
    /// Whether the pending document was written (the item is on its way either way).
    pub indexed: bool,
}

impl Published {
    /// The original's `{transactionId, recordToIndex, blockchain}`.
    pub fn response(&self) -> Value {
        json!({"transactionId": self.transaction_id, "didTx": self.did, "did": self.did, "recordToIndex": self.record_to_index,
               "blockchain": "arweave", "indexedToPendingStatus": self.indexed})
    }
}

/// The publisher: the wallet, the bundler, the stores the pending documents go to.
pub struct Publisher {
    wallet: Option<Arc<ArweaveWallet>>,
    bundler: Bundler,
    records: Arc<dyn RecordStore>,
    indexer: Arc<dyn IndexerStore>,
    /// The indexer's record-type policy, `None` without an indexer.
    indexed_types: Option<TypeFilter>,
    pub jobs: Arc<Jobs>,
    pub max_media_bytes: u64,
    in_flight: Permits,
    signatures: Permits,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn now_iso() -> String {
    crate::civil::iso_now()
}

impl Publisher {
    /// From the configuration; a `WALLET_FILE` that is set but unreadable or
    /// not an Arweave RSA JWK is an error (the node refuses to start).
    pub fn new(
        cfg: &PublishConfig,
        client: OutboundClient,
        records: Arc<dyn RecordStore>,
        indexer: Arc<dyn IndexerStore>,
        indexed_types: Option<TypeFilter>,
    ) -> Result<Self, String> {
        let wallet = match &cfg.wallet_file {
            None => None,
            Some(p) => {
                let bytes = std::fs::read(p).map_err(|e| format!("WALLET_FILE {}: {e}", p.display()))?;
                let w = ArweaveWallet::from_jwk_json(&bytes).map_err(|e| format!("WALLET_FILE {}: {e}", p.display()))?;
                Some(Arc::new(w))
            }
        };
        Ok(Publisher {
            wallet,
            bundler: Bundler::new(client, &cfg.bundler_url, &cfg.bundler_payment_url, cfg.publish_attempts),
            records,
            indexer,
            indexed_types,
            jobs: Arc::new(Jobs::new(cfg.publish_jobs, Duration::from_secs(cfg.publish_job_ttl.max(1)))),
            max_media_bytes: cfg.arweave_upload_max_bytes,
            in_flight: Permits::new("publish_in_flight", "publishes", "const publish::MAX_IN_FLIGHT", MAX_IN_FLIGHT, 5),
            signatures: Permits::new(
                "publish_signatures",
                "RSA signatures",
                "the number of cores",
                std::thread::available_parallelism().map_or(2, |n| n.get()),
                5,
            ),
        })
    }

    /// A publish slot, and the checks every publish needs first.
    async fn begin(&self) -> Result<(&Arc<ArweaveWallet>, tokio::sync::OwnedSemaphorePermit), PublishError> {
        let wallet = self.wallet()?;
        if self.indexed_types.is_none() {
            return Err(PublishError::NoIndexer);
        }
        Ok((wallet, self.in_flight.acquire_within(SLOT_WAIT).await?))
    }

    /// RSA work on the blocking pool, at most one per core at once.
    async fn rsa<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, PublishError> {
        let _permit = self.signatures.acquire_within(SLOT_WAIT).await?;
        tokio::task::spawn_blocking(f).await.map_err(|e| PublishError::Signing(e.to_string()))
    }

    fn wallet(&self) -> Result<&Arc<ArweaveWallet>, PublishError> {
        self.wallet.as_ref().ok_or(PublishError::NoWallet)
    }

    /// The server wallet's address, when there is one.
    pub fn address(&self) -> Option<String> {
        self.wallet.as_ref().map(|w| w.address())
    }

    /// The server wallet's public key (the RSA modulus, base64url), as
    /// `oip.creator.publicKey` names it.
    pub fn public_key(&self) -> Option<String> {
        self.wallet.as_ref().map(|w| b64url(w.owner()))
    }

    /// The one template named `name` to publish with: the server's own when it
    /// published one, else the oldest indexed.
    pub async fn template_named(&self, name: &str) -> Result<Option<Template>, PublishError> {
        let f = TemplateFilter { name_contains: Some(name.to_owned()), ascending: true, limit: MAX_SAME_NAME, ..TemplateFilter::default() };
        let (_, docs) = self.records.templates(&f).await?;
        let own = self.address();
        let mut first = None;
        for raw in docs {
            let Ok(doc) = serde_json::from_str::<Value>(raw.get()) else { continue };
            // confirmed templates only: a pending one may never land
            if doc["data"]["template"].as_str() != Some(name) || doc["oip"]["recordStatus"] == PENDING_STATUS {
                continue;
            }
            let Ok(t) = Template::from_stored(&doc) else { continue };
            if own.is_some() && doc["data"]["creator"].as_str() == own.as_deref() {
                return Ok(Some(t));
            }
            first.get_or_insert(t);
        }
        Ok(first)
    }

    /// The templates of a record's sections.
    async fn templates_for(&self, data: &Map<String, Value>) -> Result<TemplateSet, PublishError> {
        let mut set = TemplateSet::new();
        for name in data.keys() {
            match self.template_named(name).await? {
                Some(t) => set.insert(t),
                None => return Err(PublishError::BadRecord(format!("No template is named {name:?}: a record section must name a published template"))),
            }
        }
        Ok(set)
    }

    /// Sign the data item of `tags` and `data`, check its cost, upload it; its
    /// id. The deep-hash runs here, chunk by chunk as the data streams; only the
    /// RSA signature goes to the blocking pool.
    async fn send(&self, tags: &[Tag], data: ItemData) -> Result<String, PublishError> {
        let wallet = self.wallet()?.clone();
        let item_tags: Vec<ItemTag> = tags.iter().map(|t| ItemTag::new(t.name.as_bytes(), t.value.as_bytes())).collect();
        let mut signer = ItemSigner::new(&wallet, None, None, item_tags, data.len())?;
        match &data {
            ItemData::Bytes(b) => signer.update(b),
            ItemData::Source { source, len } => {
                use futures_util::StreamExt as _;
                let mut s = source.range(0, *len);
                while let Some(chunk) = s.next().await {
                    let chunk = chunk.map_err(|e| PublishError::Store(StoreError::Backend(format!("reading the media file: {e}"))))?;
                    signer.update(&chunk);
                }
            }
        }
        let unsigned = signer.prepare()?;
        let w = wallet.clone();
        let signed = self.rsa(move || unsigned.sign(&w)).await??;
        self.check_cost(&wallet, signed.item_len()).await?;
        let receipt = self.bundler.upload(&signed.header, &data).await?;
        Ok(receipt.id)
    }

    /// The price of `bytes` against the wallet's balance. The payment service
    /// is advisory: when it cannot answer, the upload goes ahead and the
    /// bundler's own 402 decides.
    async fn check_cost(&self, wallet: &Arc<ArweaveWallet>, bytes: u64) -> Result<(), PublishError> {
        let price = match self.bundler.price(bytes).await {
            Ok(Some(p)) if p > 0 => p,
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "bundler price unknown; uploading without the cost check");
                return Ok(());
            }
        };
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| PublishError::Signing(e.to_string()))?;
        let nonce = hex::encode(raw);
        let (w, n) = (wallet.clone(), nonce.clone());
        let sig = self.rsa(move || turbo::sign_nonce(&w, &n)).await?;
        match self.bundler.balance(&b64url(wallet.owner()), &nonce, &sig).await {
            Ok(Some(balance)) if balance < price => {
                Err(BundlerError::NoCredit(format!("{bytes} bytes cost {price} winc; the wallet has {balance}")).into())
            }
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "bundler balance unknown; uploading without the cost check");
                Ok(())
            }
        }
    }

    async fn send_signed(&self, s: &Signed) -> Result<String, PublishError> {
        self.send(&s.tags, ItemData::Bytes(bytes::Bytes::from(s.data.clone().into_bytes()))).await
    }

    async fn own_creator(&self) -> Result<Option<crate::store::indexer::Creator>, PublishError> {
        let addr = self.wallet()?.address();
        Ok(self.indexer.creator_by_address(&format!("did:arweave:{addr}")).await?)
    }

    /// Whether the indexer already processed `id` (a bundle that landed
    /// before the pending document was written): then the confirmed document
    /// stands and no pending one is written over it.
    async fn confirmed(&self, id: &str) -> Result<bool, PublishError> {
        Ok(!self.indexer.seen(vec![id.to_owned()]).await?.is_empty())
    }

    /// The height a pending document names (`oip.inArweaveBlock`): the highest
    /// block the node has indexed, as the original took the current height.
    async fn height(&self) -> u64 {
        self.indexer.resume_height().await.ok().flatten().unwrap_or(0)
    }

    /// Publish a record of `record_type` whose sections are `data`
    /// (`{<templateName>: {<field>: value}}`).
    pub async fn record(&self, record_type: &str, mut data: Map<String, Value>) -> Result<Published, PublishError> {
        let (wallet, _slot) = self.begin().await?;
        for k in OPTION_KEYS {
            data.remove(*k);
        }
        if record_type.is_empty() || record_type.len() > 64 || !record_type.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(PublishError::BadRecord(format!("Invalid recordType {record_type:?}")));
        }
        if !self.indexed_types.as_ref().is_some_and(|t| t.admits(record_type)) {
            return Err(PublishError::NotIndexed(record_type.to_owned()));
        }
        if data.is_empty() {
            return Err(PublishError::BadRecord("The record has no sections".into()));
        }
        if let Some(ac) = data.get("accessControl") {
            let level = ac.get("access_level").and_then(Value::as_str).unwrap_or("public");
            if level != "public" || ac.get("private").is_some_and(|p| p == true || p == "true") {
                return Err(PublishError::BadRecord(format!(
                    "accessControl.access_level {level:?}: Arweave is public and permanent; publish private records with storage=gun"
                )));
            }
        }
        if self.template_named(record_type).await?.is_none() {
            return Err(PublishError::BadRecord(format!("Unknown record type {record_type:?}: no template of that name is indexed")));
        }
        let registration = record_type == "creatorRegistration";
        if registration {
            let reg = data.entry("creatorRegistration").or_insert_with(|| json!({}));
            let Some(reg) = reg.as_object_mut() else { return Err(ExpandError::SectionNotObject("creatorRegistration".into()).into()) };
            reg.insert("publicKey".into(), Value::String(b64url(wallet.owner())));
            reg.insert("address".into(), Value::String(wallet.address()));
        }
        let templates = self.templates_for(&data).await?;
        check_types(&data, &templates)?;
        let items = expand::compress(&data, &templates, None)?;
        let creator = match (self.own_creator().await?, registration) {
            (Some(c), _) => Some(c),
            (None, true) => None,
            (None, false) => return Err(PublishError::NotRegistered(format!("did:arweave:{}", wallet.address()))),
        };
        let info = match &creator {
            Some(c) => CreatorInfo {
                creator_handle: Some(c.handle.clone()),
                did_address: Some(c.did_address.clone()),
                did_tx: Some(c.did_tx.clone()),
                public_key: Some(c.public_key.clone()),
            },
            None => CreatorInfo { did_address: Some(format!("did:arweave:{}", wallet.address())), public_key: Some(b64url(wallet.owner())), ..CreatorInfo::default() },
        };
        // Registrations and organizations land in their own tables when
        // confirmed; only ordinary records are indexed while pending.
        let pending = !matches!(record_type, "creatorRegistration" | "organization");
        let height = self.height().await;
        let signed = {
            let (w, rt, items) = (wallet.clone(), record_type.to_owned(), items.clone());
            self.rsa(move || wire::record(&w, &rt, &items)).await?
        };
        // The pending document, built and checked before anything is spent
        // (its id is the only thing the upload adds).
        let document = |id: &str| -> Result<(Value, IndexedRecord), PublishError> {
            let tx = Tx { id: id.to_owned(), owner_address: Some(wallet.address()), tags: signed.tags.clone(), block_height: None, block_timestamp: None, data: signed.data.clone() };
            let expanded = expand::expand(&items, &templates)?;
            let mut doc = expand::record_document(&tx, expanded, &info, height, &now_iso());
            if let Some(d) = doc.get_mut("data") {
                crate::indexer::process::json_string_arrays(d);
            }
            doc["oip"]["recordStatus"] = Value::String(PENDING_STATUS.into());
            let rec = IndexedRecord::from_value(&doc).map_err(|e| PublishError::BadRecord(e.to_string()))?;
            Ok((doc, rec))
        };
        document(&"x".repeat(43))?;
        let id = self.send_signed(&signed).await?;
        let (doc, rec) = document(&id)?;
        let mut indexed = false;
        if pending {
            indexed = self.write_pending(&id, async { self.records.upsert(vec![rec]).await.map(|_| ()) }).await;
        }
        Ok(Published { did: format!("did:arweave:{id}"), transaction_id: id, record_to_index: doc, indexed })
    }

    /// Write a pending document for `id` unless the indexer already processed
    /// it (a bundle that landed first); a failure is logged, not returned: the
    /// bundler has the item and the indexer will confirm it regardless.
    async fn write_pending(&self, id: &str, write: impl std::future::Future<Output = Result<(), StoreError>>) -> bool {
        match self.confirmed(id).await {
            Ok(true) => return false,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(%id, error = %e, "pending document not written");
                return false;
            }
        }
        match write.await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%id, error = %e, "pending document not written");
                false
            }
        }
    }

    /// Publish a template: `body` is `{<name>: {<field definition>}}`.
    pub async fn template(&self, mut body: Map<String, Value>) -> Result<Published, PublishError> {
        let (wallet, _slot) = self.begin().await?;
        body.remove("blockchain");
        let mut it = body.into_iter();
        let (name, fields) = match (it.next(), it.next()) {
            (Some((n, Value::Object(f))), None) => (n, f),
            _ => return Err(PublishError::BadRecord("The body must be {\"<templateName>\": {<fields>}}".into())),
        };
        if name.is_empty() || name.len() > 64 {
            return Err(PublishError::BadRecord(format!("Invalid template name {name:?}")));
        }
        if !crate::indexer::process::template_fields_valid(&fields) {
            return Err(PublishError::BadRecord("Every field needs its index_<field> entry".into()));
        }
        Template::from_fields("pending", &name, &fields).map_err(|e| PublishError::BadRecord(e.to_string()))?;
        let signed = {
            let (w, n, f) = (wallet.clone(), name.clone(), fields.clone());
            self.rsa(move || wire::template(&w, &n, &f)).await??
        };
        let id = self.send_signed(&signed).await?;
        let did = format!("did:arweave:{id}");
        let doc = json!({
            "data": {"TxId": id, "creator": wallet.address(), "creatorSig": signed.creator_sig(), "template": name, "fields": signed.data},
            "oip": {"did": did, "didTx": did, "inArweaveBlock": self.height().await, "indexedAt": now_iso(), "recordStatus": PENDING_STATUS, "ver": wire::OIP_VERSION,
                    "creator": {"didAddress": format!("did:arweave:{}", wallet.address()), "creatorSig": signed.creator_sig()}},
        });
        let indexed = match IndexedTemplate::from_value(&doc) {
            Some(t) => self.write_pending(&id, async { self.records.upsert_templates(vec![t]).await.map(|_| ()) }).await,
            None => false,
        };
        Ok(Published { transaction_id: id, did, record_to_index: doc, indexed })
    }

    /// Publish a delete message for `did` (signed by the server wallet); the
    /// message's transaction id.
    pub async fn delete(&self, did: &str) -> Result<String, PublishError> {
        let (wallet, _slot) = self.begin().await?;
        let (w, d) = (wallet.clone(), did.to_owned());
        let signed = self.rsa(move || wire::delete(&w, &d)).await?;
        self.send_signed(&signed).await
    }

    /// Send a stored file of `len` bytes as a data item tagged with its type.
    pub async fn media(&self, source: Arc<dyn ByteSource>, len: u64, mime: &str, name: &str) -> Result<String, PublishError> {
        let (_, _slot) = self.begin().await?;
        if len > self.max_media_bytes {
            return Err(PublishError::BadRecord(format!("The file has {len} bytes; at most {} are sent to Arweave (--arweave-upload-max-bytes)", self.max_media_bytes)));
        }
        let mut tags = vec![Tag::new("Content-Type", mime)];
        if !name.is_empty() {
            tags.push(Tag::new("File-Name", name));
        }
        self.send(&tags, ItemData::Source { source, len }).await
    }
}

/// Values a template's types cannot hold, named before anything is signed:
/// numbers for `uint64`/`float`, arrays for `repeated …`, booleans for `bool`.
fn check_types(data: &Map<String, Value>, templates: &TemplateSet) -> Result<(), PublishError> {
    for (section, fields) in data {
        let Value::Object(fields) = fields else { return Err(ExpandError::SectionNotObject(section.clone()).into()) };
        let Ok(t) = templates.by_name(section) else { continue };
        for (name, v) in fields {
            let Some(ty) = t.field(name).and_then(|f| f.ty.as_deref()) else { continue };
            let numeric = |v: &Value| v.is_number() || v.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok());
            let ok = v.is_null()
                || match ty {
                    t if t.starts_with("repeated") => v.is_array(),
                    "uint64" | "float" | "long" => numeric(v),
                    "bool" => v.is_boolean() || v == "true" || v == "false",
                    _ => true,
                };
            if !ok {
                return Err(PublishError::BadRecord(format!("{section}.{name}: {v} does not fit the template's type {ty}")));
            }
        }
    }
    Ok(())
}

impl crate::limits::BoundSource for Publisher {
    fn report(&self, out: &mut Vec<crate::limits::BoundReport>) {
        self.jobs.report(out);
        self.in_flight.report(out);
        self.signatures.report(out);
    }
}
