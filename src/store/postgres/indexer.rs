//! [`IndexerStore`] on PostgreSQL: creators, organizations and the indexer's
//! ledger; a batch of processed transactions commits in one transaction.

use async_trait::async_trait;

use super::records::{clean, delete_in, upsert_records_in, upsert_templates_in};
use super::{pg_error, PgStore};
use crate::store::indexer::{Creator, CreatorRow, Effect, IndexerStore, LedgerEntry, LedgerRow, Listing, OrganizationRow, Processed, MAX_LIST, PENDING_STATUS};
use crate::store::StoreError;

async fn listing(s: &PgStore, table: &str, status_filter: &str, limit: u32) -> Result<Listing, StoreError> {
    let c = s.conn().await?;
    let r = c
        .query_one(&format!("SELECT COUNT(*), (SELECT MAX(in_block) FROM {table} WHERE {status_filter}) FROM {table}"), &[&PENDING_STATUS])
        .await
        .map_err(pg_error)?;
    let docs = c
        .query(&format!("SELECT doc FROM {table} ORDER BY in_block DESC NULLS LAST, did LIMIT $1"), &[&(limit.min(MAX_LIST) as i64)])
        .await
        .map_err(pg_error)?;
    c.done();
    Ok(Listing { count: r.get::<_, i64>(0) as u64, max_block: r.get(1), docs: docs.into_iter().map(|r| r.get(0)).collect() })
}

#[async_trait]
impl IndexerStore for PgStore {
    async fn copy_in(&self, creators: Vec<CreatorRow>, organizations: Vec<OrganizationRow>, ledger: Vec<LedgerRow>) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        for r in &creators {
            tx.execute(
                "INSERT INTO creators (did, address, handle, public_key, in_block, status, bootstrap, doc) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING",
                &[&r.creator.did_tx, &r.creator.did_address, &r.creator.handle.replace('\0', ""), &r.creator.public_key, &r.in_block, &clean(&r.status), &r.bootstrap, &r.doc],
            )
            .await
            .map_err(pg_error)?;
        }
        for o in &organizations {
            tx.execute(
                "INSERT INTO organizations (did, handle, address, in_block, doc) VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING",
                &[&o.did, &o.handle.replace('\0', ""), &o.did_address, &o.in_block, &o.doc],
            )
            .await
            .map_err(pg_error)?;
        }
        for l in &ledger {
            tx.execute(
                "INSERT INTO indexer_txs (txid, height, block_id, outcome, bootstrap) VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING",
                &[&l.txid, &(l.height as i64), &l.block_id, &l.outcome.replace('\0', ""), &l.bootstrap],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        c.done();
        Ok(())
    }

    async fn resume_height(&self) -> Result<Option<u64>, StoreError> {
        let c = self.conn().await?;
        let h: Option<i64> = c
            .query_one(
                "SELECT MAX(h) FROM (
                    SELECT MAX(height) AS h FROM indexer_txs WHERE NOT bootstrap
                    UNION ALL SELECT MAX(in_block) FROM records WHERE status IS DISTINCT FROM $1 AND did LIKE 'did:arweave:%'
                    UNION ALL SELECT MAX(in_block) FROM templates WHERE (doc::jsonb #>> '{oip,recordStatus}') IS DISTINCT FROM $1
                    UNION ALL SELECT MAX(in_block) FROM creators WHERE status IS DISTINCT FROM $1 AND NOT bootstrap
                    UNION ALL SELECT MAX(in_block) FROM organizations) AS hs",
                &[&PENDING_STATUS],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        c.done();
        Ok(h.filter(|h| *h >= 0).map(|h| h as u64))
    }

    async fn seen(&self, txids: Vec<String>) -> Result<Vec<String>, StoreError> {
        let c = self.conn().await?;
        let rows = c.query("SELECT txid FROM indexer_txs WHERE txid = ANY($1::text[])", &[&txids]).await.map_err(pg_error)?;
        c.done();
        let found: std::collections::HashSet<String> = rows.into_iter().map(|r| r.get(0)).collect();
        // in the order asked
        Ok(txids.into_iter().filter(|t| found.contains(t)).collect())
    }

    async fn apply(&self, batch: Vec<Processed>) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        for p in &batch {
            match &p.effect {
                Effect::Record(r) => {
                    upsert_records_in(&tx, std::slice::from_ref(r)).await?;
                }
                Effect::Template(t) => {
                    upsert_templates_in(&tx, std::slice::from_ref(t)).await?;
                }
                Effect::Creator(row) => {
                    tx.execute(
                        "INSERT INTO creators (did, address, handle, public_key, in_block, status, bootstrap, doc) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
                         ON CONFLICT (did) DO UPDATE SET address=$2, handle=$3, public_key=$4, in_block=$5, status=$6, bootstrap=$7, doc=$8",
                        &[
                            &row.creator.did_tx,
                            &row.creator.did_address,
                            &row.creator.handle.replace('\0', ""),
                            &row.creator.public_key,
                            &row.in_block,
                            &clean(&row.status),
                            &(row.bootstrap || p.bootstrap),
                            &row.doc,
                        ],
                    )
                    .await
                    .map_err(pg_error)?;
                }
                Effect::Organization(o) => {
                    tx.execute(
                        "INSERT INTO organizations (did, handle, address, in_block, doc) VALUES ($1,$2,$3,$4,$5)
                         ON CONFLICT (did) DO UPDATE SET handle=$2, address=$3, in_block=$4, doc=$5",
                        &[&o.did, &o.handle.replace('\0', ""), &o.did_address, &o.in_block, &o.doc],
                    )
                    .await
                    .map_err(pg_error)?;
                }
                Effect::Delete { message, target } => {
                    upsert_records_in(&tx, std::slice::from_ref(message)).await?;
                    if let Some(target) = target {
                        delete_in(&tx, target).await?;
                        tx.execute("DELETE FROM organizations WHERE did = $1", &[target]).await.map_err(pg_error)?;
                    }
                }
                Effect::Skipped { .. } => {
                    // What was published here for this transaction and waits for
                    // confirmation never will be: its pending document goes.
                    let did = format!("did:arweave:{}", p.txid);
                    tx.execute("DELETE FROM records WHERE did = $1 AND status = $2", &[&did, &PENDING_STATUS]).await.map_err(pg_error)?;
                    tx.execute("DELETE FROM templates WHERE did = $1 AND (doc::jsonb #>> '{oip,recordStatus}') = $2", &[&did, &PENDING_STATUS])
                        .await
                        .map_err(pg_error)?;
                }
            }
            tx.execute(
                "INSERT INTO indexer_txs (txid, height, block_id, outcome, bootstrap) VALUES ($1,$2,$3,$4,$5)
                 ON CONFLICT (txid) DO UPDATE SET height=$2, block_id=$3, outcome=$4, bootstrap=$5",
                &[&p.txid, &(p.height as i64), &p.block_id, &p.effect.outcome().replace('\0', ""), &p.bootstrap],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        c.done();
        Ok(())
    }

    async fn ledger_from(&self, height: u64, limit: u32) -> Result<Vec<LedgerEntry>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT txid, height, block_id FROM indexer_txs WHERE height >= $1 AND NOT bootstrap ORDER BY height, txid LIMIT $2",
                &[&(height.min(i64::MAX as u64) as i64), &(limit.min(MAX_LIST) as i64)],
            )
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(rows.into_iter().map(|r| LedgerEntry { txid: r.get(0), height: r.get::<_, i64>(1) as u64, block_id: r.get(2) }).collect())
    }

    async fn forget(&self, txids: Vec<String>) -> Result<u64, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let mut n = 0;
        for t in &txids {
            let did = format!("did:arweave:{t}");
            delete_in(&tx, &did).await?;
            for table in ["templates", "creators", "organizations"] {
                tx.execute(&format!("DELETE FROM {table} WHERE did = $1"), &[&did]).await.map_err(pg_error)?;
            }
            n += tx.execute("DELETE FROM indexer_txs WHERE txid = $1", &[t]).await.map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        c.done();
        Ok(n)
    }

    async fn ledger_counts(&self) -> Result<(u64, u64), StoreError> {
        let c = self.conn().await?;
        let r = c
            .query_one("SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome LIKE 'skipped%') FROM indexer_txs", &[])
            .await
            .map_err(pg_error)?;
        c.done();
        Ok((r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
    }

    async fn creator_by_address(&self, did_address: &str) -> Result<Option<Creator>, StoreError> {
        let c = self.conn().await?;
        let r = c
            .query_opt("SELECT did, address, handle, public_key FROM creators WHERE address = $1 ORDER BY in_block NULLS FIRST LIMIT 1", &[&did_address])
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(r.map(|r| Creator { did_tx: r.get(0), did_address: r.get(1), handle: r.get(2), public_key: r.get(3) }))
    }

    async fn org_handle_taken(&self, handle: &str, except_did: &str) -> Result<bool, StoreError> {
        let c = self.conn().await?;
        let r = c
            .query_one("SELECT EXISTS (SELECT 1 FROM organizations WHERE handle = $1 AND did <> $2)", &[&handle, &except_did])
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(r.get(0))
    }

    async fn creators(&self, limit: u32) -> Result<Listing, StoreError> {
        listing(self, "creators", "status IS DISTINCT FROM $1", limit).await
    }

    async fn organizations(&self, limit: u32) -> Result<Listing, StoreError> {
        listing(self, "organizations", "$1::text IS NOT NULL", limit).await
    }

    async fn template_doc(&self, txid: &str) -> Result<Option<String>, StoreError> {
        let did = format!("did:arweave:{txid}");
        let c = self.conn().await?;
        let r = c.query_opt("SELECT doc FROM templates WHERE did = $1", &[&did]).await.map_err(pg_error)?;
        c.done();
        Ok(r.map(|r| r.get(0)))
    }

    async fn owner_of(&self, did: &str) -> Result<Option<String>, StoreError> {
        let c = self.conn().await?;
        let r = c
            .query_opt(
                "SELECT a FROM (
                    SELECT creator_address AS a FROM records WHERE did = $1
                    UNION ALL SELECT creator_address FROM templates WHERE did = $1
                    UNION ALL SELECT address FROM organizations WHERE did = $1) AS o WHERE a IS NOT NULL LIMIT 1",
                &[&did],
            )
            .await
            .map_err(pg_error)?;
        c.done();
        Ok(r.map(|r| r.get(0)))
    }
}
