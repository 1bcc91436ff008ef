//! [`OutboundClient`]: the shared reqwest client, with its pool, timeouts and
//! redirect policy set from [`ClientLimits`], and the [`Limiter`] every request
//! passes through. Cheap to clone: clones share the pool and the bounds.
//!
//! Any request goes through [`OutboundClient::send`] / [`OutboundClient::execute`],
//! which take slots, so the in-flight bounds hold; a `RequestBuilder` made by
//! another `reqwest::Client` is sent by ours all the same. Slots are taken for
//! the origin of the first URL: a redirect to another origin runs under them.

use std::sync::Arc;

use reqwest::{Method, Url};
use serde::Serialize;

use super::limiter::Limiter;
use super::response::Response;
use super::error::{describe, ClientError};
use super::limits::{ClientLimits, USER_AGENT};
use crate::limits::{BoundReport, BoundSource};

/// The process's one outbound HTTP client.
#[derive(Clone)]
pub struct OutboundClient {
    inner: reqwest::Client,
    limiter: Arc<Limiter>,
    limits: Arc<ClientLimits>,
}

impl OutboundClient {
    pub fn new(limits: ClientLimits) -> Result<Self, ClientError> {
        let inner = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(limits.pool_max_idle_per_host)
            .pool_idle_timeout(limits.pool_idle_timeout)
            .connect_timeout(limits.connect_timeout)
            .read_timeout(limits.read_timeout)
            .timeout(limits.request_timeout)
            .redirect(reqwest::redirect::Policy::limited(limits.max_redirects))
            .referer(false)
            .build()
            .map_err(|e| ClientError::Build(describe(&e)))?;
        let limiter = Arc::new(Limiter::new(&limits));
        Ok(OutboundClient { inner, limiter, limits: Arc::new(limits) })
    }

    pub fn limits(&self) -> &ClientLimits {
        &self.limits
    }

    /// A request to build (headers, body, `timeout` for a longer stream), then
    /// hand to [`OutboundClient::send`]. Only `http` and `https` URLs with a host.
    pub fn builder(&self, method: Method, url: &str) -> Result<reqwest::RequestBuilder, ClientError> {
        let url = parse_url(url)?;
        Ok(self.inner.request(method, url))
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Response, ClientError> {
        self.send(self.builder(Method::GET, url)?).await
    }

    /// `POST url` with `body` as JSON.
    pub async fn post_json<T: Serialize + ?Sized>(&self, url: &str, body: &T) -> Result<Response, ClientError> {
        self.send(self.builder(Method::POST, url)?.json(body)).await
    }

    /// Send a built request (from [`OutboundClient::builder`]).
    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Result<Response, ClientError> {
        let (_, request) = builder.build_split();
        self.execute(request.map_err(|e| self.map_err(e))?).await
    }

    /// Send a request: wait (bounded) for slots, send it, and return the
    /// response head with its body unread.
    pub async fn execute(&self, request: reqwest::Request) -> Result<Response, ClientError> {
        let origin = origin(request.url())?;
        let permits = self.limiter.acquire(&origin).await?;
        let response = self.inner.execute(request).await.map_err(|e| self.map_err(e))?;
        Ok(Response::new(response, permits, self.limits.max_response_bytes))
    }

    fn map_err(&self, e: reqwest::Error) -> ClientError {
        if e.is_redirect() {
            ClientError::TooManyRedirects { limit: self.limits.max_redirects }
        } else {
            ClientError::from_reqwest(e)
        }
    }

    /// Requests holding slots now.
    pub fn in_flight(&self) -> usize {
        self.limiter.in_flight()
    }

    /// Origins tracked now.
    pub fn hosts_tracked(&self) -> usize {
        self.limiter.hosts_tracked()
    }
}

/// Parse and check an outbound URL (the message never repeats the URL).
fn parse_url(url: &str) -> Result<Url, ClientError> {
    let url = Url::parse(url).map_err(|e| ClientError::InvalidUrl(e.to_string()))?;
    origin(&url)?;
    Ok(url)
}

/// `scheme://host:port` of an `http`/`https` URL: the key of the per-origin bound.
fn origin(url: &Url) -> Result<String, ClientError> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(ClientError::InvalidUrl(format!("scheme {scheme:?} is not http or https")));
    }
    let host = url.host_str().ok_or_else(|| ClientError::InvalidUrl("no host".into()))?;
    let port = url.port_or_known_default().ok_or_else(|| ClientError::InvalidUrl("no port".into()))?;
    Ok(format!("{scheme}://{host}:{port}"))
}

impl BoundSource for OutboundClient {
    fn report(&self, out: &mut Vec<BoundReport>) {
        let l = &self.limiter;
        out.push(BoundReport {
            name: "outbound_requests",
            unit: "requests",
            capacity: l.max_in_flight() as u64,
            fill: l.in_flight() as u64,
            config: "ClientLimits::max_in_flight",
        });
        out.push(BoundReport {
            name: "outbound_per_host",
            unit: "requests",
            capacity: l.per_host() as u64,
            fill: l.busiest_host() as u64,
            config: "ClientLimits::per_host",
        });
        out.push(BoundReport {
            name: "outbound_hosts",
            unit: "hosts",
            capacity: l.max_hosts() as u64,
            fill: l.hosts_tracked() as u64,
            config: "ClientLimits::max_hosts",
        });
        out.push(BoundReport {
            name: "outbound_wait_queue",
            unit: "requests",
            capacity: l.max_waiting() as u64,
            fill: l.waiting() as u64,
            config: "ClientLimits::max_waiting",
        });
        out.push(BoundReport {
            name: "outbound_response_bytes",
            unit: "bytes",
            capacity: self.limits.max_response_bytes,
            fill: 0,
            config: "ClientLimits::max_response_bytes",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let o = |u: &str| origin(&Url::parse(u).unwrap());
        assert_eq!(o("http://Example.com/a?b").unwrap(), "http://example.com:80");
        assert_eq!(o("https://127.0.0.1:8443/").unwrap(), "https://127.0.0.1:8443");
        assert_eq!(o("http://[::1]:9/").unwrap(), "http://[::1]:9");
        assert!(matches!(o("ftp://example.com/"), Err(ClientError::InvalidUrl(_))));
        assert!(matches!(parse_url("not a url"), Err(ClientError::InvalidUrl(_))));
        let secret = "http://user:hunter2@/x";
        let e = parse_url(secret).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
