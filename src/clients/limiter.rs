//! Slots for outbound requests: at most `per_host` in flight to one origin, at
//! most `max_in_flight` in all, at most `max_waiting` requests waiting for a
//! slot, each for at most `wait`. A request holds its [`Permits`] until its
//! response is dropped.
//!
//! Origins (`scheme://host:port`) are tracked in a map of at most `max_hosts`
//! semaphores. A semaphore nobody else holds (no permit out, no waiter: its
//! `Arc` count is 1, the map's own) is idle; when the map is full, idle entries
//! are evicted to make room, and if none is idle the request is `Busy`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::ClientError;
use super::limits::ClientLimits;

/// The `host` of a [`ClientError::Busy`] caused by the global cap or the queue.
pub const ANY_HOST: &str = "*";

/// The slots one request holds: its origin's and the global one.
#[derive(Debug)]
pub struct Permits {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

pub struct Limiter {
    per_host: usize,
    max_hosts: usize,
    max_in_flight: usize,
    max_waiting: usize,
    wait: Duration,
    /// One permit per request in flight, all origins together.
    global: Arc<Semaphore>,
    /// One semaphore of `per_host` permits per origin; at most `max_hosts`.
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Requests waiting for a slot right now; at most `max_waiting`.
    waiting: AtomicUsize,
}

/// Leaves the wait queue however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Limiter {
    pub fn new(limits: &ClientLimits) -> Self {
        let clamp = |n: usize| n.clamp(1, Semaphore::MAX_PERMITS);
        let max_in_flight = clamp(limits.max_in_flight);
        Limiter {
            per_host: clamp(limits.per_host),
            max_hosts: limits.max_hosts.max(1),
            max_in_flight,
            max_waiting: limits.max_waiting,
            wait: limits.wait,
            global: Arc::new(Semaphore::new(max_in_flight)),
            hosts: Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
        }
    }

    fn hosts(&self) -> MutexGuard<'_, HashMap<String, Arc<Semaphore>>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Slots for one request to `origin`, waiting at most `wait` in all.
    pub async fn acquire(&self, origin: &str) -> Result<Permits, ClientError> {
        let deadline = Instant::now() + self.wait;
        let host = self.host_semaphore(origin)?;
        let host = self.take(host, deadline, origin).await?;
        let global = self.take(self.global.clone(), deadline, ANY_HOST).await?;
        Ok(Permits { _host: host, _global: global })
    }

    /// A permit of `sem`: at once, or after waiting in the bounded queue.
    async fn take(&self, sem: Arc<Semaphore>, deadline: Instant, host: &str) -> Result<OwnedSemaphorePermit, ClientError> {
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(p);
        }
        let busy = |host: &str| ClientError::Busy { host: host.to_owned() };
        let _waiting = self.join_queue().ok_or_else(|| busy(ANY_HOST))?;
        match tokio::time::timeout_at(deadline, sem.acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy(host)),
        }
    }

    /// Enter the wait queue if it has room.
    fn join_queue(&self) -> Option<Waiting<'_>> {
        let mut n = self.waiting.load(Ordering::Acquire);
        loop {
            if n >= self.max_waiting {
                return None;
            }
            match self.waiting.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(Waiting(&self.waiting)),
                Err(cur) => n = cur,
            }
        }
    }

    /// The origin's semaphore, created (evicting idle origins if the map is full).
    fn host_semaphore(&self, origin: &str) -> Result<Arc<Semaphore>, ClientError> {
        let mut hosts = self.hosts();
        if let Some(s) = hosts.get(origin) {
            return Ok(s.clone());
        }
        if hosts.len() >= self.max_hosts {
            // Clones are made only under this lock, so a count of 1 cannot rise
            // while we look: the entry is idle.
            hosts.retain(|_, s| Arc::strong_count(s) > 1);
        }
        if hosts.len() >= self.max_hosts {
            return Err(ClientError::Busy { host: origin.to_owned() });
        }
        let s = Arc::new(Semaphore::new(self.per_host));
        hosts.insert(origin.to_owned(), s.clone());
        Ok(s)
    }

    pub fn per_host(&self) -> usize {
        self.per_host
    }

    pub fn max_hosts(&self) -> usize {
        self.max_hosts
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    pub fn max_waiting(&self) -> usize {
        self.max_waiting
    }

    /// Requests holding slots now (sent, or their response not yet dropped).
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.global.available_permits()
    }

    /// Origins tracked now.
    pub fn hosts_tracked(&self) -> usize {
        self.hosts().len()
    }

    /// Requests in flight to the busiest origin.
    pub fn busiest_host(&self) -> usize {
        self.hosts().values().map(|s| self.per_host - s.available_permits()).max().unwrap_or(0)
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}
