//! Routes that allocate on purpose, mounted only with `--test-routes` (hidden;
//! the memory-attribution tests use them): one holds a known number of bytes for
//! a while, one leaks.

use axum::extract::Query;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Bound: the most one test request may allocate.
const MAX_TEST_BYTES: usize = 256 * 1024 * 1024;

#[derive(Deserialize)]
pub struct Params {
    bytes: usize,
    #[serde(default)]
    hold_ms: u64,
}

/// Allocate `bytes`, touch them, hold them `hold_ms`, free them.
pub async fn alloc(Query(p): Query<Params>) -> Json<Value> {
    let n = p.bytes.min(MAX_TEST_BYTES);
    let v = vec![1u8; n];
    tokio::time::sleep(std::time::Duration::from_millis(p.hold_ms)).await;
    let sum = v.iter().step_by(4096).map(|b| *b as u64).sum::<u64>();
    drop(v);
    Json(json!({"allocated": n, "touched": sum}))
}

/// Allocate `bytes` and never free them.
pub async fn leak(Query(p): Query<Params>) -> Json<Value> {
    let n = p.bytes.min(MAX_TEST_BYTES);
    let leaked: &'static mut [u8] = vec![1u8; n].leak();
    Json(json!({"leaked": leaked.len()}))
}
