//! The embedded SQLite backend of [`RecordStore`]: `<data-dir>/oipd.sqlite`, WAL,
//! numbered migrations (`PRAGMA user_version`), one writer connection and a
//! bounded pool of reader connections used from the blocking pool.
//!
//! Every query is translated from the domain's [`crate::oip::plan::Plan`] with
//! bound parameters (user input never becomes SQL text; JSON paths are built only
//! from validated segments). Filtering, scoring, de-duplication, sorting, totals
//! and paging all happen in SQLite, over the whole result set.
//!
//! One file per concern: [`conn`] (connections, the read budget and
//! cancellation), [`schema`] (migrations), [`write`] (upserts, deletes),
//! [`translate`] (plan → SQL), [`read`] (queries), [`sql`] (SQL fragments and
//! error mapping), [`store`] (the `RecordStore` implementation over them), [`indexer`] (the
//! indexer's creators, organizations and ledger).
//!
//! Bounds: [`READERS`] reader connections (requests past them wait up to
//! [`READER_WAIT`], then 503); each read's time on its connection
//! ([`SqliteStore::with_read_budget`], default [`READ_BUDGET`]; past it SQLite is
//! interrupted → 503), and a read whose caller has gone (client disconnected) is
//! interrupted at once; SQLite's own page cache per connection ([`CACHE_KIB`]);
//! at most [`FETCH_CHUNK`] ids per `IN (...)` statement.

pub mod conn;
pub mod dump;
pub mod gun;
pub mod indexer;
pub mod media;
pub mod read;
pub mod schema;
pub mod sql;
pub mod store;
pub mod translate;
pub mod users;
pub mod write;

pub use conn::{SqliteStore, FETCH_CHUNK, READERS, READER_WAIT, READ_BUDGET};
pub use schema::CACHE_KIB;
