//! The media store as handlers use it: a backend (local disk today) with the
//! node's upload limit and default access level. Everything content-addressed
//! goes through here; the access rule is [`super::access`].

use std::sync::Arc;

use super::backend::{MediaBackend, UploadSink};
use super::item::{MediaId, StoredMedia, UploadError};
use super::manifest::AccessLevel;

pub struct MediaStore {
    backend: Arc<dyn MediaBackend>,
    max_upload: u64,
    default_access: AccessLevel,
}

impl MediaStore {
    pub fn new(
        backend: Arc<dyn MediaBackend>,
        max_upload: u64,
        default_access: AccessLevel,
    ) -> Self {
        MediaStore {
            backend,
            max_upload,
            default_access,
        }
    }

    /// Bound: the largest upload, bytes.
    pub fn max_upload(&self) -> u64 {
        self.max_upload
    }

    /// The level of items without a manifest.
    pub fn default_access(&self) -> AccessLevel {
        self.default_access
    }

    pub async fn lookup(&self, id: &MediaId) -> std::io::Result<Option<StoredMedia>> {
        self.backend.lookup(id).await
    }

    pub async fn begin_upload(&self) -> Result<Box<dyn UploadSink>, UploadError> {
        self.backend.begin_upload(self.max_upload).await
    }
}
