//! Writes: record and template upserts (one transaction per batch, FTS and tags
//! kept in step), deletes.

use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection, OptionalExtension};

use super::sql::backend;
use crate::oip::model::{IndexedRecord, IndexedTemplate};
use crate::store::{StoreError, Upserted};

fn opt<T: Into<Sql>>(v: Option<T>) -> Sql {
    v.map_or(Sql::Null, Into::into)
}

pub fn upsert_records(
    conn: &mut Connection,
    records: &[IndexedRecord],
) -> Result<Vec<Upserted>, StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let out = upsert_records_in(&tx, records)?;
    tx.commit().map_err(backend)?;
    Ok(out)
}

/// [`upsert_records`] inside a transaction the caller commits.
pub fn upsert_records_in(
    tx: &Connection,
    records: &[IndexedRecord],
) -> Result<Vec<Upserted>, StoreError> {
    let mut out = Vec::with_capacity(records.len());
    {
        let mut find = tx
            .prepare_cached("SELECT r.id, d.doc FROM records r JOIN record_docs d ON d.id = r.id WHERE r.did = ?")
            .map_err(backend)?;
        let mut put_doc = tx
            .prepare_cached("INSERT OR REPLACE INTO record_docs (id, doc) VALUES (?, ?)")
            .map_err(backend)?;
        let mut up = tx
            .prepare_cached(
                "INSERT INTO records (did, did_tx, record_type, record_type_lc, storage, creator_handle, creator_address,
                    creator_pubkey, in_block, indexed_at, status, ver, date, sched_date, filter_date, name, description,
                    access_level, owner, private_session, public, hidden)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22)
                 ON CONFLICT(did) DO UPDATE SET did_tx=?2, record_type=?3, record_type_lc=?4, storage=?5,
                    creator_handle=?6, creator_address=?7, creator_pubkey=?8, in_block=?9, indexed_at=?10, status=?11,
                    ver=?12, date=?13, sched_date=?14, filter_date=?15, name=?16, description=?17, access_level=?18,
                    owner=?19, private_session=?20, public=?21, hidden=?22
                 RETURNING id",
            )
            .map_err(backend)?;
        let mut del_tags = tx
            .prepare_cached("DELETE FROM record_tags WHERE record_id = ?")
            .map_err(backend)?;
        let mut add_tag = tx
            .prepare_cached("INSERT OR IGNORE INTO record_tags (record_id, tag) VALUES (?, ?)")
            .map_err(backend)?;
        let mut del_fts = tx
            .prepare_cached("DELETE FROM records_fts WHERE rowid = ?")
            .map_err(backend)?;
        let mut add_fts = tx
            .prepare_cached(
                "INSERT INTO records_fts (rowid, name, description, tags) VALUES (?, ?, ?, ?)",
            )
            .map_err(backend)?;
        for r in records {
            let existing: Option<(i64, String)> = find
                .query_row([&r.did], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .map_err(backend)?;
            if let Some((_, doc)) = &existing {
                if *doc == r.doc {
                    out.push(Upserted::Unchanged);
                    continue;
                }
            }
            let params: Vec<Sql> = vec![
                r.did.clone().into(),
                opt(r.did_tx.clone()),
                opt(r.record_type.clone()),
                opt(r.record_type.as_ref().map(|t| t.to_lowercase())),
                opt(r.storage.clone()),
                opt(r.creator_handle.clone()),
                opt(r.creator_address.clone()),
                opt(r.creator_pubkey.clone()),
                opt(r.in_block),
                opt(r.indexed_at.clone()),
                opt(r.status.clone()),
                opt(r.ver.clone()),
                opt(r.date),
                opt(r.sched_date),
                opt(r.filter_date),
                opt(r.name.clone()),
                opt(r.description.clone()),
                opt(r.access_level.clone()),
                opt(r.owner.clone()),
                (r.private_session as i64).into(),
                (r.is_public() as i64).into(),
                (r.is_delete_message() as i64).into(),
            ];
            let id: i64 = up
                .query_row(params_from_iter(params), |row| row.get(0))
                .map_err(backend)?;
            put_doc
                .execute(rusqlite::params![id, r.doc])
                .map_err(backend)?;
            del_tags.execute([id]).map_err(backend)?;
            for t in &r.tags {
                add_tag.execute(rusqlite::params![id, t]).map_err(backend)?;
            }
            del_fts.execute([id]).map_err(backend)?;
            add_fts
                .execute(rusqlite::params![
                    id,
                    r.name,
                    r.description,
                    r.tags.join(" ")
                ])
                .map_err(backend)?;
            out.push(if existing.is_some() {
                Upserted::Updated
            } else {
                Upserted::Inserted
            });
        }
    }
    Ok(out)
}

pub fn upsert_templates(
    conn: &mut Connection,
    templates: &[IndexedTemplate],
) -> Result<Vec<Upserted>, StoreError> {
    let tx = conn.transaction().map_err(backend)?;
    let out = upsert_templates_in(&tx, templates)?;
    tx.commit().map_err(backend)?;
    Ok(out)
}

/// [`upsert_templates`] inside a transaction the caller commits.
pub fn upsert_templates_in(
    tx: &Connection,
    templates: &[IndexedTemplate],
) -> Result<Vec<Upserted>, StoreError> {
    let mut out = Vec::with_capacity(templates.len());
    {
        let mut find = tx
            .prepare_cached("SELECT doc FROM templates WHERE did = ?")
            .map_err(backend)?;
        let mut up = tx
            .prepare_cached(
                "INSERT INTO templates (did, name, in_block, creator_address, doc) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(did) DO UPDATE SET name=?2, in_block=?3, creator_address=?4, doc=?5",
            )
            .map_err(backend)?;
        for t in templates {
            let existing: Option<String> = find
                .query_row([&t.did], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if existing.as_deref() == Some(t.doc.as_str()) {
                out.push(Upserted::Unchanged);
                continue;
            }
            up.execute(rusqlite::params![
                t.did,
                t.name,
                t.in_block,
                t.creator_address,
                t.doc
            ])
            .map_err(backend)?;
            out.push(if existing.is_some() {
                Upserted::Updated
            } else {
                Upserted::Inserted
            });
        }
    }
    Ok(out)
}

/// Delete a record (its document, tags and FTS row with it); true if it existed.
pub fn delete(c: &mut Connection, did: &str) -> Result<bool, StoreError> {
    let tx = c.transaction().map_err(backend)?;
    let existed = delete_in(&tx, did)?;
    tx.commit().map_err(backend)?;
    Ok(existed)
}

/// [`delete`] inside a transaction the caller commits.
pub fn delete_in(tx: &Connection, did: &str) -> Result<bool, StoreError> {
    let id: Option<i64> = tx
        .query_row(
            "DELETE FROM records WHERE did = ? RETURNING id",
            [did],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    if let Some(id) = id {
        tx.execute("DELETE FROM records_fts WHERE rowid = ?", [id])
            .map_err(backend)?;
    }
    Ok(id.is_some())
}
