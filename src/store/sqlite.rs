//! The embedded SQLite backend of [`RecordStore`]: `<data-dir>/oipd.sqlite`, WAL,
//! numbered migrations (`PRAGMA user_version`), one writer connection and a
//! bounded pool of reader connections used from the blocking pool.
//!
//! Every query is generated from the typed [`RecordQuery`] with bound parameters
//! (user input never becomes SQL text; JSON paths are built only from validated
//! segments). Filtering, scoring, de-duplication, sorting, totals and paging all
//! happen here, over the whole result set.
//!
//! Bounds: [`READERS`] reader connections (requests past them wait up to
//! [`READER_WAIT`], then 503); each read's time on its connection
//! ([`SqliteStore::with_read_budget`], default [`READ_BUDGET`]; past it SQLite is
//! interrupted → 503), and a read whose caller has gone (client disconnected) is
//! interrupted at once; SQLite's own page cache per connection ([`CACHE_KIB`]);
//! at most [`FETCH_CHUNK`] ids per `IN (...)` statement.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{FetchSink, Page, RecordStore, Row, Scores, Stats, StoreError, TemplateFilter, Upserted, Viewer};
use crate::bounds::{BoundReport, BoundSource};
use crate::records::model::{IndexedRecord, IndexedTemplate};
use crate::records::query::{BlockFilter, Dir, ListFilter, MatchMode, RecordQuery, Scalar, SortField};

/// Bound: reader connections (concurrent read queries).
pub const READERS: usize = 4;
/// How long a query waits for a reader before 503.
pub const READER_WAIT: Duration = Duration::from_secs(10);
/// Bound: default time one read may hold its connection (`--query-timeout-ms`).
pub const READ_BUDGET: Duration = Duration::from_secs(30);
/// SQLite VM instructions between checks of a read's deadline and cancellation.
const PROGRESS_OPS: i32 = 10_000;
/// Bound: SQLite page cache per connection, KiB.
pub const CACHE_KIB: i64 = 1024;
/// Bound: ids per `IN (...)` statement when fetching references.
pub const FETCH_CHUNK: usize = 500;

const MIGRATIONS: &[&str] = &[
    // 1: records, tags, full-text index, templates
    r#"
    CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        did TEXT NOT NULL UNIQUE,
        did_tx TEXT, record_type TEXT, record_type_lc TEXT, storage TEXT,
        creator_handle TEXT, creator_address TEXT, creator_pubkey TEXT,
        in_block INTEGER, indexed_at TEXT, status TEXT, ver TEXT,
        date INTEGER, sched_date INTEGER, filter_date INTEGER,
        name TEXT, description TEXT,
        access_level TEXT, owner TEXT, private_session INTEGER NOT NULL DEFAULT 0,
        -- 1 when anyone may see it (level public or unset, not a private session)
        public INTEGER NOT NULL,
        -- 1 for deletion messages (listed only with includeDeleteMessages)
        hidden INTEGER NOT NULL
    );
    -- Documents apart from the narrow index table, so scans and counts never read them.
    CREATE TABLE record_docs (
        id INTEGER PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
        doc TEXT NOT NULL
    );
    CREATE INDEX records_type_block ON records(record_type_lc, in_block);
    CREATE INDEX records_block ON records(in_block);
    CREATE INDEX records_did_tx ON records(did_tx);
    CREATE INDEX records_creator_handle ON records(creator_handle);
    CREATE INDEX records_creator_address ON records(creator_address);
    CREATE INDEX records_indexed_at ON records(indexed_at);
    CREATE INDEX records_date ON records(date);
    CREATE INDEX records_sched_date ON records(sched_date);
    CREATE INDEX records_filter_date ON records(filter_date);
    CREATE INDEX records_owner ON records(owner);
    CREATE INDEX records_creator_pubkey ON records(creator_pubkey);
    -- the default listing (anonymous, newest first) and the visible counts
    CREATE INDEX records_list ON records(hidden, public, in_block);
    CREATE INDEX records_name ON records(name);
    CREATE INDEX records_storage ON records(storage);
    CREATE TABLE record_tags (
        record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (record_id, tag)
    ) WITHOUT ROWID;
    CREATE INDEX record_tags_tag ON record_tags(tag, record_id);
    CREATE VIRTUAL TABLE records_fts USING fts5(name, description, tags, tokenize = 'unicode61 remove_diacritics 2');
    CREATE TABLE templates (
        did TEXT PRIMARY KEY, name TEXT, in_block INTEGER, creator_address TEXT, doc TEXT NOT NULL
    );
    "#,
];

pub struct SqliteStore {
    inner: Arc<Inner>,
    read_budget: Duration,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    slots: tokio::sync::Semaphore,
}

fn backend<E: std::fmt::Display + 'static>(e: E) -> StoreError {
    let code = (&e as &dyn std::any::Any).downcast_ref::<rusqlite::Error>().and_then(rusqlite::Error::sqlite_error_code);
    match code {
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full,
        Some(rusqlite::ErrorCode::OperationInterrupted) => StoreError::Interrupted,
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn configure(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(Duration::from_secs(5))?;
    c.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-{CACHE_KIB}; PRAGMA temp_store=MEMORY;"
    ))
}

impl SqliteStore {
    /// Open (creating and migrating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = Connection::open(path).map_err(backend)?;
        configure(&writer).map_err(backend)?;
        migrate(&mut writer)?;
        // Refresh the planner's statistics where SQLite thinks they are stale.
        writer.execute_batch("PRAGMA optimize=0x10002;").map_err(backend)?;
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

    async fn read<T: Send + 'static>(
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
            let conn = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some(conn) = conn else { return Err(StoreError::Busy) };
            let stop = cancelled.clone();
            conn.progress_handler(
                PROGRESS_OPS,
                Some(move || stop.load(std::sync::atomic::Ordering::Relaxed) || std::time::Instant::now() > deadline),
            );
            let r = f(&conn).map_err(|e| match e {
                StoreError::Interrupted if !cancelled.load(std::sync::atomic::Ordering::Relaxed) => StoreError::TimedOut,
                e => e,
            });
            conn.progress_handler(0, None::<fn() -> bool>);
            inner.readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            r
        })
        .await
        .map_err(backend)?;
        drop(permit);
        out
    }

    async fn write<T: Send + 'static>(
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

    /// Synchronous upsert (tests seeding a store without a runtime).
    pub fn upsert_blocking(&self, records: &[IndexedRecord]) -> Result<Vec<Upserted>, StoreError> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        upsert_records(&mut conn, records)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(m).map_err(backend)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

fn opt<T: Into<Sql>>(v: Option<T>) -> Sql {
    v.map_or(Sql::Null, Into::into)
}

fn upsert_records(conn: &mut Connection, records: &[IndexedRecord]) -> Result<Vec<Upserted>, StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let mut out = Vec::with_capacity(records.len());
    {
        let mut find = tx
            .prepare_cached("SELECT r.id, d.doc FROM records r JOIN record_docs d ON d.id = r.id WHERE r.did = ?")
            .map_err(backend)?;
        let mut put_doc = tx.prepare_cached("INSERT OR REPLACE INTO record_docs (id, doc) VALUES (?, ?)").map_err(backend)?;
        let mut up = tx
            .prepare_cached(
                "INSERT INTO records (did, did_tx, record_type, record_type_lc, storage, creator_handle, creator_address,
                    creator_pubkey, in_block, indexed_at, status, ver, date, sched_date, filter_date, name, description,
                    access_level, owner, private_session, public, hidden)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22)
                 ON CONFLICT(did) DO UPDATE SET did_tx=?2, record_type=?3, record_type_lc=?4, storage=?5,
                    creator_handle=?6, creator_address=?7, creator_pubkey=?8, in_block=?9, indexed_at=?10, status=?11,
                    ver=?12, date=?13, sched_date=?14, filter_date=?15, name=?16, description=?17, access_level=?18,
                    owner=?19, private_session=?20, public=?21, hidden=?22
                 RETURNING id",
            )
            .map_err(backend)?;
        let mut del_tags = tx.prepare_cached("DELETE FROM record_tags WHERE record_id = ?").map_err(backend)?;
        let mut add_tag = tx.prepare_cached("INSERT OR IGNORE INTO record_tags (record_id, tag) VALUES (?, ?)").map_err(backend)?;
        let mut del_fts = tx.prepare_cached("DELETE FROM records_fts WHERE rowid = ?").map_err(backend)?;
        let mut add_fts = tx
            .prepare_cached("INSERT INTO records_fts (rowid, name, description, tags) VALUES (?, ?, ?, ?)")
            .map_err(backend)?;
        for r in records {
            let existing: Option<(i64, String)> =
                find.query_row([&r.did], |row| Ok((row.get(0)?, row.get(1)?))).optional().map_err(backend)?;
            if let Some((_, doc)) = &existing {
                if *doc == r.doc {
                    out.push(Upserted::Unchanged);
                    continue;
                }
            }
            let params: Vec<Sql> = vec![
                r.did.clone().into(),
                opt(r.did_tx.clone()),
                opt(r.record_type.clone()),
                opt(r.record_type.as_ref().map(|t| t.to_lowercase())),
                opt(r.storage.clone()),
                opt(r.creator_handle.clone()),
                opt(r.creator_address.clone()),
                opt(r.creator_pubkey.clone()),
                opt(r.in_block),
                opt(r.indexed_at.clone()),
                opt(r.status.clone()),
                opt(r.ver.clone()),
                opt(r.date),
                opt(r.sched_date),
                opt(r.filter_date),
                opt(r.name.clone()),
                opt(r.description.clone()),
                opt(r.access_level.clone()),
                opt(r.owner.clone()),
                (r.private_session as i64).into(),
                (r.is_public() as i64).into(),
                (r.is_delete_message() as i64).into(),
            ];
            let id: i64 = up.query_row(params_from_iter(params), |row| row.get(0)).map_err(backend)?;
            put_doc.execute(rusqlite::params![id, r.doc]).map_err(backend)?;
            del_tags.execute([id]).map_err(backend)?;
            for t in &r.tags {
                add_tag.execute(rusqlite::params![id, t]).map_err(backend)?;
            }
            del_fts.execute([id]).map_err(backend)?;
            add_fts
                .execute(rusqlite::params![id, r.name, r.description, r.tags.join(" ")])
                .map_err(backend)?;
            out.push(if existing.is_some() { Upserted::Updated } else { Upserted::Inserted });
        }
    }
    tx.commit().map_err(backend)?;
    Ok(out)
}

fn upsert_templates(conn: &mut Connection, templates: &[IndexedTemplate]) -> Result<Vec<Upserted>, StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let mut out = Vec::with_capacity(templates.len());
    {
        let mut find = tx.prepare_cached("SELECT doc FROM templates WHERE did = ?").map_err(backend)?;
        let mut up = tx
            .prepare_cached(
                "INSERT INTO templates (did, name, in_block, creator_address, doc) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(did) DO UPDATE SET name=?2, in_block=?3, creator_address=?4, doc=?5",
            )
            .map_err(backend)?;
        for t in templates {
            let existing: Option<String> = find.query_row([&t.did], |r| r.get(0)).optional().map_err(backend)?;
            if existing.as_deref() == Some(t.doc.as_str()) {
                out.push(Upserted::Unchanged);
                continue;
            }
            up.execute(rusqlite::params![t.did, t.name, t.in_block, t.creator_address, t.doc]).map_err(backend)?;
            out.push(if existing.is_some() { Upserted::Updated } else { Upserted::Inserted });
        }
    }
    tx.commit().map_err(backend)?;
    Ok(out)
}

/// A piece of SQL with its positional parameters, in order.
#[derive(Default, Clone)]
struct Frag {
    sql: String,
    params: Vec<Sql>,
}

impl Frag {
    fn new(sql: impl Into<String>, params: Vec<Sql>) -> Self {
        Frag { sql: sql.into(), params }
    }
    fn push(&mut self, other: Frag) {
        self.sql.push_str(&other.sql);
        self.params.extend(other.params);
    }
    fn join(parts: Vec<Frag>, sep: &str) -> Frag {
        let mut out = Frag::default();
        for (i, p) in parts.into_iter().enumerate() {
            if i > 0 {
                out.sql.push_str(sep);
            }
            out.push(p);
        }
        out
    }
    fn wrap(self) -> Frag {
        Frag { sql: format!("({})", self.sql), params: self.params }
    }
}

fn text(s: &str) -> Sql {
    Sql::Text(s.to_owned())
}

/// The privacy rule (see the module docs of `store`) for table alias `a`; the
/// `public` flag is computed at write time by [`IndexedRecord::is_public`].
fn visible(a: &str, viewer: &Viewer) -> Frag {
    match &viewer.key {
        None => Frag::new(format!("{a}.public = 1"), vec![]),
        Some(k) => Frag::new(format!("({a}.public = 1 OR {a}.owner = ? OR {a}.creator_pubkey = ?)"), vec![text(k), text(k)]),
    }
}

/// `$."a"."b"` from a validated dotted path (segments are `[A-Za-z0-9_-]+`).
fn json_path(prefix: &str, dotted: &str) -> String {
    let mut p = String::from(prefix);
    for seg in dotted.split('.') {
        p.push_str(".\"");
        p.push_str(seg);
        p.push('"');
    }
    p
}

/// Per-item boolean expressions for a list filter over the JSON values at `path`.
fn item_exprs(path: &str, items: &[String], substring: bool) -> Vec<Frag> {
    items
        .iter()
        .map(|it| {
            let cond = if substring { "instr(lower(e.value), ?) > 0" } else { "e.value = ?" };
            Frag::new(format!("EXISTS (SELECT 1 FROM json_each(rd.doc, '{path}') e WHERE {cond})"), vec![text(it)])
        })
        .collect()
}

/// Items matched by names of records referenced at `path` (or by plain-name entries).
fn ref_name_exprs(path: &str, items: &[String], viewer: &Viewer) -> Vec<Frag> {
    items
        .iter()
        .map(|it| {
            let vis = visible("x", viewer);
            let mut f = Frag::new(
                format!("EXISTS (SELECT 1 FROM json_each(rd.doc, '{path}') e LEFT JOIN records x ON x.did = e.value AND "),
                vec![],
            );
            f.push(vis);
            f.push(Frag::new(
                " WHERE instr(lower(CASE WHEN x.id IS NOT NULL THEN coalesce(x.name, '') WHEN e.value LIKE 'did:%' THEN '' ELSE e.value END), ?) > 0)",
                vec![text(it)],
            ));
            f
        })
        .collect()
}

/// `(b1 + b2 + ...)`: how many items matched.
fn sum(exprs: &[Frag]) -> Frag {
    Frag::join(exprs.iter().cloned().map(Frag::wrap).collect(), " + ").wrap()
}

fn combine(exprs: &[Frag], mode: MatchMode) -> Frag {
    Frag::join(exprs.to_vec(), if mode == MatchMode::And { " AND " } else { " OR " }).wrap()
}

/// A scored filter: its WHERE condition and its matched-count expression.
struct Scored {
    key: &'static str,
    count_key: &'static str,
    matched: Frag,
    n: usize,
}

/// The generated query: an optional FTS join, the WHERE condition, and the scores.
struct Plan {
    from: Frag,
    filter: Frag,
    scored: Vec<Scored>,
    match_count: Option<Frag>,
    field_score: Option<(Frag, usize)>,
    /// Sort by relevance (bm25) when searching without an explicit `sortBy`.
    by_rank: bool,
}

fn plan(q: &RecordQuery, viewer: &Viewer, equipment_names: &[String]) -> Plan {
    let mut conds: Vec<Frag> = vec![visible("r", viewer)];
    let mut scored = Vec::new();
    let mut from = Frag::new("records r", vec![]);
    let mut by_rank = false;

    if !q.include_delete_messages {
        conds.push(Frag::new("r.hidden = 0", vec![]));
    }
    if let Some(did) = &q.did {
        conds.push(Frag::new("(r.did = ? OR r.did_tx = ?)", vec![text(did), text(did)]));
    }
    if let Some(s) = &q.source {
        conds.push(Frag::new("r.storage = ?", vec![text(s)]));
    }
    if let Some(v) = &q.did_tx_ref {
        conds.push(Frag::new(
            "EXISTS (SELECT 1 FROM json_tree(rd.doc, '$.data') t WHERE t.type = 'text' AND substr(t.value, 1, ?) = ?)",
            vec![Sql::Integer(v.chars().count() as i64), text(v)],
        ));
    }
    if let Some(u) = &q.url {
        conds.push(Frag::new(
            "(json_extract(rd.doc, '$.data.basic.url') = ? OR json_extract(rd.doc, '$.data.basic.webUrl') = ?)",
            vec![text(u), text(u)],
        ));
    }
    // The domain filters apply to their own record type, as in the original
    // (which ignored them elsewhere); saying so lets the store use the type index.
    let implied = if q.equipment.is_some() || q.exercise_type.is_some() {
        Some("exercise")
    } else if q.cuisine.is_some() || q.ingredient_names.is_some() {
        Some("recipe")
    } else if q.exercise_names.is_some() || q.exercise_dids.is_some() {
        Some("workout")
    } else if q.model.is_some() {
        Some("modelprovider")
    } else {
        None
    };
    if let Some(t) = q.record_type.as_deref().map(str::to_lowercase).or(implied.map(str::to_owned)) {
        conds.push(Frag::new("r.record_type_lc = ?", vec![text(&t)]));
    }
    if let Some(t) = &q.template {
        conds.push(Frag::new(
            "EXISTS (SELECT 1 FROM json_each(rd.doc, '$.data') t WHERE instr(lower(t.key), ?) > 0)",
            vec![text(&t.to_lowercase())],
        ));
    }
    if let Some(h) = &q.creator_handle {
        conds.push(Frag::new("r.creator_handle = ?", vec![text(h)]));
    }
    if let Some(a) = &q.creator_did_address {
        conds.push(Frag::new("r.creator_address = ?", vec![text(a)]));
    }
    match &q.in_arweave_block {
        Some(BlockFilter::Block(b)) => conds.push(Frag::new("r.in_block = ?", vec![Sql::Integer(*b)])),
        Some(BlockFilter::Missing) => conds.push(Frag::new("r.in_block IS NULL", vec![])),
        None => {}
    }
    let mut match_count = None;
    if let Some(ListFilter { items, mode }) = &q.search {
        let quoted: Vec<String> = items.iter().map(|t| format!("\"{}\"*", t.replace('"', "\"\""))).collect();
        let expr = quoted.join(if *mode == MatchMode::And { " AND " } else { " OR " });
        from = Frag::new(
            "(SELECT rowid AS fid, bm25(records_fts, 3.0, 2.0, 1.0) AS rank FROM records_fts WHERE records_fts MATCH ?) f CROSS JOIN records r ON r.id = f.fid",
            vec![text(&expr)],
        );
        by_rank = !q.sort_explicit;
        let per_term: Vec<Frag> = items
            .iter()
            .map(|t| {
                Frag::new(
                    "(instr(lower(coalesce(r.name, '')), ?) > 0 OR instr(lower(coalesce(r.description, '')), ?) > 0 OR EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND instr(lower(t.tag), ?) > 0))",
                    vec![text(t), text(t), text(t)],
                )
            })
            .collect();
        match_count = Some(sum(&per_term));
    }
    if let Some(ListFilter { items, mode }) = &q.tags {
        let ph = vec!["?"; items.len()].join(",");
        let params: Vec<Sql> = items.iter().map(|t| text(t)).collect();
        match mode {
            MatchMode::Or => conds.push(Frag::new(
                format!("EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND t.tag IN ({ph}))"),
                params.clone(),
            )),
            MatchMode::And => {
                for p in &params {
                    conds.push(Frag::new("EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND t.tag = ?)", vec![p.clone()]));
                }
            }
        }
        scored.push(Scored {
            key: "score",
            count_key: "",
            matched: Frag::new(format!("(SELECT COUNT(*) FROM record_tags t WHERE t.record_id = r.id AND t.tag IN ({ph}))"), params),
            n: items.len(),
        });
    }
    let mut field_score = None;
    if !q.field_searches.is_empty() {
        let mut scores = Vec::new();
        for fs in &q.field_searches {
            let path = json_path("$.data", &fs.path);
            let (cond, params): (&str, Vec<Sql>) = match &fs.value {
                Scalar::Bool(b) => (if *b { "e.type = 'true'" } else { "e.type = 'false'" }, vec![]),
                Scalar::Int(i) => ("e.value = ?", vec![Sql::Integer(*i)]),
                Scalar::Float(f) => ("e.value = ?", vec![Sql::Real(*f)]),
                Scalar::Str(s) if fs.exact => ("lower(e.value) = ?", vec![text(&s.to_lowercase())]),
                Scalar::Str(s) => ("instr(lower(e.value), ?) > 0", vec![text(&s.to_lowercase())]),
            };
            let mut f = Frag::new("EXISTS (SELECT 1 FROM json_each(rd.doc, ?) e WHERE ", vec![text(&path)]);
            f.push(Frag::new(format!("{cond})"), params));
            conds.push(f);
            let lv = match &fs.value {
                Scalar::Str(s) => s.to_lowercase(),
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(x) => x.to_string(),
                Scalar::Bool(b) => b.to_string(),
            };
            scores.push(Frag::new(
                "coalesce((SELECT MAX(CASE WHEN lower(e.value) = ?2 THEN 1000 WHEN substr(lower(e.value), 1, length(?2)) = ?2 THEN 900 WHEN substr(lower(e.value), -length(?2)) = ?2 THEN 800 WHEN instr(lower(e.value), ?2) > 0 THEN 600 ELSE 0 END) FROM json_each(rd.doc, ?1) e), 0)"
                    .replace("?2", "?").replace("?1", "?"),
                // positional, in text order: the value six times, then the path
                vec![text(&lv), text(&lv), text(&lv), text(&lv), text(&lv), text(&lv), text(&path)],
            ));
        }
        let n = scores.len();
        field_score = Some((sum(&scores), n));
    }
    for (path, value) in &q.exact_match {
        let p = json_path("$", path);
        let (cond, params): (&str, Vec<Sql>) = match value {
            Scalar::Bool(b) => (if *b { "e.type = 'true'" } else { "e.type = 'false'" }, vec![]),
            Scalar::Int(i) => ("e.value = ?", vec![Sql::Integer(*i)]),
            Scalar::Float(f) => ("e.value = ?", vec![Sql::Real(*f)]),
            Scalar::Str(s) => ("e.value = ?", vec![text(s)]),
        };
        let mut f = Frag::new("EXISTS (SELECT 1 FROM json_each(rd.doc, ?) e WHERE ", vec![text(&p)]);
        f.push(Frag::new(format!("{cond})"), params));
        conds.push(f);
    }
    if let Some(s) = q.date_start {
        conds.push(Frag::new("r.filter_date >= ?", vec![Sql::Integer(s)]));
    }
    if let Some(e) = q.date_end {
        conds.push(Frag::new("r.filter_date <= ?", vec![Sql::Integer(e)]));
    }
    if let Some((s, e)) = q.scheduled_on {
        conds.push(Frag::new("(r.sched_date >= ? AND r.sched_date < ?)", vec![Sql::Integer(s), Sql::Integer(e)]));
    }
    if let Some(f) = &q.equipment {
        let exprs = item_exprs("$.data.exercise.equipmentRequired", equipment_names, true);
        if exprs.is_empty() {
            conds.push(Frag::new("0", vec![])); // only unknown/invisible DIDs were given
        } else {
            let none = "(json_type(rd.doc, '$.data.exercise.equipmentRequired') IS NULL OR json_array_length(rd.doc, '$.data.exercise.equipmentRequired') = 0 AND json_type(rd.doc, '$.data.exercise.equipmentRequired') = 'array')";
            let matched = if f.mode == MatchMode::Or {
                // OR mode: an exercise that needs no equipment is a full match
                let mut m = Frag::new(format!("(CASE WHEN {none} THEN {} ELSE ", exprs.len()), vec![]);
                m.push(sum(&exprs));
                m.push(Frag::new(" END)", vec![]));
                let mut c = Frag::new(format!("({none} OR "), vec![]);
                c.push(combine(&exprs, MatchMode::Or));
                c.push(Frag::new(")", vec![]));
                conds.push(c);
                m
            } else {
                conds.push(combine(&exprs, MatchMode::And));
                sum(&exprs)
            };
            scored.push(Scored { key: "equipmentScore", count_key: "equipmentMatchedCount", matched, n: exprs.len() });
        }
    }
    for (filter, path, key, count_key, substring) in [
        (&q.exercise_type, "$.data.exercise.exercise_type", "exerciseTypeScore", "exerciseTypeMatchedCount", false),
        (&q.cuisine, "$.data.recipe.cuisine", "cuisineScore", "cuisineMatchedCount", true),
        (&q.model, "$.data.modelProvider.supported_models", "modelScore", "modelMatchedCount", true),
    ] {
        if let Some(f) = filter {
            let exprs = item_exprs(path, &f.items, substring);
            conds.push(combine(&exprs, f.mode));
            scored.push(Scored { key, count_key, matched: sum(&exprs), n: exprs.len() });
        }
    }
    if let Some(names) = &q.ingredient_names {
        let exprs = ref_name_exprs("$.data.recipe.ingredient", names, viewer);
        conds.push(combine(&exprs, MatchMode::Or));
        scored.push(Scored { key: "ingredientScore", count_key: "ingredientMatchedCount", matched: sum(&exprs), n: exprs.len() });
    }
    if q.exercise_names.is_some() || q.exercise_dids.is_some() {
        let mut exprs = Vec::new();
        if let Some(names) = &q.exercise_names {
            exprs.extend(ref_name_exprs("$.data.workout.exercise", names, viewer));
        }
        if let Some(dids) = &q.exercise_dids {
            exprs.extend(item_exprs("$.data.workout.exercise", dids, false));
        }
        conds.push(combine(&exprs, MatchMode::Or));
        scored.push(Scored { key: "exerciseScore", count_key: "exerciseMatchedCount", matched: sum(&exprs), n: exprs.len() });
    }
    if let Some(h) = q.has_audio {
        let a = "(coalesce(json_array_length(rd.doc, '$.data.post.audioItems'), 0) > 0 OR coalesce(json_array_length(rd.doc, '$.data.basic.audioItems'), 0) > 0)";
        conds.push(Frag::new(if h { a.to_owned() } else { format!("NOT {a}") }, vec![]));
    }
    // Join the documents only when an expression reads them.
    let needs_doc = conds.iter().chain(scored.iter().map(|s| &s.matched)).chain(field_score.iter().map(|f| &f.0)).any(|f| f.sql.contains("rd.doc"));
    if needs_doc {
        from.sql.push_str(" JOIN record_docs rd ON rd.id = r.id");
    }
    Plan { from, filter: Frag::join(conds, " AND "), scored, match_count, field_score, by_rank }
}

impl Plan {
    /// `WITH m0 AS (...), m AS (...)`: the matches with id, did, name, the plain
    /// sort columns (`s_*`), score columns (`c<i>`, `mc`, `fs`) and the FTS rank,
    /// de-duplicated by name when asked; and the ORDER BY over those columns.
    fn cte(&self, q: &RecordQuery) -> (Frag, String) {
        let mut inner = Frag::new(
            "SELECT r.id, r.did, r.name, r.in_block AS s_block, r.indexed_at AS s_indexed, r.date AS s_date, \
             r.record_type AS s_type, r.creator_handle AS s_handle, r.ver AS s_ver, r.sched_date AS s_sched",
            vec![],
        );
        if self.by_rank {
            inner.sql.push_str(", f.rank AS rank_");
        }
        for (i, s) in self.scored.iter().enumerate() {
            inner.sql.push_str(", ");
            inner.push(s.matched.clone());
            inner.sql.push_str(&format!(" AS c{i}"));
        }
        if let Some(mc) = &self.match_count {
            inner.sql.push_str(", ");
            inner.push(mc.clone());
            inner.sql.push_str(" AS mc");
        }
        if let Some((fs, _)) = &self.field_score {
            inner.sql.push_str(", ");
            inner.push(fs.clone());
            inner.sql.push_str(" AS fs");
        }
        inner.sql.push_str(" FROM ");
        inner.push(self.from.clone());
        inner.sql.push_str(" WHERE ");
        inner.push(self.filter.clone());

        let score = |k: &str| -> Option<String> {
            self.scored.iter().position(|s| s.key == k).map(|i| format!("(c{i} * 1.0 / {})", self.scored[i].n))
        };
        let (key, dir) = if self.by_rank {
            ("rank_".to_owned(), Dir::Asc)
        } else {
            let (field, dir) = q.sort;
            let key = match field {
                SortField::InArweaveBlock => Some("s_block".to_owned()),
                SortField::IndexedAt => Some("s_indexed".into()),
                SortField::Date => Some("s_date".into()),
                SortField::RecordType => Some("s_type".into()),
                SortField::CreatorHandle => Some("s_handle".into()),
                SortField::Ver => Some("s_ver".into()),
                SortField::ScheduleDate => Some("s_sched".into()),
                SortField::TagScore => score("score"),
                SortField::MatchCount => self.match_count.as_ref().map(|_| "mc".into()),
                SortField::FieldSearchScore => self.field_score.as_ref().map(|(_, n)| format!("(fs * 1.0 / {n})")),
                SortField::EquipmentScore => score("equipmentScore"),
                SortField::ExerciseTypeScore => score("exerciseTypeScore"),
                SortField::CuisineScore => score("cuisineScore"),
                SortField::ModelScore => score("modelScore"),
                SortField::ExerciseScore => score("exerciseScore"),
                SortField::IngredientScore => score("ingredientScore"),
            };
            (key.unwrap_or_else(|| "NULL".into()), dir)
        };
        // Missing values sort last either way (as Elasticsearch did); ties by newest
        // row. SQLite orders NULLs first, so DESC needs nothing and can walk an index.
        let order = if dir == Dir::Asc { format!("{key} IS NULL, {key} ASC, id DESC") } else { format!("{key} DESC, id DESC") };
        let mut cte = Frag::new("WITH m0 AS (", vec![]);
        cte.push(inner);
        cte.sql.push(')');
        if q.no_duplicates {
            cte.sql.push_str(&format!(
                ", m AS (SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY coalesce(name, did) ORDER BY {order}) AS rn FROM m0) WHERE rn = 1)"
            ));
        } else {
            cte.sql.push_str(", m AS (SELECT * FROM m0)");
        }
        (cte, order)
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
    }
}

fn resolve_equipment(conn: &Connection, q: &RecordQuery, viewer: &Viewer) -> Result<Vec<String>, StoreError> {
    let Some(f) = &q.equipment else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for item in &f.items {
        if item.starts_with("did:") {
            let mut sql = Frag::new("SELECT lower(r.name) FROM records r WHERE r.did = ? AND ", vec![text(item)]);
            sql.push(visible("r", viewer));
            let name: Option<Option<String>> = conn
                .query_row(&sql.sql, params_from_iter(sql.params), |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if let Some(Some(n)) = name {
                out.push(n);
            }
        } else {
            out.push(item.clone());
        }
    }
    Ok(out)
}

fn search_blocking(conn: &Connection, q: &RecordQuery, viewer: &Viewer) -> Result<Page, StoreError> {
    let equipment = resolve_equipment(conn, q, viewer)?;
    let plan = plan(q, viewer, &equipment);
    let (cte, order) = plan.cte(q);

    let mut count = cte.clone();
    count.sql.push_str(" SELECT COUNT(*) FROM m");
    let started = std::time::Instant::now();
    let total: i64 = conn
        .prepare_cached(&count.sql)
        .and_then(|mut s| s.query_row(params_from_iter(count.params), |r| r.get(0)))
        .map_err(backend)?;
    tracing::trace!(sql = %count.sql, ms = started.elapsed().as_secs_f64() * 1e3, "count");

    let mut page = cte;
    let mut cols = String::from("m.did, rec.doc");
    for i in 0..plan.scored.len() {
        cols.push_str(&format!(", m.c{i}"));
    }
    if plan.match_count.is_some() {
        cols.push_str(", m.mc");
    }
    if plan.field_score.is_some() {
        cols.push_str(", m.fs");
    }
    page.sql.push_str(&format!(
        " SELECT {cols} FROM m JOIN record_docs rec ON rec.id = m.id ORDER BY {} LIMIT ? OFFSET ?",
        order.replace("id DESC", "m.id DESC").replace("s_", "m.s_")
    ));
    page.params.push(Sql::Integer(q.limit as i64));
    page.params.push(Sql::Integer(q.offset() as i64));
    tracing::trace!(sql = %page.sql, "page");
    let mut stmt = conn.prepare_cached(&page.sql).map_err(backend)?;
    let mut rows = stmt.query(params_from_iter(page.params)).map_err(backend)?;
    let mut out = Vec::with_capacity(q.limit as usize);
    while let Some(row) = rows.next().map_err(backend)? {
        let did: String = row.get(0).map_err(backend)?;
        let doc: String = row.get(1).map_err(backend)?;
        let doc = RawValue::from_string(doc).map_err(backend)?;
        let mut scores = Scores::default();
        let mut col = 2;
        for s in &plan.scored {
            let matched: i64 = row.get(col).map_err(backend)?;
            col += 1;
            let score = ((matched as f64 / s.n as f64) * 1000.0).round() / 1000.0;
            scores.pairs.push((s.key, Value::from(score)));
            if !s.count_key.is_empty() {
                scores.pairs.push((s.count_key, Value::from(matched)));
            }
        }
        if plan.match_count.is_some() {
            let mc: i64 = row.get(col).map_err(backend)?;
            col += 1;
            scores.pairs.push(("matchCount", Value::from(mc)));
        }
        if let Some((_, n)) = &plan.field_score {
            let fs: f64 = row.get(col).map_err(backend)?;
            scores.pairs.push(("fieldSearchScore", Value::from((fs / *n as f64).round())));
            scores.pairs.push(("fieldSearchMatchedCount", Value::from(*n)));
        }
        out.push(Row { did, doc, scores });
    }
    Ok(Page { total: total as u64, rows: out })
}

fn tag_summary_blocking(
    conn: &Connection,
    q: &RecordQuery,
    viewer: &Viewer,
    count: u32,
    page: u32,
) -> Result<(Vec<(String, u64)>, u64), StoreError> {
    let equipment = resolve_equipment(conn, q, viewer)?;
    let plan = plan(q, viewer, &equipment);
    let (cte, _) = plan.cte(q);
    let mut distinct = cte.clone();
    distinct.sql.push_str(" SELECT COUNT(DISTINCT t.tag) FROM record_tags t JOIN m ON m.id = t.record_id");
    let n: i64 = conn
        .prepare_cached(&distinct.sql)
        .and_then(|mut s| s.query_row(params_from_iter(distinct.params), |r| r.get(0)))
        .map_err(backend)?;
    let mut top = cte;
    top.sql.push_str(
        " SELECT t.tag, COUNT(*) AS c FROM record_tags t JOIN m ON m.id = t.record_id GROUP BY t.tag ORDER BY c DESC, t.tag LIMIT ? OFFSET ?",
    );
    top.params.push(Sql::Integer(count as i64));
    top.params.push(Sql::Integer((page as i64 - 1) * count as i64));
    let mut stmt = conn.prepare_cached(&top.sql).map_err(backend)?;
    let tags = stmt
        .query_map(params_from_iter(top.params), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok((tags, n as u64))
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn upsert(&self, records: Vec<IndexedRecord>) -> Result<Vec<Upserted>, StoreError> {
        self.write(move |c| upsert_records(c, &records)).await
    }

    async fn upsert_templates(&self, templates: Vec<IndexedTemplate>) -> Result<Vec<Upserted>, StoreError> {
        self.write(move |c| upsert_templates(c, &templates)).await
    }

    async fn search(&self, q: &RecordQuery, viewer: &Viewer) -> Result<Page, StoreError> {
        let (q, viewer) = (q.clone(), viewer.clone());
        self.read(move |c| search_blocking(c, &q, &viewer)).await
    }

    async fn tag_summary(&self, q: &RecordQuery, viewer: &Viewer, count: u32, page: u32) -> Result<(Vec<(String, u64)>, u64), StoreError> {
        let (q, viewer) = (q.clone(), viewer.clone());
        self.read(move |c| tag_summary_blocking(c, &q, &viewer, count, page)).await
    }

    async fn fetch_visible(&self, dids: Vec<String>, viewer: &Viewer, sink: FetchSink) -> Result<(), StoreError> {
        let viewer = viewer.clone();
        self.read(move |c| {
            for chunk in dids.chunks(FETCH_CHUNK) {
                let ph = vec!["?"; chunk.len()].join(",");
                let mut sql = Frag::new(
                    format!("SELECT r.did, rd.doc FROM records r JOIN record_docs rd ON rd.id = r.id WHERE r.did IN ({ph}) AND "),
                    chunk.iter().map(|d| text(d)).collect(),
                );
                sql.push(visible("r", &viewer));
                let mut stmt = c.prepare(&sql.sql).map_err(backend)?;
                let mut rows = stmt.query(params_from_iter(sql.params)).map_err(backend)?;
                while let Some(row) = rows.next().map_err(backend)? {
                    let did: String = row.get(0).map_err(backend)?;
                    let doc = RawValue::from_string(row.get(1).map_err(backend)?).map_err(backend)?;
                    if sink.blocking_send((did, doc)).is_err() {
                        return Ok(()); // the consumer gave up (e.g. over its bound)
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn stats(&self, viewer: &Viewer) -> Result<Stats, StoreError> {
        let viewer = viewer.clone();
        self.read(move |c| {
            // Two index-only counts: everything public, plus the viewer's own non-public.
            let mut total: i64 = c
                .query_row("SELECT COUNT(*) FROM records WHERE hidden IN (0, 1) AND public = 1", [], |r| r.get(0))
                .map_err(backend)?;
            if let Some(k) = &viewer.key {
                total += c
                    .query_row(
                        "SELECT COUNT(*) FROM records WHERE public = 0 AND (owner = ?1 OR creator_pubkey = ?1)",
                        [k],
                        |r| r.get::<_, i64>(0),
                    )
                    .map_err(backend)?;
            }
            let latest: Option<i64> = c
                .query_row(
                    "SELECT MAX(in_block) FROM records WHERE status IS NULL OR status NOT LIKE 'pending%'",
                    [],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            Ok(Stats { total_records: total as u64, latest_block: latest })
        })
        .await
    }

    async fn record_types(&self, viewer: &Viewer) -> Result<Vec<(String, u64)>, StoreError> {
        let viewer = viewer.clone();
        self.read(move |c| {
            let vis = visible("r", &viewer);
            let mut stmt = c
                .prepare(&format!(
                    "SELECT r.record_type, COUNT(*) AS n FROM records r WHERE r.record_type IS NOT NULL AND {} GROUP BY r.record_type ORDER BY n DESC, r.record_type",
                    vis.sql
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(vis.params), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn templates(&self, f: &TemplateFilter) -> Result<(u64, Vec<Box<RawValue>>), StoreError> {
        let f = f.clone();
        self.read(move |c| {
            let mut conds = vec![Frag::new("1", vec![])];
            if let Some(a) = &f.creator_did_address {
                conds.push(Frag::new("creator_address = ?", vec![text(a)]));
            }
            if let Some(d) = &f.did_tx {
                conds.push(Frag::new("did = ?", vec![text(d)]));
            }
            if let Some(n) = &f.name_contains {
                conds.push(Frag::new("instr(lower(name), ?) > 0", vec![text(&n.to_lowercase())]));
            }
            let w = Frag::join(conds, " AND ");
            let total: i64 = c
                .query_row(&format!("SELECT COUNT(*) FROM templates WHERE {}", w.sql), params_from_iter(w.params.clone()), |r| r.get(0))
                .map_err(backend)?;
            let dir = if f.ascending { "ASC" } else { "DESC" };
            let mut params = w.params;
            params.push(Sql::Integer(f.limit as i64));
            params.push(Sql::Integer(f.offset as i64));
            let mut stmt = c
                .prepare(&format!(
                    "SELECT doc FROM templates WHERE {} ORDER BY in_block IS NULL, in_block {dir}, did LIMIT ? OFFSET ?",
                    w.sql
                ))
                .map_err(backend)?;
            let docs = stmt
                .query_map(params_from_iter(params), |r| r.get::<_, String>(0))
                .map_err(backend)?
                .map(|d| d.map_err(backend).and_then(|d| RawValue::from_string(d).map_err(backend)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((total as u64, docs))
        })
        .await
    }

    async fn count_all(&self) -> Result<u64, StoreError> {
        self.read(|c| c.query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(backend))
            .await
    }

    async fn after_bulk_load(&self) -> Result<(), StoreError> {
        self.write(|c| c.execute_batch("ANALYZE;").map_err(backend)).await
    }

    async fn delete(&self, did: &str) -> Result<bool, StoreError> {
        let did = did.to_owned();
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let id: Option<i64> = tx
                .query_row("DELETE FROM records WHERE did = ? RETURNING id", [&did], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if let Some(id) = id {
                tx.execute("DELETE FROM records_fts WHERE rowid = ?", [id]).map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(id.is_some())
        })
        .await
    }
}
