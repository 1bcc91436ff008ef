//! `/api/notes/*` (ALFRED notes), signed-in callers only: thin handlers over
//! [`crate::voice::notes`]. Bodies as the voice routes (JSON, urlencoded or
//! multipart with an `audio` file ≤ 10 MB of the voice types; a `transcript` ≤
//! 256 KiB). A note, a job or a transcript of someone else is answered as missing
//! (404), never as forbidden.

use axum::extract::{RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{self, PathParam, RequiredUser};
use super::voice::{read_body, stt_error, Body};
use crate::state::SharedState;
use crate::voice::jobs::{JobError, MAX_JOBS};
use crate::voice::notes::{IngestError, NoteParams, NotesError, Source, MAX_TRANSCRIPT_BYTES};

fn notes_error(e: NotesError) -> ApiError {
    match e {
        NotesError::BadRequest(m) => ApiError::BadRequest(m),
        NotesError::NotFound => ApiError::NotFound("Note not found"),
        NotesError::Records(r) => r.into(),
    }
}

fn ingest_error(e: IngestError) -> Response {
    match e {
        IngestError::Stt(e) => stt_error(e),
        IngestError::EmptyTranscript => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"success": false, "error": e.to_string()}))).into_response(),
        IngestError::TooLarge => ApiError::TooLarge(e.to_string()).into_response(),
        IngestError::Notes(e) => notes_error(e).into_response(),
    }
}

/// The key of a signed-in caller (403 for tokens that name none).
fn key_of(user: &crate::auth::User) -> Result<String, ApiError> {
    user.public_key().map(str::to_owned).ok_or_else(|| ApiError::Forbidden("Token has no publicKey or publisherPubKey claim".into()))
}

/// The body's fields as the checks read them: trimmed, empty as missing.
fn getter(b: &Body) -> impl Fn(&str) -> Option<String> + '_ {
    |k: &str| b.str(k).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The checked request of `from-audio` and `from-audio-async`.
fn note_request(b: Body) -> Result<(NoteParams, Source), ApiError> {
    let transcript = b.str("transcript").filter(|t| !t.trim().is_empty());
    let has_input = b.audio.is_some() || transcript.is_some();
    if !has_input {
        return Err(ApiError::BadRequest("Either audio file or transcript must be provided".into()));
    }
    let p = NoteParams::parse(&getter(&b)).map_err(notes_error)?;
    let src = match (b.audio, transcript) {
        (Some(a), _) => Source::Audio(a),
        (None, Some(t)) if t.len() > MAX_TRANSCRIPT_BYTES => return Err(ApiError::TooLarge(format!("transcript is over {MAX_TRANSCRIPT_BYTES} bytes"))),
        (None, t) => Source::Transcript(t.unwrap_or_default().trim().to_owned()),
    };
    Ok((p, src))
}

/// `POST /api/notes/from-audio`: transcribe (audio), summarize, store; the note's hash and DID.
pub async fn from_audio(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> Result<Response, ApiError> {
    let key = extract::writer_key(&user)?.to_owned();
    let (p, src) = note_request(read_body(&st, req).await?)?;
    match st.voice.ingest(&key, &p, src, &|_, _, _| {}).await {
        Ok(v) => Ok(Json(v).into_response()),
        Err(e) => Ok(ingest_error(e)),
    }
}

/// `POST /api/notes/from-audio-async`: the same as a job; 202 with its id at once.
pub async fn from_audio_async(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> Result<Response, ApiError> {
    let key = extract::writer_key(&user)?.to_owned();
    let (p, src) = note_request(read_body(&st, req).await?)?;
    let (id, cancel) = st
        .voice
        .note_jobs
        .create(&key, p.duration_sec)
        .map_err(|_| ApiError::Overloaded { what: "notes jobs", retry_after: st.config.http.retry_after_secs })?;
    let voice = st.voice.clone();
    let job = id.clone();
    let minutes = (p.duration_sec as f64 / 60.0).round() as i64;
    let estimate = (p.duration_sec as f64 * 1.5 / 60.0).round() as i64;
    // The job owns its input; its token (DELETE, the sweep, shutdown) ends it,
    // dropping the STT and LLM requests in flight. The job table bounds how many run.
    tokio::spawn(async move {
        let progress = |s, n, step: &str| voice.note_jobs.update(&job, s, n, step);
        tokio::select! {
            _ = cancel.cancelled() => {}
            r = voice.ingest(&key, &p, src, &progress) => voice.note_jobs.finish(&job, r.map_err(|e| e.to_string())),
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "jobId": id,
            "message": format!("Processing started for {minutes} minute recording"),
            "estimatedProcessingTime": format!("{estimate}-{} minutes", estimate * 2),
            "statusUrl": format!("/api/notes/jobs/{id}"),
        })),
    )
        .into_response())
}

fn query_get(raw: &Option<String>) -> impl Fn(&str) -> Option<String> + '_ {
    move |k: &str| {
        form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
            .filter(|(key, _)| key == k)
            .last()
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// `GET /api/notes/jobs?limit=&status=`: the caller's jobs, newest first.
pub async fn jobs(State(st): State<SharedState>, RequiredUser(user): RequiredUser, RawQuery(q): RawQuery) -> Result<Json<Value>, ApiError> {
    let key = key_of(&user)?;
    let get = query_get(&q);
    let limit = match get("limit") {
        None => 10,
        Some(l) => l.parse::<usize>().map_err(|_| ApiError::BadRequest(format!("limit must be a number, got {l:?}")))?.clamp(1, MAX_JOBS),
    };
    let jobs = st.voice.note_jobs.list(&key, limit, get("status").as_deref());
    Ok(Json(json!({"success": true, "jobs": jobs, "stats": st.voice.note_jobs.stats()})))
}

/// `GET /api/notes/jobs/:jobId`.
pub async fn job(State(st): State<SharedState>, RequiredUser(user): RequiredUser, PathParam(id): PathParam) -> Result<Json<Value>, ApiError> {
    let key = key_of(&user)?;
    let mut v = st.voice.note_jobs.status(&id, &key).ok_or(ApiError::NotFound("Job not found"))?;
    v["success"] = json!(true);
    Ok(Json(v))
}

/// `DELETE /api/notes/jobs/:jobId`: cancel a running job.
pub async fn cancel_job(State(st): State<SharedState>, RequiredUser(user): RequiredUser, PathParam(id): PathParam) -> Result<Json<Value>, ApiError> {
    let key = key_of(&user)?;
    match st.voice.note_jobs.cancel(&id, &key) {
        Ok(()) => Ok(Json(json!({"success": true, "message": "Job cancelled"}))),
        Err(JobError::NotFound) => Err(ApiError::NotFound("Job not found")),
        Err(e) => Err(ApiError::BadRequest(e.to_string())),
    }
}

/// `GET /api/notes?note_type=&from=&to=&search=&limit=&page=&sortBy=`: the caller's notes.
pub async fn list(State(st): State<SharedState>, RequiredUser(user): RequiredUser, RawQuery(q): RawQuery) -> Result<Json<Value>, ApiError> {
    let key = key_of(&user)?;
    st.voice.list_notes(&key, &query_get(&q)).await.map(Json).map_err(notes_error)
}

/// `GET /api/notes/:noteHash`: the note, its transcript record, its chunk info.
pub async fn get_note(State(st): State<SharedState>, RequiredUser(user): RequiredUser, PathParam(hash): PathParam) -> Result<Json<Value>, ApiError> {
    let key = key_of(&user)?;
    let n = st.voice.load_note(&key, &hash).await.map_err(notes_error)?;
    let notes = &n.record["data"]["notes"];
    let chunks = json!({"count": notes["chunk_count"].as_u64().unwrap_or(0), "strategy": notes["chunking_strategy"].as_str().unwrap_or("BY_TIME_30S")});
    Ok(Json(json!({"success": true, "note": n.record, "transcript": n.transcript, "chunks": chunks})))
}

/// `POST /api/notes/:noteHash/regenerate-summary` (`model`).
pub async fn regenerate(State(st): State<SharedState>, RequiredUser(user): RequiredUser, PathParam(hash): PathParam, req: Request) -> Result<Json<Value>, ApiError> {
    let key = extract::writer_key(&user)?.to_owned();
    let b = read_body(&st, req).await?;
    let model = getter(&b)("model");
    st.voice.regenerate_summary(&key, &hash, model.as_deref()).await.map(Json).map_err(notes_error)
}

/// `POST /api/notes/converse` (`question`, `noteDid`, `model`, `conversationHistory`, `maxRelated`).
pub async fn converse(State(st): State<SharedState>, RequiredUser(user): RequiredUser, req: Request) -> Result<Json<Value>, ApiError> {
    let key = key_of(&user)?;
    let b = read_body(&st, req).await?;
    let Some(question) = b.text("question")? else { return Err(ApiError::BadRequest("Question is required".into())) };
    let get = getter(&b);
    let note_did = get("noteDid");
    let max_related = get("maxRelated").and_then(|s| s.parse().ok()).unwrap_or(5);
    st.voice
        .notes_answer(&key, &question, note_did.as_deref(), &b.history(), get("model").as_deref(), max_related)
        .await
        .map(Json)
        .map_err(notes_error)
}
