//! The operator page in real headless Chromium: it loads against a running
//! server, fetches its data, draws the memory chart and fills the route and bound
//! tables. A screenshot is saved to `target/test-output/admin-memory.png`.

use std::process::Command;
use std::time::Duration;

use crate::common::Oipd;

fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("sh").args(["-c", &format!("command -v {c}")]).output().is_ok_and(|o| o.status.success()) {
            return c.to_owned();
        }
    }
    panic!("headless Chromium is required (Debian package `chromium`; scripts/test.sh installs it)");
}

fn headless(url: &str, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1100",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url);
    cmd.output().unwrap()
}

#[test]
fn the_memory_page_renders_charts_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gif = data.join("media/web/fitnessally/x.gif");
    std::fs::create_dir_all(gif.parent().unwrap()).unwrap();
    oipd::demo::write_gif(&gif, 3, 300 * 1024).unwrap();
    let server = Oipd::serve_env(&data, &[], &[("MEMORY_MONITOR_INTERVAL", "1000")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for _ in 0..5 {
            let r = reqwest::get(server.url("/media/fitnessally/x.gif")).await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(2500)); // a few samples for the chart

    let page = get_text(&server.url("/admin/memory"));
    assert!(page.contains("<canvas id=\"chart\""), "self-contained page served");
    assert!(!page.contains("http://") && !page.contains("https://"), "no CDN or remote asset");

    let out = headless(&server.url("/admin/memory"), &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("data-loaded=\"true\""), "page loaded its data: {dom:.2000}");
    assert!(dom.contains("data-rendered=\"true\""), "chart drawn");
    let points: usize = dom
        .split("data-points=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(points >= 2, "chart has {points} samples");
    assert!(dom.contains("data-route=\"GET /media/{*path}\""), "route table filled");
    assert!(dom.contains("data-bound=\"file_streams\""), "bounds table filled");

    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    std::fs::create_dir_all(&shot).unwrap();
    let png = shot.join("admin-memory.png");
    let _ = std::fs::remove_file(&png);
    headless(&server.url("/admin/memory"), &[&format!("--screenshot={}", png.display())]);
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(&bytes[1..4], b"PNG");
}

/// A small blocking GET for text.
fn get_text(url: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}
