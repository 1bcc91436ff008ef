//! Deep resolution of references (`resolveDepth`), with the original's semantics
//! (reference §3) and its privacy hole closed.
//!
//! Which strings are references: a string starting with `did:` at
//! `data.<section>.<key>`, or an element of an array there — nothing deeper, and
//! with `resolveFieldName` only the listed fields. At remaining depth `d > 0` each
//! becomes the full referenced record `{data, oip}` resolved at `d - 1`; a DID
//! already on the current chain becomes `{oip, data:{basic}, _circular:true}`; a
//! DID that is missing **or not visible to the requester** stays a string. With
//! `resolveNamesOnly`, at remaining depth 1 the DID becomes the referenced record's
//! `data.basic.name`.
//!
//! How: [`gather`] walks the reference graph breadth-first, **one store round trip
//! per depth level** for all new DIDs of that level (privacy-filtered by the
//! store), keeping the distinct documents LZ4-compressed for this response only
//! (JSON compresses 3–5×; each emitted node is decompressed as it is written) —
//! there is no cache shared between requests. [`Resolved::count_emitted`]
//! then counts the nodes the answer will contain (repeats included) without
//! building it, so an answer over the bound is refused before any byte is sent.
//! The answer itself is produced by `render` straight into the response body.
//!
//! Bounds (configuration): distinct documents per response (`--resolve-max-docs`),
//! their bytes (`--resolve-max-bytes`), and emitted nodes (`--resolve-max-nodes`).

use std::collections::HashMap;

use serde_json::Value;

use crate::oip::query::ResolveOpts;
use crate::store::{RecordStore, StoreError, Viewer, FETCH_QUEUE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolveLimits {
    pub max_docs: usize,
    pub max_bytes: usize,
    pub max_nodes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("resolution needs more than {limit} distinct records")]
    TooManyDocs { limit: usize },
    #[error("resolution needs more than {limit} bytes of records")]
    TooManyBytes { limit: usize },
    #[error("the resolved answer would hold more than {limit} records")]
    TooManyNodes { limit: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `data.<section>.<key>` may be resolved under `resolveFieldName`.
pub fn field_allowed(opts: &ResolveOpts, section: &str, key: &str) -> bool {
    if opts.field_names.is_empty() {
        return true;
    }
    let short = format!("{section}.{key}");
    let long = format!("data.{section}.{key}");
    opts.field_names.iter().any(|e| {
        [&short, &long].iter().any(|c| c.as_str() == e || (c.starts_with(e.as_str()) && c.as_bytes().get(e.len()) == Some(&b'.')))
    })
}

/// Every reference of a record at resolvable positions, in document order.
pub fn refs_of(doc: &Value, opts: &ResolveOpts) -> Vec<String> {
    let mut out = Vec::new();
    let Some(data) = doc.get("data").and_then(Value::as_object) else { return out };
    for (section, fields) in data {
        let Some(fields) = fields.as_object() else { continue };
        for (key, v) in fields {
            if !field_allowed(opts, section, key) {
                continue;
            }
            match v {
                Value::String(s) if s.starts_with("did:") => out.push(s.clone()),
                Value::Array(a) => {
                    out.extend(a.iter().filter_map(Value::as_str).filter(|s| s.starts_with("did:")).map(str::to_owned))
                }
                _ => {}
            }
        }
    }
    out
}

/// Bytes of sample documents per record type used as the LZ4 dictionary (LZ4's
/// window is 64 KiB; 32 KiB of same-type documents holds their shared keys and
/// texts). One dictionary per type, at most [`MAX_DICTS`] per response.
pub const DICT_BYTES: usize = 32 * 1024;
/// Bound: dictionaries per response.
pub const MAX_DICTS: usize = 32;

/// One compressed document: which dictionary (if any) and the LZ4 block.
struct Packed {
    dict: Option<u16>,
    data: Box<[u8]>,
}

/// Per-type dictionaries: filled with the first documents of a type (those are
/// compressed without one), frozen once full, then used for the rest. Small
/// documents of one type share most of their bytes; against a dictionary they
/// compress several times better than alone.
#[derive(Default)]
struct Dicts {
    by_type: HashMap<String, u16>,
    data: Vec<Vec<u8>>,
}

impl Dicts {
    fn pack(&mut self, record_type: &str, raw: &[u8]) -> Packed {
        let id = match self.by_type.get(record_type) {
            Some(&id) => Some(id),
            None if self.data.len() < MAX_DICTS => {
                let id = self.data.len() as u16;
                self.data.push(Vec::with_capacity(DICT_BYTES));
                self.by_type.insert(record_type.to_owned(), id);
                Some(id)
            }
            None => None,
        };
        match id {
            Some(id) if self.data[id as usize].len() >= DICT_BYTES => Packed {
                dict: Some(id),
                data: lz4_flex::block::compress_prepend_size_with_dict(raw, &self.data[id as usize]).into_boxed_slice(),
            },
            Some(id) => {
                let d = &mut self.data[id as usize];
                let take = raw.len().min(DICT_BYTES - d.len());
                d.extend_from_slice(&raw[..take]);
                Packed { dict: None, data: lz4_flex::compress_prepend_size(raw).into_boxed_slice() }
            }
            None => Packed { dict: None, data: lz4_flex::compress_prepend_size(raw).into_boxed_slice() },
        }
    }

    fn unpack(&self, p: &Packed) -> Option<Vec<u8>> {
        match p.dict {
            Some(id) => lz4_flex::block::decompress_size_prepended_with_dict(&p.data, &self.data[id as usize]).ok(),
            None => lz4_flex::decompress_size_prepended(&p.data).ok(),
        }
    }
}

/// The documents one response may expand, and the reference lists of each.
/// Every DID asked for gets a small id once; reference lists hold ids, so a DID
/// referenced a thousand times is stored once.
#[derive(Default)]
pub struct Resolved {
    ids: HashMap<Box<str>, u32>,
    /// By id, LZ4-compressed JSON; `None` = missing or not visible (the
    /// reference stays a string).
    docs: Vec<Option<Packed>>,
    dicts: Dicts,
    refs: Vec<Box<[u32]>>,
    found: usize,
    bytes: usize,
    packed: usize,
}

impl Resolved {
    fn id(&mut self, did: &str) -> (u32, bool) {
        if let Some(&id) = self.ids.get(did) {
            return (id, false);
        }
        let id = self.docs.len() as u32;
        self.ids.insert(did.into(), id);
        self.docs.push(None);
        self.refs.push(Box::new([]));
        (id, true)
    }

    /// The JSON text of a resolved document.
    pub fn doc(&self, did: &str) -> Option<Vec<u8>> {
        let id = *self.ids.get(did)?;
        let packed = self.docs[id as usize].as_ref()?;
        // We compressed it ourselves; a failure here is memory corruption.
        self.dicts.unpack(packed)
    }

    /// Documents found (and visible).
    pub fn len(&self) -> usize {
        self.found
    }

    pub fn is_empty(&self) -> bool {
        self.found == 0
    }

    /// Raw bytes of the documents found.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes held for them (compressed, plus dictionaries).
    pub fn packed_bytes(&self) -> usize {
        self.packed + self.dicts.data.iter().map(Vec::len).sum::<usize>()
    }

    /// Nodes (expanded records and circular stubs) the answer for these roots
    /// holds; `Err` as soon as it passes `limit`.
    pub fn count_emitted(&self, roots: &[(String, Vec<String>)], opts: &ResolveOpts, limit: u64) -> Result<u64, ResolveError> {
        let mut n = 0u64;
        let mut path: Vec<u32> = Vec::new();
        for (did, refs) in roots {
            n += 1;
            // A root is on its own chain; it only has an id if something refers to it.
            let root_id = self.ids.get(did.as_str()).copied();
            path.extend(root_id);
            let ids: Vec<u32> = refs.iter().filter_map(|r| self.ids.get(r.as_str()).copied()).collect();
            self.count_refs(&ids, opts.depth, opts, &mut path, &mut n, limit)?;
            path.clear();
        }
        Ok(n)
    }

    fn count_refs(&self, refs: &[u32], depth: u32, opts: &ResolveOpts, path: &mut Vec<u32>, n: &mut u64, limit: u64) -> Result<(), ResolveError> {
        if depth == 0 {
            return Ok(());
        }
        for &r in refs {
            if self.docs[r as usize].is_none() {
                continue; // stays a string
            }
            if path.contains(&r) {
                *n += 1; // circular stub
            } else if opts.names_only && depth == 1 {
                continue; // becomes a name
            } else {
                *n += 1;
                if *n > limit {
                    return Err(ResolveError::TooManyNodes { limit });
                }
                path.push(r);
                self.count_refs(&self.refs[r as usize], depth - 1, opts, path, n, limit)?;
                path.pop();
            }
            if *n > limit {
                return Err(ResolveError::TooManyNodes { limit });
            }
        }
        Ok(())
    }
}

/// Fetch everything `roots` can reach within `opts.depth`, level by level.
pub async fn gather(
    store: &dyn RecordStore,
    viewer: &Viewer,
    roots: &[(String, Vec<String>)],
    opts: &ResolveOpts,
    limits: ResolveLimits,
) -> Result<Resolved, ResolveError> {
    let mut out = Resolved::default();
    if opts.depth == 0 {
        return Ok(out);
    }
    let mut frontier: Vec<String> = Vec::new();
    for (_, refs) in roots {
        for r in refs {
            if out.id(r).1 {
                frontier.push(r.clone());
            }
        }
    }
    for level in 1..=opts.depth {
        if frontier.is_empty() {
            break;
        }
        if out.docs.len() > limits.max_docs {
            return Err(ResolveError::TooManyDocs { limit: limits.max_docs });
        }
        let (tx, rx) = tokio::sync::mpsc::channel(FETCH_QUEUE);
        let fetch = store.fetch_visible(std::mem::take(&mut frontier), viewer, tx);
        // Each document is compressed as it arrives; the raw text is freed at once.
        // The consumer owns the receiver: if it stops early (a bound is passed), the
        // receiver is dropped with it, so the store's pending send fails and the
        // read ends — rather than both waiting on each other forever.
        let (out, frontier) = (&mut out, &mut frontier);
        let consume = async move {
            let mut rx = rx;
            while let Some((did, raw)) = rx.recv().await {
                out.bytes += raw.get().len();
                if out.bytes > limits.max_bytes {
                    return Err(ResolveError::TooManyBytes { limit: limits.max_bytes });
                }
                let (id, _) = out.id(&did);
                let v: Value = serde_json::from_str(raw.get()).map_err(|e| StoreError::Backend(e.to_string()))?;
                if level < opts.depth {
                    let mut ids = Vec::new();
                    for r in refs_of(&v, opts) {
                        let (rid, new) = out.id(&r);
                        if new {
                            frontier.push(r);
                        }
                        ids.push(rid);
                    }
                    out.refs[id as usize] = ids.into_boxed_slice();
                }
                let record_type = v.get("oip").and_then(|o| o.get("recordType")).and_then(Value::as_str).unwrap_or("");
                let packed = out.dicts.pack(record_type, raw.get().as_bytes());
                out.packed += packed.data.len();
                out.docs[id as usize] = Some(packed);
                out.found += 1;
            }
            Ok::<(), ResolveError>(())
        };
        let (fetched, consumed) = tokio::join!(fetch, consume);
        consumed?;
        fetched?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(depth: u32, fields: &[&str]) -> ResolveOpts {
        ResolveOpts { depth, names_only: false, field_names: fields.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn only_section_level_strings_and_arrays_are_references() {
        let doc = json!({"data": {
            "basic": {"name": "x", "avatar": "did:arweave:A", "deep": {"ref": "did:arweave:NO"}},
            "workout": {"exercise": ["did:arweave:E1", 3, "did:arweave:E2", "plain"]},
            "weird": "did:arweave:NOTASECTION"
        }, "oip": {"did": "did:arweave:SELF"}});
        assert_eq!(refs_of(&doc, &opts(1, &[])), vec!["did:arweave:A", "did:arweave:E1", "did:arweave:E2"]);
        assert_eq!(refs_of(&doc, &opts(1, &["workout.exercise"])), vec!["did:arweave:E1", "did:arweave:E2"]);
        assert_eq!(refs_of(&doc, &opts(1, &["data.workout"])), vec!["did:arweave:E1", "did:arweave:E2"]);
        assert_eq!(refs_of(&doc, &opts(1, &["work"])), Vec::<String>::new());
    }

    #[test]
    fn dictionary_packing_round_trips_and_compresses() {
        let mut d = Dicts::default();
        let docs: Vec<String> = (0..400)
            .map(|i| format!(r#"{{"data":{{"basic":{{"name":"Schedule day {i}","description":"Scheduled training"}},"workoutSchedule":{{"scheduled_date":{}}}}},"oip":{{"did":"did:arweave:{i:043}","recordType":"workoutSchedule"}}}}"#, 1735689600 + i * 86400))
            .collect();
        let packed: Vec<Packed> = docs.iter().map(|doc| d.pack("workoutSchedule", doc.as_bytes())).collect();
        for (doc, p) in docs.iter().zip(&packed) {
            assert_eq!(d.unpack(p).unwrap(), doc.as_bytes());
        }
        let raw: usize = docs.iter().map(String::len).sum();
        let tail: usize = packed[300..].iter().map(|p| p.data.len()).sum();
        let tail_raw: usize = docs[300..].iter().map(String::len).sum();
        assert!(tail * 3 < tail_raw, "dictionary compression: {tail} of {tail_raw} (all {raw})");
    }

    #[test]
    fn count_stops_at_the_limit_and_handles_cycles() {
        let mut r = Resolved::default();
        let (a, _) = r.id("a");
        let (b, _) = r.id("b");
        for id in [a, b] {
            r.docs[id as usize] = Some(r.dicts.pack("t", b"{}"));
        }
        r.refs[a as usize] = vec![b, b].into_boxed_slice();
        r.refs[b as usize] = vec![a].into_boxed_slice();
        let roots = vec![("a".to_string(), vec!["b".to_string()])];
        // a → b → a (circular stub)
        assert_eq!(r.count_emitted(&roots, &opts(5, &[]), 100).unwrap(), 3);
        assert_eq!(r.count_emitted(&roots, &opts(1, &[]), 100).unwrap(), 2);
        assert!(matches!(r.count_emitted(&roots, &opts(5, &[]), 2), Err(ResolveError::TooManyNodes { limit: 2 })));
    }
}
