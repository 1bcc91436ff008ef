//! One file-response machinery for every route that serves stored bytes
//! (`/media/*`, `/api/generate/media/*`, `/api/media/:id`): validators,
//! conditionals, ranges (single and `multipart/byteranges`), HEAD, and the bounded
//! streaming body. Handlers decide *which* representation and *who* may see it;
//! this module decides *how* it goes out. The bytes come from a
//! [`ByteSource`](super::source::ByteSource): a local file ([`FileSpec`], whose
//! ETag is computed and cached here) or any other backend ([`Representation`]).

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use super::body::{Segment, SourceBody};
use super::conditional::{self, Precondition, Validators};
use super::error::HttpError;
use super::etag::{self, ContentHashCache};
use super::open_cache::{OpenFile, OpenFileCache};
use super::range::{self, ByteRange, RangeOutcome};
use super::sendfile::Sendfile;
use super::source::{ByteSource, LocalFile};
use crate::limits::stream::StreamLimiter;
use crate::limits::{BoundReport, BoundSource};

/// A representation from any byte source, with its validators known.
pub struct Representation {
    pub source: Arc<dyn ByteSource>,
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// The strong ETag's opaque part.
    pub etag: String,
    pub content_type: HeaderValue,
    pub cache_control: HeaderValue,
    /// `Vary` for responses that depend on the caller (private media).
    pub vary: Option<HeaderValue>,
}

/// What a handler hands over for a local file: an open file and how to describe it.
pub struct FileSpec {
    pub file: File,
    /// Canonical path, the content-hash cache key (with size and mtime).
    pub path: PathBuf,
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub content_type: HeaderValue,
    pub cache_control: HeaderValue,
    /// The ETag's opaque part when the caller already knows the content hash
    /// (content-addressed media); otherwise it is computed and cached.
    pub etag: Option<String>,
    /// `Vary` for responses that depend on the caller (private media).
    pub vary: Option<HeaderValue>,
}

pub struct FileServer {
    hashes: ContentHashCache,
    open_files: OpenFileCache,
    streams: StreamLimiter,
    max_ranges: usize,
    boundary_seq: AtomicU64,
    boundary_seed: u64,
}

impl FileServer {
    pub fn new(hashes: ContentHashCache, open_files: OpenFileCache, streams: StreamLimiter, max_ranges: usize) -> Self {
        use std::hash::{BuildHasher, RandomState};
        FileServer {
            hashes,
            open_files,
            streams,
            max_ranges,
            boundary_seq: AtomicU64::new(0),
            boundary_seed: RandomState::new().hash_one(std::process::id()),
        }
    }

    pub fn streams(&self) -> &StreamLimiter {
        &self.streams
    }

    pub fn hashes(&self) -> &ContentHashCache {
        &self.hashes
    }

    pub fn open_files(&self) -> &OpenFileCache {
        &self.open_files
    }

    /// A multipart boundary that is unpredictable and unique per response.
    fn boundary(&self) -> String {
        use std::hash::{BuildHasher, RandomState};
        let n = self.boundary_seq.fetch_add(1, Ordering::Relaxed);
        let h = RandomState::new().hash_one((self.boundary_seed, n));
        format!("oipd_{:016x}{:08x}", h, n as u32)
    }

    /// A local file as a [`Representation`], its ETag computed (and cached) from
    /// its content unless the caller knows it.
    pub async fn local(&self, spec: FileSpec) -> Result<Representation, HttpError> {
        let source = LocalFile::new(spec.file);
        let etag = match spec.etag {
            Some(e) => e,
            None => {
                let mtime = spec.modified.unwrap_or(SystemTime::UNIX_EPOCH);
                self.hashes.get_or_compute(&spec.path, source.file(), spec.size, mtime).await?
            }
        };
        Ok(Representation {
            source: Arc::new(source),
            size: spec.size,
            modified: spec.modified,
            etag,
            content_type: spec.content_type,
            cache_control: spec.cache_control,
            vary: spec.vary,
        })
    }

    /// Build the response for a GET or HEAD of a local file.
    pub async fn respond_local(&self, method: &Method, headers: &HeaderMap, spec: FileSpec, sendfile: Option<Sendfile>) -> Result<Response, HttpError> {
        let rep = self.local(spec).await?;
        self.respond(method, headers, rep, sendfile).await
    }

    /// Build the response for a GET or HEAD of `spec`; its file ranges go with
    /// `sendfile` through the connection's queue when there is one (see
    /// [`super::sendfile`]) and the source is a local file.
    pub async fn respond(&self, method: &Method, headers: &HeaderMap, spec: Representation, sendfile: Option<Sendfile>) -> Result<Response, HttpError> {
        let etag_opaque = spec.etag;
        let last_modified = spec.modified.map(conditional::to_http_precision);
        let v = Validators { etag: &etag_opaque, last_modified };

        let mut common = HeaderMap::new();
        common.insert(header::ETAG, hv(&etag::strong(&etag_opaque))?);
        if let Some(lm) = last_modified {
            common.insert(header::LAST_MODIFIED, hv(&httpdate::fmt_http_date(lm))?);
        }
        common.insert(header::CACHE_CONTROL, spec.cache_control);
        if let Some(vary) = spec.vary {
            common.insert(header::VARY, vary);
        }
        self.finish(method, headers, &v, common, spec.source, spec.size, spec.content_type, sendfile).await
    }

    /// [`Self::respond`] for a file of the open-file cache, its header values
    /// prepared once when it was opened.
    pub async fn respond_open(&self, method: &Method, headers: &HeaderMap, file: &OpenFile, cache_control: HeaderValue, sendfile: Option<Sendfile>) -> Result<Response, HttpError> {
        let v = Validators { etag: &file.etag, last_modified: file.modified.map(conditional::to_http_precision) };
        let mut common = HeaderMap::with_capacity(8);
        common.insert(header::ETAG, file.etag_header.clone());
        if let Some(lm) = &file.last_modified_header {
            common.insert(header::LAST_MODIFIED, lm.clone());
        }
        common.insert(header::CACHE_CONTROL, cache_control);
        let source = Arc::new(LocalFile::shared(file.file.clone()));
        self.finish(method, headers, &v, common, source, file.size, file.content_type.clone(), sendfile).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        method: &Method,
        headers: &HeaderMap,
        v: &Validators<'_>,
        mut common: HeaderMap,
        source: Arc<dyn ByteSource>,
        size: u64,
        content_type: HeaderValue,
        sendfile: Option<Sendfile>,
    ) -> Result<Response, HttpError> {
        let spec = Sized_ { source, size, content_type };
        match conditional::evaluate(headers, v) {
            Precondition::Failed => return Err(HttpError::PreconditionFailed),
            Precondition::NotModified => {
                let mut resp = Response::new(Body::empty());
                *resp.status_mut() = StatusCode::NOT_MODIFIED;
                *resp.headers_mut() = common;
                return Ok(resp);
            }
            Precondition::Proceed => {}
        }

        let outcome = match headers.get(header::RANGE) {
            Some(r) if conditional::if_range_allows_partial(headers, v) => {
                range::evaluate(r.as_bytes(), spec.size, self.max_ranges)
            }
            _ => RangeOutcome::Full,
        };

        let (status, segments, content_type) = match outcome {
            RangeOutcome::Unsatisfiable => return Err(HttpError::RangeNotSatisfiable { size: spec.size }),
            RangeOutcome::Full => (
                StatusCode::OK,
                vec![Segment::Range { offset: 0, len: spec.size }],
                spec.content_type,
            ),
            RangeOutcome::Partial(ranges) if ranges.len() == 1 => {
                let r = ranges[0];
                common.insert(header::CONTENT_RANGE, hv(&r.content_range(spec.size))?);
                (
                    StatusCode::PARTIAL_CONTENT,
                    vec![Segment::Range { offset: r.start, len: r.len() }],
                    spec.content_type,
                )
            }
            RangeOutcome::Partial(ranges) => {
                let boundary = self.boundary();
                let segments = multipart_plan(&ranges, spec.size, &spec.content_type, &boundary);
                let ct = hv(&format!("multipart/byteranges; boundary={boundary}"))?;
                (StatusCode::PARTIAL_CONTENT, segments, ct)
            }
        };
        let length: u64 = segments.iter().map(Segment::len).sum();

        let mut headers_out = common;
        headers_out.insert(header::CONTENT_TYPE, content_type);
        headers_out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers_out.insert(header::CONTENT_LENGTH, HeaderValue::from(length));

        let body = if *method == Method::HEAD || length == 0 {
            Body::empty()
        } else {
            let permit = self.streams.acquire().await?;
            Body::new(SourceBody::new(spec.source, segments, permit).with_sendfile(sendfile))
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        *resp.headers_mut() = headers_out;
        Ok(resp)
    }
}

/// What [`FileServer::finish`] needs of a representation besides its validators.
struct Sized_ {
    source: Arc<dyn ByteSource>,
    size: u64,
    content_type: HeaderValue,
}

/// Segments of a `multipart/byteranges` body (RFC 9110 §14.6).
fn multipart_plan(ranges: &[ByteRange], size: u64, content_type: &HeaderValue, boundary: &str) -> Vec<Segment> {
    let ct = content_type.to_str().unwrap_or("application/octet-stream");
    let mut out = Vec::with_capacity(ranges.len() * 2 + 1);
    for r in ranges {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {ct}\r\nContent-Range: {}\r\n\r\n",
            r.content_range(size)
        );
        out.push(Segment::Literal(Bytes::from(head)));
        out.push(Segment::Range { offset: r.start, len: r.len() });
    }
    out.push(Segment::Literal(Bytes::from(format!("\r\n--{boundary}--\r\n"))));
    out
}

fn hv(s: &str) -> Result<HeaderValue, HttpError> {
    HeaderValue::from_str(s).map_err(|e| HttpError::Header(e.to_string()))
}

impl BoundSource for FileServer {
    fn report(&self, out: &mut Vec<BoundReport>) {
        self.streams.report(out);
        out.push(BoundReport {
            name: "etag_cache",
            unit: "entries",
            capacity: self.hashes.capacity() as u64,
            fill: self.hashes.len() as u64,
            config: "--etag-cache-entries / OIPD_ETAG_CACHE_ENTRIES",
        });
        out.push(BoundReport {
            name: "open_file_cache",
            unit: "entries",
            capacity: self.open_files.capacity() as u64,
            fill: self.open_files.len() as u64,
            config: "--open-file-cache-entries / OIPD_OPEN_FILE_CACHE_ENTRIES",
        });
        out.push(BoundReport {
            name: "etag_hashing",
            unit: "files",
            capacity: etag::HASH_CONCURRENCY as u64,
            fill: self.hashes.hashing_now() as u64,
            config: "const http::etag::HASH_CONCURRENCY",
        });
    }
}
