//! The original's convenience publishers: bodies of `/api/publish/newPost`,
//! `newVideo`, `newImage`, `newWorkout`, `newRecipe` turned into records, and
//! references given by name (an exercise, an ingredient) resolved to DIDs
//! through the record store (`POST /api/workout/resolve-exercises` exposes the
//! same resolution). Missing exercises are published as new `exercise` records
//! only when the workout says `nonStandardWorkout`; missing ingredients as new
//! `nutritionalInfo` records (named only: this node has no Nutritionix).
//!
//! Bounds: at most [`MAX_REFS`] names resolved (and so records created) per
//! request; each lookup is one bounded store query.

use serde_json::{json, Map, Value};

use super::{PublishError, Publisher, Published};
use crate::oip::query;
use crate::store::{RecordStore, Viewer};

/// Bound: names resolved (and records created for missing ones) per request.
pub const MAX_REFS: usize = 64;

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The DID of the newest `record_type` record whose `basic.name` is `name`
/// (exact, then the closest by shared words, as the original's matcher).
pub async fn find_by_name(store: &dyn RecordStore, record_type: &str, name: &str) -> Result<Option<String>, PublishError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    let run = |pairs: Vec<(String, String)>| async move {
        let q = query::parse(&pairs, 0).map_err(|e| PublishError::BadRecord(e.to_string()))?;
        Ok::<_, PublishError>(store.search(&q, &Viewer::anonymous()).await?)
    };
    let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let exact = run(vec![p("recordType", record_type), p("fieldName", "basic.name"), p("fieldSearch", name), p("fieldMatchMode", "exact"), p("sortBy", "inArweaveBlock:desc"), p("limit", "1")]).await?;
    if let Some(row) = exact.rows.first() {
        return Ok(Some(row.did.clone()));
    }
    let loose = run(vec![p("recordType", record_type), p("search", name), p("searchMatchMode", "OR"), p("limit", "20")]).await?;
    let terms: Vec<String> = name.to_lowercase().split_whitespace().map(str::to_owned).collect();
    let mut best: Option<(usize, String)> = None;
    for row in &loose.rows {
        let doc: Value = serde_json::from_str(row.doc.get()).unwrap_or(Value::Null);
        let n = doc["data"]["basic"]["name"].as_str().unwrap_or("").to_lowercase();
        let hits = terms.iter().filter(|t| n.contains(t.as_str())).count();
        if hits > 0 && best.as_ref().is_none_or(|(b, _)| hits > *b) {
            best = Some((hits, row.did.clone()));
        }
    }
    Ok(best.map(|(_, d)| d))
}

/// `POST /api/workout/resolve-exercises`: `{exerciseDidRefs: {name: did|null},
/// missingExercises: [...]}` for the lower-cased names.
pub async fn resolve_exercises(store: &dyn RecordStore, names: &[String]) -> Result<Value, PublishError> {
    if names.len() > MAX_REFS {
        return Err(PublishError::BadRecord(format!("At most {MAX_REFS} exercise names per request")));
    }
    let mut refs = Map::new();
    let mut missing = Vec::new();
    for n in names {
        let key = n.trim().to_lowercase();
        let did = find_by_name(store, "exercise", &key).await?;
        if did.is_none() {
            missing.push(Value::String(key.clone()));
        }
        refs.insert(key, did.map_or(Value::Null, Value::String));
    }
    Ok(json!({"success": true, "exerciseDidRefs": refs, "missingExercises": missing}))
}

fn is_did(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with("did:"))
}

/// The name an exercise reference gives: a string, `{basic:{name}}` or
/// `{exercise:{basic:{name}}}` (the original's nested form).
fn ref_name(v: &Value, sub: &str) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get(sub).unwrap_or(v)["basic"]["name"].as_str().map(str::to_owned),
        _ => None,
    }
}

/// Publish a minimal record of `record_type` named `name`; its DID.
async fn create_named(p: &Publisher, record_type: &str, name: &str, extra: Option<&Value>) -> Result<String, PublishError> {
    let mut data = Map::new();
    data.insert("basic".into(), json!({"name": name, "language": "en", "date": now_secs()}));
    if let Some(Value::Object(o)) = extra {
        for (k, v) in o {
            if k != "basic" {
                data.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(p.record(record_type, data).await?.did)
}

/// `newWorkout`: exercise references by name → DIDs (missing ones created
/// when `nonStandardWorkout`, else left out), total duration when absent,
/// and the original's `basic` + `workout` sections.
pub async fn workout(p: &Publisher, store: &dyn RecordStore, body: &Map<String, Value>) -> Result<(Published, bool), PublishError> {
    let w = body.get("workout").and_then(Value::as_object).cloned().unwrap_or_default();
    let basic = body.get("basic").and_then(Value::as_object).cloned().unwrap_or_default();
    let non_standard = w.get("nonStandardWorkout").is_some_and(|v| v == true || v == "true");
    let given = match w.get("exercise") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    };
    if given.len() > MAX_REFS {
        return Err(PublishError::BadRecord(format!("workout.exercise: at most {MAX_REFS} exercises")));
    }
    let mut exercises = Vec::new();
    let mut total = 0.0f64;
    for e in &given {
        let did = if is_did(e) {
            e.as_str().map(str::to_owned)
        } else {
            let Some(name) = ref_name(e, "exercise") else {
                return Err(PublishError::BadRecord("workout.exercise: each entry is a DID, a name or {basic:{name}}".into()));
            };
            match find_by_name(store, "exercise", &name).await? {
                Some(d) => Some(d),
                None if non_standard => Some(create_named(p, "exercise", &name, e.get("exercise").or(Some(e))).await?),
                None => None,
            }
        };
        if let Some(d) = did {
            if let Some(raw) = store.fetch_one(&d, &Viewer::anonymous()).await? {
                let doc: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                total += doc["data"]["exercise"]["est_duration_minutes"].as_f64().unwrap_or(0.0);
            }
            exercises.push(Value::String(d));
        }
    }
    if exercises.len() > 1 {
        total += (exercises.len() - 1) as f64 * 2.0;
    }
    let get = |k: &str, default: Value| w.get(k).filter(|v| !v.is_null()).cloned().unwrap_or(default);
    let duration = match w.get("total_duration_minutes") {
        Some(v) if v.as_f64().is_some_and(|x| x > 0.0) => v.clone(),
        _ => json!(total),
    };
    let mut workout = Map::new();
    workout.insert("total_duration_minutes".into(), duration);
    for (k, d) in [
        ("estimated_calories_burned", json!(0)),
        ("includesWarmup", json!(false)),
        ("includesMain", json!(false)),
        ("includesCooldown", json!(false)),
    ] {
        workout.insert(k.into(), get(k, d));
    }
    workout.insert("nonStandardWorkout".into(), json!(non_standard));
    for k in ["exercise_amount", "exercise_unit", "exercise_comment"] {
        workout.insert(k.into(), get(k, json!([])));
    }
    workout.insert("exercise".into(), Value::Array(exercises));
    for k in ["instructions", "author", "notes"] {
        workout.insert(k.into(), get(k, json!("")));
    }
    if let Some(a) = w.get("authorDRef").filter(|v| is_did(v)) {
        workout.insert("authorDRef".into(), a.clone());
    }
    let bget = |k: &str, default: Value| basic.get(k).filter(|v| !v.is_null()).cloned().unwrap_or(default);
    let mut b = Map::new();
    b.insert("name".into(), bget("name", json!("")));
    b.insert("language".into(), bget("language", json!("en")));
    b.insert("date".into(), bget("date", json!(now_secs())));
    b.insert("description".into(), bget("description", json!("")));
    b.insert("webUrl".into(), bget("webUrl", json!("")));
    b.insert("nsfw".into(), bget("nsfw", json!(false)));
    b.insert("tagItems".into(), w.get("goalTags").cloned().unwrap_or(json!([])));
    let mut data = Map::new();
    data.insert("basic".into(), Value::Object(b));
    data.insert("workout".into(), Value::Object(workout));
    Ok((p.record("workout", data).await?, non_standard))
}

/// `newRecipe`: ingredient names → `nutritionalInfo` DIDs (missing ones
/// created, named), then the record as given. Progress goes to `progress`.
pub async fn recipe(
    p: &Publisher,
    store: &dyn RecordStore,
    mut body: Map<String, Value>,
    progress: &(dyn Fn(u8, String) + Send + Sync),
) -> Result<Published, PublishError> {
    let Some(Value::Object(mut r)) = body.remove("recipe") else {
        return Err(PublishError::BadRecord("recipe: the body needs a recipe section".into()));
    };
    let names = match r.get("ingredient") {
        Some(Value::Array(a)) => a.clone(),
        _ => return Err(PublishError::BadRecord("recipe.ingredient: an array of names or DIDs".into())),
    };
    if names.len() > MAX_REFS {
        return Err(PublishError::BadRecord(format!("recipe.ingredient: at most {MAX_REFS} ingredients")));
    }
    let mut dids = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        progress(10 + (60 * i / names.len().max(1)) as u8, format!("Resolving ingredient {} of {}", i + 1, names.len()));
        let did = if is_did(n) {
            n.as_str().unwrap_or_default().to_owned()
        } else {
            let Some(name) = n.as_str().filter(|s| !s.trim().is_empty()) else {
                return Err(PublishError::BadRecord(format!("recipe.ingredient[{i}]: a name or a DID")));
            };
            match find_by_name(store, "nutritionalInfo", name).await? {
                Some(d) => d,
                None => create_named(p, "nutritionalInfo", name.trim(), None).await?,
            }
        };
        dids.push(Value::String(did));
    }
    r.insert("ingredient".into(), Value::Array(dids));
    body.insert("recipe".into(), Value::Object(r));
    progress(80, "Publishing the recipe".into());
    p.record("recipe", body).await
}

/// `newPost`: the original drops empty media lists and an empty `replyTo`.
pub fn post(mut body: Map<String, Value>) -> Map<String, Value> {
    if let Some(Value::Object(post)) = body.get_mut("post") {
        post.retain(|k, v| match v {
            Value::Array(a) => !(a.is_empty() && k.ends_with("Items")),
            Value::String(s) => !(s.is_empty() && k == "replyTo"),
            Value::Null => k != "replyTo",
            _ => true,
        });
    }
    body
}

/// `newVideo` / `newImage`: `{basicMetadata, youtubeUrl|videoUrl|imageUrl}` →
/// `{basic, video|image: {webUrl, contentType}}`.
pub fn media(kind: &str, body: &Map<String, Value>) -> Result<Map<String, Value>, PublishError> {
    let meta = body.get("basicMetadata").and_then(Value::as_object).cloned().unwrap_or_default();
    let m = |k: &str, d: Value| meta.get(k).filter(|v| !v.is_null()).cloned().unwrap_or(d);
    let default_name = if kind == "video" { "Video Record" } else { "Image Record" };
    let basic = json!({
        "name": m("name", json!(default_name)), "description": m("description", json!("")), "language": m("language", json!("en")),
        "date": now_secs(), "nsfw": m("nsfw", json!(false)), "tagItems": m("tagItems", json!([])),
    });
    let url_keys: &[&str] = if kind == "video" { &["youtubeUrl", "videoUrl"] } else { &["imageUrl"] };
    let url = url_keys.iter().find_map(|k| body.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()));
    let mut section = Map::new();
    match url {
        Some(u) => {
            section.insert("webUrl".into(), json!(u));
            section.insert("contentType".into(), json!(if kind == "video" { "video/mp4" } else { "image/jpeg" }));
        }
        None if kind == "image" => return Err(PublishError::BadRecord("Either imageUrl or imageFile must be provided (imageFile: upload it with /api/media/upload first)".into())),
        None => {}
    }
    let mut out = Map::new();
    out.insert("basic".into(), basic);
    out.insert(kind.into(), Value::Object(section));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_cleanup_as_the_original() {
        let b = json!({"basic": {"name": "n"}, "post": {"imageItems": [], "videoItems": ["did:arweave:x"], "replyTo": "", "articleText": ""}});
        let out = post(b.as_object().unwrap().clone());
        assert_eq!(Value::Object(out), json!({"basic": {"name": "n"}, "post": {"videoItems": ["did:arweave:x"], "articleText": ""}}));
    }

    #[test]
    fn media_bodies() {
        let b = json!({"youtubeUrl": "https://y/1", "basicMetadata": {"name": "V"}});
        let v = media("video", b.as_object().unwrap()).unwrap();
        assert_eq!(v["video"], json!({"webUrl": "https://y/1", "contentType": "video/mp4"}));
        assert_eq!(v["basic"]["name"], "V");
        assert!(matches!(media("image", &Map::new()), Err(PublishError::BadRecord(_))));
        assert_eq!(ref_name(&json!({"exercise": {"basic": {"name": "Squat"}}}), "exercise").as_deref(), Some("Squat"));
        assert_eq!(ref_name(&json!({"basic": {"name": "Lunge"}}), "exercise").as_deref(), Some("Lunge"));
    }
}
