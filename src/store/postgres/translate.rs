//! The domain's [`Plan`] as PostgreSQL SQL, the twin of the SQLite backend's
//! translation: each [`Cond`] becomes a boolean expression over the narrow
//! `records` table `r` (and the document as jsonb, `dj.j`, joined only when an
//! expression reads it), scores become counted columns, the sort key an
//! `ORDER BY`. No OIP rule is decided here.
//!
//! Where SQLite walks JSON with `json_each`, this uses the schema's
//! `oipd_elems(jsonb)` (an array's elements, an object's values, or the scalar
//! itself); equality of scalars is jsonb equality (numbers by value); full-text
//! search is the stored weighted `tsvector` (name A > description B > tags C)
//! against prefix terms, ranked by `ts_rank` with [`SEARCH_WEIGHTS`].
//!
//! The result is a `WITH m0 AS (…), m AS (…)` prefix exactly as SQLite's (same
//! column names); callers append their `SELECT … FROM m`.

use super::sql::{text, Frag, Sql};
use crate::oip::plan::{Column, Cond, DocPath, Plan, SortKey, ValueMatch, GRADES, SEARCH_WEIGHTS};
use crate::oip::query::{Dir, MatchMode, Scalar};
use crate::store::Viewer;

/// The privacy rule (see the module docs of `store`) for table alias `a`.
pub fn visible(a: &str, viewer: &Viewer) -> Frag {
    match &viewer.key {
        None => Frag::new(format!("{a}.public"), vec![]),
        Some(k) => Frag::new(format!("({a}.public OR {a}.owner = ? OR {a}.creator_pubkey = ?)"), vec![text(k), text(k)]),
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

/// `(dj.j #> '{"a","b"}')`: segments are validated (`[A-Za-z0-9_-]+`), so
/// embedding is safe.
fn at(p: &DocPath) -> String {
    let segs: Vec<String> = p.segments().iter().map(|s| format!("\"{s}\"")).collect();
    format!("(dj.j #> '{{{}}}')", segs.join(","))
}

/// An element as text (strings unquoted, numbers and booleans as written).
const E_TEXT: &str = "(e #>> '{}')";

fn scalar(v: &Scalar) -> (&'static str, Vec<Sql>) {
    match v {
        Scalar::Bool(true) => ("e = 'true'::jsonb", vec![]),
        Scalar::Bool(false) => ("e = 'false'::jsonb", vec![]),
        Scalar::Int(i) => ("e = to_jsonb(?)", vec![Sql::Int(*i)]),
        Scalar::Float(f) => ("e = to_jsonb(?)", vec![Sql::Real(*f)]),
        Scalar::Str(s) => ("e = to_jsonb(?)", vec![text(s)]),
    }
}

fn joined(conds: &[Cond], op: &str, viewer: &Viewer) -> Frag {
    Frag::join(conds.iter().map(|c| cond(c, viewer)).collect(), op).wrap()
}

/// One condition as a boolean SQL expression.
pub fn cond(c: &Cond, viewer: &Viewer) -> Frag {
    match c {
        Cond::Visible => visible("r", viewer),
        Cond::NotHidden => Frag::new("NOT r.hidden", vec![]),
        Cond::Eq(col, v) => Frag::new(format!("{} = ?", column(*col)), vec![text(v)]),
        Cond::EqInt(col, v) => Frag::new(format!("{} = ?", column(*col)), vec![Sql::Int(*v)]),
        Cond::IsNull(col) => Frag::new(format!("{} IS NULL", column(*col)), vec![]),
        Cond::AtLeast(col, v) => Frag::new(format!("{} >= ?", column(*col)), vec![Sql::Int(*v)]),
        Cond::AtMost(col, v) => Frag::new(format!("{} <= ?", column(*col)), vec![Sql::Int(*v)]),
        Cond::Below(col, v) => Frag::new(format!("{} < ?", column(*col)), vec![Sql::Int(*v)]),
        Cond::Equals { path, value } => {
            let x = at(path);
            Frag::new(format!("coalesce(jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') = ?, false)"), vec![text(value)])
        }
        Cond::At { path, m } => {
            let (expr, params) = match m {
                ValueMatch::Eq(v) => scalar(v),
                ValueMatch::EqNoCase(s) => ("lower(e #>> '{}') = ?", vec![text(s)]),
                ValueMatch::Contains(s) => ("strpos(lower(e #>> '{}'), ?) > 0", vec![text(s)]),
            };
            Frag::new(format!("EXISTS (SELECT 1 FROM oipd_elems({}) e WHERE {expr})", at(path)), params)
        }
        Cond::AnyStringStartsWith { under, prefix } => Frag::new(
            format!(
                "EXISTS (SELECT 1 FROM jsonb_path_query(coalesce({}, 'null'::jsonb), 'strict $.**') e WHERE jsonb_typeof(e) = 'string' AND starts_with({E_TEXT}, ?))",
                at(under)
            ),
            vec![text(prefix)],
        ),
        Cond::KeyContains { under, needle } => {
            let x = at(under);
            Frag::new(
                format!("EXISTS (SELECT 1 FROM jsonb_object_keys(CASE WHEN jsonb_typeof({x}) = 'object' THEN {x} ELSE '{{}}'::jsonb END) k WHERE strpos(lower(k), ?) > 0)"),
                vec![text(needle)],
            )
        }
        Cond::RefNameContains { path, needle } => {
            let mut f = Frag::new(
                format!("EXISTS (SELECT 1 FROM oipd_elems({}) e LEFT JOIN records rx ON rx.did = {E_TEXT} AND ", at(path)),
                vec![],
            );
            f.push(visible("rx", viewer));
            f.push(Frag::new(
                format!(
                    " WHERE strpos(lower(CASE WHEN rx.id IS NOT NULL THEN coalesce(rx.name, '') WHEN {E_TEXT} LIKE 'did:%' THEN '' ELSE coalesce({E_TEXT}, '') END), ?) > 0)"
                ),
                vec![text(needle)],
            ));
            f
        }
        Cond::NoneAt(path) => {
            let x = at(path);
            Frag::new(format!("({x} IS NULL OR {x} = '[]'::jsonb)"), vec![])
        }
        Cond::NonEmptyArray(path) => {
            let x = at(path);
            Frag::new(format!("(CASE WHEN jsonb_typeof({x}) = 'array' THEN jsonb_array_length({x}) ELSE 0 END > 0)"), vec![])
        }
        Cond::HasTag(t) => Frag::new("EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND t.tag = ?)", vec![text(t)]),
        Cond::HasAnyTag(tags) if tags.is_empty() => Frag::new("false", vec![]),
        Cond::HasAnyTag(tags) => Frag::new(
            format!("EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND t.tag IN ({}))", vec!["?"; tags.len()].join(",")),
            tags.iter().map(|t| text(t)).collect(),
        ),
        Cond::TextContains(t) => Frag::new(
            "(strpos(lower(coalesce(r.name, '')), ?) > 0 OR strpos(lower(coalesce(r.description, '')), ?) > 0 OR EXISTS (SELECT 1 FROM record_tags t WHERE t.record_id = r.id AND strpos(lower(t.tag), ?) > 0))",
            vec![text(t), text(t), text(t)],
        ),
        Cond::Any(cs) if cs.is_empty() => Frag::new("false", vec![]),
        Cond::All(cs) if cs.is_empty() => Frag::new("true", vec![]),
        Cond::Any(cs) => joined(cs, " OR ", viewer),
        Cond::All(cs) => joined(cs, " AND ", viewer),
        Cond::Not(c) => {
            let mut f = Frag::new("NOT ", vec![]);
            f.push(cond(c, viewer).wrap());
            f
        }
        Cond::Never => Frag::new("false", vec![]),
    }
}

/// `(b1 + b2 + …)`: how many conditions hold (an unknown counts as not).
fn count(conds: &[Cond], viewer: &Viewer) -> Frag {
    if conds.is_empty() {
        return Frag::new("0", vec![]);
    }
    let parts = conds
        .iter()
        .map(|c| {
            let mut f = Frag::new("coalesce((", vec![]);
            f.push(cond(c, viewer));
            f.sql.push_str(")::int, 0)");
            f
        })
        .collect();
    Frag::join(parts, " + ").wrap()
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
                    "coalesce((SELECT MAX(CASE WHEN lower({E_TEXT}) = ? THEN {exact} WHEN starts_with(lower({E_TEXT}), ?) THEN {prefix} \
                     WHEN right(lower({E_TEXT}), length(?)) = ? THEN {suffix} WHEN strpos(lower({E_TEXT}), ?) > 0 THEN {contains} ELSE 0 END) \
                     FROM oipd_elems({}) e), 0)",
                    at(&g.path)
                ),
                vec![text(&g.value); 5],
            )
        })
        .collect();
    Some(Frag::join(parts, " + ").wrap())
}

/// The search terms as a `tsquery` text: each term's alphanumeric runs, lowercased,
/// as a phrase whose last word is a prefix (FTS5's `"term"*`); terms joined by
/// `&` or `|`. Terms without a word are dropped; none left → `None`.
pub fn tsquery(terms: &[String], mode: MatchMode) -> Option<String> {
    let phrases: Vec<String> = terms
        .iter()
        .filter_map(|t| {
            let words: Vec<String> = t
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| format!("'{}'", w.to_lowercase()))
                .collect();
            if words.is_empty() {
                return None;
            }
            Some(format!("({}:*)", words.join(" <-> ")))
        })
        .collect();
    if phrases.is_empty() {
        return None;
    }
    Some(phrases.join(if mode == MatchMode::And { " & " } else { " | " }))
}

/// `ts_rank`'s weights `{D, C, B, A}`: tags (C), description (B), name (A) in
/// the ratio of [`SEARCH_WEIGHTS`].
fn rank_weights() -> String {
    let [wn, wd, wt] = SEARCH_WEIGHTS;
    let max = wn.max(wd).max(wt);
    format!("'{{0, {}, {}, {}}}'::float4[]", wt / max, wd / max, wn / max)
}

/// The `WITH` prefix (see the module docs) and the `ORDER BY` over its columns.
pub fn matches(plan: &Plan, viewer: &Viewer) -> (Frag, String) {
    let mut from = Frag::new("records r", vec![]);
    let mut filter_parts: Vec<Frag> = plan.filter.iter().map(|c| cond(c, viewer)).collect();
    let mut rank = None;
    if let Some(s) = &plan.search {
        match tsquery(&s.terms, s.mode) {
            Some(q) => {
                from = Frag::new("to_tsquery('simple', ?) tq CROSS JOIN records r", vec![text(&q)]);
                filter_parts.push(Frag::new("r.fts @@ tq", vec![]));
                rank = Some(format!("-ts_rank({}, r.fts, tq)", rank_weights()));
            }
            None => filter_parts.push(Frag::new("false", vec![])),
        }
    }
    if filter_parts.is_empty() {
        filter_parts.push(Frag::new("true", vec![]));
    }
    let filter = Frag::join(filter_parts, " AND ");
    let scored: Vec<Frag> = plan
        .scores
        .iter()
        .map(|s| match &s.full_when {
            Some(full) => {
                let mut m = Frag::new("(CASE WHEN coalesce(", vec![]);
                m.push(cond(full, viewer));
                m.push(Frag::new(format!(", false) THEN {} ELSE ", s.n), vec![]));
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
    match (&rank, by_rank) {
        (Some(r), true) => inner.sql.push_str(&format!(", {r} AS rank_")),
        (None, true) => inner.sql.push_str(", NULL::float4 AS rank_"),
        _ => {}
    }
    if let SortKey::Doc(path) = &plan.sort {
        let x = at(path);
        inner.sql.push_str(&format!(
            ", CASE jsonb_typeof({x}) WHEN 'number' THEN ({x} #>> '{{}}')::numeric WHEN 'boolean' THEN ({x} = 'true'::jsonb)::int END AS s_doc_n, \
             CASE jsonb_typeof({x}) WHEN 'string' THEN ({x} #>> '{{}}') WHEN 'object' THEN {x}::text WHEN 'array' THEN {x}::text END COLLATE \"C\" AS s_doc"
        ));
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
    // Join the documents (parsed once per row) only when an expression reads them.
    let needs_doc = inner.sql.contains("dj.j") || filter.sql.contains("dj.j");
    if needs_doc {
        from.sql.push_str(" JOIN record_docs rd ON rd.id = r.id CROSS JOIN LATERAL (SELECT rd.doc::jsonb AS j) dj");
    }
    inner.sql.push_str(" FROM ");
    inner.push(from);
    inner.sql.push_str(" WHERE ");
    inner.push(filter);

    let asc = plan.dir == Dir::Asc;
    let d = if asc { "ASC" } else { "DESC" };
    // Missing values sort last either way (as Elasticsearch did); ties by newest row.
    let key = |k: &str| format!("{k} {d} NULLS LAST, id DESC");
    let order = match &plan.sort {
        SortKey::Relevance => key("rank_"),
        // numbers (and booleans) before strings ascending, after them descending, as SQLite
        SortKey::Doc(_) if asc => "s_doc_n ASC NULLS LAST, s_doc ASC NULLS LAST, id DESC".to_owned(),
        SortKey::Doc(_) => "s_doc DESC NULLS LAST, s_doc_n DESC NULLS LAST, id DESC".to_owned(),
        SortKey::Column(c) => match c {
            Column::InBlock => key("s_block"),
            Column::IndexedAt => key("s_indexed"),
            Column::Date => key("s_date"),
            Column::RecordType => key("s_type"),
            Column::CreatorHandle => key("s_handle"),
            Column::Ver => key("s_ver"),
            Column::SchedDate => key("s_sched"),
            Column::Name => key("s_name"),
            _ => "id DESC".to_owned(),
        },
        SortKey::Score(i) => key(&format!("(c{i} * 1.0 / {})", plan.scores[*i].n)),
        SortKey::MatchCount => key("mc"),
        SortKey::FieldScore => key(&format!("(fs * 1.0 / {})", plan.field_score.as_ref().map_or(1, Vec::len))),
        SortKey::Missing => "id DESC".to_owned(),
    };
    let mut cte = Frag::new("WITH m0 AS (", vec![]);
    cte.push(inner);
    cte.sql.push(')');
    if plan.dedup_by_name {
        cte.sql.push_str(&format!(
            ", m AS (SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY coalesce(name, did) ORDER BY {order}) AS rn FROM m0) AS ranked WHERE rn = 1)"
        ));
    } else {
        cte.sql.push_str(", m AS (SELECT * FROM m0)");
    }
    (cte, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_become_prefix_phrases() {
        let t = |v: &[&str], m| tsquery(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), m);
        assert_eq!(t(&["Dumbbell", "chest"], MatchMode::And).unwrap(), "('dumbbell':*) & ('chest':*)");
        assert_eq!(t(&["push-up"], MatchMode::Or).unwrap(), "('push' <-> 'up':*)");
        assert_eq!(t(&["it's'; DROP"], MatchMode::And).unwrap(), "('it' <-> 's' <-> 'drop':*)");
        assert_eq!(t(&["--"], MatchMode::And), None);
    }
}
