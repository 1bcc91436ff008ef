//! Gateway failover for the indexer against real HTTP gateways on loopback that
//! speak Arweave's GraphQL: a 429 is honoured for its `Retry-After` and visible,
//! a failing gateway backs off and then opens its breaker, paging follows cursors
//! to the end, and when every gateway is out the answer says when to come back
//! (the original spun).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use oipd::clients::{ClientLimits, OutboundClient};
use oipd::indexer::gateway::{GatewayError, Gateways};

/// A gateway serving `n` OIP transactions in pages of 2, heights 1..=n.
async fn gateway(n: u64, hits: Arc<AtomicUsize>) -> String {
    let app = Router::new()
        .route(
            "/graphql",
            post(move |body: axum::Json<serde_json::Value>| {
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let q = body["query"].as_str().unwrap_or("").to_owned();
                    // `after:"<k>"` → start after transaction k
                    let start: u64 = q.split("after:\"").nth(1).and_then(|r| r.split('"').next()).and_then(|c| c.parse().ok()).unwrap_or(0);
                    let edges: Vec<_> = (start + 1..=(start + 2).min(n))
                        .map(|i| serde_json::json!({"cursor": i.to_string(), "node": {"id": format!("tx{i}"), "owner": {"address": "addr", "key": "n"}, "tags": [{"name": "Index-Method", "value": "OIP"}], "block": {"height": i, "timestamp": 1_700_000_000 + i}, "data": {"size": "10"}}}))
                        .collect();
                    axum::Json(serde_json::json!({"data": {"transactions": {"pageInfo": {"hasNextPage": start + 2 < n}, "edges": edges}}}))
                }
            }),
        )
        .route("/info", get(move || async move { axum::Json(serde_json::json!({"height": n + 18})) }));
    serve(app).await
}

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

async fn limited() -> String {
    let h = || async { (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")], "slow down") };
    serve(Router::new().route("/graphql", post(h)).route("/info", get(h))).await
}

async fn broken() -> String {
    let h = || async { (axum::http::StatusCode::BAD_GATEWAY, "<html>bad gateway</html>") };
    serve(Router::new().route("/graphql", post(h)).route("/info", get(h))).await
}

fn client() -> OutboundClient {
    OutboundClient::new(ClientLimits::default()).unwrap()
}

#[tokio::test]
async fn failover_backoff_and_paging() {
    let hits = Arc::new(AtomicUsize::new(0));
    let good = gateway(5, hits.clone()).await;
    let gws = Gateways::new(&[limited().await, broken().await, good.clone()], client()).unwrap();

    // paging to the end through the good gateway, in order
    let mut cursor: Option<String> = None;
    let mut ids = Vec::new();
    loop {
        let p = gws.page(1, None, cursor.as_deref(), 2, true).await.unwrap();
        ids.extend(p.txs.iter().map(|t| t.id.clone()));
        if !p.has_next {
            break;
        }
        cursor = p.cursor;
    }
    assert_eq!(ids, ["tx1", "tx2", "tx3", "tx4", "tx5"]);
    assert_eq!(gws.tip().await.unwrap(), 23);

    let r = gws.report();
    // the 429 was honoured: the limited gateway waits its Retry-After and says so
    assert_eq!((r[0].state, r[0].rate_limited), ("backing_off", 1));
    assert!(r[0].retry_in_ms > 5_000 && r[0].retry_in_ms <= 7_000, "{:?}", r[0]);
    // it was asked once: while it backs off it is skipped
    // the broken gateway failed once and backs off (about a second)
    assert_eq!((r[1].state, r[1].consecutive_failures), ("backing_off", 1));
    assert!(r[1].last_error.as_deref().unwrap().contains("502"), "{:?}", r[1]);
    assert_eq!(r[2].state, "ok");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "three pages, each asked once");
}

#[tokio::test]
async fn when_every_gateway_is_out_the_answer_says_when() {
    let gws = Gateways::new(&[limited().await, broken().await], client()).unwrap();
    let first = gws.page(1, None, None, 2, true).await.unwrap_err();
    assert!(matches!(first, GatewayError::Failed { .. }), "{first}");
    // now both are backing off: no request is sent, the wait is known
    match gws.page(1, None, None, 2, true).await.unwrap_err() {
        GatewayError::NoneAvailable(wait) => assert!(wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_secs(7), "{wait:?}"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_gateway_that_keeps_failing_opens_its_breaker() {
    let gws = Gateways::new(&[broken().await], client()).unwrap();
    for _ in 0..oipd::indexer::gateway::BREAKER_FAILURES {
        let _ = gws.page(1, None, None, 2, true).await;
        // wait out the (short, jittered) backoff so the next call reaches it
        let wait = gws.report()[0].retry_in_ms;
        if gws.report()[0].state == "breaker_open" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(wait + 20)).await;
    }
    let r = &gws.report()[0];
    assert_eq!(r.state, "breaker_open", "{r:?}");
    assert!(r.retry_in_ms > 200_000, "{r:?}");
}
