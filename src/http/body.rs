//! The streaming response body of a file response: a planned list of segments
//! (literal bytes for multipart headers, byte ranges of the representation for
//! content), the ranges read from a [`ByteSource`] one chunk at a time.
//!
//! Bounds: at most one chunk buffered per body (hyper pulls the next only when it
//! has written the last); the body owns its source and its [`StreamPermit`], so
//! when the client disconnects and hyper drops the body, the fd, the buffer and
//! the slot are released at once. No cleanup handlers.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

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
    /// The range being read, if any.
    current: Option<ChunkStream>,
    _permit: StreamPermit,
}

impl SourceBody {
    pub fn new(source: Arc<dyn ByteSource>, segments: Vec<Segment>, permit: StreamPermit) -> Self {
        let remaining = segments.iter().map(Segment::len).sum();
        SourceBody {
            source,
            segments: segments.into(),
            remaining,
            current: None,
            _permit: permit,
        }
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
                    Some(Ok(chunk)) => {
                        this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                        return Poll::Ready(Some(Ok(Frame::data(chunk))));
                    }
                    Some(Err(e)) => {
                        this.current = None;
                        this.segments.clear();
                        return Poll::Ready(Some(Err(e)));
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
                Segment::Range { offset, len } => {
                    this.current = Some(this.source.range(offset, len))
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
