//! A real S3-compatible server for the media tests: `moto_server` from PyPI's
//! `moto[server]` (pinned; `scripts/test.sh` installs it into
//! `target/moto-venv`, or `MOTO_SERVER` names the program), started once per
//! test binary on a free loopback port and stopped by a watchdog when the test
//! binary exits. It speaks S3's REST and XML wire format: SigV4-presigned
//! requests, multipart uploads, ranged GETs. (It does not check signatures or
//! credentials; a missing bucket it does refuse.)

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct S3Server {
    pub endpoint: String,
}

static S3: OnceLock<Result<S3Server, String>> = OnceLock::new();

fn program() -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server"))
}

/// A server of its own (to be killed by a fault test): its endpoint and process.
pub fn s3_server_private() -> (S3Server, std::process::Child) {
    let prog = program();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&prog).args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (S3Server { endpoint: format!("http://127.0.0.1:{port}") }, child)
}

fn start() -> Result<S3Server, String> {
    let prog = program();
    if !prog.exists() {
        return Err(format!("{} is missing (scripts/test.sh installs moto[server] there)", prog.display()));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&prog)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", prog.display()))?;
    Command::new("sh")
        .arg("-c")
        .arg(format!("while kill -0 {} 2>/dev/null; do sleep 1; done; kill {} 2>/dev/null", std::process::id(), child.id()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("watchdog: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("moto_server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(S3Server { endpoint: format!("http://127.0.0.1:{port}") })
}

/// The test S3 server (started on first use).
pub fn s3_server() -> &'static S3Server {
    S3.get_or_init(start).as_ref().unwrap_or_else(|e| panic!("test S3 server: {e}"))
}

impl S3Server {
    /// The AWS variables a node needs to reach it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "oipd-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "oipd-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A fresh bucket.
    pub async fn bucket(&self) -> String {
        let name = format!("oipd-{:016x}", fastrand::u64(..));
        let r = reqwest::Client::new().put(format!("{}/{name}", self.endpoint)).send().await.unwrap();
        assert!(r.status().is_success(), "creating bucket {name}: {}", r.status());
        name
    }

    /// Keys under `prefix` in `bucket`, and multipart uploads in progress there.
    pub async fn contents(&self, bucket: &str, prefix: &str) -> (Vec<String>, usize) {
        let get = |q: String| async move { reqwest::get(format!("{}/{bucket}?{q}", self.endpoint)).await.unwrap().text().await.unwrap() };
        let list = get(format!("list-type=2&prefix={prefix}")).await;
        let keys = list.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(str::to_owned).collect();
        let uploads = get("uploads".into()).await.matches("<UploadId>").count();
        (keys, uploads)
    }
}
