//! The schema: numbered migrations, applied in order at start, each in its own
//! transaction, under a session advisory lock ([`MIGRATION_LOCK`]) so two nodes
//! starting at once apply each migration exactly once (the second waits, then
//! finds nothing to do). The applied version lives in `oipd_schema`.
//!
//! Text columns are `COLLATE "C"`: comparisons and sorts are bytewise, as
//! SQLite's, whatever the database's locale.

use tokio_postgres::Client;

use super::sql::pg_error;
use crate::store::StoreError;

/// The advisory lock key migrations run under (any constant unique to oipd).
pub const MIGRATION_LOCK: i64 = 0x6f69_7064_0001;

/// `T` in the migrations below.
const TEXT: &str = "text COLLATE \"C\"";

pub const MIGRATIONS: &[&str] = &[
    // 1: records (narrow index table + documents apart), tags, the weighted
    // full-text vector, templates; the JSON helper the translation uses
    r#"
    CREATE TABLE records (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        did T NOT NULL UNIQUE,
        did_tx T, record_type T, record_type_lc T, storage T,
        creator_handle T, creator_address T, creator_pubkey T,
        in_block bigint, indexed_at T, status T, ver T,
        date bigint, sched_date bigint, filter_date bigint,
        name T, description T,
        access_level T, owner T, private_session boolean NOT NULL DEFAULT false,
        public boolean NOT NULL,
        hidden boolean NOT NULL,
        -- name (A) > description (B) > tags (C)
        fts tsvector NOT NULL
    );
    CREATE TABLE record_docs (
        id bigint PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
        doc text NOT NULL
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
    CREATE INDEX records_list ON records(hidden, public, in_block);
    CREATE INDEX records_name ON records(name);
    CREATE INDEX records_storage ON records(storage);
    CREATE INDEX records_fts ON records USING gin(fts);
    CREATE TABLE record_tags (
        record_id bigint NOT NULL REFERENCES records(id) ON DELETE CASCADE,
        tag T NOT NULL,
        PRIMARY KEY (record_id, tag)
    );
    CREATE INDEX record_tags_tag ON record_tags(tag, record_id);
    CREATE TABLE templates (
        did T PRIMARY KEY, name T, in_block bigint, creator_address T, doc text NOT NULL
    );
    CREATE INDEX templates_block ON templates(in_block);
    -- The elements a path holds, as SQLite's json_each sees them: an array's
    -- elements, an object's values, or a scalar itself; nothing when absent.
    CREATE FUNCTION oipd_elems(x jsonb) RETURNS SETOF jsonb LANGUAGE sql IMMUTABLE AS $f$
        SELECT e FROM jsonb_array_elements(CASE WHEN jsonb_typeof(x) = 'array' THEN x ELSE '[]'::jsonb END) e
        UNION ALL SELECT v FROM jsonb_each(CASE WHEN jsonb_typeof(x) = 'object' THEN x ELSE '{}'::jsonb END) AS t(k, v)
        UNION ALL SELECT x WHERE jsonb_typeof(x) NOT IN ('array', 'object')
    $f$;
    "#,
    // 2: user accounts, unique by lowercased email; `seq` keeps creation order
    r#"
    CREATE TABLE users (
        seq bigint GENERATED ALWAYS AS IDENTITY,
        id T PRIMARY KEY,
        email_key T NOT NULL UNIQUE,
        doc text NOT NULL,
        rev bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX users_seq ON users(seq);
    "#,
    // 3: the Arweave indexer: creators, organizations, the ledger
    r#"
    CREATE TABLE creators (
        did T PRIMARY KEY, address T NOT NULL, handle T NOT NULL, public_key T NOT NULL,
        in_block bigint, status T, bootstrap boolean NOT NULL DEFAULT false, doc text NOT NULL
    );
    CREATE INDEX creators_address ON creators(address);
    CREATE INDEX creators_handle ON creators(handle);
    CREATE INDEX creators_block ON creators(in_block);
    CREATE TABLE organizations (
        did T PRIMARY KEY, handle T, address T, in_block bigint, doc text NOT NULL
    );
    CREATE INDEX organizations_block ON organizations(in_block);
    CREATE INDEX organizations_handle ON organizations(handle);
    CREATE TABLE indexer_txs (
        txid T PRIMARY KEY, height bigint NOT NULL, block_id T, outcome T NOT NULL,
        bootstrap boolean NOT NULL DEFAULT false
    );
    CREATE INDEX indexer_txs_height ON indexer_txs(height);
    "#,
    // 4: the GUN graph; node NULL = tombstone; seq orders every write
    r#"
    CREATE TABLE gun_nodes (
        soul T PRIMARY KEY,
        prefix T NOT NULL,
        record_type T,
        node text,
        stored_at bigint NOT NULL,
        seq bigint NOT NULL UNIQUE
    );
    CREATE INDEX gun_nodes_list ON gun_nodes(prefix, record_type, stored_at);
    "#,
    // 5: singleton background work: who holds which lease, until when
    r#"
    CREATE TABLE leases (
        name T PRIMARY KEY,
        holder T NOT NULL,
        expires_at timestamptz NOT NULL
    );
    "#,
    // 6: manifests of media kept in an object store, and its uploads in progress
    r#"
    CREATE TABLE media (
        id T PRIMARY KEY, object_key T NOT NULL, size bigint NOT NULL, created_ms bigint NOT NULL, manifest text NOT NULL
    );
    CREATE INDEX media_key ON media(object_key);
    CREATE TABLE media_uploads (upload_id T PRIMARY KEY, object_key T NOT NULL, started_ms bigint NOT NULL);
    CREATE INDEX media_uploads_started ON media_uploads(started_ms);
    "#,
    // 7: the listing orders (newest block first, missing last, newest row first) as
    // indexes, carrying the visibility flags: a page is the first rows of an index
    // scan and a count an index-only scan, as SQLite's rowid-ordered tables give
    r#"
    CREATE INDEX records_type_order ON records (record_type_lc, in_block DESC NULLS LAST, id DESC) INCLUDE (public, hidden);
    CREATE INDEX records_order ON records (in_block DESC NULLS LAST, id DESC) INCLUDE (public, hidden);
    "#,
];

/// Apply the migrations not yet applied, under [`MIGRATION_LOCK`].
pub async fn migrate(c: &mut Client) -> Result<(), StoreError> {
    // Building an index over a large table outlasts any query budget, and a
    // node waiting for another's migrations must not give up at it either:
    // this session has none (the pool's connections keep theirs).
    c.batch_execute("SET statement_timeout = 0").await.map_err(pg_error)?;
    tracing::info!("applying PostgreSQL migrations (waiting for any other node's first)");
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(pg_error)?;
    let r = apply(c).await;
    let unlocked = c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await.map_err(pg_error);
    r.and(unlocked.map(drop))
}

async fn apply(c: &mut Client) -> Result<(), StoreError> {
    c.batch_execute("CREATE TABLE IF NOT EXISTS oipd_schema (version integer NOT NULL)").await.map_err(pg_error)?;
    let version: i32 = c
        .query_opt("SELECT version FROM oipd_schema", &[])
        .await
        .map_err(pg_error)?
        .map_or(0, |r| r.get(0));
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database's schema is version {version}, newer than this oipd knows ({}): upgrade oipd",
            MIGRATIONS.len()
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.batch_execute(&m.replace(" T ", &format!(" {TEXT} ")).replace(" T,", &format!(" {TEXT},")).replace(" T\n", &format!(" {TEXT}\n")))
            .await
            .map_err(pg_error)?;
        tx.execute("DELETE FROM oipd_schema", &[]).await.map_err(pg_error)?;
        tx.execute("INSERT INTO oipd_schema (version) VALUES ($1)", &[&(i as i32 + 1)]).await.map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
    }
    Ok(())
}
