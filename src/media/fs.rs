//! The local-filesystem media backend: `<data-dir>/media/<sha256>/`.
//!
//! Ingest: an upload streams into a temp file under `media/temp/` while SHA-256 is
//! computed; nothing holds the whole file. At the end the temp file is fsynced, the
//! id is the hex digest, and the item is published with no-clobber renames:
//! 1. `manifest.json` is created only if absent (temp + fsync + `renameat2`
//!    NOREPLACE): the first uploader of some bytes owns them, and a re-upload
//!    never changes owner or access level;
//! 2. `original` is then published the same way: this is the commit point; a
//!    manifest without an `original` (a crash in between) is not served.
//!
//! A dropped upload (client abort, error, limit) drops its temp file, which deletes
//! it. Each live upload holds an `flock` on its temp file; at startup every temp
//! file nobody holds (left by a crash or `kill -9`) is removed.
//!
//! Bounds: [`UPLOAD_BUFFER`] bytes buffered per upload between disk writes; the
//! size limit is checked before bytes are buffered.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use async_trait::async_trait;

use super::backend::{MediaBackend, UploadSink};
use super::item::{Ingested, MediaId, NewMedia, StoredMedia, UploadError};
use super::manifest::{Manifest, MAX_MANIFEST_BYTES};
use crate::http::source::LocalFile;

/// Bound: bytes of an upload buffered in memory between writes to its temp file.
pub const UPLOAD_BUFFER: usize = 256 * 1024;

pub struct LocalMedia {
    root: PathBuf,
    temp: PathBuf,
}

impl LocalMedia {
    /// Open (creating) the store at `root` (`<data-dir>/media`) and sweep the temp files of dead uploads.
    pub fn open(root: PathBuf) -> io::Result<Self> {
        let temp = root.join("temp");
        fs::create_dir_all(&temp)?;
        let store = LocalMedia { root, temp };
        store.sweep_dead_temps();
        Ok(store)
    }

    /// Remove temp files no live upload holds. Every upload keeps an exclusive
    /// `flock` on its temp file for its whole life (released by the kernel when
    /// the process dies), so what can be locked here belongs to a crashed or
    /// killed process — even one that died a second ago — while uploads of other
    /// processes sharing the directory are left alone.
    fn sweep_dead_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.temp) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().starts_with("upload_") {
                continue;
            }
            if let Ok(f) = File::open(e.path()) {
                if f.try_lock().is_ok() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// Find an item. `Ok(None)` when it has no published `original`.
    pub fn lookup(&self, id: &MediaId) -> io::Result<Option<StoredMedia>> {
        lookup_in(&self.root, id)
    }

    /// Start an upload of at most `limit` bytes: a temp file and a running hash.
    pub fn begin_upload(&self, limit: u64) -> io::Result<Upload> {
        let tmp = tempfile::Builder::new()
            .prefix("upload_")
            .tempfile_in(&self.temp)?;
        tmp.as_file().lock()?; // marks it live for `sweep_dead_temps` of any process
        Ok(Upload {
            tmp,
            hasher: Sha256::new(),
            size: 0,
            limit,
            root: self.root.clone(),
        })
    }
}

fn lookup_in(root: &Path, id: &MediaId) -> io::Result<Option<StoredMedia>> {
    let dir = root.join(id.as_str());
    let path = dir.join("original");
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    Ok(Some(StoredMedia {
        size: meta.len(),
        modified: meta.modified().ok(),
        source: std::sync::Arc::new(LocalFile::new(file)),
        manifest: read_manifest(&dir),
    }))
}

#[async_trait]
impl MediaBackend for LocalMedia {
    async fn lookup(&self, id: &MediaId) -> io::Result<Option<StoredMedia>> {
        let (root, id) = (self.root.clone(), id.clone());
        crate::memory::track::spawn_blocking(move || lookup_in(&root, &id))
            .await
            .map_err(io::Error::other)?
    }

    async fn begin_upload(&self, max_bytes: u64) -> Result<Box<dyn UploadSink>, UploadError> {
        let up = LocalMedia::begin_upload(self, max_bytes)?;
        Ok(Box::new(AsyncUpload::new(up)))
    }
}

/// The manifest of an item: `None` only when there is none (old data dirs). One
/// that exists but cannot be read or parsed fails closed: private, owned by
/// nobody — never the configured default, which may be public.
fn read_manifest(dir: &Path) -> Option<Manifest> {
    let f = match File::open(dir.join("manifest.json")) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(_) => return Some(Manifest::unreadable()),
    };
    let mut buf = Vec::new();
    if f.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut buf)
        .is_err()
        || buf.len() as u64 > MAX_MANIFEST_BYTES
    {
        return Some(Manifest::unreadable());
    }
    Some(serde_json::from_slice(&buf).unwrap_or_else(|_| Manifest::unreadable()))
}

/// An upload in progress (blocking I/O; see [`AsyncUpload`] for handlers).
pub struct Upload {
    tmp: NamedTempFile,
    hasher: Sha256,
    size: u64,
    limit: u64,
    root: PathBuf,
}

impl Upload {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), UploadError> {
        if self.size + data.len() as u64 > self.limit {
            return Err(UploadError::TooLarge { limit: self.limit });
        }
        self.tmp.write_all(data)?;
        self.hasher.update(data);
        self.size += data.len() as u64;
        Ok(())
    }

    /// Hash, fsync and publish. Returns the item in force afterwards. On failure
    /// nothing of this upload stays: not its temp file, not a manifest it wrote,
    /// not an item directory it created.
    pub fn finish(self, new: NewMedia) -> Result<Ingested, UploadError> {
        let Upload {
            tmp,
            hasher,
            size,
            root,
            ..
        } = self;
        tmp.as_file().sync_all()?;
        let id = hex::encode(hasher.finalize());
        let dir = root.join(&id);
        fs::create_dir_all(&dir)?;
        let original = dir.join("original");
        if original.exists() {
            // Known bytes: the existing item stands as it is (even without a manifest).
            return Ok(Ingested {
                manifest: read_manifest(&dir),
                media_id: id,
                created: false,
            });
        }
        let mut wrote_manifest = false;
        let published = publish(tmp, new, size, &id, &dir, &mut wrote_manifest);
        if published.is_err() {
            if wrote_manifest && !original.exists() {
                let _ = fs::remove_file(dir.join("manifest.json"));
            }
            let _ = fs::remove_dir(&dir); // only if empty
        }
        let created = published?;
        Ok(Ingested {
            manifest: read_manifest(&dir),
            media_id: id,
            created,
        })
    }
}

/// The commit steps of [`Upload::finish`]: manifest first (no-clobber), then
/// `original` (the commit point), then the directory entry made durable.
fn publish(
    tmp: NamedTempFile,
    new: NewMedia,
    size: u64,
    id: &str,
    dir: &Path,
    wrote_manifest: &mut bool,
) -> Result<bool, UploadError> {
    let manifest = new.into_manifest(id, size);
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    let mut mtmp = tempfile::Builder::new()
        .prefix(".manifest_")
        .tempfile_in(dir)?;
    mtmp.write_all(&json)?; // an ENOSPC here stays an ENOSPC (→ 507)
    mtmp.as_file().sync_all()?;
    let mut created = match mtmp.persist_noclobber(dir.join("manifest.json")) {
        Ok(_) => {
            *wrote_manifest = true;
            true
        }
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(e.error.into()),
    };
    match tmp.persist_noclobber(dir.join("original")) {
        Ok(_) => {}
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => created = false,
        Err(e) => return Err(e.error.into()),
    }
    File::open(dir)?.sync_all()?;
    Ok(created)
}

/// An [`Upload`] driven from async code: chunks are buffered up to
/// [`UPLOAD_BUFFER`] and written on the blocking pool. Dropping it at any await
/// point deletes the temp file (once a running write returns).
pub struct AsyncUpload {
    inner: Option<Upload>,
    buf: BytesMut,
    limit: u64,
}

#[async_trait]
impl UploadSink for AsyncUpload {
    async fn push(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        AsyncUpload::push(self, chunk).await
    }

    fn size(&self) -> u64 {
        AsyncUpload::size(self)
    }

    async fn finish(self: Box<Self>, new: NewMedia) -> Result<Ingested, UploadError> {
        AsyncUpload::finish(*self, new).await
    }
}

impl AsyncUpload {
    pub fn new(up: Upload) -> Self {
        let limit = up.limit;
        AsyncUpload {
            inner: Some(up),
            buf: BytesMut::new(),
            limit,
        }
    }

    fn written(&self) -> u64 {
        self.inner.as_ref().map_or(0, Upload::size)
    }

    pub async fn push(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        if self.written() + (self.buf.len() + chunk.len()) as u64 > self.limit {
            return Err(UploadError::TooLarge { limit: self.limit });
        }
        self.buf.extend_from_slice(chunk);
        if self.buf.len() >= UPLOAD_BUFFER {
            self.flush().await?;
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.written() + self.buf.len() as u64
    }

    async fn flush(&mut self) -> Result<(), UploadError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = self.buf.split().freeze();
        let mut up = self
            .inner
            .take()
            .ok_or_else(|| UploadError::Io(io::Error::other("upload already failed")))?;
        let (up, res) = crate::memory::track::spawn_blocking(move || {
            let r = up.write(&data);
            (up, r)
        })
        .await
        .map_err(|e| UploadError::Io(io::Error::other(e)))?;
        self.inner = Some(up);
        res
    }

    pub async fn finish(mut self, new: NewMedia) -> Result<Ingested, UploadError> {
        self.flush().await?;
        let up = self
            .inner
            .take()
            .ok_or_else(|| UploadError::Io(io::Error::other("upload already failed")))?;
        crate::memory::track::spawn_blocking(move || up.finish(new))
            .await
            .map_err(|e| UploadError::Io(io::Error::other(e)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::manifest::AccessLevel;

    fn new_media(owner: &str, access: AccessLevel) -> NewMedia {
        NewMedia {
            original_name: "a.bin".into(),
            mime_type: "application/octet-stream".into(),
            owner: owner.into(),
            access,
            url_base: "http://x/api/media/".into(),
        }
    }

    #[test]
    fn first_uploader_owns() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalMedia::open(tmp.path().join("media")).unwrap();
        let mut up = store.begin_upload(1 << 20).unwrap();
        up.write(b"hello").unwrap();
        let a = up.finish(new_media("alice", AccessLevel::Private)).unwrap();
        assert!(a.created);
        assert_eq!(a.media_id, hex::encode(Sha256::digest(b"hello")));

        let mut up = store.begin_upload(1 << 20).unwrap();
        up.write(b"hel").unwrap();
        up.write(b"lo").unwrap();
        let b = up
            .finish(new_media("mallory", AccessLevel::Public))
            .unwrap();
        assert!(!b.created);
        let m = b.manifest.unwrap();
        assert_eq!(m.user_public_key.as_deref(), Some("alice"));
        assert_eq!(m.access(AccessLevel::Public), AccessLevel::Private);
        // no temp files left behind
        assert_eq!(
            fs::read_dir(tmp.path().join("media/temp")).unwrap().count(),
            0
        );
        let found = store
            .lookup(&MediaId::parse(&a.media_id).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(found.size, 5);
    }

    #[test]
    fn limit_and_drop_clean_up() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalMedia::open(tmp.path().join("media")).unwrap();
        let mut up = store.begin_upload(4).unwrap();
        assert!(matches!(
            up.write(b"hello"),
            Err(UploadError::TooLarge { limit: 4 })
        ));
        drop(up);
        assert_eq!(
            fs::read_dir(tmp.path().join("media/temp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn manifest_without_original_is_not_served_and_is_completed_by_reupload() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalMedia::open(tmp.path().join("media")).unwrap();
        let id = hex::encode(Sha256::digest(b"data"));
        let dir = tmp.path().join("media").join(&id);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("manifest.json"),
            r#"{"mediaId":"x","userPublicKey":"alice","accessLevel":"public"}"#,
        )
        .unwrap();
        assert!(store
            .lookup(&MediaId::parse(&id).unwrap())
            .unwrap()
            .is_none());
        let mut up = store.begin_upload(1 << 20).unwrap();
        up.write(b"data").unwrap();
        let r = up.finish(new_media("bob", AccessLevel::Private)).unwrap();
        assert_eq!(
            r.manifest.unwrap().user_public_key.as_deref(),
            Some("alice")
        );
        assert!(store
            .lookup(&MediaId::parse(&id).unwrap())
            .unwrap()
            .is_some());
    }
}
