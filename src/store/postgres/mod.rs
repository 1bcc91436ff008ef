//! The PostgreSQL backend of every store ([`RecordStore`], [`UserStore`],
//! [`IndexerStore`], [`GunStore`]): `--store postgres://user:pass@host:port/db`.
//! Several oipd nodes may share one database; nothing a node needs lives
//! anywhere else.
//!
//! Queries are the SQLite backend's, translated from the same domain
//! [`crate::oip::plan::Plan`] ([`translate`]) with bound, explicitly typed
//! parameters ([`sql`]). Filtering, scoring, full-text ranking, de-duplication,
//! sorting, totals and paging all happen in the database.
//!
//! One file per concern: [`schema`] (versioned migrations, applied at start under
//! an advisory lock), [`records`] (the record store: reads streamed from a row
//! stream, writes), [`users`], [`indexer`], [`gun`], [`lease`] (singleton
//! background work across nodes), [`media`] (manifests of media in an object store).
//!
//! Bounds: a pool of at most [`POOL_SIZE`] connections (a query waits at most
//! [`POOL_WAIT`] for one, then 503 — [`StoreError::Busy`]); each statement's
//! time is the query budget as `statement_timeout` (past it → 503); a request
//! whose caller goes away cancels its query (cancel request) and its connection
//! is discarded, never reused mid-query; page reads and reference fetches stream
//! rows from the server as they are consumed ([`crate::store::FETCH_QUEUE`]);
//! only fixed statements are prepared and cached per connection (their number is
//! that of the statements in this module), queries built from filters are not.
//! When the database is unreachable (restarting), every query answers
//! [`StoreError::Busy`] (503 + `Retry-After`) and the pool reconnects by itself.

pub mod gun;
pub mod indexer;
pub mod lease;
pub mod media;
pub mod records;
pub mod schema;
pub mod sql;
pub mod translate;
pub mod users;

pub use sql::pg_error;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{CancelToken, NoTls};

use crate::limits::{BoundReport, BoundSource};
use crate::store::StoreError;

/// Bound: connections one node holds to PostgreSQL (concurrent queries).
pub const POOL_SIZE: usize = 16;
/// How long a query waits for a pooled connection before 503.
pub const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long opening one connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound: ids per `= ANY(...)` statement when fetching references.
pub const FETCH_CHUNK: usize = 500;

/// The PostgreSQL stores of one node.
pub struct PgStore {
    pool: Pool,
    budget: Duration,
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => match pg_error(e) {
            StoreError::Backend(_) => StoreError::Busy,
            other => other,
        },
        _ => StoreError::Busy,
    }
}

/// The connection settings of a `postgres://` URL; the message never repeats the password.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| StoreError::Backend(format!("--store: not a PostgreSQL URL ({})", e.to_string().replace(url, "<url>"))))
}

/// The URL without its password (in the userinfo or a `password=` query
/// parameter), for logs.
pub fn redact(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    };
    match url.split_once('?') {
        Some((base, query)) => {
            let kept: Vec<&str> = query.split('&').map(|kv| if kv.to_ascii_lowercase().starts_with("password=") { "password=<hidden>" } else { kv }).collect();
            format!("{base}?{}", kept.join("&"))
        }
        None => url,
    }
}

impl PgStore {
    /// Connect, apply migrations (under the migration lock) and build the pool.
    /// Blocking: runs on its own thread and runtime, so it may be called from
    /// anywhere (startup, tools, tests); fails with one clear line when the
    /// database cannot be reached or refuses the credentials.
    pub fn open(url: &str, budget: Duration) -> Result<Self, StoreError> {
        let mut config = parse_url(url)?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("oipd");
        config.options(format!("-c statement_timeout={}", budget.as_millis().max(1)));
        let cfg = config.clone();
        let migrated = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| StoreError::Backend(e.to_string()))?;
            rt.block_on(async move {
                let (mut client, conn) = cfg.connect(NoTls).await.map_err(|e| {
                    let why = match e.as_db_error() {
                        Some(db) => db.message().to_owned(),
                        None => e.to_string(),
                    };
                    StoreError::Backend(format!("cannot connect to PostgreSQL: {why}"))
                })?;
                let driver = tokio::spawn(conn);
                let r = schema::migrate(&mut client).await;
                drop(client);
                let _ = driver.await;
                r
            })
        })
        .join()
        .map_err(|_| StoreError::Backend("migration thread panicked".into()))?;
        migrated?;
        let mgr = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(mgr)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres pool: {e}")))?;
        Ok(PgStore { pool, budget })
    }

    /// The query budget (`statement_timeout`).
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// A pooled connection, guarded: see [`Conn`].
    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        let obj = self.pool.get().await.map_err(pool_error)?;
        let cancel = obj.cancel_token();
        Ok(Conn { obj: Some(obj), cancel: Some(cancel) })
    }
}

/// A pooled connection for one operation. Call [`Conn::done`] when the
/// operation finished; dropped before that (the caller went away, or an error
/// left it mid-statement), its running query is cancelled and the connection is
/// closed rather than returned to the pool.
pub(crate) struct Conn {
    obj: Option<Object>,
    cancel: Option<CancelToken>,
}

impl Conn {
    pub fn done(mut self) {
        self.cancel = None;
    }
}

impl std::ops::Deref for Conn {
    type Target = Object;
    fn deref(&self) -> &Object {
        self.obj.as_ref().expect("connection present until drop")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Object {
        self.obj.as_mut().expect("connection present until drop")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let (Some(token), Some(obj)) = (self.cancel.take(), self.obj.take()) {
            // never back to the pool: it may still be running a statement
            drop(Object::take(obj));
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = token.cancel_query(NoTls).await;
                });
            }
        }
    }
}

impl BoundSource for PgStore {
    fn report(&self, out: &mut Vec<BoundReport>) {
        let s = self.pool.status();
        out.push(BoundReport {
            name: "postgres_pool",
            unit: "connections",
            capacity: s.max_size as u64,
            fill: s.size.saturating_sub(s.available) as u64,
            config: "const store::postgres::POOL_SIZE",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u@h:5432/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("postgres://u@h/db?sslmode=disable&password=secret"), "postgres://u@h/db?sslmode=disable&password=<hidden>");
        assert!(parse_url("postgres://u:secret@h:notaport/db").unwrap_err().to_string().find("secret").is_none());
    }
}
