//! Copying a SQLite store into another backend (`oipd migrate --to-store`):
//! records, templates, accounts, the indexer's creators, organizations and
//! ledger, and the GUN graph, page by page in key order.
//!
//! Idempotent and resumable: every write is an upsert that leaves equal rows
//! alone (records and templates by document, accounts by email, indexer rows
//! kept when present, GUN nodes merged — an equal node is unchanged), so a run
//! killed mid-way and run again copies what is missing and doubles nothing.
//!
//! Bound: [`PAGE`] rows read and written at a time.

use std::path::Path;

use serde_json::{Map, Value};

use super::backends::Stores;
use super::gun::{GunWrite, NodeLimits};
use super::sqlite::dump::Dump;
use super::users::UserDoc;
use super::{StoreError, Upserted};
use crate::oip::model::{IndexedRecord, IndexedTemplate};

/// Bound: rows per page.
pub const PAGE: u32 = 500;

/// What a copy did, per kind: `(copied, already there)`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub records: (u64, u64),
    pub templates: (u64, u64),
    pub users: (u64, u64),
    pub indexer: u64,
    pub gun: (u64, u64),
    /// Documents that did not parse (reported, skipped).
    pub bad: u64,
}

/// Progress: a stage name, rows done, rows in all.
pub type Progress<'a> = &'a (dyn Fn(&'static str, u64, u64) + Sync);

fn bad(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn tally(out: &mut (u64, u64), ups: &[Upserted]) {
    for u in ups {
        match u {
            Upserted::Unchanged => out.1 += 1,
            _ => out.0 += 1,
        }
    }
}

/// Copy the SQLite store at `src` into `dst`.
pub async fn copy_sqlite(src: &Path, dst: &Stores, progress: Progress<'_>) -> Result<Copied, StoreError> {
    // brings an older file's schema up to date, then reads it out
    drop(super::sqlite::SqliteStore::open(src)?);
    let d = Dump::open(src)?;
    let [n_records, n_templates, n_users, n_indexer, n_gun] = d.counts()?;
    let mut out = Copied::default();

    let (mut after, mut done) = (String::new(), 0);
    loop {
        let page = d.templates(&after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        done += page.len() as u64;
        let ts: Vec<IndexedTemplate> = page
            .iter()
            .filter_map(|(_, doc)| serde_json::from_str::<Value>(doc).ok().and_then(|v| IndexedTemplate::from_value(&v)).or_else(|| {
                out.bad += 1;
                None
            }))
            .collect();
        tally(&mut out.templates, &dst.records.upsert_templates(ts).await?);
        progress("templates", done, n_templates);
    }

    let (mut after, mut done) = (String::new(), 0);
    loop {
        let page = d.records(&after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        done += page.len() as u64;
        let mut rs = Vec::with_capacity(page.len());
        for (_, doc) in &page {
            match serde_json::from_str::<Value>(doc).map_err(bad).and_then(|v| IndexedRecord::from_value(&v).map_err(bad)) {
                Ok(mut r) => {
                    r.doc = doc.clone(); // byte for byte
                    rs.push(r)
                }
                Err(_) => out.bad += 1,
            }
        }
        tally(&mut out.records, &dst.records.upsert(rs).await?);
        progress("records", done, n_records);
    }

    let (mut after, mut done) = (String::new(), 0);
    loop {
        let page = d.users(&after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        done += page.len() as u64;
        let us: Vec<UserDoc> = page
            .iter()
            .filter_map(|(id, doc)| serde_json::from_str::<Map<String, Value>>(doc).ok().map(|doc| UserDoc { id: id.clone(), doc, rev: 0 }))
            .collect();
        out.bad += page.len() as u64 - us.len() as u64;
        tally(&mut out.users, &dst.users.upsert_users(us).await?);
        progress("accounts", done, n_users);
    }

    let mut done = 0;
    let mut after = String::new();
    loop {
        let page = d.creators(&after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.creator.did_tx.clone();
        done += page.len() as u64;
        dst.indexer.copy_in(page, vec![], vec![]).await?;
        progress("indexer", done, n_indexer);
    }
    let mut after = String::new();
    loop {
        let page = d.organizations(&after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.did.clone();
        done += page.len() as u64;
        dst.indexer.copy_in(vec![], page, vec![]).await?;
        progress("indexer", done, n_indexer);
    }
    let mut after = String::new();
    loop {
        let page = d.ledger(&after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.txid.clone();
        done += page.len() as u64;
        dst.indexer.copy_in(vec![], vec![], page).await?;
        progress("indexer", done, n_indexer);
    }
    out.indexer = done;

    // every node as it is: no bound of the target refuses what the source holds
    let limits = NodeLimits { max_bytes: usize::MAX, max_keys: usize::MAX };
    let (mut after, mut done) = (String::new(), 0);
    loop {
        let page = d.gun(&after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        done += page.len() as u64;
        for (soul, node) in page {
            let write = match node {
                Some(text) => match serde_json::from_str::<Map<String, Value>>(&text) {
                    Ok(m) => GunWrite::Merge(m),
                    Err(_) => {
                        out.bad += 1;
                        continue;
                    }
                },
                None => GunWrite::Delete,
            };
            match dst.gun.gun_put(&soul, write, limits).await? {
                super::gun::GunPut::Written => out.gun.0 += 1,
                _ => out.gun.1 += 1,
            }
        }
        progress("gun", done, n_gun);
    }
    dst.records.after_bulk_load().await?;
    Ok(out)
}
