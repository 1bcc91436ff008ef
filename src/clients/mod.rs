//! The one outbound HTTP client. Every call oipd makes to another server (TTS,
//! STT and LLM services, GUN peers, Arweave gateways, bundlers) goes through one
//! shared [`OutboundClient`], so the bounds below hold for the process as a whole.
//!
//! Built on `reqwest` rather than hyper-util's legacy client: connection pooling,
//! redirects, TLS (rustls) and multipart bodies are done and maintained there; we
//! only add the bounds. What this module adds, each in one place:
//!
//! - **in flight** ([`limiter`]): at most [`ClientLimits::per_host`] requests to
//!   one origin and [`ClientLimits::max_in_flight`] in all. A request that finds
//!   no slot waits at most [`ClientLimits::wait`] (and only if fewer than
//!   [`ClientLimits::max_waiting`] already wait), then fails with
//!   [`ClientError::Busy`]. Origins are tracked in a map of at most
//!   [`ClientLimits::max_hosts`] entries; idle ones are evicted when it is full.
//!   A request holds its slots until its [`Response`] (or body stream) is dropped.
//! - **response size** ([`response`]): bodies are read through a cap
//!   ([`ClientLimits::max_response_bytes`]) counted while streaming; a declared
//!   `Content-Length` over the cap is refused before reading.
//! - **time**: connect, per-read and total timeouts, all set on the pool.
//! - **redirects**: at most [`ClientLimits::max_redirects`]; no `Referer` is
//!   sent (it would carry our URL, perhaps with a key in its query, to another
//!   host), and reqwest drops `Authorization`/`Cookie` on a cross-host hop.
//!
//! Errors never carry request bodies, header values or URLs (a URL may hold a
//! key): only the host, and the transport's own message.

pub mod client;
pub mod limiter;
pub mod response;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use client::OutboundClient;
pub use response::{BodyStream, Response};

/// Default of [`ClientLimits::pool_max_idle_per_host`]: idle keep-alive
/// connections kept per origin. Enough for the usual few concurrent calls to a
/// service; each idle connection costs a socket and its buffers.
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 8;
/// Default of [`ClientLimits::pool_idle_timeout`]: an idle connection is closed
/// after this long (servers commonly close theirs after 60 s or more).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`ClientLimits::connect_timeout`]: TCP + TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`ClientLimits::read_timeout`]: the longest wait for any read (the
/// response head, or the next piece of the body). A token stream that pauses
/// longer than this between tokens is cut.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`ClientLimits::request_timeout`]: a whole request, body included.
/// Callers with long streams set their own with `RequestBuilder::timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`ClientLimits::max_response_bytes`]: 16 MiB, far above any JSON
/// answer we expect from a service; larger payloads are streamed, not buffered.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// Default of [`ClientLimits::max_redirects`].
pub const DEFAULT_MAX_REDIRECTS: usize = 5;
/// Default of [`ClientLimits::per_host`]: requests in flight to one origin.
pub const DEFAULT_PER_HOST: usize = 8;
/// Default of [`ClientLimits::max_in_flight`]: requests in flight in all.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Default of [`ClientLimits::max_hosts`]: origins tracked at once.
pub const DEFAULT_MAX_HOSTS: usize = 256;
/// Default of [`ClientLimits::max_waiting`]: requests waiting for a slot.
pub const DEFAULT_MAX_WAITING: usize = 256;
/// Default of [`ClientLimits::wait`]: how long a request waits for a slot.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// Bound: bytes of a transport or decode message kept in a [`ClientError`].
pub const MAX_ERROR_TEXT: usize = 512;

/// The `User-Agent` of every outbound request.
pub const USER_AGENT: &str = concat!("oipd/", env!("CARGO_PKG_VERSION"));

/// Every bound of the outbound client. `Default` gives the `DEFAULT_*` consts.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// Idle keep-alive connections kept per origin.
    pub pool_max_idle_per_host: usize,
    /// An idle pooled connection is closed after this.
    pub pool_idle_timeout: Duration,
    /// TCP connect (and TLS handshake).
    pub connect_timeout: Duration,
    /// Longest wait for one read, head or body.
    pub read_timeout: Duration,
    /// A whole request, body included, unless the request sets its own.
    pub request_timeout: Duration,
    /// Largest body [`Response::bytes_limited`] buffers, and the default cap of
    /// [`Response::stream`].
    pub max_response_bytes: u64,
    /// Redirects followed before [`ClientError::TooManyRedirects`].
    pub max_redirects: usize,
    /// Requests in flight to one origin (scheme, host, port).
    pub per_host: usize,
    /// Requests in flight in all.
    pub max_in_flight: usize,
    /// Origins tracked (one semaphore each).
    pub max_hosts: usize,
    /// Requests waiting for a slot; past it, [`ClientError::Busy`] at once.
    pub max_waiting: usize,
    /// Longest wait for a slot before [`ClientError::Busy`].
    pub wait: Duration,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            per_host: DEFAULT_PER_HOST,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_hosts: DEFAULT_MAX_HOSTS,
            max_waiting: DEFAULT_MAX_WAITING,
            wait: DEFAULT_WAIT,
        }
    }
}

/// What can go wrong with an outbound request. HTTP error statuses are not
/// errors here: callers look at [`Response::status`] and decide.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connect, read or total timeout.
    #[error("outbound request timed out")]
    Timeout,
    /// Could not connect (DNS, refused, TLS handshake).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The body is (or declares itself) larger than the cap.
    #[error("response larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// No slot for the request within the wait. `host` is the origin, or `*`
    /// when the global in-flight cap (or the wait queue) was the full one.
    #[error("too many outbound requests in flight to {host}")]
    Busy { host: String },
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: usize },
    /// The body is not the expected JSON.
    #[error("could not decode response: {0}")]
    Decode(String),
    /// The client could not be built (TLS backend, bad limits).
    #[error("could not build the HTTP client: {0}")]
    Build(String),
    #[error("outbound request failed: {0}")]
    Other(String),
}

impl ClientError {
    /// A reqwest error, without its URL, redirect errors aside (the client maps
    /// those, knowing the limit).
    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            ClientError::Timeout
        } else if e.is_connect() {
            ClientError::Connect(describe(&e))
        } else {
            ClientError::Other(describe(&e))
        }
    }

    /// Whether the request was refused for want of a slot (worth retrying later).
    pub fn is_busy(&self) -> bool {
        matches!(self, ClientError::Busy { .. })
    }
}

/// The error and its sources, `a: b: c`, without the URL, bounded.
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = match err.downcast_ref::<reqwest::Error>() {
            Some(r) => strip_url(r),
            None => err.to_string(),
        };
        if !text.is_empty() && !out.ends_with(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            let _ = write!(out, "{text}");
        }
        if out.len() >= MAX_ERROR_TEXT {
            break;
        }
        cur = err.source();
    }
    truncate(out, MAX_ERROR_TEXT)
}

/// A reqwest error's own message (not its sources), without its URL.
fn strip_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text.replace(&format!(" for url ({url})"), "").replace(url.as_str(), "(url)"),
        None => text,
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
