//! Memory stays flat under the GIF workload: the real `oipd` binary as a child
//! process, 2,000 requests for a 1 MB GIF at concurrency 50; resident memory after
//! the second 1,000 must be within a few MB of after the first 1,000.

use std::sync::Arc;

use crate::common::Oipd;

async fn burst(client: &reqwest::Client, url: &str, n: usize, concurrency: usize, want_len: usize) {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (c, u) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let r = c.get(&u).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let b = r.bytes().await.unwrap();
            assert_eq!(b.len(), want_len);
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gif_workload_memory_is_flat() {
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("data/media/web/fitnessally/bench.gif");
    std::fs::create_dir_all(gif.parent().unwrap()).unwrap();
    let size = oipd::demo::write_gif(&gif, 7, 1 << 20).unwrap() as usize;
    assert!(size >= 1 << 20);

    let server = Oipd::serve(&dir.path().join("data"), &[]);
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let base = server.url("");
    let url = format!("{base}/media/fitnessally/bench.gif");

    let start_kb = server.rss_kb();
    burst(&client, &url, 1000, 50, size).await;
    let first_kb = server.rss_kb();
    burst(&client, &url, 1000, 50, size).await;
    let second_kb = server.rss_kb();
    eprintln!(
        "RSS: idle {:.1} MB, after 1000 {:.1} MB, after 2000 {:.1} MB",
        start_kb as f64 / 1024.0,
        first_kb as f64 / 1024.0,
        second_kb as f64 / 1024.0
    );
    assert!(
        second_kb <= first_kb + 4 * 1024,
        "resident memory grew {} kB between the first and second 1000 requests",
        second_kb as i64 - first_kb as i64
    );
    // And the whole workload costs little over idle: 50 streams x 64 KiB chunks.
    assert!(second_kb <= start_kb + 48 * 1024, "{start_kb} kB idle -> {second_kb} kB");
}
