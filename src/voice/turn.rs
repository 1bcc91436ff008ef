//! One voice turn, streamed: the user's text goes out, the answer's text goes out
//! as it is generated (never waiting for audio), the chunker cuts it into
//! sentences, and each is synthesized — at most `tts_per_dialogue` at once — and
//! sent in order as `audioChunk`; a failed chunk is reported (`audioError`), not
//! skipped silently. When the answer ended after its last chunk's audio already
//! went out (so no chunk could say `isFinal`), a final marker follows: the next
//! chunk index, a short silent WAV, `isFinal: true`, `finalMarker: true`. Then
//! `done` with the metrics (time to first text and first
//! audio among them). An LLM that fails or times out gives an `error` event and a
//! spoken apology; the turn still ends with `done`.
//!
//! The turn stops at once when its token is cancelled (barge-in, the last client
//! gone, TTL, shutdown): the LLM stream and running syntheses are dropped, which
//! cancels their requests and kills their processes. Everything the turn holds
//! is owned by this future.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::chunker::{speakable, Chunk, Chunker};
use super::dialogue::{Status, Turn};
use super::llm::{self, Message, TokenStream};
use super::rag::{self, Filters, Found};
use super::tts::{Audio, Speech, TtsError, MAX_SYNTH_CHARS};
use super::{VoiceService, MAX_ANSWER_BYTES};

/// What answers the question.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Search the records; the LLM (or, without one, the records) answers.
    Rag,
    /// The LLM alone, with the history.
    Llm,
    /// `converse-custom`: the caller's system prompt (and an optional record as context).
    Custom { system: String, context: Option<String> },
}

/// A turn as a request describes it.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub input: String,
    pub history: Vec<Message>,
    pub mode: Mode,
    pub model: Option<String>,
    /// None: text only (`outputMode=text`, or no engine).
    pub speech: Option<Speech>,
    pub filters: Filters,
    pub stt_ms: u64,
    /// `targetResponseLength` in tokens (custom), told to the model.
    pub max_tokens: Option<u32>,
}

/// Milliseconds of silence in the final marker chunk.
pub const FINAL_MARKER_MS: u32 = 20;

/// The apology spoken when the LLM cannot answer.
pub const APOLOGY: &str = "I'm sorry, I couldn't reach the language model just now. Please try again in a moment.";

/// How an answer is produced: the LLM's stream, or a fixed text (no LLM).
struct Answer {
    tokens: TokenStream,
    model: String,
    found: Option<Found>,
    rag_ms: u64,
    /// The LLM could not be reached: speak the apology, then report the error.
    error: Option<String>,
}

/// A fixed text as a stream of sentences, so it flows through the same pipeline.
fn fixed(text: String) -> TokenStream {
    let mut parts = Vec::new();
    let mut cur = String::new();
    for w in text.split_inclusive(' ') {
        cur.push_str(w);
        if w.trim_end().ends_with(['.', '!', '?']) {
            parts.push(Ok(std::mem::take(&mut cur)));
        }
    }
    if !cur.is_empty() {
        parts.push(Ok(cur));
    }
    Box::pin(futures_util::stream::iter(parts))
}

impl VoiceService {
    /// Open the answer for a request: search (RAG), then the LLM race or the
    /// records' own answer.
    async fn open_answer(&self, req: &TurnRequest) -> Answer {
        let mut found = None;
        let mut rag_ms = 0;
        let messages = match &req.mode {
            Mode::Rag => {
                let t = Instant::now();
                let f = rag::search(&self.records, &req.input, &req.filters).await;
                rag_ms = t.elapsed().as_millis() as u64;
                let m = rag::prompt(&f, &req.history, &req.input);
                found = Some(f);
                m
            }
            Mode::Llm => {
                let mut m = vec![Message::new("system", "You are ALFRED, a concise voice assistant. Answer in a few spoken sentences, no markdown.")];
                m.extend(req.history.iter().cloned());
                m.push(Message::new("user", req.input.clone()));
                m
            }
            Mode::Custom { system, context } => {
                let mut sys = system.clone();
                if let Some(n) = req.max_tokens {
                    sys.push_str(&format!("\n\nKeep the answer under about {n} tokens."));
                }
                let mut m = vec![Message::new("system", sys)];
                if let Some(c) = context {
                    m.push(Message::new("system", format!("Record for context:\n{c}")));
                }
                m.extend(req.history.iter().cloned());
                m.push(Message::new("user", req.input.clone()));
                m
            }
        };
        let providers = self.providers_for(req.model.as_deref());
        if providers.is_empty() {
            // no LLM: the records answer (RAG), or say how to configure one
            let f = match found {
                Some(f) => f,
                None => {
                    let t = Instant::now();
                    let f = rag::search(&self.records, &req.input, &req.filters).await;
                    rag_ms = t.elapsed().as_millis() as u64;
                    f
                }
            };
            let text = f.extractive_answer(&req.input);
            return Answer { tokens: fixed(text), model: "records".into(), found: Some(f), rag_ms, error: None };
        }
        match llm::race(&self.client, &providers, &messages, 0.4, self.limits.llm_first_token).await {
            Ok(w) => {
                let first = w.first;
                let rest = w.rest;
                let tokens: TokenStream = Box::pin(futures_util::stream::once(async move { Ok(first) }).chain(rest));
                Answer { tokens, model: w.provider, found, rag_ms, error: None }
            }
            Err(e) => Answer { tokens: fixed(APOLOGY.to_owned()), model: "none".into(), found, rag_ms, error: Some(e.to_string()) },
        }
    }

    /// Run a turn to its end (or its cancellation). The `turn` handle ends the
    /// turn in the registry when dropped.
    pub async fn run_turn(&self, turn: Turn, req: TurnRequest) {
        let cancel = turn.token().clone();
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = self.turn_inner(&turn, req) => {}
        }
    }

    async fn turn_inner(&self, turn: &Turn, req: TurnRequest) {
        let started = Instant::now();
        turn.send("textChunk", &json!({"role": "user", "text": req.input}));
        let mut answer = self.open_answer(&req).await;
        let speech = req.speech.clone().filter(|_| self.tts.available());

        let mut chunker = Chunker::new(Instant::now());
        let mut tts: FuturesOrdered<BoxFuture<'_, (Chunk, Result<(Audio, Option<tokio::sync::OwnedSemaphorePermit>, String), TtsError>)>> = FuturesOrdered::new();
        let mut waiting: VecDeque<Chunk> = VecDeque::new();
        let mut first_text: Option<Duration> = None;
        let mut first_audio: Option<Duration> = None;
        let (mut audio_chunks, mut audio_failures) = (0u32, 0u32);
        let mut answer_len = 0usize;
        let mut llm_done = false;
        let mut llm_error = answer.error.take();
        // whether a chunk marked `isFinal` went out, and the next chunk index
        let (mut final_sent, mut next_index) = (false, 1u32);

        loop {
            // start syntheses while there is room
            if let Some(sp) = &speech {
                while tts.len() < self.limits.tts_per_dialogue {
                    let Some(c) = waiting.pop_front() else { break };
                    let mut s = sp.clone();
                    s.text = speakable(&c.text).chars().take(MAX_SYNTH_CHARS).collect();
                    tts.push_back(Box::pin(async move {
                        let r = match self.tts.synthesize(&s).await {
                            Ok(a) => {
                                let b64_len = a.bytes.len().div_ceil(3) * 4;
                                match self.audio_permit(b64_len).await {
                                    Some(p) => {
                                        let b64 = base64::engine::general_purpose::STANDARD.encode(&a.bytes);
                                        Ok((Audio { bytes: bytes::Bytes::new(), ..a }, Some(p), b64))
                                    }
                                    None => Err(TtsError::Busy),
                                }
                            }
                            Err(e) => Err(e),
                        };
                        (c, r)
                    }));
                }
            } else {
                waiting.clear();
            }
            if llm_done && tts.is_empty() && waiting.is_empty() {
                break;
            }
            let deadline = chunker.deadline();
            tokio::select! {
                piece = answer.tokens.next(), if !llm_done => {
                    match piece {
                        Some(Ok(text)) => {
                            let text = if answer_len + text.len() > MAX_ANSWER_BYTES {
                                llm_done = true; // the answer's bound: stop reading the LLM
                                let mut cut = MAX_ANSWER_BYTES.saturating_sub(answer_len);
                                while !text.is_char_boundary(cut) { cut -= 1; }
                                text[..cut].to_owned()
                            } else {
                                text
                            };
                            answer_len += text.len();
                            if !text.is_empty() {
                                turn.send("textChunk", &json!({"role": "assistant", "text": text}));
                                if first_text.is_none() {
                                    let t = started.elapsed();
                                    crate::memory::metrics::record_voice_first_text(t);
                                    first_text = Some(t);
                                }
                                waiting.extend(chunker.push(&text, Instant::now()));
                            }
                        }
                        Some(Err(e)) => {
                            // the LLM failed mid-answer: apologise, report, end cleanly
                            llm_error = Some(e.to_string());
                            answer.tokens = fixed(format!(" {APOLOGY}"));
                        }
                        None => {
                            llm_done = true;
                        }
                    }
                    if llm_done {
                        answer.tokens = Box::pin(futures_util::stream::empty()); // drop the LLM's request now
                        waiting.extend(chunker.finish());
                    }
                }
                Some((chunk, r)) = tts.next(), if !tts.is_empty() => {
                    // the last chunk is final even when the answer ended exactly at a sentence
                    let is_final = chunk.is_final || (llm_done && waiting.is_empty() && tts.is_empty());
                    final_sent |= is_final;
                    next_index = next_index.max(chunk.index + 1);
                    match r {
                        Ok((audio, permit, b64)) => {
                            audio_chunks += 1;
                            if first_audio.is_none() {
                                let t = started.elapsed();
                                crate::memory::metrics::record_voice_first_audio(t);
                                first_audio = Some(t);
                            }
                            turn.send_audio(&json!({
                                "audio": b64, "chunkIndex": chunk.index, "text": chunk.text, "isFinal": is_final,
                                "adaptive": true, "mime": audio.mime, "engine": audio.engine,
                            }), permit);
                        }
                        Err(e) => {
                            audio_failures += 1;
                            turn.send("audioError", &json!({"chunkIndex": chunk.index, "text": chunk.text, "isFinal": is_final, "message": e.to_string()}));
                        }
                    }
                }
                _ = sleep_until(deadline), if deadline.is_some() && !llm_done => {
                    waiting.extend(chunker.tick(Instant::now()));
                }
            }
        }

        if speech.is_some() && next_index > 1 && !final_sent {
            // The LLM's stream ended after the last sentence's audio had gone out,
            // so no chunk said `isFinal`. The original's page (public/index.html)
            // plays chunks by index and ignores a chunk without audio, so the
            // marker is the next chunk: a short silent WAV marked final.
            let wav = super::tts::silent_wav(FINAL_MARKER_MS);
            turn.send_audio(&json!({
                "audio": base64::engine::general_purpose::STANDARD.encode(&wav), "chunkIndex": next_index, "text": "",
                "isFinal": true, "adaptive": true, "mime": "audio/wav", "engine": "final-marker", "finalMarker": true,
            }), None);
        }
        if let Some(e) = &llm_error {
            turn.send("error", &json!({"message": e}));
            turn.set_status(Status::Error);
        }
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        let mut done = json!({
            "data": "Voice conversation complete",
            "processing_metrics": {
                "stt_time_ms": req.stt_ms,
                "rag_time_ms": answer.rag_ms,
                "time_to_first_text_ms": ms(first_text),
                "time_to_first_audio_ms": ms(first_audio),
                "total_time_ms": started.elapsed().as_millis() as u64,
                "audio_chunks": audio_chunks,
                "audio_failures": audio_failures,
                "text_chunks": chunker.count(),
            },
            "pipeline_version": "2.0-voice-streaming",
            "model_used": answer.model,
            "timestamp": crate::civil::iso_now(),
        });
        if speech.is_none() && req.speech.is_some() {
            done["tts_unavailable"] = json!("no speech engine: install espeak-ng or set TTS_SERVICE_URL");
        }
        if let Some(f) = &answer.found {
            done["rag_metadata"] = rag_metadata(f);
        }
        turn.send("done", &done);
    }

    /// A whole answer at once (`/chat`, `/rag`): `(text, found, model, rag_ms, error)`.
    pub async fn answer_once(&self, req: &TurnRequest) -> (String, Option<Found>, String, u64, Option<String>) {
        let mut a = self.open_answer(req).await;
        let mut text = String::new();
        while let Some(p) = a.tokens.next().await {
            match p {
                Ok(t) => text.push_str(&t),
                Err(e) => {
                    a.error = Some(e.to_string());
                    text = APOLOGY.to_owned();
                    break;
                }
            }
            if text.len() >= MAX_ANSWER_BYTES {
                break;
            }
        }
        (text.trim().to_owned(), a.found, a.model, a.rag_ms, a.error)
    }
}

/// A non-streaming answer's extra keys: the RAG sources ([`rag_metadata`]) and
/// the LLM's failure, if any (`llm_error`).
pub fn add_answer_keys(out: &mut Value, found: Option<&Found>, llm_error: Option<String>) {
    if let Some(Value::Object(m)) = found.map(rag_metadata) {
        for (k, v) in m {
            out[k] = v;
        }
    }
    if let Some(e) = llm_error {
        out["llm_error"] = json!(e);
    }
}

/// `rag_metadata` / the `/chat` RAG keys.
pub fn rag_metadata(f: &Found) -> Value {
    json!({
        "sources": f.sources(),
        "context_used": !f.records.is_empty(),
        "search_results_count": f.records.len(),
        "search_results": f.search_results(),
        "applied_filters": f.applied_filters(),
    })
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
