//! The application state shared by every handler: configuration, the auth keys,
//! the file server with its bounds, the media store, the static roots.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderValue;

use crate::auth::Auth;
use crate::config::ServeConfig;
use crate::http::etag::ContentHashCache;
use crate::http::file::FileServer;
use crate::limits::connections::ConnectionLimit;
use crate::limits::stream::{Labels, StreamLimiter, FILE_STREAMS};
use crate::limits::Bounds;
use crate::media::{AccessLevel, MediaStore};
use crate::records::resolve::ResolveLimits;
use crate::records::service::RecordsService;

pub type SharedState = Arc<AppState>;

/// The record-response limiter's labels.
const RECORD_STREAMS: Labels = Labels {
    name: "record_streams",
    queue_name: "record_stream_queue",
    config: "--max-record-streams / OIPD_MAX_RECORD_STREAMS",
    queue_config: "--stream-queue / OIPD_STREAM_QUEUE",
    what: "record response limit",
};

pub struct AppState {
    pub config: ServeConfig,
    /// `--cors-origins`, parsed (empty: no CORS layer).
    pub cors_rules: Vec<crate::config::OriginRule>,
    pub auth: Arc<Auth>,
    pub files: Arc<FileServer>,
    pub media: MediaStore,
    pub records: Arc<RecordsService>,
    /// Canonical `<data-dir>/media/web`, served under `/media`.
    pub web_root: PathBuf,
    /// Canonical generate-media dir, served under `/api/generate/media`.
    pub generate_root: PathBuf,
    pub connections: Arc<ConnectionLimit>,
    pub sampler: Arc<crate::memory::sampler::Sampler>,
    /// The diagnostics log's sender, when `MEMORY_DIAGNOSTICS_ENABLED=true`.
    pub diagnostics: Option<Arc<crate::memory::diag::Diagnostics>>,
    /// Heap-profile thresholds (MB) not crossed yet.
    pub thresholds: std::sync::Mutex<Vec<u64>>,
    pub bounds: Bounds,
    pub started: Instant,
    immutable_exts: Vec<String>,
    immutable_cc: HeaderValue,
    other_cc: HeaderValue,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("bad configuration: {0}")]
    Config(String),
}

impl AppState {
    /// Create directories as needed and build the state from `config`.
    pub fn new(config: ServeConfig) -> Result<SharedState, StartError> {
        let io = |what: &str, p: &std::path::Path| {
            let label = format!("{what} {}", p.display());
            move |e| StartError::Io(label, e)
        };
        let cors_rules = config.cors_rules().map_err(StartError::Config)?;
        let web = config.web_dir();
        std::fs::create_dir_all(&web).map_err(io("creating", &web))?;
        let gen = config.generate_dir();
        std::fs::create_dir_all(&gen).map_err(io("creating", &gen))?;
        let web_root = std::fs::canonicalize(&web).map_err(io("resolving", &web))?;
        let generate_root = std::fs::canonicalize(&gen).map_err(io("resolving", &gen))?;

        let default_access = AccessLevel::parse(&config.default_media_access)
            .ok_or_else(|| StartError::Config(format!("--default-media-access {:?}", config.default_media_access)))?;
        let media_dir = config.media_dir();
        let local = crate::media::fs::LocalMedia::open(media_dir.clone()).map_err(io("opening media store", &media_dir))?;
        let media = MediaStore::new(Arc::new(local), config.upload_max_bytes, default_access);

        let hv = |name: &str, v: &str| {
            HeaderValue::from_str(v).map_err(|_| StartError::Config(format!("{name} {v:?} is not a header value")))
        };
        let immutable_cc = hv("--immutable-cache-control", &config.immutable_cache_control)?;
        let other_cc = hv("--other-cache-control", &config.other_cache_control)?;

        let streams = StreamLimiter::new(
            FILE_STREAMS,
            config.max_streams,
            config.stream_queue,
            config.stream_wait(),
            config.retry_after_secs,
        );
        let files = Arc::new(FileServer::new(
            ContentHashCache::new(config.etag_cache_entries),
            streams,
            config.max_ranges,
        ));
        let store_url = config.store_url().map_err(|e| StartError::Config(e.to_string()))?;
        let store = crate::store::backends::open(&store_url, std::time::Duration::from_millis(config.query_timeout_ms.max(1))).map_err(|e| {
            StartError::Io(format!("opening the record store {}", store_url.describe()), std::io::Error::other(e.to_string()))
        })?;
        let records = Arc::new(RecordsService::new(
            store,
            StreamLimiter::new(
                RECORD_STREAMS,
                config.max_record_streams,
                config.stream_queue,
                config.stream_wait(),
                config.retry_after_secs,
            ),
            ResolveLimits {
                max_docs: config.resolve_max_docs,
                max_bytes: config.resolve_max_bytes,
                max_nodes: config.resolve_max_nodes,
            },
            config.max_resolve_depth,
        ));
        let connections = Arc::new(ConnectionLimit::new(config.max_connections));
        let sampler = Arc::new(crate::memory::sampler::Sampler::new(config.memory_interval()));
        let mut bounds = Bounds::default();
        bounds.register(sampler.clone());
        bounds.register(Arc::new(crate::memory::RouteSlots));
        bounds.register(files.clone());
        bounds.register(records.clone());
        bounds.register(connections.clone());

        if config.jwt_secret.as_deref().is_none_or(str::is_empty) {
            tracing::warn!("JWT_SECRET is not set: no token will validate, uploads are disabled");
        }
        let diagnostics = config.diagnostics_enabled().then(|| {
            crate::memory::diag::start(
                crate::memory::diag::log_path(&config.data_dir),
                std::time::Duration::from_secs(config.diagnostics_period_secs.max(1)),
            )
        });
        if let Some(d) = &diagnostics {
            bounds.register(d.clone());
        }
        let thresholds = if config.disable_heap_dumps { Vec::new() } else { config.thresholds_mb() };
        Ok(Arc::new(AppState {
            auth: Arc::new(Auth::new(config.jwt_secret.as_deref())),
            immutable_exts: config.immutable_extension_list(),
            config,
            cors_rules,
            files,
            media,
            records,
            web_root,
            generate_root,
            connections,
            sampler,
            diagnostics,
            thresholds: std::sync::Mutex::new(thresholds),
            bounds,
            started: Instant::now(),
            immutable_cc,
            other_cc,
        }))
    }

    /// `Cache-Control` for a file on a static mount, by extension.
    pub fn static_cache_control(&self, path: &std::path::Path) -> HeaderValue {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext {
            Some(e) if self.immutable_exts.iter().any(|x| *x == e) => self.immutable_cc.clone(),
            _ => self.other_cc.clone(),
        }
    }
}
