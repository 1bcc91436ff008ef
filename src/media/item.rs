//! The vocabulary of the media store, shared by its backends: ids, what an upload
//! is told and produces, what a lookup finds, and the errors.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use super::manifest::{AccessLevel, Manifest};
use crate::http::source::ByteSource;

/// A validated media id: 64 lowercase hex characters (SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaId(String);

impl MediaId {
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| MediaId(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("File too large")]
    TooLarge { limit: u64 },
    #[error("no space left on the data directory's filesystem")]
    NoSpace,
    #[error("upload I/O: {0}")]
    Io(io::Error),
    /// The object store failed or could not be reached; nothing was published.
    #[error("the media object store is unavailable: {0}")]
    Unavailable(String),
    /// Every upload buffer of the backend is in use: try again shortly.
    #[error(transparent)]
    Busy(#[from] crate::limits::Overloaded),
}

impl From<io::Error> for UploadError {
    fn from(e: io::Error) -> Self {
        if is_no_space(&e) {
            UploadError::NoSpace
        } else {
            UploadError::Io(e)
        }
    }
}

/// ENOSPC or EDQUOT, judged by kind: errors wrapped with a path (as `tempfile`
/// wraps them) no longer carry the raw OS code.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// An item found in the store: its bytes (readable by range), their size and
/// modification time, and its manifest.
pub struct StoredMedia {
    pub source: Arc<dyn ByteSource>,
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// `None` for items without a (readable) manifest: old data dirs.
    pub manifest: Option<Manifest>,
}

/// What a finished upload produced.
#[derive(Debug)]
pub struct Ingested {
    pub media_id: String,
    /// The manifest in force (ours if we created the item, else the existing one).
    pub manifest: Option<Manifest>,
    /// Whether this upload created the item.
    pub created: bool,
}

/// Facts about a new upload that only the caller knows.
pub struct NewMedia {
    pub original_name: String,
    pub mime_type: String,
    pub owner: String,
    pub access: AccessLevel,
    /// `httpUrl` prefix; the media id is appended.
    pub url_base: String,
}

impl NewMedia {
    /// The manifest of the finished upload `media_id` of `size` bytes (every
    /// media backend writes this one).
    pub fn into_manifest(self, media_id: &str, size: u64) -> Manifest {
        Manifest {
            media_id: media_id.to_owned(),
            original_name: self.original_name,
            mime_type: self.mime_type,
            file_size: size,
            magnet_uri: String::new(),
            info_hash: String::new(),
            http_url: format!("{}{}", self.url_base, media_id),
            created_at: crate::civil::iso_now(),
            user_public_key: Some(self.owner),
            access_level: Some(self.access.as_str().to_owned()),
            extra: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(MediaId::parse(&"a".repeat(64)).is_some());
        assert_eq!(
            MediaId::parse(&"A".repeat(64)).unwrap().as_str(),
            "a".repeat(64)
        );
        assert!(MediaId::parse(&"a".repeat(63)).is_none());
        assert!(MediaId::parse(&"g".repeat(64)).is_none());
        assert!(MediaId::parse(&format!("../{}", "a".repeat(61))).is_none());
    }
}
