//! `/api/health` (the original's liveness answer) and `/api/health/memory`
//! (resident memory and every registered bound with its fill).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::state::SharedState;

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "OK" }))
}

pub async fn memory(State(st): State<SharedState>) -> Json<Value> {
    let rss = crate::proc::resident_bytes().unwrap_or(0);
    let mb = |b: u64| (b as f64 / 1_048_576.0 * 100.0).round() / 100.0;
    Json(json!({
        "status": "healthy",
        "warnings": [],
        "timestamp": crate::media::store::iso_now(),
        "uptime": st.started.elapsed().as_secs_f64(),
        "memory": { "rss": { "bytes": rss, "mb": mb(rss) } },
        "allocator": crate::memory::allocator_stats(),
        "bounds": st.bounds.report(),
        "process": {
            "openFds": crate::proc::open_fds(),
            "threads": crate::proc::threads(),
        },
    }))
}
