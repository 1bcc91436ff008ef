//! `/api/voice/*` (also mounted as `/api/alfred/*`), the legacy
//! `/api/generate/{converse, open-stream, chat, active-dialogues}` and the
//! `/voice` page: thin handlers over [`crate::voice`]. Bodies may be JSON,
//! urlencoded or multipart with an optional `audio` file (≤ 10 MB, wav / mp3 /
//! webm / ogg: larger → 413, other types → 415), as the original's multer setup.

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use crate::state::SharedState;
use crate::voice::dialogue::{DialogueError, Registry};
use crate::voice::llm::Message;
use crate::voice::rag::Filters;
use crate::voice::stt::{AudioUpload, SttError};
use crate::voice::tts::{Speech, TtsError, MAX_SYNTH_CHARS};
use crate::voice::turn::{add_answer_keys, Mode, TurnRequest};
use crate::voice::{VoiceService, AUDIO_MIMES, MAX_AUDIO_UPLOAD, MAX_HISTORY, MAX_INPUT_BYTES};

/// Bound: a JSON or urlencoded body (history and pinned data included).
const MAX_FORM_BYTES: usize = 1024 * 1024;
/// Bound: one non-file multipart field.
const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Body limit of the routes that take audio: the file plus the form around it.
pub const AUDIO_BODY_LIMIT: usize = MAX_AUDIO_UPLOAD + MAX_FORM_BYTES;

/// A parsed body: its fields and its audio file.
#[derive(Default)]
pub(super) struct Body {
    pub(super) fields: Map<String, Value>,
    pub(super) audio: Option<AudioUpload>,
}

impl Body {
    pub(super) fn str(&self, k: &str) -> Option<String> {
        match self.fields.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
            _ => None,
        }
    }

    /// A text field, bounded, trimmed; empty → None.
    pub(super) fn text(&self, k: &str) -> Result<Option<String>, ApiError> {
        match self.str(k) {
            Some(s) if s.len() > MAX_INPUT_BYTES => Err(ApiError::TooLarge(format!("{k} is over {MAX_INPUT_BYTES} bytes"))),
            Some(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
            _ => Ok(None),
        }
    }

    fn f32(&self, k: &str) -> Option<f32> {
        self.str(k).and_then(|s| s.parse().ok()).filter(|f: &f32| f.is_finite())
    }

    /// An object field, or a JSON string holding one (multipart and urlencoded send strings).
    fn object(&self, k: &str) -> Option<Value> {
        match self.fields.get(k)? {
            Value::String(s) => serde_json::from_str(s).ok(),
            v => Some(v.clone()),
        }
    }

    /// `conversationHistory`: an array, a JSON string of one, or one object.
    pub(super) fn history(&self) -> Vec<Message> {
        let items = match self.object("conversationHistory") {
            Some(Value::Array(a)) => a,
            Some(o @ Value::Object(_)) => vec![o],
            _ => return Vec::new(),
        };
        let n = items.len();
        items
            .into_iter()
            .skip(n.saturating_sub(MAX_HISTORY))
            .filter_map(|m| {
                let role = m["role"].as_str().unwrap_or("user");
                let role = if matches!(role, "assistant" | "system") { role } else { "user" };
                let content = m["content"].as_str().or_else(|| m["text"].as_str())?;
                Some(Message::new(role, content.chars().take(MAX_INPUT_BYTES).collect::<String>()))
            })
            .collect()
    }
}

/// Read a JSON, urlencoded or multipart body.
pub(super) async fn read_body(st: &SharedState, req: Request) -> Result<Body, ApiError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim().to_owned();
    match essence.as_str() {
        "multipart/form-data" => read_multipart(st, req).await,
        "application/json" | "" => {
            let bytes = super::extract::body_bytes(req, MAX_FORM_BYTES).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Body::default());
            }
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(fields)) => Ok(Body { fields, audio: None }),
                Ok(_) => Err(ApiError::BadRequest("The body must be a JSON object".into())),
                Err(e) => Err(ApiError::BadRequest(format!("Invalid JSON body: {e}"))),
            }
        }
        "application/x-www-form-urlencoded" => {
            let bytes = super::extract::body_bytes(req, MAX_FORM_BYTES).await?;
            let fields = form_urlencoded::parse(&bytes).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect();
            Ok(Body { fields, audio: None })
        }
        other => Err(ApiError::UnsupportedMediaType(format!("Unsupported content type {other:?}: send JSON, urlencoded or multipart/form-data"))),
    }
}

async fn read_multipart(st: &SharedState, req: Request) -> Result<Body, ApiError> {
    let mut mp = Multipart::from_request(req, st).await.map_err(|_| ApiError::BadRequest("Malformed multipart body".into()))?;
    let mut body = Body::default();
    let mp_err = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("Audio file over {MAX_AUDIO_UPLOAD} bytes"))
        } else {
            ApiError::BadRequest(format!("Malformed multipart body: {}", e.body_text()))
        }
    };
    while let Some(mut field) = mp.next_field().await.map_err(mp_err)? {
        let name = field.name().unwrap_or("").to_owned();
        if field.file_name().is_some() || name == "audio" || name == "audio_prompt" {
            if name != "audio" {
                // `audio_prompt` (voice cloning) and stray files: read and ignore, bounded
                let mut n = 0usize;
                while let Some(c) = field.chunk().await.map_err(mp_err)? {
                    n += c.len();
                    if n > MAX_AUDIO_UPLOAD {
                        return Err(ApiError::TooLarge(format!("File over {MAX_AUDIO_UPLOAD} bytes")));
                    }
                }
                continue;
            }
            if body.audio.is_some() {
                return Err(ApiError::BadRequest("More than one audio file".into()));
            }
            let mime = field.content_type().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if !AUDIO_MIMES.contains(&mime.as_str()) {
                return Err(ApiError::UnsupportedMediaType("Invalid audio format: send audio/wav, audio/mpeg, audio/mp3, audio/webm or audio/ogg".into()));
            }
            let filename = field.file_name().unwrap_or("recording.webm").chars().filter(|c| !c.is_control()).take(128).collect();
            let mut buf = bytes::BytesMut::new();
            while let Some(c) = field.chunk().await.map_err(mp_err)? {
                if buf.len() + c.len() > MAX_AUDIO_UPLOAD {
                    return Err(ApiError::TooLarge(format!("Audio file over {MAX_AUDIO_UPLOAD} bytes")));
                }
                buf.extend_from_slice(&c);
            }
            body.audio = Some(AudioUpload { bytes: buf.freeze(), filename, mime });
        } else {
            // a note's transcript (`/api/notes`) may be longer than other fields
            let max = if name == "transcript" { crate::voice::notes::MAX_TRANSCRIPT_BYTES } else { MAX_FIELD_BYTES };
            let mut buf = Vec::new();
            while let Some(c) = field.chunk().await.map_err(mp_err)? {
                if buf.len() + c.len() > max {
                    return Err(ApiError::TooLarge(format!("Field {name} over {max} bytes")));
                }
                buf.extend_from_slice(&c);
            }
            body.fields.insert(name, Value::String(String::from_utf8_lossy(&buf).into_owned()));
        }
    }
    Ok(body)
}

/// A JSON error with the original's `{error, details}`.
fn upstream(status: StatusCode, error: &str, details: impl Into<Value>) -> Response {
    let mut r = (status, Json(json!({"error": error, "details": details.into()}))).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(super) fn stt_error(e: SttError) -> Response {
    match e {
        SttError::NotConfigured => upstream(StatusCode::SERVICE_UNAVAILABLE, "STT service unavailable", e.to_string()),
        SttError::Unavailable(m) => upstream(StatusCode::BAD_GATEWAY, "STT service unavailable", m),
        SttError::Failed { status, details } => {
            let s = StatusCode::from_u16(status).ok().filter(|s| s.is_client_error() || s.is_server_error()).unwrap_or(StatusCode::BAD_GATEWAY);
            upstream(s, "Transcription failed", details)
        }
    }
}

fn dialogue_error(e: DialogueError, retry_after: u64) -> ApiError {
    match e {
        DialogueError::Full => ApiError::Overloaded { what: "voice dialogues", retry_after },
        DialogueError::TooManyClients => ApiError::Overloaded { what: "clients of this dialogue", retry_after },
        DialogueError::BadId => ApiError::BadRequest(e.to_string()),
    }
}

/// The question: transcribed audio, else `userInput`, else `text`. `Err(Response)`
/// for an STT failure; `Ok(None)` when there is nothing to answer.
async fn input_of(v: &VoiceService, b: &Body, keys: &[&str]) -> Result<(Option<String>, u64), Response> {
    if let Some(a) = &b.audio {
        let t = std::time::Instant::now();
        let r = v.stt.transcribe(&v.client, a, b.str("language").as_deref(), "transcribe").await.map_err(stt_error)?;
        let text = r["text"].as_str().unwrap_or("").trim().to_owned();
        return Ok(((!text.is_empty()).then_some(text), t.elapsed().as_millis() as u64));
    }
    for k in keys {
        match b.text(k) {
            Ok(Some(t)) => return Ok((Some(t), 0)),
            Ok(None) => {}
            Err(e) => return Err(e.into_response()),
        }
    }
    Ok((None, 0))
}

/// Engine and voice as the original picks them from `voiceConfig` and the body.
fn speech_of(b: &Body) -> Option<Speech> {
    let vc = b.object("voiceConfig").filter(Value::is_object).unwrap_or(Value::Null);
    if vc["enabled"] == json!(false) || matches!(b.str("outputMode").as_deref(), Some("text")) {
        return None;
    }
    let engine = vc["engine"].as_str().map(str::to_owned).or_else(|| b.str("engine")).unwrap_or_else(|| "auto".into());
    let sub = match engine.as_str() {
        "edge_tts" => &vc["edge"],
        "maya1" => &vc["maya1"],
        "elevenlabs" => &vc["elevenlabs"],
        "chatterbox" => &vc["chatterbox"],
        _ => &Value::Null,
    };
    let voice_id = sub["selectedVoice"]
        .as_str()
        .or_else(|| sub["voice_id"].as_str())
        .or_else(|| vc["voiceId"].as_str())
        .or_else(|| vc["voice_id"].as_str())
        .map(str::to_owned)
        .or_else(|| b.str("elevenlabsVoiceId").filter(|_| engine == "elevenlabs"))
        .or_else(|| b.str("voice_id"))
        .unwrap_or_default();
    let speed = sub["speed"].as_f64().map(|f| f as f32).or_else(|| vc["speed"].as_f64().map(|f| f as f32)).or_else(|| b.f32("speed")).unwrap_or(1.0);
    Some(Speech { text: String::new(), engine, voice_id, speed })
}

fn filters_of(b: &Body) -> Filters {
    let sp = b.object("searchParams").unwrap_or(Value::Null);
    Filters {
        creator: b.str("creator_filter").or_else(|| sp["creatorHandle"].as_str().map(str::to_owned)),
        record_type: b.str("record_type_filter").or_else(|| sp["recordType"].as_str().map(str::to_owned)),
        tags: b.str("tag_filter").or_else(|| sp["tags"].as_str().map(str::to_owned)),
        limit: b.str("max_results").and_then(|s| s.parse().ok()),
    }
}

/// Open (or reuse) the dialogue, start the turn in the background, answer at once.
fn start_turn(st: &SharedState, id: String, req: TurnRequest, extra: Option<(&str, Value)>) -> Result<Response, ApiError> {
    let turn = st.voice.registry.begin_turn(&id).map_err(|e| dialogue_error(e, st.config.http.retry_after_secs))?;
    let voice = st.voice.clone();
    // The turn owns everything it holds; its token ends it (barge-in, last
    // client gone, TTL, shutdown), and the registry bounds how many exist.
    tokio::spawn(async move { voice.run_turn(turn, req).await });
    // the original's client-side thinking indicator: a trigger, never audio
    let kind = if fastrand::f32() < 0.3 { "text" } else { "sound" };
    let mut out = json!({"success": true, "dialogueId": id, "thinkingIndicator": {"type": kind}});
    if let Some((k, v)) = extra {
        out[k] = v;
    }
    Ok(Json(out).into_response())
}

/// `POST /converse`.
pub async fn converse(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let b = read_body(&st, req).await?;
    let (input, stt_ms) = match input_of(&st.voice, &b, &["userInput", "text"]).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let Some(input) = input else { return Err(ApiError::BadRequest("Either audio file or text is required".into())) };
    let id = match b.str("dialogueId").filter(|s| !s.is_empty()) {
        Some(id) => id,
        None => Registry::new_id("voice-dialogue"),
    };
    let mode = match b.str("processing_mode").as_deref() {
        Some(m) if m == "llm" || m.starts_with("llm-") => Mode::Llm,
        _ => Mode::Rag,
    };
    let model = match b.str("processing_mode").as_deref() {
        Some(m) if m.starts_with("llm-") => Some(m.to_owned()),
        _ => b.str("model"),
    };
    let req = TurnRequest { input, history: b.history(), mode, model, speech: speech_of(&b), filters: filters_of(&b), stt_ms, max_tokens: None };
    start_turn(&st, id, req, None)
}

/// `POST /converse-custom`: the caller's system and user prompts.
pub async fn converse_custom(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let b = read_body(&st, req).await?;
    let (input, stt_ms) = match input_of(&st.voice, &b, &["userPrompt", "userInput", "text"]).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let Some(input) = input else { return Err(ApiError::BadRequest("userPrompt or audio is required".into())) };
    let system = b.text("systemPrompt")?.unwrap_or_else(|| "You are a helpful assistant.".into());
    let context = match b.text("oipRecordDid")? {
        Some(did) => st.records.store.fetch_one(&did, &crate::store::Viewer::anonymous()).await.ok().flatten().map(|r| r.get().chars().take(8192).collect::<String>()),
        None => None,
    };
    let max_tokens = match b.str("targetResponseLength").as_deref() {
        Some("short") => Some(150),
        Some("medium") => Some(512),
        Some("long") => Some(1500),
        Some(s) => s.parse().ok().map(|n: u32| n.clamp(16, 4000)),
        None => None,
    };
    let id = b.str("dialogueId").filter(|s| !s.is_empty()).unwrap_or_else(|| Registry::new_id("custom-dialogue"));
    let req = TurnRequest {
        input,
        history: b.history(),
        mode: Mode::Custom { system, context },
        model: b.str("model"),
        speech: speech_of(&b),
        filters: Filters::default(),
        stt_ms,
        max_tokens,
    };
    start_turn(&st, id, req, None)
}

/// `POST /api/generate/converse` (legacy): `{userInput, model, systemPrompt, conversationHistory, dialogueId}`.
pub async fn legacy_converse(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let b = read_body(&st, req).await?;
    let Some(input) = b.text("userInput")?.or(b.text("text")?) else { return Err(ApiError::BadRequest("userInput is required".into())) };
    let id = b.str("dialogueId").filter(|s| !s.is_empty()).unwrap_or_else(|| Registry::new_id("dialogue"));
    let mode = match b.text("systemPrompt")? {
        Some(system) => Mode::Custom { system, context: None },
        None => Mode::Llm,
    };
    let req = TurnRequest { input, history: b.history(), mode, model: b.str("model"), speech: speech_of(&b), filters: Filters::default(), stt_ms: 0, max_tokens: None };
    start_turn(&st, id, req, None)
}

/// `GET /open-stream?dialogueId=` (legacy: `?id=`): the SSE stream.
pub async fn open_stream(State(st): State<SharedState>, Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let Some(id) = q.get("dialogueId").or_else(|| q.get("id")).filter(|s| !s.is_empty()) else {
        return Err(ApiError::BadRequest("dialogueId is required".into()));
    };
    let stream = st.voice.registry.attach(id).map_err(|e| dialogue_error(e, st.config.http.retry_after_secs))?;
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert(http::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    Ok(resp)
}

/// `POST /chat`: STT → RAG/LLM → one synthesis, not streamed.
pub async fn chat(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let b = read_body(&st, req).await?;
    let (input, stt_ms) = match input_of(&st.voice, &b, &["text", "userInput"]).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let Some(input) = input else { return Err(ApiError::BadRequest("Either audio file or text is required".into())) };
    let return_audio = !matches!(b.fields.get("return_audio"), Some(Value::Bool(false))) && b.str("return_audio").as_deref() != Some("false");
    let mode = match b.str("processing_mode").as_deref() {
        Some(m) if m == "llm" || m.starts_with("llm-") => Mode::Llm,
        _ => Mode::Rag,
    };
    let model = b.str("model");
    let treq = TurnRequest { input: input.clone(), history: b.history(), mode, model: model.clone(), speech: None, filters: filters_of(&b), stt_ms, max_tokens: None };
    let (text, found, model_used, rag_ms, llm_error) = st.voice.answer_once(&treq).await;
    let mut out = json!({
        "success": true,
        "input_text": input,
        "response_text": text,
        "response": text,
        "answer": text,
        "model_used": model_used,
        "has_audio": false,
        "pipeline_version": "2.0",
        "timestamp": crate::civil::iso_now(),
    });
    add_answer_keys(&mut out, found.as_ref(), llm_error);
    let mut tts_ms = 0;
    if return_audio {
        let mut s = speech_of(&b).unwrap_or_default();
        s.text = crate::voice::chunker::speakable(&text).chars().take(MAX_SYNTH_CHARS).collect();
        let t = std::time::Instant::now();
        match st.voice.tts.synthesize(&s).await {
            Ok(a) => {
                use base64::Engine as _;
                out["has_audio"] = json!(true);
                out["engine_used"] = json!(a.engine);
                out["audio_mime"] = json!(a.mime);
                out["audio_data"] = json!(base64::engine::general_purpose::STANDARD.encode(&a.bytes));
            }
            Err(e) => out["tts_error"] = json!(e.to_string()),
        }
        tts_ms = t.elapsed().as_millis() as u64;
    }
    out["processing_metrics"] = json!({"stt_time_ms": stt_ms, "rag_time_ms": rag_ms, "tts_time_ms": tts_ms, "total_time_ms": started.elapsed().as_millis() as u64});
    Ok(Json(out).into_response())
}

fn tts_error(e: TtsError) -> Response {
    match e {
        TtsError::Unavailable => upstream(StatusCode::SERVICE_UNAVAILABLE, "Speech synthesis failed", e.to_string()),
        TtsError::Busy => {
            let mut r = upstream(StatusCode::SERVICE_UNAVAILABLE, "Speech synthesis failed", e.to_string());
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            r
        }
        TtsError::Failed(m) => upstream(StatusCode::BAD_GATEWAY, "Speech synthesis failed", m),
    }
}

/// `POST /synthesize`: `{text, voice_id=female_1, speed=1, engine=auto}` → audio.
pub async fn synthesize(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let b = read_body(&st, req).await?;
    let Some(text) = b.text("text")? else { return Err(ApiError::BadRequest("Text is required".into())) };
    let s = Speech {
        text: crate::voice::chunker::speakable(&text).chars().take(MAX_SYNTH_CHARS).collect(),
        engine: b.str("engine").unwrap_or_else(|| "auto".into()),
        voice_id: b.str("voice_id").unwrap_or_else(|| "female_1".into()),
        speed: b.f32("speed").unwrap_or(1.0),
    };
    match st.voice.tts.synthesize(&s).await {
        Ok(a) => {
            let mut r = (StatusCode::OK, a.bytes).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
            if let Ok(v) = HeaderValue::from_str(&a.engine) {
                h.insert(http::HeaderName::from_static("x-engine-used"), v);
            }
            if let Ok(v) = HeaderValue::from_str(&s.voice_id) {
                h.insert(http::HeaderName::from_static("x-voice-id"), v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        }
        Err(e) => Ok(tts_error(e)),
    }
}

/// `POST /elevenlabs/:voiceId/synthesize`: 503 without a key.
pub async fn elevenlabs(State(st): State<SharedState>, super::extract::PathParam(voice): super::extract::PathParam, req: Request) -> Result<Response, ApiError> {
    let b = read_body(&st, req).await?;
    let Some(text) = b.text("text")? else { return Err(ApiError::BadRequest("Text is required".into())) };
    if !st.voice.tts.elevenlabs_configured() {
        return Ok(upstream(StatusCode::SERVICE_UNAVAILABLE, "ElevenLabs API key not configured", Value::Null));
    }
    let s = Speech { text: crate::voice::chunker::speakable(&text).chars().take(MAX_SYNTH_CHARS).collect(), engine: "elevenlabs".into(), voice_id: voice, speed: 1.0 };
    match st.voice.tts.synthesize(&s).await {
        Ok(a) => {
            let mut r = (StatusCode::OK, a.bytes).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
            Ok(r)
        }
        Err(e) => Ok(tts_error(e)),
    }
}

/// `POST /transcribe`: an `audio` file → `{success, text, language, duration, segments}`.
pub async fn transcribe(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let b = read_body(&st, req).await?;
    let Some(audio) = &b.audio else { return Err(ApiError::BadRequest("No audio file provided".into())) };
    let task = b.str("task").unwrap_or_else(|| "transcribe".into());
    match st.voice.stt.transcribe(&st.voice.client, audio, b.str("language").as_deref(), &task).await {
        Ok(mut v) => {
            v["success"] = json!(true);
            Ok(Json(v).into_response())
        }
        Err(e) => Ok(stt_error(e)),
    }
}

/// `POST /rag`: `{text, model, creator_filter, record_type_filter, tag_filter, max_results, conversationHistory}`.
pub async fn rag(State(st): State<SharedState>, req: Request) -> Result<Response, ApiError> {
    let b = read_body(&st, req).await?;
    let Some(text) = b.text("text")? else { return Err(ApiError::BadRequest("Text query is required".into())) };
    let treq = TurnRequest { input: text.clone(), history: b.history(), mode: Mode::Rag, model: b.str("model"), speech: None, filters: filters_of(&b), stt_ms: 0, max_tokens: None };
    let (answer, found, model, _, llm_error) = st.voice.answer_once(&treq).await;
    let mut out = json!({"success": true, "query": text, "answer": answer, "model_used": model, "timestamp": crate::civil::iso_now()});
    add_answer_keys(&mut out, found.as_ref(), llm_error);
    Ok(Json(out).into_response())
}

/// The built-in voices (espeak-ng).
fn espeak_voices() -> Vec<Value> {
    vec![
        json!({"id": "female_1", "name": "eSpeak Female (US)", "engine": "eSpeak", "gender": "female", "language": "en-US"}),
        json!({"id": "male_1", "name": "eSpeak Male (US)", "engine": "eSpeak", "gender": "male", "language": "en-US"}),
        json!({"id": "en-GB-SoniaNeural", "name": "eSpeak Female (UK)", "engine": "eSpeak", "gender": "female", "language": "en-GB"}),
        json!({"id": "en-GB-RyanNeural", "name": "eSpeak Male (UK)", "engine": "eSpeak", "gender": "male", "language": "en-GB"}),
    ]
}

/// `GET /voices`: the TTS service's voices, normalised to `{id, name, engine, gender, language}`, plus the built-in ones.
pub async fn voices(State(st): State<SharedState>) -> Json<Value> {
    let mut out: Vec<Value> = Vec::new();
    if let Some(raw) = st.voice.tts.service_voices().await {
        let items = raw["voices"].as_array().or_else(|| raw.as_array()).cloned().unwrap_or_default();
        for v in items.iter().take(1000) {
            let id = ["id", "ShortName", "shortName", "VoiceId", "voice_id"].iter().find_map(|k| v[*k].as_str());
            let Some(id) = id else { continue };
            let name = ["name", "LocalName", "FriendlyName", "DisplayName"].iter().find_map(|k| v[*k].as_str()).unwrap_or(id);
            let engine = v["engine"].as_str().or_else(|| v["Engine"].as_str()).unwrap_or(if v.get("ShortName").is_some() || v.get("Locale").is_some() { "Edge TTS" } else { "Chatterbox" });
            let gender = v["gender"].as_str().or_else(|| v["Gender"].as_str()).unwrap_or("");
            let language = v["language"].as_str().or_else(|| v["Locale"].as_str()).unwrap_or("");
            out.push(json!({"id": id, "name": name, "engine": engine, "gender": gender, "language": language}));
        }
    }
    if st.voice.tts.espeak_available() {
        out.extend(espeak_voices());
    }
    Json(json!({"voices": out}))
}

/// `GET /engines`.
pub async fn engines(State(st): State<SharedState>) -> Json<Value> {
    let t = &st.voice.tts;
    let mut engines = vec![json!({"id": "espeak", "name": "eSpeak NG (built in)", "available": t.espeak_available(), "preferred": t.service_url().is_none()})];
    if let Some(h) = t.service_health().await {
        let ok = h.is_ok();
        engines.insert(0, json!({"id": "tts-service", "name": "TTS service", "available": ok, "preferred": ok, "status": if ok { "healthy" } else { "unavailable" }}));
    }
    engines.push(json!({"id": "elevenlabs", "name": "ElevenLabs", "available": t.elevenlabs_configured(), "preferred": false}));
    Json(json!({"engines": engines}))
}

/// `GET /models`: the STT service's models.
pub async fn models(State(st): State<SharedState>) -> Response {
    match st.voice.stt.models(&st.voice.client).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => upstream(StatusCode::SERVICE_UNAVAILABLE, "Failed to fetch STT models", e.to_string()),
    }
}

/// `GET /health`: the services, the engines, and how to enable speech when none is.
pub async fn health(State(st): State<SharedState>) -> Json<Value> {
    let v = &st.voice;
    let svc = |url: Option<&str>, h: Option<Result<Value, String>>| match (url, h) {
        (None, _) | (_, None) => json!({"url": null, "status": "not configured"}),
        (Some(u), Some(Ok(d))) => json!({"url": u, "status": d["status"].as_str().unwrap_or("healthy"), "details": d}),
        (Some(u), Some(Err(e))) => json!({"url": u, "status": "unhealthy", "error": e}),
    };
    let tts = svc(v.tts.service_url(), v.tts.service_health().await);
    let stt_url = match &v.stt {
        crate::voice::stt::Stt::Service(u) => Some(u.as_str()),
        _ => None,
    };
    let stt_health = match stt_url {
        Some(u) => Some(crate::voice::tts::health(&v.client, u).await),
        None => None,
    };
    let stt = svc(stt_url, stt_health);
    let mut engines = Vec::new();
    if tts["status"] == "healthy" {
        engines.push("tts-service");
    }
    if v.tts.espeak_available() {
        engines.push("espeak");
    }
    if v.tts.elevenlabs_configured() {
        engines.push("elevenlabs");
    }
    let mut out = json!({
        "status": if engines.is_empty() { "degraded" } else { "healthy" },
        "services": {"stt": stt, "tts": tts},
        "tts_status": if engines.is_empty() { "No TTS Engines Available".to_owned() } else { format!("{} Available", engines[0]) },
        "available_engines": engines,
        "llm": v.providers.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "dialogues": v.registry.len(),
        "timestamp": crate::civil::iso_now(),
    });
    if engines.is_empty() {
        out["enable_speech"] = json!("Turns answer in text only. Install espeak-ng (Debian: apt-get install espeak-ng) and restart, or set TTS_SERVICE_URL or ELEVENLABS_API_KEY.");
    }
    if v.providers.is_empty() {
        out["enable_llm"] = json!("No LLM configured: answers are built from the records found. Set OLLAMA_HOST, OPENAI_API_KEY / OPENAI_BASE_URL or XAI_API_KEY.");
    }
    Json(out)
}

/// `GET /api/generate/active-dialogues`.
pub async fn active_dialogues(State(st): State<SharedState>) -> Json<Value> {
    let list = st.voice.registry.list();
    let dialogues: Vec<Value> = list.iter().map(|d| json!({"id": d.id, "clientCount": d.clients, "status": d.status, "startTime": d.start_time})).collect();
    Json(json!({"count": dialogues.len(), "dialogues": dialogues}))
}

const VOICE_PAGE: &str = include_str!("assets/voice.html");

/// `GET /voice`: type or record a question, hear the streamed answer, see the text.
pub async fn page() -> Response {
    let mut resp = (StatusCode::OK, VOICE_PAGE).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        http::HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; media-src 'self' data: blob:"),
    );
    resp
}
