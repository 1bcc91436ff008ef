//! Binding, the accept loop, connection bounds and graceful shutdown.
//!
//! The accept loop is ours (not `axum::serve`) so that it can bound what a client
//! can hold: a [`crate::limits::connections::ConnectionLimit`] slot is taken *before* `accept`, so past
//! `--max-connections` new clients wait in the kernel's backlog rather than in our
//! memory; HTTP/1 header reads time out after `--header-timeout-secs`; request
//! heads are capped at [`MAX_HEAD_BYTES`](crate::limits::MAX_HEAD_BYTES) (exactly, by `api::check_head`); a
//! kept-alive connection that goes quiet between requests is closed after the
//! header timeout.
//!
//! A connection that moves no byte in either direction for `--idle-timeout-secs`
//! (a client that stopped reading a response, or stopped sending a body, or a
//! request that computes that long without answering) is closed, so a stalled client cannot
//! hold a stream slot, a render slot or an upload forever (nginx's `send_timeout`
//! and `client_body_timeout`). A per-connection watchdog does it, not the
//! socket's own polls: a handler that stops consuming a body stops hyper from
//! reading at all.
//!
//! A connection quiet for [`PARK_AFTER`] between requests is parked: hyper's
//! state (buffers, dispatcher) is dropped, the task ends, and the bare socket
//! waits in the [`park::ParkingLot`] (one `epoll` set for all of them) until its
//! next byte, when a fresh task serves it ([`Connection::serve`]), so an idle
//! keep-alive connection costs a slab entry, not a task. File bodies go with `sendfile(2)` through the socket
//! wrapper [`Watched`] (see [`crate::http::sendfile`]).
//!
//! HTTP/1.1 only. Browsers speak HTTP/2 only over TLS, which belongs to a
//! terminating proxy; cleartext h2c would only add a way to hold connections
//! open (hyper has no idle timeout for HTTP/2), so its preface is refused.
//!
//! Shutdown: when the shutdown future resolves (SIGINT/SIGTERM in `main`), the
//! listener closes, idle (parked) keep-alive connections close, and in-flight
//! responses get `--shutdown-grace-secs` to finish before the server returns;
//! in the same grace the task supervisor cancels every background task and joins
//! it (aborting what does not stop).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::http::sendfile::{self, Sendfile};
use crate::limits::connections::{OpenConnection, PeerAddr};
use crate::state::SharedState;

mod park;

/// A kept-alive connection quiet this long between requests is parked (see
/// [`Connection::serve`]); one busy with back-to-back requests never is.
const PARK_AFTER: Duration = Duration::from_millis(50);

/// Pause after an accept error (EMFILE and the like) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serve `state` on `listener` until `shutdown` resolves, then drain.
pub async fn run(listener: TcpListener, state: SharedState, shutdown: impl Future<Output = ()>) {
    let app = crate::api::router(state.clone());
    let header_timeout = Duration::from_secs(state.config.http.header_timeout_secs.max(1));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(crate::limits::MAX_HEAD_BYTES)
        // body chunks queued by reference, never copied: what lets a file body's
        // placeholder chunks reach `Watched` to go with sendfile (http::sendfile)
        .writev(true)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let idle = Duration::from_secs(state.config.http.idle_timeout_secs.max(1));
    let stop = tokio_util::sync::CancellationToken::new();
    // every connection task holds a clone; all dropped = all connections closed
    let (live, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    let lot = match park::ParkingLot::new() {
        Ok(lot) => Some(lot),
        Err(e) => {
            tracing::warn!(error = %e, "no parking lot (epoll): idle connections keep their tasks");
            None
        }
    };
    let template = Connection { app, builder, stop: stop.clone(), header_timeout, idle, lot: lot.clone() };
    if let Some(lot) = lot {
        // a parked connection whose client speaks again gets a fresh task
        let (conn, live) = (template.clone(), live.clone());
        tokio::spawn(lot.run(stop.clone(), move |w: park::Woken| {
            tokio::spawn(conn.clone().serve(w.stream, w.peer, w.open, live.clone()));
        }));
    }

    loop {
        let permit = tokio::select! {
            p = state.connections.reserve() => match p { Some(p) => p, None => break },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let open: OpenConnection = permit.open();
        tokio::spawn(template.clone().serve(stream, peer, open, live.clone()));
    }
    drop(listener);
    drop(live);
    drop(template);
    let grace = Duration::from_secs(state.config.http.shutdown_grace_secs);
    tracing::info!(grace_secs = grace.as_secs(), "shutting down: draining connections and stopping background tasks");
    let deadline = tokio::time::Instant::now() + grace;
    // idle connections close now, busy ones after their response
    stop.cancel();
    let connections = async {
        tokio::select! {
            _ = all_closed.recv() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep_until(deadline) => tracing::warn!("grace period over; closing remaining connections"),
        }
    };
    // Background tasks stop in the same grace, joined or aborted by the supervisor.
    let (_, aborted) = tokio::join!(connections, state.tasks.shutdown(grace));
    if !aborted.is_empty() {
        tracing::warn!(?aborted, "background tasks did not stop within the grace period");
    }
}

/// What a connection's task needs besides its socket.
#[derive(Clone)]
struct Connection {
    app: axum::Router,
    builder: Arc<http1::Builder>,
    stop: tokio_util::sync::CancellationToken,
    header_timeout: Duration,
    idle: Duration,
    /// Where idle connections wait between requests (`None`: in their own task).
    lot: Option<Arc<park::ParkingLot>>,
}

impl Connection {
    /// Serve one client connection until it closes, stalls or the server stops.
    ///
    /// A connection quiet for [`PARK_AFTER`] between requests is *parked*:
    /// hyper's connection (its read and write buffers, its dispatcher) is
    /// dropped and the socket goes to the [`park::ParkingLot`] and this task
    /// ends; the lot starts a new one when the client speaks again. So an idle
    /// keep-alive connection holds a slab entry instead of hyper's buffers and
    /// a task (a busy one, requests back to back, keeps hyper). hyper is told
    /// the client went away (a read of 0 bytes) only when that loses nothing: no
    /// request in flight, everything written and flushed, the last request had
    /// no body and the last bytes read ended its head, and the socket has
    /// nothing more to read (see [`Watched::poll_read`]). A parked connection
    /// waits for its next request at most what is left of
    /// `--header-timeout-secs` since its last byte (hyper's own keep-alive wait)
    /// and closes at once on shutdown. A new connection is not handed to hyper
    /// before its first byte arrives (waiting in this task: a fresh connection
    /// usually has its request on the way).
    async fn serve(self, stream: tokio::net::TcpStream, peer: std::net::SocketAddr, open: OpenConnection, _live: tokio::sync::mpsc::Sender<()>) {
        let sendfile = Sendfile::new();
        let activity = Activity::new();
        let (app, queue, t) = (self.app.clone(), sendfile.clone(), activity.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            // who is on the other end of the socket (login limits key by it)
            req.extensions_mut().insert(PeerAddr(peer));
            // file bodies may hand their bytes to the kernel on this socket
            req.extensions_mut().insert(queue.clone());
            let guard = InFlight::start(&t, &req);
            // (a named, Unpin future: hyper hands the connection back only then)
            futures_util::FutureExt::map(app.clone().oneshot(req), move |r| r.map(|resp| resp.map(|body| GuardedBody { body, _guard: guard })))
        });
        let mut io = Watched { inner: stream, activity: activity.clone(), sendfile, flushed: true, head_ended: false, parked: false };
        loop {
            // parked: only the socket (and this task, kept small), until the client speaks again
            let woke = {
                // the quiet time before parking counts against the keep-alive wait
                let quiet = Duration::from_millis(activity.quiet_ms());
                let sleep = tokio::time::sleep(self.header_timeout.min(self.idle).saturating_sub(quiet));
                let stop = self.stop.cancelled();
                tokio::pin!(sleep, stop);
                std::future::poll_fn(|cx| {
                    use std::task::Poll;
                    if stop.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(false);
                    }
                    if let Poll::Ready(r) = io.inner.poll_read_ready(cx) {
                        return Poll::Ready(r.is_ok());
                    }
                    sleep.as_mut().poll(cx).map(|_| false)
                })
                .await
            };
            if !woke {
                return;
            }
            activity.touch();
            activity.served.store(false, Ordering::Relaxed);
            io.parked = false;
            // hyper's turn, its state boxed so that the parked task does not carry it
            let turn = Box::pin(async {
                let mut conn = self.builder.serve_connection(TokioIo::new(io), service.clone());
                let mut stopping = false;
                let done = loop {
                    tokio::select! {
                        r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break r.is_ok(),
                        // in-flight responses finish; hyper closes after them
                        _ = self.stop.cancelled(), if !stopping => {
                            stopping = true;
                            std::pin::Pin::new(&mut conn).graceful_shutdown();
                        }
                        // quiet for a while: let hyper go at its next read if it may
                        // (hyper is re-polled at once; armed again by the next byte
                        // moved, so a connection that was quiet before its request
                        // still parks after it)
                        _ = activity.clone().arm_park(PARK_AFTER) => {}
                        // dropping the connection drops its request, body and whatever they hold
                        _ = activity.clone().stalled(self.idle) => {
                            tracing::debug!("closed a stalled connection");
                            break false;
                        }
                    }
                };
                if !done || stopping {
                    return None;
                }
                let parts = conn.into_parts();
                // a real end of the connection (or a close hyper decided): done
                let io = parts.io.into_inner();
                (io.parked && parts.read_buf.is_empty()).then_some(io)
            });
            match turn.await {
                Some(back) => io = back,
                None => return,
            }
            if let Some(lot) = &self.lot {
                // the rest of the keep-alive wait, counted from the last byte
                let quiet = Duration::from_millis(activity.quiet_ms());
                lot.park(io.inner, open, self.header_timeout.min(self.idle).saturating_sub(quiet));
                return;
            }
            io.sendfile.shrink();
        }
    }
}

/// One request in flight, until its response body is done or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start<B>(turn: &Arc<Activity>, req: &hyper::Request<B>) -> Self {
        use http::header;
        let h = req.headers();
        let bodiless = !h.contains_key(header::TRANSFER_ENCODING)
            && h.get(header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0");
        turn.had_body.store(!bodiless, Ordering::Relaxed);
        turn.served.store(true, Ordering::Relaxed);
        turn.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(turn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight until hyper
/// has taken its last frame (or dropped it).
struct GuardedBody<B> {
    body: B,
    _guard: InFlight,
}

impl<B: http_body::Body + Unpin> http_body::Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Start the `--gun-relay-listen` listener (when configured) as a supervised task
/// stopped with the others at shutdown; its bound address goes to `state.gun_relay_addr`.
pub async fn start_gun_relay(state: &SharedState) -> std::io::Result<()> {
    let Some(addr) = state.config.gun.gun_relay_listen else { return Ok(()) };
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let _ = state.gun_relay_addr.set(bound);
    tracing::info!(%bound, "GUN relay listener (original relay paths /put /get /list)");
    let slot = std::sync::Mutex::new(Some(listener));
    let st = state.clone();
    state
        .tasks
        .spawn("gun_relay_listener", crate::tasks::RestartPolicy::Never, move |ctx| {
            let listener = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            let st = st.clone();
            async move {
                let Some(listener) = listener else { return Err("the relay listener already ran".to_owned()) };
                let permits = st.gun_relay_permits.clone();
                let app = crate::api::relay_router(st).layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
                    let permits = permits.clone();
                    async move {
                        use axum::response::IntoResponse;
                        match permits.try_acquire() {
                            Ok(p) => {
                                let r = next.run(req).await;
                                drop(p);
                                r
                            }
                            Err(busy) => crate::api::error::ApiError::from(busy).into_response(),
                        }
                    }
                }));
                let stop = ctx.token().clone();
                axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Progress of one connection's socket, shared with its stall watchdog, and
/// what the service tells the socket wrapper about its requests.
struct Activity {
    born: std::time::Instant,
    /// Milliseconds since `born` of the last read or write that returned.
    last_progress_ms: std::sync::atomic::AtomicU64,
    /// Requests whose response (body included) is not finished.
    in_flight: std::sync::atomic::AtomicUsize,
    /// The last request carried a body (then the connection is never parked:
    /// hyper may still hold or await some of it).
    had_body: std::sync::atomic::AtomicBool,
    /// Quiet for [`PARK_AFTER`]: park at hyper's next read if nothing is in its
    /// hands; cleared by the next byte moved.
    park: std::sync::atomic::AtomicBool,
    /// A request began since the connection last woke. Only then may it park:
    /// a client sending nothing but blank lines stays with hyper, whose header
    /// timeout then closes it (parking would restart that timeout at each wake).
    served: std::sync::atomic::AtomicBool,
    /// Told when the park flag is lowered (see [`Activity::arm_park`]).
    rearm: tokio::sync::Notify,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity {
            born: std::time::Instant::now(),
            last_progress_ms: std::sync::atomic::AtomicU64::new(0),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            had_body: std::sync::atomic::AtomicBool::new(false),
            park: std::sync::atomic::AtomicBool::new(false),
            served: std::sync::atomic::AtomicBool::new(false),
            rearm: tokio::sync::Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.last_progress_ms.store(self.now_ms(), Ordering::Relaxed);
        self.lower_park();
    }

    /// Lower the park flag; a waiting [`Activity::arm_park`] starts timing again.
    fn lower_park(&self) {
        if self.park.swap(false, Ordering::Relaxed) {
            self.rearm.notify_one();
        }
    }

    /// A read or write returned: progress (and the park flag down). A completed
    /// flush is not progress — on a TCP socket it moves nothing, and hyper
    /// flushes whenever it is polled, so counting it would let a stalled
    /// client look alive to the watchdog.
    fn record<T>(&self, r: &std::task::Poll<std::io::Result<T>>) {
        if r.is_ready() {
            self.last_progress_ms.store(self.now_ms(), Ordering::Relaxed);
            if self.park.load(Ordering::Relaxed) {
                self.lower_park();
            }
        }
    }

    /// Milliseconds since the last byte moved.
    fn quiet_ms(&self) -> u64 {
        self.now_ms().saturating_sub(self.last_progress_ms.load(Ordering::Relaxed))
    }

    /// Resolves once the connection has moved no byte for `after` while the
    /// park flag was down, having raised it. While the flag is up it sleeps on
    /// [`Activity::rearm`] (no timer: any wake of the connection's task re-polls
    /// hyper, which must not happen on a clock) until the next byte lowers it.
    async fn arm_park(self: Arc<Self>, after: Duration) {
        let limit = after.as_millis() as u64;
        loop {
            if self.park.load(Ordering::Relaxed) {
                // (a permit left by an earlier lowering only costs one more check)
                self.rearm.notified().await;
                continue;
            }
            let idle = self.quiet_ms();
            if idle >= limit {
                self.park.store(true, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_millis((limit - idle).max(10))).await;
        }
    }

    /// Resolves once the connection has moved no byte for `timeout`.
    async fn stalled(self: Arc<Self>, timeout: Duration) {
        let limit = timeout.as_millis() as u64;
        loop {
            let idle = self.now_ms().saturating_sub(self.last_progress_ms.load(Ordering::Relaxed));
            if idle >= limit {
                return;
            }
            tokio::time::sleep(Duration::from_millis((limit - idle).max(50))).await;
        }
    }
}

/// A socket that reports its progress to an [`Activity`]; the connection's
/// watchdog closes it when it stalls (`--idle-timeout-secs`). The placeholder
/// chunks of file bodies are sent from their files with `sendfile` (see
/// [`crate::http::sendfile`]); every other byte is written as is. It also
/// decides when hyper may let go of the connection between requests (parking,
/// see [`Connection::serve`]).
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
    sendfile: Sendfile,
    /// The last write-side call was a completed flush (hyper flushes only with
    /// its write buffer empty), and nothing was written since.
    flushed: bool,
    /// The last bytes read ended with the blank line that ends a request head.
    head_ended: bool,
    /// hyper was told "end of stream" to park the connection.
    parked: bool,
}

impl Watched {
    /// hyper asks for more bytes and may be let go: nothing of a request or
    /// response is in hyper's hands (see [`Connection::serve`]).
    fn may_park(&self) -> bool {
        self.activity.park.load(Ordering::Relaxed)
            && self.activity.served.load(Ordering::Relaxed)
            && self.flushed
            && self.head_ended
            && self.activity.in_flight.load(Ordering::Relaxed) == 0
            && !self.activity.had_body.load(Ordering::Relaxed)
            && self.sendfile.pending() == 0
    }
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        match &r {
            std::task::Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.head_ended = buf.filled()[before..].ends_with(b"\r\n\r\n");
            }
            std::task::Poll::Pending if this.may_park() => {
                // nothing to read and nothing in hyper's hands: end hyper's turn
                this.parked = true;
                return std::task::Poll::Ready(Ok(()));
            }
            _ => {}
        }
        this.activity.record(&r);
        r
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.flushed = false;
        let r = if sendfile::is_placeholder(buf) {
            this.sendfile.poll_send(&this.inner, cx, buf)
        } else {
            std::pin::Pin::new(&mut this.inner).poll_write(cx, buf)
        };
        this.activity.record(&r);
        r
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.flushed = false;
        // a placeholder first: send it; else write what comes before the first one
        let first = bufs.iter().position(|b| !b.is_empty());
        let r = match first {
            Some(i) if sendfile::is_placeholder(&bufs[i]) => this.sendfile.poll_send(&this.inner, cx, &bufs[i]),
            _ => {
                match bufs.iter().position(|b| sendfile::is_placeholder(b)) {
                    // file bytes follow: hold this back to go out with them
                    Some(end) => sendfile::poll_write_more(&this.inner, cx, &bufs[..end]),
                    None => std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
                }
            }
        };
        this.activity.record(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.inner).poll_flush(cx);
        this.flushed = matches!(r, std::task::Poll::Ready(Ok(())));
        r
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

#[cfg(test)]
mod tests {
    /// What a parked connection's task carries (hyper's state is boxed while it
    /// runs and dropped while parked): kept small on purpose.
    #[tokio::test]
    async fn a_parked_connection_task_stays_small() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = tokio::net::TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let conn = super::Connection {
            app: axum::Router::new(),
            builder: std::sync::Arc::new(hyper::server::conn::http1::Builder::new()),
            stop: tokio_util::sync::CancellationToken::new(),
            header_timeout: std::time::Duration::from_secs(1),
            idle: std::time::Duration::from_secs(1),
            lot: None,
        };
        let limit = std::sync::Arc::new(crate::limits::connections::ConnectionLimit::new(1));
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let task = conn.serve(s, l.local_addr().unwrap(), limit.reserve().await.unwrap().open(), tx);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 640, "{size} bytes");
    }
}
