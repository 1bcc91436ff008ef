//! Properties of deep resolution over random reference graphs (with cycles and
//! self-references): it always terminates, never expands deeper than asked,
//! never reveals a private record to anyone but its owner, and expands every
//! reference it may.

use std::time::Duration;

use oipd::limits::stream::{StreamLimiter, FILE_STREAMS};
use oipd::oip::model::IndexedRecord;
use oipd::records::resolve::ResolveLimits;
use oipd::records::service::{Caller, RecordsService};
use oipd::store::Viewer;
use proptest::prelude::*;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct Graph {
    /// refs[i]: the indexes record i references (may repeat, may include i)
    refs: Vec<Vec<usize>>,
    private: Vec<bool>,
}

fn graph() -> impl Strategy<Value = Graph> {
    (2usize..10).prop_flat_map(|n| {
        (
            prop::collection::vec(prop::collection::vec(0..n + 1, 0..4), n), // n+1 = a missing DID
            prop::collection::vec(prop::bool::weighted(0.3), n),
        )
            .prop_map(|(refs, private)| Graph { refs, private })
    })
}

fn did(i: usize) -> String {
    format!("did:arweave:node{i}")
}

fn docs(g: &Graph) -> Vec<Value> {
    (0..g.refs.len())
        .map(|i| {
            let refs: Vec<String> = g.refs[i].iter().map(|&j| did(j)).collect();
            let mut data = json!({"basic": {"name": format!("node {i}")}, "node": {"refs": refs, "single": did((i + 1) % (g.refs.len() + 1))}});
            if g.private[i] {
                data["accessControl"] = json!({"access_level": "private", "owner_public_key": "alice"});
            }
            json!({"data": data, "oip": {"did": did(i), "recordType": "node", "inArweaveBlock": i}})
        })
        .collect()
}

/// Walk an expanded record; check depth, privacy and completeness.
fn check(v: &Value, g: &Graph, viewer: &Viewer, left: u32, path: &mut Vec<usize>) -> Result<(), String> {
    let d = v["oip"]["did"].as_str().ok_or("expanded record without oip.did")?;
    let i: usize = d.trim_start_matches("did:arweave:node").parse().map_err(|_| "bad did")?;
    let visible = |j: usize| j < g.refs.len() && (!g.private[j] || viewer.key.as_deref() == Some("alice"));
    if !visible(i) {
        return Err(format!("node {i} revealed to {viewer:?}"));
    }
    if v.get("_circular").is_some() {
        return if path.contains(&i) { Ok(()) } else { Err(format!("stub for {i} off the chain")) };
    }
    path.push(i);
    let node = &v["data"]["node"];
    let mut items: Vec<&Value> = node["refs"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    items.push(&node["single"]);
    for item in items {
        match item {
            Value::String(s) => {
                let j: usize = s.trim_start_matches("did:arweave:node").parse().unwrap();
                if left > 0 && visible(j) {
                    return Err(format!("node {j} left unexpanded under {i} with depth {left}"));
                }
            }
            Value::Object(_) => {
                if left == 0 {
                    return Err(format!("expanded below depth under {i}"));
                }
                check(item, g, viewer, left - 1, path)?;
            }
            other => return Err(format!("unexpected {other}")),
        }
    }
    path.pop();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn resolution_terminates_respects_depth_and_privacy(g in graph(), depth in 0u32..5, who in 0usize..3) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        // every case against every store backend (the contract suite's seam)
        for backend in crate::common::BACKENDS {
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::common::open_store_on(backend, tmp.path());
        let recs: Vec<IndexedRecord> = docs(&g).iter().map(|d| IndexedRecord::from_value(d).unwrap()).collect();
        rt.block_on(store.upsert(recs)).unwrap();
        let limits = ResolveLimits { max_docs: 10_000, max_bytes: 1 << 24, max_nodes: 1_000_000 };
        let svc = RecordsService::new(store, StreamLimiter::new(FILE_STREAMS, 4, 4, Duration::from_secs(1), 1), limits, 5);
        let viewer = [Viewer::anonymous(), Viewer::user("alice"), Viewer::user("bob")][who].clone();
        let out: Value = rt.block_on(async {
            let body = tokio::time::timeout(
                Duration::from_secs(20),
                svc.list(svc.parse_list(&format!("limit=100&resolveDepth={depth}")).unwrap(), Caller { viewer: viewer.clone(), auth: Value::Null }),
            ).await.expect("terminates").unwrap();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            serde_json::from_slice(&bytes).unwrap()
        });
        let expected_roots = (0..g.refs.len()).filter(|&i| !g.private[i] || who == 1).count();
        prop_assert_eq!(out["searchResults"].as_u64().unwrap() as usize, expected_roots);
        for r in out["records"].as_array().unwrap() {
            let mut path = Vec::new();
            if let Err(e) = check(r, &g, &viewer, depth, &mut path) {
                prop_assert!(false, "{}: {}", backend.name, e);
            }
        }
        }
    }
}
