//! Speech synthesis: espeak-ng built in (a bounded number of child processes
//! writing WAV to stdout), the original's TTS-service protocol (multipart
//! `POST {TTS_SERVICE_URL}/synthesize` → WAV), and ElevenLabs (MP3).
//!
//! Bounds: syntheses running in all ([`Tts::jobs`], `voice_tts_jobs`), espeak-ng
//! processes (`voice_espeak_processes`), bytes of one synthesis
//! ([`MAX_AUDIO_BYTES`]) and the time one may take ([`SYNTH_TIMEOUT`]). A
//! cancelled synthesis kills its process / drops its request at once.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::clients::OutboundClient;
use crate::limits::{BoundReport, BoundSource};

/// Bound: bytes of one synthesized chunk (a chunk is ≤ 800 characters, about a
/// minute of 22 kHz mono speech, 2.6 MB).
pub const MAX_AUDIO_BYTES: u64 = 8 * 1024 * 1024;
/// Bound: characters synthesized by one `/synthesize` call (the original's cut).
pub const MAX_SYNTH_CHARS: usize = 1000;
/// One synthesis may take this long.
pub const SYNTH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a synthesis waits for a job slot before it fails busy.
pub const JOB_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("no speech engine is available (install espeak-ng, or set TTS_SERVICE_URL or ELEVENLABS_API_KEY)")]
    Unavailable,
    #[error("speech synthesis is busy")]
    Busy,
    #[error("speech synthesis failed: {0}")]
    Failed(String),
}

/// What to say and how.
#[derive(Debug, Clone, Default)]
pub struct Speech {
    pub text: String,
    /// `auto`, `espeak`, `elevenlabs`, or an engine of the TTS service (`edge_tts`, `chatterbox`, `kokoro`, …).
    pub engine: String,
    pub voice_id: String,
    pub speed: f32,
}

/// Synthesized audio: one whole file.
#[derive(Debug, Clone)]
pub struct Audio {
    pub bytes: Bytes,
    pub mime: &'static str,
    pub engine: String,
}

pub struct Tts {
    client: OutboundClient,
    /// The espeak-ng command, when it ran at startup.
    espeak: Option<String>,
    espeak_procs: Arc<Semaphore>,
    espeak_capacity: usize,
    service_url: Option<String>,
    elevenlabs: Option<(String, String)>,
    jobs: Arc<Semaphore>,
    jobs_capacity: usize,
}

impl Tts {
    pub fn new(client: OutboundClient, espeak: Option<String>, espeak_processes: usize, service_url: Option<String>, elevenlabs: Option<(String, String)>, jobs: usize) -> Self {
        Tts {
            client,
            espeak,
            espeak_procs: Arc::new(Semaphore::new(espeak_processes.max(1))),
            espeak_capacity: espeak_processes.max(1),
            service_url,
            elevenlabs,
            jobs: Arc::new(Semaphore::new(jobs.max(1))),
            jobs_capacity: jobs.max(1),
        }
    }

    /// Whether `espeak-ng` answers `--version` (checked once, at startup).
    pub fn probe_espeak(cmd: &str) -> bool {
        std::process::Command::new(cmd).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }

    pub fn espeak_available(&self) -> bool {
        self.espeak.is_some()
    }

    pub fn service_url(&self) -> Option<&str> {
        self.service_url.as_deref()
    }

    pub fn elevenlabs_configured(&self) -> bool {
        self.elevenlabs.is_some()
    }

    /// Whether any engine can speak.
    pub fn available(&self) -> bool {
        self.espeak.is_some() || self.service_url.is_some() || self.elevenlabs.is_some()
    }

    /// Synthesize `s`: ElevenLabs when asked for and keyed, else the TTS service
    /// when configured, else espeak-ng; each failing engine falls through to the next.
    pub async fn synthesize(&self, s: &Speech) -> Result<Audio, TtsError> {
        let _job = tokio::time::timeout(JOB_WAIT, self.jobs.acquire()).await.map_err(|_| TtsError::Busy)?.map_err(|_| TtsError::Busy)?;
        let mut last = TtsError::Unavailable;
        if s.engine == "elevenlabs" {
            if let Some((key, base)) = &self.elevenlabs {
                match self.elevenlabs(key, base, s).await {
                    Ok(a) => return Ok(a),
                    Err(e) => {
                        tracing::warn!(error = %e, "ElevenLabs failed; falling back");
                        last = e;
                    }
                }
            }
        }
        if s.engine != "espeak" {
            if let Some(url) = &self.service_url {
                match self.service(url, s).await {
                    Ok(a) => return Ok(a),
                    Err(e) => {
                        tracing::warn!(error = %e, "TTS service failed; falling back");
                        last = e;
                    }
                }
            }
        }
        if let Some(cmd) = &self.espeak {
            return self.espeak(cmd, s).await;
        }
        Err(last)
    }

    async fn espeak(&self, cmd: &str, s: &Speech) -> Result<Audio, TtsError> {
        let _p = tokio::time::timeout(JOB_WAIT, self.espeak_procs.acquire()).await.map_err(|_| TtsError::Busy)?.map_err(|_| TtsError::Busy)?;
        let wpm = ((175.0 * if s.speed > 0.0 { s.speed } else { 1.0 }) as u32).clamp(80, 450);
        let mut child = tokio::process::Command::new(cmd)
            .args(["--stdout", "-v", espeak_voice(&s.voice_id), "-s", &wpm.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true) // a cancelled turn kills its process
            .spawn()
            .map_err(|e| TtsError::Failed(format!("espeak-ng: {e}")))?;
        let mut stdin = child.stdin.take().ok_or_else(|| TtsError::Failed("espeak-ng: no stdin".into()))?;
        let text = s.text.clone();
        let mut stdout = child.stdout.take().ok_or_else(|| TtsError::Failed("espeak-ng: no stdout".into()))?;
        let work = async {
            use tokio::io::AsyncWriteExt;
            let write = async {
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.write_all(b"\n").await;
                drop(stdin);
            };
            let mut out = Vec::with_capacity(64 * 1024);
            let read = async {
                let mut limited = (&mut stdout).take(MAX_AUDIO_BYTES + 1);
                limited.read_to_end(&mut out).await
            };
            let (_, r) = tokio::join!(write, read);
            r.map_err(|e| TtsError::Failed(format!("espeak-ng: {e}")))?;
            if out.len() as u64 > MAX_AUDIO_BYTES {
                return Err(TtsError::Failed("espeak-ng: audio over the bound".into()));
            }
            let status = child.wait().await.map_err(|e| TtsError::Failed(format!("espeak-ng: {e}")))?;
            if !status.success() {
                return Err(TtsError::Failed(format!("espeak-ng exited with {status}")));
            }
            Ok(out)
        };
        let mut out = tokio::time::timeout(SYNTH_TIMEOUT, work).await.map_err(|_| TtsError::Failed("espeak-ng timed out".into()))??;
        fix_wav_sizes(&mut out).map_err(|e| TtsError::Failed(format!("espeak-ng: {e}")))?;
        Ok(Audio { bytes: Bytes::from(out), mime: "audio/wav", engine: "espeak".into() })
    }

    async fn service(&self, url: &str, s: &Speech) -> Result<Audio, TtsError> {
        let fail = |e: crate::clients::ClientError| TtsError::Failed(format!("TTS service: {e}"));
        let (gender, emotion, exaggeration, cfg_weight) = voice_params(&s.voice_id);
        let engine = if s.engine.is_empty() || s.engine == "auto" { "auto".to_owned() } else { s.engine.clone() };
        let form = reqwest::multipart::Form::new()
            .text("text", s.text.clone())
            .text("gender", gender)
            .text("emotion", emotion)
            .text("exaggeration", exaggeration.to_string())
            .text("cfg_weight", cfg_weight.to_string())
            .text("voice_id", s.voice_id.clone())
            .text("speed", format!("{}", if s.speed > 0.0 { s.speed } else { 1.0 }))
            .text("engine", engine)
            .text("voice_cloning", "false");
        let req = self.client.builder(Method::POST, &format!("{}/synthesize", url.trim_end_matches('/'))).map_err(fail)?.multipart(form).timeout(SYNTH_TIMEOUT);
        let resp = self.client.send(req).await.map_err(fail)?;
        if !resp.status().is_success() {
            return Err(TtsError::Failed(format!("TTS service answered {}", resp.status())));
        }
        let engine = resp.headers().get("x-engine-used").and_then(|v| v.to_str().ok()).unwrap_or("tts-service").to_owned();
        let bytes = resp.bytes_limited(Some(MAX_AUDIO_BYTES)).await.map_err(fail)?;
        if bytes.len() < 44 || &bytes[..4] != b"RIFF" {
            return Err(TtsError::Failed("TTS service: not WAV audio".into()));
        }
        Ok(Audio { bytes, mime: "audio/wav", engine })
    }

    /// ElevenLabs' real request: `POST /v1/text-to-speech/{voice}?output_format=mp3_44100_128`,
    /// `xi-api-key`, JSON `{text, model_id, voice_settings}` → MP3.
    async fn elevenlabs(&self, key: &str, base: &str, s: &Speech) -> Result<Audio, TtsError> {
        let fail = |e: crate::clients::ClientError| TtsError::Failed(format!("ElevenLabs: {e}"));
        let voice = if s.voice_id.is_empty() || !s.voice_id.bytes().all(|b| b.is_ascii_alphanumeric()) { "onwK4e9ZLuTAKqWW03F9" } else { &s.voice_id };
        let url = format!("{}/v1/text-to-speech/{voice}?output_format=mp3_44100_128", base.trim_end_matches('/'));
        let body = json!({
            "text": s.text,
            "model_id": "eleven_turbo_v2",
            "voice_settings": {"stability": 0.5, "similarity_boost": 0.75, "style": 0.0, "use_speaker_boost": true},
        });
        let req = self.client.builder(Method::POST, &url).map_err(fail)?.header("xi-api-key", key).header("accept", "audio/mpeg").json(&body).timeout(SYNTH_TIMEOUT);
        let resp = self.client.send(req).await.map_err(fail)?;
        if !resp.status().is_success() {
            return Err(TtsError::Failed(format!("ElevenLabs answered {}", resp.status())));
        }
        let bytes = resp.bytes_limited(Some(MAX_AUDIO_BYTES)).await.map_err(fail)?;
        Ok(Audio { bytes, mime: "audio/mpeg", engine: "elevenlabs".into() })
    }

    /// `GET {TTS_SERVICE_URL}/voices`, as JSON.
    pub async fn service_voices(&self) -> Option<serde_json::Value> {
        let url = self.service_url.as_ref()?;
        let req = self.client.builder(Method::GET, &format!("{}/voices", url.trim_end_matches('/'))).ok()?.timeout(Duration::from_secs(10));
        let resp = self.client.send(req).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    /// `GET {TTS_SERVICE_URL}/health`, as JSON (None: unreachable or unset).
    pub async fn service_health(&self) -> Option<Result<serde_json::Value, String>> {
        let url = self.service_url.as_ref()?;
        Some(health(&self.client, url).await)
    }
}

/// `GET {url}/health` → its JSON, or why not.
pub async fn health(client: &OutboundClient, url: &str) -> Result<serde_json::Value, String> {
    let req = client.builder(Method::GET, &format!("{}/health", url.trim_end_matches('/'))).map_err(|e| e.to_string())?.timeout(Duration::from_secs(5));
    let resp = client.send(req).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    resp.json().await.map_err(|e| e.to_string())
}

impl BoundSource for Tts {
    fn report(&self, out: &mut Vec<BoundReport>) {
        out.push(BoundReport {
            name: "voice_tts_jobs",
            unit: "syntheses",
            capacity: self.jobs_capacity as u64,
            fill: (self.jobs_capacity - self.jobs.available_permits()) as u64,
            config: "--voice-tts-jobs / OIPD_VOICE_TTS_JOBS",
        });
        out.push(BoundReport {
            name: "voice_espeak_processes",
            unit: "processes",
            capacity: self.espeak_capacity as u64,
            fill: (self.espeak_capacity - self.espeak_procs.available_permits()) as u64,
            config: "--voice-espeak-processes / OIPD_VOICE_ESPEAK_PROCESSES",
        });
    }
}

/// An espeak-ng voice for a voice id of the original (gender by name, English accent by prefix).
fn espeak_voice(voice_id: &str) -> &'static str {
    let v = voice_id.to_ascii_lowercase();
    let gb = v.starts_with("en-gb");
    let male = v.contains("male") && !v.contains("female") || ["ryan", "thomas", "george", "guy", "davis", "william", "liam", "alfred"].iter().any(|n| v.contains(n));
    match (gb, male) {
        (true, true) => "en-gb+m3",
        (true, false) => "en-gb+f3",
        (false, true) => "en-us+m3",
        (false, false) => "en-us+f3",
    }
}

/// The original's fixed table: voice id → (gender, emotion, exaggeration, cfg_weight).
fn voice_params(voice_id: &str) -> (String, String, f32, f32) {
    let v = voice_id.to_ascii_lowercase();
    let gender = if v.contains("male") && !v.contains("female") { "male" } else { "female" };
    let (emotion, exaggeration, cfg) = if v.contains("calm") {
        ("calm", 0.3, 0.5)
    } else if v.contains("dramatic") {
        ("dramatic", 0.8, 0.8)
    } else {
        ("expressive", 0.6, 0.7)
    };
    (gender.into(), emotion.into(), exaggeration, cfg)
}

/// A WAV of `ms` milliseconds of silence (16-bit mono, 22050 Hz, espeak-ng's format).
pub fn silent_wav(ms: u32) -> Vec<u8> {
    let rate = 22050u32;
    let data = (rate * ms / 1000) * 2;
    let mut w = Vec::with_capacity(44 + data as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    w.resize(44 + data as usize, 0);
    w
}

/// espeak-ng writes WAV to a pipe with placeholder sizes (0x7ffffff0): set the
/// RIFF and `data` sizes to what was written, so every decoder knows the length.
pub fn fix_wav_sizes(wav: &mut [u8]) -> Result<(), &'static str> {
    if wav.len() < 44 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return Err("not WAV");
    }
    let riff = (wav.len() - 8) as u32;
    wav[4..8].copy_from_slice(&riff.to_le_bytes());
    let mut i = 12;
    while i + 8 <= wav.len() {
        let size = u32::from_le_bytes([wav[i + 4], wav[i + 5], wav[i + 6], wav[i + 7]]) as usize;
        if &wav[i..i + 4] == b"data" {
            let data = (wav.len() - i - 8) as u32;
            wav[i + 4..i + 8].copy_from_slice(&data.to_le_bytes());
            return Ok(());
        }
        i += 8 + size + (size & 1);
    }
    Err("no data chunk")
}

/// Duration of a PCM WAV in seconds (tests and `/synthesize` headers).
pub fn wav_duration(wav: &[u8]) -> Option<f64> {
    if wav.len() < 44 || &wav[..4] != b"RIFF" {
        return None;
    }
    let mut i = 12;
    let mut byte_rate = 0u32;
    while i + 8 <= wav.len() {
        let size = u32::from_le_bytes([wav[i + 4], wav[i + 5], wav[i + 6], wav[i + 7]]) as usize;
        if &wav[i..i + 4] == b"fmt " && i + 20 <= wav.len() {
            byte_rate = u32::from_le_bytes([wav[i + 16], wav[i + 17], wav[i + 18], wav[i + 19]]);
        }
        if &wav[i..i + 4] == b"data" {
            return (byte_rate > 0).then(|| size.min(wav.len() - i - 8) as f64 / byte_rate as f64);
        }
        i += 8 + size + (size & 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_wav_is_a_valid_wav_of_its_length() {
        let w = silent_wav(20);
        assert_eq!(w.len(), 44 + 882);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(w[4..8].try_into().unwrap()) as usize, w.len() - 8);
        assert!((wav_duration(&w).unwrap() - 0.02).abs() < 0.001);
    }

    #[test]
    fn wav_sizes_are_fixed() {
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF\xf0\xff\xff\x7fWAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes());
        w.extend_from_slice(&[1, 0, 1, 0]);
        w.extend_from_slice(&22050u32.to_le_bytes());
        w.extend_from_slice(&44100u32.to_le_bytes());
        w.extend_from_slice(&[2, 0, 16, 0]);
        w.extend_from_slice(b"data\xf0\xff\xff\x7f");
        w.extend_from_slice(&vec![0u8; 44100]);
        fix_wav_sizes(&mut w).unwrap();
        assert_eq!(u32::from_le_bytes(w[4..8].try_into().unwrap()) as usize, w.len() - 8);
        assert_eq!(u32::from_le_bytes(w[40..44].try_into().unwrap()), 44100);
        assert_eq!(wav_duration(&w), Some(1.0));
        assert!(fix_wav_sizes(&mut [0u8; 10]).is_err());
    }

    #[test]
    fn voices() {
        assert_eq!(espeak_voice("en-GB-RyanNeural"), "en-gb+m3");
        assert_eq!(espeak_voice("female_1"), "en-us+f3");
        assert_eq!(espeak_voice("male_1"), "en-us+m3");
        assert_eq!(voice_params("male_calm").0, "male");
    }
}
