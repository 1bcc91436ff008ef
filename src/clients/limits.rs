//! The outbound client's bounds and their defaults.

use std::time::Duration;

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
    /// Largest body [`super::Response::bytes_limited`] buffers, and the default cap of
    /// [`super::Response::stream`].
    pub max_response_bytes: u64,
    /// Redirects followed before [`super::ClientError::TooManyRedirects`].
    pub max_redirects: usize,
    /// Requests in flight to one origin (scheme, host, port).
    pub per_host: usize,
    /// Requests in flight in all.
    pub max_in_flight: usize,
    /// Origins tracked (one semaphore each).
    pub max_hosts: usize,
    /// Requests waiting for a slot; past it, [`super::ClientError::Busy`] at once.
    pub max_waiting: usize,
    /// Longest wait for a slot before [`super::ClientError::Busy`].
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

