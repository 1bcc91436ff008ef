//! The seeds' worst case: a `userFitnessProfile` whose fully resolved answer is
//! over 100 MB, served by the real binary while its resident memory is sampled.
//! The answer streams: resident memory may grow by the compressed set of distinct
//! records it expands (a few MB), never by the answer's size.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{rss_kb, Oipd};

/// A plain blocking client that reads the body in pieces and keeps none of it.
fn get(url: &str) -> (u16, u64) {
    use std::io::Write;
    let u = url.strip_prefix("http://").unwrap();
    let (host, path) = u.split_at(u.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let status: u16 = String::from_utf8_lossy(&head).split(' ').nth(1).unwrap().parse().unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    (status, total)
}

#[test]
fn a_100_mb_resolved_answer_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Oipd::serve(&dir.path().join("data"), &["--demo", "--demo-scale", "13"]);
    let pid = server.pid();
    let base = server.url("");
    // warm up: the store, the runtime's threads, a small resolution
    assert_eq!(get(&format!("{base}/api/records?recordType=workout&resolveDepth=2&limit=20")).0, 200);
    std::thread::sleep(Duration::from_millis(1500));
    let idle = rss_kb(pid);

    let peak = Arc::new(AtomicU64::new(idle));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let athlete = oipd::records::demo::athlete_did(13);
    let (status, bytes) = get(&format!("{base}/api/records?did={athlete}&resolveDepth=3"));
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "resolved answer: {:.1} MB; resident idle {:.1} MB, peak {:.1} MB (+{:.1} MB)",
        bytes as f64 / 1e6,
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak - idle) as f64 / 1024.0
    );
    assert_eq!(status, 200);
    assert!(bytes >= 100_000_000, "the answer is over 100 MB: {bytes}");
    // Target (release build): < 16 MB. Generous margin here for debug builds.
    assert!(peak - idle < 24 * 1024, "resident memory grew {} kB serving a {} byte answer", peak - idle, bytes);
}
