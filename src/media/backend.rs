//! What the media store needs from where the bytes live: find a published item,
//! and ingest an upload that is hashed as it streams and published atomically
//! (first uploader owns). The local filesystem ([`super::fs`]) is one backend; an
//! object store is another.

use async_trait::async_trait;

use super::item::{Ingested, MediaId, NewMedia, StoredMedia, UploadError};

#[async_trait]
pub trait MediaBackend: Send + Sync {
    /// A published item, or `None` (also for one whose publication never
    /// completed).
    async fn lookup(&self, id: &MediaId) -> std::io::Result<Option<StoredMedia>>;

    /// Start an upload limited to `max_bytes`.
    async fn begin_upload(&self, max_bytes: u64) -> Result<Box<dyn UploadSink>, UploadError>;
}

/// An upload in progress. Dropping it at any point leaves nothing behind.
#[async_trait]
pub trait UploadSink: Send {
    /// Append bytes (over the limit → [`UploadError::TooLarge`]).
    async fn push(&mut self, chunk: &[u8]) -> Result<(), UploadError>;
    /// Bytes received so far.
    fn size(&self) -> u64;
    /// Hash, make durable and publish; returns the item in force afterwards.
    async fn finish(self: Box<Self>, new: NewMedia) -> Result<Ingested, UploadError>;
}
