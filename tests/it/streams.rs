//! The stream bound, client disconnects and graceful shutdown, over real sockets.

use std::time::Duration;

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn stream_limit_is_real_and_answers_503_with_retry_after() {
    let t = TestServer::start_with(|c| {
        c.http.max_streams = 1;
        c.http.stream_queue = 1;
        c.http.stream_wait_ms = 400;
        c.http.retry_after_secs = 7;
    })
    .await;
    let big = t.sparse("big.gif", 64 << 20);
    let small = t.put_web("small.gif", b"small");
    // warm the ETag cache so the stalled request takes its slot at once
    let _ = t.raw(&format!("HEAD {big} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")).await;

    let a = t.open_stalled(&big).await;
    assert_eq!(t.bound("file_streams").await, (1, 1));

    // B waits in the queue (1/1), C finds the queue full: 503 at once.
    let addr = t.server.addr;
    let small2 = small.clone();
    let b = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r = raw(addr, format!("GET {small2} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes()).await;
        (r, started.elapsed())
    });
    assert!(wait_for(async || t.bound("file_stream_queue").await.1 == 1, 5).await);
    let started = std::time::Instant::now();
    let c = t.get_raw_path(&small, "").await;
    assert!(started.elapsed() < Duration::from_millis(300), "refused without waiting");
    assert_eq!(c.status, 503);
    assert_eq!(c.header("retry-after"), Some("7"));
    assert_eq!(c.json()["error"], "Server busy");

    let (b, waited) = b.await.unwrap();
    assert_eq!(b.status, 503, "timed out in the queue");
    assert!(waited >= Duration::from_millis(380), "{waited:?}");
    assert_eq!(b.header("retry-after"), Some("7"));

    // HEAD and 304 need no stream slot
    let h = t.raw(&format!("HEAD {small} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")).await;
    assert_eq!(h.status, 200);

    // Releasing A (client gone) frees the slot: service resumes.
    drop(a);
    assert!(wait_for(async || t.bound("file_streams").await.1 == 0, 5).await);
    let ok = t.get_raw_path(&small, "").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, b"small");
}

#[tokio::test]
async fn disconnects_release_files_buffers_and_slots() {
    // it counts the process's fds: alone in a process, not among the other tests
    if !in_own_process(module_path!(), "disconnects_release_files_buffers_and_slots") {
        return;
    }
    let t = TestServer::start().await;
    let gif = t.put_web("fitnessally/two-mb.gif", &bytes(2 << 20, 40));
    let big = t.sparse("big.gif", 48 << 20);
    // warm up: hash caches, runtime threads, the health route
    for p in [&gif, &big] {
        let _ = t.raw(&format!("HEAD {p} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")).await;
    }
    let _ = t.bound("file_streams").await;
    let fds_before = fd_count();

    for round in 0..3 {
        let mut clients = Vec::new();
        for i in 0..40 {
            let path = if i % 2 == 0 { &gif } else { &big };
            let mut s = tokio::net::TcpStream::connect(t.server.addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            clients.push(s);
        }
        // the large bodies cannot have finished: they are mid-transfer
        let (_, in_flight) = t.bound("file_streams").await;
        assert!(in_flight >= 20, "round {round}: {in_flight} streams in flight");
        drop(clients);
        assert!(
            wait_for(async || t.bound("file_streams").await.1 == 0, 5).await,
            "round {round}: slots released after disconnect"
        );
    }
    assert!(
        wait_for(async || fd_count() <= fds_before + 2, 5).await,
        "fds back to baseline: before {fds_before}, now {}",
        fd_count()
    );
    // only the connection asking is left open
    assert!(wait_for(async || t.bound("connections").await.1 <= 1, 5).await);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_responses() {
    let t = TestServer::start().await;
    let len = 24u64 << 20;
    let big = t.sparse("big.gif", len);
    let _ = t.raw(&format!("HEAD {big} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")).await;
    let mut s = t.open_stalled(&big).await;
    let addr = t.server.addr;
    let TestServer { server, dir: _dir } = t;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // new connections are refused once the listener is closed
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed");
    // the in-flight response still completes
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    assert!(total >= len, "got {total} of {len} body bytes");
    tokio::time::timeout(Duration::from_secs(5), stopping).await.expect("stop returns").unwrap();
}

#[tokio::test]
async fn shutdown_grace_is_bounded() {
    let t = TestServer::start_with(|c| c.http.shutdown_grace_secs = 1).await;
    let big = t.sparse("big.gif", 64 << 20);
    let _stalled = t.open_stalled(&big).await; // never reads
    let TestServer { server, dir: _dir } = t;
    let started = std::time::Instant::now();
    server.stop().await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");
}
