//! The content-addressed media store (`<data-dir>/media/<sha256>/original` +
//! `manifest.json`, the original node's layout): streaming ingest that hashes as it
//! writes, atomic publication, first-writer-owns manifests, and lookups.

pub mod manifest;
pub mod store;

pub use manifest::{AccessLevel, Manifest};
pub use store::{Ingested, MediaId, MediaStore, StoredMedia, Upload, UploadError};
