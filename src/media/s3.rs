//! The S3-compatible object-store media backend (`--media-store s3://bucket/prefix`;
//! endpoint, region and credentials from the standard AWS variables:
//! `AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). Works with AWS S3, Garage,
//! MinIO, Ceph RGW: path-style requests when an endpoint is given, SigV4
//! presigned by `rusty-s3`, sent through the [`OutboundClient`].
//!
//! Ingest: an upload is a multipart upload to a fresh key
//! (`<prefix>/objects/<random>`) while SHA-256 is computed; it is recorded in
//! the store (`media_uploads`) when it starts. At the end it is completed and
//! the item published by inserting its manifest row into the store
//! ([`crate::store::media`]) — the commit point: nothing is visible under its
//! `mediaId` before. The first uploader owns (the id's row exists → our object
//! is deleted and the existing manifest is answered). A dropped upload (client
//! abort, error, limit) aborts its multipart upload; uploads left by a dead node
//! are aborted by [`S3Media::sweep`] (every node runs it periodically).
//!
//! Serving: lookups read the manifest row only (size, time, manifest: enough
//! for every validator and conditional); bytes come from [`S3Object`], whose
//! ranges are ranged GETs streamed chunk by chunk.
//!
//! Bounds: [`PART_BYTES`] buffered per upload (S3's smallest part; S3 allows
//! [`MAX_PARTS`] parts, 50 GB, far above `--upload-max-bytes`), at most
//! [`UPLOADS`] uploads at once (`s3_upload_buffers` in `/api/health/memory`;
//! past it 503 + `Retry-After`), so at most 80 MiB of part buffers; each ranged GET
//! holds one slot of the outbound client (per-host bound) and one chunk in flight.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::Method;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use sha2::{Digest, Sha256};

use super::backend::{MediaBackend, UploadSink};
use super::item::{Ingested, MediaId, NewMedia, StoredMedia, UploadError};
use super::manifest::Manifest;
use crate::clients::OutboundClient;
use crate::http::source::{ByteSource, ChunkStream};
use crate::store::media::{MediaIndexStore, MediaRow};

/// Bound: bytes of an upload buffered before they are sent as one part (5 MiB,
/// the smallest part S3 accepts).
pub const PART_BYTES: usize = 5 * 1024 * 1024;
/// S3's most parts per upload.
pub const MAX_PARTS: u64 = 10_000;

/// Uploads (each with its part buffer) at once.
pub const UPLOADS: usize = 16;
/// How long a presigned request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(3600);
/// Time allowed one control request (create, part, complete, abort, HEAD).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(120);
/// Time allowed one ranged GET body (a slow client reads slowly).
const BODY_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// An upload recorded this long ago and never ended belongs to a dead node.
pub const STALE_UPLOAD: Duration = Duration::from_secs(24 * 3600);

/// A parsed `--media-store s3://bucket/prefix` with the AWS variables.
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix without a trailing `/` (may be empty).
    pub prefix: String,
    pub endpoint: String,
    pub region: String,
    pub path_style: bool,
    credentials: Credentials,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the secret
        f.debug_struct("S3Config").field("bucket", &self.bucket).field("prefix", &self.prefix).field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl S3Config {
    /// `s3://bucket[/prefix]`, with `env` giving the AWS variables.
    pub fn parse(url: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let rest = url.trim().strip_prefix("s3://").ok_or_else(|| format!("--media-store {url:?}: expected s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
            return Err(format!("--media-store {url:?}: not a bucket name"));
        }
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
        let (endpoint, path_style) = match var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")) {
            Some(e) => (e, true),
            None => (format!("https://s3.{region}.amazonaws.com"), false),
        };
        let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) else {
            return Err("--media-store s3://: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into());
        };
        let credentials = match var("AWS_SESSION_TOKEN") {
            Some(t) => Credentials::new_with_token(key, secret, t),
            None => Credentials::new(key, secret),
        };
        Ok(S3Config { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned(), endpoint, region, path_style, credentials })
    }
}

struct Inner {
    bucket: Bucket,
    credentials: Credentials,
    client: OutboundClient,
    prefix: String,
    index: Arc<dyn MediaIndexStore>,
}

/// The object-store media backend.
pub struct S3Media {
    inner: Arc<Inner>,
    /// One per upload in progress: its part buffer.
    uploads: crate::limits::Permits,
}

impl crate::limits::BoundSource for S3Media {
    fn report(&self, out: &mut Vec<crate::limits::BoundReport>) {
        self.uploads.report(out);
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> UploadError {
    UploadError::Unavailable(format!("{what}: {e}"))
}

impl Inner {
    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// Send a presigned request; non-2xx → the status and S3's error code.
    async fn send(&self, method: Method, url: reqwest::Url, body: Option<Bytes>, timeout: Duration) -> Result<crate::clients::Response, String> {
        let mut b = self.client.builder(method, url.as_str()).map_err(|e| e.to_string())?.timeout(timeout);
        if let Some(body) = body {
            b = b.header("content-length", body.len()).body(body);
        }
        let r = self.client.send(b).await.map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            let status = r.status();
            let text = r.bytes_limited(Some(4096)).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            let code = text.split("<Code>").nth(1).and_then(|t| t.split("</Code>").next()).unwrap_or("");
            return Err(format!("{status} {code}").trim().to_owned());
        }
        Ok(r)
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let url = self.bucket.abort_multipart_upload(Some(&self.credentials), key, upload_id).sign(SIGNED_FOR);
        match self.send(Method::DELETE, url, None, CONTROL_TIMEOUT).await {
            // gone from the bucket: forget it
            Ok(_) => {
                let _ = self.index.media_upload_ended(upload_id).await;
            }
            Err(e) if e.contains("NoSuchUpload") => {
                let _ = self.index.media_upload_ended(upload_id).await;
            }
            // still in the bucket: its row stays, so the sweep aborts it later
            Err(e) => tracing::warn!(upload_id, error = %e, "aborting a multipart upload failed; the sweep retries it"),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), String> {
        let url = self.bucket.delete_object(Some(&self.credentials), key).sign(SIGNED_FOR);
        self.send(Method::DELETE, url, None, CONTROL_TIMEOUT).await.map(drop)
    }
}

impl S3Media {
    /// Check the bucket (one HEAD) and build the backend. A missing bucket or
    /// refused credentials fail with one line saying which.
    pub async fn open(cfg: &S3Config, client: OutboundClient, index: Arc<dyn MediaIndexStore>) -> Result<Self, String> {
        let s = Self::new(cfg, client, index)?;
        s.check(cfg).await?;
        Ok(s)
    }

    /// The backend, without touching the network.
    pub fn new(cfg: &S3Config, client: OutboundClient, index: Arc<dyn MediaIndexStore>) -> Result<Self, String> {
        let endpoint: reqwest::Url = cfg.endpoint.parse().map_err(|e| format!("AWS_ENDPOINT_URL {:?}: {e}", cfg.endpoint))?;
        let style = if cfg.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(endpoint, style, cfg.bucket.clone(), cfg.region.clone()).map_err(|e| format!("bucket {}: {e}", cfg.bucket))?;
        let inner = Inner { bucket, credentials: cfg.credentials.clone(), client, prefix: cfg.prefix.clone(), index };
        let uploads = crate::limits::Permits::new("s3_upload_buffers", "uploads", "const media::s3::UPLOADS (each buffers media::s3::PART_BYTES)", UPLOADS, 2);
        Ok(S3Media { inner: Arc::new(inner), uploads })
    }

    /// One HEAD of the bucket: a missing bucket or refused credentials → one line saying which.
    pub async fn check(&self, cfg: &S3Config) -> Result<(), String> {
        let inner = &self.inner;
        let url = inner.bucket.head_bucket(Some(&inner.credentials)).sign(SIGNED_FOR);
        match inner.send(Method::HEAD, url, None, CONTROL_TIMEOUT).await {
            Ok(_) => {}
            Err(e) if e.starts_with("404") => return Err(format!("media store: bucket {:?} does not exist at {}", cfg.bucket, cfg.endpoint)),
            Err(e) if e.starts_with("403") || e.starts_with("401") => {
                return Err(format!("media store: access to bucket {:?} at {} was refused ({e}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY", cfg.bucket, cfg.endpoint))
            }
            Err(e) => return Err(format!("media store: bucket {:?} at {}: {e}", cfg.bucket, cfg.endpoint)),
        }
        Ok(())
    }

    /// Start a multipart upload of at most `max_bytes`, recorded in the store.
    async fn start(&self, max_bytes: u64) -> Result<S3Upload, UploadError> {
        let permit = self.uploads.try_acquire()?;
        let inner = &self.inner;
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).map_err(|e| UploadError::Io(std::io::Error::other(e.to_string())))?;
        let key = inner.key(&format!("objects/{}", hex::encode(name)));
        let action = inner.bucket.create_multipart_upload(Some(&inner.credentials), &key);
        let url = action.sign(SIGNED_FOR);
        let r = inner.send(Method::POST, url, None, CONTROL_TIMEOUT).await.map_err(|e| unavailable("starting the upload", e))?;
        let text = r.bytes_limited(Some(64 * 1024)).await.map_err(|e| unavailable("starting the upload", e))?;
        let created = rusty_s3::actions::CreateMultipartUpload::parse_response(&String::from_utf8_lossy(&text)).map_err(|e| unavailable("starting the upload", e))?;
        let upload_id = created.upload_id().to_owned();
        let upload = S3Upload {
            inner: inner.clone(),
            key,
            upload_id,
            limit: max_bytes,
            size: 0,
            hasher: Sha256::new(),
            buf: BytesMut::new(),
            etags: Vec::new(),
            open: true,
            _permit: permit,
        };
        if let Err(e) = inner.index.media_upload_started(&upload.upload_id, &upload.key).await {
            return Err(unavailable("recording the upload", e)); // dropped: aborted
        }
        Ok(upload)
    }

    /// Copy in a local item (`oipd migrate`): nothing when its id is published
    /// already; else its bytes are uploaded while hashed, and published with
    /// `manifest` only when they hash to `id`.
    pub async fn import_file(&self, id: &MediaId, original: &std::path::Path, manifest: String) -> Result<Imported, UploadError> {
        use tokio::io::AsyncReadExt;
        if self.inner.index.media_get(id.as_str()).await.map_err(|e| unavailable("reading the manifests", e))?.is_some() {
            return Ok(Imported::Present);
        }
        let mut f = tokio::fs::File::open(original).await?;
        let mut up = self.start(u64::MAX).await?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            up.push(&buf[..n]).await?;
        }
        let got = up.complete().await?;
        if got != id.as_str() {
            let _ = self.inner.delete(&up.key).await;
            up.inner.abort(&up.key, &up.upload_id).await;
            up.open = false;
            return Ok(Imported::HashMismatch(got));
        }
        let size = up.size;
        up.publish(&got, manifest).await?;
        Ok(Imported::Copied(size))
    }

    /// Abort the multipart uploads recorded more than `age` ago and never ended
    /// (their node died), and delete objects completed but never published.
    /// Returns how many were cleaned.
    pub async fn sweep(&self, age: Duration) -> Result<usize, String> {
        let stale = self.inner.index.media_stale_uploads(age, crate::store::media::MAX_STALE).await.map_err(|e| e.to_string())?;
        let n = stale.len();
        for (upload_id, key, published) in stale {
            if !published {
                self.inner.abort(&key, &upload_id).await;
                // completed but not published (a crash in between): the object goes too
                let _ = self.inner.delete(&key).await;
            }
            self.inner.index.media_upload_ended(&upload_id).await.map_err(|e| e.to_string())?;
        }
        Ok(n)
    }
}

#[async_trait]
impl MediaBackend for S3Media {
    async fn lookup(&self, id: &MediaId) -> std::io::Result<Option<StoredMedia>> {
        let row = self.inner.index.media_get(id.as_str()).await.map_err(std::io::Error::other)?;
        Ok(row.map(|row| {
            let manifest = serde_json::from_str::<Manifest>(&row.manifest).unwrap_or_else(|_| Manifest::unreadable());
            StoredMedia {
                source: Arc::new(S3Object { inner: self.inner.clone(), key: row.key }),
                size: row.size,
                modified: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(row.created_ms.max(0) as u64)),
                manifest: Some(manifest),
            }
        }))
    }

    async fn begin_upload(&self, max_bytes: u64) -> Result<Box<dyn UploadSink>, UploadError> {
        Ok(Box::new(self.start(max_bytes).await?))
    }
}

/// What [`S3Media::import_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Uploaded and published (bytes).
    Copied(u64),
    /// Published already: nothing done.
    Present,
    /// The bytes hash to this, not to their id: nothing published.
    HashMismatch(String),
}

/// An upload in progress; dropped unfinished, its multipart upload is aborted.
struct S3Upload {
    inner: Arc<Inner>,
    key: String,
    upload_id: String,
    limit: u64,
    size: u64,
    hasher: Sha256,
    buf: BytesMut,
    etags: Vec<String>,
    /// Still to be aborted if dropped.
    open: bool,
    /// Its place among [`UPLOADS`].
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl S3Upload {
    async fn send_part(&mut self, part: Bytes) -> Result<(), UploadError> {
        let n = self.etags.len() as u16 + 1;
        let url = self.inner.bucket.upload_part(Some(&self.inner.credentials), &self.key, n, &self.upload_id).sign(SIGNED_FOR);
        let r = self.inner.send(Method::PUT, url, Some(part), CONTROL_TIMEOUT).await.map_err(|e| unavailable("uploading a part", e))?;
        let etag = r.headers().get("etag").and_then(|v| v.to_str().ok()).ok_or_else(|| unavailable("uploading a part", "no ETag"))?.to_owned();
        self.etags.push(etag);
        Ok(())
    }
}

#[async_trait]
impl UploadSink for S3Upload {
    async fn push(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        if self.size + chunk.len() as u64 > self.limit {
            return Err(UploadError::TooLarge { limit: self.limit });
        }
        self.size += chunk.len() as u64;
        self.hasher.update(chunk);
        self.buf.extend_from_slice(chunk);
        while self.buf.len() >= PART_BYTES {
            let part = self.buf.split_to(PART_BYTES).freeze();
            self.send_part(part).await?;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn finish(self: Box<Self>, new: NewMedia) -> Result<Ingested, UploadError> {
        let mut this = *self;
        let id = this.complete().await?;
        let manifest = new.into_manifest(&id, this.size);
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| UploadError::Io(std::io::Error::other(e)))?;
        let (row, created) = this.publish(&id, text).await?;
        let manifest = if created { Some(manifest) } else { serde_json::from_str(&row.manifest).ok() };
        Ok(Ingested { media_id: id, manifest, created })
    }
}

impl S3Upload {
    /// Send the last part and complete the upload: the object exists (not yet
    /// published). Returns the bytes' SHA-256, hex.
    async fn complete(&mut self) -> Result<String, UploadError> {
        if !self.buf.is_empty() || self.etags.is_empty() {
            let last = std::mem::take(&mut self.buf).freeze();
            self.send_part(last).await?;
        }
        let action = self.inner.bucket.complete_multipart_upload(Some(&self.inner.credentials), &self.key, &self.upload_id, self.etags.iter().map(String::as_str));
        let url = action.sign(SIGNED_FOR);
        let body = Bytes::from(action.body());
        let r = self.inner.send(Method::POST, url, Some(body), CONTROL_TIMEOUT).await.map_err(|e| unavailable("completing the upload", e))?;
        // S3 may answer 200 with an error document
        let text = r.bytes_limited(Some(64 * 1024)).await.map_err(|e| unavailable("completing the upload", e))?;
        if String::from_utf8_lossy(&text).contains("<Error>") {
            return Err(unavailable("completing the upload", "the object store answered an error"));
        }
        Ok(hex::encode(std::mem::take(&mut self.hasher).finalize()))
    }

    /// Publish the completed object under `id` with `manifest` (the commit
    /// point): the row in force, and whether it is ours. Not ours (the bytes were
    /// there first) or not published: our object is deleted.
    async fn publish(mut self, id: &str, manifest: String) -> Result<(MediaRow, bool), UploadError> {
        let row = MediaRow { id: id.to_owned(), key: self.key.clone(), size: self.size, created_ms: crate::store::gun::now_ms(), manifest };
        self.open = false;
        let published = self.inner.index.media_publish(row).await;
        let (row, created) = match published {
            Ok(r) => r,
            Err(e) => {
                let _ = self.inner.delete(&self.key).await;
                self.inner.abort(&self.key, &self.upload_id).await;
                return Err(unavailable("publishing the upload", e));
            }
        };
        if !created {
            let _ = self.inner.delete(&self.key).await;
        }
        let _ = self.inner.index.media_upload_ended(&self.upload_id).await;
        Ok((row, created))
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let (inner, key, id) = (self.inner.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.upload_id));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { inner.abort(&key, &id).await });
        }
    }
}

/// An object's bytes: each range one ranged GET, streamed.
pub struct S3Object {
    inner: Arc<Inner>,
    key: String,
}

enum Get {
    Start,
    Body(crate::clients::BodyStream),
    Done,
}

impl ByteSource for S3Object {
    fn range(&self, offset: u64, len: u64) -> ChunkStream {
        let (inner, key) = (self.inner.clone(), self.key.clone());
        Box::pin(futures_util::stream::unfold(Get::Start, move |state| {
            let (inner, key) = (inner.clone(), key.clone());
            async move {
                let mut body = match state {
                    Get::Done => return None,
                    Get::Start if len == 0 => return None,
                    Get::Start => {
                        let url = inner.bucket.get_object(Some(&inner.credentials), &key).sign(SIGNED_FOR);
                        let b = match inner.client.builder(Method::GET, url.as_str()) {
                            Ok(b) => b.timeout(BODY_TIMEOUT).header("range", format!("bytes={}-{}", offset, offset + len - 1)),
                            Err(e) => return Some((Err(std::io::Error::other(e.to_string())), Get::Done)),
                        };
                        match inner.client.send(b).await {
                            Ok(r) if r.status().as_u16() == 206 || (r.status().as_u16() == 200 && offset == 0) => r.stream_limited(len),
                            Ok(r) => return Some((Err(std::io::Error::other(format!("object store: GET answered {}", r.status()))), Get::Done)),
                            Err(e) => return Some((Err(std::io::Error::other(format!("object store: {e}"))), Get::Done)),
                        }
                    }
                    Get::Body(b) => b,
                };
                match body.next().await {
                    Some(Ok(chunk)) => Some((Ok(chunk), Get::Body(body))),
                    Some(Err(e)) => Some((Err(std::io::Error::other(e.to_string())), Get::Done)),
                    None => None,
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let creds: &[(&str, &str)] = &[("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "topsecret"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")];
        let c = S3Config::parse("s3://media/oipd/node/", env(creds)).unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str(), c.path_style, c.region.as_str()), ("media", "oipd/node", true, "us-east-1"));
        assert!(!format!("{c:?}").contains("topsecret"));
        let c = S3Config::parse("s3://b", env(&[("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_REGION", "eu-west-1")])).unwrap();
        assert_eq!((c.endpoint.as_str(), c.path_style), ("https://s3.eu-west-1.amazonaws.com", false));
        assert!(S3Config::parse("s3://b", env(&[])).unwrap_err().contains("AWS_ACCESS_KEY_ID"));
        assert!(S3Config::parse("s3:///x", env(creds)).is_err());
        assert!(S3Config::parse("http://b", env(creds)).is_err());
    }
}
