//! The GUN graph store: nodes by soul, as the original's relay kept them in its
//! radisk `data/` directory, but in the node's own store (so a PostgreSQL backend
//! holds them too). Every backend implements [`GunStore`] beside
//! [`super::RecordStore`]; the relay, encryption, registry and sync logic live in
//! `gun/`.
//!
//! A node is a JSON object. A put **merges** into the stored node (GUN's rule,
//! which the original's registry relies on: `{<soul>: entry}` adds one key to a
//! type index): objects merge key by key, recursively; a `null` value removes
//! the key; anything else replaces it. A put of `null` (the original's delete)
//! leaves a **tombstone**: `get` answers nothing, listings skip it, and the change
//! feed ([`GunStore::gun_changes`]) carries it so peers learn of it.
//!
//! Each write takes the next value of a store-wide sequence, so the change feed
//! pages by `seq` with no gaps or repeats. Each stored node carries the prefix of
//! its soul (before the first `:`, the publisher hash of record souls) and the
//! `oip.recordType` of its content (read from the JSON string the original
//! stores there), so `list` by publisher and type is an index scan.
//!
//! Bounds: a merged node over [`NodeLimits::max_bytes`] or
//! [`NodeLimits::max_keys`] is refused, not stored ([`GunPut::TooLarge`]); a list
//! or change page is at most [`MAX_PAGE`] nodes.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::StoreError;

/// Bound: nodes in one `list` or `changes` page.
pub const MAX_PAGE: u32 = 1000;

/// How large a stored node may grow (after merging).
#[derive(Debug, Clone, Copy)]
pub struct NodeLimits {
    /// Serialized bytes of the merged node.
    pub max_bytes: usize,
    /// Top-level keys of the merged node (a type index holds one per record).
    pub max_keys: usize,
}

/// A stored soul.
#[derive(Debug, Clone, PartialEq)]
pub enum GunEntry {
    /// The node as compact JSON text, and when it was last written (ms since the epoch).
    Live { node: String, stored_ms: i64 },
    /// Deleted (a put of `null`), at this time.
    Tombstone { deleted_ms: i64 },
}

/// What a put does.
#[derive(Debug, Clone, PartialEq)]
pub enum GunWrite {
    /// Merge these keys into the node (creating it, or reviving a tombstone).
    Merge(Map<String, Value>),
    /// Replace the node with a tombstone.
    Delete,
}

/// How a put went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GunPut {
    Written,
    /// The node already was exactly this (nothing written, no new sequence number).
    Unchanged,
    /// The merged node would pass a [`NodeLimits`] bound; nothing was written.
    TooLarge,
}

/// One row of a publisher listing.
#[derive(Debug, Clone, PartialEq)]
pub struct GunListed {
    pub soul: String,
    pub node: String,
    pub record_type: Option<String>,
    pub stored_ms: i64,
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct GunChange {
    pub seq: u64,
    pub soul: String,
    /// `None`: a tombstone.
    pub node: Option<String>,
}

/// Counts for health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GunCounts {
    pub live: u64,
    pub tombstones: u64,
}

#[async_trait]
pub trait GunStore: Send + Sync {
    /// Merge into (or delete) the node at `soul`, atomically, within `limits`.
    async fn gun_put(&self, soul: &str, write: GunWrite, limits: NodeLimits) -> Result<GunPut, StoreError>;
    /// The node at `soul`, live or tombstone; `None` when never written.
    async fn gun_get(&self, soul: &str) -> Result<Option<GunEntry>, StoreError>;
    /// Whether `soul` was ever written: `Some(true)` live, `Some(false)` a
    /// tombstone, `None` never (without reading the node).
    async fn gun_has(&self, soul: &str) -> Result<Option<bool>, StoreError>;
    /// Live nodes whose soul starts with `<prefix>:`, optionally of one record
    /// type, oldest write first, one page (`limit` ≤ [`MAX_PAGE`]).
    async fn gun_list(&self, prefix: &str, record_type: Option<&str>, limit: u32, offset: u64) -> Result<Vec<GunListed>, StoreError>;
    /// Writes after `after_seq` in sequence order, tombstones included (`limit` ≤ [`MAX_PAGE`]).
    async fn gun_changes(&self, after_seq: u64, limit: u32) -> Result<Vec<GunChange>, StoreError>;
    async fn gun_counts(&self) -> Result<GunCounts, StoreError>;
}

/// The prefix a soul is listed under: everything before its first `:`.
pub fn soul_prefix(soul: &str) -> &str {
    soul.split(':').next().unwrap_or(soul)
}

/// Merge `put` into `node` by GUN's rule (see the module doc).
pub fn merge(node: &mut Map<String, Value>, put: Map<String, Value>) {
    for (k, v) in put {
        match v {
            Value::Null => {
                node.shift_remove(&k);
            }
            Value::Object(inner) => match node.get_mut(&k) {
                Some(Value::Object(existing)) => merge(existing, inner),
                _ => {
                    let mut fresh = Map::new();
                    merge(&mut fresh, inner);
                    node.insert(k, Value::Object(fresh));
                }
            },
            other => {
                node.insert(k, other);
            }
        }
    }
}

/// `oip.recordType` of a node, where `oip` is an object or (as the original
/// stores it) a JSON string of one.
pub fn record_type_of(node: &Map<String, Value>) -> Option<String> {
    let rt = |o: &Value| o.get("recordType").and_then(Value::as_str).map(str::to_owned);
    match node.get("oip")? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok().as_ref().and_then(rt),
        o @ Value::Object(_) => rt(o),
        _ => None,
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn merge_is_gun_like() {
        let mut n = obj(json!({"a": 1, "idx": {"s1": {"soul": "s1", "t": 1}}, "gone": true}));
        merge(&mut n, obj(json!({"idx": {"s2": {"soul": "s2"}, "s1": {"t": 2}}, "gone": null, "b": "x"})));
        assert_eq!(Value::Object(n), json!({"a": 1, "idx": {"s1": {"soul": "s1", "t": 2}, "s2": {"soul": "s2"}}, "b": "x"}));
        let mut n = obj(json!({"idx": {"s1": 1}}));
        merge(&mut n, obj(json!({"idx": {"s1": null}})));
        assert_eq!(Value::Object(n), json!({"idx": {}}));
    }

    #[test]
    fn record_type_from_json_string() {
        assert_eq!(record_type_of(&obj(json!({"oip": "{\"recordType\":\"mealPlan\"}"}))).as_deref(), Some("mealPlan"));
        assert_eq!(record_type_of(&obj(json!({"oip": {"recordType": "post"}}))).as_deref(), Some("post"));
        assert_eq!(record_type_of(&obj(json!({"oip": "not json"}))), None);
        assert_eq!(soul_prefix("abc:def:g"), "abc");
        assert_eq!(soul_prefix("plain"), "plain");
    }
}
