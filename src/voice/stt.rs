//! Speech to text: the original's STT service (`POST {STT_SERVICE_URL}/transcribe_file`,
//! multipart `file`, `language`, `task` → `{text, language, duration, segments}`),
//! or an OpenAI-compatible `POST {base}/audio/transcriptions` (multipart `file`,
//! `model`). Neither is called unless configured.
//!
//! Bounds: the audio is the request's upload (≤ [`super::MAX_AUDIO_UPLOAD`]); the
//! answer is read through the outbound client's cap; one call takes at most [`STT_TIMEOUT`].

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde_json::{json, Value};

use crate::clients::OutboundClient;

pub const STT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("no speech-to-text service is configured (set STT_SERVICE_URL, or an OpenAI-compatible server)")]
    NotConfigured,
    #[error("STT service unavailable: {0}")]
    Unavailable(String),
    /// The service answered with an error status; its body is passed on as `details`.
    #[error("Transcription failed")]
    Failed { status: u16, details: Value },
}

/// An uploaded audio file.
#[derive(Debug, Clone)]
pub struct AudioUpload {
    pub bytes: Bytes,
    pub filename: String,
    pub mime: String,
}

pub enum Stt {
    Service(String),
    OpenAi { base: String, key: Option<String>, model: String },
    None,
}

impl Stt {
    pub fn configured(&self) -> bool {
        !matches!(self, Stt::None)
    }

    /// `{text, language, duration, segments}`.
    pub async fn transcribe(&self, client: &OutboundClient, audio: &AudioUpload, language: Option<&str>, task: &str) -> Result<Value, SttError> {
        let part = || {
            reqwest::multipart::Part::bytes(audio.bytes.to_vec()).file_name(audio.filename.clone()).mime_str(&audio.mime).map_err(|e| SttError::Unavailable(e.to_string()))
        };
        let (url, mut form, key) = match self {
            Stt::None => return Err(SttError::NotConfigured),
            Stt::Service(u) => (format!("{}/transcribe_file", u.trim_end_matches('/')), reqwest::multipart::Form::new().part("file", part()?).text("task", task.to_owned()), None),
            Stt::OpenAi { base, key, model } => (
                format!("{}/audio/transcriptions", base.trim_end_matches('/')),
                reqwest::multipart::Form::new().part("file", part()?).text("model", model.clone()).text("response_format", "verbose_json"),
                key.clone(),
            ),
        };
        if let Some(l) = language.filter(|l| !l.is_empty()) {
            form = form.text("language", l.to_owned());
        }
        let mut req = client.builder(Method::POST, &url).map_err(|e| SttError::Unavailable(e.to_string()))?.multipart(form).timeout(STT_TIMEOUT);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = client.send(req).await.map_err(|e| SttError::Unavailable(e.to_string()))?;
        let status = resp.status().as_u16();
        let ok = resp.status().is_success();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !ok {
            return Err(SttError::Failed { status, details: body });
        }
        Ok(json!({
            "text": body["text"].as_str().unwrap_or("").trim(),
            "language": body["language"],
            "duration": body["duration"],
            "segments": body["segments"].as_array().cloned().unwrap_or_default(),
        }))
    }

    /// `GET {STT_SERVICE_URL}/models`.
    pub async fn models(&self, client: &OutboundClient) -> Result<Value, SttError> {
        let Stt::Service(u) = self else { return Err(SttError::NotConfigured) };
        let req = client.builder(Method::GET, &format!("{}/models", u.trim_end_matches('/'))).map_err(|e| SttError::Unavailable(e.to_string()))?.timeout(Duration::from_secs(10));
        let resp = client.send(req).await.map_err(|e| SttError::Unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(SttError::Unavailable(format!("answered {}", resp.status())));
        }
        resp.json().await.map_err(|e| SttError::Unavailable(e.to_string()))
    }
}
