//! The API the original's own pages call, as contracts in our words: each test
//! sends what a page sends (its parameters, body fields and headers, as read from
//! `reference-client.html`, `alfred-notes.html`, `login.js`) and checks the fields
//! that page reads from the answer. The pages themselves are not copied here.

use crate::common::*;
use serde_json::{json, Value};

fn arr<'a>(v: &'a Value, k: &str) -> &'a Vec<Value> {
    v[k].as_array().unwrap_or_else(|| panic!("{k} is an array: {v:.300}"))
}

/// reference-client: record types, browsing (its `buildVoiceApiParams`), the
/// record view, the smart copy, equipment and ingredient pickers, templates.
#[tokio::test]
async fn reference_client_browsing_calls() {
    let t = TestServer::start().await;
    t.seed_demo(1).await;

    // record-type menu: recordTypes[].recordType / .count
    let (s, v) = t.get_json("/api/records/recordTypes", None).await;
    assert_eq!(s, 200);
    let types = arr(&v, "recordTypes");
    assert!(types.len() > 3);
    assert!(types.iter().all(|r| r["recordType"].is_string() && r["count"].is_u64()));

    // browse: what the page always sends, plus its optional filters
    let base = "limit=12&page=1&sortBy=date:desc&resolveDepth=2&summarizeTags=true&tagCount=100&includeSigs=false&includePubKeys=false";
    for extra in ["", "&recordType=exercise", "&search=squat&searchMatchMode=AND", "&source=arweave", "&dateStart=1600000000&dateEnd=1900000000", "&hasAudio=true", "&tags=legs&tagsMatchMode=OR", "&sortBy=matchCount:desc&search=bowl", "&sortBy=inArweaveBlock:asc", "&sortBy=date:asc"] {
        let (s, v) = t.get_json(&format!("/api/records?{base}{extra}"), None).await;
        assert_eq!(s, 200, "{extra}: {v}");
        arr(&v, "records");
        assert!(v["totalPages"].is_u64() && v["totalRecords"].is_u64(), "{extra}");
        assert!(arr(&v, "tagSummary").iter().all(|t| t["tag"].is_string() && t["count"].is_u64()), "{extra}");
        if extra.is_empty() {
            assert_eq!(arr(&v, "records").len(), 12, "a full first page");
            assert!(!arr(&v, "tagSummary").is_empty());
        }
    }
    // record view by didTx, three levels deep: records[0]
    let (_, v) = t.get_json("/api/records?recordType=workout&limit=1", None).await;
    let did = v["records"][0]["oip"]["did"].as_str().unwrap().to_owned();
    let (s, v) = t.get_json(&format!("/api/records?didTx={}&resolveDepth=3&limit=1", urlencode(&did)), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["records"][0]["oip"]["did"], did.as_str());
    // smart copy: one newest record of a type matching a search, without duplicates
    let (_, any) = t.get_json("/api/records?recordType=exercise&limit=1", None).await;
    let word = any["records"][0]["data"]["basic"]["name"].as_str().unwrap().split(' ').next().unwrap().to_lowercase();
    let (s, v) = t.get_json(&format!("/api/records?recordType=exercise&search={word}&noDuplicates=true&limit=1&sortBy=date:desc&resolveDepth=2"), None).await;
    assert_eq!(s, 200);
    assert_eq!(arr(&v, "records").len(), 1, "the smart copy finds one");
    // equipment list
    let (s, v) = t.get_json("/api/records?resolveDepth=0&recordType=fitnessEquipment&noDuplicates=true&limit=100", None).await;
    assert_eq!(s, 200);
    assert!(arr(&v, "records").iter().all(|r| r["oip"]["recordType"] == "fitnessEquipment"));
    // ingredient lists: by name (the original fell back to block order; we sort), by field search
    let (s, v) = t.get_json("/api/records?recordType=nutritionalInfo&limit=1000&noDuplicates=true&sortBy=basic.name:asc", None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = arr(&v, "records").iter().map(|r| r["data"]["basic"]["name"].as_str().unwrap()).collect();
    assert!(names.len() > 5 && names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
    assert!(arr(&v, "records").iter().all(|r| r["data"]["nutritionalInfo"].is_object() && r["oip"]["did"].is_string()));
    let first = names[0].to_owned();
    let (s, v) = t.get_json(&format!("/api/records?recordType=nutritionalInfo&limit=1000&noDuplicates=true&fieldSearch={}&fieldName=basic.name&sortBy=fieldSearchScore:desc", urlencode(&first)), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["records"][0]["data"]["basic"]["name"], first.as_str());
    // templates menu: templates[].data.template / oip.did
    let (s, v) = t.get_json("/api/templates?limit=1000", None).await;
    assert_eq!(s, 200);
    assert!(v["totalTemplates"].is_u64());
    assert!(arr(&v, "templates").iter().all(|t| t["data"].is_object()));
}

/// reference-client and alfred-notes: register, log in, keep the token, publish a
/// private GUN record, read it back by `source=gun`, upload media.
#[tokio::test]
async fn signed_in_page_calls() {
    let t = TestServer::start().await;
    let c = reqwest::Client::new();
    // register: data.success, data.token, data.mnemonic; the page decodes the JWT for email/publicKey
    let v: Value = c.post(t.url("/api/user/register")).json(&json!({"email": "page@example.com", "password": "page password"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["success"], true);
    assert!(v["token"].is_string() && v["mnemonic"].is_string());
    // login (login.js, alfred-notes): data.success, data.token; a failure: data.success false + data.error
    let v: Value = c.post(t.url("/api/user/login")).json(&json!({"email": "page@example.com", "password": "page password"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["success"], true);
    let token = v["token"].as_str().unwrap().to_owned();
    let v: Value = c.post(t.url("/api/user/login")).json(&json!({"email": "page@example.com", "password": "nope"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["success"], false);
    assert!(v["error"].is_string());

    // alfred-notes: a note as a private GUN record (body `storage:'gun'`), then its list
    let r: Value = c
        .post(t.url("/api/records/newRecord?recordType=notes"))
        .bearer_auth(&token)
        .json(&json!({"basic": {"name": "Standup", "date": 1713783811}, "notes": {"summary_key_points": ["a"], "transcript_full_text": "hello"}, "storage": "gun", "accessControl": {"access_level": "private"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let did = r["did"].as_str().unwrap_or_else(|| panic!("did: {r}")).to_owned();
    assert!(r["encrypted"].is_boolean());
    let (s, v) = t.get_json("/api/records?source=gun&recordType=notes&limit=50&sortBy=date:desc", Some(&token)).await;
    assert_eq!(s, 200);
    assert_eq!(v["auth"]["authenticated"], true);
    assert_eq!(v["records"][0]["oip"]["did"], did.as_str());
    assert_eq!(v["records"][0]["data"]["notes"]["summary_key_points"], json!(["a"]));
    let (_, v) = t.get_json(&format!("/api/records?source=gun&did={}", urlencode(&did)), Some(&token)).await;
    assert_eq!(v["records"][0]["data"]["basic"]["name"], "Standup");

    // media upload (the page also sends fields the original ignored): mediaId, httpUrl, size, mime, originalName
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes(4096, 5)).file_name("clip.gif").mime_str("image/gif").unwrap())
        .text("access_level", "private")
        .text("name", "Clip")
        .text("publishTo[web]", "true");
    let v: Value = c.post(t.url("/api/media/upload")).bearer_auth(&token).multipart(form).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["success"], true, "{v}");
    for k in ["mediaId", "httpUrl", "mime", "originalName"] {
        assert!(v[k].is_string(), "{k}: {v}");
    }
    assert_eq!(v["size"], 4096);
    // then its web copy (the bundle flows): webUrl
    let (s, w) = t.post_json("/api/media/web-setup", Some(&token), &json!({"mediaId": v["mediaId"], "filename": v["originalName"]})).await;
    assert_eq!(s, 200, "{w}");
    assert!(w["webUrl"].as_str().unwrap().ends_with("/media/oip-arweave-indexer/clip.gif"));
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
