//! [`GunStore`] on SQLite: the `gun_nodes` table (soul, prefix, record type,
//! node text or NULL for a tombstone, write time, sequence number).

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use serde_json::{Map, Value};

use super::conn::SqliteStore;
use super::sql::backend;
use crate::store::gun::{merge, now_ms, record_type_of, soul_prefix, GunChange, GunCounts, GunEntry, GunListed, GunPut, GunStore, GunWrite, NodeLimits, MAX_PAGE};
use crate::store::StoreError;

#[async_trait]
impl GunStore for SqliteStore {
    async fn gun_put(&self, soul: &str, write: GunWrite, limits: NodeLimits) -> Result<GunPut, StoreError> {
        let soul = soul.to_owned();
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let existing: Option<Option<String>> =
                tx.query_row("SELECT node FROM gun_nodes WHERE soul = ?", [&soul], |r| r.get(0)).optional().map_err(backend)?;
            let (text, record_type) = match write {
                GunWrite::Delete => {
                    if matches!(existing, Some(None)) {
                        return Ok(GunPut::Unchanged);
                    }
                    (None, None)
                }
                GunWrite::Merge(put) => {
                    let mut node: Map<String, Value> = match existing.as_ref().and_then(Option::as_deref) {
                        Some(t) => serde_json::from_str(t).map_err(|e| StoreError::Backend(format!("gun node {soul}: {e}")))?,
                        None => Map::new(),
                    };
                    merge(&mut node, put);
                    if node.len() > limits.max_keys {
                        return Ok(GunPut::TooLarge);
                    }
                    let text = serde_json::to_string(&node).map_err(|e| StoreError::Backend(e.to_string()))?;
                    if text.len() > limits.max_bytes {
                        return Ok(GunPut::TooLarge);
                    }
                    if existing.as_ref().and_then(Option::as_deref) == Some(text.as_str()) {
                        return Ok(GunPut::Unchanged);
                    }
                    let rt = record_type_of(&node);
                    (Some(text), rt)
                }
            };
            tx.execute(
                "INSERT INTO gun_nodes (soul, prefix, record_type, node, stored_at, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(seq), 0) + 1 FROM gun_nodes))
                 ON CONFLICT(soul) DO UPDATE SET record_type = excluded.record_type, node = excluded.node,
                   stored_at = excluded.stored_at, seq = excluded.seq",
                params![soul, soul_prefix(&soul), record_type, text, now_ms()],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(GunPut::Written)
        })
        .await
    }

    async fn gun_get(&self, soul: &str) -> Result<Option<GunEntry>, StoreError> {
        let soul = soul.to_owned();
        self.read(move |c| {
            let row: Option<(Option<String>, i64)> = c
                .query_row("SELECT node, stored_at FROM gun_nodes WHERE soul = ?", [&soul], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(backend)?;
            Ok(row.map(|(node, at)| match node {
                Some(node) => GunEntry::Live { node, stored_ms: at },
                None => GunEntry::Tombstone { deleted_ms: at },
            }))
        })
        .await
    }

    async fn gun_has(&self, soul: &str) -> Result<Option<bool>, StoreError> {
        let soul = soul.to_owned();
        self.read(move |c| {
            c.query_row("SELECT node IS NOT NULL FROM gun_nodes WHERE soul = ?", [&soul], |r| r.get::<_, bool>(0)).optional().map_err(backend)
        })
        .await
    }

    async fn gun_list(&self, prefix: &str, record_type: Option<&str>, limit: u32, offset: u64) -> Result<Vec<GunListed>, StoreError> {
        let (prefix, record_type) = (prefix.to_owned(), record_type.map(str::to_owned));
        let limit = limit.min(MAX_PAGE) as i64;
        let offset = offset.min(i64::MAX as u64) as i64;
        self.read(move |c| {
            let mut st = c
                .prepare(
                    "SELECT soul, node, record_type, stored_at FROM gun_nodes
                     WHERE prefix = ?1 AND node IS NOT NULL AND soul <> prefix AND (?2 IS NULL OR record_type = ?2)
                     ORDER BY stored_at, soul LIMIT ?3 OFFSET ?4",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![prefix, record_type, limit, offset], |r| {
                    Ok(GunListed { soul: r.get(0)?, node: r.get(1)?, record_type: r.get(2)?, stored_ms: r.get(3)? })
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn gun_changes(&self, after_seq: u64, limit: u32) -> Result<Vec<GunChange>, StoreError> {
        let limit = limit.min(MAX_PAGE) as i64;
        let after = after_seq.min(i64::MAX as u64) as i64;
        self.read(move |c| {
            let mut st = c.prepare("SELECT seq, soul, node FROM gun_nodes WHERE seq > ?1 ORDER BY seq LIMIT ?2").map_err(backend)?;
            let rows = st
                .query_map(params![after, limit], |r| Ok(GunChange { seq: r.get::<_, i64>(0)? as u64, soul: r.get(1)?, node: r.get(2)? }))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn gun_counts(&self) -> Result<GunCounts, StoreError> {
        self.read(|c| {
            let (live, dead): (i64, i64) = c
                .query_row("SELECT COUNT(node), COUNT(*) - COUNT(node) FROM gun_nodes", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            Ok(GunCounts { live: live as u64, tombstones: dead as u64 })
        })
        .await
    }
}
