//! LLM providers whose tokens stream as they are generated: Ollama (`POST
//! {OLLAMA_HOST}/api/chat`, NDJSON `{"message":{"content"},"done"}`) and any
//! OpenAI-compatible chat-completions server (`POST {base}/chat/completions`,
//! SSE `data: {"choices":[{"delta":{"content"}}]}` … `data: [DONE]`): OpenAI,
//! xAI, vLLM, llama.cpp's server, LM Studio.
//!
//! [`race`]: several providers asked at once; the first to produce text wins and
//! the others are dropped at that moment (their requests are cancelled, so no
//! loser's words can interleave). Nothing is called unless configured.
//!
//! Bounds: a line of the stream ([`MAX_LINE_BYTES`]); the stream as a whole is
//! capped by the outbound client; the time to the first token (the caller's
//! timeout); the answer's length is bounded by the turn ([`super::MAX_ANSWER_BYTES`]).

use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use crate::clients::{BodyStream, OutboundClient};

/// Bound: bytes of one NDJSON or SSE line from a provider.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// A whole generation may take this long.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("no language model is configured")]
    NotConfigured,
    #[error("{provider}: {message}")]
    Failed { provider: String, message: String },
    #[error("the language model did not answer in time")]
    Timeout,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message { role: role.to_owned(), content: content.into() }
    }
}

/// One configured provider.
#[derive(Debug, Clone)]
pub enum Provider {
    Ollama { host: String, model: String },
    OpenAi { name: &'static str, base: String, key: Option<String>, model: String },
}

impl Provider {
    pub fn name(&self) -> String {
        match self {
            Provider::Ollama { model, .. } => format!("ollama:{model}"),
            Provider::OpenAi { name, model, .. } => format!("{name}:{model}"),
        }
    }

    pub fn with_model(&self, model: &str) -> Provider {
        let mut p = self.clone();
        match &mut p {
            Provider::Ollama { model: m, .. } | Provider::OpenAi { model: m, .. } => *m = model.to_owned(),
        }
        p
    }

    /// Start a generation; the stream yields text pieces as they come.
    pub async fn stream(&self, client: &OutboundClient, messages: &[Message], temperature: f32) -> Result<TokenStream, LlmError> {
        let fail = |m: String| LlmError::Failed { provider: self.name(), message: m };
        let (req, kind) = match self {
            Provider::Ollama { host, model } => {
                let body = json!({"model": model, "messages": messages, "stream": true, "options": {"temperature": temperature}});
                let b = client.builder(Method::POST, &format!("{}/api/chat", host.trim_end_matches('/'))).map_err(|e| fail(e.to_string()))?;
                (b.json(&body), Wire::Ndjson)
            }
            Provider::OpenAi { base, key, model, .. } => {
                let body = json!({"model": model, "messages": messages, "stream": true, "temperature": temperature});
                let mut b = client.builder(Method::POST, &format!("{}/chat/completions", base.trim_end_matches('/'))).map_err(|e| fail(e.to_string()))?;
                if let Some(k) = key {
                    b = b.bearer_auth(k);
                }
                (b.json(&body).header("accept", "text/event-stream"), Wire::Sse)
            }
        };
        let resp = client.send(req.timeout(STREAM_TIMEOUT)).await.map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("answered {}", resp.status())));
        }
        let provider = self.name();
        let state = Lines { body: resp.stream(), buf: BytesMut::new(), kind, provider, ended: false };
        Ok(Box::pin(futures_util::stream::unfold(state, |mut s| async move { s.next_piece().await.map(|p| (p, s)) })))
    }
}

pub type TokenStream = Pin<Box<dyn Stream<Item = Result<String, LlmError>> + Send>>;

#[derive(Clone, Copy)]
enum Wire {
    Ndjson,
    Sse,
}

struct Lines {
    body: BodyStream,
    buf: BytesMut,
    kind: Wire,
    provider: String,
    ended: bool,
}

impl Lines {
    fn fail(&self, m: impl Into<String>) -> LlmError {
        LlmError::Failed { provider: self.provider.clone(), message: m.into() }
    }

    /// The next non-empty text piece, an error, or None at the end.
    async fn next_piece(&mut self) -> Option<Result<String, LlmError>> {
        loop {
            if self.ended {
                return None;
            }
            while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(nl + 1);
                let line = String::from_utf8_lossy(&line[..nl]);
                match self.parse(line.trim()) {
                    Piece::Text(t) if !t.is_empty() => return Some(Ok(t)),
                    Piece::Text(_) | Piece::Skip => {}
                    Piece::Done => {
                        self.ended = true;
                        return None;
                    }
                    Piece::Error(e) => {
                        self.ended = true;
                        return Some(Err(self.fail(e)));
                    }
                }
            }
            if self.buf.len() > MAX_LINE_BYTES {
                self.ended = true;
                return Some(Err(self.fail("a stream line passed its bound")));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(chunk.chunk()),
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(self.fail(e.to_string())));
                }
                None => {
                    // a last line without its newline
                    self.ended = true;
                    let rest = std::mem::take(&mut self.buf);
                    let line = String::from_utf8_lossy(&rest);
                    if let Piece::Text(t) = self.parse(line.trim()) {
                        if !t.is_empty() {
                            return Some(Ok(t));
                        }
                    }
                    return None;
                }
            }
        }
    }

    fn parse(&self, line: &str) -> Piece {
        if line.is_empty() {
            return Piece::Skip;
        }
        match self.kind {
            Wire::Ndjson => {
                let Ok(v) = serde_json::from_str::<Value>(line) else { return Piece::Error("malformed NDJSON line".into()) };
                if let Some(e) = v.get("error") {
                    return Piece::Error(e.as_str().unwrap_or("error").to_owned());
                }
                let text = v["message"]["content"].as_str().or_else(|| v["response"].as_str()).unwrap_or("").to_owned();
                if v["done"].as_bool() == Some(true) && text.is_empty() {
                    return Piece::Done;
                }
                Piece::Text(text)
            }
            Wire::Sse => {
                let Some(data) = line.strip_prefix("data:") else { return Piece::Skip }; // event:, id:, comments
                let data = data.trim();
                if data == "[DONE]" {
                    return Piece::Done;
                }
                let Ok(v) = serde_json::from_str::<Value>(data) else { return Piece::Error("malformed SSE data".into()) };
                if let Some(e) = v.get("error") {
                    return Piece::Error(e["message"].as_str().unwrap_or("error").to_owned());
                }
                let c = &v["choices"][0];
                Piece::Text(c["delta"]["content"].as_str().or_else(|| c["text"].as_str()).unwrap_or("").to_owned())
            }
        }
    }
}

enum Piece {
    Text(String),
    Skip,
    Done,
    Error(String),
}

/// The winner of a race: its name, its first piece of text, and the rest.
pub struct Winner {
    pub provider: String,
    pub first: String,
    pub rest: TokenStream,
}

/// Ask every provider at once; the first to produce text wins, the others are
/// dropped (cancelled) then. Fails when every provider failed, or none produced
/// text within `first_token`.
pub async fn race(client: &OutboundClient, providers: &[Provider], messages: &[Message], temperature: f32, first_token: Duration) -> Result<Winner, LlmError> {
    if providers.is_empty() {
        return Err(LlmError::NotConfigured);
    }
    let mut pending = FuturesUnordered::new();
    for p in providers {
        pending.push(async move {
            let mut s = p.stream(client, messages, temperature).await?;
            match s.next().await {
                Some(Ok(first)) => Ok(Winner { provider: p.name(), first, rest: s }),
                Some(Err(e)) => Err(e),
                None => Err(LlmError::Failed { provider: p.name(), message: "answered nothing".into() }),
            }
        });
    }
    let run = async {
        let mut last = LlmError::NotConfigured;
        while let Some(r) = pending.next().await {
            match r {
                Ok(w) => return Ok(w), // `pending` (the losers) is dropped with this scope
                Err(e) => {
                    tracing::warn!(error = %e, "LLM provider failed");
                    last = e;
                }
            }
        }
        Err(last)
    };
    tokio::time::timeout(first_token, run).await.map_err(|_| LlmError::Timeout)?
}

/// Collect a whole answer (non-streaming routes), at most `max` bytes.
pub async fn collect(w: Winner, max: usize) -> Result<String, LlmError> {
    let mut out = w.first;
    let mut rest = w.rest;
    while let Some(p) = rest.next().await {
        out.push_str(&p?);
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}
