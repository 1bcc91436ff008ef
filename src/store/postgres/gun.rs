//! [`GunStore`] on PostgreSQL: the `gun_nodes` table. Every put takes a
//! transaction-level advisory lock ([`GUN_LOCK`]) for its read-merge-write, so
//! puts from several nodes serialize, and sequence numbers are handed out
//! (`MAX(seq) + 1`) in commit order: the change feed has no gaps, and a reader
//! paging by `seq` never misses a write that commits after it read.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{pg_error, PgStore};
use crate::store::gun::{merge, now_ms, record_type_of, soul_prefix, GunChange, GunCounts, GunEntry, GunListed, GunPut, GunStore, GunWrite, NodeLimits, MAX_PAGE};
use crate::store::StoreError;

/// The advisory lock key GUN writes run under.
pub const GUN_LOCK: i64 = 0x6f69_7064_0003;

#[async_trait]
impl GunStore for PgStore {
    async fn gun_put(&self, soul: &str, write: GunWrite, limits: NodeLimits) -> Result<GunPut, StoreError> {
        let soul = soul.replace('\0', "");
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&GUN_LOCK]).await.map_err(pg_error)?;
        let existing: Option<Option<String>> = tx.query_opt("SELECT node FROM gun_nodes WHERE soul = $1", &[&soul]).await.map_err(pg_error)?.map(|r| r.get(0));
        let (text, record_type) = match write {
            GunWrite::Delete => {
                if matches!(existing, Some(None)) {
                    drop(tx);
                    c.done();
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
                let text = serde_json::to_string(&node).map_err(|e| StoreError::Backend(e.to_string()))?;
                let unchanged = existing.as_ref().and_then(Option::as_deref) == Some(text.as_str());
                let too_large = node.len() > limits.max_keys || text.len() > limits.max_bytes;
                if too_large || unchanged {
                    drop(tx);
                    c.done();
                    return Ok(if too_large { GunPut::TooLarge } else { GunPut::Unchanged });
                }
                let rt = record_type_of(&node).map(|t| t.replace('\0', ""));
                (Some(text), rt)
            }
        };
        tx.execute(
            "INSERT INTO gun_nodes (soul, prefix, record_type, node, stored_at, seq)
             VALUES ($1, $2, $3, $4, $5, (SELECT COALESCE(MAX(seq), 0) + 1 FROM gun_nodes))
             ON CONFLICT (soul) DO UPDATE SET record_type = excluded.record_type, node = excluded.node,
               stored_at = excluded.stored_at, seq = excluded.seq",
            &[&soul, &soul_prefix(&soul), &record_type, &text, &now_ms()],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        c.done();
        Ok(GunPut::Written)
    }

    async fn gun_get(&self, soul: &str) -> Result<Option<GunEntry>, StoreError> {
        let c = self.conn().await?;
        let r = c.query_opt("SELECT node, stored_at FROM gun_nodes WHERE soul = $1", &[&soul]).await.map_err(pg_error)?;
        c.done();
        Ok(r.map(|r| match r.get::<_, Option<String>>(0) {
            Some(node) => GunEntry::Live { node, stored_ms: r.get(1) },
            None => GunEntry::Tombstone { deleted_ms: r.get(1) },
        }))
    }

    async fn gun_has(&self, soul: &str) -> Result<Option<bool>, StoreError> {
        let c = self.conn().await?;
        let r = c.query_opt("SELECT node IS NOT NULL FROM gun_nodes WHERE soul = $1", &[&soul]).await.map_err(pg_error)?;
        c.done();
        Ok(r.map(|r| r.get(0)))
    }

    async fn gun_list(&self, prefix: &str, record_type: Option<&str>, limit: u32, offset: u64) -> Result<Vec<GunListed>, StoreError> {
        let limit = limit.min(MAX_PAGE) as i64;
        let offset = offset.min(i64::MAX as u64) as i64;
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT soul, node, record_type, stored_at FROM gun_nodes
                 WHERE prefix = $1 AND node IS NOT NULL AND soul <> prefix AND ($2::text IS NULL OR record_type = $2)
                 ORDER BY stored_at, soul LIMIT $3 OFFSET $4",
                &[&prefix, &record_type, &limit, &offset],
            )
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(rows.into_iter().map(|r| GunListed { soul: r.get(0), node: r.get(1), record_type: r.get(2), stored_ms: r.get(3) }).collect())
    }

    async fn gun_changes(&self, after_seq: u64, limit: u32) -> Result<Vec<GunChange>, StoreError> {
        let limit = limit.min(MAX_PAGE) as i64;
        let after = after_seq.min(i64::MAX as u64) as i64;
        let c = self.conn().await?;
        let rows = c.query("SELECT seq, soul, node FROM gun_nodes WHERE seq > $1 ORDER BY seq LIMIT $2", &[&after, &limit]).await.map_err(pg_error)?;
        c.done();
        Ok(rows.into_iter().map(|r| GunChange { seq: r.get::<_, i64>(0) as u64, soul: r.get(1), node: r.get(2) }).collect())
    }

    async fn gun_counts(&self) -> Result<GunCounts, StoreError> {
        let c = self.conn().await?;
        let r = c.query_one("SELECT COUNT(node), COUNT(*) - COUNT(node) FROM gun_nodes", &[]).await.map_err(pg_error)?;
        c.done();
        Ok(GunCounts { live: r.get::<_, i64>(0) as u64, tombstones: r.get::<_, i64>(1) as u64 })
    }
}
