//! Every knob and every bound of `oipd serve`, declared once, grouped by concern
//! (one struct per group, flattened into the command line).
//!
//! Each field is a command-line flag and an environment variable with a default; the
//! README's configuration table is this file rendered for humans, and a test
//! (`readme_table_matches`) fails when the two disagree. Bounds that are not worth a
//! knob are named constants next to the code they bound, and listed in the README too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Extensions that get the long-lived immutable `Cache-Control` on static mounts:
/// the media types the original node served (its `setHeaders` rule covered gif,
/// jpg, png and svg; send(1) gave every file the same value).
pub const DEFAULT_IMMUTABLE_EXTENSIONS: &str =
    "gif,jpg,jpeg,png,webp,avif,svg,ico,bmp,mp4,webm,mov,m4v,mp3,wav,ogg,oga,m4a,aac,flac,opus,woff,woff2";

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Data directory, laid out like the original's `data/` (created if missing):
    /// `media/web/...` is served under `/media`, `media/<sha256>/` is the
    /// content-addressed store.
    #[arg(long, env = "OIPD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub http: HttpConfig,

    #[command(flatten)]
    pub store: StoreConfig,

    #[command(flatten)]
    pub media: MediaConfig,

    #[command(flatten)]
    pub records: RecordsConfig,

    #[command(flatten)]
    pub memory: MemoryConfig,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub demo: DemoConfig,

    #[command(flatten)]
    pub pages: PagesConfig,

    /// Outbound HTTP (one client for every service oipd calls).
    #[command(flatten)]
    pub clients: ClientConfig,

    /// Voice dialogues (`/api/voice`): providers and bounds.
    #[command(flatten)]
    pub voice: VoiceConfig,

    /// The Arweave indexer.
    #[command(flatten)]
    pub indexer: IndexerConfig,

    #[command(flatten)]
    pub gun: GunConfig,

    /// Publishing to Arweave (`/api/publish/*`, `newRecord` with storage=arweave).
    #[command(flatten)]
    pub publish: PublishConfig,
}

/// Publishing to Arweave: the server wallet and the bundler it pays.
#[derive(Debug, Clone, Args)]
pub struct PublishConfig {
    /// The server's Arweave wallet (a JWK file), which signs every data item and
    /// creator signature. Unset: publishing answers 503; reads are unaffected.
    #[arg(long, env = "WALLET_FILE")]
    pub wallet_file: Option<PathBuf>,

    /// The bundler's upload service (the Turbo upload API: `POST /v1/tx/arweave`).
    #[arg(long, env = "OIPD_BUNDLER_URL", default_value = "https://upload.ardrive.io")]
    pub bundler_url: String,

    /// The bundler's payment service (Turbo: `GET /v1/price/bytes/{n}`, signed `GET /v1/balance`).
    /// Empty: no cost check (a bundler that needs no credits).
    #[arg(long, env = "OIPD_BUNDLER_PAYMENT_URL", default_value = "https://payment.ardrive.io")]
    pub bundler_payment_url: String,

    /// Attempts per upload (timeouts, 5xx, 429); backoff doubles from 500 ms, `Retry-After` honoured.
    #[arg(long, env = "OIPD_PUBLISH_ATTEMPTS", default_value_t = 4)]
    pub publish_attempts: u32,

    /// Bound: publish jobs kept (running or finished) for `/api/publish-status`; more → 503.
    #[arg(long, env = "OIPD_PUBLISH_JOBS", default_value_t = 256)]
    pub publish_jobs: usize,

    /// Seconds a finished publish job stays readable (the original: one hour).
    #[arg(long, env = "OIPD_PUBLISH_JOB_TTL", default_value_t = 3600)]
    pub publish_job_ttl: u64,

    /// Bound: bytes of a file `/api/media/arweave-upload` sends to the bundler.
    #[arg(long, env = "OIPD_ARWEAVE_UPLOAD_MAX_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub arweave_upload_max_bytes: u64,
}

/// GUN: the built-in relay, the keys of private records, peer sync.
#[derive(Debug, Clone, Args)]
pub struct GunConfig {
    /// A second listener serving the relay's `/put` `/get` `/list` at the root, for
    /// original nodes that use oipd as their relay (e.g. `0.0.0.0:8765`). Unset: off.
    #[arg(long, env = "OIPD_GUN_RELAY_LISTEN")]
    pub gun_relay_listen: Option<SocketAddr>,

    /// Addresses (IPs or CIDR ranges, comma-separated) whose writes the
    /// `--gun-relay-listen` listener accepts; reads are open.
    #[arg(long, env = "OIPD_GUN_RELAY_ALLOW", default_value = "127.0.0.1,::1")]
    pub gun_relay_allow: String,

    /// The node secret private GUN records' keys derive from (HKDF with the
    /// owner's key); the nodes of one deployment share it. Unset: generated once
    /// into `<data-dir>/gun-secret`.
    #[arg(long, env = "OIPD_GUN_SECRET", hide_env_values = true)]
    pub gun_encryption_secret: Option<String>,

    /// Peer relays to sync with, comma-separated (`ws→http`, `/gun→/gun-relay` as
    /// the original). Empty: no sync.
    #[arg(long, env = "GUN_PEERS", default_value = "")]
    pub gun_peers: String,

    /// The original's override of `GUN_PEERS` for sync.
    #[arg(long, env = "GUN_EXTERNAL_PEERS", default_value = "")]
    pub gun_external_peers: String,

    /// Milliseconds between sync cycles (the original's variable and default).
    #[arg(long, env = "GUN_SYNC_INTERVAL", default_value_t = 900_000)]
    pub gun_sync_interval: u64,

    /// Only `false` turns sync off (the original's variable).
    #[arg(long, env = "GUN_SYNC_ENABLED", default_value = "true")]
    pub gun_sync_enabled: String,

    /// The registry node id (the original's variable). Unset: generated once into
    /// `<data-dir>/gun-node-id`.
    #[arg(long, env = "GUN_NODE_ID_OVERRIDE")]
    pub gun_node_id: Option<String>,

    /// Bound: bytes of one GUN node (a put body, a stored node after merging, a
    /// node fetched from a peer); past it 413.
    #[arg(long, env = "OIPD_GUN_MAX_NODE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub gun_max_node_bytes: usize,
}

impl GunConfig {
    /// Sync peers: `GUN_EXTERNAL_PEERS` when set, else `GUN_PEERS`, rewritten.
    pub fn peers(&self) -> Vec<String> {
        let list = if self.gun_external_peers.trim().is_empty() { &self.gun_peers } else { &self.gun_external_peers };
        crate::gun::sync::peer_urls(list)
    }

    pub fn sync_interval(&self) -> Duration {
        Duration::from_millis(self.gun_sync_interval.max(100))
    }

    pub fn sync_enabled(&self) -> bool {
        self.gun_sync_enabled.trim() != "false"
    }

    /// `--gun-relay-allow`, parsed.
    pub fn relay_allow(&self) -> Result<Vec<IpRange>, String> {
        self.gun_relay_allow.split(',').map(str::trim).filter(|s| !s.is_empty()).map(IpRange::parse).collect()
    }
}

/// An IP address or a CIDR range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl IpRange {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("--gun-relay-allow: {s:?} is not an IP address or CIDR range");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpRange { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) => {
                let m = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(a) & m == u32::from(b) & m
            }
            (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) => {
                let m = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(a) & m == u128::from(b) & m
            }
            _ => false,
        }
    }
}

/// The HTTP server and file serving: listening, connections, timeouts, streams, caching headers, CORS.
#[derive(Debug, Clone, Args)]
pub struct HttpConfig {
    /// Address to listen on (the original node's port).
    #[arg(long, env = "OIPD_LISTEN", default_value = "127.0.0.1:3005")]
    pub listen: SocketAddr,

    /// Bound: open client connections. Past it, new connections wait in the
    /// kernel's accept backlog until one closes.
    #[arg(long, env = "OIPD_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Seconds a client has to send a request's headers (slowloris guard).
    #[arg(long, env = "OIPD_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a connection may move no byte in either direction (a client that
    /// stopped reading a response or sending a body); then it is closed and
    /// whatever it held is released. Also bounds a request that computes this
    /// long before its first byte.
    #[arg(long, env = "OIPD_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Seconds in-flight responses get to finish after SIGINT/SIGTERM.
    #[arg(long, env = "OIPD_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Bound: file bodies streaming at once (each holds one fd and at most one
    /// 64 KiB chunk in flight). Past it, requests wait in the stream queue.
    #[arg(long, env = "OIPD_MAX_STREAMS", default_value_t = 256)]
    pub max_streams: usize,

    /// Bound: requests waiting for a stream slot. Past it: 503 at once.
    #[arg(long, env = "OIPD_STREAM_QUEUE", default_value_t = 1024)]
    pub stream_queue: usize,

    /// How long a request waits for a stream slot before 503, in milliseconds.
    #[arg(long, env = "OIPD_STREAM_WAIT_MS", default_value_t = 5000)]
    pub stream_wait_ms: u64,

    /// `Retry-After` seconds sent with every 503.
    #[arg(long, env = "OIPD_RETRY_AFTER_SECS", default_value_t = 2)]
    pub retry_after_secs: u64,

    /// Bound: entries in the content-hash (ETag) cache, keyed by path+size+mtime.
    /// Each entry is ~200 bytes plus the path.
    #[arg(long, env = "OIPD_ETAG_CACHE_ENTRIES", default_value_t = 16384)]
    pub etag_cache_entries: usize,

    /// Bound: files of the static mounts kept open with their metadata and ETag
    /// (nginx's `open_file_cache`), so a 304 or a hot file needs no path walk;
    /// each holds one descriptor. 0 turns the cache off.
    #[arg(long, env = "OIPD_OPEN_FILE_CACHE_ENTRIES", default_value_t = 1000)]
    pub open_file_cache_entries: usize,

    /// Seconds an open-file cache entry serves before its path is resolved
    /// again (each hit also `fstat`s the descriptor: a changed or unlinked file
    /// is resolved afresh at once).
    #[arg(long, env = "OIPD_OPEN_FILE_CACHE_VALID_SECS", default_value_t = 10)]
    pub open_file_cache_valid_secs: u64,

    /// Bound: ranges in one `Range` header; more gives the whole file (200).
    #[arg(long, env = "OIPD_MAX_RANGES", default_value_t = 32)]
    pub max_ranges: usize,

    /// Comma-separated extensions served with `--immutable-cache-control`.
    #[arg(long, env = "OIPD_IMMUTABLE_EXTENSIONS", default_value = DEFAULT_IMMUTABLE_EXTENSIONS)]
    pub immutable_extensions: String,

    /// `Cache-Control` for media types on the static mounts.
    #[arg(long, env = "OIPD_IMMUTABLE_CACHE_CONTROL", default_value = "public, max-age=31536000, immutable")]
    pub immutable_cache_control: String,

    /// `Cache-Control` for other files on the static mounts (revalidate with the ETag).
    #[arg(long, env = "OIPD_OTHER_CACHE_CONTROL", default_value = "public, max-age=0")]
    pub other_cache_control: String,

    /// Origins allowed to call the API from browsers (comma-separated, e.g.
    /// `https://app.example,chrome-extension://*`; a trailing `*` matches a prefix).
    /// Empty: no CORS headers (same-origin only). Requests without `Origin` are
    /// always served, as by the original.
    #[arg(long, env = "OIPD_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,

    /// Addresses of reverse proxies in front of oipd (comma-separated IPs): for a
    /// request from one of them, the client is the rightmost `X-Forwarded-For`
    /// entry that is not a listed proxy (used by the login limits). Empty: the
    /// socket's peer is the client.
    #[arg(long, env = "OIPD_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
}

/// Where records live, and how long one query may run.
#[derive(Debug, Clone, Args)]
pub struct StoreConfig {
    /// The record store: `sqlite://<path>` (default: `<data-dir>/oipd.sqlite`) or
    /// `postgres://user:password@host:port/db`.
    #[arg(long, env = "OIPD_STORE", hide_env_values = true)]
    pub store: Option<String>,

    /// Bound: milliseconds one records query may run (SQLite: interrupted;
    /// PostgreSQL: `statement_timeout`) → 503; a query whose client disconnected stops at once.
    #[arg(long, env = "OIPD_QUERY_TIMEOUT_MS", default_value_t = 30_000)]
    pub query_timeout_ms: u64,

    /// Seconds a node's lease on singleton background work (indexer, GUN sync)
    /// lasts unrenewed; when nodes share a PostgreSQL store, a dead node's work
    /// moves to another within about this long.
    #[arg(long, env = "OIPD_LEASE_TTL_SECS", default_value_t = 15)]
    pub lease_ttl_secs: u64,
}

/// Media: the generate-media mount, uploads, the default access level.
#[derive(Debug, Clone, Args)]
pub struct MediaConfig {
    /// Directory served under `/api/generate/media/` (the original's `<app>/media/`,
    /// TTS and podcast audio). Default: `<data-dir>/generated`.
    #[arg(long, env = "OIPD_GENERATE_MEDIA_DIR")]
    pub generate_media_dir: Option<PathBuf>,

    /// Where content-addressed media lives: empty = `<data-dir>/media/` on
    /// local disk; `s3://bucket/prefix` = an S3-compatible object store
    /// (endpoint, region and credentials from the AWS variables), with the
    /// manifests in the store.
    #[arg(long, env = "OIPD_MEDIA_STORE", default_value = "")]
    pub media_store: String,

    /// Bound: largest upload accepted by `POST /api/media/upload`, in bytes.
    #[arg(long, env = "OIPD_UPLOAD_MAX_BYTES", default_value_t = 500 * 1024 * 1024)]
    pub upload_max_bytes: u64,

    /// Access level for content-addressed media that has no manifest (old data dirs).
    #[arg(long, env = "OIPD_DEFAULT_MEDIA_ACCESS", default_value = "private")]
    pub default_media_access: String,

    /// Directory under `<data-dir>/media/web/` that `POST /api/media/web-setup`
    /// copies media into (served at `/media/<it>/<file>`; the original's variable).
    #[arg(long, env = "COMPOSE_PROJECT_NAME", default_value = "oip-arweave-indexer")]
    pub web_setup_dir: String,
}

/// Records answers: resolution depth and its bounds, renders at once.
#[derive(Debug, Clone, Args)]
pub struct RecordsConfig {
    /// Bound: deepest `resolveDepth` accepted; deeper → 400.
    #[arg(long, env = "OIPD_MAX_RESOLVE_DEPTH", default_value_t = 5)]
    pub max_resolve_depth: u32,

    /// Bound: distinct records one response may resolve; more → 413.
    #[arg(long, env = "OIPD_RESOLVE_MAX_DOCS", default_value_t = 50_000)]
    pub resolve_max_docs: usize,

    /// Bound: bytes of distinct records one response may hold for resolution; more → 413.
    #[arg(long, env = "OIPD_RESOLVE_MAX_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub resolve_max_bytes: usize,

    /// Bound: records (expansions, repeats included) in one resolved answer; more → 413.
    #[arg(long, env = "OIPD_RESOLVE_MAX_NODES", default_value_t = 2_000_000)]
    pub resolve_max_nodes: u64,

    /// Bound: `/api/records` responses rendering at once (each holds its resolved
    /// records and ≤ 4 × 64 KiB of output). Past it: the stream queue, then 503.
    #[arg(long, env = "OIPD_MAX_RECORD_STREAMS", default_value_t = 16)]
    pub max_record_streams: usize,
}

/// Memory observability: the sampler, the budget, the diagnostics log, heap profiles.
#[derive(Debug, Clone, Args)]
pub struct MemoryConfig {
    /// Memory sampler interval, milliseconds (the original's variable; ≥ 1000).
    #[arg(long, env = "MEMORY_MONITOR_INTERVAL", default_value_t = 60_000)]
    pub memory_monitor_interval: u64,

    /// Memory budget in MB: `/api/health/memory` reports `warning` past
    /// `MEMORY_WARNING_THRESHOLD` % of it and `critical` past 90 %.
    #[arg(long, env = "OIPD_MEMORY_BUDGET_MB", default_value_t = 2048)]
    pub memory_budget_mb: u64,

    /// Percent of the memory budget at which status becomes `warning` (the original's variable).
    #[arg(long, env = "MEMORY_WARNING_THRESHOLD", default_value_t = 80)]
    pub memory_warning_threshold: u64,

    /// Write `<data-dir>/logs/memory-diagnostics.log` (the original's variable; only `true` enables).
    #[arg(long, env = "MEMORY_DIAGNOSTICS_ENABLED", default_value = "false")]
    pub memory_diagnostics: String,

    /// Seconds between PERIODIC lines of the diagnostics log (the original: 60).
    #[arg(long, env = "OIPD_DIAGNOSTICS_PERIOD_SECS", default_value_t = 60, hide = true)]
    pub diagnostics_period_secs: u64,

    /// Resident-memory thresholds (MB, comma-separated) that each write one heap
    /// profile to `<data-dir>/logs/heap-profiles/` when first crossed.
    #[arg(long, env = "OIPD_HEAP_PROFILE_THRESHOLDS_MB", default_value = "2048,4096,6144,8192,10240")]
    pub heap_profile_thresholds_mb: String,

    /// Never write heap profiles at thresholds (the original's variable).
    #[arg(long, env = "DISABLE_HEAP_DUMPS")]
    pub disable_heap_dumps: bool,
}

/// Who may do what: the JWT secret and the admin token.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// HS256 secret for JWTs, shared with the original node. Unset: a random
    /// per-process secret, so no token validates (uploads are impossible).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Admin token (`Authorization: Bearer <token>`) for `/debug/pprof/heap`, and
    /// for `/metrics` when `--metrics-require-admin`. Unset: those stay closed.
    #[arg(long, env = "OIPD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Require the admin token on `/metrics` (default: open, like most exporters).
    #[arg(long, env = "OIPD_METRICS_REQUIRE_ADMIN")]
    pub metrics_require_admin: bool,

    /// Accounts that may register on this node; past it, 403 (the original's
    /// variable; unset: no limit — the original refused everyone then).
    #[arg(long, env = "REGISTRATION_LIMIT")]
    pub registration_limit: Option<u64>,

    /// Bound: failed logins from one address (IPv6: one /64) in the window before
    /// it is locked out with a doubling delay (429 + `Retry-After`).
    #[arg(long, env = "OIPD_LOGIN_ADDRESS_FAILURES", default_value_t = crate::accounts::limiter::DEFAULT_PER_ADDRESS_FAILURES)]
    pub login_address_failures: u32,

    /// Bound: failed logins for one account in the window before it is locked out
    /// for addresses it has not signed in from (its owner's keep working).
    #[arg(long, env = "OIPD_LOGIN_ACCOUNT_FAILURES", default_value_t = crate::accounts::limiter::DEFAULT_PER_ACCOUNT_FAILURES)]
    pub login_account_failures: u32,

    /// Seconds over which failed logins are counted.
    #[arg(long, env = "OIPD_LOGIN_WINDOW_SECS", default_value_t = crate::accounts::limiter::DEFAULT_WINDOW.as_secs())]
    pub login_window_secs: u64,
}

/// The Arweave indexer (runs when a gateway is configured).
#[derive(Debug, Clone, Args)]
pub struct IndexerConfig {
    /// Arweave gateways the indexer reads, in order (comma-separated base URLs,
    /// e.g. `https://arweave.net`). Empty: no indexer (nothing leaves the machine).
    #[arg(long, env = "OIPD_ARWEAVE_GATEWAYS", default_value = "")]
    pub arweave_gateways: String,

    /// Put a local ar.io gateway first, as the original (`true`/`false`).
    #[arg(long, env = "USE_LOCAL_ARIO_GATEWAY", default_value = "false")]
    pub use_local_ario_gateway: String,

    /// The local ar.io gateway's `host:port`.
    #[arg(long, env = "LOCAL_ARIO_GATEWAY_ADDRESS", default_value = "localhost:4000")]
    pub local_ario_gateway_address: String,

    /// Seconds between indexer cycles once caught up.
    #[arg(long, env = "OIPD_INDEX_INTERVAL", default_value_t = 10)]
    pub index_interval: u64,

    /// Discovery never starts below this block (the original's first OIP block).
    #[arg(long, env = "OIPD_INDEX_START_BLOCK", default_value_t = crate::indexer::run::DEFAULT_START_BLOCK)]
    pub index_start_block: u64,

    /// Blocks newer than the tip minus this are re-checked every cycle (fork depth).
    #[arg(long, env = "OIPD_INDEX_CONFIRMATIONS", default_value_t = crate::indexer::run::DEFAULT_CONFIRMATIONS)]
    pub index_confirmations: u64,

    /// A fallback gateway (not the first) is not asked to fill a gap of more blocks than this.
    #[arg(long, env = "OIPD_INDEX_MAX_FALLBACK_GAP", default_value_t = crate::indexer::run::DEFAULT_MAX_FALLBACK_GAP)]
    pub index_max_fallback_gap: u64,

    /// Bound: transactions per GraphQL page (at most 100).
    #[arg(long, env = "OIPD_INDEX_PAGE_SIZE", default_value_t = 100)]
    pub index_page_size: u32,

    /// Bound: GraphQL pages per cycle.
    #[arg(long, env = "OIPD_INDEX_PAGES_PER_CYCLE", default_value_t = 50)]
    pub index_pages_per_cycle: u32,

    /// Bound: bytes of one transaction's data; larger data is skipped with a reason.
    #[arg(long, env = "OIPD_INDEX_MAX_DATA_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub index_max_data_bytes: u64,

    /// Bound: transaction data fetches in flight.
    #[arg(long, env = "OIPD_INDEX_FETCH_CONCURRENCY", default_value_t = 8)]
    pub index_fetch_concurrency: usize,

    /// Ordinary records whose creator signature does not verify: `require`
    /// (skip), `mark` (index with `oip.signatureValid: false`), `off` (no check).
    #[arg(long, env = "OIPD_RECORD_SIGNATURES", value_enum, default_value = "mark")]
    pub record_signatures: crate::indexer::process::SignatureMode,

    /// `all`, `whitelist` or `blacklist`, as the original.
    #[arg(long, env = "RECORD_TYPE_INDEX_MODE", default_value = "all")]
    pub record_type_index_mode: String,

    /// Record types indexed in `whitelist` mode (comma-separated).
    #[arg(long, env = "RECORD_TYPE_INDEX_WHITELIST", default_value = "")]
    pub record_type_index_whitelist: String,

    /// Record types skipped in `blacklist` mode (comma-separated).
    #[arg(long, env = "RECORD_TYPE_INDEX_BLACKLIST", default_value = "")]
    pub record_type_index_blacklist: String,

    /// More creator registrations read by position, like the original's three
    /// bootstrap registrations (comma-separated txids; for private networks).
    #[arg(long, env = "OIPD_INDEX_BOOTSTRAP_CREATORS", default_value = "")]
    pub index_bootstrap_creators: String,
}

impl IndexerConfig {
    /// The gateways in the order they are tried.
    pub fn gateways(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.use_local_ario_gateway.trim() == "true" && !self.local_ario_gateway_address.trim().is_empty() {
            let a = self.local_ario_gateway_address.trim();
            out.push(if a.contains("://") { a.to_owned() } else { format!("http://{a}") });
        }
        out.extend(self.arweave_gateways.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
        out
    }

    pub fn settings(&self) -> crate::indexer::run::Settings {
        use crate::indexer::process::{Policy, TypeFilter, ORIGINAL_BOOTSTRAP};
        let mut bootstrap: Vec<String> = ORIGINAL_BOOTSTRAP.iter().map(|s| (*s).to_owned()).collect();
        bootstrap.extend(self.index_bootstrap_creators.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
        crate::indexer::run::Settings {
            gateways: self.gateways(),
            interval: Duration::from_secs(self.index_interval.max(1)),
            start_block: self.index_start_block,
            confirmations: self.index_confirmations,
            max_fallback_gap: self.index_max_fallback_gap,
            page_size: self.index_page_size.clamp(1, crate::indexer::gateway::MAX_PAGE_SIZE),
            pages_per_cycle: self.index_pages_per_cycle.max(1),
            max_data_bytes: self.index_max_data_bytes.max(1),
            fetch_concurrency: self.index_fetch_concurrency.clamp(1, 64),
            policy: Policy {
                signatures: self.record_signatures,
                types: TypeFilter::from_env_values(&self.record_type_index_mode, &self.record_type_index_whitelist, &self.record_type_index_blacklist),
                bootstrap,
            },
        }
    }
}

/// The original's web pages: the public directory, its fallback, `/config.js`.
#[derive(Debug, Clone, Args)]
pub struct PagesConfig {
    /// Directory served at `/` (the original's `public/`). Default: `<data-dir>/public`.
    #[arg(long, env = "OIPD_PUBLIC_DIR")]
    pub public_dir: Option<PathBuf>,

    /// Answer `index.html` for any other `GET` outside `/api/`, `/media/`,
    /// `/gun-relay/` and `/config.js` (the original's `app.get('*')`): `auto` (when
    /// the public directory has an `index.html`), `on` or `off`.
    #[arg(long, env = "OIPD_SPA_FALLBACK", default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub spa_fallback: String,

    /// `Cache-Control` of HTML pages (revalidated with their ETag on every use).
    #[arg(long, env = "OIPD_PAGE_HTML_CACHE_CONTROL", default_value = "no-cache")]
    pub page_html_cache_control: String,

    /// `Cache-Control` of the other files of the public directory.
    #[arg(long, env = "OIPD_PAGE_CACHE_CONTROL", default_value = "public, max-age=300")]
    pub page_cache_control: String,

    /// The API base the pages are told in `/config.js` (`window.API_BASE_URL`);
    /// empty: the pages call the origin they were loaded from.
    #[arg(long, env = "PUBLIC_API_BASE_URL", default_value = "")]
    pub public_api_base_url: String,
}

/// Demo data and test-only routes.
#[derive(Debug, Clone, Args)]
pub struct DemoConfig {
    /// Fill an empty data dir with demo GIFs and print URLs to try.
    #[arg(long, env = "OIPD_DEMO")]
    pub demo: bool,

    /// Seed the demo store at this scale (1 ≈ 625 records, 160 ≈ 100k) with `--demo`.
    #[arg(long, env = "OIPD_DEMO_SCALE", default_value_t = 1)]
    pub demo_scale: u32,

    /// Mount `/__test/*` routes that allocate on purpose (tests only; never in production).
    #[arg(long, env = "OIPD_TEST_ROUTES", hide = true)]
    pub test_routes: bool,
}

impl ServeConfig {
    /// A config with every default, rooted at `data_dir` (tests and embedding).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            cfg: ServeConfig,
        }
        let mut cfg = Wrapper::parse_from(["oipd"]).cfg;
        cfg.data_dir = data_dir.into();
        cfg
    }

    /// `--store`, or the data dir's SQLite file.
    pub fn store_url(&self) -> Result<crate::store::backends::StoreUrl, crate::store::StoreError> {
        match &self.store.store {
            Some(s) => crate::store::backends::StoreUrl::parse(s),
            None => Ok(crate::store::backends::StoreUrl::default_for(
                &self.data_dir,
            )),
        }
    }

    pub fn web_dir(&self) -> PathBuf {
        self.data_dir.join("media").join("web")
    }

    pub fn media_dir(&self) -> PathBuf {
        self.data_dir.join("media")
    }

    pub fn public_dir(&self) -> PathBuf {
        self.pages.public_dir.clone().unwrap_or_else(|| self.data_dir.join("public"))
    }

    pub fn generate_dir(&self) -> PathBuf {
        self.media.generate_media_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("generated"))
    }

    /// `--cors-origins` parsed; a pattern with `*` anywhere but the two allowed
    /// places is a configuration error, not a silent prefix match.
    pub fn cors_rules(&self) -> Result<Vec<OriginRule>, String> {
        self.http.cors_origins.split(',').map(str::trim).filter(|o| !o.is_empty()).map(OriginRule::parse).collect()
    }

    pub fn diagnostics_enabled(&self) -> bool {
        self.memory.memory_diagnostics.trim() == "true"
    }

    pub fn thresholds_mb(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.memory.heap_profile_thresholds_mb.split(',').filter_map(|t| t.trim().parse().ok()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn memory_interval(&self) -> Duration {
        Duration::from_millis(self.memory.memory_monitor_interval.max(1000))
    }

    pub fn stream_wait(&self) -> Duration {
        Duration::from_millis(self.http.stream_wait_ms)
    }

    pub fn immutable_extension_list(&self) -> Vec<String> {
        self.http.immutable_extensions
            .split(',')
            .map(|s| s.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    }
}


/// Voice dialogues (`crate::voice`): which LLM, TTS and STT services to call (none
/// unless configured: the embedded defaults are records-only answers and
/// espeak-ng), and every bound a dialogue holds.
#[derive(Debug, Clone, Args)]
pub struct VoiceConfig {
    /// Ollama base URL (`/api/chat`, NDJSON). Unset: Ollama is not called.
    #[arg(long, env = "OLLAMA_HOST")]
    pub ollama_host: Option<String>,

    /// The Ollama model (the original's variable and default).
    #[arg(long, env = "DEFAULT_LLM_MODEL", default_value = "llama3.2:3b")]
    pub default_llm_model: String,

    /// OpenAI key; with it, OpenAI-compatible chat completions are called.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,

    /// Base URL of an OpenAI-compatible server (vLLM, llama.cpp, LM Studio: no key
    /// needed). Unset: `https://api.openai.com/v1` when a key is set.
    #[arg(long, env = "OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,

    /// Model asked of the OpenAI-compatible server.
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4o-mini")]
    pub openai_model: String,

    /// xAI key (`https://api.x.ai/v1`, OpenAI wire format).
    #[arg(long, env = "XAI_API_KEY", hide_env_values = true)]
    pub xai_api_key: Option<String>,

    /// Model asked of xAI.
    #[arg(long, env = "XAI_MODEL", default_value = "grok-4-fast")]
    pub xai_model: String,

    /// Seconds an LLM may take to produce its first token (then the turn apologises).
    #[arg(long, env = "OIPD_LLM_TIMEOUT_SECS", default_value_t = 30)]
    pub llm_timeout_secs: u64,

    /// The original's TTS service (multipart `/synthesize` → WAV). Unset: not called.
    #[arg(long, env = "TTS_SERVICE_URL")]
    pub tts_service_url: Option<String>,

    /// The original's STT service (`/transcribe_file`). Unset: not called.
    #[arg(long, env = "STT_SERVICE_URL")]
    pub stt_service_url: Option<String>,

    /// Model for OpenAI-compatible `/audio/transcriptions` (used when no STT service is set).
    #[arg(long, env = "OIPD_STT_MODEL", default_value = "whisper-1")]
    pub stt_model: String,

    /// ElevenLabs key; with it, engine `elevenlabs` speaks through ElevenLabs (MP3).
    #[arg(long, env = "ELEVENLABS_API_KEY", hide_env_values = true)]
    pub elevenlabs_api_key: Option<String>,

    /// ElevenLabs API base URL.
    #[arg(long, env = "ELEVENLABS_BASE_URL", default_value = "https://api.elevenlabs.io")]
    pub elevenlabs_base_url: String,

    /// The built-in speech engine's command (writes WAV to stdout with `--stdout`).
    #[arg(long, env = "OIPD_ESPEAK", default_value = "espeak-ng")]
    pub espeak: String,

    /// Bound: dialogues open at once; past it `/converse` answers 503 + `Retry-After`.
    #[arg(long, env = "OIPD_VOICE_MAX_DIALOGUES", default_value_t = 256)]
    pub voice_max_dialogues: usize,

    /// Seconds a dialogue lives without activity (refreshed by every frame and client).
    #[arg(long, env = "OIPD_VOICE_DIALOGUE_TTL_SECS", default_value_t = 300)]
    pub voice_dialogue_ttl_secs: u64,

    /// Bound: bytes of frames one dialogue keeps to replay to clients that connect late.
    #[arg(long, env = "OIPD_VOICE_REPLAY_BYTES", default_value_t = 262_144)]
    pub voice_replay_bytes: usize,

    /// Bound: SSE clients of one dialogue; past it `open-stream` answers 503.
    #[arg(long, env = "OIPD_VOICE_CLIENTS_PER_DIALOGUE", default_value_t = 4)]
    pub voice_clients_per_dialogue: usize,

    /// Bound: frames queued for one SSE client; a client that falls this far behind is dropped.
    #[arg(long, env = "OIPD_VOICE_CLIENT_QUEUE", default_value_t = 64)]
    pub voice_client_queue: usize,

    /// Bound: speech syntheses running for one dialogue.
    #[arg(long, env = "OIPD_VOICE_TTS_PER_DIALOGUE", default_value_t = 3)]
    pub voice_tts_per_dialogue: usize,

    /// Bound: speech syntheses running in all.
    #[arg(long, env = "OIPD_VOICE_TTS_JOBS", default_value_t = 16)]
    pub voice_tts_jobs: usize,

    /// Bound: espeak-ng processes running at once.
    #[arg(long, env = "OIPD_VOICE_ESPEAK_PROCESSES", default_value_t = 4)]
    pub voice_espeak_processes: usize,

    /// Bound: bytes of synthesized audio held at once (waiting to be sent or in client queues).
    #[arg(long, env = "OIPD_VOICE_AUDIO_BYTES", default_value_t = 33_554_432)]
    pub voice_audio_bytes: usize,
}

/// The outbound HTTP client's bounds (`clients::ClientLimits`): one client, shared
/// by every service oipd calls (LLM, TTS, STT, GUN peers, Arweave gateways).
#[derive(Debug, Clone, Args)]
pub struct ClientConfig {
    /// Bound: outbound requests in flight to one origin; more wait, then fail busy.
    #[arg(long, env = "OIPD_OUTBOUND_PER_HOST", default_value_t = crate::clients::limits::DEFAULT_PER_HOST)]
    pub outbound_per_host: usize,

    /// Bound: outbound requests in flight in all.
    #[arg(long, env = "OIPD_OUTBOUND_MAX_IN_FLIGHT", default_value_t = crate::clients::limits::DEFAULT_MAX_IN_FLIGHT)]
    pub outbound_max_in_flight: usize,

    /// Bound: largest outbound response body read into memory, bytes (enforced
    /// while streaming; larger bodies are streamed, never buffered).
    #[arg(long, env = "OIPD_OUTBOUND_MAX_RESPONSE_BYTES", default_value_t = crate::clients::limits::DEFAULT_MAX_RESPONSE_BYTES)]
    pub outbound_max_response_bytes: u64,

    /// Seconds to connect (TCP and TLS) to another server.
    #[arg(long, env = "OIPD_OUTBOUND_CONNECT_TIMEOUT_SECS", default_value_t = crate::clients::limits::DEFAULT_CONNECT_TIMEOUT.as_secs())]
    pub outbound_connect_timeout_secs: u64,

    /// Seconds an outbound request may wait for any read (head or next body bytes).
    #[arg(long, env = "OIPD_OUTBOUND_READ_TIMEOUT_SECS", default_value_t = crate::clients::limits::DEFAULT_READ_TIMEOUT.as_secs())]
    pub outbound_read_timeout_secs: u64,

    /// Seconds a whole outbound request may take unless its caller sets its own.
    #[arg(long, env = "OIPD_OUTBOUND_TIMEOUT_SECS", default_value_t = crate::clients::limits::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub outbound_timeout_secs: u64,
}

impl ClientConfig {
    pub fn limits(&self) -> crate::clients::ClientLimits {
        crate::clients::ClientLimits {
            per_host: self.outbound_per_host.max(1),
            max_in_flight: self.outbound_max_in_flight.max(1),
            max_response_bytes: self.outbound_max_response_bytes,
            connect_timeout: Duration::from_secs(self.outbound_connect_timeout_secs.max(1)),
            read_timeout: Duration::from_secs(self.outbound_read_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(self.outbound_timeout_secs.max(1)),
            ..Default::default()
        }
    }
}

/// One entry of `--cors-origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    /// `https://app.example.com`: that origin exactly.
    Exact(String),
    /// `chrome-extension://*`: every origin of that scheme.
    Scheme(String),
    /// `https://*.example.com`: that scheme, any host ending in `.example.com`
    /// (the suffix may carry a port).
    Subdomain { scheme: String, suffix: String },
}

impl OriginRule {
    pub fn parse(p: &str) -> Result<Self, String> {
        let bad = || format!("--cors-origins: {p:?}: '*' may only stand for a whole host (scheme://*) or its first labels (scheme://*.example.com)");
        let (scheme, rest) = p.split_once("://").ok_or_else(|| format!("--cors-origins: {p:?} is not an origin (scheme://host)"))?;
        if scheme.is_empty() || scheme.contains('*') {
            return Err(bad());
        }
        match rest {
            "*" => Ok(OriginRule::Scheme(scheme.to_owned())),
            r if r.starts_with("*.") && !r[2..].contains('*') && r.len() > 2 => {
                Ok(OriginRule::Subdomain { scheme: scheme.to_owned(), suffix: r[1..].to_owned() })
            }
            r if !r.contains('*') && !r.is_empty() && !r.contains('/') => Ok(OriginRule::Exact(p.to_owned())),
            _ => Err(bad()),
        }
    }

    pub fn matches(&self, origin: &str) -> bool {
        let Some((scheme, host)) = origin.split_once("://") else { return false };
        match self {
            OriginRule::Exact(o) => origin == o,
            OriginRule::Scheme(s) => scheme == s && !host.is_empty(),
            OriginRule::Subdomain { scheme: s, suffix } => {
                scheme == s && host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        }
    }
}

#[cfg(test)]
mod origin_tests {
    use super::OriginRule;

    #[test]
    fn origin_patterns() {
        let r = |p: &str| OriginRule::parse(p).unwrap();
        assert!(r("https://app.example.com").matches("https://app.example.com"));
        assert!(!r("https://app.example.com").matches("https://app.example.com.evil.net"));
        assert!(r("chrome-extension://*").matches("chrome-extension://abcdef"));
        assert!(!r("chrome-extension://*").matches("https://abcdef"));
        let sub = r("https://*.example.com");
        assert!(sub.matches("https://a.example.com") && sub.matches("https://a.b.example.com"));
        assert!(!sub.matches("https://example.com") && !sub.matches("https://evilexample.com") && !sub.matches("http://a.example.com"));
        assert!(!sub.matches("https://a.example.com.evil.net"));
        for bad in ["https://app.example.com*", "*", "https://*example.com", "https://a.*.com", "*://x", "nope", "https://x/*"] {
            assert!(OriginRule::parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod readme_tests {
    use super::ServeConfig;

    /// The README's configuration table and `ServeConfig` cannot drift: every flag
    /// of `oipd serve` has a row with its environment variable and its default,
    /// and every row names a real flag.
    #[test]
    fn readme_table_matches() {
        use clap::{Args, Command};
        let readme = include_str!("../../README.md");
        let section = readme.split("## Configuration").nth(1).expect("a Configuration section").split("\n## ").next().unwrap();
        // `| `--flag` | `ENV` | default | what |`
        let rows: Vec<Vec<&str>> = section
            .lines()
            .filter(|l| l.starts_with("| `--"))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        assert!(rows.len() > 30, "found {} rows", rows.len());
        let cmd = ServeConfig::augment_args(Command::new("oipd"));
        let mut flags = Vec::new();
        for arg in cmd.get_arguments() {
            if arg.is_hide_set() {
                continue;
            }
            let Some(long) = arg.get_long() else { continue };
            let flag = format!("`--{long}`");
            flags.push(flag.clone());
            let row = rows.iter().find(|r| r[0] == flag).unwrap_or_else(|| panic!("README: no row for {flag}"));
            let env = arg.get_env().map(|e| format!("`{}`", e.to_string_lossy()));
            assert_eq!(Some(row[1].to_owned()), env, "README: environment variable of {flag}");
            let defaults: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
            if let [d] = defaults.as_slice() {
                let cell = row[2];
                let shown = if d.is_empty() { cell.starts_with("empty") } else { cell.starts_with(&format!("`{d}`")) || (d == "false" && cell.starts_with("off")) };
                assert!(shown, "README: default of {flag} is `{d}`, the table says {cell:?}");
            }
        }
        for r in &rows {
            assert!(flags.contains(&r[0].to_owned()), "README lists {} but `oipd serve` has no such flag", r[0]);
        }
    }

    /// The README's one setting that reproduces the original's CORS allow-list parses
    /// and admits what the original admitted, and nothing else.
    #[test]
    fn readme_cors_setting_reproduces_the_original() {
        let readme = include_str!("../../README.md");
        let value = readme.split("OIPD_CORS_ORIGINS='").nth(1).and_then(|r| r.split('\'').next()).expect("the setting in the README");
        let mut cfg = ServeConfig::with_data_dir("/tmp/x");
        cfg.http.cors_origins = value.to_owned();
        let rules = cfg.cors_rules().unwrap();
        let ok = |o: &str| rules.iter().any(|r| r.matches(o));
        for o in ["chrome-extension://abcdef", "moz-extension://x", "safari-web-extension://y", "http://localhost:3005", "https://app.fitnessally.io", "https://api.oip.onl", "https://lyra.ninja"] {
            assert!(ok(o), "{o}");
        }
        for o in ["https://evil.example", "http://localhost:9999", "https://app.fitnessally.io.evil.net", "http://app.fitnessally.io"] {
            assert!(!ok(o), "{o}");
        }
    }
}

#[cfg(test)]
mod gun_tests {
    use super::*;

    #[test]
    fn relay_allow_ranges() {
        let r = |s: &str| IpRange::parse(s).unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(r("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!r("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(r("10.0.0.0/8").contains(ip("10.200.1.1")));
        assert!(!r("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(r("::1").contains(ip("::1")));
        assert!(r("fd00::/8").contains(ip("fd12::1")));
        // an IPv4 client seen through a dual-stack socket
        assert!(r("192.168.1.0/24").contains(ip("::ffff:192.168.1.7")));
        assert!(r("0.0.0.0/0").contains(ip("8.8.8.8")));
        for bad in ["", "x", "10.0.0.0/33", "::/129", "1.2.3.4/x"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
        let mut cfg = ServeConfig::with_data_dir("/tmp/x");
        assert_eq!(cfg.gun.relay_allow().unwrap().len(), 2);
        assert!(cfg.gun.peers().is_empty());
        cfg.gun.gun_peers = "ws://a:8765/gun".into();
        assert_eq!(cfg.gun.peers(), ["http://a:8765/gun-relay"]);
        cfg.gun.gun_external_peers = "http://b:3005/gun-relay".into();
        assert_eq!(cfg.gun.peers(), ["http://b:3005/gun-relay"]);
        cfg.gun.gun_sync_enabled = "false".into();
        assert!(!cfg.gun.sync_enabled());
    }
}
