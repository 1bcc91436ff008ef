//! oipd: an Open Index Protocol node with memory bounded by construction.
//!
//! The crate is a library so tests and benchmarks start a server in-process; the
//! `oipd` binary (`main.rs`) is a thin CLI over it. See the README's architecture
//! map for what each module does and what bounds it.

pub mod accounts;
pub mod api;
pub mod arweave;
pub mod auth;
pub mod civil;
pub mod clients;
pub mod config;
pub mod demo;
pub mod gun;
pub mod http;
pub mod indexer;
pub mod limits;
pub mod media;
pub mod memory;
pub mod oip;
pub mod proc;
pub mod publish;
pub mod records;
pub mod server;
pub mod state;
pub mod store;
pub mod tasks;
pub mod voice;

/// Bound: threads tokio may start for blocking work (file reads, hashing, upload
/// writes). tokio's default is 512; every file body has at most one read running,
/// so more threads than this only add memory.
pub const MAX_BLOCKING_THREADS: usize = 64;

/// The runtime every `oipd` command uses.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
}

/// A server running in the background of the current runtime (tests, embedding).
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub state: state::SharedState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Bind `config.http.listen` (use port 0 for any) and serve until [`RunningServer::stop`].
    pub async fn start(
        config: config::ServeConfig,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let listener = tokio::net::TcpListener::bind(config.http.listen).await?;
        let addr = listener.local_addr()?;
        let mut config = config;
        config.http.listen = addr; // the port actually bound (`/config.js` tells it)
        let state = state::AppState::new(config)?;
        server::start_gun_relay(&state).await?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server::run(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Ok(RunningServer {
            addr,
            state,
            shutdown: Some(tx),
            handle,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Graceful stop: returns once in-flight responses finished or the grace ran out.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.handle).await;
    }
}
