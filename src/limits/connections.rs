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
    /// Of the open ones, those idle in the server's parking lot.
    parked: AtomicUsize,
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
            parked: AtomicUsize::new(0),
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

    /// Open connections idle between requests in the server's parking lot.
    pub fn parked(&self) -> usize {
        self.parked.load(Ordering::Acquire)
    }
}

impl OpenConnection {
    /// The connection now waits idle in the server's parking lot: counted as
    /// parked until [`ParkedConnection::unpark`] or drop (which also closes it).
    pub fn park(self) -> ParkedConnection {
        self.limit.parked.fetch_add(1, Ordering::AcqRel);
        ParkedConnection(Some(self))
    }
}

/// An open connection idle in the parking lot (its slot still held).
pub struct ParkedConnection(Option<OpenConnection>);

impl ParkedConnection {
    /// Its client spoke again: served once more.
    pub fn unpark(mut self) -> OpenConnection {
        let open = self.0.take().expect("unparked once");
        open.limit.parked.fetch_sub(1, Ordering::AcqRel);
        open
    }
}

impl Drop for ParkedConnection {
    fn drop(&mut self) {
        if let Some(open) = &self.0 {
            open.limit.parked.fetch_sub(1, Ordering::AcqRel);
        }
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
        out.push(BoundReport {
            name: "connections_parked",
            unit: "connections",
            capacity: self.capacity as u64,
            fill: self.parked() as u64,
            config: "--max-connections / OIPD_MAX_CONNECTIONS (idle keep-alive connections, held as bare sockets)",
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
