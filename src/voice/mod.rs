//! Voice dialogues (ALFRED): a spoken or typed question answered by a real
//! streaming turn — the node's records searched (RAG), LLM tokens streamed as they
//! are generated, cut into sentences ([`chunker`]) and spoken ([`tts`]) while the
//! LLM is still talking — delivered to SSE clients through the dialogue registry
//! ([`dialogue`]), with memory that does not move.
//!
//! Pieces: [`dialogue`] (open dialogues, clients, replay, barge-in, TTL),
//! [`turn`] (one turn's pipeline), [`chunker`], [`llm`] (Ollama NDJSON and
//! OpenAI-compatible SSE, the race), [`tts`] (espeak-ng built in, the TTS service,
//! ElevenLabs), [`stt`], [`rag`], [`notes`] (ALFRED notes), [`jobs`] (their async jobs).
//! Nothing outside the node is called unless configured.
//!
//! Bounds (each listed in `/api/health/memory`): `voice_dialogues`,
//! `voice_replay_bytes`, `voice_clients_per_dialogue`, `voice_client_queue`
//! ([`dialogue`]); `voice_tts_jobs`, `voice_espeak_processes` ([`tts`]);
//! `voice_audio_bytes` (synthesized audio held, waiting to be sent or queued for
//! clients; a synthesis waits for room, bounded, then its chunk is reported
//! failed); TTS jobs per dialogue ([`VoiceLimits::tts_per_dialogue`]); the answer's
//! bytes ([`MAX_ANSWER_BYTES`]); an uploaded audio file ([`MAX_AUDIO_UPLOAD`]);
//! `notes_jobs`, `notes_jobs_running` ([`jobs`]).

pub mod chunker;
pub mod dialogue;
pub mod jobs;
pub mod llm;
pub mod notes;
pub mod rag;
pub mod stt;
pub mod tts;
pub mod turn;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clients::OutboundClient;
use crate::config::VoiceConfig;
use crate::limits::{BoundReport, BoundSource};
use crate::records::service::RecordsService;
use dialogue::{DialogueLimits, Registry};
use llm::Provider;
use stt::Stt;
use tts::Tts;

/// Bound: bytes of one answer; an LLM that talks longer is cut off there.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024;
/// Bound: an uploaded audio file (the original's multer limit); larger → 413.
pub const MAX_AUDIO_UPLOAD: usize = 10 * 1024 * 1024;
/// Bound: bytes of a question or prompt (text fields).
pub const MAX_INPUT_BYTES: usize = 16 * 1024;
/// Bound: turns of conversation history kept from a request.
pub const MAX_HISTORY: usize = 32;
/// How long a synthesis waits for room in the audio-bytes bound.
pub const AUDIO_WAIT: Duration = Duration::from_secs(10);
/// The audio types an upload may have (the original's list).
pub const AUDIO_MIMES: [&str; 5] = ["audio/wav", "audio/mpeg", "audio/mp3", "audio/webm", "audio/ogg"];

/// Per-dialogue bounds that are not the registry's.
#[derive(Debug, Clone, Copy)]
pub struct VoiceLimits {
    pub tts_per_dialogue: usize,
    pub llm_first_token: Duration,
}

/// Everything a voice turn needs, built once at startup.
pub struct VoiceService {
    pub registry: Arc<Registry>,
    pub tts: Arc<Tts>,
    pub providers: Vec<Provider>,
    pub stt: Stt,
    pub client: OutboundClient,
    pub records: Arc<RecordsService>,
    pub limits: VoiceLimits,
    /// ALFRED notes' async ingestion jobs.
    pub note_jobs: jobs::NoteJobs,
    audio_budget: Arc<Semaphore>,
    audio_capacity_kib: usize,
}

impl VoiceService {
    pub fn new(cfg: &VoiceConfig, client: OutboundClient, records: Arc<RecordsService>) -> Arc<Self> {
        let espeak = Tts::probe_espeak(&cfg.espeak).then(|| cfg.espeak.clone());
        let tts = Tts::new(
            client.clone(),
            espeak,
            cfg.voice_espeak_processes,
            cfg.tts_service_url.clone().filter(|s| !s.is_empty()),
            cfg.elevenlabs_api_key.clone().filter(|s| !s.is_empty()).map(|k| (k, cfg.elevenlabs_base_url.clone())),
            cfg.voice_tts_jobs,
        );
        if !tts.available() {
            tracing::warn!(
                "voice: no speech engine — turns answer in text only. Install espeak-ng (Debian: apt-get install espeak-ng) or set TTS_SERVICE_URL / ELEVENLABS_API_KEY"
            );
        }
        let mut providers = Vec::new();
        if let Some(h) = cfg.ollama_host.as_deref().filter(|s| !s.is_empty()) {
            let host = if h.contains("://") { h.to_owned() } else { format!("http://{h}") };
            providers.push(Provider::Ollama { host, model: cfg.default_llm_model.clone() });
        }
        let openai_key = cfg.openai_api_key.clone().filter(|s| !s.is_empty());
        let openai_base = cfg.openai_base_url.clone().filter(|s| !s.is_empty());
        if openai_key.is_some() || openai_base.is_some() {
            providers.push(Provider::OpenAi {
                name: "openai",
                base: openai_base.clone().unwrap_or_else(|| "https://api.openai.com/v1".into()),
                key: openai_key.clone(),
                model: cfg.openai_model.clone(),
            });
        }
        if let Some(k) = cfg.xai_api_key.clone().filter(|s| !s.is_empty()) {
            providers.push(Provider::OpenAi { name: "xai", base: "https://api.x.ai/v1".into(), key: Some(k), model: cfg.xai_model.clone() });
        }
        let stt = match (cfg.stt_service_url.clone().filter(|s| !s.is_empty()), &openai_base, &openai_key) {
            (Some(u), _, _) => Stt::Service(u),
            (None, base, key) if base.is_some() || key.is_some() => Stt::OpenAi {
                base: base.clone().unwrap_or_else(|| "https://api.openai.com/v1".into()),
                key: key.clone(),
                model: cfg.stt_model.clone(),
            },
            _ => Stt::None,
        };
        let registry = Registry::new(DialogueLimits {
            max_dialogues: cfg.voice_max_dialogues.max(1),
            replay_bytes: cfg.voice_replay_bytes,
            clients_per_dialogue: cfg.voice_clients_per_dialogue.max(1),
            client_queue: cfg.voice_client_queue.max(1),
            ttl: Duration::from_secs(cfg.voice_dialogue_ttl_secs.max(1)),
        });
        let kib = (cfg.voice_audio_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(VoiceService {
            registry,
            tts: Arc::new(tts),
            providers,
            stt,
            client,
            records,
            limits: VoiceLimits { tts_per_dialogue: cfg.voice_tts_per_dialogue.max(1), llm_first_token: Duration::from_secs(cfg.llm_timeout_secs.max(1)) },
            note_jobs: jobs::NoteJobs::default(),
            audio_budget: Arc::new(Semaphore::new(kib)),
            audio_capacity_kib: kib,
        })
    }

    /// Room for `bytes` of audio in the audio-bytes bound, waiting at most [`AUDIO_WAIT`].
    pub async fn audio_permit(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let kib = bytes.div_ceil(1024).clamp(1, self.audio_capacity_kib) as u32;
        tokio::time::timeout(AUDIO_WAIT, self.audio_budget.clone().acquire_many_owned(kib)).await.ok()?.ok()
    }

    /// Audio bytes held now (in KiB granularity).
    pub fn audio_bytes_held(&self) -> u64 {
        ((self.audio_capacity_kib - self.audio_budget.available_permits()) * 1024) as u64
    }

    /// The providers to ask for `model`: `parallel`, `llm` or nothing → every
    /// configured one (raced); `llm-<m>` or `<m>`: `gpt-*` → OpenAI-compatible,
    /// `grok-*` → xAI, anything else → Ollama with that model; a provider that is
    /// not configured → the race.
    pub fn providers_for(&self, model: Option<&str>) -> Vec<Provider> {
        let m = model.map(|m| m.strip_prefix("llm-").unwrap_or(m)).filter(|m| !m.is_empty() && *m != "parallel" && *m != "llm" && *m != "default");
        let Some(m) = m else { return self.providers.clone() };
        let pick = |f: &dyn Fn(&Provider) -> bool| self.providers.iter().find(|p| f(p)).map(|p| p.with_model(m));
        let chosen = if m.starts_with("gpt-") || m.starts_with("o1") || m.starts_with("o3") {
            pick(&|p| matches!(p, Provider::OpenAi { name: "openai", .. }))
        } else if m.starts_with("grok-") {
            pick(&|p| matches!(p, Provider::OpenAi { name: "xai", .. }))
        } else {
            pick(&|p| matches!(p, Provider::Ollama { .. }))
        };
        chosen.map_or_else(|| self.providers.clone(), |p| vec![p])
    }

    /// Start the TTL sweep under the supervisor.
    pub fn start(self: &Arc<Self>, tasks: &crate::tasks::Supervisor) -> Result<(), crate::tasks::SpawnError> {
        let registry = self.registry.clone();
        let me = self.clone();
        let every = (registry.limits().ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
        tasks.spawn("voice_dialogue_sweep", crate::tasks::RestartPolicy::Never, move |ctx| {
            let registry = registry.clone();
            let me = me.clone();
            async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = ctx.cancelled() => {
                            registry.shutdown();
                            me.note_jobs.shutdown();
                            return Ok::<(), String>(());
                        }
                        _ = tick.tick() => {
                            me.note_jobs.sweep();
                            let n = registry.sweep();
                            if n > 0 {
                                tracing::debug!(ended = n, "voice dialogues past their TTL");
                            }
                            ctx.succeeded();
                        }
                    }
                }
            }
        })
    }
}

impl BoundSource for VoiceService {
    fn report(&self, out: &mut Vec<BoundReport>) {
        self.registry.report(out);
        self.tts.report(out);
        self.note_jobs.report(out);
        out.push(BoundReport {
            name: "voice_audio_bytes",
            unit: "bytes",
            capacity: (self.audio_capacity_kib * 1024) as u64,
            fill: self.audio_bytes_held(),
            config: "--voice-audio-bytes / OIPD_VOICE_AUDIO_BYTES",
        });
    }
}
