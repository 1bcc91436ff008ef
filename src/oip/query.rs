//! `GET /api/records` parameters → a typed [`RecordQuery`]. Every parameter the
//! original accepted is parsed here; malformed values are a [`QueryError`] naming
//! the parameter (→ 400), never ignored. Unknown parameters are ignored (frontends
//! send extras such as `forceRefresh`), as the original did.
//!
//! Bounds (each rejects past it, except `limit`, which is clamped): [`MAX_LIMIT`],
//! [`MAX_PAGE`], [`MAX_SEARCH_BYTES`]/[`MAX_SEARCH_TERMS`], [`MAX_LIST_ITEMS`] per
//! list parameter, [`MAX_EXACT_MATCH_KEYS`], [`MAX_FIELD_SEARCHES`]; `resolveDepth`
//! is bounded by configuration.

use serde_json::{Map, Value};

/// Default page size (the original's).
pub const DEFAULT_LIMIT: u32 = 20;
/// Bound: largest page; larger `limit` values are clamped to it (documented).
pub const MAX_LIMIT: u32 = 1000;
/// Bound: highest page number.
pub const MAX_PAGE: u32 = 1_000_000;
/// Bound: bytes of `search`.
pub const MAX_SEARCH_BYTES: usize = 512;
/// Bound: terms of `search`.
pub const MAX_SEARCH_TERMS: usize = 16;
/// Bound: items of any comma-separated list parameter.
pub const MAX_LIST_ITEMS: usize = 64;
/// Bound: keys of `exactMatch`.
pub const MAX_EXACT_MATCH_KEYS: usize = 16;
/// Bound: `fieldName`/`fieldSearch` pairs.
pub const MAX_FIELD_SEARCHES: usize = 8;
/// Bound: bytes of the whole query string.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid parameter {param}: {reason}")]
pub struct QueryError {
    pub param: &'static str,
    pub reason: String,
}

fn bad(param: &'static str, reason: impl Into<String>) -> QueryError {
    QueryError { param, reason: reason.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortField {
    InArweaveBlock,
    IndexedAt,
    Date,
    RecordType,
    CreatorHandle,
    Ver,
    ScheduleDate,
    /// `score` and `tags`: the tag match ratio.
    TagScore,
    MatchCount,
    FieldSearchScore,
    EquipmentScore,
    ExerciseTypeScore,
    CuisineScore,
    ModelScore,
    ExerciseScore,
    IngredientScore,
    /// `basic.<field>`: a scalar of the record's `basic` section (clients sort
    /// ingredient lists by `basic.name`).
    Basic(String),
}

impl SortField {
    fn parse(s: &str) -> Option<Self> {
        if let Some(field) = s.strip_prefix("basic.") {
            return (valid_path(field) && !field.contains('.')).then(|| SortField::Basic(field.to_owned()));
        }
        Some(match s {
            "inArweaveBlock" => SortField::InArweaveBlock,
            "indexedAt" => SortField::IndexedAt,
            "date" => SortField::Date,
            "recordType" => SortField::RecordType,
            "creatorHandle" => SortField::CreatorHandle,
            "ver" => SortField::Ver,
            "scheduleDate" => SortField::ScheduleDate,
            "score" | "tags" => SortField::TagScore,
            "matchCount" => SortField::MatchCount,
            "fieldSearchScore" => SortField::FieldSearchScore,
            "equipmentScore" => SortField::EquipmentScore,
            "exerciseTypeScore" => SortField::ExerciseTypeScore,
            "cuisineScore" => SortField::CuisineScore,
            "modelScore" => SortField::ModelScore,
            "exerciseScore" => SortField::ExerciseScore,
            "ingredientScore" => SortField::IngredientScore,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BlockFilter {
    Block(i64),
    /// `inArweaveBlock=bad`: records without a block.
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldSearch {
    /// Path relative to `data.`, validated as `seg(.seg)*`.
    pub path: String,
    pub value: Scalar,
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListFilter {
    pub items: Vec<String>,
    pub mode: MatchMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shaping {
    pub include_sigs: bool,
    pub include_pub_keys: bool,
    pub hide_date_readable: bool,
    pub hide_null_values: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOpts {
    pub depth: u32,
    pub names_only: bool,
    pub field_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagSummary {
    pub tag_count: u32,
    pub tag_page: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordQuery {
    pub did: Option<String>,
    pub source: Option<String>,
    pub did_tx_ref: Option<String>,
    pub url: Option<String>,
    pub record_type: Option<String>,
    pub template: Option<String>,
    pub creator_handle: Option<String>,
    pub creator_did_address: Option<String>,
    pub in_arweave_block: Option<BlockFilter>,
    pub search: Option<ListFilter>,
    pub tags: Option<ListFilter>,
    pub field_searches: Vec<FieldSearch>,
    pub exact_match: Vec<(String, Scalar)>,
    pub date_start: Option<i64>,
    pub date_end: Option<i64>,
    /// `[start, end)` unix seconds of the `scheduledOn` day (UTC).
    pub scheduled_on: Option<(i64, i64)>,
    pub equipment: Option<ListFilter>,
    pub exercise_type: Option<ListFilter>,
    pub cuisine: Option<ListFilter>,
    pub model: Option<ListFilter>,
    pub ingredient_names: Option<Vec<String>>,
    pub exercise_names: Option<Vec<String>>,
    pub exercise_dids: Option<Vec<String>>,
    pub has_audio: Option<bool>,
    pub no_duplicates: bool,
    pub include_delete_messages: bool,
    pub sort: (SortField, Dir),
    /// Whether `sort` came from the client (else the default or a score default).
    pub sort_explicit: bool,
    /// Parameters that were understood but ignored, as the original ignored them
    /// (a `sortBy` field it did not know sorted by block); the answer names them.
    pub ignored: Vec<&'static str>,
    pub limit: u32,
    pub page: u32,
    pub shaping: Shaping,
    pub resolve: ResolveOpts,
    pub summarize_tags: Option<TagSummary>,
}

impl RecordQuery {
    pub fn offset(&self) -> u64 {
        (self.page as u64 - 1) * self.limit as u64
    }
}

/// The raw pairs of a query string, decoded, in order (repeated keys kept).
pub fn pairs(raw: &str) -> Result<Vec<(String, String)>, QueryError> {
    if raw.len() > MAX_QUERY_BYTES {
        return Err(bad("query", format!("over {MAX_QUERY_BYTES} bytes")));
    }
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    // No parameter of the API carries control characters; NUL in particular would
    // end an FTS5 string early.
    if let Some((k, _)) = pairs.iter().find(|(k, v)| k.chars().chain(v.chars()).any(char::is_control)) {
        return Err(bad("query", format!("{k:?}: control characters are not allowed")));
    }
    Ok(pairs)
}

/// The client's own query as a JSON object (`queryParams`); a repeated key gives
/// an array, as Express's parser does.
pub fn echo(pairs: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        match m.get_mut(k) {
            None => {
                m.insert(k.clone(), Value::String(v.clone()));
            }
            Some(Value::Array(a)) => a.push(Value::String(v.clone())),
            Some(other) => {
                let first = other.take();
                *other = Value::Array(vec![first, Value::String(v.clone())]);
            }
        }
    }
    Value::Object(m)
}

struct Params<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Params<'a> {
    fn last(&self, k: &str) -> Option<&'a str> {
        self.pairs.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<&'a str> {
        self.pairs.iter().filter(|(key, _)| key == k).map(|(_, v)| v.as_str()).collect()
    }
    fn text(&self, k: &str) -> Option<String> {
        self.last(k).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    }
    fn boolean(&self, k: &'static str, default: bool) -> Result<bool, QueryError> {
        match self.last(k).map(str::trim) {
            None | Some("") => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(v) => Err(bad(k, format!("expected true or false, got {v:?}"))),
        }
    }
    fn uint(&self, k: &'static str) -> Result<Option<u64>, QueryError> {
        match self.last(k).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| bad(k, format!("expected a non-negative integer, got {v:?}"))),
        }
    }
    fn int(&self, k: &'static str) -> Result<Option<i64>, QueryError> {
        match self.last(k).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| Some(f as i64))
                .ok_or_else(|| bad(k, format!("expected a number, got {v:?}"))),
        }
    }
    /// Unix seconds, or an ISO 8601 date (`2024-01-31`) or date-time
    /// (`2024-01-31T08:00:00Z`, offsets allowed). A bare date as an end bound
    /// means the end of that day (UTC).
    fn time(&self, k: &'static str, end_of_day: bool) -> Result<Option<i64>, QueryError> {
        match self.last(k).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) if v.bytes().any(|b| b == b'-' || b == b'T' || b == b':') && v.len() >= 10 && v.as_bytes()[4] == b'-' => {
                let t = crate::civil::parse_iso(v).filter(|(secs, _)| TIME_SPAN.contains(secs));
                match t {
                    Some((secs, true)) if end_of_day => Ok(Some(secs + 86_399)),
                    Some((secs, _)) => Ok(Some(secs)),
                    None => Err(bad(k, format!("expected unix seconds or an ISO 8601 date or date-time, got {v:?}"))),
                }
            }
            Some(_) => self.int(k),
        }
    }
    fn list(&self, k: &'static str) -> Result<Option<Vec<String>>, QueryError> {
        let Some(v) = self.last(k) else { return Ok(None) };
        let items: Vec<String> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if items.len() > MAX_LIST_ITEMS {
            return Err(bad(k, format!("more than {MAX_LIST_ITEMS} items")));
        }
        Ok((!items.is_empty()).then_some(items))
    }
    fn mode(&self, k: &'static str, default: MatchMode) -> Result<MatchMode, QueryError> {
        match self.last(k).map(|v| v.trim().to_ascii_uppercase()) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) if v == "AND" => Ok(MatchMode::And),
            Some(v) if v == "OR" => Ok(MatchMode::Or),
            Some(v) => Err(bad(k, format!("expected AND or OR, got {v:?}"))),
        }
    }
    fn filter(&self, k: &'static str, mode_key: &'static str, default: MatchMode) -> Result<Option<ListFilter>, QueryError> {
        let mode = self.mode(mode_key, default)?;
        Ok(self.list(k)?.map(|items| ListFilter { items, mode }))
    }
}

/// A `data`-relative or document path: `seg(.seg)*`, segments `[A-Za-z0-9_-]+`.
pub fn valid_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 256
        && p.split('.').all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

fn scalar_of(s: &str) -> Scalar {
    match s {
        "true" => Scalar::Bool(true),
        "false" => Scalar::Bool(false),
        _ => {
            if let Ok(i) = s.parse::<i64>() {
                Scalar::Int(i)
            } else if let Some(f) = s.parse::<f64>().ok().filter(|f| f.is_finite() && s.bytes().any(|b| b.is_ascii_digit())) {
                Scalar::Float(f)
            } else {
                Scalar::Str(s.to_owned())
            }
        }
    }
}

/// Bound: `scheduledOn` years (and the same span as Unix seconds); outside → 400.
const DAY_YEARS: std::ops::RangeInclusive<i64> = -9999..=9999;
/// The same bound for ISO `dateStart`/`dateEnd`, as Unix seconds.
const TIME_SPAN: std::ops::RangeInclusive<i64> = -377_705_116_800..=253_402_300_799;

fn parse_day(v: &str) -> Option<(i64, i64)> {
    let v = v.trim();
    let span = crate::civil::to_days(*DAY_YEARS.start(), 1, 1) * 86_400..=crate::civil::to_days(*DAY_YEARS.end(), 12, 31) * 86_400;
    let start = if let Ok(ts) = v.parse::<i64>() {
        if !span.contains(&ts) {
            return None;
        }
        ts.div_euclid(86_400) * 86_400
    } else {
        let mut it = v.split('-');
        let (y, m, d) = (it.next()?.parse::<i64>().ok()?, it.next()?.parse::<i64>().ok()?, it.next()?.parse::<i64>().ok()?);
        if it.next().is_some() || !DAY_YEARS.contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        crate::civil::to_days(y, m, d) * 86_400
    };
    Some((start, start + 86_400))
}

/// Parse the decoded query pairs. `max_depth` is the configured resolution bound.
pub fn parse(pairs: &[(String, String)], max_depth: u32) -> Result<RecordQuery, QueryError> {
    let p = Params { pairs };

    let source = match p.text("source").or_else(|| p.text("storage")) {
        None => None,
        Some(s) if s == "all" => None,
        Some(s) if ["arweave", "gun", "irys", "ipfs", "arfleet", "bittorrent"].contains(&s.as_str()) => Some(s),
        Some(s) => return Err(bad("source", format!("expected arweave, gun, irys or all, got {s:?}"))),
    };

    let in_arweave_block = match p.text("inArweaveBlock") {
        None => None,
        Some(v) if v == "bad" => Some(BlockFilter::Missing),
        Some(v) => Some(BlockFilter::Block(
            v.parse().map_err(|_| bad("inArweaveBlock", format!("expected a block number or \"bad\", got {v:?}")))?,
        )),
    };

    let search = match p.last("search") {
        None => None,
        Some(s) if s.len() > MAX_SEARCH_BYTES => return Err(bad("search", format!("over {MAX_SEARCH_BYTES} bytes"))),
        Some(s) => {
            let terms: Vec<String> = s.split_whitespace().map(str::to_lowercase).collect();
            if terms.len() > MAX_SEARCH_TERMS {
                return Err(bad("search", format!("more than {MAX_SEARCH_TERMS} terms")));
            }
            // Default AND: what the API documentation promised and clients were
            // written against (the original's code silently used OR).
            let mode = p.mode("searchMatchMode", MatchMode::And)?;
            (!terms.is_empty()).then_some(ListFilter { items: terms, mode })
        }
    };

    // fieldName/fieldSearch pairs: paired by index, the last fieldName reused.
    let names = p.all("fieldName");
    let values = p.all("fieldSearch");
    if values.len() > MAX_FIELD_SEARCHES {
        return Err(bad("fieldSearch", format!("more than {MAX_FIELD_SEARCHES} values")));
    }
    if !values.is_empty() && names.is_empty() {
        return Err(bad("fieldName", "required with fieldSearch"));
    }
    let exact = match p.last("fieldMatchMode").map(str::trim) {
        None | Some("") | Some("partial") => false,
        Some("exact") => true,
        Some(v) => return Err(bad("fieldMatchMode", format!("expected exact or partial, got {v:?}"))),
    };
    let mut field_searches = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let name = names.get(i).or(names.last()).map(|n| n.trim()).unwrap_or("");
        let name = name.strip_prefix("data.").unwrap_or(name);
        if !valid_path(name) {
            return Err(bad("fieldName", format!("{name:?} is not a field path")));
        }
        field_searches.push(FieldSearch { path: name.to_owned(), value: scalar_of(v.trim()), exact });
    }

    let exact_match = match p.last("exactMatch") {
        None => Vec::new(),
        Some(raw) => {
            let v: Value = serde_json::from_str(raw).map_err(|e| bad("exactMatch", format!("not JSON: {e}")))?;
            let obj = v.as_object().ok_or_else(|| bad("exactMatch", "expected a JSON object"))?;
            if obj.len() > MAX_EXACT_MATCH_KEYS {
                return Err(bad("exactMatch", format!("more than {MAX_EXACT_MATCH_KEYS} keys")));
            }
            let mut out = Vec::new();
            for (k, v) in obj {
                if !valid_path(k) {
                    return Err(bad("exactMatch", format!("{k:?} is not a field path")));
                }
                let s = match v {
                    Value::String(s) => Scalar::Str(s.clone()),
                    Value::Bool(b) => Scalar::Bool(*b),
                    Value::Number(n) => n.as_i64().map(Scalar::Int).or_else(|| n.as_f64().map(Scalar::Float)).ok_or_else(|| bad("exactMatch", "bad number"))?,
                    _ => return Err(bad("exactMatch", format!("value of {k:?} must be a string, number or boolean"))),
                };
                out.push((k.clone(), s));
            }
            out
        }
    };

    let scheduled_on = match p.text("scheduledOn") {
        None => None,
        Some(v) => Some(parse_day(&v).ok_or_else(|| bad("scheduledOn", format!("expected YYYY-MM-DD or a unix timestamp, got {v:?}")))?),
    };

    let exercise_type = p.filter("exerciseType", "exerciseTypeMatchMode", MatchMode::Or)?.map(|mut f| {
        f.items = f
            .items
            .iter()
            .map(|t| match t.to_ascii_lowercase().as_str() {
                "warmup" | "warm-up" | "warm up" => "Warm-Up".to_owned(),
                "main" => "Main".to_owned(),
                "cooldown" | "cool-down" | "cool down" => "Cool-Down".to_owned(),
                _ => t.clone(),
            })
            .collect();
        f
    });
    let lower = |f: Option<ListFilter>| {
        f.map(|mut f| {
            f.items = f.items.iter().map(|i| if i.starts_with("did:") { i.clone() } else { i.to_lowercase() }).collect();
            f
        })
    };
    let ingredient_names = p.list("ingredientNames")?.map(|v| v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>());
    let exercise_names = p.list("exerciseNames")?.map(|v| v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>());
    let exercise_dids = p.list("exerciseDIDs")?;

    let has_audio = match p.last("hasAudio").map(str::trim) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(v) => return Err(bad("hasAudio", format!("expected true or false, got {v:?}"))),
    };

    let limit = match p.uint("limit")? {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(bad("limit", "must be at least 1")),
        Some(n) => n.min(MAX_LIMIT as u64) as u32,
    };
    let page = match p.uint("page")? {
        None => 1,
        Some(0) => return Err(bad("page", "must be at least 1")),
        Some(n) if n > MAX_PAGE as u64 => return Err(bad("page", format!("must be at most {MAX_PAGE}"))),
        Some(n) => n as u32,
    };

    let score_default = if ingredient_names.is_some() {
        Some(SortField::IngredientScore)
    } else if exercise_names.is_some() || exercise_dids.is_some() {
        Some(SortField::ExerciseScore)
    } else {
        None
    };
    let mut ignored = Vec::new();
    let default_sort = (score_default.clone().unwrap_or(SortField::InArweaveBlock), Dir::Desc);
    let (sort, sort_explicit) = match p.text("sortBy") {
        None => (default_sort, false),
        Some(v) => {
            let (f, d) = v.split_once(':').unwrap_or((v.as_str(), "desc"));
            let dir = match d.trim().to_ascii_lowercase().as_str() {
                "asc" => Dir::Asc,
                "desc" | "" => Dir::Desc,
                other => return Err(bad("sortBy", format!("direction must be asc or desc, got {other:?}"))),
            };
            let f = f.trim();
            // A field name that is not one we sort by is ignored, as the original
            // ignored it (its default order stands); a malformed one is refused.
            if !valid_path(f) {
                return Err(bad("sortBy", format!("not a field name: {f:?}")));
            }
            match SortField::parse(f) {
                Some(field) => ((field, dir), true),
                None => {
                    ignored.push("sortBy");
                    (default_sort, false)
                }
            }
        }
    };

    let depth = p.uint("resolveDepth")?.unwrap_or(0);
    if depth > max_depth as u64 {
        return Err(bad("resolveDepth", format!("must be at most {max_depth}")));
    }
    let field_names = p.list("resolveFieldName")?.unwrap_or_default();

    let summarize_tags = if p.boolean("summarizeTags", false)? {
        let tag_count = p.uint("tagCount")?.unwrap_or(20).clamp(1, MAX_LIMIT as u64) as u32;
        let tag_page = p.uint("tagPage")?.unwrap_or(1).clamp(1, MAX_PAGE as u64) as u32;
        Some(TagSummary { tag_count, tag_page })
    } else {
        None
    };

    Ok(RecordQuery {
        did: p.text("did").or_else(|| p.text("didTx")),
        source,
        did_tx_ref: p.text("didTxRef"),
        url: p.text("url"),
        record_type: p.text("recordType"),
        template: p.text("template"),
        creator_handle: p.text("creatorHandle"),
        creator_did_address: p.text("creator_did_address"),
        in_arweave_block,
        search,
        tags: p.filter("tags", "tagsMatchMode", MatchMode::Or)?,
        field_searches,
        exact_match,
        date_start: p.time("dateStart", false)?,
        date_end: p.time("dateEnd", true)?,
        scheduled_on,
        equipment: lower(p.filter("equipmentRequired", "equipmentMatchMode", MatchMode::And)?),
        exercise_type,
        cuisine: lower(p.filter("cuisine", "cuisineMatchMode", MatchMode::Or)?),
        model: lower(p.filter("model", "modelMatchMode", MatchMode::Or)?),
        ingredient_names,
        exercise_names,
        exercise_dids,
        has_audio,
        no_duplicates: p.boolean("noDuplicates", false)?,
        include_delete_messages: p.boolean("includeDeleteMessages", false)?,
        sort,
        sort_explicit,
        ignored,
        limit,
        page,
        shaping: Shaping {
            include_sigs: p.boolean("includeSigs", true)?,
            include_pub_keys: p.boolean("includePubKeys", true)?,
            hide_date_readable: p.boolean("hideDateReadable", false)?,
            hide_null_values: p.boolean("hideNullValues", false)?,
        },
        resolve: ResolveOpts {
            depth: depth as u32,
            names_only: p.boolean("resolveNamesOnly", false)?,
            field_names,
        },
        summarize_tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<RecordQuery, QueryError> {
        parse(&pairs(s).unwrap(), 5)
    }

    #[test]
    fn defaults() {
        let r = q("").unwrap();
        assert_eq!((r.limit, r.page), (20, 1));
        assert_eq!(r.sort, (SortField::InArweaveBlock, Dir::Desc));
        assert_eq!(r.resolve.depth, 0);
        assert!(!r.include_delete_messages);
        assert!(r.shaping.include_sigs && r.shaping.include_pub_keys);
    }

    #[test]
    fn malformed_values_name_their_parameter() {
        for (qs, param) in [
            ("limit=abc", "limit"),
            ("limit=0", "limit"),
            ("page=-1", "page"),
            ("page=0", "page"),
            ("resolveDepth=x", "resolveDepth"),
            ("resolveDepth=6", "resolveDepth"),
            ("sortBy=no%20pe:asc", "sortBy"),
            ("sortBy=date:sideways", "sortBy"),
            ("dateStart=2024-13-01", "dateStart"),
            ("dateEnd=2024-01-01T25:00:00Z", "dateEnd"),
            ("exactMatch={bad", "exactMatch"),
            ("exactMatch=[1]", "exactMatch"),
            ("exactMatch={\"a\":{\"b\":1}}", "exactMatch"),
            ("exactMatch={\"a b\":1}", "exactMatch"),
            ("source=mars", "source"),
            ("dateStart=yesterday", "dateStart"),
            ("scheduledOn=2024-13-01", "scheduledOn"),
            ("inArweaveBlock=x", "inArweaveBlock"),
            ("searchMatchMode=XOR&search=a", "searchMatchMode"),
            ("fieldSearch=x", "fieldName"),
            ("fieldName=a;drop&fieldSearch=x", "fieldName"),
            ("noDuplicates=maybe", "noDuplicates"),
            ("hasAudio=yes", "hasAudio"),
        ] {
            let e = q(qs).unwrap_err();
            assert_eq!(e.param, param, "{qs}: {e}");
        }
        let long = format!("search={}", "a ".repeat(300));
        assert_eq!(q(&long).unwrap_err().param, "search");
    }

    #[test]
    fn limit_is_clamped_and_lists_parsed() {
        assert_eq!(q("limit=100000").unwrap().limit, MAX_LIMIT);
        let r = q("tags=a,%20b,,c&tagsMatchMode=and&search=Pasta%20Bake").unwrap();
        assert_eq!(r.tags.unwrap(), ListFilter { items: vec!["a".into(), "b".into(), "c".into()], mode: MatchMode::And });
        assert_eq!(r.search.unwrap(), ListFilter { items: vec!["pasta".into(), "bake".into()], mode: MatchMode::And });
        let r = q("exerciseType=warmup,cool-down&equipmentRequired=Dumbbell").unwrap();
        assert_eq!(r.exercise_type.unwrap().items, vec!["Warm-Up", "Cool-Down"]);
        assert_eq!(r.equipment.unwrap(), ListFilter { items: vec!["dumbbell".into()], mode: MatchMode::And });
    }

    #[test]
    fn field_search_pairs_reuse_the_last_name() {
        let r = q("fieldName=basic.name&fieldSearch=a&fieldSearch=b&fieldMatchMode=exact").unwrap();
        assert_eq!(r.field_searches.len(), 2);
        assert_eq!(r.field_searches[1].path, "basic.name");
        assert!(r.field_searches[1].exact);
        let r = q("fieldName=data.workout.nonStandardWorkout&fieldSearch=true").unwrap();
        assert_eq!(r.field_searches[0].path, "workout.nonStandardWorkout");
        assert_eq!(r.field_searches[0].value, Scalar::Bool(true));
    }

    #[test]
    fn lenient_where_clients_rely_on_it() {
        // an unknown sort field keeps the default order and is named as ignored
        let r = q("sortBy=nope:asc").unwrap();
        assert_eq!((r.sort.clone(), r.sort_explicit, r.ignored.clone()), ((SortField::InArweaveBlock, Dir::Desc), false, vec!["sortBy"]));
        let r = q("sortBy=basic.name:asc").unwrap();
        assert_eq!(r.sort, (SortField::Basic("name".into()), Dir::Asc));
        assert!(r.ignored.is_empty());
        // dates: seconds, ISO dates (an end date covers its whole day), ISO date-times with offsets
        let r = q("dateStart=2024-01-01&dateEnd=2024-01-31").unwrap();
        assert_eq!((r.date_start, r.date_end), (Some(1_704_067_200), Some(1_706_745_599)));
        let r = q("dateStart=2024-01-01T08:30:00%2B01:00&dateEnd=1706745599").unwrap();
        assert_eq!((r.date_start, r.date_end), (Some(1_704_094_200), Some(1_706_745_599)));
        assert_eq!(q("dateStart=2024-01-01T00:00:00.500Z").unwrap().date_start, Some(1_704_067_200));
    }

    #[test]
    fn scheduled_on_is_a_utc_day() {
        assert_eq!(q("scheduledOn=2024-04-22").unwrap().scheduled_on, Some((1713744000, 1713830400)));
        assert_eq!(q("scheduledOn=1713783811").unwrap().scheduled_on, Some((1713744000, 1713830400)));
    }

    #[test]
    fn echo_is_the_clients_query_only() {
        let p = pairs("recordType=recipe&tags=a&tags=b").unwrap();
        assert_eq!(echo(&p), serde_json::json!({"recordType": "recipe", "tags": ["a", "b"]}));
    }
}
