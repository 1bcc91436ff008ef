//! `/api/records` over real HTTP: the original's parameters and response keys,
//! real totals, sorting over the whole result set, 400s naming the parameter,
//! deep resolution semantics, and the privacy matrix through every path.

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::{json, Value};

const ALICE: &str = "alice-key";

fn d(x: &str) -> String {
    format!("did:arweave:{x}")
}

/// A small, fully known store.
fn fixture() -> Vec<Value> {
    let private = json!({"accessControl": {"access_level": "private", "owner_public_key": ALICE}});
    let mut secret = record(&d("exP"), "exercise", "Secret Move", json!({"exercise": {"equipmentRequired": ["dumbbell"], "exercise_type": "Main"}}));
    secret["data"]["accessControl"] = private["accessControl"].clone();
    secret["data"]["basic"]["tagItems"] = json!(["strength"]);
    let mut sched1 = record(&d("s1"), "workoutSchedule", "Monday", json!({"workoutSchedule": {"scheduled_date": 1713783811, "workout": [d("w1")]}}));
    sched1["data"]["basic"]["date"] = json!(1000);
    let mut sched2 = record(&d("s2"), "workoutSchedule", "Later", json!({"workoutSchedule": {"scheduled_date": 1714560000, "workout": [d("w2")]}}));
    sched2["data"]["basic"]["date"] = json!(1000);
    let mut v = vec![
        record(&d("ex1"), "exercise", "Push-up", json!({"exercise": {"equipmentRequired": [], "exercise_type": "Main"}})),
        record(&d("ex2"), "exercise", "Dumbbell Press", json!({"exercise": {"equipmentRequired": ["dumbbell", "bench"], "exercise_type": "Main"}})),
        record(&d("ex3"), "exercise", "Jog", json!({"exercise": {"equipmentRequired": [], "exercise_type": "Warm-Up"}})),
        secret,
        record(&d("w1"), "workout", "Upper body", json!({"workout": {"exercise": [d("ex1"), d("ex2"), d("exP"), d("missing")], "nonStandardWorkout": false}})),
        record(&d("w2"), "workout", "Loop A", json!({"workout": {"related": d("w3"), "exercise": [d("ex3")]}})),
        record(&d("w3"), "workout", "Loop B", json!({"workout": {"related": d("w2")}})),
        record(&d("i1"), "nutritionalInfo", "beef", json!({"nutritionalInfo": {"calories": 250}})),
        record(&d("i2"), "nutritionalInfo", "tomato", json!({"nutritionalInfo": {"calories": 20}})),
        record(&d("r1"), "recipe", "Pasta Bake", json!({"recipe": {"ingredient": [d("i1"), d("i2")], "ingredient_comment": ["ground", "diced"], "cuisine": "Italian"}})),
        record(&d("r2"), "recipe", "Taco Night", json!({"recipe": {"ingredient": [d("i1"), "lime"], "cuisine": "Mexican"}})),
        sched1,
        sched2,
        record(&d("p1"), "post", "Podcast", json!({"post": {"audioItems": [d("a1")]}})),
        record(&d("del"), "delete", "deletion", json!({"delete": {"did": d("gone")}})),
    ];
    // tags, descriptions, blocks
    let tags: &[(&str, &[&str], &str)] = &[
        ("ex1", &["strength", "chest"], "A classic bodyweight press"),
        ("ex2", &["strength"], "Chest work with dumbbells"),
        ("ex3", &["cardio"], "Easy pace running"),
        ("r1", &["dinner", "italian"], "Baked pasta with beef"),
        ("r2", &["dinner"], "Tacos with lime"),
    ];
    for (i, rec) in v.iter_mut().enumerate() {
        rec["oip"]["inArweaveBlock"] = json!(1_600_000 + i as i64);
        let did = rec["oip"]["did"].as_str().unwrap().to_owned();
        if let Some((_, t, desc)) = tags.iter().find(|(x, _, _)| d(x) == did) {
            rec["data"]["basic"]["tagItems"] = json!(t);
            rec["data"]["basic"]["description"] = json!(desc);
        }
    }
    // a GUN record without a block, owned by alice, public
    let mut gun = record("did:gun:abcdef012345:note1", "note", "Gun note", json!({}));
    gun["oip"].as_object_mut().unwrap().remove("inArweaveBlock");
    v.push(gun);
    v
}

async fn server() -> TestServer {
    let t = TestServer::start().await;
    t.seed(&fixture()).await;
    t
}

fn names(v: &Value) -> BTreeSet<String> {
    v["records"].as_array().unwrap().iter().map(|r| r["data"]["basic"]["name"].as_str().unwrap_or("").to_owned()).collect()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn response_shape_and_real_totals() {
    each_backend(|| async {
        let t = server().await;
        let (s, v) = t.get_json("/api/records?recordType=exercise&limit=2&page=1&forceRefresh=true", None).await;
        assert_eq!(s, 200);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["message", "latestArweaveBlockInDB", "indexingProgress", "totalRecords", "pageSize", "currentPage", "searchResults", "queryParams", "totalPages", "records", "auth"]
        );
        assert_eq!(v["message"], "Records retrieved successfully");
        assert_eq!(v["searchResults"], 3, "public exercises (the private one is hidden)");
        assert_eq!(v["totalPages"], 2);
        assert_eq!(v["pageSize"], 2);
        assert_eq!(v["records"].as_array().unwrap().len(), 2);
        // all public, non-delete records
        assert_eq!(v["totalRecords"], 15);
        assert_eq!(v["latestArweaveBlockInDB"], 1_600_014);
        assert_eq!(v["queryParams"], json!({"recordType": "exercise", "limit": "2", "page": "1", "forceRefresh": "true"}));
        assert_eq!(v["auth"], json!({"authenticated": false, "user": null}));
        // record shape: {data, oip}, dateReadable inside basic
        let r = &v["records"][0];
        assert!(r["oip"]["did"].is_string());
        assert_eq!(r["data"]["basic"]["dateReadable"], "Mon Apr 22 2024");
        // queryParams never echoes auth
        let (_, v) = t.get_json("/api/records?limit=1", Some(&token(ALICE))).await;
        assert_eq!(v["queryParams"], json!({"limit": "1"}));
        assert_eq!(v["auth"]["authenticated"], true);
        assert_eq!(v["auth"]["user"]["publicKey"], ALICE);
    })
    .await;
}

#[tokio::test]
async fn totals_are_not_capped() {
    each_backend(|| async {
        let t = TestServer::start().await;
        let n = t.seed_demo(9).await;
        assert!(n > 5000);
        let (_, v) = t.get_json("/api/records?limit=1", None).await;
        assert_eq!(v["totalRecords"], n - 1, "all but the private profile");
        assert_eq!(v["searchResults"], n - 1);
        assert_eq!(v["totalPages"], n - 1);
        let (_, v) = t.get_json("/api/records?recordType=workoutSchedule&limit=1000&page=2", None).await;
        assert_eq!(v["searchResults"], 1800);
        assert_eq!(v["records"].as_array().unwrap().len(), 800);
    })
    .await;
}

#[tokio::test]
async fn filters() {
    each_backend(|| async {
        let t = server().await;
        let cases: Vec<(&str, &[&str])> = vec![
            ("recordType=exercise", &["Push-up", "Dumbbell Press", "Jog"]),
            ("recordType=EXERCISE", &["Push-up", "Dumbbell Press", "Jog"]),
            ("did=did:arweave:ex2", &["Dumbbell Press"]),
            ("didTx=did:arweave:ex2", &["Dumbbell Press"]),
            ("source=gun", &["Gun note"]),
            ("didTxRef=did:arweave:ex", &["Upper body", "Loop A"]),
            ("template=nutritional", &["beef", "tomato"]),
            ("creatorHandle=h&recordType=recipe", &["Pasta Bake", "Taco Night"]),
            ("inArweaveBlock=1600001", &["Dumbbell Press"]),
            ("inArweaveBlock=bad", &["Gun note"]),
            ("search=pasta", &["Pasta Bake"]),
            ("search=dumbbell%20chest", &["Dumbbell Press"]),
            ("search=dumbbell%20chest&searchMatchMode=OR", &["Dumbbell Press", "Push-up"]),
            ("search=press", &["Dumbbell Press", "Push-up"]),
            ("tags=strength", &["Push-up", "Dumbbell Press"]),
            ("tags=strength,cardio", &["Push-up", "Dumbbell Press", "Jog"]),
            ("tags=strength,chest&tagsMatchMode=AND", &["Push-up"]),
            ("fieldName=basic.name&fieldSearch=loop", &["Loop A", "Loop B"]),
            ("fieldName=basic.name&fieldSearch=loop%20a&fieldMatchMode=exact", &["Loop A"]),
            ("fieldName=workout.nonStandardWorkout&fieldSearch=false", &["Upper body"]),
            ("exactMatch=%7B%22data.recipe.cuisine%22%3A%22Italian%22%7D", &["Pasta Bake"]),
            ("recordType=workoutSchedule&dateStart=1713700000&dateEnd=1713800000", &["Monday"]),
            // ISO dates and date-times, as the pages send them (an end date covers its day)
            ("recordType=workoutSchedule&dateStart=2024-04-21T11:46:40Z&dateEnd=2024-04-22T15:33:20%2B00:00", &["Monday"]),
            ("recordType=workoutSchedule&dateStart=2024-04-22&dateEnd=2024-04-22", &["Monday"]),
            ("scheduledOn=2024-05-01", &["Later"]),
            ("recordType=exercise&equipmentRequired=dumbbell", &["Dumbbell Press"]),
            ("recordType=exercise&equipmentRequired=dumbbell,bench", &["Dumbbell Press"]),
            ("recordType=exercise&equipmentRequired=dumbbell,kettlebell", &[]),
            ("recordType=exercise&equipmentRequired=kettlebell&equipmentMatchMode=OR", &["Push-up", "Jog"]),
            ("recordType=exercise&exerciseType=warmup", &["Jog"]),
            ("cuisine=ital", &["Pasta Bake"]),
            ("ingredientNames=beef", &["Pasta Bake", "Taco Night"]),
            ("ingredientNames=lime", &["Taco Night"]),
            ("exerciseNames=push", &["Upper body"]),
            ("exerciseNames=secret", &[]),
            ("exerciseDIDs=did:arweave:ex3", &["Loop A"]),
            ("hasAudio=true", &["Podcast"]),
            ("includeDeleteMessages=true&recordType=delete", &["deletion"]),
            ("recordType=delete", &[]),
            ("url=nope", &[]),
        ];
        for (q, want) in cases {
            let (s, v) = t.get_json(&format!("/api/records?limit=100&{q}"), None).await;
            assert_eq!(s, 200, "{q}: {v}");
            assert_eq!(names(&v), set(want), "{q}");
            assert_eq!(v["searchResults"], want.len(), "{q}");
        }
    })
    .await;
}

#[tokio::test]
async fn scores_and_score_sorting() {
    each_backend(|| async {
        let t = server().await;
        let (_, v) = t.get_json("/api/records?tags=strength,chest&sortBy=score:desc", None).await;
        let recs = v["records"].as_array().unwrap();
        assert_eq!(recs[0]["data"]["basic"]["name"], "Push-up");
        assert_eq!(recs[0]["score"], 1.0);
        assert_eq!(recs[1]["score"], 0.5);
        let (_, v) = t.get_json("/api/records?search=dumbbell%20chest&searchMatchMode=OR&sortBy=matchCount:desc", None).await;
        assert_eq!(v["records"][0]["data"]["basic"]["name"], "Dumbbell Press");
        assert_eq!(v["records"][0]["matchCount"], 2);
        let (_, v) = t.get_json("/api/records?recordType=exercise&equipmentRequired=dumbbell,bench", None).await;
        assert_eq!(v["records"][0]["equipmentScore"], 1.0);
        assert_eq!(v["records"][0]["equipmentMatchedCount"], 2);
        let (_, v) = t.get_json("/api/records?ingredientNames=beef,lime", None).await;
        assert_eq!(v["records"][0]["data"]["basic"]["name"], "Taco Night", "ingredientScore sorts by default");
        assert_eq!(v["records"][0]["ingredientScore"], 1.0);
        assert_eq!(v["records"][1]["ingredientScore"], 0.5);
    })
    .await;
}

#[tokio::test]
async fn sorting_is_over_the_whole_result_set() {
    each_backend(|| async {
        let t = TestServer::start().await;
        t.seed_demo(1).await;
        for sort in ["date:asc", "date:desc", "inArweaveBlock:asc", "scheduleDate:asc", "recordType:asc", "indexedAt:desc"] {
            let key = |r: &Value| -> Value {
                match sort.split(':').next().unwrap() {
                    "date" => r["data"]["basic"]["date"].clone(),
                    "inArweaveBlock" => r["oip"]["inArweaveBlock"].clone(),
                    "scheduleDate" => r["data"]["workoutSchedule"]["scheduled_date"].clone(),
                    "recordType" => r["oip"]["recordType"].clone(),
                    _ => r["oip"]["indexedAt"].clone(),
                }
            };
            let mut all = Vec::new();
            for page in 1..=4 {
                let (_, v) = t.get_json(&format!("/api/records?recordType=workoutSchedule&limit=50&page={page}&sortBy={sort}"), None).await;
                all.extend(v["records"].as_array().unwrap().iter().map(key));
            }
            assert_eq!(all.len(), 200);
            let cmp = |a: &Value, b: &Value| match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => a.as_str().cmp(&b.as_str()),
            };
            let desc = sort.ends_with("desc");
            for w in all.windows(2) {
                let o = cmp(&w[0], &w[1]);
                assert!(if desc { o.is_ge() } else { o.is_le() }, "{sort}: {:?} then {:?}", w[0], w[1]);
            }
        }
        // noDuplicates keeps one per name, with the real total
        let (_, v) = t.get_json("/api/records?recordType=exercise&noDuplicates=true&limit=100", None).await;
        let n = v["records"].as_array().unwrap().len();
        assert_eq!(names(&v).len(), n);
        assert_eq!(v["searchResults"], n);
    })
    .await;
}

#[tokio::test]
async fn malformed_parameters_are_400_naming_the_parameter() {
    each_backend(|| async {
        let t = server().await;
        for (q, param) in [
            ("limit=abc", "limit"),
            ("page=0", "page"),
            ("resolveDepth=deep", "resolveDepth"),
            ("resolveDepth=99", "resolveDepth"),
            ("sortBy=col%20or:asc", "sortBy"),
            ("sortBy=basic.name:sideways", "sortBy"),
            ("exactMatch=%7Bnot%20json", "exactMatch"),
            ("exactMatch=%7B%22a%22%3A%7B%22b%22%3A%7B%22c%22%3A1%7D%7D%7D", "exactMatch"),
            ("dateStart=tomorrow", "dateStart"),
            ("dateEnd=2024-02-30", "dateEnd"),
            ("source=mars", "source"),
        ] {
            let (s, v) = t.get_json(&format!("/api/records?{q}"), None).await;
            assert_eq!(s, 400, "{q}");
            let e = v["error"].as_str().unwrap();
            assert!(e.contains(param), "{q}: {e}");
        }
        let (s, v) = t.get_json("/api/records?limit=999999", None).await;
        assert_eq!(s, 200);
        assert_eq!(v["pageSize"], 1000, "limit is clamped to the documented maximum");
    })
    .await;
}

/// Lenient where the original's pages rely on it: an unknown `sortBy` field keeps
/// the default order (the original's silent fallback) and the answer names the
/// ignored parameter; `basic.*` fields sort.
#[tokio::test]
async fn unknown_sort_fields_fall_back_and_basic_fields_sort() {
    each_backend(|| async {
        let t = server().await;
        let names = |v: &Value| -> Vec<String> { v["records"].as_array().unwrap().iter().map(|r| r["data"]["basic"]["name"].as_str().unwrap_or("").to_owned()).collect() };
        let r = t.get_raw_path("/api/records?recordType=exercise&sortBy=color:asc&limit=50", "").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("oip-ignored-parameters"), Some("sortBy"));
        let (_, default) = t.get_json("/api/records?recordType=exercise&limit=50", None).await;
        assert_eq!(names(&r.json()), names(&default), "the default order stands");
        let plain = t.get_raw_path("/api/records?recordType=exercise&limit=50", "").await;
        assert_eq!(plain.header("oip-ignored-parameters"), None);

        for dir in ["asc", "desc"] {
            let (s, v) = t.get_json(&format!("/api/records?recordType=exercise&sortBy=basic.name:{dir}&limit=50"), None).await;
            assert_eq!(s, 200);
            let got = names(&v);
            let mut want = got.clone();
            want.sort();
            if dir == "desc" {
                want.reverse();
            }
            assert!(got.len() > 2);
            assert_eq!(got, want, "sortBy=basic.name:{dir}");
        }
        // another basic.* scalar sorts too (by value, missing last)
        let (s, v) = t.get_json("/api/records?sortBy=basic.date:asc&limit=1000", None).await;
        assert_eq!(s, 200);
        let dates: Vec<i64> = v["records"].as_array().unwrap().iter().filter_map(|r| r["data"]["basic"]["date"].as_i64()).collect();
        assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{dates:?}");
    })
    .await;
}

#[tokio::test]
async fn deep_resolution() {
    each_backend(|| async {
        let t = server().await;
        // depth 1: workout's exercises become full records; missing and private stay DIDs
        let (_, v) = t.get_json("/api/records?did=did:arweave:w1&resolveDepth=1", None).await;
        let ex = &v["records"][0]["data"]["workout"]["exercise"];
        assert_eq!(ex[0]["data"]["basic"]["name"], "Push-up");
        assert_eq!(ex[0]["oip"]["did"], d("ex1"));
        assert_eq!(ex[2], d("exP"), "a private reference stays a DID for anonymous");
        assert_eq!(ex[3], d("missing"));
        // the owner sees the private one resolved
        let (_, v) = t.get_json("/api/records?did=did:arweave:w1&resolveDepth=1", Some(&token(ALICE))).await;
        assert_eq!(v["records"][0]["data"]["workout"]["exercise"][2]["data"]["basic"]["name"], "Secret Move");
        // depth 0 / omitted: nothing resolved
        let (_, v) = t.get_json("/api/records?did=did:arweave:w1", None).await;
        assert_eq!(v["records"][0]["data"]["workout"]["exercise"][0], d("ex1"));
        // depth 2 through a schedule
        let (_, v) = t.get_json("/api/records?did=did:arweave:s1&resolveDepth=2", None).await;
        let w = &v["records"][0]["data"]["workoutSchedule"]["workout"][0];
        assert_eq!(w["data"]["basic"]["name"], "Upper body");
        assert_eq!(w["data"]["workout"]["exercise"][1]["data"]["basic"]["name"], "Dumbbell Press");
        // depth 1 through a schedule: the workout's own references stay strings
        let (_, v) = t.get_json("/api/records?did=did:arweave:s1&resolveDepth=1", None).await;
        assert_eq!(v["records"][0]["data"]["workoutSchedule"]["workout"][0]["data"]["workout"]["exercise"][0], d("ex1"));
        // cycles: w2 → w3 → w2 is a circular stub
        let (_, v) = t.get_json("/api/records?did=did:arweave:w2&resolveDepth=5", None).await;
        let w3 = &v["records"][0]["data"]["workout"]["related"];
        assert_eq!(w3["data"]["basic"]["name"], "Loop B");
        let back = &w3["data"]["workout"]["related"];
        assert_eq!(back["_circular"], true);
        assert_eq!(back["oip"]["did"], d("w2"));
        assert_eq!(back["data"].as_object().unwrap().keys().collect::<Vec<_>>(), ["basic"]);
        // resolveNamesOnly, with the ingredient comment rule
        let (_, v) = t.get_json("/api/records?did=did:arweave:r1&resolveDepth=1&resolveNamesOnly=true", None).await;
        assert_eq!(v["records"][0]["data"]["recipe"]["ingredient"], json!(["ground beef", "tomato, diced"]));
        // resolveFieldName limits what is resolved
        let (_, v) = t.get_json("/api/records?did=did:arweave:w2&resolveDepth=1&resolveFieldName=workout.exercise", None).await;
        assert_eq!(v["records"][0]["data"]["workout"]["related"], d("w3"));
        assert_eq!(v["records"][0]["data"]["workout"]["exercise"][0]["data"]["basic"]["name"], "Jog");
        // shaping
        let (_, v) = t.get_json("/api/records?did=did:arweave:w1&resolveDepth=1&includePubKeys=false&hideDateReadable=true", None).await;
        assert!(v["records"][0]["oip"]["creator"].get("publicKey").is_none());
        assert!(v["records"][0]["data"]["basic"].get("dateReadable").is_none());
        assert!(v["records"][0]["data"]["workout"]["exercise"][0]["oip"]["creator"].get("publicKey").is_none());
    })
    .await;
}

#[tokio::test]
async fn resolution_bounds_refuse_before_any_body() {
    each_backend(|| async {
        let t = TestServer::start_with(|c| c.records.resolve_max_nodes = 3).await;
        t.seed(&fixture()).await;
        // s1 → w1 → ex1, ex2: four records
        let (s, v) = t.get_json("/api/records?did=did:arweave:s1&resolveDepth=2", None).await;
        assert_eq!(s, 413);
        assert!(v["error"].as_str().unwrap().contains("more than 3"), "{v}");
        // w1 → ex1, ex2 (the private and the missing ones stay strings): exactly three
        let (s, _) = t.get_json("/api/records?did=did:arweave:w1&resolveDepth=1", None).await;
        assert_eq!(s, 200);
    })
    .await;
}

#[tokio::test]
async fn privacy_matrix() {
    each_backend(|| async {
        let t = server().await;
        let alice = token(ALICE);
        let bob = token("bob-key");
        let forged = oipd::auth::Auth::new(Some("other")).mint(&oipd::auth::Claims { public_key: Some(ALICE.into()), ..Default::default() });
        let expired = oipd::auth::Auth::new(Some(SECRET))
            .mint(&oipd::auth::Claims { public_key: Some(ALICE.into()), exp: Some(1), ..Default::default() });
        let callers: [(&str, Option<&str>, bool); 6] = [
            ("expired token", Some(&expired), false),
            ("anonymous", None, false),
            ("owner", Some(&alice), true),
            ("other", Some(&bob), false),
            ("garbage token", Some("x.y.z"), false),
            ("forged token", Some(&forged), false),
        ];
        for (who, tok, sees) in callers {
            // list and direct fetch
            let (_, v) = t.get_json("/api/records?recordType=exercise&limit=100", tok).await;
            assert_eq!(names(&v).contains("Secret Move"), sees, "list as {who}");
            assert_eq!(v["searchResults"], if sees { 4 } else { 3 }, "count as {who}");
            assert_eq!(v["totalRecords"], if sees { 16 } else { 15 }, "totalRecords as {who}");
            let (_, v) = t.get_json("/api/records?did=did:arweave:exP", tok).await;
            assert_eq!(v["searchResults"], if sees { 1 } else { 0 }, "did as {who}");
            // search and tags
            let (_, v) = t.get_json("/api/records?search=secret", tok).await;
            assert_eq!(v["searchResults"], if sees { 1 } else { 0 }, "search as {who}");
            let (_, v) = t.get_json("/api/records?tags=strength&summarizeTags=true", tok).await;
            let strength = v["tagSummary"].as_array().unwrap().iter().find(|t| t["tag"] == "strength").unwrap()["count"].clone();
            assert_eq!(strength, if sees { 3 } else { 2 }, "tag summary as {who}");
            // record type counts
            let (_, v) = t.get_json("/api/records/recordTypes", tok).await;
            let ex = v["recordTypes"].as_array().unwrap().iter().find(|r| r["recordType"] == "exercise").unwrap()["count"].clone();
            assert_eq!(ex, if sees { 4 } else { 3 }, "recordTypes as {who}");
            // resolution
            let (_, v) = t.get_json("/api/records?did=did:arweave:w1&resolveDepth=2", tok).await;
            let ex = &v["records"][0]["data"]["workout"]["exercise"][2];
            assert_eq!(ex.is_object(), sees, "resolution as {who}");
            // name matching through references
            let (_, v) = t.get_json("/api/records?exerciseNames=secret", tok).await;
            assert_eq!(v["searchResults"], if sees { 1 } else { 0 }, "exerciseNames as {who}");
            // the body never contains the private name for those who may not see it
            let (_, v) = t.get_json("/api/records?limit=100&resolveDepth=3", tok).await;
            assert_eq!(v.to_string().contains("Secret Move"), sees, "full dump as {who}");
        }
    })
    .await;
}

#[tokio::test]
async fn tag_summary_variant() {
    each_backend(|| async {
        let t = server().await;
        let (_, v) = t.get_json("/api/records?summarizeTags=true&tagCount=2&recordType=exercise", None).await;
        assert_eq!(v["tagSummary"], json!([{"tag": "strength", "count": 2}, {"tag": "cardio", "count": 1}]));
        assert_eq!(v["tagCount"], 3);
        assert!(v.get("queryParams").is_none());
        assert_eq!(v["records"][0]["score"], 1.0);
        let (_, v) = t.get_json("/api/records?summarizeTags=true&tagCount=2&tagPage=2&recordType=exercise", None).await;
        assert_eq!(v["tagSummary"], json!([{"tag": "chest", "count": 1}]));
    })
    .await;
}

#[tokio::test]
async fn writes() {
    each_backend(|| async {
        let t = server().await;
        let alice = token(ALICE);
        // auth required
        let (s, v) = t.post_json("/api/records/newRecord?recordType=note&storage=gun", None, &json!({"basic": {"name": "x"}})).await;
        assert_eq!((s, v), (401, json!({"error": "No token provided"})));
        // gun storage: did:gun:<sha256(key)[0..12]>:<localId>, private by default
        let (s, v) = t
            .post_json("/api/records/newRecord?recordType=note&storage=gun&localId=n1", Some(&alice), &json!({"basic": {"name": "Alice note"}, "note": {"text": "hi"}, "blockchain": "x"}))
            .await;
        assert_eq!(s, 200, "{v}");
        let hash = &oipd::http::etag::sha256_hex(ALICE.as_bytes()).unwrap()[..12];
        assert_eq!(v["did"], format!("did:gun:{hash}:n1"));
        assert_eq!(v["storage"], "gun");
        assert!(v["recordToIndex"]["data"].get("blockchain").is_none(), "request options stay out of the record");
        let did = v["did"].as_str().unwrap().to_owned();
        let (_, l) = t.get_json(&format!("/api/records?did={did}"), None).await;
        assert_eq!(l["searchResults"], 0, "private by default");
        let (_, l) = t.get_json(&format!("/api/records?did={did}"), Some(&alice)).await;
        assert_eq!(l["searchResults"], 1);
        // no wallet configured: arweave publishing says so (tests/it/publish.rs has the rest)
        let (s, v) = t.post_json("/api/records/newRecord?recordType=note&storage=arweave", Some(&alice), &json!({"basic": {"name": "x"}})).await;
        assert_eq!(s, 503, "{v}");
        let (s, _) = t.post_json("/api/records/newRecord?recordType=note&storage=gun", Some(&alice), &json!(["not", "sections"])).await;
        assert_eq!(s, 400);
        // delete: others get 404 for private (no existence leak), 403 for public not theirs
        let bob = token("bob-key");
        let (s, _) = t.post_json("/api/records/deleteRecord", Some(&bob), &json!({"delete": {"did": did}})).await;
        assert_eq!(s, 404);
        let (s, _) = t.post_json("/api/records/deleteRecord", Some(&bob), &json!({"delete": {"did": d("ex1")}})).await;
        assert_eq!(s, 403);
        let (s, _) = t.post_json("/api/records/deleteRecord", Some(&bob), &json!({"nope": 1})).await;
        assert_eq!(s, 400);
        let (s, v) = t.post_json("/api/records/deleteRecord", Some(&alice), &json!({"delete": {"did": did}})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["deletedCount"], 1);
        let (_, l) = t.get_json(&format!("/api/records?did={did}"), Some(&alice)).await;
        assert_eq!(l["searchResults"], 0);
        // the private exercise is alice's (owner_public_key)
        let (s, _) = t.post_json("/api/records/deleteRecord", Some(&alice), &json!({"delete": {"did": d("exP")}})).await;
        assert_eq!(s, 200);
        // calendar-scoped tokens are read-only and limited to calendar types
        let cal = oipd::auth::Auth::new(Some(SECRET)).mint(&oipd::auth::Claims {
            public_key: Some(ALICE.into()),
            extra: [("scope".to_string(), json!("calendar-read-only"))].into_iter().collect(),
            ..Default::default()
        });
        let (s, _) = t.get_json("/api/records?recordType=exercise", Some(&cal)).await;
        assert_eq!(s, 403);
        let (s, _) = t.get_json("/api/records?recordType=workoutSchedule", Some(&cal)).await;
        assert_eq!(s, 200);
        let (s, _) = t.post_json("/api/records/newRecord?storage=gun&recordType=note", Some(&cal), &json!({"basic": {}})).await;
        assert_eq!(s, 403);
        // naming no type, or any other type beside a calendar one, is refused too
        for q in ["", "?did=did:arweave:exP", "?search=secret", "?exerciseNames=secret&resolveDepth=2", "?recordType=workoutSchedule&recordType=exercise", "?recordType=workoutSchedule,exercise"] {
            let (s, v) = t.get_json(&format!("/api/records{q}"), Some(&cal)).await;
            assert_eq!(s, 403, "{q}: {v}");
        }
        let (s, _) = t.get_json("/api/records/recordTypes", Some(&cal)).await;
        assert_eq!(s, 403);
        // and it has no media rights: it cannot upload, and reads as anonymous
        let (s, _) = t.upload(Some(&cal), b"GIF89a".to_vec(), "image/gif", None).await;
        assert_eq!(s, 403);
        let (_, v) = t.upload(Some(&alice), b"GIF89a-private".to_vec(), "image/gif", None).await;
        let r = reqwest::Client::new().get(t.url(&format!("/api/media/{}", v["mediaId"].as_str().unwrap()))).bearer_auth(&cal).send().await.unwrap();
        assert_eq!(r.status(), 401);
    })
    .await;
}

#[tokio::test]
async fn templates_endpoint() {
    each_backend(|| async {
        let t = TestServer::start().await;
        let dir = t.dir.path().join("import");
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("templates.ndjson");
        let lines = [
            json!({"_index": "templates", "_id": "did:arweave:T1", "_source": {"data": {"TxId": "T1", "template": "exercise", "fieldsInTemplate": {"name": {"type": "string", "index": 0}}}, "oip": {"did": "did:arweave:T1", "inArweaveBlock": 10, "creator": {"didAddress": "did:arweave:C"}}}}),
            json!({"_index": "templates", "_id": "did:arweave:T2", "_source": {"data": {"TxId": "T2", "template": "recipe", "fieldsInTemplate": {}}, "oip": {"did": "did:arweave:T2", "inArweaveBlock": 20}}}),
        ];
        std::fs::write(&f, lines.iter().map(|l| l.to_string() + "\n").collect::<String>()).unwrap();
        let stores = t.server.state.stores.clone();
        let s = tokio::task::spawn_blocking(move || {
            oipd::records::import::import_files(&stores, &tokio::runtime::Handle::current(), &[f], false)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(s.templates, 2);
        let (_, v) = t.get_json("/api/templates", None).await;
        assert_eq!(v["message"], "Templates retreived successfully");
        assert_eq!(v["totalTemplates"], 2);
        assert_eq!(v["templates"][0]["data"]["template"], "recipe", "newest block first");
        let (_, v) = t.get_json("/api/templates?templateName=exer", None).await;
        assert_eq!(v["totalTemplates"], 1);
        let (_, v) = t.get_json("/api/templates?sortBy=inArweaveBlock:asc", None).await;
        assert_eq!(v["templates"][0]["data"]["template"], "exercise");
    })
    .await;
}

#[tokio::test]
async fn hostile_dates_render_instead_of_panicking() {
    each_backend(|| async {
        let t = server().await;
        let alice = token(ALICE);
        for date in [json!(-5_000_000_000_000i64), json!(1_713_783_811_000i64), json!(i64::MAX), json!("not a date"), json!(1e300)] {
            let (s, _) = t
                .post_json(
                    "/api/records/newRecord?recordType=post&storage=gun",
                    Some(&alice),
                    &json!({"basic": {"name": "dated", "date": date}, "accessControl": {"access_level": "public"}}),
                )
                .await;
            assert_eq!(s, 200);
        }
        let (s, v) = t.get_json("/api/records?source=gun&limit=100", None).await;
        assert_eq!(s, 200, "complete JSON: {v}");
        assert!(v["records"].as_array().unwrap().len() >= 5);
    })
    .await;
}

#[tokio::test]
async fn resolution_over_its_byte_or_doc_bound_answers_413_promptly() {
    each_backend(|| async {
        // Regression: the store kept streaming into a channel nobody read once the
        // byte bound was passed, and the request hung holding a reader.
        for (bytes, docs) in [(300usize, 50_000usize), (32 << 20, 1)] {
            let t = TestServer::start_with(|c| {
                c.records.resolve_max_bytes = bytes;
                c.records.resolve_max_docs = docs;
            })
            .await;
            let mut many = fixture();
            // a record referencing 200 others: far more than the store's fetch queue
            let refs: Vec<String> = (0..200).map(|i| d(&format!("bulk{i}"))).collect();
            for (i, r) in refs.iter().enumerate() {
                many.push(record(r, "exercise", &format!("Bulk {i}"), json!({"exercise": {"instructions": "x".repeat(200)}})));
            }
            many.push(record(&d("hub"), "workout", "Hub", json!({"workout": {"exercise": refs}})));
            t.seed(&many).await;
            for _ in 0..6 {
                let r = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    t.get_json("/api/records?did=did:arweave:hub&resolveDepth=1", None),
                )
                .await
                .expect("answered, not hung");
                assert_eq!(r.0, 413, "{}", r.1);
            }
            // every reader is free again
            let (s, _) = t.get_json("/api/records?limit=5", None).await;
            assert_eq!(s, 200);
            assert_eq!(t.bound(crate::common::current_backend().pool_bound).await.1, 0);
        }
    })
    .await;
}

/// Any level other than public (organization, shared, or unknown words) is the
/// owner's alone, through every path: list, did, search, counts, HEAD.
#[tokio::test]
async fn non_public_levels_are_owner_only() {
    each_backend(|| async {
        let t = TestServer::start().await;
        let mut docs = Vec::new();
        for (i, level) in ["organization", "shared", "Secret-ish"].iter().enumerate() {
            let mut r = record(&d(&format!("org{i}")), "note", &format!("Org note {i}"), json!({}));
            r["data"]["accessControl"] = json!({"access_level": level, "owner_public_key": ALICE});
            docs.push(r);
        }
        t.seed(&docs).await;
        for (who, tok, sees) in [("anonymous", None, false), ("other", Some(token("bob-key")), false), ("owner", Some(token(ALICE)), true)] {
            let (_, v) = t.get_json("/api/records?recordType=note", tok.as_deref()).await;
            assert_eq!(v["searchResults"], if sees { 3 } else { 0 }, "{who}");
            let (_, v) = t.get_json("/api/records?search=org", tok.as_deref()).await;
            assert_eq!(v["searchResults"], if sees { 3 } else { 0 }, "{who}");
            let (_, v) = t.get_json("/api/records/recordTypes", tok.as_deref()).await;
            assert_eq!(v.to_string().contains("\"note\""), sees, "{who}: {v}");
            let (_, v) = t.get_json(&format!("/api/records?did={}&resolveDepth=2", d("org1")), tok.as_deref()).await;
            assert_eq!(v["searchResults"], if sees { 1 } else { 0 }, "{who}");
        }
    })
    .await;
}

/// A private ingredient referenced by a public recipe: matching by ingredient name
/// and resolving the recipe reveal it to its owner only.
#[tokio::test]
async fn private_references_stay_hidden_in_name_filters() {
    each_backend(|| async {
        let t = TestServer::start().await;
        let mut spice = record(&d("spice"), "nutritionalInfo", "Secret Spice", json!({"nutritionalInfo": {"calories": 1}}));
        spice["data"]["accessControl"] = json!({"access_level": "private", "owner_public_key": ALICE});
        let recipe = record(&d("stew"), "recipe", "Stew", json!({"recipe": {"ingredient": [d("spice"), "salt"]}}));
        t.seed(&[spice, recipe]).await;
        for (who, tok, sees) in [("anonymous", None, false), ("other", Some(token("bob-key")), false), ("owner", Some(token(ALICE)), true)] {
            let (_, v) = t.get_json("/api/records?recordType=recipe&ingredientNames=secret", tok.as_deref()).await;
            assert_eq!(v["searchResults"], if sees { 1 } else { 0 }, "ingredientNames as {who}");
            let (_, v) = t.get_json("/api/records?recordType=recipe&resolveDepth=1", tok.as_deref()).await;
            assert_eq!(v["searchResults"], 1, "{who}");
            assert_eq!(v.to_string().contains("Secret Spice"), sees, "resolution as {who}");
        }
    })
    .await;
}
