//! The `oipd` command line: `serve` runs the node, `token` mints a JWT for the
//! configured secret (operators and tests).

use std::process::ExitCode;

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

fn serve(cfg: ServeConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let rt = oipd::runtime()?;
    rt.block_on(async move {
        let demo = cfg.demo;
        let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let state = oipd::state::AppState::new(cfg)?;
        if demo {
            let web_root = state.web_root.clone();
            let gifs = tokio::task::spawn_blocking(move || oipd::demo::ensure_demo_gifs(&web_root)).await??;
            println!("Demo media ready. Try:");
            for g in &gifs {
                println!("  curl -I http://{addr}/media/{}", g.display());
            }
            println!("  curl http://{addr}/api/health");
            println!("  curl http://{addr}/api/health/memory");
        }
        tracing::info!(%addr, data_dir = %state.config.data_dir.display(), "oipd listening");
        oipd::server::run(listener, state, oipd::server::shutdown_signal()).await;
        Ok(())
    })
}
