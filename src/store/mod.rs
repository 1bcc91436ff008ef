//! The record store abstraction. Everything above this module speaks
//! [`RecordStore`]; all SQL lives in the backends (`sqlite/` now, PostgreSQL
//! next), chosen by URL in [`backends`]. Queries arrive typed ([`RecordQuery`])
//! together with the [`Viewer`] they are answered for: every method that returns
//! or counts records applies the privacy rule itself, so no caller can forget it.
//! What a query means is the domain's ([`crate::oip::plan`]); a backend only
//! translates it. The contract every backend must meet is the records test suite
//! (`tests/it/records_api.rs` and friends), run once per backend.
//!
//! Privacy rule (one definition, implemented by each backend): a record is
//! visible to a viewer when its access level is `public` or unset (and it is not a
//! private conversation session), or when the viewer's key equals its owner
//! (`accessControl.owner_public_key` / `created_by` / session owner) or its
//! creator's public key. `private`, `shared`, `organization` and unknown levels
//! are owner-only (organizations do not exist yet).

pub mod backends;
pub mod copy;
pub mod gun;
pub mod indexer;
pub mod lease;
pub mod media;
pub mod postgres;
pub mod sqlite;
pub mod users;

use async_trait::async_trait;
use serde_json::value::RawValue;

use crate::limits::BoundSource;
use crate::oip::model::{IndexedRecord, IndexedTemplate};
use crate::oip::query::RecordQuery;

/// Who is asking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    /// The caller's public key; `None` = anonymous.
    pub key: Option<String>,
}

impl Viewer {
    pub fn anonymous() -> Self {
        Viewer { key: None }
    }
    pub fn user(key: impl Into<String>) -> Self {
        Viewer {
            key: Some(key.into()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store busy")]
    Busy,
    /// The filesystem under the store is full (SQLITE_FULL).
    #[error("store: disk full")]
    Full,
    /// A read ran past its time budget and was interrupted.
    #[error("store: query over its time budget")]
    TimedOut,
    /// A read was interrupted because its caller went away.
    #[error("store: query cancelled")]
    Interrupted,
    #[error("store: {0}")]
    Backend(String),
}

/// How an upsert changed the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Inserted,
    Updated,
    Unchanged,
    /// Not written: it would have taken an identity another document holds
    /// (an imported account whose id belongs to another email).
    Refused,
}

/// Score columns computed by the store for the page (only those the query asked for).
/// Where [`RecordStore::fetch_visible`] sends `(did, document)` pairs.
pub type FetchSink = tokio::sync::mpsc::Sender<(String, Box<RawValue>)>;

/// Bound: documents in flight between a store read and its consumer.
pub const FETCH_QUEUE: usize = 64;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    pub pairs: Vec<(&'static str, serde_json::Value)>,
}

/// One record of a result page.
#[derive(Debug)]
pub struct Row {
    pub did: String,
    pub doc: Box<RawValue>,
    pub scores: Scores,
}

#[derive(Debug)]
pub struct Page {
    /// All matches, not just this page.
    pub total: u64,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records visible to the viewer.
    pub total_records: u64,
    /// Highest `inArweaveBlock` of a confirmed record.
    pub latest_block: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct TemplateFilter {
    pub creator_did_address: Option<String>,
    pub did_tx: Option<String>,
    pub name_contains: Option<String>,
    pub ascending: bool,
    pub limit: u32,
    pub offset: u64,
}

#[async_trait]
pub trait RecordStore: BoundSource + Send + Sync {
    /// Insert or replace records by DID, in one transaction.
    async fn upsert(&self, records: Vec<IndexedRecord>) -> Result<Vec<Upserted>, StoreError>;
    async fn upsert_templates(
        &self,
        templates: Vec<IndexedTemplate>,
    ) -> Result<Vec<Upserted>, StoreError>;
    /// One page of matches, sorted over the whole result set, with the real total.
    async fn search(&self, q: &RecordQuery, viewer: &Viewer) -> Result<Page, StoreError>;
    /// Tag counts over all matches: the requested page of `(tag, count)` (count
    /// desc) and the number of distinct tags.
    async fn tag_summary(
        &self,
        q: &RecordQuery,
        viewer: &Viewer,
        count: u32,
        page: u32,
    ) -> Result<(Vec<(String, u64)>, u64), StoreError>;
    /// Records among `dids` that `viewer` may see, in one round trip, sent into
    /// `sink` as they are read (a bounded channel: the caller consumes while the
    /// store reads, so a level of thousands of documents is never held at once).
    async fn fetch_visible(
        &self,
        dids: Vec<String>,
        viewer: &Viewer,
        sink: FetchSink,
    ) -> Result<(), StoreError>;

    /// One record by DID, if `viewer` may see it.
    async fn fetch_one(
        &self,
        did: &str,
        viewer: &Viewer,
    ) -> Result<Option<Box<RawValue>>, StoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        self.fetch_visible(vec![did.to_owned()], viewer, tx).await?;
        Ok(rx.recv().await.map(|(_, doc)| doc))
    }
    async fn stats(&self, viewer: &Viewer) -> Result<Stats, StoreError>;
    async fn record_types(&self, viewer: &Viewer) -> Result<Vec<(String, u64)>, StoreError>;
    async fn templates(&self, f: &TemplateFilter) -> Result<(u64, Vec<Box<RawValue>>), StoreError>;
    /// Delete a record by DID; true if it existed.
    async fn delete(&self, did: &str) -> Result<bool, StoreError>;
    /// All records in the store, regardless of privacy (tools and tests).
    async fn count_all(&self) -> Result<u64, StoreError>;
    /// Maintenance after a bulk load (import, demo seeding): refresh the
    /// planner's statistics.
    async fn after_bulk_load(&self) -> Result<(), StoreError>;
}
