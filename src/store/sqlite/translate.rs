//! The domain's [`Plan`] as SQLite SQL: each [`Cond`] becomes a boolean
//! expression over the narrow `records` table `r` (and the document `rd.doc`, joined
//! only when an expression reads it), scores become counted columns, the sort key
//! an `ORDER BY`. No OIP rule is decided here.
//!
//! The result is a `WITH m0 AS (…), m AS (…)` prefix: the matches with id, did,
//! name, the sort columns (`s_*`), score columns (`c<i>`, `mc`, `fs`) and the FTS
//! rank, de-duplicated by name when asked; callers append their `SELECT … FROM m`.

use rusqlite::types::Value as Sql;

use super::sql::{text, Frag};
use crate::oip::plan::{Column, Cond, DocPath, Plan, SortKey, ValueMatch, GRADES, SEARCH_WEIGHTS};
use crate::oip::query::{Dir, MatchMode, Scalar};
use crate::store::Viewer;

/// The privacy rule (see the module docs of `store`) for table alias `a`; the
/// `public` flag is computed at write time by `IndexedRecord::is_public`.
pub fn visible(a: &str, viewer: &Viewer) -> Frag {
    match &viewer.key {
        None => Frag::new(format!("{a}.public = 1"), vec![]),
        Some(k) => Frag::new(
            format!("({a}.public = 1 OR {a}.owner = ? OR {a}.creator_pubkey = ?)"),
            vec![text(k), text(k)],
        ),
    }
}

fn column(c: Column) -> &'static str {
    match c {
        Column::Did => "r.did",
        Column::DidTx => "r.did_tx",
        Column::Storage => "r.storage",
        Column::RecordTypeLc => "r.record_type_lc",
        Column::RecordType => "r.record_type",
        Column::CreatorHandle => "r.creator_handle",
        Column::CreatorAddress => "r.creator_address",
        Column::InBlock => "r.in_block",
        Column::IndexedAt => "r.indexed_at",
        Column::Date => "r.date",
        Column::Ver => "r.ver",
        Column::Name => "r.name",
        Column::FilterDate => "r.filter_date",
        Column::SchedDate => "r.sched_date",
    }
}

/// `$."a"."b"`: segments are validated (`[A-Za-z0-9_-]+`), so embedding is safe.
fn json_path(p: &DocPath) -> String {
    let mut out = String::from("$");
    for seg in p.segments() {
        out.push_str(".\"");
        out.push_str(seg);
        out.push('"');
    }
    out
}

fn scalar(v: &Scalar) -> (&'static str, Vec<Sql>) {
    match v {
        Scalar::Bool(b) => (
            if *b {
                "e.type = 'true'"
            } else {
                "e.type = 'false'"
            },
            vec![],
        ),
        Scalar::Int(i) => ("e.value = ?", vec![Sql::Integer(*i)]),
        Scalar::Float(f) => ("e.value = ?", vec![Sql::Real(*f)]),
        Scalar::Str(s) => ("e.value = ?", vec![text(s)]),
    }
}

/// `(c1 OP c2 …)`.
fn joined(conds: &[Cond], op: &str, viewer: &Viewer) -> Frag {
    Frag::join(conds.iter().map(|c| cond(c, viewer)).collect(), op).wrap()
}

/// One condition as a boolean SQL expression.
pub fn cond(c: &Cond, viewer: &Viewer) -> Frag {
    match c {
        Cond::Visible => visible("r", viewer),
        Cond::NotHidden => Frag::new("r.hidden = 0", vec![]),
        Cond::Eq(col, v) => Frag::new(format!("{} = ?", column(*col)), vec![text(v)]),
        Cond::EqInt(col, v) => Frag::new(format!("{} = ?", column(*col)), vec![Sql::Integer(*v)]),
        Cond::IsNull(col) => Frag::new(format!("{} IS NULL", column(*col)), vec![]),
        Cond::AtLeast(col, v) => Frag::new(format!("{} >= ?", column(*col)), vec![Sql::Integer(*v)]),
        Cond::AtMost(col, v) => Frag::new(format!("{} <= ?", column(*col)), vec![Sql::Integer(*v)]),
        Cond::Below(col, v) => Frag::new(format!("{} < ?", column(*col)), vec![Sql::Integer(*v)]),
        Cond::Equals { path, value } => {
            Frag::new(format!("json_extract(rd.doc, '{}') = ?", json_path(path)), vec![text(value)])
        }
        Cond::At { path, m } => {
            let (expr, params) = match m {
                ValueMatch::Eq(v) => scalar(v),
                ValueMatch::EqNoCase(s) => ("lower(e.value) = ?", vec![text(s)]),
                ValueMatch::Contains(s) => ("instr(lower(e.value), ?) > 0", vec![text(s)]),
            };
            Frag::new(format!("EXISTS (SELECT 1 FROM json_each(rd.doc, '{}') e WHERE {expr})", json_path(path)), params)
        }
        Cond::AnyStringStartsWith { under, prefix } => Frag::new(
            format!("EXISTS (SELECT 1 FROM json_tree(rd.doc, '{}') t WHERE t.type = 'text' AND substr(t.value, 1, ?) = ?)", json_path(under)),
            vec![Sql::Integer(prefix.chars().count() as i64), text(prefix)],
        ),
        Cond::KeyContains { under, needle } => Frag::new(
            format!("EXISTS (SELECT 1 FROM json_each(rd.doc, '{}') t WHERE instr(lower(t.key), ?) > 0)", json_path(under)),
            vec![text(needle)],
        ),
        Cond::RefNameContains { path, needle } => {
            let mut f = Frag::new(
                format!("EXISTS (SELECT 1 FROM json_each(rd.doc, '{}') e LEFT JOIN records x ON x.did = e.value AND ", json_path(path)),
                vec![],
            );
            f.push(visible("x", viewer));
            f.push(Frag::new(
                " WHERE instr(lower(CASE WHEN x.id IS NOT NULL THEN coalesce(x.name, '') WHEN e.value LIKE 'did:%' THEN '' ELSE e.value END), ?) > 0)",
                vec![text(needle)],
            ));
            f
        }
        Cond::NoneAt(path) => {
            let p = json_path(path);
            Frag::new(
                format!("(json_type(rd.doc, '{p}') IS NULL OR json_array_length(rd.doc, '{p}') = 0 AND json_type(rd.doc, '{p}') = 'array')"),
                vec![],
            )
        }
        Cond::NonEmptyArray(path) => {
            Frag::new(format!("coalesce(json_array_length(rd.doc, '{}'), 0) > 0", json_path(path)), vec![])
        }
        Cond::HasTag(t) => Frag::new("EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND t.tag = ?)", vec![text(t)]),
        Cond::HasAnyTag(tags) => Frag::new(
            format!("EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND t.tag IN ({}))", vec!["?"; tags.len()].join(",")),
            tags.iter().map(|t| text(t)).collect(),
        ),
        Cond::TextContains(t) => Frag::new(
            "(instr(lower(coalesce(r.name, '')), ?) > 0 OR instr(lower(coalesce(r.description, '')), ?) > 0 OR EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND instr(lower(t.tag), ?) > 0))",
            vec![text(t), text(t), text(t)],
        ),
        Cond::Any(cs) if cs.is_empty() => Frag::new("0", vec![]),
        Cond::All(cs) if cs.is_empty() => Frag::new("1", vec![]),
        Cond::Any(cs) => joined(cs, " OR ", viewer),
        Cond::All(cs) => joined(cs, " AND ", viewer),
        Cond::Not(c) => {
            let mut f = Frag::new("NOT ", vec![]);
            f.push(cond(c, viewer).wrap());
            f
        }
        Cond::Never => Frag::new("0", vec![]),
    }
}

/// `(b1 + b2 + …)`: how many conditions hold.
fn count(conds: &[Cond], viewer: &Viewer) -> Frag {
    Frag::join(
        conds.iter().map(|c| cond(c, viewer).wrap()).collect(),
        " + ",
    )
    .wrap()
}

/// The graded field-search sum: per path the best grade of any value.
fn graded_sum(plan: &Plan) -> Option<Frag> {
    let g = plan.field_score.as_ref()?;
    let [exact, prefix, suffix, contains] = GRADES;
    let parts = g
        .iter()
        .map(|g| {
            Frag::new(
                format!(
                    "coalesce((SELECT MAX(CASE WHEN lower(e.value) = ? THEN {exact} WHEN substr(lower(e.value), 1, length(?)) = ? THEN {prefix} \
                     WHEN substr(lower(e.value), -length(?)) = ? THEN {suffix} WHEN instr(lower(e.value), ?) > 0 THEN {contains} ELSE 0 END) \
                     FROM json_each(rd.doc, '{}') e), 0)",
                    json_path(&g.path)
                ),
                vec![text(&g.value); 6],
            )
        })
        .collect();
    Some(Frag::join(parts, " + ").wrap())
}

/// The `WITH` prefix (see the module docs) and the `ORDER BY` over its columns.
pub fn matches(plan: &Plan, viewer: &Viewer) -> (Frag, String) {
    let mut from = Frag::new("records r", vec![]);
    if let Some(s) = &plan.search {
        let quoted: Vec<String> = s
            .terms
            .iter()
            .map(|t| format!("\"{}\"*", t.replace('"', "\"\"")))
            .collect();
        let expr = quoted.join(if s.mode == MatchMode::And {
            " AND "
        } else {
            " OR "
        });
        let [wn, wd, wt] = SEARCH_WEIGHTS;
        from = Frag::new(
            format!("(SELECT rowid AS fid, bm25(records_fts, {wn:?}, {wd:?}, {wt:?}) AS rank FROM records_fts WHERE records_fts MATCH ?) f CROSS JOIN records r ON r.id = f.fid"),
            vec![text(&expr)],
        );
    }
    let filter = Frag::join(
        plan.filter.iter().map(|c| cond(c, viewer)).collect(),
        " AND ",
    );
    let scored: Vec<Frag> = plan
        .scores
        .iter()
        .map(|s| match &s.full_when {
            Some(full) => {
                let mut m = Frag::new("(CASE WHEN ", vec![]);
                m.push(cond(full, viewer));
                m.push(Frag::new(format!(" THEN {} ELSE ", s.n), vec![]));
                m.push(count(&s.items, viewer));
                m.push(Frag::new(" END)", vec![]));
                m
            }
            None => count(&s.items, viewer),
        })
        .collect();
    let match_count = plan.match_count.as_ref().map(|terms| count(terms, viewer));
    let field_sum = graded_sum(plan);

    let mut inner = Frag::new(
        "SELECT r.id, r.did, r.name, r.in_block AS s_block, r.indexed_at AS s_indexed, r.date AS s_date, \
         r.record_type AS s_type, r.creator_handle AS s_handle, r.ver AS s_ver, r.sched_date AS s_sched, r.name AS s_name",
        vec![],
    );
    let by_rank = plan.sort == SortKey::Relevance;
    if by_rank {
        inner.sql.push_str(", f.rank AS rank_");
    }
    if let SortKey::Doc(path) = &plan.sort {
        inner.sql.push_str(&format!(", json_extract(rd.doc, '{}') AS s_doc", json_path(path)));
    }
    for (i, s) in scored.into_iter().enumerate() {
        inner.sql.push_str(", ");
        inner.push(s);
        inner.sql.push_str(&format!(" AS c{i}"));
    }
    if let Some(mc) = match_count {
        inner.sql.push_str(", ");
        inner.push(mc);
        inner.sql.push_str(" AS mc");
    }
    if let Some(fs) = field_sum {
        inner.sql.push_str(", ");
        inner.push(fs);
        inner.sql.push_str(" AS fs");
    }
    // Join the documents only when an expression reads them.
    let needs_doc = inner.sql.contains("rd.doc") || filter.sql.contains("rd.doc");
    if needs_doc {
        from.sql.push_str(" JOIN record_docs rd ON rd.id = r.id");
    }
    inner.sql.push_str(" FROM ");
    inner.push(from);
    inner.sql.push_str(" WHERE ");
    inner.push(filter);

    let key = match &plan.sort {
        SortKey::Relevance => "rank_".to_owned(),
        SortKey::Doc(_) => "s_doc".to_owned(),
        SortKey::Column(c) => match c {
            Column::InBlock => "s_block",
            Column::IndexedAt => "s_indexed",
            Column::Date => "s_date",
            Column::RecordType => "s_type",
            Column::CreatorHandle => "s_handle",
            Column::Ver => "s_ver",
            Column::SchedDate => "s_sched",
            Column::Name => "s_name",
            // not sort keys of the domain; sorted as missing
            _ => "NULL",
        }
        .to_owned(),
        SortKey::Score(i) => format!("(c{i} * 1.0 / {})", plan.scores[*i].n),
        SortKey::MatchCount => "mc".into(),
        SortKey::FieldScore => format!(
            "(fs * 1.0 / {})",
            plan.field_score.as_ref().map_or(1, Vec::len)
        ),
        SortKey::Missing => "NULL".into(),
    };
    // Missing values sort last either way (as Elasticsearch did); ties by newest
    // row. SQLite orders NULLs first, so DESC needs nothing and can walk an index.
    let order = if plan.dir == Dir::Asc {
        format!("{key} IS NULL, {key} ASC, id DESC")
    } else {
        format!("{key} DESC, id DESC")
    };
    let mut cte = Frag::new("WITH m0 AS (", vec![]);
    cte.push(inner);
    cte.sql.push(')');
    if plan.dedup_by_name {
        cte.sql.push_str(&format!(
            ", m AS (SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY coalesce(name, did) ORDER BY {order}) AS rn FROM m0) WHERE rn = 1)"
        ));
    } else {
        cte.sql.push_str(", m AS (SELECT * FROM m0)");
    }
    (cte, order)
}

#[cfg(test)]
mod tests {
    use rusqlite::{params_from_iter, Connection};

    use super::*;
    use crate::oip::plan::{Graded, Score, TextSearch};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut c).unwrap();
        c.execute_batch(
            r#"INSERT INTO records (id, did, record_type, record_type_lc, name, in_block, public, hidden, owner)
               VALUES (1, 'did:a', 'exercise', 'exercise', 'Squat', 10, 1, 0, NULL),
                      (2, 'did:b', 'exercise', 'exercise', 'Secret', 11, 0, 0, 'alice');
               INSERT INTO record_docs (id, doc) VALUES
                 (1, '{"data":{"exercise":{"equipmentRequired":["mat"],"exercise_type":"warmup"},"basic":{"url":"u"}}}'),
                 (2, '{"data":{"exercise":{"equipmentRequired":[]}}}');
               INSERT INTO record_tags (record_id, tag) VALUES (1, 'legs');
               INSERT INTO records_fts (rowid, name, description, tags) VALUES (1, 'Squat', '', 'legs'), (2, 'Secret', '', '');"#,
        )
        .unwrap();
        c
    }

    /// How many records `plan` matches for `viewer`; its ORDER BY is run too.
    fn count(c: &Connection, plan: &Plan, viewer: &Viewer) -> i64 {
        let (cte, order) = matches(plan, viewer);
        let mut sorted = cte.clone();
        sorted.sql.push_str(&format!(" SELECT m.did FROM m ORDER BY {}", order.replace("id DESC", "m.id DESC")));
        let n_sorted = c
            .prepare(&sorted.sql)
            .and_then(|mut st| st.query_map(params_from_iter(sorted.params), |_| Ok(())).map(|rows| rows.count()))
            .unwrap_or_else(|e| panic!("{e}: {}", sorted.sql));
        let mut q = cte;
        q.sql.push_str(" SELECT COUNT(*) FROM m");
        let n: i64 = c.query_row(&q.sql, params_from_iter(q.params), |r| r.get(0)).unwrap_or_else(|e| panic!("{e}: {}", q.sql));
        assert_eq!(n as usize, n_sorted);
        n
    }

    fn plan(filter: Vec<Cond>) -> Plan {
        Plan { filter, search: None, scores: vec![], match_count: None, field_score: None, sort: SortKey::Column(Column::InBlock), dir: Dir::Desc, dedup_by_name: false }
    }

    /// Every condition translates to SQL that SQLite accepts and that selects
    /// what it says (over a two-record fixture: one public, one alice's).
    #[test]
    fn every_condition_is_valid_sql_with_its_meaning() {
        let c = db();
        let anon = Viewer::anonymous();
        let alice = Viewer::user("alice");
        let p = |s: &str| DocPath::root(s);
        let cases: Vec<(Cond, i64)> = vec![
            (Cond::Visible, 2),
            (Cond::NotHidden, 2),
            (Cond::Eq(Column::Did, "did:a".into()), 1),
            (Cond::EqInt(Column::InBlock, 11), 1),
            (Cond::IsNull(Column::Date), 2),
            (Cond::AtLeast(Column::InBlock, 11), 1),
            (Cond::AtMost(Column::InBlock, 10), 1),
            (Cond::Below(Column::InBlock, 10), 0),
            (Cond::Equals { path: p("data.basic.url"), value: "u".into() }, 1),
            (Cond::At { path: p("data.exercise.equipmentRequired"), m: ValueMatch::Contains("ma".into()) }, 1),
            (Cond::At { path: p("data.exercise.exercise_type"), m: ValueMatch::Eq(Scalar::Str("warmup".into())) }, 1),
            (Cond::At { path: p("data.exercise.exercise_type"), m: ValueMatch::EqNoCase("warmup".into()) }, 1),
            (Cond::AnyStringStartsWith { under: p("data"), prefix: "ma".into() }, 1),
            (Cond::KeyContains { under: p("data"), needle: "exer".into() }, 2),
            (Cond::RefNameContains { path: p("data.exercise.equipmentRequired"), needle: "mat".into() }, 1),
            (Cond::NoneAt(p("data.exercise.equipmentRequired")), 1),
            (Cond::NonEmptyArray(p("data.exercise.equipmentRequired")), 1),
            (Cond::HasTag("legs".into()), 1),
            (Cond::HasAnyTag(vec!["x".into(), "legs".into()]), 1),
            (Cond::TextContains("squ".into()), 1),
            (Cond::Any(vec![Cond::Eq(Column::Did, "did:a".into()), Cond::Eq(Column::Did, "did:b".into())]), 2),
            (Cond::All(vec![Cond::Eq(Column::Did, "did:a".into()), Cond::Eq(Column::Did, "did:b".into())]), 0),
            (Cond::Any(vec![]), 0),
            (Cond::All(vec![]), 2),
            (Cond::Not(Box::new(Cond::Eq(Column::Did, "did:a".into()))), 1),
            (Cond::Never, 0),
        ];
        for (cond, want) in cases {
            assert_eq!(count(&c, &plan(vec![cond.clone()]), &alice), want, "{cond:?}");
        }
        // the privacy rule depends on the viewer
        assert_eq!(count(&c, &plan(vec![Cond::Visible]), &anon), 1);
        assert_eq!(count(&c, &plan(vec![Cond::Visible]), &alice), 2);
    }

    #[test]
    fn scores_search_dedup_and_sorts_are_valid_sql() {
        let c = db();
        let path = DocPath::root("data.exercise.equipmentRequired");
        let mut pl = plan(vec![Cond::Visible]);
        pl.scores = vec![Score {
            key: "equipmentScore",
            count_key: Some("equipmentMatchedCount"),
            items: vec![Cond::At { path: path.clone(), m: ValueMatch::Contains("mat".into()) }],
            full_when: Some(Cond::NoneAt(path.clone())),
            n: 1,
        }];
        pl.field_score = Some(vec![Graded { path, value: "mat".into() }]);
        pl.match_count = Some(vec![Cond::TextContains("squ".into())]);
        pl.search = Some(TextSearch { terms: vec!["squ".into()], mode: MatchMode::And });
        pl.dedup_by_name = true;
        for (sort, dir) in [
            (SortKey::Relevance, Dir::Asc),
            (SortKey::Score(0), Dir::Desc),
            (SortKey::FieldScore, Dir::Asc),
            (SortKey::MatchCount, Dir::Desc),
            (SortKey::Missing, Dir::Asc),
            (SortKey::Column(Column::Name), Dir::Asc),
            (SortKey::Doc(DocPath::root("data.exercise.exercise_type")), Dir::Desc),
        ] {
            pl.sort = sort.clone();
            pl.dir = dir;
            assert_eq!(count(&c, &pl, &Viewer::anonymous()), 1, "{sort:?}");
        }
    }
}
