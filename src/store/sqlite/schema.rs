//! The schema: numbered migrations applied in order (`PRAGMA user_version`), and
//! the settings every connection gets.

use std::time::Duration;

use rusqlite::Connection;

use super::sql::backend;
use crate::store::StoreError;

/// Bound: SQLite page cache per connection, KiB.
pub const CACHE_KIB: i64 = 1024;

pub const MIGRATIONS: &[&str] = &[
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
    // 2: user accounts (the original's `users` index), unique by lowercased email
    r#"
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email_key TEXT NOT NULL UNIQUE,
        doc TEXT NOT NULL,
        -- bumped by every write; a write of an older copy is refused
        rev INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 3: the Arweave indexer: creator registrations, organizations, and the
    // ledger of processed transactions (resume point, fork checks)
    r#"
    -- bootstrap = 1: read by position and fetched by id, outside discovery:
    -- not part of the resume height or the fork checks
    CREATE TABLE creators (
        did TEXT PRIMARY KEY, address TEXT NOT NULL, handle TEXT NOT NULL, public_key TEXT NOT NULL,
        in_block INTEGER, status TEXT, bootstrap INTEGER NOT NULL DEFAULT 0, doc TEXT NOT NULL
    );
    CREATE INDEX creators_address ON creators(address);
    CREATE INDEX creators_handle ON creators(handle);
    CREATE INDEX creators_block ON creators(in_block);
    CREATE TABLE organizations (
        did TEXT PRIMARY KEY, handle TEXT, address TEXT, in_block INTEGER, doc TEXT NOT NULL
    );
    CREATE INDEX organizations_block ON organizations(in_block);
    CREATE TABLE indexer_txs (
        txid TEXT PRIMARY KEY, height INTEGER NOT NULL, block_id TEXT, outcome TEXT NOT NULL,
        bootstrap INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX indexer_txs_height ON indexer_txs(height);
    CREATE INDEX templates_block ON templates(in_block);
    "#,
    // 4: the GUN graph: one row per soul; node NULL = tombstone; seq orders every write
    r#"
    CREATE TABLE gun_nodes (
        soul TEXT PRIMARY KEY,
        prefix TEXT NOT NULL,
        record_type TEXT,
        node TEXT,
        stored_at INTEGER NOT NULL,
        seq INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX gun_nodes_seq ON gun_nodes(seq);
    CREATE INDEX gun_nodes_list ON gun_nodes(prefix, record_type, stored_at);
    "#,
    // 5: manifests of media kept in an object store, and its uploads in progress
    r#"
    CREATE TABLE media (
        id TEXT PRIMARY KEY, object_key TEXT NOT NULL, size INTEGER NOT NULL, created_ms INTEGER NOT NULL, manifest TEXT NOT NULL
    );
    CREATE INDEX media_key ON media(object_key);
    CREATE TABLE media_uploads (upload_id TEXT PRIMARY KEY, object_key TEXT NOT NULL, started_ms INTEGER NOT NULL);
    CREATE INDEX media_uploads_started ON media_uploads(started_ms);
    "#,
];

pub fn configure(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(Duration::from_secs(5))?;
    c.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-{CACHE_KIB}; PRAGMA temp_store=MEMORY;"
    ))
}

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(m).map_err(backend)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}
