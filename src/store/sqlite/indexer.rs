//! [`IndexerStore`] for [`SqliteStore`]: creators, organizations and the
//! indexer's ledger (migration 3), written through the one writer connection.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::conn::SqliteStore;
use super::sql::backend;
use super::write;
use crate::store::indexer::{
    Creator, CreatorRow, Effect, IndexerStore, LedgerEntry, LedgerRow, Listing, OrganizationRow, Processed, MAX_LIST, PENDING_STATUS,
};
use crate::store::StoreError;

fn resume_height(c: &Connection) -> Result<Option<u64>, StoreError> {
    // Each MAX walks its index from the top; pending rows are passed over.
    let h: Option<i64> = c
        .query_row(
            "SELECT MAX(h) FROM (
                SELECT MAX(height) AS h FROM indexer_txs WHERE bootstrap = 0
                UNION ALL SELECT MAX(in_block) FROM records WHERE status IS NOT ?1 AND did LIKE 'did:arweave:%'
                UNION ALL SELECT MAX(in_block) FROM templates WHERE json_extract(doc, '$.oip.recordStatus') IS NOT ?1
                UNION ALL SELECT MAX(in_block) FROM creators WHERE status IS NOT ?1 AND bootstrap = 0
                UNION ALL SELECT MAX(in_block) FROM organizations)",
            [PENDING_STATUS],
            |r| r.get(0),
        )
        .map_err(backend)?;
    Ok(h.filter(|h| *h >= 0).map(|h| h as u64))
}

fn apply(c: &mut Connection, batch: &[Processed]) -> Result<(), StoreError> {
    // Records and templates go through the same upserts as imports, each in
    // its own statement set; everything of the batch commits together.
    let tx = c.transaction().map_err(backend)?;
    for p in batch {
        match &p.effect {
            Effect::Record(r) => {
                write::upsert_records_in(&tx, std::slice::from_ref(r))?;
            }
            Effect::Template(t) => {
                write::upsert_templates_in(&tx, std::slice::from_ref(t))?;
            }
            Effect::Creator(row) => {
                tx.execute(
                    "INSERT INTO creators (did, address, handle, public_key, in_block, status, bootstrap, doc) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)
                     ON CONFLICT(did) DO UPDATE SET address=?2, handle=?3, public_key=?4, in_block=?5, status=?6, bootstrap=?7, doc=?8",
                    params![
                        row.creator.did_tx,
                        row.creator.did_address,
                        row.creator.handle,
                        row.creator.public_key,
                        row.in_block,
                        row.status,
                        row.bootstrap || p.bootstrap,
                        row.doc
                    ],
                )
                .map_err(backend)?;
            }
            Effect::Organization(o) => {
                tx.execute(
                    "INSERT INTO organizations (did, handle, address, in_block, doc) VALUES (?1,?2,?3,?4,?5)
                     ON CONFLICT(did) DO UPDATE SET handle=?2, address=?3, in_block=?4, doc=?5",
                    params![o.did, o.handle, o.did_address, o.in_block, o.doc],
                )
                .map_err(backend)?;
            }
            Effect::Delete { message, target } => {
                write::upsert_records_in(&tx, std::slice::from_ref(message))?;
                if let Some(target) = target {
                    write::delete_in(&tx, target)?;
                    tx.execute("DELETE FROM organizations WHERE did = ?", [target]).map_err(backend)?;
                }
            }
            Effect::Skipped { .. } => {
                // What was published here for this transaction and waits for
                // confirmation never will be: its pending document goes.
                let did = format!("did:arweave:{}", p.txid);
                let pending: Option<String> =
                    tx.query_row("SELECT status FROM records WHERE did = ?", [&did], |r| r.get(0)).optional().map_err(backend)?.flatten();
                if pending.as_deref() == Some(PENDING_STATUS) {
                    write::delete_in(&tx, &did)?;
                }
                tx.execute("DELETE FROM templates WHERE did = ?1 AND json_extract(doc, '$.oip.recordStatus') = ?2", params![did, PENDING_STATUS])
                    .map_err(backend)?;
            }
        }
        tx.execute(
            "INSERT INTO indexer_txs (txid, height, block_id, outcome, bootstrap) VALUES (?1,?2,?3,?4,?5)
             ON CONFLICT(txid) DO UPDATE SET height=?2, block_id=?3, outcome=?4, bootstrap=?5",
            params![p.txid, p.height as i64, p.block_id, p.effect.outcome(), p.bootstrap],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

fn forget(c: &mut Connection, txids: &[String]) -> Result<u64, StoreError> {
    let tx = c.transaction().map_err(backend)?;
    let mut n = 0;
    for t in txids {
        let did = format!("did:arweave:{t}");
        write::delete_in(&tx, &did)?;
        for table in ["templates", "creators", "organizations"] {
            tx.execute(&format!("DELETE FROM {table} WHERE did = ?"), [&did]).map_err(backend)?;
        }
        n += tx.execute("DELETE FROM indexer_txs WHERE txid = ?", [t]).map_err(backend)? as u64;
    }
    tx.commit().map_err(backend)?;
    Ok(n)
}

fn listing(c: &Connection, table: &str, status_filter: &str, limit: u32) -> Result<Listing, StoreError> {
    let (count, max_block): (i64, Option<i64>) = c
        .query_row(
            &format!("SELECT COUNT(*), (SELECT MAX(in_block) FROM {table} WHERE {status_filter}) FROM {table}"),
            [PENDING_STATUS],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(backend)?;
    let mut stmt = c
        .prepare(&format!("SELECT doc FROM {table} ORDER BY in_block DESC, did LIMIT ?"))
        .map_err(backend)?;
    let docs = stmt
        .query_map([limit.min(MAX_LIST)], |r| r.get::<_, String>(0))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok(Listing { count: count as u64, max_block, docs })
}

#[async_trait]
impl IndexerStore for SqliteStore {
    async fn copy_in(&self, creators: Vec<CreatorRow>, organizations: Vec<OrganizationRow>, ledger: Vec<LedgerRow>) -> Result<(), StoreError> {
        self.write(move |c| {
            let tx = c.transaction().map_err(backend)?;
            for r in &creators {
                tx.execute(
                    "INSERT INTO creators (did, address, handle, public_key, in_block, status, bootstrap, doc) VALUES (?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT DO NOTHING",
                    params![r.creator.did_tx, r.creator.did_address, r.creator.handle, r.creator.public_key, r.in_block, r.status, r.bootstrap, r.doc],
                )
                .map_err(backend)?;
            }
            for o in &organizations {
                tx.execute("INSERT INTO organizations (did, handle, address, in_block, doc) VALUES (?1,?2,?3,?4,?5) ON CONFLICT DO NOTHING", params![o.did, o.handle, o.did_address, o.in_block, o.doc])
                    .map_err(backend)?;
            }
            for l in &ledger {
                tx.execute(
                    "INSERT INTO indexer_txs (txid, height, block_id, outcome, bootstrap) VALUES (?1,?2,?3,?4,?5) ON CONFLICT DO NOTHING",
                    params![l.txid, l.height as i64, l.block_id, l.outcome, l.bootstrap],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn resume_height(&self) -> Result<Option<u64>, StoreError> {
        self.read(resume_height).await
    }

    async fn seen(&self, txids: Vec<String>) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached("SELECT 1 FROM indexer_txs WHERE txid = ?").map_err(backend)?;
            let mut out = Vec::new();
            for t in txids {
                if stmt.exists([&t]).map_err(backend)? {
                    out.push(t);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn apply(&self, batch: Vec<Processed>) -> Result<(), StoreError> {
        self.write(move |c| apply(c, &batch)).await
    }

    async fn ledger_from(&self, height: u64, limit: u32) -> Result<Vec<LedgerEntry>, StoreError> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT txid, height, block_id FROM indexer_txs WHERE height >= ? AND bootstrap = 0 ORDER BY height, txid LIMIT ?")
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![height as i64, limit.min(MAX_LIST)], |r| {
                    Ok(LedgerEntry { txid: r.get(0)?, height: r.get::<_, i64>(1)? as u64, block_id: r.get(2)? })
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn forget(&self, txids: Vec<String>) -> Result<u64, StoreError> {
        self.write(move |c| forget(c, &txids)).await
    }

    async fn ledger_counts(&self) -> Result<(u64, u64), StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(outcome LIKE 'skipped%'), 0) FROM indexer_txs",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(backend)
        })
        .await
    }

    async fn creator_by_address(&self, did_address: &str) -> Result<Option<Creator>, StoreError> {
        let a = did_address.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT did, address, handle, public_key FROM creators WHERE address = ? ORDER BY in_block LIMIT 1",
                [a],
                |r| Ok(Creator { did_tx: r.get(0)?, did_address: r.get(1)?, handle: r.get(2)?, public_key: r.get(3)? }),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn org_handle_taken(&self, handle: &str, except_did: &str) -> Result<bool, StoreError> {
        let (h, d) = (handle.to_owned(), except_did.to_owned());
        self.read(move |c| {
            c.prepare_cached("SELECT 1 FROM organizations WHERE handle = ?1 AND did <> ?2")
                .and_then(|mut s| s.exists([h, d]))
                .map_err(backend)
        })
        .await
    }

    async fn creators(&self, limit: u32) -> Result<Listing, StoreError> {
        self.read(move |c| listing(c, "creators", "status IS NOT ?1", limit)).await
    }

    async fn organizations(&self, limit: u32) -> Result<Listing, StoreError> {
        self.read(move |c| listing(c, "organizations", "?1 IS NOT NULL", limit)).await
    }

    async fn template_doc(&self, txid: &str) -> Result<Option<String>, StoreError> {
        let did = format!("did:arweave:{txid}");
        self.read(move |c| {
            c.query_row("SELECT doc FROM templates WHERE did = ?", [did], |r| r.get(0)).optional().map_err(backend)
        })
        .await
    }

    async fn owner_of(&self, did: &str) -> Result<Option<String>, StoreError> {
        let did = did.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT a FROM (
                    SELECT creator_address AS a FROM records WHERE did = ?1
                    UNION ALL SELECT creator_address FROM templates WHERE did = ?1
                    UNION ALL SELECT address FROM organizations WHERE did = ?1) WHERE a IS NOT NULL LIMIT 1",
                [did],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }
}
