//! [`RecordStore`] on PostgreSQL: reads (result pages with real totals, tag
//! summaries, reference fetches streamed into the caller's bounded channel,
//! counts, types, templates) and writes (record and template upserts — one
//! statement per record keeping document, tags and the weighted `tsvector` in
//! step — and deletes), each on one pooled [`Conn`].

use async_trait::async_trait;
use futures_util::{pin_mut, StreamExt};
use serde_json::value::RawValue;
use tokio_postgres::Row as PgRow;

use super::sql::{text, Frag, Sql};
use super::translate::{matches, visible};
use super::{pg_error, Conn, PgStore, FETCH_CHUNK};
use crate::oip::model::{IndexedRecord, IndexedTemplate};
use crate::oip::plan::{self, EquipmentItem, Plan};
use crate::oip::query::RecordQuery;
use crate::store::{FetchSink, Page, RecordStore, Row, Scores, Stats, StoreError, TemplateFilter, Upserted, Viewer};

/// Text for a PostgreSQL `text` column (which cannot hold NUL).
pub(super) fn clean(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| if s.contains('\0') { s.replace('\0', "") } else { s.clone() })
}

/// A document as PostgreSQL can read it as `jsonb`, which refuses the NUL
/// character (`\u0000`): NULs in strings and keys become U+FFFD. Documents
/// without one (all but crafted ones) pass through untouched.
pub(super) fn jsonb_safe(doc: &str) -> std::borrow::Cow<'_, str> {
    fn scrub(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{FFFD}"),
            serde_json::Value::Array(a) => a.iter_mut().for_each(scrub),
            serde_json::Value::Object(o) => {
                if o.keys().any(|k| k.contains('\0')) {
                    let taken = std::mem::take(o);
                    *o = taken.into_iter().map(|(k, v)| (k.replace('\0', "\u{FFFD}"), v)).collect();
                }
                o.values_mut().for_each(scrub);
            }
            _ => {}
        }
    }
    if !doc.contains("\\u0000") {
        return std::borrow::Cow::Borrowed(doc);
    }
    match serde_json::from_str::<serde_json::Value>(doc) {
        Ok(mut v) => {
            scrub(&mut v);
            std::borrow::Cow::Owned(v.to_string())
        }
        Err(_) => std::borrow::Cow::Borrowed(doc),
    }
}

fn raw(s: String) -> Result<Box<RawValue>, StoreError> {
    RawValue::from_string(s).map_err(|e| StoreError::Backend(format!("stored document: {e}")))
}

/// Rows of `f`, streamed from the server and collected (bounded by the query's LIMIT).
/// An unnamed statement: query texts vary with the filters, so caching them per
/// connection would be a map without a bound.
async fn rows(c: &Conn, f: &Frag) -> Result<Vec<PgRow>, StoreError> {
    let (sql, params) = f.finish();
    let stream = c.query_raw(sql.as_str(), params).await.map_err(pg_error)?;
    pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(r) = stream.next().await {
        out.push(r.map_err(pg_error)?);
    }
    Ok(out)
}

async fn one(c: &Conn, f: &Frag) -> Result<Option<PgRow>, StoreError> {
    Ok(rows(c, f).await?.into_iter().next())
}

/// The plan for `q`, after looking up the names of equipment records named by DID.
async fn plan_for(c: &Conn, q: &RecordQuery, viewer: &Viewer) -> Result<Plan, StoreError> {
    let mut names = Vec::new();
    for item in plan::equipment_items(q) {
        match item {
            EquipmentItem::Name(n) => names.push(n.to_owned()),
            EquipmentItem::Did(did) => {
                let mut f = Frag::new("SELECT lower(r.name) FROM records r WHERE r.did = ? AND ", vec![text(did)]);
                f.push(visible("r", viewer));
                if let Some(Some(n)) = one(c, &f).await?.map(|r| r.get::<_, Option<String>>(0)) {
                    names.push(n);
                }
            }
        }
    }
    Ok(plan::plan(q, &names))
}

async fn search(c: &Conn, q: &RecordQuery, viewer: &Viewer) -> Result<Page, StoreError> {
    let plan = plan_for(c, q, viewer).await?;
    let (cte, order) = matches(&plan, viewer);
    let mut count = cte.clone();
    count.sql.push_str(" SELECT COUNT(*) FROM m");
    let total: i64 = one(c, &count).await?.map_or(0, |r| r.get(0));

    let mut page = cte;
    let mut cols = String::from("m.did, rec.doc");
    for i in 0..plan.scores.len() {
        cols.push_str(&format!(", m.c{i}::int8"));
    }
    if plan.match_count.is_some() {
        cols.push_str(", m.mc::int8");
    }
    if plan.field_score.is_some() {
        cols.push_str(", m.fs::float8");
    }
    page.sql.push_str(&format!(
        " SELECT {cols} FROM m JOIN record_docs rec ON rec.id = m.id ORDER BY {} LIMIT ? OFFSET ?",
        order.replace("id DESC", "m.id DESC")
    ));
    page.params.push(Sql::Int(q.limit as i64));
    page.params.push(Sql::Int(q.offset() as i64));
    let mut out = Vec::with_capacity(q.limit as usize);
    let mut matched = Vec::with_capacity(plan.scores.len());
    for row in rows(c, &page).await? {
        let did: String = row.get(0);
        let doc = raw(row.get(1))?;
        let mut col = 2;
        matched.clear();
        for _ in &plan.scores {
            matched.push(row.get::<_, Option<i64>>(col).unwrap_or(0));
            col += 1;
        }
        let mc = plan.match_count.as_ref().map(|_| {
            col += 1;
            row.get::<_, Option<i64>>(col - 1).unwrap_or(0)
        });
        let fs = plan.field_score.as_ref().map(|_| row.get::<_, Option<f64>>(col).unwrap_or(0.0));
        out.push(Row { did, doc, scores: Scores { pairs: plan.score_fields(&matched, mc, fs) } });
    }
    Ok(Page { total: total as u64, rows: out })
}

async fn tag_summary(c: &Conn, q: &RecordQuery, viewer: &Viewer, count: u32, page: u32) -> Result<(Vec<(String, u64)>, u64), StoreError> {
    let plan = plan_for(c, q, viewer).await?;
    let (cte, _) = matches(&plan, viewer);
    let mut distinct = cte.clone();
    distinct.sql.push_str(" SELECT COUNT(DISTINCT t.tag) FROM record_tags t JOIN m ON m.id = t.record_id");
    let n: i64 = one(c, &distinct).await?.map_or(0, |r| r.get(0));
    let mut top = cte;
    top.sql.push_str(" SELECT t.tag, COUNT(*) AS c FROM record_tags t JOIN m ON m.id = t.record_id GROUP BY t.tag ORDER BY c DESC, t.tag LIMIT ? OFFSET ?");
    top.params.push(Sql::Int(count as i64));
    top.params.push(Sql::Int((page.max(1) as i64 - 1) * count as i64));
    let tags = rows(c, &top).await?.into_iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64)).collect();
    Ok((tags, n as u64))
}

/// Send the visible records among `dids` into `sink` as the server sends them.
async fn fetch_visible(c: &Conn, dids: &[String], viewer: &Viewer, sink: &FetchSink) -> Result<(), StoreError> {
    for chunk in dids.chunks(FETCH_CHUNK) {
        let mut f = Frag::new(
            format!("SELECT r.did, rd.doc FROM records r JOIN record_docs rd ON rd.id = r.id WHERE r.did IN ({}) AND ", vec!["?"; chunk.len()].join(",")),
            chunk.iter().map(|d| text(d)).collect(),
        );
        f.push(visible("r", viewer));
        let (sql, params) = f.finish();
        let stream = c.query_raw(sql.as_str(), params).await.map_err(pg_error)?;
        pin_mut!(stream);
        while let Some(r) = stream.next().await {
            let r = r.map_err(pg_error)?;
            if sink.send((r.get(0), raw(r.get(1))?)).await.is_err() {
                return Ok(()); // the consumer gave up (e.g. over its bound)
            }
        }
    }
    Ok(())
}

async fn stats(c: &Conn, viewer: &Viewer) -> Result<Stats, StoreError> {
    let mut f = Frag::new("SELECT (SELECT COUNT(*) FROM records WHERE public)", vec![]);
    if let Some(k) = &viewer.key {
        f.push(Frag::new(" + (SELECT COUNT(*) FROM records WHERE NOT public AND (owner = ? OR creator_pubkey = ?))", vec![text(k), text(k)]));
    }
    f.sql.push_str(", (SELECT MAX(in_block) FROM records WHERE status IS NULL OR status NOT LIKE 'pending%')");
    let r = one(c, &f).await?.ok_or_else(|| StoreError::Backend("stats: no row".into()))?;
    Ok(Stats { total_records: r.get::<_, i64>(0) as u64, latest_block: r.get(1) })
}

async fn record_types(c: &Conn, viewer: &Viewer) -> Result<Vec<(String, u64)>, StoreError> {
    let mut f = Frag::new("SELECT r.record_type, COUNT(*) AS n FROM records r WHERE r.record_type IS NOT NULL AND ", vec![]);
    f.push(visible("r", viewer));
    f.sql.push_str(" GROUP BY r.record_type ORDER BY n DESC, r.record_type");
    Ok(rows(c, &f).await?.into_iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64)).collect())
}

async fn templates(c: &Conn, f: &TemplateFilter) -> Result<(u64, Vec<Box<RawValue>>), StoreError> {
    let mut conds = vec![Frag::new("true", vec![])];
    if let Some(a) = &f.creator_did_address {
        conds.push(Frag::new("creator_address = ?", vec![text(a)]));
    }
    if let Some(d) = &f.did_tx {
        conds.push(Frag::new("did = ?", vec![text(d)]));
    }
    if let Some(n) = &f.name_contains {
        conds.push(Frag::new("strpos(lower(name), ?) > 0", vec![text(&n.to_lowercase())]));
    }
    let w = Frag::join(conds, " AND ");
    let mut count = Frag::new("SELECT COUNT(*) FROM templates WHERE ", vec![]);
    count.push(w.clone());
    let total: i64 = one(c, &count).await?.map_or(0, |r| r.get(0));
    let dir = if f.ascending { "ASC" } else { "DESC" };
    let mut page = Frag::new("SELECT doc FROM templates WHERE ", vec![]);
    page.push(w);
    page.push(Frag::new(
        format!(" ORDER BY in_block {dir} NULLS LAST, did LIMIT ? OFFSET ?"),
        vec![Sql::Int(f.limit as i64), Sql::Int(f.offset.min(i64::MAX as u64) as i64)],
    ));
    let docs = rows(c, &page).await?.into_iter().map(|r| raw(r.get(0))).collect::<Result<Vec<_>, _>>()?;
    Ok((total as u64, docs))
}

const UPSERT_RECORD: &str = "WITH up AS (
    INSERT INTO records (did, did_tx, record_type, record_type_lc, storage, creator_handle, creator_address,
        creator_pubkey, in_block, indexed_at, status, ver, date, sched_date, filter_date, name, description,
        access_level, owner, private_session, public, hidden, fts)
    VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,
        setweight(to_tsvector('simple', coalesce($16, '')), 'A') || setweight(to_tsvector('simple', coalesce($17, '')), 'B')
        || setweight(to_tsvector('simple', array_to_string($24::text[], ' ')), 'C'))
    ON CONFLICT (did) DO UPDATE SET did_tx=excluded.did_tx, record_type=excluded.record_type, record_type_lc=excluded.record_type_lc,
        storage=excluded.storage, creator_handle=excluded.creator_handle, creator_address=excluded.creator_address,
        creator_pubkey=excluded.creator_pubkey, in_block=excluded.in_block, indexed_at=excluded.indexed_at, status=excluded.status,
        ver=excluded.ver, date=excluded.date, sched_date=excluded.sched_date, filter_date=excluded.filter_date, name=excluded.name,
        description=excluded.description, access_level=excluded.access_level, owner=excluded.owner,
        private_session=excluded.private_session, public=excluded.public, hidden=excluded.hidden, fts=excluded.fts
    RETURNING id),
  d AS (INSERT INTO record_docs (id, doc) SELECT id, $23 FROM up ON CONFLICT (id) DO UPDATE SET doc = excluded.doc),
  dt AS (DELETE FROM record_tags WHERE record_id IN (SELECT id FROM up) AND tag <> ALL($24::text[])),
  it AS (INSERT INTO record_tags (record_id, tag) SELECT DISTINCT up.id, t FROM up, unnest($24::text[]) t ON CONFLICT DO NOTHING)
SELECT id FROM up";

/// Upsert records by DID inside the caller's transaction.
pub(super) async fn upsert_records_in(tx: &deadpool_postgres::Transaction<'_>, records: &[IndexedRecord]) -> Result<Vec<Upserted>, StoreError> {
    let dids: Vec<&str> = records.iter().map(|r| r.did.as_str()).collect();
    let find = tx.prepare_cached("SELECT r.did, d.doc FROM records r JOIN record_docs d ON d.id = r.id WHERE r.did = ANY($1::text[])").await.map_err(pg_error)?;
    let mut existing: std::collections::HashMap<String, String> =
        tx.query(&find, &[&dids]).await.map_err(pg_error)?.into_iter().map(|r| (r.get(0), r.get(1))).collect();
    let up = tx.prepare_cached(UPSERT_RECORD).await.map_err(pg_error)?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let doc = jsonb_safe(&r.doc);
        let before = existing.get(&r.did);
        if before.map(String::as_str) == Some(&*doc) {
            out.push(Upserted::Unchanged);
            continue;
        }
        let tags: Vec<String> = r.tags.iter().map(|t| t.replace('\0', "")).collect();
        tx.query(
            &up,
            &[
                &r.did.replace('\0', ""),
                &clean(&r.did_tx),
                &clean(&r.record_type),
                &clean(&r.record_type.as_ref().map(|t| t.to_lowercase())),
                &clean(&r.storage),
                &clean(&r.creator_handle),
                &clean(&r.creator_address),
                &clean(&r.creator_pubkey),
                &r.in_block,
                &clean(&r.indexed_at),
                &clean(&r.status),
                &clean(&r.ver),
                &r.date,
                &r.sched_date,
                &r.filter_date,
                &clean(&r.name),
                &clean(&r.description),
                &clean(&r.access_level),
                &clean(&r.owner),
                &r.private_session,
                &r.is_public(),
                &r.is_delete_message(),
                &&*doc,
                &tags,
            ],
        )
        .await
        .map_err(pg_error)?;
        out.push(if before.is_some() { Upserted::Updated } else { Upserted::Inserted });
        existing.insert(r.did.clone(), doc.into_owned());
    }
    Ok(out)
}

/// Upsert templates by DID inside the caller's transaction.
pub(super) async fn upsert_templates_in(tx: &deadpool_postgres::Transaction<'_>, templates: &[IndexedTemplate]) -> Result<Vec<Upserted>, StoreError> {
    let find = tx.prepare_cached("SELECT doc FROM templates WHERE did = $1").await.map_err(pg_error)?;
    let up = tx
        .prepare_cached(
            "INSERT INTO templates (did, name, in_block, creator_address, doc) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (did) DO UPDATE SET name=excluded.name, in_block=excluded.in_block, creator_address=excluded.creator_address, doc=excluded.doc",
        )
        .await
        .map_err(pg_error)?;
    let mut out = Vec::with_capacity(templates.len());
    for t in templates {
        let existing: Option<String> = tx.query_opt(&find, &[&t.did]).await.map_err(pg_error)?.map(|r| r.get(0));
        let doc = jsonb_safe(&t.doc);
        if existing.as_deref() == Some(&*doc) {
            out.push(Upserted::Unchanged);
            continue;
        }
        tx.execute(&up, &[&t.did, &clean(&t.name), &t.in_block, &clean(&t.creator_address), &&*doc]).await.map_err(pg_error)?;
        out.push(if existing.is_some() { Upserted::Updated } else { Upserted::Inserted });
    }
    Ok(out)
}

/// Delete a record (document and tags cascade); true if it existed.
pub(super) async fn delete_in(tx: &deadpool_postgres::Transaction<'_>, did: &str) -> Result<bool, StoreError> {
    let st = tx.prepare_cached("DELETE FROM records WHERE did = $1").await.map_err(pg_error)?;
    Ok(tx.execute(&st, &[&did]).await.map_err(pg_error)? > 0)
}

#[async_trait]
impl RecordStore for PgStore {
    async fn upsert(&self, records: Vec<IndexedRecord>) -> Result<Vec<Upserted>, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let out = upsert_records_in(&tx, &records).await?;
        tx.commit().await.map_err(pg_error)?;
        c.done();
        Ok(out)
    }

    async fn upsert_templates(&self, templates: Vec<IndexedTemplate>) -> Result<Vec<Upserted>, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let out = upsert_templates_in(&tx, &templates).await?;
        tx.commit().await.map_err(pg_error)?;
        c.done();
        Ok(out)
    }

    async fn search(&self, q: &RecordQuery, viewer: &Viewer) -> Result<Page, StoreError> {
        let c = self.conn().await?;
        let out = search(&c, q, viewer).await?;
        c.done();
        Ok(out)
    }

    async fn tag_summary(&self, q: &RecordQuery, viewer: &Viewer, count: u32, page: u32) -> Result<(Vec<(String, u64)>, u64), StoreError> {
        let c = self.conn().await?;
        let out = tag_summary(&c, q, viewer, count, page).await?;
        c.done();
        Ok(out)
    }

    async fn fetch_visible(&self, dids: Vec<String>, viewer: &Viewer, sink: FetchSink) -> Result<(), StoreError> {
        let c = self.conn().await?;
        fetch_visible(&c, &dids, viewer, &sink).await?;
        c.done();
        Ok(())
    }

    async fn stats(&self, viewer: &Viewer) -> Result<Stats, StoreError> {
        let c = self.conn().await?;
        let out = stats(&c, viewer).await?;
        c.done();
        Ok(out)
    }

    async fn record_types(&self, viewer: &Viewer) -> Result<Vec<(String, u64)>, StoreError> {
        let c = self.conn().await?;
        let out = record_types(&c, viewer).await?;
        c.done();
        Ok(out)
    }

    async fn templates(&self, f: &TemplateFilter) -> Result<(u64, Vec<Box<RawValue>>), StoreError> {
        let c = self.conn().await?;
        let out = templates(&c, f).await?;
        c.done();
        Ok(out)
    }

    async fn delete(&self, did: &str) -> Result<bool, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let existed = delete_in(&tx, did).await?;
        tx.commit().await.map_err(pg_error)?;
        c.done();
        Ok(existed)
    }

    async fn count_all(&self) -> Result<u64, StoreError> {
        let c = self.conn().await?;
        let n: i64 = c.query_one("SELECT COUNT(*) FROM records", &[]).await.map_err(pg_error)?.get(0);
        c.done();
        Ok(n as u64)
    }

    async fn after_bulk_load(&self) -> Result<(), StoreError> {
        let c = self.conn().await?;
        // One statement each (VACUUM cannot run in the implicit transaction of a
        // multi-statement string). VACUUM sets the visibility map index-only counts
        // use; autovacuum does it later anyway, so it may fail (the query budget).
        for t in ["records", "record_tags", "record_docs"] {
            if let Err(e) = c.batch_execute(&format!("VACUUM {t}")).await {
                tracing::warn!(table = t, error = %e, "VACUUM after a bulk load");
            }
            c.batch_execute(&format!("ANALYZE {t}")).await.map_err(pg_error)?;
        }
        c.done();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::jsonb_safe;

    #[test]
    fn nul_characters_never_reach_jsonb() {
        let plain = r#"{"a":"b\\u0000"}"#; // an escaped backslash, then text: no NUL
        assert_eq!(jsonb_safe(plain), plain);
        assert_eq!(jsonb_safe(r#"{"a":"x"}"#), r#"{"a":"x"}"#);
        let nul = serde_json::json!({"k\u{0}": ["a\u{0}b", {"c": "\u{0}"}]}).to_string();
        assert!(nul.contains("\\u0000"));
        let safe = jsonb_safe(&nul).into_owned();
        assert!(!safe.contains("\\u0000"), "{safe}");
        assert_eq!(safe, serde_json::json!({"k\u{FFFD}": ["a\u{FFFD}b", {"c": "\u{FFFD}"}]}).to_string());
    }
}
