//! `sendfile(2)` for file bodies on plain HTTP/1.1 connections: the bytes go from
//! the page cache to the socket without entering user space, as nginx sends them.
//!
//! hyper has no hook for it (hyperium/hyper#3026), so the hand-off goes through
//! its ordinary body path. A file range of a body is yielded to hyper as a
//! *placeholder* chunk of the same length — a slice of one read-only, never
//! written anonymous mapping ([`placeholder`]: zero pages, no resident memory) —
//! and the range itself (descriptor, offset, length) is queued on the
//! connection's [`Sendfile`] queue. The connection's socket wrapper (in
//! `server`) recognises a placeholder slice by its address when hyper writes it
//! and calls [`Sendfile::poll_send`] instead, which `sendfile`s the queued range.
//! hyper keeps its framing (Content-Length, multipart literals around the
//! ranges are ordinary chunks) and everything around it (limits, watchdog,
//! graceful shutdown, attribution) is unchanged.
//!
//! This relies on hyper writing body chunks in order and by reference
//! (`http1::Builder::writev(true)`, its queued write strategy — set in
//! `server`), never copying them; the queue checks every placeholder write is
//! exactly in step with what it holds (position within the range, length) and
//! fails the connection otherwise, so a mismatch can cut a response short but
//! never send other bytes. A file that shrank under us ends the connection
//! (short body against Content-Length), as a failed read does on the copy path.
//!
//! Bounds: a queued range holds its descriptor (and, for the body's last range,
//! its stream permit) until it is sent or the connection is dropped; one
//! response's ranges at a time. A `sendfile` of a file not in the page cache
//! reads the disk on the connection's thread, as nginx does without `aio`.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};

use bytes::Bytes;

use crate::limits::stream::StreamPermit;

/// Largest placeholder chunk (and so the largest single `sendfile` call's
/// length); longer ranges go as several.
pub const MAX_CHUNK: usize = 64 << 20;

/// The placeholder region: `MAX_CHUNK` bytes of a private anonymous read-only
/// mapping. `None` when it cannot be mapped (then bodies are read and copied).
fn region() -> Option<&'static [u8]> {
    static REGION: OnceLock<Option<usize>> = OnceLock::new();
    let base = *REGION.get_or_init(|| {
        // SAFETY: a fresh anonymous mapping, checked for failure; never unmapped.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAX_CHUNK,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        (p != libc::MAP_FAILED).then_some(p as usize)
    });
    // SAFETY: the mapping is readable (zeros), MAX_CHUNK long, lives for the process.
    base.map(|b| unsafe { std::slice::from_raw_parts(b as *const u8, MAX_CHUNK) })
}

/// A placeholder chunk of `len` (≤ [`MAX_CHUNK`]) bytes.
fn placeholder(len: usize) -> Option<Bytes> {
    region().map(|r| Bytes::from_static(&r[..len]))
}

/// Is `buf` (part of) a placeholder? Its offset into the region if so.
fn placeholder_offset(buf: &[u8]) -> Option<usize> {
    let r = region()?;
    let (base, p) = (r.as_ptr() as usize, buf.as_ptr() as usize);
    (!buf.is_empty() && p >= base && p < base + MAX_CHUNK).then(|| p - base)
}

/// Is `buf` a placeholder slice (to be sent with [`Sendfile::poll_send`])?
pub fn is_placeholder(buf: &[u8]) -> bool {
    placeholder_offset(buf).is_some()
}

struct Pending {
    file: Arc<File>,
    offset: u64,
    len: usize,
    sent: usize,
    _permit: Option<StreamPermit>,
}

/// One connection's queue of file ranges awaiting `sendfile`; a clone rides in
/// each request's extensions so that file bodies can use it.
#[derive(Clone, Default)]
pub struct Sendfile(Arc<Mutex<VecDeque<Pending>>>);

impl Sendfile {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether placeholders can be made at all on this system.
    pub fn available() -> bool {
        region().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue bytes `offset .. offset + len` (`len` ≤ [`MAX_CHUNK`]) of `file` and
    /// return the placeholder chunk to hand to hyper in their place. `permit`,
    /// if any, is held until these bytes are sent.
    pub fn queue(&self, file: Arc<File>, offset: u64, len: usize, permit: Option<StreamPermit>) -> Option<Bytes> {
        let chunk = placeholder(len)?;
        self.lock().push_back(Pending { file, offset, len, sent: 0, _permit: permit });
        Some(chunk)
    }

    /// Give back the queue's memory while the connection is idle (nothing queued).
    pub fn shrink(&self) {
        let mut q = self.lock();
        if q.is_empty() {
            *q = VecDeque::new();
        }
    }

    /// Ranges queued and not yet fully sent.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Send (part of) the placeholder slice `buf` that hyper is writing: the
    /// queued range it stands for goes from its file to `sock` with `sendfile`.
    pub fn poll_send(&self, sock: &tokio::net::TcpStream, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        use std::os::fd::AsRawFd;
        let out_of_step = || io::Error::other("sendfile placeholder out of step with its queue");
        let Some(at) = placeholder_offset(buf) else { return Poll::Ready(Err(out_of_step())) };
        let mut q = self.lock();
        let Some(front) = q.front_mut() else { return Poll::Ready(Err(out_of_step())) };
        if at != front.sent || buf.len() > front.len - front.sent {
            return Poll::Ready(Err(out_of_step()));
        }
        let want = buf.len();
        loop {
            ready!(sock.poll_write_ready(cx))?;
            let r = sock.try_io(tokio::io::Interest::WRITABLE, || {
                let mut off = (front.offset + front.sent as u64) as libc::off_t;
                // SAFETY: both descriptors are open for the call; `off` is ours.
                let n = unsafe { libc::sendfile(sock.as_raw_fd(), front.file.as_raw_fd(), &mut off, want) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than its planned body")))
                }
                Ok(n) => {
                    front.sent += n;
                    if front.sent == front.len {
                        q.pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Write `bufs` (a response head, multipart literals) that a placeholder
/// follows, telling the kernel more is coming (`MSG_MORE`, nginx's
/// `tcp_nopush`): the head leaves in one packet with the first file bytes
/// instead of alone.
pub fn poll_write_more(sock: &tokio::net::TcpStream, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    use std::os::fd::AsRawFd;
    loop {
        ready!(sock.poll_write_ready(cx))?;
        let r = sock.try_io(tokio::io::Interest::WRITABLE, || {
            // SAFETY: IoSlice is ABI-compatible with iovec on Unix; the msghdr
            // points at `bufs`, alive for the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = bufs.len().min(64) as _;
            let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_MORE | libc::MSG_NOSIGNAL) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => continue,
            r => return Poll::Ready(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised_by_address_only() {
        assert!(Sendfile::available());
        let p = placeholder(10).unwrap();
        assert!(is_placeholder(&p));
        assert!(is_placeholder(&p[3..]));
        assert!(!is_placeholder(&p[..0]));
        let ordinary = vec![0u8; 10];
        assert!(!is_placeholder(&ordinary), "same bytes, not a placeholder");
        assert_eq!(placeholder_offset(&p[4..]), Some(4));
    }
}
