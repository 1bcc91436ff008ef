//! [`MediaIndexStore`] on SQLite: the `media` and `media_uploads` tables (migration 5).

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::conn::SqliteStore;
use super::sql::backend;
use crate::store::gun::now_ms;
use crate::store::media::{MediaIndexStore, MediaRow, MAX_STALE};
use crate::store::StoreError;

fn get(c: &rusqlite::Connection, id: &str) -> Result<Option<MediaRow>, StoreError> {
    c.query_row("SELECT id, object_key, size, created_ms, manifest FROM media WHERE id = ?", [id], |r| {
        Ok(MediaRow { id: r.get(0)?, key: r.get(1)?, size: r.get::<_, i64>(2)? as u64, created_ms: r.get(3)?, manifest: r.get(4)? })
    })
    .optional()
    .map_err(backend)
}

#[async_trait]
impl MediaIndexStore for SqliteStore {
    async fn media_get(&self, id: &str) -> Result<Option<MediaRow>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| get(c, &id)).await
    }

    async fn media_publish(&self, row: MediaRow) -> Result<(MediaRow, bool), StoreError> {
        self.write(move |c| {
            let n = c
                .execute(
                    "INSERT INTO media (id, object_key, size, created_ms, manifest) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![row.id, row.key, row.size as i64, row.created_ms, row.manifest],
                )
                .map_err(backend)?;
            if n == 1 {
                return Ok((row, true));
            }
            let existing = get(c, &row.id)?.ok_or_else(|| StoreError::Backend("media row vanished".into()))?;
            Ok((existing, false))
        })
        .await
    }

    async fn media_upload_started(&self, upload_id: &str, key: &str) -> Result<(), StoreError> {
        let (u, k) = (upload_id.to_owned(), key.to_owned());
        self.write(move |c| c.execute("INSERT OR REPLACE INTO media_uploads (upload_id, object_key, started_ms) VALUES (?1, ?2, ?3)", params![u, k, now_ms()]).map(drop).map_err(backend)).await
    }

    async fn media_upload_ended(&self, upload_id: &str) -> Result<(), StoreError> {
        let u = upload_id.to_owned();
        self.write(move |c| c.execute("DELETE FROM media_uploads WHERE upload_id = ?", [u]).map(drop).map_err(backend)).await
    }

    async fn media_stale_uploads(&self, age: Duration, limit: u32) -> Result<Vec<(String, String, bool)>, StoreError> {
        let before = now_ms() - age.as_millis().min(i64::MAX as u128) as i64;
        self.read(move |c| {
            let mut st = c
                .prepare(
                    "SELECT u.upload_id, u.object_key, EXISTS (SELECT 1 FROM media m WHERE m.object_key = u.object_key)
                     FROM media_uploads u WHERE u.started_ms <= ? ORDER BY u.started_ms LIMIT ?",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![before, limit.min(MAX_STALE)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }
}
