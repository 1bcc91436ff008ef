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
//! HTTP/1.1 only. Browsers speak HTTP/2 only over TLS, which belongs to a
//! terminating proxy; cleartext h2c would only add a way to hold connections
//! open (hyper has no idle timeout for HTTP/2), so its preface is refused.
//!
//! Shutdown: when the shutdown future resolves (SIGINT/SIGTERM in `main`), the
//! listener closes, idle keep-alive connections are told to close, and in-flight
//! responses get `--shutdown-grace-secs` to finish before the server returns;
//! in the same grace the task supervisor cancels every background task and joins
//! it (aborting what does not stop).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::http::sendfile::{self, Sendfile};
use crate::limits::connections::{OpenConnection, PeerAddr};
use crate::state::SharedState;

/// Pause after an accept error (EMFILE and the like) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serve `state` on `listener` until `shutdown` resolves, then drain.
pub async fn run(listener: TcpListener, state: SharedState, shutdown: impl Future<Output = ()>) {
    let app = crate::api::router(state.clone());
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(state.config.http.header_timeout_secs.max(1)))
        .max_buf_size(crate::limits::MAX_HEAD_BYTES)
        // body chunks queued by reference, never copied: what lets a file body's
        // placeholder chunks reach `Watched` to go with sendfile (http::sendfile)
        .writev(true)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

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
        let app = app.clone();
        let sendfile = Sendfile::new();
        let queue = sendfile.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            // who is on the other end of the socket (login limits key by it)
            req.extensions_mut().insert(PeerAddr(peer));
            // file bodies may hand their bytes to the kernel on this socket
            req.extensions_mut().insert(queue.clone());
            app.clone().oneshot(req)
        });
        let activity = Activity::new();
        let io = Watched { inner: stream, activity: activity.clone(), sendfile };
        let conn = builder.serve_connection(TokioIo::new(io), service);
        let watched = graceful.watch(conn);
        let idle = Duration::from_secs(state.config.http.idle_timeout_secs.max(1));
        tokio::spawn(async move {
            tokio::select! {
                _ = watched => {}
                // dropping the connection drops its request, body and whatever they hold
                _ = activity.stalled(idle) => tracing::debug!("closed a stalled connection"),
            }
            drop(open);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(state.config.http.shutdown_grace_secs);
    tracing::info!(grace_secs = grace.as_secs(), "shutting down: draining connections and stopping background tasks");
    let deadline = tokio::time::Instant::now() + grace;
    let connections = async {
        tokio::select! {
            _ = graceful.shutdown() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep_until(deadline) => tracing::warn!("grace period over; closing remaining connections"),
        }
    };
    // Background tasks stop in the same grace, joined or aborted by the supervisor.
    let (_, aborted) = tokio::join!(connections, state.tasks.shutdown(grace));
    if !aborted.is_empty() {
        tracing::warn!(?aborted, "background tasks did not stop within the grace period");
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

/// Progress of one connection's socket, shared with its stall watchdog.
struct Activity {
    born: std::time::Instant,
    /// Milliseconds since `born` of the last byte moved (or flush completed).
    last_progress_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity {
            born: std::time::Instant::now(),
            last_progress_ms: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    fn record<T>(&self, r: &std::task::Poll<std::io::Result<T>>) {
        if r.is_ready() {
            self.last_progress_ms.store(self.now_ms(), Ordering::Relaxed);
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
/// [`crate::http::sendfile`]); every other byte is written as is.
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
    sendfile: Sendfile,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        this.activity.record(&r);
        r
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
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
        // a placeholder first: send it; else write what comes before the first one
        let first = bufs.iter().position(|b| !b.is_empty());
        let r = match first {
            Some(i) if sendfile::is_placeholder(&bufs[i]) => this.sendfile.poll_send(&this.inner, cx, &bufs[i]),
            _ => {
                let end = bufs.iter().position(|b| sendfile::is_placeholder(b)).unwrap_or(bufs.len());
                std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, &bufs[..end])
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
        this.activity.record(&r);
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
