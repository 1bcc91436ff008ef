//! The store contract suite's seam: every record-store backend, and the one way a
//! test gets a store. Contract tests (records API, import, resolution properties)
//! wrap their body in [`each_backend`]; inside it every [`TestServer`] and
//! [`open_store`] uses that backend. Adding a backend is one line in [`BACKENDS`];
//! it must then pass every contract test unchanged.
//!
//! [`TestServer`]: super::server::TestServer

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use oipd::store::backends::{Stores, StoreUrl};
use oipd::store::RecordStore;

/// A record-store backend under test.
pub struct Backend {
    pub name: &'static str,
    /// The `--store` URL for a data directory; `None`: the embedded default.
    pub url: fn(&Path) -> Option<String>,
    /// The name of its connection bound in `/api/health/memory`.
    pub pool_bound: &'static str,
}

/// Every backend the contract suite runs against.
pub const BACKENDS: &[Backend] = &[
    Backend { name: "sqlite", url: |_| None, pool_bound: "sqlite_readers" },
    Backend { name: "postgres", url: |dir| Some(super::pg::database_for(dir)), pool_bound: "postgres_pool" },
];

tokio::task_local! {
    static CURRENT: &'static Backend;
}

thread_local! {
    static CURRENT_BLOCKING: std::cell::Cell<Option<&'static Backend>> = const { std::cell::Cell::new(None) };
}

/// The backend of the running contract test (the first outside one).
pub fn current_backend() -> &'static Backend {
    CURRENT.try_with(|b| *b).ok().or_else(|| CURRENT_BLOCKING.with(|c| c.get())).unwrap_or(&BACKENDS[0])
}

/// [`each_backend`] for tests without a runtime of their own.
pub fn each_backend_blocking(test: impl Fn()) {
    for b in BACKENDS {
        eprintln!("store contract: backend {}", b.name);
        CURRENT_BLOCKING.with(|c| c.set(Some(b)));
        test();
        CURRENT_BLOCKING.with(|c| c.set(None));
    }
}

/// Run `test` once per backend.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    for b in BACKENDS {
        eprintln!("store contract: backend {}", b.name);
        CURRENT.scope(b, test()).await;
    }
}

/// The current backend's stores for a data directory.
pub fn open_stores(data_dir: &Path) -> Stores {
    open_stores_on(current_backend(), data_dir)
}

/// `backend`'s record store for a data directory.
pub fn open_store_on(backend: &Backend, data_dir: &Path) -> Arc<dyn RecordStore> {
    open_stores_on(backend, data_dir).records
}

/// `backend`'s stores for a data directory.
pub fn open_stores_on(backend: &Backend, data_dir: &Path) -> Stores {
    let url = match (backend.url)(data_dir) {
        Some(u) => StoreUrl::parse(&u).unwrap(),
        None => StoreUrl::default_for(data_dir),
    };
    oipd::store::backends::open(&url, oipd::store::sqlite::READ_BUDGET).unwrap()
}
