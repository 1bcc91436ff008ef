//! The outbound client's bounds against real HTTP servers on 127.0.0.1:0 (axum
//! for well-behaved ones, a raw TCP socket for misbehaving ones).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::response::{collect, Capped};
use super::*;
use super::limits::*;
use super::error::*;
use crate::limits::BoundSource;

/// Chunks the `/chunked` body is made of, and how many there are (lazily made:
/// 1.6 GB in all, far more than any test reads).
const CHUNK: usize = 16 * 1024;
const CHUNKS: usize = 100_000;

/// Chunks the server has handed to hyper so far.
#[derive(Clone, Default)]
struct Produced(Arc<AtomicUsize>);

async fn chunked(State(produced): State<Produced>) -> Body {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let stream = futures_util::stream::iter(0..CHUNKS).map(move |_| {
        produced.0.fetch_add(1, Ordering::SeqCst);
        Ok::<_, std::io::Error>(chunk.clone())
    });
    Body::from_stream(stream)
}

/// One chunk, then silence (the connection stays open).
async fn stall_body() -> Body {
    let first = futures_util::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"{\"partial\":")) });
    Body::from_stream(first.chain(futures_util::stream::pending()))
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(1200)).await;
    "slow"
}

/// `/hop/n` redirects n times, then lands on `/ok`.
async fn hop(Path(n): Path<u32>) -> Redirect {
    if n == 0 {
        Redirect::to("/ok")
    } else {
        Redirect::to(&format!("/hop/{}", n - 1))
    }
}

/// A well-behaved server; returns its address and its chunk counter.
async fn server() -> (SocketAddr, Produced) {
    let produced = Produced::default();
    let app = Router::new()
        .route("/ok", get(|| async { "hello" }))
        .route("/json", get(|| async { axum::Json(serde_json::json!({"a": 1})) }))
        .route("/chunked", get(chunked))
        .route("/stall-body", get(stall_body))
        .route("/slow", get(slow))
        .route("/hop/{n}", get(hop))
        .with_state(produced.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, produced)
}

/// A raw server: reads each request head, writes `reply`, then holds the
/// connection open without another byte.
async fn raw_server(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = sock.write_all(reply).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    addr
}

fn client(f: impl FnOnce(&mut ClientLimits)) -> OutboundClient {
    let mut limits = ClientLimits::default();
    f(&mut limits);
    OutboundClient::new(limits).unwrap()
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

fn bound(c: &OutboundClient, name: &str) -> (u64, u64) {
    let mut out = Vec::new();
    c.report(&mut out);
    let b = out.iter().find(|b| b.name == name).unwrap();
    (b.capacity, b.fill)
}

/// Wait (bounded) until `f` holds.
async fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 5 s");
}

#[tokio::test]
async fn get_and_json() {
    let (addr, _) = server().await;
    let c = client(|_| {});
    let r = c.get(&url(addr, "/ok")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes_limited(None).await.unwrap()[..], b"hello");
    let v: serde_json::Value = c.get(&url(addr, "/json")).await.unwrap().json().await.unwrap();
    assert_eq!(v["a"], 1);
    let echo = c.post_json(&url(addr, "/ok"), &serde_json::json!({"x": 1})).await.unwrap();
    assert_eq!(echo.status(), 405, "statuses are answers, not errors");
    assert_eq!(c.in_flight(), 1, "the response holds its slot");
    drop(echo);
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test]
async fn chunked_body_over_the_cap_fails_while_streaming() {
    let (addr, produced) = server().await;
    let c = client(|l| l.max_response_bytes = 64 * 1024);
    let r = c.get(&url(addr, "/chunked")).await.unwrap();
    assert_eq!(r.content_length(), None, "chunked, no Content-Length");
    let err = r.bytes_limited(None).await.unwrap_err();
    assert!(matches!(err, ClientError::TooLarge { limit: 65_536 }), "{err:?}");
    // The server made what the socket buffers took, not the 1.6 GB body.
    let made = produced.0.load(Ordering::SeqCst) * CHUNK;
    assert!(made < 64 * 1024 * 1024, "server produced {made} bytes");
    assert_eq!(c.in_flight(), 0);

    // A smaller per-call cap; a larger one is lowered to the client's.
    let err = c.get(&url(addr, "/chunked")).await.unwrap().bytes_limited(Some(1000)).await.unwrap_err();
    assert!(matches!(err, ClientError::TooLarge { limit: 1000 }), "{err:?}");
    let err = c.get(&url(addr, "/chunked")).await.unwrap().bytes_limited(Some(u64::MAX)).await.unwrap_err();
    assert!(matches!(err, ClientError::TooLarge { limit: 65_536 }), "{err:?}");

    // The stream is capped too, and ends after the error.
    let mut s = c.get(&url(addr, "/chunked")).await.unwrap().stream_limited(100_000);
    let mut got = 0;
    let err = loop {
        match s.next().await.unwrap() {
            Ok(b) => got += b.len(),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, ClientError::TooLarge { limit: 100_000 }), "{err:?}");
    assert!(got <= 100_000);
    assert!(s.next().await.is_none());
    assert_eq!(c.in_flight(), 0, "an ended stream gives its slots back");
}

/// A stream of `n` chunks of `size` bytes counting how many were pulled.
fn counting(n: usize, size: usize, pulled: Arc<AtomicUsize>) -> impl futures_util::Stream<Item = Result<Bytes, ClientError>> + Unpin {
    futures_util::stream::iter(0..n).map(move |_| {
        pulled.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from(vec![0u8; size]))
    })
}

#[tokio::test]
async fn capped_reads_at_most_one_chunk_past_the_cap() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let err = collect(Capped::new(counting(1000, 1024, pulled.clone()), 10 * 1024, None), 0).await.unwrap_err();
    assert!(matches!(err, ClientError::TooLarge { limit: 10_240 }));
    assert_eq!(pulled.load(Ordering::SeqCst), 11, "ten chunks fit, the eleventh fails");

    // Exactly at the cap is fine.
    let pulled = Arc::new(AtomicUsize::new(0));
    let body = collect(Capped::new(counting(10, 1024, pulled.clone()), 10 * 1024, None), 0).await.unwrap();
    assert_eq!(body.len(), 10 * 1024);

    // A declared length over the cap: nothing is pulled.
    let pulled = Arc::new(AtomicUsize::new(0));
    let err = collect(Capped::new(counting(10, 1024, pulled.clone()), 1024, Some(10 * 1024)), 0).await.unwrap_err();
    assert!(matches!(err, ClientError::TooLarge { limit: 1024 }));
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn content_length_over_the_cap_is_refused_before_reading() {
    // Declares 10 GB, sends none of it: reading would hang until the read timeout.
    let addr = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n").await;
    let c = client(|l| l.read_timeout = Duration::from_secs(10));
    let t = Instant::now();
    let err = c.get(&url(addr, "/")).await.unwrap().bytes_limited(Some(1024)).await.unwrap_err();
    assert!(matches!(err, ClientError::TooLarge { limit: 1024 }), "{err:?}");
    let mut s = c.get(&url(addr, "/")).await.unwrap().stream();
    assert!(matches!(s.next().await, Some(Err(ClientError::TooLarge { .. }))));
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_hanging_server_times_out_within_the_read_timeout() {
    let read_timeout = Duration::from_millis(300);
    // No response head at all.
    let addr = raw_server(b"").await;
    let c = client(|l| l.read_timeout = read_timeout);
    let t = Instant::now();
    let err = c.get(&url(addr, "/")).await.unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
    assert!(took >= read_timeout && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(c.in_flight(), 0);

    // A head, then a body that stalls.
    let (addr, _) = server().await;
    let r = c.get(&url(addr, "/stall-body")).await.unwrap();
    let t = Instant::now();
    let err = r.bytes_limited(None).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(3));

    // The total timeout holds even with a long read timeout.
    let c = client(|l| l.request_timeout = Duration::from_millis(300));
    let err = c.get(&url(addr, "/slow")).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
}

#[tokio::test]
async fn redirects_past_the_bound_fail() {
    let (addr, _) = server().await;
    let c = client(|l| l.max_redirects = 3);
    let r = c.get(&url(addr, "/hop/2")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().path(), "/ok");
    drop(r);
    let err = c.get(&url(addr, "/hop/3")).await.unwrap_err();
    assert!(matches!(err, ClientError::TooManyRedirects { limit: 3 }), "{err:?}");
    assert!(!err.to_string().contains("127.0.0.1"), "no URL in errors: {err}");
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test]
async fn per_host_concurrency_waits_then_busy() {
    let (addr, _) = server().await;
    let wait = Duration::from_millis(200);
    let c = client(|l| {
        l.per_host = 2;
        l.wait = wait;
    });
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (c, u) = (c.clone(), url(addr, "/slow"));
            tokio::spawn(async move { c.get(&u).await?.bytes_limited(None).await })
        })
        .collect();
    wait_for(|| c.in_flight() == 2).await;
    assert_eq!(bound(&c, "outbound_per_host"), (2, 2));

    let t = Instant::now();
    let err = c.get(&url(addr, "/ok")).await.unwrap_err();
    let took = t.elapsed();
    match &err {
        ClientError::Busy { host } => assert_eq!(host, &format!("http://{addr}")),
        other => panic!("{other:?}"),
    }
    assert!(took >= wait && took < Duration::from_millis(1000), "{took:?}");

    // A waiter gets in when a slot frees within its wait.
    let c2 = client(|l| {
        l.per_host = 2;
        l.wait = Duration::from_secs(5);
    });
    let ok = url(addr, "/ok");
    let held = (c2.get(&ok).await.unwrap(), c2.get(&ok).await.unwrap());
    let (c3, u) = (c2.clone(), url(addr, "/ok"));
    let waiter = tokio::spawn(async move { c3.get(&u).await.map(|r| r.status()) });
    wait_for(|| bound(&c2, "outbound_wait_queue").1 == 1).await;
    drop(held);
    assert_eq!(waiter.await.unwrap().unwrap(), 200);

    for s in slow {
        assert_eq!(&s.await.unwrap().unwrap()[..], b"slow");
    }
    assert_eq!(c.in_flight(), 0);
    assert_eq!(bound(&c, "outbound_requests").1, 0);
    assert_eq!(bound(&c2, "outbound_wait_queue").1, 0);
}

#[tokio::test]
async fn global_cap_and_wait_queue() {
    let (addr, _) = server().await;
    let (b, _) = server().await;
    let c = client(|l| {
        l.max_in_flight = 1;
        l.wait = Duration::from_millis(100);
    });
    let held = c.get(&url(addr, "/ok")).await.unwrap();
    // Another origin: its own slot is free, the global one is not.
    let err = c.get(&url(b, "/ok")).await.unwrap_err();
    assert!(matches!(&err, ClientError::Busy { host } if host == "*"), "{err:?}");

    // With no room in the wait queue, Busy comes at once.
    let c0 = client(|l| {
        l.max_in_flight = 1;
        l.max_waiting = 0;
        l.wait = Duration::from_secs(5);
    });
    let _held0 = c0.get(&url(addr, "/ok")).await.unwrap();
    let t = Instant::now();
    assert!(c0.get(&url(addr, "/ok")).await.unwrap_err().is_busy());
    assert!(t.elapsed() < Duration::from_secs(1));
    drop(held);
}

#[tokio::test]
async fn slots_are_released_when_responses_are_dropped() {
    let (addr, _) = server().await;
    let c = client(|_| {});
    let a = c.get(&url(addr, "/ok")).await.unwrap();
    let b = c.get(&url(addr, "/chunked")).await.unwrap();
    assert_eq!(bound(&c, "outbound_requests"), (DEFAULT_MAX_IN_FLIGHT as u64, 2));
    drop(a);
    assert_eq!(c.in_flight(), 1);
    let mut s = b.stream();
    assert!(s.next().await.unwrap().is_ok());
    assert_eq!(c.in_flight(), 1, "a live stream keeps its slot");
    drop(s);
    assert_eq!(c.in_flight(), 0);
    assert_eq!(bound(&c, "outbound_per_host").1, 0);
    // Failed requests hold nothing either.
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let err = c.get(&url(refused, "/")).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test]
async fn host_map_evicts_idle_origins_and_refuses_when_all_are_busy() {
    let (a, _) = server().await;
    let (b, _) = server().await;
    let (d, _) = server().await;
    let c = client(|l| l.max_hosts = 2);
    let ra = c.get(&url(a, "/ok")).await.unwrap();
    let rb = c.get(&url(b, "/ok")).await.unwrap();
    assert_eq!(bound(&c, "outbound_hosts"), (2, 2));

    // Full of busy origins: a third is refused at once.
    let t = Instant::now();
    let err = c.get(&url(d, "/ok")).await.unwrap_err();
    assert!(matches!(&err, ClientError::Busy { host } if host == &format!("http://{d}")), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(1));

    // One goes idle: it is evicted to make room.
    drop(ra);
    let rd = c.get(&url(d, "/ok")).await.unwrap();
    assert_eq!(c.hosts_tracked(), 2);
    drop((rb, rd));
    // All idle: the map stays at its bound as origins come and go.
    for addr in [a, b, d, a] {
        assert_eq!(c.get(&url(addr, "/ok")).await.unwrap().status(), 200);
        assert!(c.hosts_tracked() <= 2);
    }
}

#[tokio::test]
async fn errors_carry_no_url_or_secret() {
    let c = client(|l| l.connect_timeout = Duration::from_millis(500));
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let rb = c
        .builder(reqwest::Method::POST, &format!("http://{refused}/v1/x?api_key=sekrit"))
        .unwrap()
        .header("authorization", "Bearer sekrit")
        .body("sekrit body");
    let err = c.send(rb).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ClientError::Connect(_)), "{text}");
    assert!(!text.contains("sekrit") && !text.contains("api_key"), "{text}");
    assert!(text.len() < MAX_ERROR_TEXT + 64);
    assert!(matches!(c.get("ftp://127.0.0.1/").await, Err(ClientError::InvalidUrl(_))));
}
