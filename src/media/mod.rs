//! The content-addressed media store (`<data-dir>/media/<sha256>/original` +
//! `manifest.json`, the original node's layout): streaming ingest that hashes as it
//! writes, atomic publication, first-writer-owns manifests, lookups and the access
//! rule — over a [`backend::MediaBackend`] (the local filesystem: [`fs`]; an
//! S3-compatible object store with manifests in the store: [`s3`]).

pub mod access;
pub mod backend;
pub mod fs;
pub mod item;
pub mod manifest;
pub mod s3;
pub mod store;
pub mod webcopy;

pub use item::{Ingested, MediaId, NewMedia, StoredMedia, UploadError};
pub use manifest::{AccessLevel, Manifest};
pub use store::MediaStore;
