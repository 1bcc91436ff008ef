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
//! store), keeping the distinct documents as compact JSON text for this response
//! only — there is no cache shared between requests. [`Resolved::count_emitted`]
//! then counts the nodes the answer will contain (repeats included) without
//! building it, so an answer over the bound is refused before any byte is sent.
//! The answer itself is produced by `render` straight into the response body.
//!
//! Bounds (configuration): distinct documents per response (`--resolve-max-docs`),
//! their bytes (`--resolve-max-bytes`), and emitted nodes (`--resolve-max-nodes`).

use std::collections::{HashMap, HashSet};

use serde_json::value::RawValue;
use serde_json::Value;

use super::query::ResolveOpts;
use crate::store::{RecordStore, StoreError, Viewer};

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

/// The documents one response may expand, and the reference lists of each.
#[derive(Default)]
pub struct Resolved {
    docs: HashMap<String, Box<RawValue>>,
    refs: HashMap<String, Vec<String>>,
    bytes: usize,
}

impl Resolved {
    pub fn doc(&self, did: &str) -> Option<&RawValue> {
        self.docs.get(did).map(|b| &**b)
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Nodes (expanded records and circular stubs) the answer for these roots
    /// holds; `Err` as soon as it passes `limit`.
    pub fn count_emitted(&self, roots: &[(String, Vec<String>)], opts: &ResolveOpts, limit: u64) -> Result<u64, ResolveError> {
        let mut n = 0u64;
        let mut path: Vec<&str> = Vec::new();
        for (did, refs) in roots {
            n += 1;
            path.push(did);
            self.count_refs(refs, opts.depth, opts, &mut path, &mut n, limit)?;
            path.pop();
        }
        Ok(n)
    }

    fn count_refs<'a>(
        &'a self,
        refs: &'a [String],
        depth: u32,
        opts: &ResolveOpts,
        path: &mut Vec<&'a str>,
        n: &mut u64,
        limit: u64,
    ) -> Result<(), ResolveError> {
        if depth == 0 {
            return Ok(());
        }
        for r in refs {
            if !self.docs.contains_key(r) {
                continue; // stays a string
            }
            if path.contains(&r.as_str()) {
                *n += 1; // circular stub
            } else if opts.names_only && depth == 1 {
                continue; // becomes a name
            } else {
                *n += 1;
                if *n > limit {
                    return Err(ResolveError::TooManyNodes { limit });
                }
                path.push(r);
                let child = self.refs.get(r).map(Vec::as_slice).unwrap_or(&[]);
                self.count_refs(child, depth - 1, opts, path, n, limit)?;
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
    let mut asked: HashSet<String> = HashSet::new();
    let mut frontier: Vec<String> = Vec::new();
    for (_, refs) in roots {
        for r in refs {
            if asked.insert(r.clone()) {
                frontier.push(r.clone());
            }
        }
    }
    for level in 1..=opts.depth {
        if frontier.is_empty() {
            break;
        }
        if asked.len() > limits.max_docs {
            return Err(ResolveError::TooManyDocs { limit: limits.max_docs });
        }
        let fetched = store.fetch_visible(std::mem::take(&mut frontier), viewer).await?;
        for (did, raw) in fetched {
            out.bytes += raw.get().len() + did.len();
            if out.bytes > limits.max_bytes {
                return Err(ResolveError::TooManyBytes { limit: limits.max_bytes });
            }
            let refs = if level < opts.depth {
                let v: Value = serde_json::from_str(raw.get()).map_err(|e| StoreError::Backend(e.to_string()))?;
                refs_of(&v, opts)
            } else {
                Vec::new()
            };
            for r in &refs {
                if asked.insert(r.clone()) {
                    frontier.push(r.clone());
                }
            }
            out.refs.insert(did.clone(), refs);
            out.docs.insert(did, raw);
        }
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
    fn count_stops_at_the_limit_and_handles_cycles() {
        let mut r = Resolved::default();
        for d in ["a", "b"] {
            r.docs.insert(d.into(), RawValue::from_string("{}".into()).unwrap());
        }
        r.refs.insert("a".into(), vec!["b".into(), "b".into()]);
        r.refs.insert("b".into(), vec!["a".into()]);
        let roots = vec![("a".to_string(), vec!["b".to_string()])];
        // a → b → a (circular stub)
        assert_eq!(r.count_emitted(&roots, &opts(5, &[]), 100).unwrap(), 3);
        assert_eq!(r.count_emitted(&roots, &opts(1, &[]), 100).unwrap(), 2);
        assert!(matches!(r.count_emitted(&roots, &opts(5, &[]), 2), Err(ResolveError::TooManyNodes { limit: 2 })));
    }
}
