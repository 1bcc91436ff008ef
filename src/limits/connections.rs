//! The bound on open client connections (`--max-connections`). The accept loop
//! reserves a slot *before* `accept`, so past the bound new clients wait in the
//! kernel's backlog rather than in our memory; a served connection holds its slot
//! until it closes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{BoundReport, BoundSource};

/// The bound on open client connections. The accept loop holds one permit while
/// it waits in `accept`, so the fill is counted separately, per served connection.
pub struct ConnectionLimit {
    slots: Arc<Semaphore>,
    capacity: usize,
    open: AtomicUsize,
}

/// One open connection: its slot and its place in the count, released on drop.
pub struct OpenConnection {
    _permit: OwnedSemaphorePermit,
    limit: Arc<ConnectionLimit>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.limit.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionLimit {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        ConnectionLimit {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            open: AtomicUsize::new(0),
        }
    }

    /// Wait for a free slot (`None` once the limit is closed).
    pub async fn reserve(self: &Arc<Self>) -> Option<Reserved> {
        let permit = self.slots.clone().acquire_owned().await.ok()?;
        Some(Reserved {
            permit,
            limit: self.clone(),
        })
    }

    /// Connections being served right now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl BoundSource for ConnectionLimit {
    fn report(&self, out: &mut Vec<BoundReport>) {
        out.push(BoundReport {
            name: "connections",
            unit: "connections",
            capacity: self.capacity as u64,
            fill: self.open() as u64,
            config: "--max-connections / OIPD_MAX_CONNECTIONS",
        });
    }
}

/// A slot reserved for the next accepted connection (not yet counted as open).
pub struct Reserved {
    permit: OwnedSemaphorePermit,
    limit: Arc<ConnectionLimit>,
}

impl Reserved {
    /// The reserved slot now holds an accepted connection.
    pub fn open(self) -> OpenConnection {
        self.limit.open.fetch_add(1, Ordering::AcqRel);
        OpenConnection {
            _permit: self.permit,
            limit: self.limit,
        }
    }
}

/// The peer address of the connection a request came on (a request extension set
/// by the accept loop). Behind a proxy it is the proxy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);
