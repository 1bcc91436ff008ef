//! The parking lot: idle keep-alive connections, held between requests as bare
//! sockets in one `epoll` set instead of one task each (nginx keeps an idle
//! connection as a small struct in its event loop, not as a thread or task).
//!
//! A connection that went quiet between requests ([`super::Connection::serve`]
//! decides when, with nothing of a request or response in hyper's hands) leaves
//! its task: its socket is taken out of tokio's reactor and put here with its
//! connection slot and its deadline. When the client speaks again the socket
//! goes back to tokio and a fresh connection task serves it; when its deadline
//! passes (what is left of `--header-timeout-secs` since its last byte: the
//! keep-alive wait) or the server stops, it is closed. A parked connection
//! costs one slab entry (~48 bytes) and the kernel's epoll item; its task, its
//! activity record, its sendfile queue and tokio's registration are gone.
//!
//! Bounds: at most `--max-connections` entries (each holds its connection
//! slot), listed as `connections_parked` in `/api/health/memory` (its fill: the
//! connections parked now); at most [`BATCH`] sockets woken per turn of the
//! lot's task; deadlines are checked every [`SWEEP`], so a parked connection may
//! outlive its keep-alive wait by up to that much.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use crate::limits::connections::{OpenConnection, ParkedConnection};

/// Sockets woken per `epoll_wait` (more wait for the next turn).
const BATCH: usize = 256;

/// How often deadlines are checked while anything is parked.
const SWEEP: Duration = Duration::from_millis(200);

/// One parked connection.
struct Parked {
    sock: std::net::TcpStream,
    /// Milliseconds since the lot was made after which the connection closes.
    deadline_ms: u64,
    /// Told apart from an earlier entry of the same slab key (epoll's data word).
    generation: u32,
    _slot: ParkedConnection,
}

/// The entries, and whether the lot still takes any.
struct Entries {
    slab: slab::Slab<Parked>,
    generation: u32,
    closed: bool,
}

/// Idle keep-alive connections between requests (see the module doc).
pub struct ParkingLot {
    epoll: AsyncFd<OwnedFd>,
    entries: Mutex<Entries>,
    born: Instant,
    /// Told when the first connection parks, so the sweep starts.
    first: tokio::sync::Notify,
}

/// A socket the lot hands back: the client spoke again.
pub struct Woken {
    pub stream: tokio::net::TcpStream,
    pub peer: std::net::SocketAddr,
    pub open: OpenConnection,
}

impl ParkingLot {
    /// A new, empty lot (its `epoll` instance registered with the current runtime).
    pub fn new() -> std::io::Result<Arc<Self>> {
        // SAFETY: plain syscall; the result is checked and owned at once.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an `OwnedFd` keeps its descriptor open and the same for as
        // long as the `AsyncFd` owns it.
        let epoll = unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }.map_err(std::io::Error::from)?;
        Ok(Arc::new(ParkingLot {
            epoll,
            entries: Mutex::new(Entries { slab: slab::Slab::new(), generation: 0, closed: false }),
            born: Instant::now(),
            first: tokio::sync::Notify::new(),
        }))
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections parked now.
    pub fn len(&self) -> usize {
        self.lock().slab.len()
    }

    /// Park `stream` until it becomes readable (then [`ParkingLot::run`] hands it
    /// back) or `wait` passes (then it is closed). A lot that stopped, or a socket
    /// that cannot be parked, closes the connection at once.
    pub fn park(&self, stream: tokio::net::TcpStream, open: OpenConnection, wait: Duration) {
        let Ok(sock) = stream.into_std() else { return };
        let fd = sock.as_raw_fd();
        let deadline_ms = self.now_ms() + wait.as_millis() as u64;
        let mut e = self.lock();
        if e.closed {
            return;
        }
        e.generation = e.generation.wrapping_add(1);
        let generation = e.generation;
        let entry = e.slab.vacant_entry();
        let key = entry.key();
        entry.insert(Parked { sock, deadline_ms, generation, _slot: open.park() });
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: data(key, generation),
        };
        // SAFETY: both descriptors are open (the socket is owned by the entry just
        // inserted, which only this lot removes, under this lock).
        let r = unsafe { libc::epoll_ctl(self.epoll.get_ref().as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not park a connection; closed");
            e.slab.remove(key);
        } else if e.slab.len() == 1 {
            self.first.notify_one();
        }
    }

    /// Hand back the sockets whose clients spoke (each to `wake`), close those
    /// past their deadline, until `stop` is cancelled; then close every parked
    /// connection and take no more.
    pub async fn run(self: Arc<Self>, stop: tokio_util::sync::CancellationToken, mut wake: impl FnMut(Woken)) {
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; BATCH];
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                ready = self.epoll.readable() => {
                    let Ok(mut guard) = ready else { break };
                    // readiness is cleared only when the set had nothing more to give
                    let got = guard.try_io(|fd| {
                        // SAFETY: `events` has BATCH slots; timeout 0 never blocks.
                        let n = unsafe { libc::epoll_wait(fd.get_ref().as_raw_fd(), events.as_mut_ptr(), BATCH as i32, 0) };
                        match n {
                            n if n < 0 => Err(std::io::Error::last_os_error()),
                            0 => Err(std::io::ErrorKind::WouldBlock.into()),
                            n => Ok(n as usize),
                        }
                    });
                    let n = match got {
                        Ok(Ok(n)) => n,
                        Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "epoll_wait failed in the parking lot");
                            break;
                        }
                        Err(_would_block) => continue,
                    };
                    for ev in &events[..n] {
                        let (flags, word) = (ev.events, ev.u64);
                        if let Some(w) = self.take(word, flags) {
                            wake(w);
                        }
                    }
                }
                _ = sweep.tick(), if self.len() > 0 => self.close_expired(),
                // the lot was empty (no sweep armed): arm it
                _ = self.first.notified() => {}
            }
        }
        let mut e = self.lock();
        e.closed = true;
        e.slab = slab::Slab::new();
    }

    /// The entry an event names, out of the lot and back into tokio's hands
    /// (`None` when it was closed meanwhile, hung up, or cannot be handed back).
    fn take(&self, word: u64, flags: u32) -> Option<Woken> {
        let (key, generation) = (word as u32 as usize, (word >> 32) as u32);
        let p = {
            let mut e = self.lock();
            match e.slab.get(key) {
                Some(p) if p.generation == generation => e.slab.remove(key),
                _ => return None,
            }
        };
        let fd: RawFd = p.sock.as_raw_fd();
        // SAFETY: the socket is open (owned by `p`); removing it from our set
        // lets it be parked again later.
        unsafe { libc::epoll_ctl(self.epoll.get_ref().as_raw_fd(), libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
        if flags & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
            return None; // gone both ways: nothing to serve
        }
        let Parked { sock, _slot, .. } = p;
        let peer = sock.peer_addr().ok()?;
        let stream = tokio::net::TcpStream::from_std(sock).ok()?;
        Some(Woken { stream, peer, open: _slot.unpark() })
    }

    /// Close the connections past their deadline.
    fn close_expired(&self) {
        let now = self.now_ms();
        let mut e = self.lock();
        e.slab.retain(|_, p| p.deadline_ms > now);
        if e.slab.is_empty() && e.slab.capacity() > 64 {
            e.slab.shrink_to_fit();
        }
    }
}

/// The epoll data word of an entry: its slab key and generation.
fn data(key: usize, generation: u32) -> u64 {
    (u64::from(generation) << 32) | (key as u32 as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::connections::ConnectionLimit;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair(l: &tokio::net::TcpListener) -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let c = tokio::net::TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    /// A parked socket comes back when its client speaks (its bytes unread), is
    /// closed at its deadline, and everything closes when the lot stops; the
    /// connection slot is held throughout and counted as parked.
    #[tokio::test]
    async fn parks_wakes_expires_and_stops() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let limit = Arc::new(ConnectionLimit::new(8));
        let lot = ParkingLot::new().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(lot.clone().run(stop.clone(), move |w| tx.send(w).unwrap()));

        // alone in the lot and never woken: still closed at its deadline
        let (mut c0, s0) = pair(&l).await;
        lot.park(s0, limit.reserve().await.unwrap().open(), Duration::from_millis(200));
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(2), c0.read(&mut b)).await.unwrap().unwrap();
        assert_eq!((n, lot.len(), limit.parked(), limit.open()), (0, 0, 0, 0));

        let (mut c1, s1) = pair(&l).await;
        lot.park(s1, limit.reserve().await.unwrap().open(), Duration::from_secs(30));
        let (mut c2, s2) = pair(&l).await;
        lot.park(s2, limit.reserve().await.unwrap().open(), Duration::from_millis(300));
        let (mut c3, s3) = pair(&l).await;
        lot.park(s3, limit.reserve().await.unwrap().open(), Duration::from_secs(30));
        assert_eq!((lot.len(), limit.parked(), limit.open()), (3, 3, 3));

        // the client speaks: handed back with its bytes still to read
        c1.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut w = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
        assert_eq!(w.peer, c1.local_addr().unwrap());
        let mut buf = [0u8; 18];
        w.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!((lot.len(), limit.parked(), limit.open()), (2, 2, 3));
        // and it can be parked again and woken again
        lot.park(w.stream, w.open, Duration::from_secs(30));
        c1.write_all(b"x").await.unwrap();
        let w = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
        assert_eq!(w.peer, c1.local_addr().unwrap());
        drop(w);

        // past its deadline: closed by the lot (the client reads EOF), slot freed
        let n = tokio::time::timeout(Duration::from_secs(2), c2.read(&mut b)).await.unwrap().unwrap();
        assert_eq!(n, 0);
        assert_eq!((lot.len(), limit.parked(), limit.open()), (1, 1, 1));

        // stop: the rest closed, nothing parks any more
        stop.cancel();
        task.await.unwrap();
        assert_eq!(c3.read(&mut b).await.unwrap(), 0);
        let (mut c4, s4) = pair(&l).await;
        lot.park(s4, limit.reserve().await.unwrap().open(), Duration::from_secs(30));
        assert_eq!(c4.read(&mut b).await.unwrap(), 0);
        assert_eq!((lot.len(), limit.parked(), limit.open()), (0, 0, 0));
    }

    /// A client that hangs up while parked is not kept: closed by the lot, or
    /// handed back to read its end.
    #[tokio::test]
    async fn a_client_that_hangs_up_is_not_kept() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let limit = Arc::new(ConnectionLimit::new(2));
        let lot = ParkingLot::new().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(lot.clone().run(stop.clone(), move |w| tx.send(w).unwrap()));
        let (c, s) = pair(&l).await;
        lot.park(s, limit.reserve().await.unwrap().open(), Duration::from_secs(30));
        drop(c);
        // either closed in the lot, or handed back to read its EOF: never kept
        if let Ok(Some(mut w)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            let mut b = [0u8; 1];
            assert_eq!(w.stream.read(&mut b).await.unwrap(), 0);
        }
        assert_eq!(lot.len(), 0);
        stop.cancel();
        task.await.unwrap();
    }
}
