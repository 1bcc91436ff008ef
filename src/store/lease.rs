//! Leases for singleton background work (the indexer, GUN sync): when several
//! nodes share one store, each such task runs on the node holding its lease.
//! A holder renews its lease well inside the TTL; a node that dies (even with
//! -9) stops renewing and another takes the lease once it expires. The runner
//! that ties a supervised task to its lease is [`crate::tasks::singleton`].
//!
//! The embedded SQLite store belongs to one node, so it grants every lease.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Take or renew `name` for `holder` for `ttl`; false when another holder
    /// has it and it has not expired.
    async fn lease_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Give `name` up, if `holder` has it (a clean stop: the next node need not wait).
    async fn lease_release(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl LeaseStore for super::sqlite::SqliteStore {
    async fn lease_acquire(&self, _: &str, _: &str, _: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn lease_release(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}
