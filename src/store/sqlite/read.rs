//! Reads, as plain blocking functions over one reader connection: result pages
//! with real totals, tag summaries, reference fetches streamed into a bounded
//! channel, counts, record types and templates.

use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde_json::value::RawValue;

use super::conn::FETCH_CHUNK;
use super::sql::{backend, text, Frag};
use super::translate::{matches, visible};
use crate::oip::plan::{self, EquipmentItem, Plan};
use crate::oip::query::RecordQuery;
use crate::store::{FetchSink, Page, Row, Scores, Stats, StoreError, TemplateFilter, Viewer};

/// The plan for `q`, after looking up the names of equipment records named by DID.
fn plan_for(conn: &Connection, q: &RecordQuery, viewer: &Viewer) -> Result<Plan, StoreError> {
    let mut names = Vec::new();
    for item in plan::equipment_items(q) {
        match item {
            EquipmentItem::Name(n) => names.push(n.to_owned()),
            EquipmentItem::Did(did) => {
                let mut sql = Frag::new(
                    "SELECT lower(r.name) FROM records r WHERE r.did = ? AND ",
                    vec![text(did)],
                );
                sql.push(visible("r", viewer));
                let name: Option<Option<String>> = conn
                    .query_row(&sql.sql, params_from_iter(sql.params), |r| r.get(0))
                    .optional()
                    .map_err(backend)?;
                if let Some(Some(n)) = name {
                    names.push(n);
                }
            }
        }
    }
    Ok(plan::plan(q, &names))
}

pub fn search(conn: &Connection, q: &RecordQuery, viewer: &Viewer) -> Result<Page, StoreError> {
    let plan = plan_for(conn, q, viewer)?;
    let (cte, order) = matches(&plan, viewer);

    let mut count = cte.clone();
    count.sql.push_str(" SELECT COUNT(*) FROM m");
    let started = std::time::Instant::now();
    let total: i64 = conn
        .prepare_cached(&count.sql)
        .and_then(|mut s| s.query_row(params_from_iter(count.params), |r| r.get(0)))
        .map_err(backend)?;
    tracing::trace!(sql = %count.sql, ms = started.elapsed().as_secs_f64() * 1e3, "count");

    let mut page = cte;
    let mut cols = String::from("m.did, rec.doc");
    for i in 0..plan.scores.len() {
        cols.push_str(&format!(", m.c{i}"));
    }
    if plan.match_count.is_some() {
        cols.push_str(", m.mc");
    }
    if plan.field_score.is_some() {
        cols.push_str(", m.fs");
    }
    page.sql.push_str(&format!(
        " SELECT {cols} FROM m JOIN record_docs rec ON rec.id = m.id ORDER BY {} LIMIT ? OFFSET ?",
        order.replace("id DESC", "m.id DESC").replace("s_", "m.s_")
    ));
    page.params.push(Sql::Integer(q.limit as i64));
    page.params.push(Sql::Integer(q.offset() as i64));
    tracing::trace!(sql = %page.sql, "page");
    let mut stmt = conn.prepare_cached(&page.sql).map_err(backend)?;
    let mut rows = stmt.query(params_from_iter(page.params)).map_err(backend)?;
    let mut out = Vec::with_capacity(q.limit as usize);
    let mut matched = Vec::with_capacity(plan.scores.len());
    while let Some(row) = rows.next().map_err(backend)? {
        let did: String = row.get(0).map_err(backend)?;
        let doc: String = row.get(1).map_err(backend)?;
        let doc = RawValue::from_string(doc).map_err(backend)?;
        let mut col = 2;
        matched.clear();
        for _ in &plan.scores {
            matched.push(row.get::<_, i64>(col).map_err(backend)?);
            col += 1;
        }
        let mc = match plan.match_count {
            Some(_) => {
                col += 1;
                Some(row.get::<_, i64>(col - 1).map_err(backend)?)
            }
            None => None,
        };
        let fs = match plan.field_score {
            Some(_) => Some(row.get::<_, f64>(col).map_err(backend)?),
            None => None,
        };
        out.push(Row {
            did,
            doc,
            scores: Scores {
                pairs: plan.score_fields(&matched, mc, fs),
            },
        });
    }
    Ok(Page {
        total: total as u64,
        rows: out,
    })
}

pub fn tag_summary(
    conn: &Connection,
    q: &RecordQuery,
    viewer: &Viewer,
    count: u32,
    page: u32,
) -> Result<(Vec<(String, u64)>, u64), StoreError> {
    let plan = plan_for(conn, q, viewer)?;
    let (cte, _) = matches(&plan, viewer);
    let mut distinct = cte.clone();
    distinct
        .sql
        .push_str(" SELECT COUNT(DISTINCT t.tag) FROM record_tags t JOIN m ON m.id = t.record_id");
    let n: i64 = conn
        .prepare_cached(&distinct.sql)
        .and_then(|mut s| s.query_row(params_from_iter(distinct.params), |r| r.get(0)))
        .map_err(backend)?;
    let mut top = cte;
    top.sql.push_str(
        " SELECT t.tag, COUNT(*) AS c FROM record_tags t JOIN m ON m.id = t.record_id GROUP BY t.tag ORDER BY c DESC, t.tag LIMIT ? OFFSET ?",
    );
    top.params.push(Sql::Integer(count as i64));
    top.params
        .push(Sql::Integer((page as i64 - 1) * count as i64));
    let mut stmt = conn.prepare_cached(&top.sql).map_err(backend)?;
    let tags = stmt
        .query_map(params_from_iter(top.params), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok((tags, n as u64))
}

/// Send the visible records among `dids` into `sink`, [`FETCH_CHUNK`] ids per statement.
pub fn fetch_visible(
    c: &Connection,
    dids: &[String],
    viewer: &Viewer,
    sink: &FetchSink,
) -> Result<(), StoreError> {
    for chunk in dids.chunks(FETCH_CHUNK) {
        let ph = vec!["?"; chunk.len()].join(",");
        let mut sql = Frag::new(
            format!("SELECT r.did, rd.doc FROM records r JOIN record_docs rd ON rd.id = r.id WHERE r.did IN ({ph}) AND "),
            chunk.iter().map(|d| text(d)).collect(),
        );
        sql.push(visible("r", viewer));
        let mut stmt = c.prepare(&sql.sql).map_err(backend)?;
        let mut rows = stmt.query(params_from_iter(sql.params)).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let did: String = row.get(0).map_err(backend)?;
            let doc = RawValue::from_string(row.get(1).map_err(backend)?).map_err(backend)?;
            if sink.blocking_send((did, doc)).is_err() {
                return Ok(()); // the consumer gave up (e.g. over its bound)
            }
        }
    }
    Ok(())
}

pub fn stats(c: &Connection, viewer: &Viewer) -> Result<Stats, StoreError> {
    // Two index-only counts: everything public, plus the viewer's own non-public.
    let mut total: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM records WHERE hidden IN (0, 1) AND public = 1",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if let Some(k) = &viewer.key {
        total += c
            .query_row("SELECT COUNT(*) FROM records WHERE public = 0 AND (owner = ?1 OR creator_pubkey = ?1)", [k], |r| r.get::<_, i64>(0))
            .map_err(backend)?;
    }
    let latest: Option<i64> = c
        .query_row(
            "SELECT MAX(in_block) FROM records WHERE status IS NULL OR status NOT LIKE 'pending%'",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    Ok(Stats {
        total_records: total as u64,
        latest_block: latest,
    })
}

pub fn record_types(c: &Connection, viewer: &Viewer) -> Result<Vec<(String, u64)>, StoreError> {
    let vis = visible("r", viewer);
    let mut stmt = c
        .prepare(&format!(
            "SELECT r.record_type, COUNT(*) AS n FROM records r WHERE r.record_type IS NOT NULL AND {} GROUP BY r.record_type ORDER BY n DESC, r.record_type",
            vis.sql
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(params_from_iter(vis.params), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok(rows)
}

pub fn templates(
    c: &Connection,
    f: &TemplateFilter,
) -> Result<(u64, Vec<Box<RawValue>>), StoreError> {
    let mut conds = vec![Frag::new("1", vec![])];
    if let Some(a) = &f.creator_did_address {
        conds.push(Frag::new("creator_address = ?", vec![text(a)]));
    }
    if let Some(d) = &f.did_tx {
        conds.push(Frag::new("did = ?", vec![text(d)]));
    }
    if let Some(n) = &f.name_contains {
        conds.push(Frag::new(
            "instr(lower(name), ?) > 0",
            vec![text(&n.to_lowercase())],
        ));
    }
    let w = Frag::join(conds, " AND ");
    let total: i64 = c
        .query_row(
            &format!("SELECT COUNT(*) FROM templates WHERE {}", w.sql),
            params_from_iter(w.params.clone()),
            |r| r.get(0),
        )
        .map_err(backend)?;
    let dir = if f.ascending { "ASC" } else { "DESC" };
    let mut params = w.params;
    params.push(Sql::Integer(f.limit as i64));
    params.push(Sql::Integer(f.offset as i64));
    let mut stmt = c
        .prepare(&format!("SELECT doc FROM templates WHERE {} ORDER BY in_block IS NULL, in_block {dir}, did LIMIT ? OFFSET ?", w.sql))
        .map_err(backend)?;
    let docs = stmt
        .query_map(params_from_iter(params), |r| r.get::<_, String>(0))
        .map_err(backend)?
        .map(|d| {
            d.map_err(backend)
                .and_then(|d| RawValue::from_string(d).map_err(backend))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((total as u64, docs))
}

pub fn count_all(c: &Connection) -> Result<u64, StoreError> {
    c.query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(backend)
}
