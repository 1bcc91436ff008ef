//! The application state shared by every handler, and the one place the node is
//! assembled: configuration, the auth keys, the file server with its bounds, the
//! media store, the record store and service, the outbound client, the background
//! tasks (started here under the supervisor), and the registry of every bound.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;

use crate::accounts::limiter::{LoginLimiter, LoginLimits};
use crate::accounts::service::AccountsService;
use crate::auth::Auth;
use crate::clients::OutboundClient;
use crate::memory::watch::MemoryWatch;
use crate::tasks::{RestartPolicy, Supervisor};
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

/// Bound: requests the `--gun-relay-listen` listener serves at once; more → 503
/// (`gun_relay_listener` in `/api/health/memory` when the listener is on).
pub const GUN_RELAY_CONCURRENCY: usize = 256;

pub struct AppState {
    pub config: ServeConfig,
    /// `--cors-origins`, parsed (empty: no CORS layer).
    pub cors_rules: Vec<crate::config::OriginRule>,
    pub auth: Arc<Auth>,
    pub files: Arc<FileServer>,
    pub media: MediaStore,
    pub records: Arc<RecordsService>,
    /// Every store over the configured backend (records, accounts).
    pub stores: crate::store::backends::Stores,
    /// Accounts: registration, login (limited), keys, calendar tokens.
    pub accounts: Arc<AccountsService>,
    /// Canonical `<data-dir>/media/web`, served under `/media`.
    pub web_root: PathBuf,
    /// Canonical generate-media dir, served under `/api/generate/media`.
    pub generate_root: PathBuf,
    /// Canonical `--public-dir`, served at `/`, when it exists.
    pub public_root: Option<PathBuf>,
    /// Whether unknown page paths answer `index.html`.
    pub spa_fallback: bool,
    /// `--trusted-proxies`, parsed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    page_html_cc: HeaderValue,
    page_cc: HeaderValue,
    pub connections: Arc<ConnectionLimit>,
    pub sampler: Arc<crate::memory::sampler::Sampler>,
    /// The diagnostics log's sender, when `MEMORY_DIAGNOSTICS_ENABLED=true`.
    pub diagnostics: Option<Arc<crate::memory::diag::Diagnostics>>,
    /// Every background task (memory sampler, diagnostics log, and what the
    /// indexer, GUN sync and voice add), started here and stopped on shutdown.
    pub tasks: Arc<Supervisor>,
    /// The one outbound HTTP client, for every service the node calls.
    pub client: OutboundClient,
    /// Voice dialogues (`/api/voice`, `/api/alfred`, `/api/notes`).
    pub voice: Arc<crate::voice::VoiceService>,
    /// The Arweave indexer, when a gateway is configured.
    pub indexer: Option<Arc<crate::indexer::run::Indexer>>,
    /// GUN: the graph, the relay, private-record keys, the registry.
    pub gun: Arc<crate::gun::service::GunService>,
    /// Publishing to Arweave (answers 503 without `WALLET_FILE`).
    pub publisher: Arc<crate::publish::Publisher>,
    /// GUN peer sync, when peers are configured and sync is enabled.
    pub gun_sync: Option<Arc<crate::gun::sync::GunSync>>,
    /// `--gun-relay-allow`, parsed.
    pub gun_relay_allow: Vec<crate::config::IpRange>,
    /// The `--gun-relay-listen` address actually bound, once it is.
    pub gun_relay_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// Requests the `--gun-relay-listen` listener serves at once.
    pub gun_relay_permits: Arc<crate::limits::Permits>,
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
        // The public directory is optional: no directory, no pages (and no fallback).
        let public_root = std::fs::canonicalize(config.public_dir()).ok().filter(|p| p.is_dir());
        let has_index = public_root.as_ref().is_some_and(|p| p.join("index.html").is_file());
        // never serve the data directory (the store, sealed keys) as pages
        if let (Some(p), Ok(d)) = (&public_root, std::fs::canonicalize(&config.data_dir)) {
            if d.starts_with(p) {
                return Err(StartError::Config(format!("--public-dir {} contains the data directory {}; serve a directory of its own", p.display(), d.display())));
            }
        }
        let trusted_proxies = config
            .http
            .trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<std::net::IpAddr>().map_err(|_| StartError::Config(format!("--trusted-proxies: {s:?} is not an IP address"))))
            .collect::<Result<Vec<_>, _>>()?;
        let spa_fallback = match config.pages.spa_fallback.as_str() {
            "on" => true,
            "off" => false,
            _ => has_index,
        };

        if !crate::media::webcopy::valid_name(&config.media.web_setup_dir) {
            return Err(StartError::Config(format!("COMPOSE_PROJECT_NAME / --web-setup-dir {:?} must be one plain directory name", config.media.web_setup_dir)));
        }
        let default_access = AccessLevel::parse(&config.media.default_media_access)
            .ok_or_else(|| StartError::Config(format!("--default-media-access {:?}", config.media.default_media_access)))?;

        let hv = |name: &str, v: &str| {
            HeaderValue::from_str(v).map_err(|_| StartError::Config(format!("{name} {v:?} is not a header value")))
        };
        let immutable_cc = hv("--immutable-cache-control", &config.http.immutable_cache_control)?;
        let other_cc = hv("--other-cache-control", &config.http.other_cache_control)?;
        let page_html_cc = hv("--page-html-cache-control", &config.pages.page_html_cache_control)?;
        let page_cc = hv("--page-cache-control", &config.pages.page_cache_control)?;

        let streams = StreamLimiter::new(
            FILE_STREAMS,
            config.http.max_streams,
            config.http.stream_queue,
            config.stream_wait(),
            config.http.retry_after_secs,
        );
        let files = Arc::new(FileServer::new(
            ContentHashCache::new(config.http.etag_cache_entries),
            crate::http::open_cache::OpenFileCache::new(
                config.http.open_file_cache_entries,
                std::time::Duration::from_secs(config.http.open_file_cache_valid_secs),
            ),
            streams,
            config.http.max_ranges,
        ));
        let store_url = config.store_url().map_err(|e| StartError::Config(e.to_string()))?;
        let stores = crate::store::backends::open(&store_url, std::time::Duration::from_millis(config.store.query_timeout_ms.max(1))).map_err(|e| {
            StartError::Io(format!("opening the record store {}", store_url.describe()), std::io::Error::other(e.to_string()))
        })?;
        let client = OutboundClient::new(config.clients.limits()).map_err(|e| StartError::Config(e.to_string()))?;
        let media_dir = config.media_dir();
        // Media on local disk, or in an object store with its manifests in the store.
        let (media, s3) = match config.media.media_store.trim() {
            "" => {
                let local = crate::media::fs::LocalMedia::open(media_dir.clone()).map_err(io("opening media store", &media_dir))?;
                (MediaStore::new(Arc::new(local), config.media.upload_max_bytes, default_access), None)
            }
            url => {
                let cfg = crate::media::s3::S3Config::parse(url, |k| std::env::var(k).ok()).map_err(StartError::Config)?;
                let s3 = Arc::new(crate::media::s3::S3Media::new(&cfg, client.clone(), stores.media.clone()).map_err(StartError::Config)?);
                // The bucket check, on a thread and runtime of its own (startup is synchronous).
                let (limits, index) = (config.clients.limits(), stores.media.clone());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                    rt.block_on(async {
                        let client = OutboundClient::new(limits).map_err(|e| e.to_string())?;
                        crate::media::s3::S3Media::open(&cfg, client, index).await.map(drop)
                    })
                })
                .join()
                .map_err(|_| StartError::Config("media store check panicked".into()))?
                .map_err(StartError::Config)?;
                (MediaStore::new(s3.clone(), config.media.upload_max_bytes, default_access), Some(s3))
            }
        };
        let gun_secret = crate::gun::load_secret(config.gun.gun_encryption_secret.as_deref(), &config.data_dir).map_err(io("reading the GUN node secret in", &config.data_dir))?;
        let node_id = crate::gun::load_node_id(config.gun.gun_node_id.as_deref(), &config.data_dir).map_err(io("reading the GUN node id in", &config.data_dir))?;
        // This process among nodes sharing the store: for leases on singleton work.
        let lease = crate::tasks::LeaseSpec {
            leases: stores.leases.clone(),
            holder: format!("{node_id}/{}/{:08x}", std::process::id(), fastrand::u32(..)),
            ttl: Duration::from_secs(config.store.lease_ttl_secs.max(1)),
        };
        let gun = Arc::new(crate::gun::service::GunService::new(
            stores.gun.clone(),
            stores.records.clone(),
            crate::gun::crypto::Keys::new(&gun_secret),
            node_id,
            config.gun.gun_max_node_bytes.max(1024),
        ));
        drop(gun_secret);
        let gun_relay_allow = config.gun.relay_allow().map_err(StartError::Config)?;
        let records = Arc::new(RecordsService::new(
            stores.records.clone(),
            StreamLimiter::new(
                RECORD_STREAMS,
                config.records.max_record_streams,
                config.http.stream_queue,
                config.stream_wait(),
                config.http.retry_after_secs,
            ),
            ResolveLimits {
                max_docs: config.records.resolve_max_docs,
                max_bytes: config.records.resolve_max_bytes,
                max_nodes: config.records.resolve_max_nodes,
            },
            config.records.max_resolve_depth,
        ).with_gun(gun.clone()));
        let connections = Arc::new(ConnectionLimit::new(config.http.max_connections));
        let sampler = Arc::new(crate::memory::sampler::Sampler::new(config.memory_interval()));
        let mut bounds = Bounds::default();
        bounds.register(sampler.clone());
        bounds.register(Arc::new(crate::memory::RouteSlots));
        bounds.register(files.clone());
        bounds.register(records.clone());
        bounds.register(connections.clone());
        bounds.register(gun.clone());

        let auth = Arc::new(Auth::new(config.auth.jwt_secret.as_deref()));
        let login_limits = LoginLimits {
            per_address_failures: config.auth.login_address_failures.max(1),
            per_account_failures: config.auth.login_account_failures.max(1),
            window: Duration::from_secs(config.auth.login_window_secs.max(1)),
            ..LoginLimits::default()
        };
        let accounts = Arc::new(AccountsService::new(
            stores.users.clone(),
            auth.clone(),
            LoginLimiter::new(login_limits),
            config.http.retry_after_secs,
            config.auth.registration_limit,
        ));
        bounds.register(accounts.clone());
        if config.auth.jwt_secret.as_deref().is_none_or(str::is_empty) {
            tracing::warn!("JWT_SECRET is not set: no token will validate, uploads are disabled");
        }
        bounds.register(Arc::new(client.clone()));
        let tasks = Arc::new(Supervisor::new());
        bounds.register(tasks.clone());
        let spawn_error = |e: crate::tasks::SpawnError| StartError::Config(format!("starting a background task: {e}"));

        let diagnostics = match config.diagnostics_enabled() {
            false => None,
            true => {
                let (d, writer) = crate::memory::diag::channel(
                    crate::memory::diag::log_path(&config.data_dir),
                    std::time::Duration::from_secs(config.memory.diagnostics_period_secs.max(1)),
                );
                bounds.register(d.clone());
                // One writer owns the log's receiver: it runs once, and its end is final.
                let writer = std::sync::Mutex::new(Some(writer));
                tasks
                    .spawn("diagnostics_log", RestartPolicy::Never, move |ctx| {
                        let w = writer.lock().unwrap_or_else(|p| p.into_inner()).take();
                        async move {
                            match w {
                                Some(w) => w.run(ctx.token().clone()).await,
                                None => Err("the diagnostics writer already ran".to_owned()),
                            }
                        }
                    })
                    .map_err(spawn_error)?;
                Some(d)
            }
        };
        let voice = crate::voice::VoiceService::new(&config.voice, client.clone(), records.clone());
        bounds.register(voice.clone());
        voice.start(&tasks).map_err(spawn_error)?;
        let settings = crate::gun::sync::SyncSettings {
            peers: config.gun.peers(),
            interval: config.gun.sync_interval(),
            enabled: config.gun.sync_enabled(),
        };
        let gun_sync = match settings.active() {
            false => None,
            true => {
                let sync = Arc::new(crate::gun::sync::GunSync::new(gun.clone(), client.clone(), settings));
                bounds.register(sync.clone());
                let s = sync.clone();
                tasks
                    .spawn(
                        "gun_sync",
                        RestartPolicy::OnFailure { initial: Duration::from_secs(5), max: Duration::from_secs(300) },
                        crate::tasks::singleton("gun_sync", lease.clone(), move |ctx| s.clone().run(ctx)),
                    )
                    .map_err(spawn_error)?;
                Some(sync)
            }
        };
        if let Some(s3) = s3 {
            bounds.register(s3.clone());
            // uploads a dead node left behind, aborted by whichever node gets here first
            tasks
                .spawn("media_sweep", RestartPolicy::OnFailure { initial: Duration::from_secs(60), max: Duration::from_secs(3600) }, move |ctx| {
                    let s3 = s3.clone();
                    async move {
                        loop {
                            let n = s3.sweep(crate::media::s3::STALE_UPLOAD).await?;
                            ctx.succeeded();
                            ctx.set_detail(format!("{n} stale uploads cleaned last pass"));
                            tokio::select! {
                                _ = ctx.cancelled() => return Ok::<(), String>(()),
                                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                            }
                        }
                    }
                })
                .map_err(spawn_error)?;
        }
        let thresholds = if config.memory.disable_heap_dumps { Vec::new() } else { config.thresholds_mb() };
        let watch = Arc::new(MemoryWatch::new(
            sampler.clone(),
            thresholds,
            config.data_dir.join("logs").join("heap-profiles"),
            diagnostics.clone(),
        ));
        tasks
            .spawn("memory_sampler", RestartPolicy::OnFailure { initial: Duration::from_secs(1), max: Duration::from_secs(60) }, move |ctx| {
                let watch = watch.clone();
                async move { watch.run(ctx.token().clone(), || ctx.succeeded()).await }
            })
            .map_err(spawn_error)?;
        let settings = config.indexer.settings();
        let indexer = match settings.gateways.is_empty() {
            true => None,
            false => {
                let gateways = crate::indexer::gateway::Gateways::new(&settings.gateways, client.clone())
                    .map_err(|e| StartError::Config(format!("--arweave-gateways: {e}")))?;
                let ix = Arc::new(crate::indexer::run::Indexer::new(settings, gateways, stores.indexer.clone()));
                bounds.register(ix.clone());
                let task = ix.clone();
                tasks
                    .spawn(
                        "indexer",
                        RestartPolicy::OnFailure { initial: Duration::from_secs(1), max: Duration::from_secs(300) },
                        crate::tasks::singleton("indexer", lease.clone(), move |ctx| task.clone().run(ctx)),
                    )
                    .map_err(spawn_error)?;
                Some(ix)
            }
        };
        let publisher = Arc::new(
            crate::publish::Publisher::new(
                &config.publish,
                client.clone(),
                stores.records.clone(),
                stores.indexer.clone(),
                indexer.is_some().then(|| config.indexer.settings().policy.types),
            )
                .map_err(StartError::Config)?,
        );
        bounds.register(publisher.clone());
        if let Some(addr) = publisher.address() {
            tracing::info!(%addr, "publishing to Arweave with the server wallet");
        }
        let gun_relay_permits = Arc::new(crate::limits::Permits::new(
            "gun_relay_listener",
            "requests",
            "const state::GUN_RELAY_CONCURRENCY",
            GUN_RELAY_CONCURRENCY,
            config.http.retry_after_secs,
        ));
        if config.gun.gun_relay_listen.is_some() {
            bounds.register(gun_relay_permits.clone());
        }
        Ok(Arc::new(AppState {
            indexer,
            publisher,
            auth,
            accounts,
            immutable_exts: config.immutable_extension_list(),
            config,
            cors_rules,
            files,
            media,
            records,
            stores,
            web_root,
            generate_root,
            public_root,
            spa_fallback,
            trusted_proxies,
            page_html_cc,
            page_cc,
            connections,
            sampler,
            diagnostics,
            tasks,
            client,
            voice,
            gun,
            gun_sync,
            gun_relay_allow,
            gun_relay_addr: std::sync::OnceLock::new(),
            gun_relay_permits,
            bounds,
            started: Instant::now(),
            immutable_cc,
            other_cc,
        }))
    }

    /// `Cache-Control` for a page of the public directory: HTML is revalidated
    /// every time, the rest cached briefly.
    pub fn page_cache_control(&self, path: &std::path::Path) -> HeaderValue {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("html" | "htm") => self.page_html_cc.clone(),
            _ => self.page_cc.clone(),
        }
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
