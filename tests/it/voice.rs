//! Voice dialogues end to end: the SSE protocol frame by frame (records-only
//! answer, real espeak-ng audio); a fake LLM written here, speaking Ollama's
//! NDJSON and OpenAI's SSE with per-token delays, proves the first audio leaves
//! before the LLM has finished; the race cancels its loser; barge-in cancels the
//! previous turn; an LLM that is down gives an apology and an `error`; bad input
//! statuses; the dialogue bound; 1,000 dialogues whose clients leave mid-stream
//! leave no dialogue and no memory behind (real binary); the `/voice` page in
//! headless Chromium.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::*;

// ---------------------------------------------------------------- fake LLM

/// What the fake LLM saw and did.
#[derive(Default)]
struct FakeState {
    started: AtomicUsize,
    active: AtomicUsize,
    cancelled: AtomicUsize,
    completed: AtomicUsize,
    /// When the last token of the last completed stream was written.
    finished_at: Mutex<Option<Instant>>,
    last_request: Mutex<Value>,
}

struct FakeLlm {
    addr: std::net::SocketAddr,
    state: Arc<FakeState>,
}

#[derive(Clone)]
struct FakeCfg {
    tokens: Vec<String>,
    first_delay: Duration,
    delay: Duration,
}

/// Counts a stream as active until dropped; a drop before the end is a cancellation.
struct StreamGuard {
    state: Arc<FakeState>,
    done: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.state.active.fetch_sub(1, Ordering::SeqCst);
        if self.done {
            self.state.completed.fetch_add(1, Ordering::SeqCst);
        } else {
            self.state.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl FakeLlm {
    async fn start(cfg: FakeCfg) -> FakeLlm {
        use axum::routing::post;
        let state = Arc::new(FakeState::default());
        let (s1, s2) = (state.clone(), state.clone());
        let (c1, c2) = (cfg.clone(), cfg);
        let app = axum::Router::new()
            .route("/api/chat", post(move |body: axum::Json<Value>| fake_stream(s1.clone(), c1.clone(), body.0, true)))
            .route("/v1/chat/completions", post(move |body: axum::Json<Value>| fake_stream(s2.clone(), c2.clone(), body.0, false)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeLlm { addr, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn fake_stream(state: Arc<FakeState>, cfg: FakeCfg, body: Value, ndjson: bool) -> axum::response::Response {
    use axum::response::IntoResponse;
    assert_eq!(body["stream"], json!(true), "a streaming request");
    *state.last_request.lock().unwrap() = body.clone();
    state.started.fetch_add(1, Ordering::SeqCst);
    state.active.fetch_add(1, Ordering::SeqCst);
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let guard = StreamGuard { state: state.clone(), done: false };
    let n = cfg.tokens.len();
    let s = futures_util::stream::unfold((0usize, guard), move |(i, mut guard)| {
        let cfg = cfg.clone();
        let state = state.clone();
        let model = model.clone();
        async move {
            if i > n {
                return None;
            }
            tokio::time::sleep(if i == 0 { cfg.first_delay } else { cfg.delay }).await;
            let frame = if i < n {
                let t = &cfg.tokens[i];
                if ndjson {
                    format!("{}\n", json!({"model": model, "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": t}, "done": false}))
                } else {
                    format!("data: {}\n\n", json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]}))
                }
            } else {
                *state.finished_at.lock().unwrap() = Some(Instant::now());
                guard.done = true;
                if ndjson {
                    format!("{}\n", json!({"model": model, "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop"}))
                } else {
                    format!("data: {}\n\ndata: [DONE]\n\n", json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
                }
            };
            Some((Ok::<_, std::convert::Infallible>(bytes::Bytes::from(frame)), (i + 1, guard)))
        }
    });
    let mut r = axum::body::Body::from_stream(s).into_response();
    let ct = if ndjson { "application/x-ndjson" } else { "text/event-stream" };
    r.headers_mut().insert("content-type", ct.parse().unwrap());
    r
}

/// An answer of ~40 tokens: several sentences, so several audio chunks.
fn answer_tokens(tag: &str) -> Vec<String> {
    let text = format!(
        "The {tag} answer starts with a first sentence that is long enough. Then it keeps talking about the Thai bowl, which is ready in twenty five minutes and serves two. It uses rice, basil and lime, and it is a balanced dish with good macros. That is all."
    );
    text.split_inclusive(' ').map(str::to_owned).collect()
}

// ---------------------------------------------------------------- SSE client

#[derive(Debug, Clone)]
struct Frame {
    event: String,
    data: Value,
    at: Instant,
}

/// An open SSE stream, read frame by frame.
struct Sse {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: Vec<u8>,
    pub headers: reqwest::header::HeaderMap,
}

impl Sse {
    async fn open(url: &str) -> Sse {
        let r = reqwest::Client::new().get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "open-stream");
        let headers = r.headers().clone();
        Sse { body: Box::pin(r.bytes_stream()), buf: Vec::new(), headers }
    }

    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..i + 2).collect();
                let text = String::from_utf8(raw).unwrap();
                let mut event = String::new();
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = e.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                return Some(Frame { event, data: serde_json::from_str(&data).unwrap_or_else(|e| panic!("frame data not JSON ({e}): {data:.200}")), at: Instant::now() });
            }
            match tokio::time::timeout(Duration::from_secs(30), self.body.next()).await.expect("a frame within 30 s") {
                Some(Ok(b)) => self.buf.extend_from_slice(&b),
                _ => return None,
            }
        }
    }

    /// Every frame until `done` (included).
    async fn until_done(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = self.next().await {
            let done = f.event == "done";
            out.push(f);
            if done {
                break;
            }
        }
        out
    }
}

async fn converse(s: &TestServer, body: Value) -> Value {
    let (status, v) = s.post_json("/api/voice/converse", None, &body).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn wav_of(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

/// A WAV whose header sizes match its length: (channels, rate, bits, seconds).
fn check_wav(w: &[u8]) -> (u16, u32, u16, f64) {
    assert_eq!(&w[..4], b"RIFF");
    assert_eq!(&w[8..16], b"WAVEfmt ");
    assert_eq!(u32::from_le_bytes(w[4..8].try_into().unwrap()) as usize, w.len() - 8, "RIFF size");
    let ch = u16::from_le_bytes(w[22..24].try_into().unwrap());
    let rate = u32::from_le_bytes(w[24..28].try_into().unwrap());
    let bits = u16::from_le_bytes(w[34..36].try_into().unwrap());
    assert_eq!(u16::from_le_bytes(w[20..22].try_into().unwrap()), 1, "PCM");
    assert_eq!(&w[36..40], b"data");
    let data = u32::from_le_bytes(w[40..44].try_into().unwrap()) as usize;
    assert_eq!(data, w.len() - 44, "data size");
    let secs = data as f64 / (rate as f64 * ch as f64 * bits as f64 / 8.0);
    // not silence
    let loud = w[44..].chunks(2).filter(|s| s.len() == 2 && i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 1000).count();
    assert!(loud > 100, "audio has speech in it ({loud} loud samples)");
    (ch, rate, bits, secs)
}

async fn wait_dialogues(s: &TestServer, want: u64) {
    for _ in 0..100 {
        if s.bound("voice_dialogues").await.1 == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("voice_dialogues did not reach {want}: {:?}", s.bound("voice_dialogues").await);
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn sse_protocol_frame_by_frame_records_answer_and_espeak_audio() {
    let s = TestServer::start().await;
    s.seed_demo(1).await;
    let v = converse(&s, json!({"userInput": "How do I make the Mexican bowl recipe?"})).await;
    assert_eq!(v["success"], json!(true));
    let id = v["dialogueId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("voice-dialogue-"), "{id}");
    assert!(matches!(v["thinkingIndicator"]["type"].as_str(), Some("text" | "sound")));
    assert_eq!(v.as_object().unwrap().len(), 3, "no audio in the answer: {v}");

    let mut sse = Sse::open(&s.url(&format!("/api/voice/open-stream?dialogueId={id}"))).await;
    assert_eq!(sse.headers["content-type"], "text/event-stream");
    assert_eq!(sse.headers["cache-control"], "no-cache");
    assert_eq!(sse.headers["x-accel-buffering"], "no");
    assert_eq!(sse.headers["access-control-allow-origin"], "*");
    let frames = sse.until_done().await;
    let events: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(events[0], "ping");
    assert!(frames[0].data["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(frames[1].event, "textChunk");
    assert_eq!(frames[1].data, json!({"role": "user", "text": "How do I make the Mexican bowl recipe?"}));
    let text: String = frames.iter().filter(|f| f.event == "textChunk" && f.data["role"] == "assistant").map(|f| f.data["text"].as_str().unwrap()).collect();
    assert!(text.starts_with("I found "), "{text}");
    assert!(text.contains("Mexican Bowl"), "the answer names the records found: {text}");
    let audio: Vec<&Frame> = frames.iter().filter(|f| f.event == "audioChunk").collect();
    assert!(audio.len() >= 2, "several sentences, several chunks: {events:?}");
    for (i, a) in audio.iter().enumerate() {
        assert_eq!(a.data["chunkIndex"], json!(i + 1), "in order");
        assert_eq!(a.data["mime"], "audio/wav");
        assert_eq!(a.data["isFinal"], json!(i + 1 == audio.len()));
        assert!(!a.data["text"].as_str().unwrap().is_empty());
        let (ch, rate, bits, secs) = check_wav(&wav_of(a.data["audio"].as_str().unwrap()));
        assert_eq!((ch, bits), (1, 16));
        assert!(rate >= 16_000);
        assert!(secs > 0.3, "{secs}");
    }
    assert!(!events.contains(&"error") && !events.contains(&"audioError"), "{events:?}");
    let done = &frames.last().unwrap().data;
    assert_eq!(done["data"], "Voice conversation complete");
    assert_eq!(done["pipeline_version"], "2.0-voice-streaming");
    let m = &done["processing_metrics"];
    assert!(m["time_to_first_text_ms"].as_u64().is_some() && m["time_to_first_audio_ms"].as_u64().is_some(), "{m}");
    assert!(m["time_to_first_text_ms"].as_u64() <= m["time_to_first_audio_ms"].as_u64());
    assert_eq!(m["audio_chunks"], json!(audio.len()));
    assert!(done["rag_metadata"]["sources"].as_array().unwrap().len() >= 1);
    assert_eq!(done["rag_metadata"]["context_used"], json!(true));

    // a second client gets the text replayed (not the audio), then the stream stays open
    let mut late = Sse::open(&s.url(&format!("/api/voice/open-stream?dialogueId={id}"))).await;
    assert_eq!(late.next().await.unwrap().event, "ping");
    let replay = late.until_done().await;
    assert!(replay.iter().all(|f| f.event != "audioChunk"));
    assert_eq!(replay[0].data["role"], "user");
    drop(late);
    drop(sse);
    wait_dialogues(&s, 0).await;

    // the metrics exposition has the two histograms
    let m = reqwest::get(s.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(m.contains("oipd_voice_first_audio_seconds_count "), "histogram exported");
    // and the bounds are listed
    for b in ["voice_dialogues", "voice_replay_bytes", "voice_clients_per_dialogue", "voice_client_queue", "voice_tts_jobs", "voice_espeak_processes", "voice_audio_bytes"] {
        let (cap, _) = s.bound(b).await;
        assert!(cap > 0, "{b}");
    }
    // the alias and the legacy routes answer too
    let (st, v) = s.post_json("/api/alfred/converse", None, &json!({"text": "squat"})).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.get_json("/api/generate/active-dialogues", None).await;
    assert_eq!(st, 200);
    assert!(v["count"].as_u64().unwrap() >= 1 && v["dialogues"][0]["status"].is_string(), "{v}");
}

#[tokio::test]
async fn espeak_synthesize_is_valid_wav_of_plausible_duration() {
    let s = TestServer::start().await;
    let text = "Hello. This is the built in speech engine reading a sentence of about twelve words.";
    for path in ["/api/voice/synthesize", "/api/alfred/synthesize"] {
        let r = reqwest::Client::new().post(s.url(path)).json(&json!({"text": text, "voice_id": "male_1"})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "audio/wav");
        assert_eq!(r.headers()["x-engine-used"], "espeak");
        let w = r.bytes().await.unwrap();
        let (_, _, _, secs) = check_wav(&w);
        // ~15 words at 175 wpm: 4-6 s; allow a wide margin
        assert!((2.0..12.0).contains(&secs), "{secs} s");
    }
    // urlencoded works as well, and /chat returns text and base64 WAV
    let r = reqwest::Client::new().post(s.url("/api/voice/synthesize")).form(&[("text", "Short one.")]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (st, v) = s.post_json("/api/voice/chat", None, &json!({"text": "Tell me about squats"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["has_audio"], json!(true));
    assert!(v["response_text"].as_str().unwrap().len() > 10);
    check_wav(&wav_of(v["audio_data"].as_str().unwrap()));
    let (st, v) = s.post_json("/api/voice/chat", None, &json!({"text": "Tell me about squats", "return_audio": "false"})).await;
    assert_eq!(st, 200);
    assert_eq!(v["has_audio"], json!(false));
    assert!(v.get("audio_data").is_none());
}

async fn first_audio_before_llm_finishes(ollama: bool) {
    let fake = FakeLlm::start(FakeCfg { tokens: answer_tokens("streamed"), first_delay: Duration::from_millis(50), delay: Duration::from_millis(60) }).await;
    let url = if ollama { fake.url("") } else { fake.url("/v1") };
    let s = TestServer::start_with(|c| {
        if ollama {
            c.voice.ollama_host = Some(url);
        } else {
            c.voice.openai_base_url = Some(url);
        }
    })
    .await;
    let t0 = Instant::now();
    let v = converse(&s, json!({"userInput": "Tell me about the Thai bowl", "processing_mode": "llm"})).await;
    let id = v["dialogueId"].as_str().unwrap();
    let mut sse = Sse::open(&s.url(&format!("/api/voice/open-stream?dialogueId={id}"))).await;
    let frames = sse.until_done().await;
    let finished = fake.state.finished_at.lock().unwrap().expect("the LLM finished");
    let first_text = frames.iter().find(|f| f.event == "textChunk" && f.data["role"] == "assistant").unwrap();
    let first_audio = frames.iter().find(|f| f.event == "audioChunk").expect("audio");
    let llm_total = finished - t0;
    assert!(llm_total > Duration::from_millis(1500), "the fake LLM takes its time ({llm_total:?})");
    assert!(first_text.at < finished - Duration::from_millis(1000), "text streams as tokens come: first text {:?}, LLM done {:?}", first_text.at - t0, llm_total);
    assert!(first_audio.at < finished, "first audio {:?} left before the LLM finished at {:?}", first_audio.at - t0, llm_total);
    eprintln!("voice ({}): first text {:?}, first audio {:?}, LLM finished {:?}", if ollama { "ollama" } else { "openai" }, first_text.at - t0, first_audio.at - t0, llm_total);
    let text: String = frames.iter().filter(|f| f.event == "textChunk" && f.data["role"] == "assistant").map(|f| f.data["text"].as_str().unwrap()).collect();
    assert_eq!(text, answer_tokens("streamed").concat(), "every token, in order");
    let tokens = frames.iter().filter(|f| f.event == "textChunk").count();
    assert!(tokens > 20, "text goes out token by token ({tokens} frames)");
    let idx: Vec<u64> = frames.iter().filter(|f| f.event == "audioChunk").map(|f| f.data["chunkIndex"].as_u64().unwrap()).collect();
    assert_eq!(idx, (1..=idx.len() as u64).collect::<Vec<_>>(), "audio in order");
    assert!(idx.len() >= 3);
    let req = fake.state.last_request.lock().unwrap().clone();
    assert_eq!(req["messages"].as_array().unwrap().last().unwrap()["content"], "Tell me about the Thai bowl");
    let done = &frames.last().unwrap().data;
    assert_eq!(done["model_used"], if ollama { "ollama:llama3.2:3b" } else { "openai:gpt-4o-mini" });
    assert_eq!(fake.state.completed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn first_audio_leaves_before_the_llm_finishes_ollama_ndjson() {
    first_audio_before_llm_finishes(true).await;
}

#[tokio::test]
async fn first_audio_leaves_before_the_llm_finishes_openai_sse() {
    first_audio_before_llm_finishes(false).await;
}

/// The edge: the LLM's stream ends after the last sentence's audio already went
/// out, so no spoken chunk could be marked final; a final marker follows (the next
/// chunk index, a short silent WAV, `isFinal: true`), which the original's page
/// plays in order like any chunk and which ends its playback.
#[tokio::test]
async fn a_final_marker_follows_when_the_llm_ends_after_the_last_audio() {
    let tokens = vec![
        "This first sentence is long enough to start. ".to_owned(),
        "Then the second sentence is long enough to pass the eighty character minimum for sure. ".to_owned(),
    ];
    let fake = FakeLlm::start(FakeCfg { tokens, first_delay: Duration::from_millis(50), delay: Duration::from_millis(1500) }).await;
    let url = fake.url("");
    let s = TestServer::start_with(|c| c.voice.ollama_host = Some(url)).await;
    let v = converse(&s, json!({"userInput": "Say two sentences", "processing_mode": "llm"})).await;
    let id = v["dialogueId"].as_str().unwrap();
    let mut sse = Sse::open(&s.url(&format!("/api/voice/open-stream?dialogueId={id}"))).await;
    let frames = sse.until_done().await;
    let finished = fake.state.finished_at.lock().unwrap().expect("the LLM finished");
    let audio: Vec<&Frame> = frames.iter().filter(|f| f.event == "audioChunk").collect();
    let idx: Vec<u64> = audio.iter().map(|f| f.data["chunkIndex"].as_u64().unwrap()).collect();
    assert_eq!(idx, vec![1, 2, 3], "two spoken chunks, then the marker");
    assert!(audio[1].at < finished, "the second chunk's audio went out before the LLM ended (the edge)");
    assert_eq!(audio.iter().map(|f| f.data["isFinal"].as_bool().unwrap()).collect::<Vec<_>>(), vec![false, false, true]);
    let marker = &audio[2].data;
    assert_eq!((marker["finalMarker"].as_bool(), marker["mime"].as_str(), marker["text"].as_str()), (Some(true), Some("audio/wav"), Some("")));
    // the original's page ignores a chunk without audio: the marker carries a real, short WAV
    let w = wav_of(marker["audio"].as_str().unwrap());
    assert_eq!((&w[..4], &w[8..16], &w[36..40]), (&b"RIFF"[..], &b"WAVEfmt "[..], &b"data"[..]));
    assert_eq!(u32::from_le_bytes(w[4..8].try_into().unwrap()) as usize, w.len() - 8, "RIFF size");
    let data = u32::from_le_bytes(w[40..44].try_into().unwrap()) as usize;
    assert_eq!(data, w.len() - 44, "data size");
    assert!(data > 0 && data < 22050 * 2 / 10, "a short silence ({data} bytes)");
    let done = &frames.last().unwrap().data;
    assert_eq!(done["processing_metrics"]["audio_chunks"], 2, "the marker is not counted as speech");
    // an answer whose last chunk is the flush is final by itself: no marker
    let fake = FakeLlm::start(FakeCfg { tokens: vec!["A short answer that ends here".into()], first_delay: Duration::from_millis(20), delay: Duration::from_millis(20) }).await;
    let url = fake.url("");
    let s = TestServer::start_with(|c| c.voice.ollama_host = Some(url)).await;
    let v = converse(&s, json!({"userInput": "Say it", "processing_mode": "llm"})).await;
    let mut sse = Sse::open(&s.url(&format!("/api/voice/open-stream?dialogueId={}", v["dialogueId"].as_str().unwrap()))).await;
    let frames = sse.until_done().await;
    let audio: Vec<&Frame> = frames.iter().filter(|f| f.event == "audioChunk").collect();
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0].data["isFinal"], true);
    assert!(audio[0].data["finalMarker"].is_null());
}

#[tokio::test]
async fn the_race_cancels_the_loser_at_once() {
    let slow = FakeLlm::start(FakeCfg { tokens: answer_tokens("SLOW"), first_delay: Duration::from_millis(1500), delay: Duration::from_millis(50) }).await;
    let fast = FakeLlm::start(FakeCfg { tokens: answer_tokens("FAST"), first_delay: Duration::from_millis(50), delay: Duration::from_millis(10) }).await;
    let (su, fu) = (slow.url(""), fast.url("/v1"));
    let s = TestServer::start_with(|c| {
        c.voice.ollama_host = Some(su);
        c.voice.openai_base_url = Some(fu);
    })
    .await;
    let v = converse(&s, json!({"userInput": "race", "processing_mode": "llm", "outputMode": "text"})).await;
    let mut sse = Sse::open(&s.url(&format!("/api/voice/open-stream?dialogueId={}", v["dialogueId"].as_str().unwrap()))).await;
    let frames = sse.until_done().await;
    let text: String = frames.iter().filter(|f| f.event == "textChunk" && f.data["role"] == "assistant").map(|f| f.data["text"].as_str().unwrap()).collect();
    assert!(text.contains("FAST") && !text.contains("SLOW"), "only the winner speaks: {text}");
    assert!(frames.iter().all(|f| f.event != "audioChunk"), "outputMode=text: no audio");
    assert_eq!(slow.state.started.load(Ordering::SeqCst), 1, "both were asked");
    for _ in 0..20 {
        if slow.state.cancelled.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(slow.state.cancelled.load(Ordering::SeqCst), 1, "the loser's request was dropped");
    assert_eq!(slow.state.active.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn barge_in_cancels_the_previous_turn() {
    let fake = FakeLlm::start(FakeCfg { tokens: answer_tokens("first"), first_delay: Duration::from_millis(20), delay: Duration::from_millis(150) }).await;
    let u = fake.url("");
    let s = TestServer::start_with(|c| c.voice.ollama_host = Some(u)).await;
    let v = converse(&s, json!({"userInput": "one", "processing_mode": "llm", "dialogueId": "barge-1"})).await;
    assert_eq!(v["dialogueId"], "barge-1");
    let mut sse = Sse::open(&s.url("/api/voice/open-stream?dialogueId=barge-1")).await;
    loop {
        let f = sse.next().await.unwrap();
        if f.event == "textChunk" && f.data["role"] == "assistant" {
            break;
        }
    }
    assert_eq!(fake.state.active.load(Ordering::SeqCst), 1);
    let t = Instant::now();
    converse(&s, json!({"userInput": "two", "processing_mode": "llm", "dialogueId": "barge-1"})).await;
    // the first turn's LLM request is cancelled within a second
    while fake.state.cancelled.load(Ordering::SeqCst) < 1 {
        assert!(t.elapsed() < Duration::from_secs(1), "barge-in cancelled the first LLM request");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // the same client now hears the second turn, and nothing more of the first
    let mut seen_two = false;
    let frames = sse.until_done().await;
    for f in &frames {
        if f.event == "textChunk" && f.data["role"] == "user" {
            assert_eq!(f.data["text"], "two");
            seen_two = true;
        }
    }
    assert!(seen_two, "{:?}", frames.iter().map(|f| &f.event).collect::<Vec<_>>());
    assert_eq!(fake.state.started.load(Ordering::SeqCst), 2);
    let active = s.get_json("/api/generate/active-dialogues", None).await.1;
    assert_eq!(active["count"], json!(1), "one dialogue, reused: {active}");
}

#[tokio::test]
async fn an_llm_that_is_down_gives_an_apology_and_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed once dropped
    let s = TestServer::start_with(|c| c.voice.ollama_host = Some(format!("http://127.0.0.1:{port}"))).await;
    let v = converse(&s, json!({"userInput": "anything", "processing_mode": "llm"})).await;
    let mut sse = Sse::open(&s.url(&format!("/api/voice/open-stream?dialogueId={}", v["dialogueId"].as_str().unwrap()))).await;
    let frames = sse.until_done().await;
    let events: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    let text: String = frames.iter().filter(|f| f.event == "textChunk" && f.data["role"] == "assistant").map(|f| f.data["text"].as_str().unwrap()).collect();
    assert!(text.starts_with("I'm sorry"), "{text}");
    assert!(events.contains(&"audioChunk"), "the apology is spoken: {events:?}");
    let err = frames.iter().find(|f| f.event == "error").expect("an error event");
    assert!(err.data["message"].as_str().unwrap().contains("ollama"), "one shape, {{message}}: {}", err.data);
    assert_eq!(events.last(), Some(&"done"), "the turn ends cleanly");
}

#[tokio::test]
async fn bad_input_statuses() {
    let s = TestServer::start_with(|c| c.voice.voice_max_dialogues = 2).await;
    let c = reqwest::Client::new();
    for path in ["/api/voice/converse", "/api/voice/chat", "/api/voice/converse-custom"] {
        let (st, v) = s.post_json(path, None, &json!({})).await;
        assert_eq!(st, 400, "{path}: {v}");
        let (st, _) = s.post_json(path, None, &json!({"text": "   "})).await;
        assert_eq!(st, 400, "{path} blank");
    }
    let (st, v) = s.post_json("/api/voice/synthesize", None, &json!({})).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("Text is required")));
    let (st, _) = s.post_json("/api/voice/rag", None, &json!({"text": ""})).await;
    assert_eq!(st, 400);
    let (st, v) = s.get_json("/api/voice/open-stream", None).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("dialogueId is required")));
    let (st, _) = s.get_json("/api/voice/open-stream?dialogueId=has%20space", None).await;
    assert_eq!(st, 400);
    let r = c.post(s.url("/api/voice/converse")).header("content-type", "text/plain").body("hi").send().await.unwrap();
    assert_eq!(r.status(), 415);
    let (st, _) = s.post_json("/api/voice/transcribe", None, &json!({})).await;
    assert_eq!(st, 400, "no audio file");
    let r = c.get(s.url("/api/voice/converse")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    // audio: wrong type → 415, over 10 MB → 413, right type without an STT service → 503
    let part = |bytes: Vec<u8>, mime: &str| reqwest::multipart::Form::new().part("audio", reqwest::multipart::Part::bytes(bytes).file_name("a.bin").mime_str(mime).unwrap());
    let r = c.post(s.url("/api/voice/converse")).multipart(part(vec![1; 100], "audio/flac")).send().await.unwrap();
    assert_eq!(r.status(), 415);
    let r = c.post(s.url("/api/voice/transcribe")).multipart(part(vec![1; 100], "text/plain")).send().await.unwrap();
    assert_eq!(r.status(), 415);
    let r = c.post(s.url("/api/voice/converse")).multipart(part(vec![1; 10 * 1024 * 1024 + 1], "audio/wav")).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let r = c.post(s.url("/api/voice/transcribe")).multipart(part(vec![1; 1000], "audio/webm")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "STT service unavailable");
    // the dialogue bound: 503 + Retry-After past it
    let _a = Sse::open(&s.url("/api/voice/open-stream?dialogueId=a")).await;
    let _b = Sse::open(&s.url("/api/voice/open-stream?dialogueId=b")).await;
    let r = c.post(s.url("/api/voice/converse")).json(&json!({"text": "hello"})).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(s.bound("voice_dialogues").await, (2, 2));
    // health says what is available
    let (st, h) = s.get_json("/api/voice/health", None).await;
    assert_eq!(st, 200);
    assert!(h["available_engines"].as_array().unwrap().contains(&json!("espeak")), "{h}");
    assert!(h["enable_llm"].is_string());
}

/// The real binary: 1,000 dialogues whose clients leave mid-stream (while the
/// LLM is still talking and speech is being synthesized) leave no dialogue, no
/// LLM request and no memory behind.
#[test]
fn a_thousand_abandoned_dialogues_leave_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let fake = FakeLlm::start(FakeCfg { tokens: answer_tokens("abandoned"), first_delay: Duration::from_millis(5), delay: Duration::from_millis(40) }).await;
        let dir = tempfile::tempdir().unwrap();
        let server = Oipd::serve_env(&dir.path().join("data"), &[], &[("OLLAMA_HOST", &fake.url("")), ("OIPD_VOICE_MAX_DIALOGUES", "64")]);
        let base = server.url("");
        let client = reqwest::Client::new();
        let round = |n: usize| {
            let base = base.clone();
            let client = client.clone();
            async move {
                futures_util::stream::iter(0..n)
                    .for_each_concurrent(32, |_| {
                        let base = base.clone();
                        let client = client.clone();
                        async move {
                            let v: Value = loop {
                                let r = client.post(format!("{base}/api/voice/converse")).json(&json!({"userInput": "Tell me something long", "processing_mode": "llm"})).send().await.unwrap();
                                if r.status() == 503 {
                                    tokio::time::sleep(Duration::from_millis(20)).await; // the bound holds; retry
                                    continue;
                                }
                                assert_eq!(r.status(), 200);
                                break r.json().await.unwrap();
                            };
                            let id = v["dialogueId"].as_str().unwrap();
                            let mut sse = Sse::open(&format!("{base}/api/voice/open-stream?dialogueId={id}")).await;
                            // leave after the first few tokens: mid-stream
                            let mut n = 0;
                            while let Some(f) = sse.next().await {
                                if f.event == "textChunk" {
                                    n += 1;
                                    if n == 4 {
                                        break;
                                    }
                                }
                            }
                        }
                    })
                    .await;
            }
        };
        let settle = |fake_state: Arc<FakeState>| {
            let base = base.clone();
            async move {
                for _ in 0..100 {
                    let v: Value = reqwest::get(format!("{base}/api/health/memory")).await.unwrap().json().await.unwrap();
                    let d = v["bounds"].as_array().unwrap().iter().find(|b| b["name"] == "voice_dialogues").unwrap()["fill"].as_u64().unwrap();
                    if d == 0 && fake_state.active.load(Ordering::SeqCst) == 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("dialogues or LLM requests left behind");
            }
        };
        round(200).await; // warm-up: pools, allocator arenas, espeak-ng pages
        settle(fake.state.clone()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await; // jemalloc gives freed pages back within ~1 s
        let base_rss = server.rss_kb();
        round(1000).await;
        settle(fake.state.clone()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = server.rss_kb();
        let started = fake.state.started.load(Ordering::SeqCst);
        assert_eq!(started, 1200, "every turn asked the LLM");
        assert!(fake.state.cancelled.load(Ordering::SeqCst) >= 1100, "abandoned turns cancelled their LLM requests: {}", fake.state.cancelled.load(Ordering::SeqCst));
        eprintln!("voice: resident {base_rss} kB after warm-up → {after} kB after 1,000 abandoned dialogues");
        assert!(after <= base_rss + 6 * 1024, "resident memory grew {} kB", after as i64 - base_rss as i64);
    });
}

/// The `/voice` page in headless Chromium: it asks, receives the streamed text
/// and the audio chunks in order, decodes every one and starts playing them.
#[test]
fn the_voice_page_streams_text_and_plays_audio_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Oipd::serve(&data, &["--demo"]);
    let out = headless(&server.url("/voice?rate=16&q=How%20do%20I%20make%20a%20Mexican%20bowl"));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("data-state=\"done\""), "the turn finished: {dom:.3000}");
    let attr = |name: &str| dom.split(&format!("data-{name}=\"")).nth(1).and_then(|s| s.split('"').next()).map(str::to_owned);
    let text_len: usize = attr("text").unwrap().parse().unwrap();
    assert!(text_len > 40, "text shown");
    assert!(dom.contains("Mexican Bowl"), "the answer is on the page");
    let received = attr("audio-received").expect("audio chunks received");
    let n = received.split(',').count();
    assert!(n >= 2, "{received}");
    let want: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    assert_eq!(received, want.join(","), "audio chunks arrived in order");
    // Playback itself runs on the media clock, which headless Chromium's virtual
    // time does not advance: the first chunk starts playing (autoplay allowed),
    // the queue holds the rest in order behind it.
    let played = attr("audio-played").expect("audio played");
    assert!(played.starts_with('1'), "the first chunk plays first: {played}");
    // Decoding runs on the browser's own threads, which headless Chromium's
    // virtual time does not wait for: on a loaded machine the last chunks may
    // still be decoding when the DOM is dumped. What was decoded is audio, of
    // chunks that arrived.
    let decoded = attr("audio-decoded").expect("decoded by the browser");
    let decoded: Vec<&str> = decoded.split(',').collect();
    assert!(!decoded.is_empty() && decoded.len() <= n, "{decoded:?} of {n}");
    for d in &decoded {
        let (index, secs) = d.split_once(':').expect("index:duration");
        assert!(index.parse::<usize>().is_ok_and(|i| (1..=n).contains(&i)), "{d}");
        assert!(secs.parse::<f64>().is_ok_and(|s| s > 0.0), "a decoded chunk has a duration: {d}");
    }
    assert!(attr("audio-error").is_none(), "{:?}", attr("audio-error"));
}

fn headless(url: &str) -> std::process::Output {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| std::process::Command::new("sh").args(["-c", &format!("command -v {c}")]).output().is_ok_and(|o| o.status.success()))
        .expect("headless Chromium is required (scripts/test.sh installs it)");
    let profile = tempfile::tempdir().unwrap();
    std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            "--virtual-time-budget=60000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .unwrap()
}
