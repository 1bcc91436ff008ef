//! The streaming response body of a file response: a planned list of segments
//! (literal bytes for multipart headers, byte ranges of the representation for
//! content), the ranges read from a [`ByteSource`] one chunk at a time.
//!
//! A source must yield exactly the bytes of each range it is asked for; one that
//! sends more or ends early ends the body with an error (never a body that
//! disagrees with its `Content-Length` or multipart framing).
//!
//! On a connection that can `sendfile` (see [`super::sendfile`]) and a source
//! that is a local file, each range goes as placeholder chunks whose bytes the
//! kernel sends straight from the file: no read, no buffer, no blocking-pool hop.
//!
//! Bounds: at most one chunk buffered per body (hyper pulls the next only when it
//! has written the last); the body owns its source and its [`StreamPermit`], so
//! when the client disconnects and hyper drops the body, the fd, the buffer and
//! the slot are released at once (with `sendfile`, the permit moves to the last
//! queued range and goes when it is sent or the connection drops). No cleanup
//! handlers.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::sendfile::{self, Sendfile};
use super::source::{ByteSource, ChunkStream};
use crate::limits::stream::StreamPermit;

#[derive(Debug)]
pub enum Segment {
    Literal(Bytes),
    /// Bytes `offset .. offset + len` of the representation.
    Range {
        offset: u64,
        len: u64,
    },
}

impl Segment {
    pub fn len(&self) -> u64 {
        match self {
            Segment::Literal(b) => b.len() as u64,
            Segment::Range { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct SourceBody {
    source: Arc<dyn ByteSource>,
    segments: VecDeque<Segment>,
    remaining: u64,
    /// The range being read, if any, and its bytes still due.
    current: Option<ChunkStream>,
    range_left: u64,
    /// The connection's sendfile queue and the file, when both apply.
    sendfile: Option<(Sendfile, Arc<std::fs::File>)>,
    permit: Option<StreamPermit>,
}

impl SourceBody {
    pub fn new(source: Arc<dyn ByteSource>, segments: Vec<Segment>, permit: StreamPermit) -> Self {
        let remaining = segments.iter().map(Segment::len).sum();
        SourceBody {
            source,
            segments: segments.into(),
            remaining,
            current: None,
            range_left: 0,
            sendfile: None,
            permit: Some(permit),
        }
    }

    /// Send the file ranges with `sendfile` through `queue` when the source is a
    /// local file (otherwise nothing changes).
    pub fn with_sendfile(mut self, queue: Option<Sendfile>) -> Self {
        if let (Some(q), Some(f)) = (queue, self.source.local_file()) {
            if Sendfile::available() {
                self.sendfile = Some((q, f.clone()));
            }
        }
        self
    }
}

impl Body for SourceBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(stream) = this.current.as_mut() {
                match ready!(stream.as_mut().poll_next(cx)) {
                    // a source that sends more than its range asked for is broken:
                    // the body would disagree with Content-Length (and a multipart
                    // body with its own framing)
                    Some(Ok(chunk)) if chunk.len() as u64 > this.range_left => {
                        this.current = None;
                        this.segments.clear();
                        return Poll::Ready(Some(Err(io::Error::other("byte source sent more than the range"))));
                    }
                    Some(Ok(chunk)) => {
                        this.range_left -= chunk.len() as u64;
                        this.remaining -= chunk.len() as u64;
                        return Poll::Ready(Some(Ok(Frame::data(chunk))));
                    }
                    Some(Err(e)) => {
                        this.current = None;
                        this.segments.clear();
                        return Poll::Ready(Some(Err(e)));
                    }
                    // ...or that ends before it
                    None if this.range_left > 0 => {
                        this.current = None;
                        this.segments.clear();
                        return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "byte source ended before the range did"))));
                    }
                    None => this.current = None,
                }
                continue;
            }
            let Some(seg) = this.segments.pop_front() else {
                return Poll::Ready(None);
            };
            match seg {
                Segment::Literal(b) => {
                    if b.is_empty() {
                        continue;
                    }
                    this.remaining -= b.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                Segment::Range { len: 0, .. } => {}
                Segment::Range { offset, len } if this.sendfile.is_some() => {
                    let piece = len.min(sendfile::MAX_CHUNK as u64);
                    if piece < len {
                        this.segments.push_front(Segment::Range { offset: offset + piece, len: len - piece });
                    }
                    // the last file bytes of the body carry the stream permit
                    let last = !this.segments.iter().any(|s| matches!(s, Segment::Range { len, .. } if *len > 0));
                    let permit = if last { this.permit.take() } else { None };
                    let (q, file) = this.sendfile.as_ref().expect("checked by the guard");
                    match q.queue(file.clone(), offset, piece as usize, permit) {
                        Some(chunk) => {
                            this.remaining -= piece;
                            return Poll::Ready(Some(Ok(Frame::data(chunk))));
                        }
                        None => {
                            this.segments.clear();
                            return Poll::Ready(Some(Err(io::Error::other("sendfile placeholder unavailable"))));
                        }
                    }
                }
                Segment::Range { offset, len } => {
                    this.range_left = len;
                    this.current = Some(this.source.range(offset, len));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::stream::{StreamLimiter, FILE_STREAMS};

    /// A source that answers every range with `n` bytes, whatever was asked.
    struct Sloppy(usize);

    impl ByteSource for Sloppy {
        fn range(&self, _offset: u64, _len: u64) -> ChunkStream {
            let b = Bytes::from(vec![b'x'; self.0]);
            Box::pin(futures_util::stream::iter([Ok(b)]))
        }
    }

    async fn drain(source: usize, range: u64) -> Result<u64, io::Error> {
        use http_body_util::BodyExt;
        let limiter = StreamLimiter::new(FILE_STREAMS, 1, 1, std::time::Duration::from_secs(1), 1);
        let permit = limiter.acquire().await.unwrap();
        let mut body = SourceBody::new(Arc::new(Sloppy(source)), vec![Segment::Range { offset: 0, len: range }, Segment::Literal(Bytes::from_static(b"--end"))], permit);
        let mut n = 0;
        while let Some(f) = body.frame().await {
            n += f?.into_data().map_or(0, |d| d.len() as u64);
        }
        Ok(n)
    }

    #[tokio::test]
    async fn a_source_must_yield_exactly_its_range() {
        assert_eq!(drain(10, 10).await.unwrap(), 15);
        assert!(drain(11, 10).await.is_err(), "too many bytes");
        assert_eq!(drain(9, 10).await.unwrap_err().kind(), io::ErrorKind::UnexpectedEof, "too few bytes");
    }
}
