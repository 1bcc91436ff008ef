//! What the Arweave indexer keeps: creator registrations and organizations (the
//! original's `creatorregistrations` and `organizations` indices), and a ledger of
//! every transaction it has processed — with its height, its block and how it
//! ended (indexed, or skipped and why). The ledger is what makes resuming exact:
//! the resume height is an indexed `MAX` over it and over what the store holds
//! (excluding records pending confirmation), never a sample; transactions
//! already in it are not processed twice; and the ones in the last blocks can be
//! re-checked against the chain and forgotten when a fork drops them.
//!
//! [`IndexerStore::apply`] writes one batch of processed transactions in one
//! database transaction — each transaction's effect (a record, a template, a
//! creator, an organization, a delete) together with its ledger row — so a crash
//! loses nothing that was reported done and repeats nothing visible.
//!
//! Bounds: every listing takes a limit (at most [`MAX_LIST`]); the ledger grows
//! with the chain on disk, never in memory.

use async_trait::async_trait;

use super::StoreError;
use crate::oip::model::{IndexedRecord, IndexedTemplate};

/// Bound: rows any one listing returns.
pub const MAX_LIST: u32 = 1000;

/// The original's status for records published here and not yet seen on chain.
pub const PENDING_STATUS: &str = "pending confirmation in Arweave";

/// A creator as records cite it (`oip.creator`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creator {
    /// `did:arweave:<registration txid>`.
    pub did_tx: String,
    /// `did:arweave:<address>`.
    pub did_address: String,
    pub handle: String,
    /// The RSA modulus, base64url.
    pub public_key: String,
}

/// A creator registration as indexed: who, at which block, and its document.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatorRow {
    pub creator: Creator,
    pub in_block: Option<i64>,
    pub status: Option<String>,
    /// A bootstrap registration (fetched by id, read by position).
    pub bootstrap: bool,
    pub doc: String,
}

/// An organization registration as indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationRow {
    pub did: String,
    pub handle: String,
    /// `did:arweave:<owner address>`.
    pub did_address: String,
    pub in_block: Option<i64>,
    pub doc: String,
}

/// What one transaction did to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Record(IndexedRecord),
    Template(IndexedTemplate),
    Creator(CreatorRow),
    Organization(OrganizationRow),
    /// A delete message (stored as a hidden record) and the record or
    /// organization it removes, already checked to belong to the deleter.
    Delete { message: IndexedRecord, target: Option<String> },
    /// Nothing stored; the reason is kept in the ledger.
    Skipped { reason: String },
}

impl Effect {
    /// The ledger's one-word outcome.
    pub fn outcome(&self) -> String {
        match self {
            Effect::Record(_) => "record".into(),
            Effect::Template(_) => "template".into(),
            Effect::Creator(_) => "creator".into(),
            Effect::Organization(_) => "organization".into(),
            Effect::Delete { .. } => "delete".into(),
            Effect::Skipped { reason } => format!("skipped: {reason}"),
        }
    }
}

/// One processed transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub txid: String,
    pub height: u64,
    /// The block's id when the gateway gave it (fork checks compare it).
    pub block_id: Option<String>,
    /// Fetched by id outside discovery (bootstrap): not part of the resume
    /// height, never forgotten by a fork check.
    pub bootstrap: bool,
    pub effect: Effect,
}

/// A ledger entry, for fork checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub txid: String,
    pub height: u64,
    pub block_id: Option<String>,
}

/// A page of creators or organizations with the index-wide figures the
/// original's `/api/creators` and `/api/organizations` report.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub count: u64,
    /// Highest block of a confirmed entry.
    pub max_block: Option<i64>,
    pub docs: Vec<String>,
}

/// A ledger row as stored (for copying a store: `oipd migrate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub txid: String,
    pub height: u64,
    pub block_id: Option<String>,
    pub outcome: String,
    pub bootstrap: bool,
}

#[async_trait]
pub trait IndexerStore: Send + Sync {
    /// Copy rows in as they are, keeping any already present (`oipd migrate`:
    /// idempotent, so a run can be repeated or resumed).
    async fn copy_in(&self, creators: Vec<CreatorRow>, organizations: Vec<OrganizationRow>, ledger: Vec<LedgerRow>) -> Result<(), StoreError>;
    /// Where discovery resumes: the highest block of anything confirmed that the
    /// store holds (ledger, records, templates, creators, organizations);
    /// records pending confirmation do not count.
    async fn resume_height(&self) -> Result<Option<u64>, StoreError>;
    /// Which of `txids` the ledger already holds.
    async fn seen(&self, txids: Vec<String>) -> Result<Vec<String>, StoreError>;
    /// Write a batch of processed transactions, effects and ledger rows together.
    /// A [`Effect::Skipped`] transaction also removes a record or template
    /// pending confirmation under its DID (published here, never to be confirmed).
    async fn apply(&self, batch: Vec<Processed>) -> Result<(), StoreError>;
    /// Ledger entries at or above `height`, lowest first, at most `limit`.
    async fn ledger_from(&self, height: u64, limit: u32) -> Result<Vec<LedgerEntry>, StoreError>;
    /// A fork dropped these transactions: remove what each stored
    /// (`did:arweave:<txid>` in every table) and its ledger row.
    async fn forget(&self, txids: Vec<String>) -> Result<u64, StoreError>;
    /// Ledger rows in all, and how many were skips.
    async fn ledger_counts(&self) -> Result<(u64, u64), StoreError>;

    /// The indexed creator with this address (`did:arweave:<address>`).
    async fn creator_by_address(&self, did_address: &str) -> Result<Option<Creator>, StoreError>;
    /// Whether an organization other than `except_did` already has this handle.
    async fn org_handle_taken(&self, handle: &str, except_did: &str) -> Result<bool, StoreError>;
    /// Creators, newest block first.
    async fn creators(&self, limit: u32) -> Result<Listing, StoreError>;
    /// Organizations, newest block first.
    async fn organizations(&self, limit: u32) -> Result<Listing, StoreError>;
    /// A template's stored document by its transaction id.
    async fn template_doc(&self, txid: &str) -> Result<Option<String>, StoreError>;
    /// Who created the record, template or organization with this DID
    /// (`did:arweave:<address>`), for delete ownership.
    async fn owner_of(&self, did: &str) -> Result<Option<String>, StoreError>;
}
