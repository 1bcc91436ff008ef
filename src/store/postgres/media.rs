//! [`MediaIndexStore`] on PostgreSQL: the `media` and `media_uploads` tables.

use std::time::Duration;

use async_trait::async_trait;

use super::{pg_error, PgStore};
use crate::store::gun::now_ms;
use crate::store::media::{MediaIndexStore, MediaRow, MAX_STALE};
use crate::store::StoreError;

fn row(r: &tokio_postgres::Row) -> MediaRow {
    MediaRow { id: r.get(0), key: r.get(1), size: r.get::<_, i64>(2) as u64, created_ms: r.get(3), manifest: r.get(4) }
}

#[async_trait]
impl MediaIndexStore for PgStore {
    async fn media_get(&self, id: &str) -> Result<Option<MediaRow>, StoreError> {
        let c = self.conn().await?;
        let r = c.query_opt("SELECT id, object_key, size, created_ms, manifest FROM media WHERE id = $1", &[&id]).await.map_err(pg_error)?;
        c.done();
        Ok(r.as_ref().map(row))
    }

    async fn media_publish(&self, m: MediaRow) -> Result<(MediaRow, bool), StoreError> {
        let c = self.conn().await?;
        let n = c
            .execute(
                "INSERT INTO media (id, object_key, size, created_ms, manifest) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&m.id, &m.key, &(m.size as i64), &m.created_ms, &m.manifest],
            )
            .await
            .map_err(pg_error)?;
        let out = if n == 1 {
            (m, true)
        } else {
            let r = c.query_one("SELECT id, object_key, size, created_ms, manifest FROM media WHERE id = $1", &[&m.id]).await.map_err(pg_error)?;
            (row(&r), false)
        };
        c.done();
        Ok(out)
    }

    async fn media_upload_started(&self, upload_id: &str, key: &str) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO media_uploads (upload_id, object_key, started_ms) VALUES ($1, $2, $3) ON CONFLICT (upload_id) DO UPDATE SET object_key = $2, started_ms = $3",
            &[&upload_id, &key, &now_ms()],
        )
        .await
        .map_err(pg_error)?;
        c.done();
        Ok(())
    }

    async fn media_upload_ended(&self, upload_id: &str) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute("DELETE FROM media_uploads WHERE upload_id = $1", &[&upload_id]).await.map_err(pg_error)?;
        c.done();
        Ok(())
    }

    async fn media_stale_uploads(&self, age: Duration, limit: u32) -> Result<Vec<(String, String, bool)>, StoreError> {
        let before = now_ms() - age.as_millis().min(i64::MAX as u128) as i64;
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT u.upload_id, u.object_key, EXISTS (SELECT 1 FROM media m WHERE m.object_key = u.object_key)
                 FROM media_uploads u WHERE u.started_ms <= $1 ORDER BY u.started_ms LIMIT $2",
                &[&before, &(limit.min(MAX_STALE) as i64)],
            )
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }
}
