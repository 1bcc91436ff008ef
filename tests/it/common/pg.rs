//! A throwaway PostgreSQL cluster for the store contract suite: started once per
//! test binary from Debian's `postgresql` package (`/usr/lib/postgresql/*/bin`;
//! `scripts/test.sh` installs it), on a free loopback port, trust auth, no fsync.
//! As root (CI) the server runs as `nobody` (PostgreSQL refuses root). A watchdog
//! shell stops it and removes its directory when the test binary exits, however it
//! exits. Every data directory a test uses gets its own database, created from a
//! migrated template (so the same data directory opened twice is the same database).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub port: u16,
    bin: PathBuf,
    pub dir: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static CREATED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// The newest installed server's bin directory.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// `cmd` as the server's user: `nobody` when we are root.
fn as_server_user(program: &Path) -> Command {
    // SAFETY: reads the effective uid.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start() -> Result<Cluster, String> {
    let bin = bin_dir().ok_or("PostgreSQL is not installed (apt-get install postgresql; scripts/test.sh does)")?;
    let dir = std::env::temp_dir().join(format!("oipd-test-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // SAFETY: plain libc calls on a path we own.
    if unsafe { libc::geteuid() } == 0 {
        let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
        unsafe { libc::chown(c.as_ptr(), 65534, 65534) };
    }
    let data = dir.join("data");
    let out = as_server_user(&bin.join("initdb"))
        .args(["-D", data.to_str().unwrap(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = free_port();
    let log = std::fs::File::create(dir.join("log")).map_err(|e| e.to_string())?;
    let mut server = as_server_user(&bin.join("postgres"));
    server
        .args(["-D", data.to_str().unwrap(), "-p", &port.to_string(), "-k", dir.to_str().unwrap()])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .args(["-c", "max_connections=400", "-c", "shared_buffers=32MB"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let child = server.spawn().map_err(|e| format!("postgres: {e}"))?;
    // The watchdog: when this process is gone, stop the server and clean up.
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -INT $(head -1 '{pidfile}') 2>/dev/null; kill {child} 2>/dev/null; sleep 3; rm -rf '{dir}'",
            me = std::process::id(),
            pidfile = data.join("postmaster.pid").display(),
            child = child.id(),
            dir = dir.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("watchdog: {e}"))?;
    let c = Cluster { port, bin, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !c.client("pg_isready").arg("-q").status().map(|s| s.success()).unwrap_or(false) {
        if Instant::now() > deadline {
            return Err(format!("PostgreSQL did not start: {}", std::fs::read_to_string(c.dir.join("log")).unwrap_or_default()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The template every test database is copied from: migrated once.
    let out = c.client("createdb").arg("oipd_tpl").output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("createdb: {}", String::from_utf8_lossy(&out.stderr)));
    }
    drop(oipd::store::postgres::PgStore::open(&c.url("oipd_tpl"), Duration::from_secs(30)).map_err(|e| e.to_string())?);
    Ok(c)
}

impl Cluster {
    /// A client program of the cluster, pointed at it.
    pub fn client(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"]);
        c
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A fresh database (migrated), named `name`.
    pub fn create(&self, name: &str) -> String {
        let out = self.client("createdb").args(["-T", "oipd_tpl", name]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() || err.contains("already exists"), "createdb {name}: {err}");
        self.url(name)
    }
}

/// The test cluster (started on first use).
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start).as_ref().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"))
}

/// The `--store` URL of the database belonging to `data_dir` (created on first use).
pub fn database_for(data_dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut h);
    let name = format!("t_{:016x}", h.finish());
    let c = cluster();
    let mut created = CREATED.lock().unwrap_or_else(|p| p.into_inner());
    if created.get_or_insert_with(HashSet::new).insert(name.clone()) {
        c.create(&name)
    } else {
        c.url(&name)
    }
}
