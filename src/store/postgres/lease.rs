//! [`LeaseStore`] on PostgreSQL: a lease is a row of `leases` (name, holder,
//! expiry); taken when free or expired, renewed by its holder, in one
//! statement each. Clock: the database's `now()`, so node clocks do not matter.

use std::time::Duration;

use async_trait::async_trait;

use super::{pg_error, PgStore};
use crate::store::lease::LeaseStore;
use crate::store::StoreError;

#[async_trait]
impl LeaseStore for PgStore {
    async fn lease_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let c = self.conn().await?;
        let ms = ttl.as_millis().min(u32::MAX as u128) as f64;
        let r = c
            .query_opt(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3::float8 / 1000))
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at < now()
                 RETURNING holder",
                &[&name, &holder, &ms],
            )
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(r.is_some())
    }

    async fn lease_release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder]).await.map_err(pg_error)?;
        c.done();
        Ok(())
    }
}
