//! The streaming file body: a planned list of segments (literal bytes for multipart
//! headers, file ranges for content), read in [`CHUNK_SIZE`] pieces with positioned
//! reads on the blocking pool, one chunk in flight at a time.
//!
//! Bounds: at most one chunk buffered per body (hyper pulls the next only when it
//! has written the last); the body owns its file and its [`StreamPermit`], so when
//! the client disconnects and hyper drops the body, the fd, the buffer and the slot
//! are released at once. No cleanup handlers.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

use super::stream_limit::StreamPermit;

/// Bytes read from disk per chunk (tower-http's file service uses the same size).
pub const CHUNK_SIZE: usize = 64 * 1024;

#[derive(Debug)]
pub enum Segment {
    Literal(Bytes),
    File { offset: u64, len: u64 },
}

impl Segment {
    pub fn len(&self) -> u64 {
        match self {
            Segment::Literal(b) => b.len() as u64,
            Segment::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct FileBody {
    file: Arc<File>,
    segments: VecDeque<Segment>,
    remaining: u64,
    pending: Option<JoinHandle<io::Result<Bytes>>>,
    _permit: StreamPermit,
}

impl FileBody {
    pub fn new(file: Arc<File>, segments: Vec<Segment>, permit: StreamPermit) -> Self {
        let remaining = segments.iter().map(Segment::len).sum();
        FileBody { file, segments: segments.into(), remaining, pending: None, _permit: permit }
    }
}

impl Drop for FileBody {
    fn drop(&mut self) {
        // A read already running on the blocking pool finishes on its own; its
        // buffer is freed when the task ends. Nothing else to release by hand.
        if let Some(h) = self.pending.take() {
            h.abort();
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(handle) = this.pending.as_mut() {
                let res = ready!(Pin::new(handle).poll(cx));
                this.pending = None;
                let chunk = match res {
                    Ok(Ok(b)) => b,
                    Ok(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Err(join) => return Poll::Ready(Some(Err(io::Error::other(join)))),
                };
                this.remaining -= chunk.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            let Some(seg) = this.segments.front_mut() else {
                return Poll::Ready(None);
            };
            match seg {
                Segment::Literal(b) => {
                    let b = std::mem::take(b);
                    this.segments.pop_front();
                    if b.is_empty() {
                        continue;
                    }
                    this.remaining -= b.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                Segment::File { len: 0, .. } => {
                    this.segments.pop_front();
                }
                Segment::File { offset, len } => {
                    let n = (*len).min(CHUNK_SIZE as u64) as usize;
                    let at = *offset;
                    *offset += n as u64;
                    *len -= n as u64;
                    let file = this.file.clone();
                    this.pending = Some(crate::memory::track::spawn_blocking(move || read_chunk(&file, at, n)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.pending.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn read_chunk(file: &File, offset: u64, n: usize) -> io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; n];
    // A file truncated under us fails here, and the response is cut short rather
    // than padded: the client sees a short body against Content-Length.
    file.read_exact_at(&mut buf, offset)?;
    Ok(Bytes::from(buf))
}
