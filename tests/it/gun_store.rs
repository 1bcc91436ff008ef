//! The GUN graph store's contract (`store::gun::GunStore`), run once per store
//! backend: merge on put, tombstones, listing by publisher hash and record type
//! with paging, the change feed, and the node bounds. A PostgreSQL backend added
//! to `common::contract::BACKENDS` must pass it unchanged.

use serde_json::{json, Map, Value};

use oipd::store::gun::{GunEntry, GunPut, GunWrite, NodeLimits};

use crate::common::{each_backend, open_stores};

const LIMITS: NodeLimits = NodeLimits { max_bytes: 64 * 1024, max_keys: 100 };

fn obj(v: Value) -> GunWrite {
    GunWrite::Merge(v.as_object().unwrap().clone())
}

fn live(e: Option<GunEntry>) -> Value {
    match e {
        Some(GunEntry::Live { node, .. }) => serde_json::from_str(&node).unwrap(),
        other => panic!("expected a live node, got {other:?}"),
    }
}

#[tokio::test]
async fn gun_store_contract() {
    each_backend(|| async {
        let dir = tempfile::tempdir().unwrap();
        let g = open_stores(dir.path()).gun;

        // never written
        assert_eq!(g.gun_get("abc:nothing").await.unwrap(), None);
        assert_eq!(g.gun_has("abc:nothing").await.unwrap(), None);

        // put, then merge: keys add, nested objects merge, null removes
        let rec = json!({"data": "{\"basic\":{\"name\":\"a\"}}", "oip": "{\"recordType\":\"mealPlan\"}", "meta": {"created": 1, "encrypted": false}});
        assert_eq!(g.gun_put("abc123abc123:r1", obj(rec.clone()), LIMITS).await.unwrap(), GunPut::Written);
        assert_eq!(live(g.gun_get("abc123abc123:r1").await.unwrap()), rec);
        assert_eq!(g.gun_put("abc123abc123:r1", obj(rec.clone()), LIMITS).await.unwrap(), GunPut::Unchanged);
        g.gun_put("oip:registry:index:post", obj(json!({"s1": {"soul": "s1", "nodeId": "n"}})), LIMITS).await.unwrap();
        g.gun_put("oip:registry:index:post", obj(json!({"s2": {"soul": "s2"}, "s1": {"timestamp": 5}})), LIMITS).await.unwrap();
        assert_eq!(
            live(g.gun_get("oip:registry:index:post").await.unwrap()),
            json!({"s1": {"soul": "s1", "nodeId": "n", "timestamp": 5}, "s2": {"soul": "s2"}})
        );
        g.gun_put("oip:registry:index:post", obj(json!({"s1": null})), LIMITS).await.unwrap();
        assert_eq!(live(g.gun_get("oip:registry:index:post").await.unwrap()), json!({"s2": {"soul": "s2"}}));

        // list by publisher hash, record type (read from the JSON string), paging
        for i in 2..=6 {
            let rt = if i % 2 == 0 { "workoutSchedule" } else { "mealPlan" };
            let n = json!({"data": "{}", "oip": format!("{{\"recordType\":\"{rt}\"}}")});
            g.gun_put(&format!("abc123abc123:r{i}"), obj(n), LIMITS).await.unwrap();
        }
        g.gun_put("fff000fff000:x", obj(json!({"oip": {"recordType": "mealPlan"}})), LIMITS).await.unwrap();
        let all = g.gun_list("abc123abc123", None, 100, 0).await.unwrap();
        assert_eq!(all.len(), 6);
        let meals = g.gun_list("abc123abc123", Some("mealPlan"), 100, 0).await.unwrap();
        let souls: Vec<&str> = meals.iter().map(|r| r.soul.as_str()).collect();
        assert_eq!(souls, ["abc123abc123:r1", "abc123abc123:r3", "abc123abc123:r5"]);
        assert!(meals.iter().all(|r| r.record_type.as_deref() == Some("mealPlan")));
        let page = g.gun_list("abc123abc123", None, 2, 2).await.unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].soul, all[2].soul);
        assert!(g.gun_list("000000000000", None, 10, 0).await.unwrap().is_empty());

        // delete: a tombstone, not listed, in the change feed
        let before = g.gun_changes(0, 1000).await.unwrap();
        let last = before.last().unwrap().seq;
        assert!(before.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(g.gun_put("abc123abc123:r1", GunWrite::Delete, LIMITS).await.unwrap(), GunPut::Written);
        assert!(matches!(g.gun_get("abc123abc123:r1").await.unwrap(), Some(GunEntry::Tombstone { .. })));
        assert_eq!(g.gun_has("abc123abc123:r1").await.unwrap(), Some(false));
        assert_eq!(g.gun_has("abc123abc123:r2").await.unwrap(), Some(true));
        assert_eq!(g.gun_put("abc123abc123:r1", GunWrite::Delete, LIMITS).await.unwrap(), GunPut::Unchanged);
        assert_eq!(g.gun_list("abc123abc123", Some("mealPlan"), 100, 0).await.unwrap().len(), 2);
        let after = g.gun_changes(last, 1000).await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!((after[0].soul.as_str(), after[0].node.as_deref()), ("abc123abc123:r1", None));
        let counts = g.gun_counts().await.unwrap();
        assert_eq!((counts.live, counts.tombstones), (7, 1));
        // a put revives a tombstone
        g.gun_put("abc123abc123:r1", obj(json!({"data": "{}"})), LIMITS).await.unwrap();
        assert_eq!(live(g.gun_get("abc123abc123:r1").await.unwrap()), json!({"data": "{}"}));

        // bounds: nothing is written past them
        let big = json!({"blob": "x".repeat(70 * 1024)});
        assert_eq!(g.gun_put("abc123abc123:big", obj(big), LIMITS).await.unwrap(), GunPut::TooLarge);
        assert_eq!(g.gun_get("abc123abc123:big").await.unwrap(), None);
        let mut many = Map::new();
        for i in 0..60 {
            many.insert(format!("k{i}"), json!(i));
        }
        g.gun_put("wide", GunWrite::Merge(many.clone()), LIMITS).await.unwrap();
        let more: Map<String, Value> = (60..120).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(g.gun_put("wide", GunWrite::Merge(more), LIMITS).await.unwrap(), GunPut::TooLarge);
        assert_eq!(live(g.gun_get("wide").await.unwrap()), Value::Object(many));

        // survives a reopen
        drop(g);
        let g = open_stores(dir.path()).gun;
        assert_eq!(g.gun_list("abc123abc123", None, 100, 0).await.unwrap().len(), 6);
    })
    .await;
}
