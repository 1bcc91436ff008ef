//! Publishing to Arweave end to end: the node's wallet (a real RSA-4096 JWK)
//! signs records, templates and delete messages; a test bundler speaking
//! Turbo's wire format verifies every data item's signature and charges
//! credit; accepted items are bundled onto the test chain; the node's own
//! indexer then confirms the pending documents under the same DID. Also the
//! refusals (no wallet, a record that does not fit, no credit, bundler down,
//! an unregistered server creator) and that nothing is marked pending the
//! bundler did not take; the convenience publishers (workout by exercise name,
//! recipe as a job with its status and SSE stream, schema, media upload); an
//! upload that times out, retried and landing once; `kill -9` of the real
//! binary between the upload and the pending write, and just after it.
//! The pending → confirmed and skip cases are store contract tests: they run on
//! every backend.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::common::*;

fn fields() -> Vec<(&'static str, Value)> {
    vec![
        ("basic", json!({
            "name": "string", "index_name": 0, "description": "string", "index_description": 1,
            "date": "uint64", "index_date": 2, "language": "enum",
            "languageValues": [{"code": "en", "name": "English"}, {"code": "es", "name": "Spanish"}],
            "index_language": 3, "tagItems": "repeated string", "index_tagItems": 4, "nsfw": "bool", "index_nsfw": 5,
            "webUrl": "string", "index_webUrl": 6
        })),
        ("creatorRegistration", json!({
            "address": "string", "index_address": 0, "publicKey": "string", "index_publicKey": 1,
            "handle": "string", "index_handle": 2, "surname": "string", "index_surname": 3
        })),
        ("post", json!({"articleText": "string", "index_articleText": 0, "replyTo": "dref", "index_replyTo": 1, "imageItems": "repeated dref", "index_imageItems": 2})),
        ("exercise", json!({"est_duration_minutes": "float", "index_est_duration_minutes": 0})),
        ("workout", json!({
            "total_duration_minutes": "float", "index_total_duration_minutes": 0, "estimated_calories_burned": "float", "index_estimated_calories_burned": 1,
            "includesWarmup": "bool", "index_includesWarmup": 2, "includesMain": "bool", "index_includesMain": 3, "includesCooldown": "bool", "index_includesCooldown": 4,
            "nonStandardWorkout": "bool", "index_nonStandardWorkout": 5, "exercise_amount": "repeated float", "index_exercise_amount": 6,
            "exercise_unit": "repeated string", "index_exercise_unit": 7, "exercise": "repeated dref", "index_exercise": 8,
            "exercise_comment": "repeated string", "index_exercise_comment": 9, "instructions": "string", "index_instructions": 10,
            "author": "string", "index_author": 11, "authorDRef": "dref", "index_authorDRef": 12, "notes": "string", "index_notes": 13
        })),
        ("nutritionalInfo", json!({"calories": "float", "index_calories": 0})),
        ("recipe", json!({"servings": "uint64", "index_servings": 0, "ingredient": "repeated dref", "index_ingredient": 1, "ingredient_amount": "repeated float", "index_ingredient_amount": 2})),
        ("video", json!({"webUrl": "string", "index_webUrl": 0, "contentType": "string", "index_contentType": 1})),
    ]
}

struct World {
    gw: TestGateway,
    bundler: TestBundler,
    node: TestServer,
    templates: std::collections::HashMap<&'static str, String>,
    wallet_address: String,
    squat: String,
}

fn wallet_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/test_wallet.json")
}

fn wallet_address() -> String {
    let jwk: Value = serde_json::from_slice(&std::fs::read(wallet_path()).unwrap()).unwrap();
    let n = oipd::indexer::verify::decode_base64_lenient(jwk["n"].as_str().unwrap()).unwrap();
    oipd::arweave::jwk::address_of(&n)
}

/// Mine the pending block and wait until the indexer has finished a cycle past it.
async fn mine(w: &World) {
    let tip = {
        let c = w.gw.chain.lock().unwrap();
        c.txs.iter().map(|t| t.height).max().unwrap_or(c.tip).max(c.tip)
    };
    w.gw.set_tip(tip);
    indexed_to(&w.node, tip).await;
}

async fn by_did(s: &TestServer, did: &str) -> (u64, Option<Value>) {
    let (st, v) = s.get_json(&format!("/api/records?did={did}"), None).await;
    assert_eq!(st, 200, "{v}");
    (v["searchResults"].as_u64().unwrap_or(0), v["records"].as_array().and_then(|r| r.first().cloned()))
}

/// The operator's `--admin-token` in these tests.
const OPERATOR: &str = "operator-secret";

/// Alice's chain (bootstrap creator, templates, an exercise), a bundler, and a
/// node with the test wallet; `registered`: the node's creator registration
/// published (by the operator) and confirmed.
async fn world(registered: bool, wallet: bool) -> World {
    world_with(registered, wallet, |_| {}).await
}

async fn world_with(registered: bool, wallet: bool, f: impl FnOnce(&mut oipd::config::ServeConfig) + Send + 'static) -> World {
    let alice = Signer::new();
    let reg = tx_registration(&alice, "alice", "Alice", "Liddell", 100);
    let mut txs = vec![reg.clone()];
    let (published, templates) = templates_by(&alice, &fields(), 101);
    txs.extend(published);
    let squat = tx_record(&alice, "exercise", &json!([
        {"0": "Squat", "t": templates["basic"]}, {"0": 5, "t": templates["exercise"]}
    ]), 102);
    txs.push(squat.clone());
    let gw = TestGateway::start(Chain { txs, tip: 102, ..Default::default() }).await;
    let bundler = TestBundler::start(Some(gw.chain.clone()), 1).await;
    let address = wallet_address();
    bundler.set_credit(&address, 10_000_000);
    let (gwu, bu, reg_id) = (gw.url.clone(), bundler.url.clone(), reg.id.clone());
    let node = TestServer::start_with(move |c| {
        index_from(c, &gwu, &reg_id, 5, 10);
        c.publish.wallet_file = wallet.then(wallet_path);
        c.publish.bundler_url = bu.clone();
        c.publish.bundler_payment_url = bu;
        c.publish.publish_attempts = 2;
        c.auth.admin_token = Some(OPERATOR.into());
        f(c);
    })
    .await;
    indexed_to(&node, 102).await;
    let w = World { gw, bundler, node, templates, wallet_address: address, squat: format!("did:arweave:{}", squat.id) };
    if registered {
        let body = json!({"creatorRegistration": {"handle": "oipnode", "surname": "Node"}, "basic": {"name": "OIP Node", "language": "English"}});
        let (st, v) = w.node.post_json("/api/creators/newCreator", Some(&token("pk-user")), &body).await;
        assert_eq!(st, 403, "the server's identity is the operator's to publish: {v}");
        let (st, v) = w.node.post_json("/api/creators/newCreator", Some(OPERATOR), &body).await;
        assert_eq!(st, 200, "{v}");
        mine(&w).await;
        let (_, creators) = w.node.get_json("/api/creators", None).await;
        assert_eq!(creators["qtyCreatorsInDB"], 2, "the node's registration is indexed: {creators:#}");
    }
    w
}

#[tokio::test]
async fn published_records_are_pending_then_confirmed_by_the_indexer_under_one_did() {
    each_backend(|| async {
        let w = world(true, true).await;
        let tok = token("pk-user");
        let credit_before = w.bundler.credit(&w.wallet_address);
        let record = json!({
            "basic": {"name": "Hello chain", "description": "first", "language": "Spanish", "tagItems": ["a", "b"], "date": 1_700_000_000u64},
            "post": {"articleText": "Written here", "replyTo": w.squat},
        });
        let (st, v) = w.node.post_json("/api/records/newRecord?recordType=post", Some(&tok), &record).await;
        assert_eq!(st, 200, "{v}");
        let txid = v["transactionId"].as_str().unwrap().to_owned();
        let did = format!("did:arweave:{txid}");
        assert_eq!(v["blockchain"], "arweave");
        assert_eq!(v["recordToIndex"]["oip"]["recordStatus"], "pending confirmation in Arweave");
        assert_eq!(v["recordToIndex"]["oip"]["did"], did.as_str());
    
        // the bundler verified and charged it: what it holds is the original's wire form
        let item = w.bundler.accepted().into_iter().find(|a| a.id == txid).expect("the bundler has the item");
        assert_eq!(w.bundler.state.refused_signatures.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(item.owner_address, w.wallet_address);
        let names: Vec<&str> = item.tags.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Content-Type", "Index-Method", "Ver", "Type", "RecordType", "Creator", "CreatorSig"]);
        let data: Value = serde_json::from_slice(&item.data).unwrap();
        assert_eq!(data[0]["t"], w.templates["basic"].as_str());
        assert_eq!(data[0]["3"], 1, "enum by position");
        assert_eq!(data[1], json!({"0": "Written here", "1": w.squat, "t": w.templates["post"]}));
        assert!(w.bundler.credit(&w.wallet_address) < credit_before, "the upload was paid for");
        assert!(w.bundler.state.balance_checks.load(std::sync::atomic::Ordering::SeqCst) > 0, "the cost was checked first");
    
        // pending, readable at once
        let (n, pending) = by_did(&w.node, &did).await;
        assert_eq!(n, 1);
        let pending = pending.unwrap();
        assert_eq!(pending["oip"]["recordStatus"], "pending confirmation in Arweave");
        assert_eq!(pending["data"]["basic"]["name"], "Hello chain");
    
        // mined → the same DID is confirmed, once, with the same data
        mine(&w).await;
        let ok = wait_for(async || by_did(&w.node, &did).await.1.is_some_and(|r| r["oip"]["recordStatus"] == "original"), 30).await;
        assert!(ok, "confirmed: {:?}", by_did(&w.node, &did).await);
        let (n, confirmed) = by_did(&w.node, &did).await;
        assert_eq!(n, 1, "no duplicate");
        let confirmed = confirmed.unwrap();
        assert_eq!(confirmed["data"], pending["data"], "expanding what was compressed gives back the record");
        assert_eq!(confirmed["oip"]["creator"]["creatorHandle"], pending["oip"]["creator"]["creatorHandle"]);
        assert!(confirmed["oip"].get("signatureValid").is_none(), "the creator signature verifies");
        let (_, all) = w.node.get_json("/api/records?recordType=post&limit=50", None).await;
        assert_eq!(all["searchResults"], 1, "{all:#}");
    
        // a template: pending, then confirmed
        let note = json!({"note": {"title": "string", "index_title": 0}});
        assert_eq!(w.node.post_json("/api/templates/newTemplate", Some(&tok), &note).await.0, 403, "templates are the operator's");
        let (st, v) = w.node.post_json("/api/templates/newTemplate", Some(OPERATOR), &note).await;
        assert_eq!(st, 200, "{v}");
        let tdid = v["newTemplate"]["didTx"].as_str().unwrap().to_owned();
        // a pending template is not used to publish with: it may never land
        let (st, v) = w.node.post_json("/api/records/newRecord?recordType=note", Some(&tok), &json!({"basic": {"name": "n"}, "note": {"title": "T"}})).await;
        assert_eq!(st, 400, "{v}");
        let status = |v: &Value| v["templates"][0]["oip"]["recordStatus"].as_str().map(str::to_owned);
        let (_, t) = w.node.get_json(&format!("/api/templates?didTx={tdid}"), None).await;
        assert_eq!(status(&t).as_deref(), Some("pending confirmation in Arweave"), "{t:#}");
        mine(&w).await;
        let (_, t) = w.node.get_json(&format!("/api/templates?didTx={tdid}"), None).await;
        assert_eq!((t["totalTemplates"].as_u64(), status(&t).as_deref()), (Some(1), Some("original")), "{t:#}");
        // ... and records can use it at once
        let (st, v) = w.node.post_json("/api/records/newRecord?recordType=note", Some(&tok), &json!({"basic": {"name": "n"}, "note": {"title": "T"}})).await;
        assert_eq!(st, 200, "{v}");
    
        // deleteRecord by an administrator: the delete message is published and indexed
        let c = reqwest::Client::new();
        let r: Value = c.post(w.node.url("/api/user/register")).json(&json!({"email": "admin@example.com", "password": "admin password"})).send().await.unwrap().json().await.unwrap();
        assert!(r["token"].is_string(), "{r}");
        let users = &w.node.server.state.stores.users;
        let mut a = users.user_by_email("admin@example.com").await.unwrap().unwrap();
        a.set("isAdmin", true);
        users.update_user(&a).await.unwrap();
        let login: Value = c.post(w.node.url("/api/user/login")).json(&json!({"email": "admin@example.com", "password": "admin password"})).send().await.unwrap().json().await.unwrap();
        let admin = login["token"].as_str().unwrap().to_owned();
        let (st, v) = w.node.post_json("/api/records/deleteRecord", Some(&tok), &json!({"delete": {"did": did}})).await;
        assert_eq!(st, 403, "not the caller's record: {v}");
        // a pending record cannot be deleted on chain yet (it would land after its delete)
        let (st, v) = w.node.post_json("/api/records/newRecord?recordType=post", Some(&tok), &json!({"basic": {"name": "soon"}})).await;
        assert_eq!(st, 200, "{v}");
        let pending_did = format!("did:arweave:{}", v["transactionId"].as_str().unwrap());
        let (st, v) = w.node.post_json("/api/records/deleteRecord", Some(&admin), &json!({"delete": {"did": pending_did}})).await;
        assert_eq!(st, 409, "{v}");
        assert_eq!(by_did(&w.node, &pending_did).await.0, 1, "kept");
        // a failed delete message keeps the record (the caller can retry)
        w.bundler.set_down(true);
        let (st, v) = w.node.post_json("/api/records/deleteRecord", Some(&admin), &json!({"delete": {"did": did}})).await;
        assert_eq!(st, 503, "{v}");
        assert_eq!(by_did(&w.node, &did).await.0, 1, "kept");
        w.bundler.set_down(false);
        let (st, v) = w.node.post_json("/api/records/deleteRecord", Some(&admin), &json!({"delete": {"did": did}})).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["blockchainDeletion"], true, "{v}");
        let msg = v["deleteMessageTxId"].as_str().unwrap().to_owned();
        let item = w.bundler.accepted().into_iter().find(|a| a.id == msg).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&item.data).unwrap(), json!([{"delete": {"did": did}}]));
        assert_eq!(by_did(&w.node, &did).await.0, 0, "deleted here at once");
        mine(&w).await;
        let (_, msgs) = w.node.get_json(&format!("/api/records?did=did:arweave:{msg}&includeDeleteMessages=true"), None).await;
        assert!(msgs.to_string().contains(&did), "the indexed delete message names the record: {msgs:#}");
        assert!(msgs["records"][0]["oip"].get("deleteRefused").is_none(), "the indexer accepted the deleter: {msgs:#}");
    })
    .await;
}

#[tokio::test]
async fn refusals_leave_nothing_pending() {
    let w = world(true, true).await;
    let tok = token("pk-user");
    let count = async || w.node.get_json("/api/records?limit=1", None).await.1["searchResults"].as_u64().unwrap();
    let before = count().await;
    let post = |q: &'static str, body: Value| {
        let (node, tok) = (&w.node, tok.clone());
        async move { node.post_json(q, Some(&tok), &body).await }
    };
    // a field the template does not have, named
    let (st, v) = post("/api/records/newRecord?recordType=post", json!({"basic": {"name": "x"}, "post": {"colour": "red"}})).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("colour"), "{v}");
    // a value of the wrong type, named
    let (st, v) = post("/api/records/newRecord?recordType=post", json!({"basic": {"name": "x", "date": "soon"}})).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("basic.date"), "{v}");
    // an enum value the template does not list
    let (st, v) = post("/api/records/newRecord?recordType=post", json!({"basic": {"name": "x", "language": "Klingon"}})).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("language"), "{v}");
    // an unknown record type
    let (st, v) = post("/api/records/newRecord?recordType=spaceship", json!({"basic": {"name": "x"}})).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("spaceship"), "{v}");
    // private data never goes to a public chain
    let (st, v) = post("/api/records/newRecord?recordType=post", json!({"basic": {"name": "x"}, "accessControl": {"access_level": "private"}})).await;
    assert_eq!(st, 400, "{v}");
    // over the body bound
    let big = "x".repeat(oipd::oip::model::MAX_RECORD_BYTES + 10);
    let (st, _) = post("/api/records/newRecord?recordType=post", json!({"basic": {"name": big}})).await;
    assert_eq!(st, 413);
    assert_eq!(w.bundler.state.uploads.load(std::sync::atomic::Ordering::SeqCst), 1, "only the registration was sent");

    // no credit: refused before the upload, nothing pending
    w.bundler.set_credit(&w.wallet_address, 10);
    let (st, v) = post("/api/records/newRecord?recordType=post", json!({"basic": {"name": "poor"}})).await;
    assert_eq!(st, 402, "{v}");
    assert!(v["error"].as_str().unwrap().contains("credit"), "{v}");
    assert_eq!(w.bundler.state.uploads.load(std::sync::atomic::Ordering::SeqCst), 1, "the cost check refused it first");
    // bundler down: 503 with Retry-After after the bounded retries, nothing pending
    w.bundler.set_credit(&w.wallet_address, 10_000_000);
    w.bundler.set_down(true);
    let r = reqwest::Client::new()
        .post(w.node.url("/api/records/newRecord?recordType=post"))
        .bearer_auth(&tok)
        .json(&json!({"basic": {"name": "offline"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("bundler"), "{v}");
    assert_eq!(w.bundler.state.uploads.load(std::sync::atomic::Ordering::SeqCst), 3, "two attempts (--publish-attempts 2)");
    assert_eq!(count().await, before, "nothing was marked pending");
    w.bundler.set_down(false);
    let (st, v) = post("/api/records/newRecord?recordType=post", json!({"basic": {"name": "back"}})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(count().await, before + 1);
    // GUN storage still goes to GUN
    let (st, v) = post("/api/records/newRecord?recordType=post&storage=gun", json!({"basic": {"name": "mine"}})).await;
    assert_eq!((st, v["storage"].as_str()), (200, Some("gun")), "{v}");
}

#[tokio::test]
async fn without_a_wallet_or_a_registration_publishing_says_why() {
    let w = world(false, false).await;
    let tok = token("pk-user");
    let r = reqwest::Client::new().post(w.node.url("/api/records/newRecord?recordType=post")).bearer_auth(&tok).json(&json!({"basic": {"name": "x"}})).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("WALLET_FILE"), "{v}");
    // reads unaffected
    assert_eq!(w.node.get_json("/api/records?recordType=exercise", None).await.1["searchResults"], 1);
    let (st, _) = w.node.post_json("/api/records/newRecord?recordType=post", None, &json!({"basic": {"name": "x"}})).await;
    assert_eq!(st, 401);

    // a wallet but no creator registration yet: 409 naming the way out, nothing sent
    let w = world(false, true).await;
    let (st, v) = w.node.post_json("/api/records/newRecord?recordType=post", Some(&tok), &json!({"basic": {"name": "x"}})).await;
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("newCreator"), "{v}");
    assert_eq!(w.bundler.state.uploads.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn workouts_recipes_jobs_schemas_and_media() {
    let w = world(true, true).await;
    let tok = token("pk-user");
    // exercise names → DIDs
    let (st, v) = w.node.post_json("/api/workout/resolve-exercises", Some(&tok), &json!({"exerciseNames": ["Squat", "Moon walk"]})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["exerciseDidRefs"]["squat"], w.squat.as_str());
    assert_eq!(v["exerciseDidRefs"]["moon walk"], Value::Null);
    assert_eq!(v["missingExercises"], json!(["moon walk"]));
    // a standard workout skips what it cannot find; its duration is computed
    let body = json!({"basic": {"name": "Legs"}, "workout": {"exercise": ["Squat", {"exercise": {"basic": {"name": "Moon walk"}}}], "goalTags": ["legs"]}});
    let (st, v) = w.node.post_json("/api/publish/newWorkout", Some(&tok), &body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["recordToIndex"]["data"]["workout"]["exercise"], json!([w.squat]));
    assert_eq!(v["recordToIndex"]["data"]["workout"]["total_duration_minutes"], 5.0);
    assert!(v["message"].as_str().unwrap().contains("exercise references"));
    // a non-standard one creates the missing exercise
    let mut body = body;
    body["workout"]["nonStandardWorkout"] = json!(true);
    let (st, v) = w.node.post_json("/api/publish/newWorkout", Some(&tok), &body).await;
    assert_eq!(st, 200, "{v}");
    let ex = v["recordToIndex"]["data"]["workout"]["exercise"].as_array().unwrap().clone();
    assert_eq!(ex.len(), 2);
    let (_, created) = by_did(&w.node, ex[1].as_str().unwrap()).await;
    assert_eq!(created.unwrap()["data"]["basic"]["name"], "Moon walk");

    // a recipe runs as a job; its status and its stream follow it to the end
    let (st, v) = w.node.post_json("/api/publish/newRecipe", Some(&tok), &json!({"basic": {"name": "Soup"}, "recipe": {"servings": 2, "ingredient": ["Salt"], "ingredient_amount": [1]}})).await;
    assert_eq!(st, 202, "{v}");
    let job = v["jobId"].as_str().unwrap().to_owned();
    assert!(job.starts_with("recipe_publish_"));
    let stream = reqwest::Client::new().get(w.node.url(&format!("/api/publish-status/{job}/stream"))).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(std::time::Duration::from_secs(30), stream.text()).await.expect("the stream ends with the job").unwrap();
    assert!(text.starts_with("event: ping\n"), "{text}");
    assert!(text.contains("event: publishProgress") && text.contains("\"status\":\"completed\""), "{text}");
    let (st, s) = w.node.get_json(&format!("/api/publish-status/{job}"), None).await;
    assert_eq!((st, s["status"].as_str()), (200, Some("completed")), "{s}");
    let recipe_did = format!("did:arweave:{}", s["transactionId"].as_str().unwrap());
    let (_, recipe) = by_did(&w.node, &recipe_did).await;
    let ing = recipe.unwrap()["data"]["recipe"]["ingredient"][0].as_str().unwrap().to_owned();
    assert_eq!(by_did(&w.node, &ing).await.1.unwrap()["data"]["basic"]["name"], "Salt", "the missing ingredient was published");
    let (st, _) = w.node.get_json("/api/publish-status/recipe_publish_0000000000000000", None).await;
    assert_eq!(st, 404);
    assert!(w.node.bound("publish_jobs").await.1 >= 1);

    // schema from the indexed templates
    let (st, v) = w.node.get_json("/api/publish/schema?recordType=workout", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["template_info"]["template_txid"], w.templates["workout"].as_str());
    assert_eq!(v["template_fields_info"]["exercise"]["type"], "repeated dref");
    assert!(v["example"]["workout"].get("exercise").is_some() && v["example"]["basic"].get("language").is_some());
    // the reference client maps enums through template_fields_info of recordType=basic
    let (_, b) = w.node.get_json("/api/publish/schema?recordType=basic", None).await;
    assert_eq!(b["template_fields_info"]["language"]["enumValues"][1], json!({"code": "es", "name": "Spanish"}));
    assert_eq!(w.node.get_json("/api/publish/schema?recordType=spaceship", None).await.0, 404);
    assert_eq!(w.node.get_json("/api/publish/schema", None).await.0, 400);
    assert_eq!(w.node.get_json("/api/publish/schemas", None).await.0, 200);

    // newPost drops empty lists; newVideo builds the record
    let (st, v) = w.node.post_json("/api/publish/newPost", Some(&tok), &json!({"basic": {"name": "P"}, "post": {"articleText": "t", "imageItems": [], "replyTo": ""}})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["recordToIndex"]["data"]["post"], json!({"articleText": "t"}));
    let (st, v) = w.node.post_json("/api/publish/newVideo", Some(&tok), &json!({"videoUrl": "https://example.com/v.mp4", "basicMetadata": {"name": "V"}})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["recordToIndex"]["data"]["video"]["webUrl"], "https://example.com/v.mp4");
    let (st, v) = w.node.post_json("/api/publish/newImage", Some(&tok), &json!({"basicMetadata": {"name": "I"}})).await;
    assert_eq!(st, 400, "an image needs a URL or a file: {v}");
    let (st, v) = w.node.post_json("/api/publish/newNutritionalInfo", Some(&tok), &json!({"basic": {"name": "Oats"}, "nutritionalInfo": {"calories": 389}})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["recordToIndex"]["data"]["nutritionalInfo"]["calories"], 389.0);

    // a media file goes to Arweave as one streamed data item with its type
    let bytes = bytes(300_000, 7);
    let (st, up) = w.node.upload(Some(&tok), bytes.clone(), "image/gif", Some("public")).await;
    assert_eq!(st, 200, "{up}");
    let media_id = up["mediaId"].as_str().unwrap().to_owned();
    let (st, v) = w.node.post_json("/api/media/arweave-upload", Some(&token("someone-else")), &json!({"mediaId": media_id})).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = w.node.post_json("/api/media/arweave-upload", Some(&tok), &json!({"mediaId": media_id})).await;
    assert_eq!(st, 200, "{v}");
    let item = w.bundler.accepted().into_iter().find(|a| a.id == v["transactionId"].as_str().unwrap()).unwrap();
    assert_eq!(item.data, bytes);
    assert_eq!(item.tags[0], ("Content-Type".to_owned(), "image/gif".to_owned()));
    assert_eq!(w.node.post_json("/api/media/arweave-upload", Some(&tok), &json!({})).await.0, 400);
    assert_eq!(w.bundler.state.refused_signatures.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_test_bundler_refuses_what_turbo_refuses() {
    // a data item whose data was changed after signing, posted straight to the bundler
    let b = TestBundler::start(None, 0).await;
    let jwk = std::fs::read(wallet_path()).unwrap();
    let wallet = oipd::arweave::jwk::ArweaveWallet::from_jwk_json(&jwk).unwrap();
    let mut item = oipd::arweave::dataitem::sign(&wallet, None, None, vec![oipd::arweave::tags::Tag::new("Content-Type", "text/plain")], b"hello").unwrap();
    let c = reqwest::Client::new();
    let post = |body: Vec<u8>| c.post(format!("{}/v1/tx/arweave", b.url)).header("content-type", "application/octet-stream").body(body).send();
    b.set_credit(&wallet.address(), 1_000);
    assert_eq!(post(item.clone()).await.unwrap().status(), 200);
    assert_eq!(post(item.clone()).await.unwrap().status(), 202, "a repeat");
    // a wrong key: the same signature under another owner (one byte of the
    // 512-byte owner after the 2-byte type and the 512-byte signature)
    let mut other_owner = item.clone();
    other_owner[2 + 512 + 100] ^= 1;
    assert_eq!(post(other_owner).await.unwrap().status(), 400);
    assert_eq!(b.state.refused_signatures.load(std::sync::atomic::Ordering::SeqCst), 1);
    let n = item.len();
    item[n - 1] ^= 1;
    assert_eq!(post(item).await.unwrap().status(), 400);
    assert_eq!(b.state.refused_signatures.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(post(b"not an item".to_vec()).await.unwrap().status(), 400);
}

#[tokio::test]
async fn a_transaction_the_indexer_skips_leaves_no_pending_record() {
    each_backend(|| async {
        // the indexer reads at most 8 KiB of data; a larger record is skipped when it lands
        let w = world_with(true, true, |c| c.indexer.index_max_data_bytes = 8 * 1024).await;
        let tok = token("pk-user");
        let (st, v) = w.node.post_json("/api/records/newRecord?recordType=post", Some(&tok), &json!({"basic": {"name": "big", "description": "x".repeat(9000)}})).await;
        assert_eq!(st, 200, "{v}");
        let did = format!("did:arweave:{}", v["transactionId"].as_str().unwrap());
        assert_eq!(by_did(&w.node, &did).await.0, 1);
        mine(&w).await;
        assert_eq!(by_did(&w.node, &did).await.0, 0, "skipped on chain → the pending document is gone");
        // a type the indexer does not index is refused before anything is spent
        let w = world_with(true, true, |c| {
            c.indexer.record_type_index_mode = "blacklist".into();
            c.indexer.record_type_index_blacklist = "post".into();
        })
        .await;
        let uploads = w.bundler.state.uploads.load(std::sync::atomic::Ordering::SeqCst);
        let (st, v) = w.node.post_json("/api/records/newRecord?recordType=post", Some(&tok), &json!({"basic": {"name": "x"}})).await;
        assert_eq!(st, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains("RECORD_TYPE_INDEX_MODE"), "{v}");
        assert_eq!(w.bundler.state.uploads.load(std::sync::atomic::Ordering::SeqCst), uploads);
    })
    .await;
}

#[tokio::test]
async fn without_an_indexer_nothing_is_published() {
    let t = TestServer::start_with(|c| c.publish.wallet_file = Some(wallet_path())).await;
    let r = reqwest::Client::new().post(t.url("/api/records/newRecord?recordType=post")).bearer_auth(token("pk")).json(&json!({"basic": {"name": "x"}})).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("--arweave-gateways"), "{v}");
    // and a wallet file that is not a wallet stops the node at start with one line
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("wallet.json");
    std::fs::write(&bad, b"{\"kty\":\"EC\"}").unwrap();
    let mut cfg = oipd::config::ServeConfig::with_data_dir(dir.path().join("data"));
    cfg.http.listen = "127.0.0.1:0".parse().unwrap();
    cfg.publish.wallet_file = Some(bad);
    let e = oipd::RunningServer::start(cfg).await.err().expect("refused").to_string();
    assert!(e.contains("WALLET_FILE"), "{e}");
}

/// `kill -9` of a node publishing, at both points that matter, then a restart
/// on the same data directory: (1) between the upload and the pending write —
/// the bundler took the item (and never answers), the node dies before writing
/// anything: after the restart nothing is pending for it, and when it is mined
/// the node's indexer indexes it once; (2) just after the pending write: the
/// pending document survives the restart and becomes confirmed under the same
/// DID, once. Nothing lost, nothing doubled.
#[tokio::test]
async fn a_node_killed_mid_publish_loses_and_doubles_nothing() {
    let alice = Signer::new();
    let reg = tx_registration(&alice, "alice", "Alice", "Liddell", 100);
    let mut txs = vec![reg.clone()];
    let (published, _templates) = templates_by(&alice, &fields(), 101);
    txs.extend(published);
    let gw = TestGateway::start(Chain { txs, tip: 101, ..Default::default() }).await;
    let bundler = TestBundler::start(Some(gw.chain.clone()), 1).await;
    bundler.set_credit(&wallet_address(), 10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let wallet = wallet_path();
    let args = [
        "--arweave-gateways", gw.url.as_str(), "--index-start-block", "0", "--index-interval", "1",
        "--index-bootstrap-creators", reg.id.as_str(), "--bundler-url", bundler.url.as_str(),
        "--bundler-payment-url", bundler.url.as_str(), "--publish-attempts", "1", "--admin-token", OPERATOR,
    ];
    let env = [("WALLET_FILE", wallet.to_str().unwrap()), ("JWT_SECRET", SECRET)];
    let http = reqwest::Client::new();
    let indexed_past = async |node: &Oipd, height: u64| {
        indexed_to_at(&node.url("/api/health/indexer"), height).await;
    };
    let mine = async |node: &Oipd| {
        let tip = { let c = gw.chain.lock().unwrap(); c.txs.iter().map(|t| t.height).max().unwrap_or(c.tip).max(c.tip) };
        gw.set_tip(tip);
        indexed_past(node, tip).await;
    };
    let posts = async |node: &Oipd| -> Vec<Value> {
        let v: Value = http.get(node.url("/api/records?recordType=post&limit=50")).send().await.unwrap().json().await.unwrap();
        v["records"].as_array().cloned().unwrap_or_default()
    };
    let publish = |node: &Oipd, name: &str| {
        http.post(node.url("/api/records/newRecord?recordType=post")).bearer_auth(token("pk-user")).json(&json!({"basic": {"name": name}})).send()
    };

    let mut node = Oipd::serve_env(dir.path(), &args, &env);
    indexed_past(&node, 101).await;
    let r = http.post(node.url("/api/creators/newCreator")).bearer_auth(OPERATOR)
        .json(&json!({"creatorRegistration": {"handle": "oipnode", "surname": "Node"}, "basic": {"name": "OIP Node", "language": "English"}}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    mine(&node).await;

    // (1) the bundler takes the item and holds its answer; the node dies waiting
    bundler.hold_next(1);
    let before = bundler.accepted().len();
    let pending_call = tokio::spawn(publish(&node, "uploaded, never written"));
    assert!(wait_for(async || bundler.accepted().len() > before, 30).await, "the bundler took the item");
    let taken = bundler.accepted().last().unwrap().id.clone();
    node.child.kill().unwrap(); // SIGKILL
    node.child.wait().unwrap();
    assert!(pending_call.await.unwrap().is_err(), "the client saw the node die");
    drop(node);
    let mut node = Oipd::serve_env(dir.path(), &args, &env);
    assert!(posts(&node).await.is_empty(), "nothing pending was written for it");
    mine(&node).await;
    let got = posts(&node).await;
    assert_eq!(got.len(), 1, "indexed once when mined: {got:#?}");
    assert_eq!(got[0]["oip"]["did"], format!("did:arweave:{taken}").as_str());
    assert_eq!(got[0]["oip"]["recordStatus"], "original");
    assert_eq!(got[0]["data"]["basic"]["name"], "uploaded, never written");

    // (2) killed just after the pending write (its answer received)
    let r = publish(&node, "pending, then killed").await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let did = format!("did:arweave:{}", v["transactionId"].as_str().unwrap());
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    drop(node);
    let node = Oipd::serve_env(dir.path(), &args, &env);
    let got = posts(&node).await;
    let pending: Vec<&Value> = got.iter().filter(|r| r["oip"]["did"] == did.as_str()).collect();
    assert_eq!(pending.len(), 1, "the pending document survived: {got:#?}");
    assert_eq!(pending[0]["oip"]["recordStatus"], "pending confirmation in Arweave");
    mine(&node).await;
    let got = posts(&node).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    let mine_: Vec<&Value> = got.iter().filter(|r| r["oip"]["did"] == did.as_str()).collect();
    assert_eq!(mine_.len(), 1, "confirmed once under the same DID");
    assert_eq!(mine_[0]["oip"]["recordStatus"], "original");
    assert_eq!(bundler.state.refused_signatures.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// An upload whose answer never comes times out (the outbound read timeout)
/// and is retried; the bundler already holds that very item and says so (202),
/// which is success: one pending document, confirmed once when mined.
#[tokio::test]
async fn an_upload_that_times_out_is_retried_and_lands_once() {
    let w = world(true, true).await;
    w.bundler.hold_next(1);
    let before = w.bundler.state.uploads.load(std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    let (st, v) = w.node.post_json("/api/records/newRecord?recordType=post", Some(&token("pk-user")), &json!({"basic": {"name": "slow bundler"}})).await;
    assert_eq!(st, 200, "{v}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(4), "the first attempt waited for its timeout: {:?}", started.elapsed());
    assert_eq!(w.bundler.state.uploads.load(std::sync::atomic::Ordering::SeqCst), before + 2, "timed out, then retried");
    let did = format!("did:arweave:{}", v["transactionId"].as_str().unwrap());
    assert_eq!(w.bundler.accepted().iter().filter(|a| format!("did:arweave:{}", a.id) == did).count(), 1, "one item, taken once");
    mine(&w).await;
    assert!(wait_for(async || by_did(&w.node, &did).await.1.is_some_and(|r| r["oip"]["recordStatus"] == "original"), 30).await);
    assert_eq!(by_did(&w.node, &did).await.0, 1, "no duplicate");
}
