//! GUN nodes on the wire: what a relay `put` may carry (souls and node bounds,
//! checked before anything is stored), and how a stored node is shaped for a
//! relay `get` or `list` answer as the original relay shaped it — GUN's own keys
//! (`_ # > <`) dropped, the `data` and `oip` JSON strings parsed — except that
//! nested objects come back as values (the original answered `{"#": …}`
//! references, which hid `meta.encrypted`).
//!
//! Bounds (named, each answered with a clear error): [`MAX_SOUL_BYTES`],
//! [`MAX_DEPTH`], [`MAX_PUT_KEYS`] (per object of a put), [`MAX_NODE_KEYS`]
//! (top-level keys after merging: a type index grows one key per record), the
//! node size (`--gun-max-node-bytes`, 413), [`MAX_LIST_LIMIT`].

use std::borrow::Cow;

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::store::gun::GunWrite;

/// Bound: bytes of a soul.
pub const MAX_SOUL_BYTES: usize = 512;
/// Bound: nesting depth of a put's `data` (the node is depth 1).
pub const MAX_DEPTH: usize = 16;
/// Bound: keys of any one object in a put.
pub const MAX_PUT_KEYS: usize = 10_000;
/// Bound: top-level keys of a stored node after merging.
pub const MAX_NODE_KEYS: usize = 200_000;
/// Bound: records in one `list` page (the original's default is 50).
pub const MAX_LIST_LIMIT: u32 = 1000;
/// `list`'s default page size, as the original.
pub const DEFAULT_LIST_LIMIT: u32 = 50;
/// GUN's own keys, never answered.
pub const GUN_KEYS: [&str; 4] = ["_", "#", ">", "<"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    TooLarge(String),
}

/// A soul a put or get may name.
pub fn check_soul(soul: &str) -> Result<(), NodeError> {
    if soul.is_empty() {
        return Err(NodeError::Invalid("Soul parameter required".into()));
    }
    if soul.len() > MAX_SOUL_BYTES {
        return Err(NodeError::Invalid(format!("soul over {MAX_SOUL_BYTES} bytes")));
    }
    if soul.chars().any(char::is_control) {
        return Err(NodeError::Invalid("soul contains control characters".into()));
    }
    Ok(())
}

/// A put's `data` as a store write: an object (merged) or `null` (deleted).
pub fn check_put(data: Value) -> Result<GunWrite, NodeError> {
    match data {
        Value::Null => Ok(GunWrite::Delete),
        Value::Object(m) => {
            check_shape(&m, 1)?;
            Ok(GunWrite::Merge(m))
        }
        _ => Err(NodeError::Invalid("data must be an object (a node) or null (delete)".into())),
    }
}

fn check_shape(m: &Map<String, Value>, depth: usize) -> Result<(), NodeError> {
    if depth > MAX_DEPTH {
        return Err(NodeError::Invalid(format!("data nested deeper than {MAX_DEPTH} levels")));
    }
    if m.len() > MAX_PUT_KEYS {
        return Err(NodeError::TooLarge(format!("an object of data has over {MAX_PUT_KEYS} keys")));
    }
    for (k, v) in m {
        if GUN_KEYS.contains(&k.as_str()) {
            return Err(NodeError::Invalid(format!("key {k:?} is reserved by GUN")));
        }
        match v {
            Value::Object(inner) => check_shape(inner, depth + 1)?,
            Value::Array(a) => {
                // GUN has no arrays (the original stringified them); accepted as values, bounded alike
                if a.len() > MAX_PUT_KEYS {
                    return Err(NodeError::TooLarge(format!("an array of data has over {MAX_PUT_KEYS} items")));
                }
                let mut stack: Vec<(&Value, usize)> = a.iter().map(|x| (x, depth + 1)).collect();
                while let Some((x, d)) = stack.pop() {
                    if d > MAX_DEPTH {
                        return Err(NodeError::Invalid(format!("data nested deeper than {MAX_DEPTH} levels")));
                    }
                    match x {
                        Value::Object(o) => check_shape(o, d + 1)?,
                        Value::Array(xs) => stack.extend(xs.iter().map(|y| (y, d + 1))),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The top-level entries of a JSON object, borrowed from its text, in order.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Entries<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    out.push((k, m.next_value::<&'de RawValue>()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Append the shaped node (see the module doc) to `out`, working on the stored
/// text without building a value tree: memory is the text, the answer and at
/// most one unescaped `data`/`oip` string.
pub fn write_shaped(node_text: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let Entries(entries) = serde_json::from_str(node_text)?;
    out.push(b'{');
    let mut first = true;
    for (k, raw) in entries {
        if GUN_KEYS.contains(&k.as_ref()) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, k.as_ref())?;
        out.push(b':');
        let text = raw.get();
        if (k == "data" || k == "oip") && text.starts_with('"') {
            let s: Cow<str> = serde_json::from_str(text)?;
            if serde_json::from_str::<IgnoredAny>(&s).is_ok() {
                out.extend_from_slice(s.trim().as_bytes());
                continue;
            }
        }
        out.extend_from_slice(text.as_bytes());
    }
    out.push(b'}');
    Ok(())
}

/// The shaped node as the pieces of an answer, without copying the stored text:
/// raw values are slices of `node_text` (moved into a shared buffer), and only a
/// `data`/`oip` JSON string is unescaped into a buffer of its own. Memory: the
/// text, plus at most the unescaped strings, plus the small joints.
pub fn shaped_parts(node_text: String) -> Result<Vec<bytes::Bytes>, serde_json::Error> {
    use bytes::Bytes;
    // (start, end) of raw slices, or an owned piece, in answer order
    enum Piece {
        Raw(usize, usize),
        Owned(Vec<u8>),
    }
    let mut pieces: Vec<Piece> = Vec::new();
    {
        let Entries(entries) = serde_json::from_str(&node_text)?;
        let base = node_text.as_ptr() as usize;
        let mut joint = b"{".to_vec();
        let mut first = true;
        for (k, raw) in entries {
            if GUN_KEYS.contains(&k.as_ref()) {
                continue;
            }
            if !first {
                joint.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut joint, k.as_ref())?;
            joint.push(b':');
            let text = raw.get();
            if (k == "data" || k == "oip") && text.starts_with('"') {
                let s = unescape(text).map_err(serde::de::Error::custom)?;
                if serde_json::from_str::<IgnoredAny>(&s).is_ok() {
                    pieces.push(Piece::Owned(std::mem::take(&mut joint)));
                    pieces.push(Piece::Owned(s.into_bytes()));
                    continue;
                }
            }
            let start = text.as_ptr() as usize - base;
            pieces.push(Piece::Owned(std::mem::take(&mut joint)));
            pieces.push(Piece::Raw(start, start + text.len()));
        }
        joint.push(b'}');
        pieces.push(Piece::Owned(joint));
    }
    let shared = Bytes::from(node_text);
    Ok(pieces
        .into_iter()
        .filter_map(|p| match p {
            Piece::Raw(a, b) => Some(shared.slice(a..b)),
            Piece::Owned(v) if v.is_empty() => None,
            Piece::Owned(v) => Some(Bytes::from(v)),
        })
        .collect())
}

/// A JSON string literal's content, into one buffer sized once (serde_json grows
/// its own by doubling, allocating about twice a large string in all).
pub fn unescape(lit: &str) -> Result<String, &'static str> {
    let inner = lit.strip_prefix('"').and_then(|l| l.strip_suffix('"')).ok_or("not a JSON string")?;
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    let hex4 = |s: &str| -> Result<u32, &'static str> { s.get(..4).and_then(|h| u32::from_str_radix(h, 16).ok()).ok_or("bad \\u escape") };
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let esc = &rest[i + 1..];
        let (c, used) = match esc.as_bytes().first().ok_or("dangling escape")? {
            b'"' => ('"', 1),
            b'\\' => ('\\', 1),
            b'/' => ('/', 1),
            b'b' => ('\u{8}', 1),
            b'f' => ('\u{c}', 1),
            b'n' => ('\n', 1),
            b'r' => ('\r', 1),
            b't' => ('\t', 1),
            b'u' => {
                let hi = hex4(&esc[1..])?;
                if (0xD800..0xDC00).contains(&hi) {
                    let lo = esc.get(5..7).filter(|p| *p == "\\u").ok_or("lone surrogate").and_then(|_| hex4(&esc[7..]))?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err("lone surrogate");
                    }
                    (char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)).ok_or("bad code point")?, 11)
                } else {
                    (char::from_u32(hi).ok_or("bad code point")?, 5)
                }
            }
            _ => return Err("bad escape"),
        };
        out.push(c);
        rest = &esc[used..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The shaped node as a value (sync and tests; the relay answers use [`write_shaped`]).
pub fn shaped_value(node_text: &str) -> Result<Map<String, Value>, serde_json::Error> {
    let mut out = Vec::with_capacity(node_text.len());
    write_shaped(node_text, &mut out)?;
    serde_json::from_slice(&out)
}

/// A node as a peer answered it (`data` of `{success, data}`) back to what the
/// graph stores: GUN keys dropped, `{"#": …}` references dropped (their content
/// is not in the answer), values kept.
pub fn from_peer(mut node: Map<String, Value>) -> Map<String, Value> {
    node.retain(|k, v| !GUN_KEYS.contains(&k.as_str()) && !is_reference(v));
    node
}

/// A peer's node with GUN's own keys dropped and references kept (to follow).
pub fn from_peer_keep_refs(mut node: Map<String, Value>) -> Map<String, Value> {
    node.retain(|k, _| !GUN_KEYS.contains(&k.as_str()));
    node
}

/// `{"#": "<soul>"}`: a GUN reference to another node.
pub fn is_reference(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.len() == 1 && o.get("#").is_some_and(Value::is_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shaping_parses_strings_and_keeps_nested_values() {
        let stored = json!({
            "_": {"#": "x", ">": {}}, "data": "{\"basic\":{\"name\":\"a\"},\"n\":[1,2]}",
            "oip": "{\"recordType\":\"post\"}", "meta": {"encrypted": true, "iv": "x"}, "other": "not json {",
        })
        .to_string();
        let v = shaped_value(&stored).unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"data": {"basic": {"name": "a"}, "n": [1, 2]}, "oip": {"recordType": "post"}, "meta": {"encrypted": true, "iv": "x"}, "other": "not json {"})
        );
        // the zero-copy pieces say the same
        let joined: Vec<u8> = shaped_parts(stored.clone()).unwrap().concat();
        assert_eq!(serde_json::from_slice::<Value>(&joined).unwrap(), Value::Object(shaped_value(&stored).unwrap()));
        // a data string that is not JSON stays a string
        let v = shaped_value(&json!({"data": "plain"}).to_string()).unwrap();
        assert_eq!(v["data"], json!("plain"));
        // an encrypted data object passes through
        let v = shaped_value(&json!({"data": {"encrypted": "AA==", "iv": "b", "tag": "c"}}).to_string()).unwrap();
        assert_eq!(v["data"]["encrypted"], json!("AA=="));
    }

    #[test]
    fn unescape_matches_serde() {
        for s in ["plain", "q\"uote\\back/slash", "tab\tnl\nuni\u{e9}\u{1F600}\u{1}", "{\"a\":[1,\"x\"]}"] {
            let lit = serde_json::to_string(s).unwrap();
            assert_eq!(unescape(&lit).unwrap(), s, "{lit}");
        }
        assert_eq!(unescape(r#""\ud83d\ude00 \u00e9""#).unwrap(), "\u{1F600} \u{e9}");
        assert!(unescape(r#""\ud83d""#).is_err());
        assert!(unescape(r#""\x""#).is_err());
        assert!(unescape("nope").is_err());
    }

    #[test]
    fn put_bounds() {
        assert!(matches!(check_put(json!(null)), Ok(GunWrite::Delete)));
        assert!(check_put(json!([1])).is_err());
        assert!(check_put(json!("x")).is_err());
        let mut deep = json!(1);
        for _ in 0..MAX_DEPTH + 1 {
            deep = json!({"a": deep});
        }
        assert!(matches!(check_put(deep), Err(NodeError::Invalid(_))));
        let mut deep_arr = json!(1);
        for _ in 0..MAX_DEPTH + 1 {
            deep_arr = json!([deep_arr]);
        }
        assert!(check_put(json!({ "a": deep_arr })).is_err());
        let wide: Map<String, Value> = (0..=MAX_PUT_KEYS).map(|i| (format!("k{i}"), json!(1))).collect();
        assert!(matches!(check_put(Value::Object(wide)), Err(NodeError::TooLarge(_))));
        assert!(check_put(json!({"#": "x"})).is_err());
        assert!(check_soul("").is_err());
        assert!(check_soul(&"a".repeat(MAX_SOUL_BYTES + 1)).is_err());
        assert!(check_soul("a\nb").is_err());
        assert!(check_soul("abc123abc123:r1").is_ok());
        assert!(is_reference(&json!({"#": "s/meta"})));
        assert_eq!(Value::Object(from_peer(json!({"_": 1, "meta": {"#": "s/meta"}, "a": 1}).as_object().unwrap().clone())), json!({"a": 1}));
    }
}
