//! The bound on concurrent file streams — a real one, unlike the original's
//! advisory 20-slot semaphore that never blocked.
//!
//! A body that streams a file holds a [`StreamPermit`] until it is dropped (the
//! last chunk sent, or the client gone), so the number of open file bodies, their
//! fds and their in-flight chunks are bounded by `--max-streams`. A request that
//! finds no free slot waits, but only if fewer than `--stream-queue` requests are
//! already waiting, and only for `--stream-wait-ms`; otherwise it gets 503 with
//! `Retry-After`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{BoundReport, BoundSource, Overloaded};

/// How a limiter is named in `/api/health/memory` and in its 503s.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    pub name: &'static str,
    pub queue_name: &'static str,
    pub config: &'static str,
    pub queue_config: &'static str,
    /// `details` of the 503: "<what> is full".
    pub what: &'static str,
}

/// The file-stream limiter's labels.
pub const FILE_STREAMS: Labels = Labels {
    name: "file_streams",
    queue_name: "file_stream_queue",
    config: "--max-streams / OIPD_MAX_STREAMS",
    queue_config: "--stream-queue / OIPD_STREAM_QUEUE",
    what: "file stream limit",
};

pub struct StreamLimiter {
    labels: Labels,
    slots: Arc<Semaphore>,
    capacity: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
    retry_after: u64,
}

/// A held stream slot; released on drop.
pub struct StreamPermit {
    _permit: OwnedSemaphorePermit,
}

/// Decrements the waiter count however the wait ends (granted, timed out, dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl StreamLimiter {
    pub fn new(labels: Labels, capacity: usize, max_waiting: usize, wait: Duration, retry_after: u64) -> Self {
        let capacity = capacity.max(1);
        StreamLimiter {
            labels,
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
            retry_after,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots held right now.
    pub fn in_use(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }

    /// Requests waiting for a slot right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    pub async fn acquire(&self) -> Result<StreamPermit, Overloaded> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(StreamPermit { _permit: p });
        }
        let overloaded = Overloaded { what: self.labels.what, retry_after: self.retry_after };
        // Join the queue only if it has room.
        let mut n = self.waiting.load(Ordering::Acquire);
        loop {
            if n >= self.max_waiting {
                return Err(overloaded);
            }
            match self.waiting.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(cur) => n = cur,
            }
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(StreamPermit { _permit: p }),
            _ => Err(overloaded),
        }
    }
}

impl BoundSource for StreamLimiter {
    fn report(&self, out: &mut Vec<BoundReport>) {
        out.push(BoundReport {
            name: self.labels.name,
            unit: "streams",
            capacity: self.capacity as u64,
            fill: self.in_use() as u64,
            config: self.labels.config,
        });
        out.push(BoundReport {
            name: self.labels.queue_name,
            unit: "requests",
            capacity: self.max_waiting as u64,
            fill: self.waiting() as u64,
            config: self.labels.queue_config,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocks_queues_and_times_out() {
        let l = Arc::new(StreamLimiter::new(FILE_STREAMS, 2, 1, Duration::from_millis(100), 3));
        let a = l.acquire().await.unwrap();
        let _b = l.acquire().await.unwrap();
        assert_eq!(l.in_use(), 2);

        // Third waits (queue 1/1), fourth is refused at once.
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(l.waiting(), 1);
        let t = std::time::Instant::now();
        let err = l.acquire().await.err().unwrap();
        assert!(t.elapsed() < Duration::from_millis(50));
        assert_eq!(err.retry_after, 3);

        // Releasing a slot lets the waiter in.
        drop(a);
        assert!(waiter.await.unwrap().is_ok());
        assert_eq!(l.waiting(), 0);

        // With both slots held again, a waiter times out and leaves the queue.
        let _c = l.acquire().await.unwrap();
        let t = std::time::Instant::now();
        assert!(l.acquire().await.is_err());
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert_eq!(l.waiting(), 0);
    }
}
