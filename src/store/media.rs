//! Media manifests in the store, for media kept in an object store
//! (`media::s3`): one row per published item (its id, the object key its bytes
//! are under, size, time and the manifest JSON in the original's keys), and one
//! row per multipart upload in progress, so uploads left by a dead node can be
//! aborted by any node ([`MediaIndexStore::media_stale_uploads`]). Publication
//! is first-writer-wins on the id, as on disk.
//!
//! Bounds: stale-upload listings take a limit (at most [`MAX_STALE`]).

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

/// Bound: stale uploads one listing returns.
pub const MAX_STALE: u32 = 1000;

/// A published media item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRow {
    /// SHA-256, lowercase hex.
    pub id: String,
    /// The object key of its bytes.
    pub key: String,
    pub size: u64,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
    /// `manifest.json` as text.
    pub manifest: String,
}

#[async_trait]
pub trait MediaIndexStore: Send + Sync {
    async fn media_get(&self, id: &str) -> Result<Option<MediaRow>, StoreError>;
    /// Publish `row` unless its id exists: the row in force afterwards, and
    /// whether it is ours.
    async fn media_publish(&self, row: MediaRow) -> Result<(MediaRow, bool), StoreError>;
    /// A multipart upload started (`upload_id` into `key`).
    async fn media_upload_started(&self, upload_id: &str, key: &str) -> Result<(), StoreError>;
    /// It was completed and published, or aborted.
    async fn media_upload_ended(&self, upload_id: &str) -> Result<(), StoreError>;
    /// Uploads started more than `age` ago and still not ended, with whether
    /// their key was published after all: `(upload_id, key, published)`.
    async fn media_stale_uploads(&self, age: Duration, limit: u32) -> Result<Vec<(String, String, bool)>, StoreError>;
}
