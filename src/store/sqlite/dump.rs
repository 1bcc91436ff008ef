//! Reading a SQLite store out, page by page in key order, for copying it into
//! another backend (`oipd migrate`): records and templates as their documents,
//! accounts, the indexer's creators, organizations and ledger, and the GUN graph.
//! Opened read-only; each page is one short query (bounded by its limit), so a
//! copy never holds more than a page.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};

use super::sql::backend;
use crate::store::indexer::{Creator, CreatorRow, LedgerRow, OrganizationRow};
use crate::store::StoreError;

/// A SQLite store opened for reading out.
pub struct Dump {
    c: Connection,
}

/// What a page of one table is read after.
pub type Cursor = String;

impl Dump {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(backend)?;
        Ok(Dump { c })
    }

    fn count(&self, table: &str) -> Result<u64, StoreError> {
        self.c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(backend)
    }

    /// Rows in each table: records, templates, users, creators + organizations + ledger, GUN nodes.
    pub fn counts(&self) -> Result<[u64; 5], StoreError> {
        Ok([
            self.count("records")?,
            self.count("templates")?,
            self.count("users")?,
            self.count("creators")? + self.count("organizations")? + self.count("indexer_txs")?,
            self.count("gun_nodes")?,
        ])
    }

    /// Record documents after `did`, in DID order.
    pub fn records(&self, after: &str, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
        self.pairs("SELECT r.did, d.doc FROM records r JOIN record_docs d ON d.id = r.id WHERE r.did > ?1 ORDER BY r.did LIMIT ?2", after, limit)
    }

    pub fn templates(&self, after: &str, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
        self.pairs("SELECT did, doc FROM templates WHERE did > ?1 ORDER BY did LIMIT ?2", after, limit)
    }

    /// Accounts `(id, document)` after `id`.
    pub fn users(&self, after: &str, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
        self.pairs("SELECT id, doc FROM users WHERE id > ?1 ORDER BY id LIMIT ?2", after, limit)
    }

    /// GUN nodes `(soul, node)` after `soul` (tombstones have no node).
    pub fn gun(&self, after: &str, limit: u32) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let mut st = self.c.prepare("SELECT soul, node FROM gun_nodes WHERE soul > ?1 ORDER BY soul LIMIT ?2").map_err(backend)?;
        let rows = st.query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?.collect::<Result<Vec<_>, _>>().map_err(backend)?;
        Ok(rows)
    }

    fn pairs(&self, sql: &str, after: &str, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self.c.prepare(sql).map_err(backend)?;
        let rows = st.query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?.collect::<Result<Vec<_>, _>>().map_err(backend)?;
        Ok(rows)
    }

    pub fn creators(&self, after: &str, limit: u32) -> Result<Vec<CreatorRow>, StoreError> {
        let mut st = self
            .c
            .prepare("SELECT did, address, handle, public_key, in_block, status, bootstrap, doc FROM creators WHERE did > ?1 ORDER BY did LIMIT ?2")
            .map_err(backend)?;
        let rows = st
            .query_map(params![after, limit], |r| {
                Ok(CreatorRow {
                    creator: Creator { did_tx: r.get(0)?, did_address: r.get(1)?, handle: r.get(2)?, public_key: r.get(3)? },
                    in_block: r.get(4)?,
                    status: r.get(5)?,
                    bootstrap: r.get(6)?,
                    doc: r.get(7)?,
                })
            })
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        Ok(rows)
    }

    pub fn organizations(&self, after: &str, limit: u32) -> Result<Vec<OrganizationRow>, StoreError> {
        let mut st = self.c.prepare("SELECT did, coalesce(handle, ''), coalesce(address, ''), in_block, doc FROM organizations WHERE did > ?1 ORDER BY did LIMIT ?2").map_err(backend)?;
        let rows = st
            .query_map(params![after, limit], |r| Ok(OrganizationRow { did: r.get(0)?, handle: r.get(1)?, did_address: r.get(2)?, in_block: r.get(3)?, doc: r.get(4)? }))
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        Ok(rows)
    }

    pub fn ledger(&self, after: &str, limit: u32) -> Result<Vec<LedgerRow>, StoreError> {
        let mut st = self.c.prepare("SELECT txid, height, block_id, outcome, bootstrap FROM indexer_txs WHERE txid > ?1 ORDER BY txid LIMIT ?2").map_err(backend)?;
        let rows = st
            .query_map(params![after, limit], |r| {
                Ok(LedgerRow { txid: r.get(0)?, height: r.get::<_, i64>(1)? as u64, block_id: r.get(2)?, outcome: r.get(3)?, bootstrap: r.get(4)? })
            })
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        Ok(rows)
    }
}
