//! `manifest.json` of a content-addressed media item, with the original node's keys
//! (so existing data dirs read as they are and the original can read ours), and the
//! access levels it governs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bound: a manifest larger than this is treated as unreadable (it is a few hundred
/// bytes in practice; this keeps a corrupt file from being read into memory).
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    Public,
    Private,
    /// Never public; owner-only until organizations exist (the original served
    /// these to anyone).
    Organization,
}

impl AccessLevel {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "public" => Some(AccessLevel::Public),
            "private" => Some(AccessLevel::Private),
            "organization" => Some(AccessLevel::Organization),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Public => "public",
            AccessLevel::Private => "private",
            AccessLevel::Organization => "organization",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_id: String,
    #[serde(default)]
    pub original_name: String,
    #[serde(default = "octet_stream")]
    pub mime_type: String,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default, rename = "magnetURI")]
    pub magnet_uri: String,
    #[serde(default)]
    pub info_hash: String,
    #[serde(default)]
    pub http_url: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub user_public_key: Option<String>,
    /// Kept as the string on disk; [`Manifest::access`] interprets it.
    #[serde(default)]
    pub access_level: Option<String>,
    /// Keys later endpoints add (`ipfsHash`, `webUrl`, `arweaveTransactionId`, ...),
    /// preserved as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn octet_stream() -> String {
    "application/octet-stream".into()
}

impl Manifest {
    /// Stands in for a manifest that exists but cannot be read: private, no owner.
    pub fn unreadable() -> Self {
        Manifest {
            media_id: String::new(),
            original_name: String::new(),
            mime_type: octet_stream(),
            file_size: 0,
            magnet_uri: String::new(),
            info_hash: String::new(),
            http_url: String::new(),
            created_at: String::new(),
            user_public_key: None,
            access_level: Some("private".into()),
            extra: Default::default(),
        }
    }

    /// The effective access level: only an explicit `"public"` is public; a missing
    /// level takes the configured default; anything unrecognised is private.
    pub fn access(&self, default: AccessLevel) -> AccessLevel {
        match &self.access_level {
            None => default,
            Some(s) => AccessLevel::parse(s).unwrap_or(AccessLevel::Private),
        }
    }
}
