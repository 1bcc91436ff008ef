//! An outbound response and the cap on its body.
//!
//! A [`Response`] owns its request's slots ([`Permits`]) until it is dropped, or
//! until its body has been read ([`Response::bytes_limited`]) or its stream
//! ([`BodyStream`]) has ended or been dropped. Bodies are counted while they
//! stream: [`Capped`] fails with [`ClientError::TooLarge`] on the chunk that
//! passes the cap, so at most the cap is ever buffered, and at most one chunk
//! past it is ever read; a declared `Content-Length` over the cap is refused
//! before any of the body is read.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use super::limiter::Permits;
use super::error::{truncate, ClientError};
use super::limits::MAX_ERROR_TEXT;

/// A response to an outbound request; holds the request's slots until dropped.
pub struct Response {
    inner: reqwest::Response,
    permits: Permits,
    /// The client's cap ([`super::ClientLimits::max_response_bytes`]).
    max_bytes: u64,
}

/// Status and length only: the URL may hold a key, headers may hold cookies.
impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status())
            .field("content_length", &self.content_length())
            .finish_non_exhaustive()
    }
}

impl Response {
    pub(crate) fn new(inner: reqwest::Response, permits: Permits, max_bytes: u64) -> Self {
        Response { inner, permits, max_bytes }
    }

    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The final URL, after redirects.
    pub fn url(&self) -> &Url {
        self.inner.url()
    }

    /// The declared body length, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.inner.content_length()
    }

    /// The whole body, at most `max` bytes (`None`: the client's cap; a larger
    /// `max` is lowered to the client's cap, which bounds every buffered body).
    /// Fails with `TooLarge` at once on a declared length over the cap, or as
    /// soon as the streamed body passes it.
    pub async fn bytes_limited(self, max: Option<u64>) -> Result<Bytes, ClientError> {
        let cap = max.map_or(self.max_bytes, |m| m.min(self.max_bytes));
        let hint = self.content_length().unwrap_or(0).min(cap);
        let body = self.stream_limited(cap);
        collect(body, usize::try_from(hint).unwrap_or(0)).await
    }

    /// The body as JSON (read through [`Response::bytes_limited`] with the
    /// client's cap).
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let body = self.bytes_limited(None).await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(truncate(e.to_string(), MAX_ERROR_TEXT)))
    }

    /// The body as a stream of chunks (NDJSON, SSE, token streams), capped at the
    /// client's [`super::ClientLimits::max_response_bytes`] in all.
    pub fn stream(self) -> BodyStream {
        let cap = self.max_bytes;
        self.stream_limited(cap)
    }

    /// The body as a stream capped at `max` bytes in all. Unlike
    /// [`Response::bytes_limited`], `max` may exceed the client's cap: a stream
    /// holds one chunk at a time, so its cap bounds transfer, not memory.
    pub fn stream_limited(self, max: u64) -> BodyStream {
        let declared = self.inner.content_length();
        let chunks: ChunkStream = Box::pin(self.inner.bytes_stream().map(|r| r.map_err(ClientError::from_reqwest)));
        BodyStream { inner: Capped::new(chunks, max, declared), permits: Some(self.permits) }
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>;

/// A response body as a capped stream of chunks. Holds the request's slots
/// until the stream ends (body done, or an error) or is dropped.
pub struct BodyStream {
    inner: Capped<ChunkStream>,
    permits: Option<Permits>,
}

impl Stream for BodyStream {
    type Item = Result<Bytes, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if self.inner.done {
            self.permits = None;
        }
        item
    }
}

/// Counts the bytes of `inner` and fails with `TooLarge` on the chunk that
/// passes `cap` (that chunk is not yielded); ends after the first error.
pub(crate) struct Capped<S> {
    inner: S,
    seen: u64,
    cap: u64,
    done: bool,
    /// A declared length over the cap: fail before reading.
    refuse: bool,
}

impl<S> Capped<S> {
    pub(crate) fn new(inner: S, cap: u64, declared: Option<u64>) -> Self {
        Capped { inner, seen: 0, cap, done: false, refuse: declared.is_some_and(|n| n > cap) }
    }
}

impl<S: Stream<Item = Result<Bytes, ClientError>> + Unpin> Stream for Capped<S> {
    type Item = Result<Bytes, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.refuse {
            self.done = true;
            return Poll::Ready(Some(Err(ClientError::TooLarge { limit: self.cap })));
        }
        let item = match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        match item {
            Some(Ok(chunk)) => {
                self.seen = self.seen.saturating_add(chunk.len() as u64);
                if self.seen > self.cap {
                    self.done = true;
                    return Poll::Ready(Some(Err(ClientError::TooLarge { limit: self.cap })));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            None => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }
}

/// All chunks of a capped stream in one buffer (`hint`: the declared length,
/// already within the cap). A single-chunk body is returned without a copy.
pub(crate) async fn collect<S>(mut body: S, hint: usize) -> Result<Bytes, ClientError>
where
    S: Stream<Item = Result<Bytes, ClientError>> + Unpin,
{
    let first = match body.next().await {
        None => return Ok(Bytes::new()),
        Some(chunk) => chunk?,
    };
    let second = match body.next().await {
        None => return Ok(first),
        Some(chunk) => chunk?,
    };
    let mut buf = BytesMut::with_capacity(hint.max(first.len() + second.len()));
    buf.extend_from_slice(&first);
    buf.extend_from_slice(&second);
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk?);
    }
    Ok(buf.freeze())
}
