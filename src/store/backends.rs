//! Choosing a record store from a URL (`--store` / `OIPD_STORE`): the one place a
//! backend is picked. `sqlite://<path>` is the embedded default
//! (`<data-dir>/oipd.sqlite`); `postgres://user:password@host:port/db` (or
//! `postgresql://`) is PostgreSQL, shared by any number of nodes; other schemes
//! are refused with a clear message.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::postgres::PgStore;
use super::sqlite::{SqliteStore, READ_BUDGET};
use super::indexer::IndexerStore;
use super::gun::GunStore;
use super::lease::LeaseStore;
use super::media::MediaIndexStore;
use super::users::UserStore;
use super::{RecordStore, StoreError};

/// Every store of the node, over one backend: records, accounts, the indexer's
/// state, the GUN graph and the leases of singleton work.
#[derive(Clone)]
pub struct Stores {
    pub records: Arc<dyn RecordStore>,
    pub users: Arc<dyn UserStore>,
    pub indexer: Arc<dyn IndexerStore>,
    pub gun: Arc<dyn GunStore>,
    /// Who runs singleton background work when nodes share the store.
    pub leases: Arc<dyn LeaseStore>,
    /// Manifests of media kept in an object store.
    pub media: Arc<dyn MediaIndexStore>,
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://<path>` (relative or absolute) or a bare path.
    Sqlite(PathBuf),
    /// `postgres://…` / `postgresql://…`, as given (with its credentials).
    Postgres(String),
}

impl StoreUrl {
    /// The embedded default for a data directory.
    pub fn default_for(data_dir: &Path) -> Self {
        StoreUrl::Sqlite(SqliteStore::path_in(data_dir))
    }

    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Backend(
                    "--store sqlite:// needs a file path, e.g. sqlite://./data/oipd.sqlite".into(),
                ));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            super::postgres::parse_url(s)?;
            return Ok(StoreUrl::Postgres(s.to_owned()));
        }
        match s.split_once("://") {
            Some((scheme, _)) => Err(StoreError::Backend(format!(
                "--store: unsupported store {scheme}:// (supported: sqlite://<path>, postgres://user:password@host:port/db)"
            ))),
            None if s.is_empty() => Err(StoreError::Backend("--store is empty".into())),
            None => Ok(StoreUrl::Sqlite(PathBuf::from(s))),
        }
    }

    /// For logs: never includes credentials.
    pub fn describe(&self) -> String {
        match self {
            StoreUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            StoreUrl::Postgres(u) => super::postgres::redact(u),
        }
    }
}

/// Open (creating and migrating) the stores at `url`; `read_budget` is the time one
/// read may take before it is interrupted.
pub fn open(url: &StoreUrl, read_budget: Duration) -> Result<Stores, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
            }
            let s = Arc::new(SqliteStore::open(path)?.with_read_budget(read_budget));
            Ok(Stores { records: s.clone(), users: s.clone(), indexer: s.clone(), gun: s.clone(), leases: s.clone(), media: s })
        }
        StoreUrl::Postgres(u) => {
            let s = Arc::new(PgStore::open(u, read_budget)?);
            Ok(Stores { records: s.clone(), users: s.clone(), indexer: s.clone(), gun: s.clone(), leases: s.clone(), media: s })
        }
    }
}

/// The default stores of a data directory, with the default read budget (tools, tests).
pub fn open_dir(data_dir: &Path) -> Result<Stores, StoreError> {
    open(&StoreUrl::default_for(data_dir), READ_BUDGET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/x.sqlite").unwrap(),
            StoreUrl::Sqlite("/tmp/x.sqlite".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite://rel/x.sqlite").unwrap(),
            StoreUrl::Sqlite("rel/x.sqlite".into())
        );
        assert_eq!(
            StoreUrl::parse("/a/b.sqlite").unwrap(),
            StoreUrl::Sqlite("/a/b.sqlite".into())
        );
        assert!(StoreUrl::parse("sqlite://").is_err());
        let pg = StoreUrl::parse("postgres://oipd:secret@db:5432/oipd").unwrap();
        assert_eq!(pg.describe(), "postgres://oipd@db:5432/oipd");
        assert!(StoreUrl::parse("postgresql://h/db").is_ok());
        let e = StoreUrl::parse("mysql://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mysql://") && !e.contains("secret"), "{e}");
        assert_eq!(
            StoreUrl::default_for(Path::new("/d")),
            StoreUrl::Sqlite("/d/oipd.sqlite".into())
        );
    }
}
