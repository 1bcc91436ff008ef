//! ALFRED notes end to end: a transcript becomes the caller's private `notes` and
//! `text` records with an extractive summary that says so (no LLM configured); a
//! fake Ollama (its real NDJSON `/api/chat`) writes the summary when configured;
//! audio goes through a fake STT service (the original's `/transcribe_file`);
//! async jobs complete, list and cancel; another user cannot read or act on
//! someone's notes or jobs (404), anonymous callers get 401, bad input
//! 400/413/415; the job bounds are listed in `/api/health/memory`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

const TRANSCRIPT: &str = "We met to plan the spring launch of the garden app. The launch budget is twenty thousand dollars. \
    We decided to move the launch to April. Alice will draft the press release by Friday. \
    Bob needs to book the venue before next week. What about the catering budget? The launch party is on the roof.";

fn note_body(transcript: &str) -> Value {
    json!({
        "transcript": transcript,
        "start_time": "2024-05-01T10:00:00Z",
        "end_time": "2024-05-01T10:30:00Z",
        "note_type": "MEETING",
        "device_type": "MAC",
        "participant_display_names": "[\"Alice\", \"Bob\"]",
    })
}

fn form_fields() -> reqwest::multipart::Form {
    let mut f = reqwest::multipart::Form::new();
    for (k, v) in [("start_time", "2024-05-01T10:00:00Z"), ("end_time", "2024-05-01T11:00:00Z"), ("note_type", "STANDUP"), ("device_type", "IPHONE")] {
        f = f.text(k, v);
    }
    f
}

async fn send(s: &TestServer, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, s.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.unwrap();
    let st = r.status().as_u16();
    let text = r.text().await.unwrap();
    (st, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text:.300}")))
}

#[tokio::test]
async fn a_transcript_becomes_private_notes_only_its_owner_reads() {
    let s = TestServer::start().await;
    let (alice, bob) = (token("alice-key"), token("bob-key"));
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    // anonymous: 401 on every route
    for (m, p) in [(&post, "/api/notes/from-audio"), (&get, "/api/notes"), (&get, "/api/notes/jobs"), (&post, "/api/notes/converse")] {
        let (st, v) = send(&s, m.clone(), p, None, Some(&note_body(TRANSCRIPT))).await;
        assert_eq!(st, 401, "{p}: {v}");
    }

    let (st, v) = send(&s, post.clone(), "/api/notes/from-audio", Some(&alice), Some(&note_body(TRANSCRIPT))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true);
    let hash = v["noteHash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64);
    let did = v["noteDid"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:gun:") && did.ends_with(&hash), "{did}");
    assert_eq!(v["transcriptionStatus"], "COMPLETE");
    // no LLM configured: extractive, and it says so
    assert_eq!(v["summary"]["method"], "extractive", "{v}");
    assert!(v["summary"]["note"].as_str().unwrap().contains("No language model"), "{v}");
    assert_eq!(v["summary"]["decisions"], 1, "{v}");
    assert_eq!(v["summary"]["actionItems"], 2, "{v}");
    assert_eq!(v["summary"]["openQuestions"], 1, "{v}");

    // the owner reads it, with its transcript
    let (st, n) = send(&s, get.clone(), &format!("/api/notes/{hash}"), Some(&alice), None).await;
    assert_eq!(st, 200, "{n}");
    let notes = &n["note"]["data"]["notes"];
    assert_eq!(n["note"]["oip"]["recordType"], "notes");
    assert_eq!(n["note"]["oip"]["storage"], "gun");
    assert_eq!(n["note"]["data"]["accessControl"]["access_level"], "private");
    assert_eq!(n["note"]["data"]["basic"]["name"], "MEETING: Alice, Bob");
    assert_eq!(notes["summary_method"], "extractive");
    assert_eq!(notes["summary_action_item_assignees"], json!(["Alice", "Bob"]));
    assert_eq!(notes["summary_action_item_due_texts"], json!(["by Friday", "before next week"]));
    assert_eq!(notes["summary_decisions"], json!(["We decided to move the launch to April."]));
    assert!(!notes["summary_key_points"].as_array().unwrap().is_empty());
    assert_eq!(n["transcript"]["data"]["text"]["value"], TRANSCRIPT);
    assert_eq!(n["chunks"]["strategy"], "BY_TIME_30S");

    // another user: nothing, 404 on every note route
    let (st, _) = send(&s, get.clone(), &format!("/api/notes/{hash}"), Some(&bob), None).await;
    assert_eq!(st, 404);
    let (st, _) = send(&s, post.clone(), &format!("/api/notes/{hash}/regenerate-summary"), Some(&bob), Some(&json!({}))).await;
    assert_eq!(st, 404);
    let (st, v) = send(&s, post.clone(), "/api/notes/converse", Some(&bob), Some(&json!({"question": "What is the launch budget?", "noteDid": did}))).await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = send(&s, get.clone(), "/api/notes", Some(&bob), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "{v}");
    let (st, v) = send(&s, post.clone(), "/api/notes/converse", Some(&bob), Some(&json!({"question": "What is the launch budget?"}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["sources"], json!([]), "bob's notes are empty: {v}");
    assert!(!v["answer"].as_str().unwrap().contains("twenty thousand"), "{v}");
    // nor anonymously through the records API
    let (st, v) = s.get_json("/api/records?recordType=notes&source=gun", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "{v}");
    let (_, v) = s.get_json("/api/records?source=gun&search=twenty%20thousand", None).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "the transcript is private too: {v}");

    // the owner lists it and asks about it
    let (st, v) = send(&s, get.clone(), "/api/notes?note_type=MEETING", Some(&alice), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true);
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{v}");
    assert_eq!(recs[0]["oip"]["did"], did);
    let (_, v) = send(&s, get.clone(), "/api/notes?note_type=IDEA", Some(&alice), None).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "{v}");
    let (st, v) = send(&s, post.clone(), "/api/notes/converse", Some(&alice), Some(&json!({"question": "What is the launch budget?"}))).await;
    assert_eq!(st, 200, "{v}");
    let answer = v["answer"].as_str().unwrap();
    assert!(answer.contains("No language model") && answer.contains("twenty thousand dollars"), "{v}");
    assert_eq!(v["sources"][0]["did"], did);
    assert_eq!(v["model"], "extractive");
    let (st, v) = send(&s, post.clone(), "/api/notes/converse", Some(&alice), Some(&json!({"question": "Who books the venue?", "noteDid": did}))).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["answer"].as_str().unwrap().contains("Bob needs to book the venue"), "{v}");
    assert_eq!(v["context"]["note"]["did"], did);

    // regenerate: version 2, same note
    let (st, v) = send(&s, post.clone(), &format!("/api/notes/{hash}/regenerate-summary"), Some(&alice), Some(&json!({}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["summaryVersion"], 2);
    assert_eq!(v["noteDid"], did);
    let (_, n) = send(&s, get.clone(), &format!("/api/notes/{hash}"), Some(&alice), None).await;
    assert_eq!(n["note"]["data"]["notes"]["summary_version"], 2);
    assert_eq!(n["note"]["data"]["basic"]["name"], "MEETING: Alice, Bob", "the rest of the note is kept");

    // a hash that is not one, and one that does not exist
    let (st, _) = send(&s, get.clone(), "/api/notes/not-a-hash", Some(&alice), None).await;
    assert_eq!(st, 404);
    let (st, _) = send(&s, get.clone(), &format!("/api/notes/{}", "0".repeat(64)), Some(&alice), None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn bad_input_statuses() {
    let s = TestServer::start().await;
    let alice = token("alice-key");
    let c = reqwest::Client::new();
    let post = |b: Value| {
        let (s, alice) = (&s, &alice);
        async move { send(s, reqwest::Method::POST, "/api/notes/from-audio", Some(alice), Some(&b)).await }
    };
    let (st, v) = post(json!({"start_time": "2024-05-01T10:00:00Z"})).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("Either audio file or transcript must be provided")));
    let mut b = note_body(TRANSCRIPT);
    b["note_type"] = json!("PARTY");
    assert_eq!(post(b).await.0, 400);
    let mut b = note_body(TRANSCRIPT);
    b["end_time"] = json!("2024-05-01T09:00:00Z");
    let (st, v) = post(b).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("start_time must be before end_time")));
    let mut b = note_body(TRANSCRIPT);
    b["device_type"] = json!("");
    assert_eq!(post(b).await.0, 400);
    let mut b = note_body(TRANSCRIPT);
    b["participant_roles"] = json!("[\"lead\"]");
    assert_eq!(post(b).await.0, 400, "names and roles of different lengths");
    // a transcript over 256 KiB
    let (st, _) = post(note_body(&"word ".repeat(60 * 1024))).await;
    assert_eq!(st, 413);
    // audio: wrong type 415, over 10 MB 413, no STT configured 503
    let with_audio = |bytes: Vec<u8>, mime: &str| form_fields().part("audio", reqwest::multipart::Part::bytes(bytes).file_name("a.bin").mime_str(mime).unwrap());
    let r = c.post(s.url("/api/notes/from-audio")).bearer_auth(&alice).multipart(with_audio(vec![1; 100], "text/plain")).send().await.unwrap();
    assert_eq!(r.status(), 415);
    let r = c.post(s.url("/api/notes/from-audio-async")).bearer_auth(&alice).multipart(with_audio(vec![1; 10 * 1024 * 1024 + 1], "audio/wav")).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let r = c.post(s.url("/api/notes/from-audio")).bearer_auth(&alice).multipart(with_audio(vec![1; 1000], "audio/webm")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let r = c.post(s.url("/api/notes/from-audio")).bearer_auth(&alice).header("content-type", "text/plain").body("hi").send().await.unwrap();
    assert_eq!(r.status(), 415);
    let (st, v) = send(&s, reqwest::Method::POST, "/api/notes/converse", Some(&alice), Some(&json!({"question": " "}))).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("Question is required")));
    let (st, _) = send(&s, reqwest::Method::GET, "/api/notes/jobs?limit=many", Some(&alice), None).await;
    assert_eq!(st, 400);
    let (st, _) = send(&s, reqwest::Method::GET, "/api/notes/jobs/job_nope", Some(&alice), None).await;
    assert_eq!(st, 404);
    let (st, _) = send(&s, reqwest::Method::DELETE, "/api/notes/jobs/job_nope", Some(&alice), None).await;
    assert_eq!(st, 404);
    // the bounds are listed
    assert_eq!(s.bound("notes_jobs").await, (64, 0));
    assert_eq!(s.bound("notes_jobs_running").await, (4, 0));
}

// ---------------------------------------------------------------- fakes

/// A fake Ollama whose `/api/chat` streams a JSON summary as NDJSON, a token at a time.
async fn fake_ollama(summary: Value) -> String {
    use axum::routing::post;
    let text = summary.to_string();
    let app = axum::Router::new().route(
        "/api/chat",
        post(move |body: axum::Json<Value>| {
            let text = text.clone();
            async move {
                assert_eq!(body["stream"], json!(true));
                let mut frames: Vec<Result<bytes::Bytes, std::convert::Infallible>> = text
                    .as_bytes()
                    .chunks(7)
                    .map(|c| Ok(bytes::Bytes::from(format!("{}\n", json!({"model": "m", "message": {"role": "assistant", "content": String::from_utf8_lossy(c)}, "done": false})))))
                    .collect();
                frames.push(Ok(bytes::Bytes::from(format!("{}\n", json!({"model": "m", "message": {"role": "assistant", "content": ""}, "done": true})))));
                let s = futures_util::StreamExt::then(futures_util::stream::iter(frames), |f| async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    f
                });
                axum::response::Response::builder().header("content-type", "application/x-ndjson").body(axum::body::Body::from_stream(s)).unwrap()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// A fake STT service (the original's `POST /transcribe_file`, multipart `file`),
/// answering after `delay`; counts requests started and requests dropped before
/// they answered (the caller went away).

struct Unfinished(Arc<AtomicUsize>, bool);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn fake_stt(text: &'static str, delay: Duration) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use axum::routing::post;
    let (started, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (s2, f2) = (started.clone(), dropped.clone());
    let app = axum::Router::new().route(
        "/transcribe_file",
        post(move |mut mp: axum::extract::Multipart| {
            let (s2, f2) = (s2.clone(), f2.clone());
            async move {
                s2.fetch_add(1, Ordering::SeqCst);
                let mut guard = Unfinished(f2, false);
                let mut got = 0;
                while let Some(f) = mp.next_field().await.unwrap() {
                    if f.name() == Some("file") {
                        got = f.bytes().await.unwrap().len();
                    }
                }
                assert!(got > 0, "the audio file was sent");
                tokio::time::sleep(delay).await;
                guard.1 = true;
                axum::Json(json!({"text": text, "language": "en", "duration": 3.0, "segments": []}))
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), started, dropped)
}

#[tokio::test]
async fn an_llm_writes_the_summary_when_configured() {
    let summary = json!({
        "key_points": ["Launch moves to April", "Budget is 20k"],
        "decisions": ["April launch"],
        "action_items": [{"text": "Draft the press release", "assignee": "Alice", "due_text": "Friday"}],
        "open_questions": [],
        "sentiment_overall": "POSITIVE",
        "topics": ["launch"], "keywords": ["launch", "budget"], "tags": ["product_launch"],
    });
    let url = fake_ollama(summary).await;
    let s = TestServer::start_with(|c| c.voice.ollama_host = Some(url)).await;
    let alice = token("alice-key");
    let (st, v) = send(&s, reqwest::Method::POST, "/api/notes/from-audio", Some(&alice), Some(&note_body(TRANSCRIPT))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["summary"]["method"], "llm", "{v}");
    assert!(v["summary"]["note"].is_null());
    assert_eq!(v["summary"]["keyPoints"], 2);
    let (_, n) = send(&s, reqwest::Method::GET, &format!("/api/notes/{}", v["noteHash"].as_str().unwrap()), Some(&alice), None).await;
    let notes = &n["note"]["data"]["notes"];
    assert_eq!(notes["summary_key_points"], json!(["Launch moves to April", "Budget is 20k"]));
    assert_eq!(notes["summary_action_item_assignees"], json!(["Alice"]));
    assert_eq!(notes["sentiment_overall"], "POSITIVE");
    assert_eq!(n["note"]["data"]["basic"]["tagItems"], json!(["product_launch"]));
    assert!(notes["summary_model"].as_str().unwrap().starts_with("ollama:"), "{notes}");
}

#[tokio::test]
async fn audio_is_transcribed_and_async_jobs_complete_list_and_cancel() {
    let (stt, started, _) = fake_stt("Carol will ship the beta on Monday. We agreed the beta is ready.", Duration::from_millis(50)).await;
    let s = TestServer::start_with(|c| c.voice.stt_service_url = Some(stt)).await;
    let (alice, bob) = (token("alice-key"), token("bob-key"));
    let c = reqwest::Client::new();
    let audio = || form_fields().part("audio", reqwest::multipart::Part::bytes(vec![7u8; 4000]).file_name("standup.webm").mime_str("audio/webm").unwrap());

    // synchronous, from audio
    let r = c.post(s.url("/api/notes/from-audio")).bearer_auth(&alice).multipart(audio()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let (_, n) = send(&s, reqwest::Method::GET, &format!("/api/notes/{}", v["noteHash"].as_str().unwrap()), Some(&alice), None).await;
    assert_eq!(n["transcript"]["data"]["text"]["value"], "Carol will ship the beta on Monday. We agreed the beta is ready.");
    assert_eq!(n["note"]["data"]["audio"]["audioCodec"], "OPUS");
    assert_eq!(n["note"]["data"]["audio"]["size"], 4000);
    assert_eq!(n["note"]["data"]["audio"]["durationSec"], 3600);
    assert_eq!(n["note"]["data"]["notes"]["summary_action_item_assignees"], json!(["Carol"]));
    assert_eq!(started.load(Ordering::SeqCst), 1);

    // asynchronous: 202, then complete
    let r = c.post(s.url("/api/notes/from-audio-async")).bearer_auth(&alice).multipart(audio()).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    let job = v["jobId"].as_str().unwrap().to_owned();
    assert_eq!(v["statusUrl"], format!("/api/notes/jobs/{job}"));
    let path = format!("/api/notes/jobs/{job}");
    let mut last = Value::Null;
    let done = wait_for(
        async || {
            last = send(&s, reqwest::Method::GET, &path, Some(&alice), None).await.1;
            last["status"] == "complete"
        },
        10,
    )
    .await;
    assert!(done, "{last}");
    assert_eq!(last["progress"], 100);
    assert_eq!(last["result"]["noteHash"].as_str().map(str::len), Some(64), "{last}");
    // another user sees no job and cannot cancel it
    assert_eq!(send(&s, reqwest::Method::GET, &path, Some(&bob), None).await.0, 404);
    assert_eq!(send(&s, reqwest::Method::DELETE, &path, Some(&bob), None).await.0, 404);
    let (_, v) = send(&s, reqwest::Method::GET, "/api/notes/jobs", Some(&bob), None).await;
    assert_eq!(v["jobs"], json!([]));
    let (_, v) = send(&s, reqwest::Method::GET, "/api/notes/jobs", Some(&alice), None).await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["jobs"][0]["id"], job);
    // a finished job cannot be cancelled
    assert_eq!(send(&s, reqwest::Method::DELETE, &path, Some(&alice), None).await.0, 400);
    drop(s);

    // a slow transcription, cancelled: the job fails as cancelled and its STT request is dropped
    let (stt, started, dropped) = fake_stt("never", Duration::from_secs(30)).await;
    let s = TestServer::start_with(|c| c.voice.stt_service_url = Some(stt)).await;
    let r = c.post(s.url("/api/notes/from-audio-async")).bearer_auth(&alice).multipart(audio()).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let job = r.json::<Value>().await.unwrap()["jobId"].as_str().unwrap().to_owned();
    assert!(wait_for(async || started.load(Ordering::SeqCst) == 1, 10).await);
    assert_eq!(s.bound("notes_jobs_running").await, (4, 1));
    let (st, v) = send(&s, reqwest::Method::DELETE, &format!("/api/notes/jobs/{job}"), Some(&alice), None).await;
    assert_eq!((st, v["message"].as_str()), (200, Some("Job cancelled")));
    let (_, v) = send(&s, reqwest::Method::GET, &format!("/api/notes/jobs/{job}"), Some(&alice), None).await;
    assert_eq!((v["status"].as_str(), v["error"].as_str()), (Some("failed"), Some("Cancelled by user")));
    assert_eq!(s.bound("notes_jobs_running").await, (4, 0));
    assert!(wait_for(async || dropped.load(Ordering::SeqCst) == 1, 2).await, "the STT request was dropped within a second or two");
    let (_, v) = send(&s, reqwest::Method::GET, "/api/notes", Some(&alice), None).await;
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "a cancelled job stores nothing: {v}");
}
