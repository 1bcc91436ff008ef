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
pub mod error;
pub mod limiter;
pub mod limits;
pub mod response;

#[cfg(test)]
mod tests;

pub use client::OutboundClient;
pub use error::ClientError;
pub use limits::ClientLimits;
pub use response::{BodyStream, Response};
