//! The OIP record document (`{data: {<section>: {...}}, oip: {...}}`) and the
//! fields the store indexes from it; templates likewise. Pure functions over
//! `serde_json::Value`, shared by import, the write endpoints and every store.

use serde_json::Value;

/// Record types that carry their own calendar date (`dateStart`/`dateEnd` and
/// `scheduleDate` use it instead of `basic.date`).
pub const SCHEDULED_TYPES: &[&str] = &["workoutSchedule", "mealPlan", "mealPlanDaily"];

/// Record types that are deletion messages (hidden unless `includeDeleteMessages`).
pub const DELETE_TYPES: &[&str] = &["delete", "deleteTemplate", "deleteMessage"];

/// What the store indexes of one record. `doc` is the whole document as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedRecord {
    pub did: String,
    pub did_tx: Option<String>,
    pub record_type: Option<String>,
    /// `arweave`, `gun`, `irys`, ... from `oip.storage` or the DID's method.
    pub storage: Option<String>,
    pub creator_handle: Option<String>,
    pub creator_address: Option<String>,
    pub creator_pubkey: Option<String>,
    pub in_block: Option<i64>,
    pub indexed_at: Option<String>,
    pub status: Option<String>,
    pub ver: Option<String>,
    /// `data.basic.date`, unix seconds.
    pub date: Option<i64>,
    /// `scheduled_date` / `meal_date` of schedules and plans.
    pub sched_date: Option<i64>,
    /// The date `dateStart`/`dateEnd` filter on.
    pub filter_date: Option<i64>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Lower-cased `accessControl.access_level`; `None` = unlabelled (public).
    pub access_level: Option<String>,
    /// `accessControl.owner_public_key`, else `created_by`, else the
    /// conversation session's owner.
    pub owner: Option<String>,
    pub private_session: bool,
    pub doc: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not an object")]
    NotObject,
    #[error("missing `oip` object")]
    NoOip,
    #[error("missing `data` object")]
    NoData,
    #[error("missing oip.did (or oip.didTx) starting with \"did:\"")]
    NoDid,
    #[error("document over {0} bytes")]
    TooLarge(usize),
}

/// Bound: the largest record document accepted (import and newRecord).
pub const MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// A number, or a string holding one (dates are sometimes strings).
fn int_at(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

/// The storage network of a DID: `did:<method>:...` → `<method>`.
pub fn did_method(did: &str) -> Option<&str> {
    let rest = did.strip_prefix("did:")?;
    rest.split(':').next().filter(|m| !m.is_empty())
}

impl IndexedRecord {
    /// Visible to anyone: access level `public` or unset, and not a private
    /// conversation session. Everything else is owner-only (see `store`).
    pub fn is_public(&self) -> bool {
        self.access_level.as_deref().is_none_or(|l| l == "public") && !self.private_session
    }

    /// A deletion message (listed only with `includeDeleteMessages=true`).
    pub fn is_delete_message(&self) -> bool {
        self.record_type.as_deref().is_some_and(|t| DELETE_TYPES.contains(&t))
    }

    pub fn from_value(v: &Value) -> Result<Self, RecordError> {
        let obj = v.as_object().ok_or(RecordError::NotObject)?;
        let oip = obj.get("oip").filter(|o| o.is_object()).ok_or(RecordError::NoOip)?;
        let data = obj.get("data").filter(|d| d.is_object()).ok_or(RecordError::NoData)?;
        let did = str_at(oip, &["did"])
            .or_else(|| str_at(oip, &["didTx"]))
            .filter(|d| d.starts_with("did:"))
            .ok_or(RecordError::NoDid)?
            .to_owned();
        let doc = serde_json::to_string(v).map_err(|_| RecordError::NotObject)?;
        if doc.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge(MAX_RECORD_BYTES));
        }
        let record_type = str_at(oip, &["recordType"]).map(str::to_owned);
        let date = int_at(data, &["basic", "date"]);
        let sched_date = int_at(data, &["workoutSchedule", "scheduled_date"])
            .or_else(|| int_at(data, &["mealPlan", "meal_date"]))
            .or_else(|| int_at(data, &["mealPlanDaily", "meal_date"]));
        let scheduled = record_type.as_deref().is_some_and(|t| SCHEDULED_TYPES.contains(&t));
        let filter_date = if scheduled { sched_date } else { date };
        let tags = match data.get("basic").and_then(|b| b.get("tagItems")) {
            Some(Value::Array(a)) => a.iter().filter_map(|t| t.as_str()).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
            Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
            _ => Vec::new(),
        };
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        let owner = str_at(data, &["accessControl", "owner_public_key"])
            .or_else(|| str_at(data, &["accessControl", "created_by"]))
            .or_else(|| str_at(data, &["conversationSession", "owner_public_key"]))
            .map(str::to_owned);
        let private_session = data
            .get("conversationSession")
            .and_then(|c| c.get("is_private"))
            .is_some_and(|p| p == &Value::Bool(true) || p == "true");
        Ok(IndexedRecord {
            storage: str_at(oip, &["storage"]).or_else(|| did_method(&did)).map(str::to_owned),
            did_tx: str_at(oip, &["didTx"]).map(str::to_owned),
            creator_handle: str_at(oip, &["creator", "creatorHandle"]).map(str::to_owned),
            creator_address: str_at(oip, &["creator", "didAddress"]).map(str::to_owned),
            creator_pubkey: str_at(oip, &["creator", "publicKey"]).map(str::to_owned),
            in_block: int_at(oip, &["inArweaveBlock"]),
            indexed_at: str_at(oip, &["indexedAt"]).map(str::to_owned),
            status: str_at(oip, &["recordStatus"]).map(str::to_owned),
            ver: str_at(oip, &["ver"]).map(str::to_owned),
            name: str_at(data, &["basic", "name"]).map(str::to_owned),
            description: str_at(data, &["basic", "description"]).map(str::to_owned),
            access_level: str_at(data, &["accessControl", "access_level"]).map(|s| s.trim().to_ascii_lowercase()),
            did,
            record_type,
            date,
            sched_date,
            filter_date,
            tags,
            owner,
            private_session,
            doc,
        })
    }
}

/// A template document (the original's `templates` index shape).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedTemplate {
    pub did: String,
    pub name: Option<String>,
    pub in_block: Option<i64>,
    pub creator_address: Option<String>,
    pub doc: String,
}

impl IndexedTemplate {
    /// A template has `data.template` (its name) and `data.fieldsInTemplate` or
    /// `data.fields`, and an `oip.did`/`oip.didTx` or `data.TxId`.
    pub fn from_value(v: &Value) -> Option<Self> {
        let data = v.get("data")?;
        let name = str_at(data, &["template"])?.to_owned();
        if data.get("fieldsInTemplate").is_none() && data.get("fields").is_none() {
            return None;
        }
        let oip = v.get("oip").unwrap_or(&Value::Null);
        let did = str_at(oip, &["did"])
            .or_else(|| str_at(oip, &["didTx"]))
            .map(str::to_owned)
            .or_else(|| str_at(data, &["TxId"]).map(|t| format!("did:arweave:{t}")))?;
        Some(IndexedTemplate {
            did,
            name: Some(name),
            in_block: int_at(oip, &["inArweaveBlock"]),
            creator_address: str_at(oip, &["creator", "didAddress"])
                .or_else(|| str_at(data, &["creator"]))
                .map(str::to_owned),
            doc: serde_json::to_string(v).ok()?,
        })
    }
}

/// JavaScript's `new Date(secs*1000).toDateString()` in UTC: "Wed Dec 27 2023".
/// Any `i64` is accepted (computed numerically; years may have any width).
pub fn date_readable(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs.div_euclid(86_400);
    let (y, m, d) = crate::civil::from_days(days);
    let year = if y < 0 { format!("-{:06}", -y) } else { format!("{y:04}") };
    format!("{} {} {:02} {}", DAYS[days.rem_euclid(7) as usize], MONTHS[(m - 1) as usize], d, year)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn indexes_the_fields_queries_need() {
        let v = json!({
            "data": {
                "basic": {"name": "Pasta", "description": "Good", "date": 1713783811, "tagItems": ["b", "a", "a"]},
                "workoutSchedule": {"scheduled_date": "1713800000"},
                "accessControl": {"access_level": "Private", "created_by": "pk1"}
            },
            "oip": {"did": "did:gun:abc:1", "recordType": "workoutSchedule", "inArweaveBlock": 5,
                    "creator": {"creatorHandle": "h", "didAddress": "did:arweave:A", "publicKey": "pk0"}}
        });
        let r = IndexedRecord::from_value(&v).unwrap();
        assert_eq!(r.did, "did:gun:abc:1");
        assert_eq!(r.storage.as_deref(), Some("gun"));
        assert_eq!(r.tags, vec!["a", "b"]);
        assert_eq!(r.sched_date, Some(1713800000));
        assert_eq!(r.filter_date, Some(1713800000));
        assert_eq!(r.date, Some(1713783811));
        assert_eq!(r.access_level.as_deref(), Some("private"));
        assert_eq!(r.owner.as_deref(), Some("pk1"));
        assert_eq!(r.creator_pubkey.as_deref(), Some("pk0"));
    }

    #[test]
    fn rejects_what_is_not_a_record() {
        assert_eq!(IndexedRecord::from_value(&json!([])), Err(RecordError::NotObject));
        assert_eq!(IndexedRecord::from_value(&json!({"data": {}})), Err(RecordError::NoOip));
        assert_eq!(IndexedRecord::from_value(&json!({"oip": {"did": "did:x:1"}})), Err(RecordError::NoData));
        assert_eq!(IndexedRecord::from_value(&json!({"oip": {"did": "x"}, "data": {}})), Err(RecordError::NoDid));
    }

    #[test]
    fn readable_dates_like_javascript() {
        assert_eq!(date_readable(1703635200), "Wed Dec 27 2023");
        assert_eq!(date_readable(1713783811), "Mon Apr 22 2024");
        assert_eq!(date_readable(0), "Thu Jan 01 1970");
        // any input, no panic: far past, far future, milliseconds by mistake
        assert_eq!(date_readable(-5_000_000_000_000), "Fri Apr 23 -156474");
        assert_eq!(date_readable(1_713_783_811_000), "Fri Aug 24 56277");
        for x in [i64::MIN, i64::MAX, -1, 253_402_300_800] {
            let _ = date_readable(x);
        }
    }
}
