//! Processes: the real `oipd` binary as a child (spawned on a free port, waited
//! for, killed on drop), `/proc` figures (resident memory, open fds), and
//! running one test alone in a fresh process of its test binary.

use std::path::Path;
use std::time::Duration;

/// The real `oipd` binary as a child process, killed on drop.
pub struct Oipd {
    pub child: std::process::Child,
    pub port: u16,
}

impl Oipd {
    /// `oipd serve --listen 127.0.0.1:<free port> --data-dir <data_dir> <extra...>`,
    /// returned once it accepts connections.
    pub fn serve(data_dir: &Path, extra: &[&str]) -> Self {
        Self::serve_env(data_dir, extra, &[])
    }

    /// [`Oipd::serve`] with extra environment variables.
    pub fn serve_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_oipd"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let me = Oipd { child, port };
        for _ in 0..1200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return me;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("oipd did not start on port {port}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Resident memory of the server, kB (`VmRSS`).
    pub fn rss_kb(&self) -> u64 {
        rss_kb(self.pid())
    }
}

impl Drop for Oipd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of a process, kB (0 once it is gone).
pub fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Count this process's open fds.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// For a test that measures something process-wide (such as [`fd_count`]) and so
/// must not share its process with the other tests of the binary, which run
/// concurrently: `in_own_process(module_path!(), "<test fn name>")` at the top of
/// the test. In the test binary's own run it starts the binary again with just
/// that test (`--exact`, one thread), asserts that it ran and passed, and returns
/// `false` (the caller returns); in that child it returns `true` and the test body
/// runs there, alone.
pub fn in_own_process(module: &str, test: &str) -> bool {
    const ALONE: &str = "OIPD_TEST_ALONE";
    // libtest names tests by module path without the crate: `streams::name`
    let name = match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{test}"),
        None => test.to_owned(),
    };
    if std::env::var(ALONE).is_ok_and(|v| v == name) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env(ALONE, &name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name}, run alone in its own process:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}
