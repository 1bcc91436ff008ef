//! What a records query *means*, independent of any store: which conditions a
//! record must meet, which scores are computed and under which response keys,
//! what the answer is sorted by. A backend translates a [`Plan`] into its own
//! query language (SQLite's in `store::sqlite::translate`); it writes SQL, not OIP
//! rules, so two backends cannot disagree on what `equipmentRequired=…` means.
//!
//! The OIP rules held here, in one place:
//! - the domain filters imply their record type (equipment and exercise types →
//!   `exercise`; cuisine and ingredient names → `recipe`; exercise names or DIDs →
//!   `workout`; models → `modelProvider`), as the original ignored them elsewhere;
//! - OR-mode equipment: an exercise that needs no equipment is a full match;
//! - reference-name filters match the names of the records referenced (those the
//!   viewer may see) or plain-name entries;
//! - scores are `matched / asked`, rounded to 3 decimals, with their count keys;
//!   `fieldSearchScore` grades each value exact 1000 / prefix 900 / suffix 800 /
//!   contains 600; full-text search weights name 3, description 2, tags 1 and
//!   sorts by relevance unless `sortBy` was given;
//! - missing sort values sort last in either direction; ties go to the newest row;
//!   `sortBy=basic.<field>` sorts by that scalar of the record (`basic.name` by the
//!   indexed name).
//!
//! No bounds of its own: a plan's size is bounded by the query's (`query::MAX_*`).

use serde_json::Value;

use super::query::{BlockFilter, Dir, ListFilter, MatchMode, RecordQuery, Scalar, SortField};

/// An indexed property of a record (what `model::IndexedRecord` extracts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Did,
    DidTx,
    Storage,
    /// The record type, lowercased.
    RecordTypeLc,
    /// The record type as written (sorting).
    RecordType,
    CreatorHandle,
    CreatorAddress,
    InBlock,
    IndexedAt,
    Date,
    Ver,
    /// The record's name (`data.basic.name`).
    Name,
    /// The date the `dateStart`/`dateEnd` filters compare.
    FilterDate,
    /// The scheduled day of calendar records.
    SchedDate,
}

/// A location in the record document, from its root; every segment is validated
/// (`[A-Za-z0-9_-]+`, see `query::valid_path`), so a backend may embed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocPath(pub Vec<String>);

impl DocPath {
    /// `a.b.c` from the document root.
    pub fn root(dotted: &str) -> Self {
        DocPath(dotted.split('.').map(str::to_owned).collect())
    }

    /// `data.<dotted>`.
    pub fn data(dotted: &str) -> Self {
        let mut p = vec!["data".to_owned()];
        p.extend(dotted.split('.').map(str::to_owned));
        DocPath(p)
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

/// How the value at a path — or each element of it, when it is an array — is
/// compared.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueMatch {
    /// Equal: numbers by value, booleans by type, strings exactly.
    Eq(Scalar),
    /// A string equal to this (lowercase) text, ignoring case.
    EqNoCase(String),
    /// A string whose lowercase form contains this text.
    Contains(String),
}

/// One condition on a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// The privacy rule for the query's viewer (`store` module docs).
    Visible,
    /// Not a deletion message.
    NotHidden,
    /// A text column equals.
    Eq(Column, String),
    /// An integer column equals.
    EqInt(Column, i64),
    /// A column has no value.
    IsNull(Column),
    /// An integer column is `>= min`.
    AtLeast(Column, i64),
    /// An integer column is `<= max`.
    AtMost(Column, i64),
    /// An integer column is `< bound`.
    Below(Column, i64),
    /// The scalar at `path` equals `value` (no array traversal).
    Equals {
        path: DocPath,
        value: String,
    },
    /// The value at `path`, or one element of it, matches.
    At {
        path: DocPath,
        m: ValueMatch,
    },
    /// Some string anywhere below `under` starts with `prefix`.
    AnyStringStartsWith {
        under: DocPath,
        prefix: String,
    },
    /// Some key directly below `under` contains `needle` (lowercase), ignoring case.
    KeyContains {
        under: DocPath,
        needle: String,
    },
    /// Some element at `path` is the DID of a record the viewer may see whose name
    /// contains `needle` ignoring case, or is a plain name (not a DID) containing it.
    RefNameContains {
        path: DocPath,
        needle: String,
    },
    /// `path` is absent, or an empty array.
    NoneAt(DocPath),
    /// `path` is a non-empty array.
    NonEmptyArray(DocPath),
    /// The record carries this tag.
    HasTag(String),
    /// The record carries one of these tags.
    HasAnyTag(Vec<String>),
    /// Its name, description or one of its tags contains `term` (lowercase), ignoring case.
    TextContains(String),
    Any(Vec<Cond>),
    All(Vec<Cond>),
    Not(Box<Cond>),
    /// Nothing matches (e.g. only unknown DIDs were given).
    Never,
}

/// A scored filter: its response keys and the conditions whose matches it counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub key: &'static str,
    /// The matched-count key, if the original answered one.
    pub count_key: Option<&'static str>,
    /// Each condition that holds counts one.
    pub items: Vec<Cond>,
    /// When this holds, the record counts as matching all `n`.
    pub full_when: Option<Cond>,
    /// What the match count is divided by.
    pub n: usize,
}

/// `fieldSearch`: each value graded by how closely it matches (best element wins).
#[derive(Debug, Clone, PartialEq)]
pub struct Graded {
    pub path: DocPath,
    /// The searched value as lowercase text.
    pub value: String,
}

/// Grades of a [`Graded`] match: exact, prefix, suffix, contains.
pub const GRADES: [i64; 4] = [1000, 900, 800, 600];

/// Full-text search over name, description and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSearch {
    /// Prefix terms, as typed.
    pub terms: Vec<String>,
    pub mode: MatchMode,
}

/// Relevance weights of name, description and tags.
pub const SEARCH_WEIGHTS: [f64; 3] = [3.0, 2.0, 1.0];

/// What the answer is sorted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Column(Column),
    /// The score at this index of [`Plan::scores`], as a ratio.
    Score(usize),
    MatchCount,
    /// The field-search grade sum divided by the number of field searches.
    FieldScore,
    /// Full-text relevance, best first.
    Relevance,
    /// A scalar in the document (`sortBy=basic.<field>`).
    Doc(DocPath),
    /// A score the query did not compute: every value missing (ties decide).
    Missing,
}

/// A query's meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// All must hold.
    pub filter: Vec<Cond>,
    pub search: Option<TextSearch>,
    pub scores: Vec<Score>,
    /// `matchCount`: how many search terms each record contains.
    pub match_count: Option<Vec<Cond>>,
    pub field_score: Option<Vec<Graded>>,
    pub sort: SortKey,
    /// Direction; `Relevance` is always best first, whatever this says.
    pub dir: Dir,
    /// `noDuplicates`: keep the best-sorted record per name (records without a
    /// name are their own group).
    pub dedup_by_name: bool,
}

/// An item of the equipment filter: a name, or the DID of an equipment record
/// whose name the store looks up (for the viewer) before planning.
pub enum EquipmentItem<'a> {
    Name(&'a str),
    Did(&'a str),
}

/// The equipment filter's items, if any.
pub fn equipment_items(q: &RecordQuery) -> Vec<EquipmentItem<'_>> {
    q.equipment.as_ref().map_or_else(Vec::new, |f| {
        f.items
            .iter()
            .map(|i| {
                if i.starts_with("did:") {
                    EquipmentItem::Did(i)
                } else {
                    EquipmentItem::Name(i)
                }
            })
            .collect()
    })
}

/// The plan for `q`; `equipment_names` are [`equipment_items`] with DIDs replaced
/// by the (lowercase) names of the records they name, unknown ones left out.
pub fn plan(q: &RecordQuery, equipment_names: &[String]) -> Plan {
    let mut filter = vec![Cond::Visible];
    let mut scores = Vec::new();

    if !q.include_delete_messages {
        filter.push(Cond::NotHidden);
    }
    if let Some(did) = &q.did {
        filter.push(Cond::Any(vec![
            Cond::Eq(Column::Did, did.clone()),
            Cond::Eq(Column::DidTx, did.clone()),
        ]));
    }
    if let Some(s) = &q.source {
        filter.push(Cond::Eq(Column::Storage, s.clone()));
    }
    if let Some(v) = &q.did_tx_ref {
        filter.push(Cond::AnyStringStartsWith {
            under: DocPath::root("data"),
            prefix: v.clone(),
        });
    }
    if let Some(u) = &q.url {
        filter.push(Cond::Any(vec![
            Cond::Equals {
                path: DocPath::data("basic.url"),
                value: u.clone(),
            },
            Cond::Equals {
                path: DocPath::data("basic.webUrl"),
                value: u.clone(),
            },
        ]));
    }
    let implied = if q.equipment.is_some() || q.exercise_type.is_some() {
        Some("exercise")
    } else if q.cuisine.is_some() || q.ingredient_names.is_some() {
        Some("recipe")
    } else if q.exercise_names.is_some() || q.exercise_dids.is_some() {
        Some("workout")
    } else if q.model.is_some() {
        Some("modelprovider")
    } else {
        None
    };
    if let Some(t) = q
        .record_type
        .as_deref()
        .map(str::to_lowercase)
        .or(implied.map(str::to_owned))
    {
        filter.push(Cond::Eq(Column::RecordTypeLc, t));
    }
    if let Some(t) = &q.template {
        filter.push(Cond::KeyContains {
            under: DocPath::root("data"),
            needle: t.to_lowercase(),
        });
    }
    if let Some(h) = &q.creator_handle {
        filter.push(Cond::Eq(Column::CreatorHandle, h.clone()));
    }
    if let Some(a) = &q.creator_did_address {
        filter.push(Cond::Eq(Column::CreatorAddress, a.clone()));
    }
    match &q.in_arweave_block {
        Some(BlockFilter::Block(b)) => filter.push(Cond::EqInt(Column::InBlock, *b)),
        Some(BlockFilter::Missing) => filter.push(Cond::IsNull(Column::InBlock)),
        None => {}
    }
    let mut search = None;
    let mut match_count = None;
    if let Some(ListFilter { items, mode }) = &q.search {
        search = Some(TextSearch {
            terms: items.clone(),
            mode: *mode,
        });
        match_count = Some(
            items
                .iter()
                .map(|t| Cond::TextContains(t.clone()))
                .collect(),
        );
    }
    if let Some(ListFilter { items, mode }) = &q.tags {
        match mode {
            MatchMode::Or => filter.push(Cond::HasAnyTag(items.clone())),
            MatchMode::And => filter.extend(items.iter().map(|t| Cond::HasTag(t.clone()))),
        }
        let mut distinct: Vec<&String> = Vec::with_capacity(items.len());
        for t in items {
            if !distinct.contains(&t) {
                distinct.push(t);
            }
        }
        scores.push(Score {
            key: "score",
            count_key: None,
            items: distinct
                .into_iter()
                .map(|t| Cond::HasTag(t.clone()))
                .collect(),
            full_when: None,
            n: items.len(),
        });
    }
    let mut field_score = None;
    if !q.field_searches.is_empty() {
        let mut graded = Vec::new();
        for fs in &q.field_searches {
            let path = DocPath::data(&fs.path);
            let m = match &fs.value {
                Scalar::Str(s) if fs.exact => ValueMatch::EqNoCase(s.to_lowercase()),
                Scalar::Str(s) => ValueMatch::Contains(s.to_lowercase()),
                other => ValueMatch::Eq(other.clone()),
            };
            filter.push(Cond::At {
                path: path.clone(),
                m,
            });
            let value = match &fs.value {
                Scalar::Str(s) => s.to_lowercase(),
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(x) => x.to_string(),
                Scalar::Bool(b) => b.to_string(),
            };
            graded.push(Graded { path, value });
        }
        field_score = Some(graded);
    }
    for (path, value) in &q.exact_match {
        filter.push(Cond::At {
            path: DocPath::root(path),
            m: ValueMatch::Eq(value.clone()),
        });
    }
    if let Some(s) = q.date_start {
        filter.push(Cond::AtLeast(Column::FilterDate, s));
    }
    if let Some(e) = q.date_end {
        filter.push(Cond::AtMost(Column::FilterDate, e));
    }
    if let Some((s, e)) = q.scheduled_on {
        filter.push(Cond::All(vec![
            Cond::AtLeast(Column::SchedDate, s),
            Cond::Below(Column::SchedDate, e),
        ]));
    }
    if let Some(f) = &q.equipment {
        let path = DocPath::data("exercise.equipmentRequired");
        let items: Vec<Cond> = equipment_names
            .iter()
            .map(|n| Cond::At {
                path: path.clone(),
                m: ValueMatch::Contains(n.clone()),
            })
            .collect();
        if items.is_empty() {
            filter.push(Cond::Never); // only unknown or invisible DIDs were given
        } else {
            let none = Cond::NoneAt(path);
            let full_when = if f.mode == MatchMode::Or {
                let mut any = vec![none.clone()];
                any.extend(items.iter().cloned());
                filter.push(Cond::Any(any));
                Some(none)
            } else {
                filter.push(Cond::All(items.clone()));
                None
            };
            let n = items.len();
            scores.push(Score {
                key: "equipmentScore",
                count_key: Some("equipmentMatchedCount"),
                items,
                full_when,
                n,
            });
        }
    }
    for (f, path, key, count_key, substring) in [
        (
            &q.exercise_type,
            "exercise.exercise_type",
            "exerciseTypeScore",
            "exerciseTypeMatchedCount",
            false,
        ),
        (
            &q.cuisine,
            "recipe.cuisine",
            "cuisineScore",
            "cuisineMatchedCount",
            true,
        ),
        (
            &q.model,
            "modelProvider.supported_models",
            "modelScore",
            "modelMatchedCount",
            true,
        ),
    ] {
        if let Some(f) = f {
            let path = DocPath::data(path);
            let items: Vec<Cond> = f
                .items
                .iter()
                .map(|it| Cond::At {
                    path: path.clone(),
                    m: if substring {
                        ValueMatch::Contains(it.clone())
                    } else {
                        ValueMatch::Eq(Scalar::Str(it.clone()))
                    },
                })
                .collect();
            filter.push(combine(&items, f.mode));
            let n = items.len();
            scores.push(Score {
                key,
                count_key: Some(count_key),
                items,
                full_when: None,
                n,
            });
        }
    }
    if let Some(names) = &q.ingredient_names {
        let path = DocPath::data("recipe.ingredient");
        let items: Vec<Cond> = names
            .iter()
            .map(|n| Cond::RefNameContains {
                path: path.clone(),
                needle: n.clone(),
            })
            .collect();
        filter.push(Cond::Any(items.clone()));
        let n = items.len();
        scores.push(Score {
            key: "ingredientScore",
            count_key: Some("ingredientMatchedCount"),
            items,
            full_when: None,
            n,
        });
    }
    if q.exercise_names.is_some() || q.exercise_dids.is_some() {
        let path = DocPath::data("workout.exercise");
        let mut items = Vec::new();
        for n in q.exercise_names.iter().flatten() {
            items.push(Cond::RefNameContains {
                path: path.clone(),
                needle: n.clone(),
            });
        }
        for d in q.exercise_dids.iter().flatten() {
            items.push(Cond::At {
                path: path.clone(),
                m: ValueMatch::Eq(Scalar::Str(d.clone())),
            });
        }
        filter.push(Cond::Any(items.clone()));
        let n = items.len();
        scores.push(Score {
            key: "exerciseScore",
            count_key: Some("exerciseMatchedCount"),
            items,
            full_when: None,
            n,
        });
    }
    if let Some(h) = q.has_audio {
        let audio = Cond::Any(vec![
            Cond::NonEmptyArray(DocPath::data("post.audioItems")),
            Cond::NonEmptyArray(DocPath::data("basic.audioItems")),
        ]);
        filter.push(if h { audio } else { Cond::Not(Box::new(audio)) });
    }

    let score_at = |k: &str| {
        scores
            .iter()
            .position(|s: &Score| s.key == k)
            .map_or(SortKey::Missing, SortKey::Score)
    };
    let (field, dir) = (&q.sort.0, q.sort.1);
    let sort = if search.is_some() && !q.sort_explicit {
        SortKey::Relevance
    } else {
        match field {
            SortField::InArweaveBlock => SortKey::Column(Column::InBlock),
            SortField::IndexedAt => SortKey::Column(Column::IndexedAt),
            SortField::Date => SortKey::Column(Column::Date),
            SortField::RecordType => SortKey::Column(Column::RecordType),
            SortField::CreatorHandle => SortKey::Column(Column::CreatorHandle),
            SortField::Ver => SortKey::Column(Column::Ver),
            SortField::ScheduleDate => SortKey::Column(Column::SchedDate),
            SortField::TagScore => score_at("score"),
            SortField::MatchCount if match_count.is_some() => SortKey::MatchCount,
            SortField::FieldSearchScore if field_score.is_some() => SortKey::FieldScore,
            SortField::MatchCount | SortField::FieldSearchScore => SortKey::Missing,
            SortField::EquipmentScore => score_at("equipmentScore"),
            SortField::ExerciseTypeScore => score_at("exerciseTypeScore"),
            SortField::CuisineScore => score_at("cuisineScore"),
            SortField::ModelScore => score_at("modelScore"),
            SortField::ExerciseScore => score_at("exerciseScore"),
            SortField::IngredientScore => score_at("ingredientScore"),
            SortField::Basic(f) if f == "name" => SortKey::Column(Column::Name),
            SortField::Basic(f) => SortKey::Doc(DocPath::data(&format!("basic.{f}"))),
        }
    };
    let dir = if sort == SortKey::Relevance {
        Dir::Asc
    } else {
        dir
    };
    Plan {
        filter,
        search,
        scores,
        match_count,
        field_score,
        sort,
        dir,
        dedup_by_name: q.no_duplicates,
    }
}

fn combine(items: &[Cond], mode: MatchMode) -> Cond {
    match mode {
        MatchMode::And => Cond::All(items.to_vec()),
        MatchMode::Or => Cond::Any(items.to_vec()),
    }
}

impl Plan {
    /// The response's score fields for one record, from what the backend counted:
    /// `matched[i]` for `scores[i]`, the search terms matched, the field-search
    /// grade sum.
    pub fn score_fields(
        &self,
        matched: &[i64],
        match_count: Option<i64>,
        field_sum: Option<f64>,
    ) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        for (s, &m) in self.scores.iter().zip(matched) {
            let score = ((m as f64 / s.n as f64) * 1000.0).round() / 1000.0;
            out.push((s.key, Value::from(score)));
            if let Some(k) = s.count_key {
                out.push((k, Value::from(m)));
            }
        }
        if let Some(mc) = match_count {
            out.push(("matchCount", Value::from(mc)));
        }
        if let (Some(fs), Some(g)) = (field_sum, &self.field_score) {
            let n = g.len();
            out.push(("fieldSearchScore", Value::from((fs / n as f64).round())));
            out.push(("fieldSearchMatchedCount", Value::from(n)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oip::query::{self as q};

    fn plan_of(query: &str) -> Plan {
        let pairs = q::pairs(query).unwrap();
        let rq = q::parse(&pairs, 5).unwrap();
        let names: Vec<String> = equipment_items(&rq)
            .into_iter()
            .filter_map(|i| match i {
                EquipmentItem::Name(n) => Some(n.to_owned()),
                EquipmentItem::Did(_) => None,
            })
            .collect();
        plan(&rq, &names)
    }

    #[test]
    fn domain_filters_imply_their_record_type() {
        for (query, t) in [
            ("equipmentRequired=mat", "exercise"),
            ("exerciseType=warmup", "exercise"),
            ("cuisine=thai", "recipe"),
            ("ingredientNames=rice", "recipe"),
            ("exerciseNames=squat", "workout"),
            ("model=llama", "modelprovider"),
        ] {
            let p = plan_of(query);
            assert!(
                p.filter.contains(&Cond::Eq(Column::RecordTypeLc, t.into())),
                "{query}: {:?}",
                p.filter
            );
        }
        // an explicit type wins
        let p = plan_of("recordType=Recipe&cuisine=thai");
        assert!(p
            .filter
            .contains(&Cond::Eq(Column::RecordTypeLc, "recipe".into())));
    }

    #[test]
    fn every_plan_starts_with_the_privacy_rule() {
        for query in [
            "",
            "search=x",
            "tags=a,b&tagsMatchMode=AND",
            "includeDeleteMessages=true",
        ] {
            assert_eq!(plan_of(query).filter[0], Cond::Visible, "{query}");
        }
        assert!(plan_of("").filter.contains(&Cond::NotHidden));
        assert!(!plan_of("includeDeleteMessages=true")
            .filter
            .contains(&Cond::NotHidden));
    }

    #[test]
    fn search_sorts_by_relevance_unless_sort_is_given() {
        assert_eq!(plan_of("search=bowl").sort, SortKey::Relevance);
        assert_eq!(
            plan_of("search=bowl&sortBy=inArweaveBlock:asc").sort,
            SortKey::Column(Column::InBlock)
        );
        assert_eq!(plan_of("sortBy=equipmentScore:desc").sort, SortKey::Missing);
        assert_eq!(plan_of("sortBy=basic.name:asc").sort, SortKey::Column(Column::Name));
        assert_eq!(plan_of("sortBy=basic.language:asc").sort, SortKey::Doc(DocPath::root("data.basic.language")));
        assert_eq!(
            plan_of("equipmentRequired=mat&sortBy=equipmentScore:desc").sort,
            SortKey::Score(0)
        );
    }

    #[test]
    fn or_mode_equipment_counts_a_no_equipment_exercise_as_full() {
        let p = plan_of("equipmentRequired=mat,band&equipmentMatchMode=OR");
        let s = &p.scores[0];
        assert_eq!((s.key, s.n), ("equipmentScore", 2));
        assert!(matches!(s.full_when, Some(Cond::NoneAt(_))));
        // AND (the default): every item must be there, nothing counts as full
        let p = plan_of("equipmentRequired=mat,band");
        assert!(p.scores[0].full_when.is_none());
    }

    #[test]
    fn score_fields_shape_and_rounding() {
        let p = plan_of("tags=a,b,c");
        assert_eq!(
            p.score_fields(&[2], None, None),
            vec![("score", Value::from(0.667))]
        );
        let p = plan_of("cuisine=thai,indian&search=rice");
        let f = p.score_fields(&[1], Some(1), None);
        assert_eq!(
            f,
            vec![
                ("cuisineScore", Value::from(0.5)),
                ("cuisineMatchedCount", Value::from(1)),
                ("matchCount", Value::from(1))
            ]
        );
    }
}
