//! Bounds and their registry: every cache, queue, semaphore and map that could grow
//! registers here, and `/api/health` endpoints list each one with its capacity and
//! current fill. A reviewer asking "what stops this from growing?" finds the answer
//! at the declaration; an operator finds it here, live.
//!
//! The shared limiters live below: [`stream`] (slots with a bounded wait queue, for
//! file bodies and record renders), [`connections`] (open client connections) and
//! [`Permits`] (a named semaphore without a queue: full → [`Overloaded`]).
//! When a bound is full past its wait, the answer is [`Overloaded`]: the API layer
//! turns it into 503 + `Retry-After`.

pub mod connections;
pub mod stream;

use std::sync::Arc;

use serde::Serialize;

/// Bound: bytes of a request head (request line + headers) read before the
/// request is refused (431).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A bound was full and the bounded wait for it ran out (or its queue was full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} is full")]
pub struct Overloaded {
    /// What was full, as the 503's `details` says it.
    pub what: &'static str,
    /// Seconds the client should wait before trying again.
    pub retry_after: u64,
}

/// One bound, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct BoundReport {
    pub name: &'static str,
    /// What is counted (`permits`, `entries`, `requests`, ...).
    pub unit: &'static str,
    pub capacity: u64,
    pub fill: u64,
    /// Where it is configured.
    pub config: &'static str,
}

/// Anything holding one or more bounds.
pub trait BoundSource: Send + Sync {
    fn report(&self, out: &mut Vec<BoundReport>);
}

/// All bound sources of the process.
#[derive(Default, Clone)]
pub struct Bounds {
    sources: Vec<Arc<dyn BoundSource>>,
}

impl Bounds {
    pub fn register(&mut self, source: Arc<dyn BoundSource>) {
        self.sources.push(source);
    }

    pub fn report(&self) -> Vec<BoundReport> {
        let mut out = Vec::new();
        for s in &self.sources {
            s.report(&mut out);
        }
        out
    }
}

/// A semaphore with a name: at most `capacity` holders at once, no waiting
/// (a caller past it is [`Overloaded`]), listed like every other bound.
pub struct Permits {
    name: &'static str,
    unit: &'static str,
    config: &'static str,
    capacity: usize,
    retry_after: u64,
    sem: Arc<tokio::sync::Semaphore>,
}

impl Permits {
    pub fn new(name: &'static str, unit: &'static str, config: &'static str, capacity: usize, retry_after: u64) -> Self {
        Permits { name, unit, config, capacity, retry_after, sem: Arc::new(tokio::sync::Semaphore::new(capacity)) }
    }

    /// A permit now, or [`Overloaded`].
    pub fn try_acquire(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Overloaded> {
        self.sem.clone().try_acquire_owned().map_err(|_| Overloaded { what: self.name, retry_after: self.retry_after })
    }

    /// A permit, waiting at most `wait` for one; then [`Overloaded`].
    pub async fn acquire_within(&self, wait: std::time::Duration) -> Result<tokio::sync::OwnedSemaphorePermit, Overloaded> {
        match tokio::time::timeout(wait, self.sem.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Overloaded { what: self.name, retry_after: self.retry_after }),
        }
    }
}

impl BoundSource for Permits {
    fn report(&self, out: &mut Vec<BoundReport>) {
        out.push(BoundReport {
            name: self.name,
            unit: self.unit,
            capacity: self.capacity as u64,
            fill: (self.capacity - self.sem.available_permits()) as u64,
            config: self.config,
        });
    }
}
