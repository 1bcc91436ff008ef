//! The `oipd` command line: `serve` runs the node, `token` mints a JWT for the
//! configured secret (operators and tests).

use std::process::ExitCode;

/// jemalloc (returns freed memory to the OS, low fragmentation across the
/// runtime's threads, exact statistics), wrapped so every allocation is charged
/// to the route that made it (see `oipd::memory::track`).
#[cfg(feature = "track-alloc")]
#[global_allocator]
static ALLOC: oipd::memory::track::TrackingAlloc<tikv_jemallocator::Jemalloc> =
    oipd::memory::track::TrackingAlloc(tikv_jemallocator::Jemalloc);

/// Plain jemalloc (`--no-default-features`): only to measure tracking's overhead.
#[cfg(not(feature = "track-alloc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation. Defaults keep freed pages for
/// 10 s in each of 4×cores arenas, which shows up as resident memory that is no
/// longer in use; a server that promises flat memory returns them within ~1 s:
/// - `background_thread`: purging happens on jemalloc's own thread, not in requests;
/// - `narenas:4`: fewer caches of free pages (2-core machines gain nothing from 8);
/// - `dirty_decay_ms:1000`, `muzzy_decay_ms:0`: freed pages go back within a second;
/// - `prof:true,prof_active:true,lg_prof_sample:19`: the sampling heap profiler is
///   on (one stack per ~512 KiB allocated), so a profile can be taken at any time
///   without restarting (`/debug/pprof/heap`, memory thresholds).
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 115] =
    b"background_thread:true,narenas:4,dirty_decay_ms:1000,muzzy_decay_ms:0,prof:true,prof_active:true,lg_prof_sample:19\0";

use clap::{Parser, Subcommand};
use oipd::auth::{Auth, Claims};
use oipd::config::ServeConfig;

#[derive(Parser)]
#[command(name = "oipd", version, about = "An Open Index Protocol node with bounded memory")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node.
    Serve(ServeConfig),
    /// Import OIP records and templates (JSON array, NDJSON, an Elasticsearch
    /// `_search` response or an elasticdump export) into the data dir's store.
    Import {
        #[arg(long, env = "OIPD_DATA_DIR", default_value = "./data")]
        data_dir: std::path::PathBuf,
        /// The record store (default: the data dir's SQLite file).
        #[arg(long, env = "OIPD_STORE")]
        store: Option<String>,
        /// Files to import, in order.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Run the Arweave indexer without serving: `--once` catches up with the
    /// chain and exits (progress: blocks, transactions, rate, ETA).
    Index {
        #[arg(long, env = "OIPD_DATA_DIR", default_value = "./data")]
        data_dir: std::path::PathBuf,
        /// The record store (default: the data dir's SQLite file).
        #[arg(long, env = "OIPD_STORE")]
        store: Option<String>,
        /// Catch up and exit (without it: keep indexing until interrupted).
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        indexer: oipd::config::IndexerConfig,
        #[command(flatten)]
        clients: oipd::config::ClientConfig,
    },
    /// Grant (or with --revoke, take away) administrator rights of an account:
    /// the admin routes of `/api/user/admin/*` and admin password resets.
    Admin {
        #[arg(long, env = "OIPD_DATA_DIR", default_value = "./data")]
        data_dir: std::path::PathBuf,
        /// The record store (default: the data dir's SQLite file).
        #[arg(long, env = "OIPD_STORE")]
        store: Option<String>,
        /// The account's email.
        #[arg(long)]
        email: String,
        #[arg(long)]
        revoke: bool,
    },
    /// Copy a data dir's SQLite store and local media into PostgreSQL and/or an
    /// S3-compatible object store (see "Running more than one node"), with
    /// progress bars. Idempotent and resumable: run it again after an
    /// interruption and it copies only what is missing; every media item's bytes
    /// are hashed while uploaded and published only when they match its id.
    Migrate {
        #[arg(long, env = "OIPD_DATA_DIR", default_value = "./data")]
        data_dir: std::path::PathBuf,
        /// The target store: `postgres://user:password@host:port/db`.
        #[arg(long)]
        to_store: Option<String>,
        /// The target media store: `s3://bucket/prefix` (endpoint, region and
        /// credentials from the AWS variables); its manifests go to --to-store
        /// (or, without it, to the data dir's SQLite store).
        #[arg(long)]
        to_media: Option<String>,
    },
    /// Write a deterministic corpus of animated GIFs (0.5–2 MB) for benchmarks.
    #[command(hide = true)]
    Corpus {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 300)]
        count: u32,
    },
    /// Print an HS256 JWT signed with JWT_SECRET, for the given identity.
    Token {
        /// The `publicKey` claim: the identity that owns uploads.
        #[arg(long)]
        public_key: String,
        #[arg(long)]
        email: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        expires_in: u64,
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
    },
}

fn main() -> ExitCode {
    oipd::memory::configure_c_malloc();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(cfg) => match serve(cfg) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("oipd: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Index { data_dir, store, once, indexer, clients } => match index(data_dir, store, once, indexer, clients) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("oipd index: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Import { data_dir, store, files } => match import(data_dir, store, files) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("oipd import: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Migrate { data_dir, to_store, to_media } => match migrate(data_dir, to_store, to_media) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("oipd migrate: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Admin { data_dir, store, email, revoke } => match admin(data_dir, store, &email, !revoke) {
            Ok(()) => {
                println!("{email}: administrator {}", if revoke { "rights revoked" } else { "rights granted" });
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("oipd admin: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Corpus { dir, count } => match corpus(&dir, count) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("oipd corpus: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Token { public_key, email, expires_in, jwt_secret } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let claims = Claims { public_key: Some(public_key), email, exp: Some(now + expires_in), ..Default::default() };
            println!("{}", Auth::new(Some(&jwt_secret)).mint(&claims));
            ExitCode::SUCCESS
        }
    }
}

fn import(data_dir: std::path::PathBuf, store: Option<String>, files: Vec<std::path::PathBuf>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(&data_dir)?;
    let rt = oipd::runtime()?;
    let url = match store {
        Some(s) => oipd::store::backends::StoreUrl::parse(&s)?,
        None => oipd::store::backends::StoreUrl::default_for(&data_dir),
    };
    let store = oipd::store::backends::open(&url, oipd::store::sqlite::READ_BUDGET)?;
    let handle = rt.handle().clone();
    let summary = rt.block_on(rt.spawn_blocking(move || {
        oipd::records::import::import_files(&store, &handle, &files, true)
    }))??;
    print!("{summary}");
    Ok(())
}

fn index(
    data_dir: std::path::PathBuf,
    store: Option<String>,
    once: bool,
    indexer: oipd::config::IndexerConfig,
    clients: oipd::config::ClientConfig,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use oipd::indexer::run::{Indexer, Progress};
    let settings = indexer.settings();
    if settings.gateways.is_empty() {
        return Err("no gateway configured: pass --arweave-gateways (e.g. https://arweave.net)".into());
    }
    std::fs::create_dir_all(&data_dir)?;
    let url = match store {
        Some(s) => oipd::store::backends::StoreUrl::parse(&s)?,
        None => oipd::store::backends::StoreUrl::default_for(&data_dir),
    };
    let rt = oipd::runtime()?;
    rt.block_on(async move {
        let stores = oipd::store::backends::open(&url, oipd::store::sqlite::READ_BUDGET)?;
        let client = oipd::clients::OutboundClient::new(clients.limits())?;
        let gateways = oipd::indexer::gateway::Gateways::new(&settings.gateways, client)?;
        let interval = settings.interval;
        let ix = Indexer::new(settings, gateways, stores.indexer.clone());
        let start = stores.indexer.resume_height().await?.unwrap_or(0);
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} block {pos}/{len} · {msg} · ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let started = std::time::Instant::now();
        let show = |p: Progress| {
            bar.set_length(p.tip.saturating_sub(start).max(1));
            bar.set_position(p.height.saturating_sub(start).min(p.tip.saturating_sub(start)));
            let rate = p.processed as f64 / started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{} transactions · {rate:.1} tx/s", p.processed));
        };
        loop {
            let r = ix.catch_up(&show).await?;
            if once {
                bar.finish();
                println!("indexed to block {} (tip {}), {} transactions this run", r.height, r.tip, ix.health().await["processed"]);
                return Ok(());
            }
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = tokio::time::sleep(interval) => {}
            }
        }
    })
}

/// `oipd migrate`: true when everything was copied (or was there already).
fn migrate(data_dir: std::path::PathBuf, to_store: Option<String>, to_media: Option<String>) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    use oipd::store::backends::{open, StoreUrl};
    if to_store.is_none() && to_media.is_none() {
        return Err("nothing to do: pass --to-store postgres://… and/or --to-media s3://…".into());
    }
    let src = oipd::store::sqlite::SqliteStore::path_in(&data_dir);
    if !src.exists() {
        return Err(format!("{} does not exist", src.display()).into());
    }
    let rt = oipd::runtime()?;
    rt.block_on(async move {
        let style = indicatif::ProgressStyle::with_template("{prefix:>10} {bar:40} {pos}/{len} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let bars = indicatif::MultiProgress::new();
        let target = match &to_store {
            Some(u) => {
                let url = StoreUrl::parse(u)?;
                if matches!(url, StoreUrl::Sqlite(_)) {
                    return Err("--to-store must be another backend (postgres://…)".into());
                }
                println!("copying {} into {}", src.display(), url.describe());
                let stores = open(&url, oipd::store::sqlite::READ_BUDGET)?;
                let stage_bars: std::sync::Mutex<std::collections::HashMap<&'static str, indicatif::ProgressBar>> = Default::default();
                let progress = |stage: &'static str, done: u64, total: u64| {
                    let mut m = stage_bars.lock().unwrap_or_else(|p| p.into_inner());
                    let bar = m.entry(stage).or_insert_with(|| {
                        let b = bars.add(indicatif::ProgressBar::new(total).with_style(style.clone()));
                        b.set_prefix(stage);
                        b
                    });
                    bar.set_position(done);
                };
                let c = oipd::store::copy::copy_sqlite(&src, &stores, &progress).await?;
                for b in stage_bars.lock().unwrap_or_else(|p| p.into_inner()).values() {
                    b.finish();
                }
                println!(
                    "records: {} copied, {} already there; templates: {} copied, {} already there; accounts: {} copied, {} already there; indexer rows: {}; GUN nodes: {} copied, {} already there; unreadable: {}",
                    c.records.0, c.records.1, c.templates.0, c.templates.1, c.users.0, c.users.1, c.indexer, c.gun.0, c.gun.1, c.bad
                );
                stores
            }
            None => open(&StoreUrl::default_for(&data_dir), oipd::store::sqlite::READ_BUDGET)?,
        };
        let Some(media_url) = to_media else { return Ok(true) };
        let cfg = oipd::media::s3::S3Config::parse(&media_url, |k| std::env::var(k).ok())?;
        let client = oipd::clients::OutboundClient::new(oipd::clients::ClientLimits::default())?;
        let s3 = oipd::media::s3::S3Media::open(&cfg, client, target.media.clone()).await?;
        let root = data_dir.join("media");
        let mut items = Vec::new();
        if let Ok(dir) = std::fs::read_dir(&root) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(id) = oipd::media::MediaId::parse(&name).filter(|_| e.path().join("original").is_file()) {
                    items.push(id);
                }
            }
        }
        items.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let bar = bars.add(indicatif::ProgressBar::new(items.len() as u64).with_style(style));
        bar.set_prefix("media");
        let (mut copied, mut present, mut bytes, mut bad) = (0u64, 0u64, 0u64, Vec::new());
        for id in &items {
            let dir = root.join(id.as_str());
            let manifest = std::fs::read_to_string(dir.join("manifest.json"))
                .ok()
                .filter(|m| serde_json::from_str::<serde_json::Value>(m).is_ok())
                .unwrap_or_else(|| serde_json::json!({ "mediaId": id.as_str() }).to_string());
            match s3.import_file(id, &dir.join("original"), manifest).await? {
                oipd::media::s3::Imported::Copied(n) => {
                    copied += 1;
                    bytes += n;
                }
                oipd::media::s3::Imported::Present => present += 1,
                oipd::media::s3::Imported::HashMismatch(got) => bad.push(format!("{} (its bytes hash to {got})", id.as_str())),
            }
            bar.inc(1);
            bar.set_message(format!("{:.1} MB", bytes as f64 / 1e6));
        }
        bar.finish();
        println!("media: {copied} copied ({:.1} MB), {present} already there, {} not copied: hash mismatch", bytes as f64 / 1e6, bad.len());
        for b in &bad {
            println!("  hash mismatch: {b}");
        }
        Ok(bad.is_empty())
    })
}

fn admin(data_dir: std::path::PathBuf, store: Option<String>, email: &str, grant: bool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = match store {
        Some(s) => oipd::store::backends::StoreUrl::parse(&s)?,
        None => oipd::store::backends::StoreUrl::default_for(&data_dir),
    };
    let rt = oipd::runtime()?;
    rt.block_on(async {
        let stores = oipd::store::backends::open(&url, oipd::store::sqlite::READ_BUDGET)?;
        let mut user = stores.users.user_by_email(email).await?.ok_or("no account with that email")?;
        user.set("isAdmin", grant);
        stores.users.update_user(&user).await?;
        Ok(())
    })
}

fn corpus(dir: &std::path::Path, count: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bar = indicatif::ProgressBar::new(count as u64);
    for i in 0..count {
        let path = dir.join(format!("ex-{i:04}.gif"));
        if !path.exists() {
            // sizes spread evenly over 0.5–2 MB, deterministic per index
            let target = 512 * 1024 + (i as u64 * 7919 % 1000) * 1536 * 1024 / 1000;
            oipd::demo::write_gif(&path, i as u64 + 1, target)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// `--demo`: GIFs under the web root and FitnessAlly records in the store.
async fn seed_demo(cfg: &ServeConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let web = cfg.web_dir();
    std::fs::create_dir_all(&web)?;
    tokio::task::spawn_blocking(move || oipd::demo::ensure_demo_gifs(&web)).await??;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let store = oipd::store::backends::open(&cfg.store_url()?, oipd::store::sqlite::READ_BUDGET)?.records;
    let bar = indicatif::ProgressBar::new_spinner();
    let n = oipd::records::demo::seed_if_empty(&*store, cfg.demo.demo_scale, |n| bar.set_message(format!("seeding demo records: {n}"))).await?;
    bar.finish_and_clear();
    if n > 0 {
        println!("Seeded {n} demo records (scale {}).", cfg.demo.demo_scale);
    }
    Ok(())
}

fn serve(cfg: ServeConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let rt = oipd::runtime()?;
    rt.block_on(async move {
        let demo = cfg.demo.demo;
        if demo {
            seed_demo(&cfg).await?;
        }
        let listener = tokio::net::TcpListener::bind(cfg.http.listen).await?;
        let addr = listener.local_addr()?;
        let mut cfg = cfg;
        cfg.http.listen = addr;
        let state = oipd::state::AppState::new(cfg)?;
        oipd::server::start_gun_relay(&state).await?;
        if demo {
            println!("Demo ready. Try:");
            for (name, _) in oipd::demo::DEMO_GIFS.iter().take(3) {
                println!("  curl -I http://{addr}/media/{}/{name}", oipd::demo::DEMO_DIR);
            }
            println!("  curl 'http://{addr}/api/records?recordType=workout&resolveDepth=2&limit=2'");
            println!("  curl 'http://{addr}/api/records?recordType=recipe&search=bowl&summarizeTags=true'");
            println!("  curl http://{addr}/api/records/recordTypes");
            println!("  curl http://{addr}/api/health/memory");
        }
        tracing::info!(%addr, data_dir = %state.config.data_dir.display(), "oipd listening");
        oipd::server::run(listener, state, oipd::server::shutdown_signal()).await;
        Ok(())
    })
}
