//! Where the bytes of a served representation come from. The RFC 9110 machinery
//! ([`super::file`]) plans a response from sizes and validators alone and then asks
//! a [`ByteSource`] for the byte ranges it needs, as a stream of chunks; it never
//! knows whether they come from a local file or an object store.
//!
//! [`LocalFile`] is today's source: positioned reads of [`CHUNK_SIZE`] on the
//! blocking pool, one chunk in flight per stream — or, on a connection that
//! offers it, no read at all: the body hands its ranges to the kernel with
//! `sendfile` (see [`super::sendfile`], [`ByteSource::local_file`]). An
//! object-store source answers a range with one ranged GET streamed in chunks.
//!
//! Bound: a source stream holds at most one chunk in flight; dropping it (client
//! gone) releases the file descriptor's share and the chunk at once.

use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

/// Bytes read from disk per chunk (tower-http's file service uses the same size).
pub const CHUNK_SIZE: usize = 64 * 1024;

/// A stream of body chunks.
pub type ChunkStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A representation's bytes, readable by range.
pub trait ByteSource: Send + Sync + 'static {
    /// The bytes `offset .. offset + len`, in order, in chunks. A source that ends
    /// early (a file truncated under us) yields an error rather than short data.
    fn range(&self, offset: u64, len: u64) -> ChunkStream;

    /// The open local file behind this source, if it is one (its ranges may then
    /// go with `sendfile`).
    fn local_file(&self) -> Option<&Arc<File>> {
        None
    }
}

/// An open local file (the descriptor is shared by every range of one response).
pub struct LocalFile {
    file: Arc<File>,
}

impl LocalFile {
    pub fn new(file: File) -> Self {
        LocalFile {
            file: Arc::new(file),
        }
    }

    /// A source over a descriptor shared with others (the open-file cache).
    pub fn shared(file: Arc<File>) -> Self {
        LocalFile { file }
    }

    /// The open file, e.g. to hash it for an ETag.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
}

impl ByteSource for LocalFile {
    fn local_file(&self) -> Option<&Arc<File>> {
        Some(&self.file)
    }

    fn range(&self, offset: u64, len: u64) -> ChunkStream {
        let file = self.file.clone();
        Box::pin(futures_util::stream::unfold(
            (file, offset, len),
            |(file, at, left)| async move {
                if left == 0 {
                    return None;
                }
                let n = left.min(CHUNK_SIZE as u64) as usize;
                let f = file.clone();
                let chunk =
                    match crate::memory::track::spawn_blocking(move || read_chunk(&f, at, n)).await
                    {
                        Ok(r) => r,
                        Err(join) => Err(io::Error::other(join)),
                    };
                // After an error the stream ends: nothing more is read.
                let next_left = if chunk.is_ok() { left - n as u64 } else { 0 };
                Some((chunk, (file, at + n as u64, next_left)))
            },
        ))
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
