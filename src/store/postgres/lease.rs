//! Leases: singleton background work across nodes. A lease is a row of
//! `leases` (name, holder, expiry); a node takes it when it is free or expired
//! and renews it while it works; a node killed with -9 stops renewing and
//! another takes over once the lease expires (within one TTL plus one renewal
//! period). Clock: the database's `now()`, so node clocks do not matter.

use std::time::Duration;

use super::{pg_error, PgStore};
use crate::store::StoreError;

impl PgStore {
    /// Take or renew the lease `name` for `holder` for `ttl`; false when
    /// another holder has it and it has not expired.
    pub async fn lease_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let c = self.conn().await?;
        let ms = ttl.as_millis().min(i64::MAX as u128) as i64;
        let r = c
            .query_opt(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3::float8 / 1000))
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at < now()
                 RETURNING holder",
                &[&name, &holder, &(ms as f64)],
            )
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(r.is_some())
    }

    /// Give the lease up (a clean shutdown), if `holder` has it.
    pub async fn lease_release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder]).await.map_err(pg_error)?;
        c.done();
        Ok(())
    }

    /// Who holds `name` now (an unexpired lease), for health.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>, StoreError> {
        let c = self.conn().await?;
        let r = c.query_opt("SELECT holder FROM leases WHERE name = $1 AND expires_at >= now()", &[&name]).await.map_err(pg_error)?;
        c.done();
        Ok(r.map(|r| r.get(0)))
    }
}
