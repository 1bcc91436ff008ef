//! Connections: one writer, a bounded pool of readers used from the blocking
//! pool, each read under a time budget and stopped when its caller goes away.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use super::schema::{configure, migrate};
use super::sql::backend;
use crate::limits::{BoundReport, BoundSource};
use crate::store::StoreError;

/// Bound: reader connections (concurrent read queries).
pub const READERS: usize = 4;
/// How long a query waits for a reader before 503.
pub const READER_WAIT: Duration = Duration::from_secs(10);
/// Bound: default time one read may hold its connection (`--query-timeout-ms`).
pub const READ_BUDGET: Duration = Duration::from_secs(30);
/// SQLite VM instructions between checks of a read's deadline and cancellation.
const PROGRESS_OPS: i32 = 10_000;
/// Bound: ids per `IN (...)` statement when fetching references.
pub const FETCH_CHUNK: usize = 500;
/// Bound: SQLite's own heap (page caches, statements, full-text merge buffers),
/// a soft limit: past it SQLite frees cache pages before allocating more.
/// Process-wide; listed in `/api/health/memory` as `sqlite_heap`.
pub const SQLITE_SOFT_HEAP_LIMIT: i64 = 24 * 1024 * 1024;

pub struct SqliteStore {
    inner: Arc<Inner>,
    read_budget: Duration,
}

pub(super) struct Inner {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    slots: tokio::sync::Semaphore,
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl SqliteStore {
    /// Open (creating and migrating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // SAFETY: sets a process-wide limit; safe to call at any time.
        unsafe { rusqlite::ffi::sqlite3_soft_heap_limit64(SQLITE_SOFT_HEAP_LIMIT) };
        let mut writer = Connection::open(path).map_err(backend)?;
        configure(&writer).map_err(backend)?;
        migrate(&mut writer)?;
        // Refresh the planner's statistics where SQLite thinks they are stale.
        writer
            .execute_batch("PRAGMA optimize=0x10002;")
            .map_err(backend)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let c = Connection::open(path).map_err(backend)?;
            configure(&c).map_err(backend)?;
            c.execute_batch("PRAGMA query_only=1;").map_err(backend)?;
            readers.push(c);
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers: Mutex::new(readers),
                slots: tokio::sync::Semaphore::new(READERS),
            }),
            read_budget: READ_BUDGET,
        })
    }

    /// The time one read may hold its connection before SQLite is interrupted.
    pub fn with_read_budget(mut self, budget: Duration) -> Self {
        self.read_budget = budget;
        self
    }

    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("oipd.sqlite")
    }

    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = tokio::time::timeout(READER_WAIT, self.inner.slots.acquire())
            .await
            .map_err(|_| StoreError::Busy)?
            .map_err(|_| StoreError::Busy)?;
        let inner = self.inner.clone();
        // Set when this future is dropped (the client went away): the read stops.
        let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancelled.clone());
        let deadline = std::time::Instant::now() + self.read_budget;
        let out = crate::memory::track::spawn_blocking(move || {
            let conn = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let Some(conn) = conn else {
                return Err(StoreError::Busy);
            };
            let stop = cancelled.clone();
            conn.progress_handler(
                PROGRESS_OPS,
                Some(move || {
                    stop.load(std::sync::atomic::Ordering::Relaxed)
                        || std::time::Instant::now() > deadline
                }),
            );
            let r = f(&conn).map_err(|e| match e {
                StoreError::Interrupted
                    if !cancelled.load(std::sync::atomic::Ordering::Relaxed) =>
                {
                    StoreError::TimedOut
                }
                e => e,
            });
            conn.progress_handler(0, None::<fn() -> bool>);
            inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            r
        })
        .await
        .map_err(backend)?;
        drop(permit);
        out
    }

    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        crate::memory::track::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(backend)?
    }
}

impl BoundSource for SqliteStore {
    fn report(&self, out: &mut Vec<BoundReport>) {
        out.push(BoundReport {
            name: "sqlite_readers",
            unit: "connections",
            capacity: READERS as u64,
            fill: (READERS - self.inner.slots.available_permits()) as u64,
            config: "const store::sqlite::READERS",
        });
        out.push(BoundReport {
            name: "sqlite_heap",
            unit: "bytes",
            capacity: SQLITE_SOFT_HEAP_LIMIT as u64,
            // SAFETY: reads a counter.
            fill: unsafe { rusqlite::ffi::sqlite3_memory_used() }.max(0) as u64,
            config: "const store::sqlite::conn::SQLITE_SOFT_HEAP_LIMIT",
        });
    }
}
