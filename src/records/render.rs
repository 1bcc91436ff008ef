//! Streaming JSON for `/api/records`: the response is serialized straight into the
//! body, so memory does not grow with the answer — a 100 MB deep-resolved record
//! costs what its distinct documents cost, not what its expansion costs.
//!
//! A producer on the blocking pool writes JSON into a [`ChunkWriter`], which hands
//! [`RENDER_CHUNK`]-sized pieces to the body through a channel of
//! [`RENDER_QUEUE`] chunks: when the client reads slowly the producer blocks; when
//! the client goes away the send fails and the producer stops, dropping everything
//! the response held. Record shaping (`includeSigs`, `includePubKeys`,
//! `dateReadable`, `hideNullValues`) and reference expansion happen per node as it
//! is written.

use std::cell::RefCell;
use std::io::{self, Write};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::resolve::{field_allowed, Resolved};
use crate::oip::model::date_readable;
use crate::oip::query::{ResolveOpts, Shaping};

/// Bytes per body chunk.
pub const RENDER_CHUNK: usize = 64 * 1024;
/// Bound: chunks queued between the producer and the socket, per response.
pub const RENDER_QUEUE: usize = 4;

/// `io::Write` into the response body, in chunks, with backpressure.
pub struct ChunkWriter {
    buf: BytesMut,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= RENDER_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body produced by `produce` on the blocking pool. `guard` (e.g. a stream
/// permit) lives as long as the producer.
pub fn streaming_body<G: Send + 'static>(
    guard: G,
    produce: impl FnOnce(&mut ChunkWriter) -> io::Result<()> + Send + 'static,
) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(RENDER_QUEUE);
    let err_tx = tx.clone();
    // Charged to the request; counted before the channel closes, so the count is
    // complete when the body ends.
    let scope = crate::memory::track::Scope::current();
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let mut w = ChunkWriter { buf: BytesMut::with_capacity(RENDER_CHUNK), tx };
        // A panic mid-answer must end the response as an error (the client sees an
        // incomplete body), never as a complete-looking but truncated JSON.
        let result = scope.run(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| produce(&mut w).and_then(|_| w.send())))
                .unwrap_or_else(|_| Err(io::Error::other("renderer panicked")))
        });
        if let Err(e) = result {
            if e.kind() != io::ErrorKind::BrokenPipe {
                tracing::error!(error = %e, "rendering a records response failed mid-stream");
                let _ = err_tx.blocking_send(Err(e));
            }
        }
        drop(w);
        drop(err_tx);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Body::from_stream(stream)
}

/// A top-level record as the renderer gets it.
pub enum RootDoc {
    Raw(Box<RawValue>),
    Parsed(Value),
}

/// What every node of one response is rendered with.
pub struct RenderCtx<'a> {
    pub resolved: &'a Resolved,
    pub opts: &'a ResolveOpts,
    pub shaping: Shaping,
}

impl RenderCtx<'_> {
    /// Parse and shape one stored document.
    fn shaped(&self, json: &[u8]) -> io::Result<Value> {
        let mut v: Value = serde_json::from_slice(json).map_err(io::Error::other)?;
        shape(&mut v, self.shaping);
        Ok(v)
    }

    /// Write one top-level record (with its score fields) to `w`: a stored
    /// document, parsed here, or one the caller already parsed (to find its
    /// references), so no root is parsed twice.
    pub fn write_record(&self, w: &mut impl Write, did: &str, doc: RootDoc, extra: &[(&'static str, Value)]) -> io::Result<()> {
        let v = match doc {
            RootDoc::Raw(raw) => self.shaped(raw.get().as_bytes())?,
            RootDoc::Parsed(mut v) => {
                shape(&mut v, self.shaping);
                v
            }
        };
        let path = RefCell::new(vec![did.to_owned()]);
        let rec = RecordSer { ctx: self, value: &v, depth: self.opts.depth, path: &path, extra };
        serde_json::to_writer(w, &rec).map_err(io::Error::other)
    }
}

/// Apply the output options to one record.
pub fn shape(v: &mut Value, s: Shaping) {
    if let Some(oip) = v.get_mut("oip").and_then(Value::as_object_mut) {
        if !s.include_sigs {
            oip.remove("signature");
        }
        if !s.include_pub_keys {
            if let Some(c) = oip.get_mut("creator").and_then(Value::as_object_mut) {
                c.remove("publicKey");
            }
        }
    }
    if !s.hide_date_readable {
        if let Some(basic) = v.get_mut("data").and_then(|d| d.get_mut("basic")).and_then(Value::as_object_mut) {
            let secs = match basic.get("date") {
                Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
                Some(Value::String(s)) => s.trim().parse::<f64>().ok().map(|f| f as i64),
                _ => None,
            };
            if let Some(secs) = secs.filter(|s| s.abs() < 8_640_000_000_000) {
                basic.insert("dateReadable".into(), Value::String(date_readable(secs)));
            }
        }
    }
}

/// A value serialized as is, or without null object members when `hide_nulls`.
struct Plain<'a> {
    v: &'a Value,
    hide_nulls: bool,
}

impl Serialize for Plain<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.hide_nulls {
            return self.v.serialize(s);
        }
        match self.v {
            Value::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m.iter().filter(|(_, v)| !v.is_null()) {
                    map.serialize_entry(k, &Plain { v, hide_nulls: true })?;
                }
                map.end()
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Plain { v, hide_nulls: true })?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

struct RecordSer<'a> {
    ctx: &'a RenderCtx<'a>,
    value: &'a Value,
    /// Remaining resolution depth for this record's references.
    depth: u32,
    path: &'a RefCell<Vec<String>>,
    extra: &'a [(&'static str, Value)],
}

impl Serialize for RecordSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hide = self.ctx.shaping.hide_null_values;
        let mut map = s.serialize_map(None)?;
        if let Some(obj) = self.value.as_object() {
            for (k, v) in obj {
                if hide && v.is_null() {
                    continue;
                }
                match (k.as_str(), v.as_object()) {
                    ("data", Some(sections)) if self.depth > 0 => {
                        map.serialize_entry(k, &DataSer { rec: self, sections })?;
                    }
                    _ => map.serialize_entry(k, &Plain { v, hide_nulls: hide })?,
                }
            }
        }
        for (k, v) in self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct DataSer<'a> {
    rec: &'a RecordSer<'a>,
    sections: &'a Map<String, Value>,
}

impl Serialize for DataSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hide = self.rec.ctx.shaping.hide_null_values;
        let mut map = s.serialize_map(None)?;
        for (section, v) in self.sections {
            if hide && v.is_null() {
                continue;
            }
            match v.as_object() {
                Some(fields) => map.serialize_entry(section, &SectionSer { rec: self.rec, section, fields })?,
                None => map.serialize_entry(section, &Plain { v, hide_nulls: hide })?,
            }
        }
        map.end()
    }
}

struct SectionSer<'a> {
    rec: &'a RecordSer<'a>,
    section: &'a str,
    fields: &'a Map<String, Value>,
}

/// Prefixes that read before an ingredient's name (the original's rule).
const PREFIX_COMMENTS: &[&str] = &["ground", "virgin", "boneless", "skinless"];

impl Serialize for SectionSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ctx = self.rec.ctx;
        let hide = ctx.shaping.hide_null_values;
        let mut map = s.serialize_map(None)?;
        for (key, v) in self.fields {
            if hide && v.is_null() {
                continue;
            }
            if !field_allowed(ctx.opts, self.section, key) {
                map.serialize_entry(key, &Plain { v, hide_nulls: hide })?;
                continue;
            }
            let comments = (self.section == "recipe" && key == "ingredient")
                .then(|| self.fields.get("ingredient_comment").and_then(Value::as_array))
                .flatten();
            match v {
                Value::String(d) if d.starts_with("did:") => map.serialize_entry(key, &RefSer { rec: self.rec, did: d, comment: None })?,
                Value::Array(a) => map.serialize_entry(key, &ArraySer { rec: self.rec, items: a, comments })?,
                _ => map.serialize_entry(key, &Plain { v, hide_nulls: hide })?,
            }
        }
        map.end()
    }
}

struct ArraySer<'a> {
    rec: &'a RecordSer<'a>,
    items: &'a [Value],
    comments: Option<&'a Vec<Value>>,
}

impl Serialize for ArraySer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hide = self.rec.ctx.shaping.hide_null_values;
        let mut seq = s.serialize_seq(Some(self.items.len()))?;
        for (i, v) in self.items.iter().enumerate() {
            match v {
                Value::String(d) if d.starts_with("did:") => {
                    let comment = self.comments.and_then(|c| c.get(i)).and_then(Value::as_str).filter(|c| !c.is_empty());
                    seq.serialize_element(&RefSer { rec: self.rec, did: d, comment })?
                }
                _ => seq.serialize_element(&Plain { v, hide_nulls: hide })?,
            }
        }
        seq.end()
    }
}

/// One reference: a string, a name, a circular stub, or the full record.
struct RefSer<'a> {
    rec: &'a RecordSer<'a>,
    did: &'a str,
    /// `ingredient_comment[i]` for names-only recipe ingredients.
    comment: Option<&'a str>,
}

impl Serialize for RefSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let ctx = self.rec.ctx;
        let Some(json) = ctx.resolved.doc(self.did) else {
            return s.serialize_str(self.did); // missing or not visible: stays a DID
        };
        let on_path = self.rec.path.borrow().iter().any(|p| p == self.did);
        if on_path {
            let v: Value = serde_json::from_slice(&json).map_err(S::Error::custom)?;
            let mut stub = Map::new();
            stub.insert("oip".into(), v.get("oip").cloned().unwrap_or(Value::Null));
            let basic = v.get("data").and_then(|d| d.get("basic")).cloned().unwrap_or(Value::Null);
            stub.insert("data".into(), Value::Object(Map::from_iter([("basic".to_owned(), basic)])));
            stub.insert("_circular".into(), Value::Bool(true));
            return Value::Object(stub).serialize(s);
        }
        if ctx.opts.names_only && self.rec.depth == 1 {
            let v: Value = serde_json::from_slice(&json).map_err(S::Error::custom)?;
            let Some(name) = v.get("data").and_then(|d| d.get("basic")).and_then(|b| b.get("name")).and_then(Value::as_str) else {
                return s.serialize_str(self.did);
            };
            return match self.comment {
                Some(c) if PREFIX_COMMENTS.contains(&c.to_lowercase().as_str()) => s.serialize_str(&format!("{c} {name}")),
                Some(c) => s.serialize_str(&format!("{name}, {c}")),
                None => s.serialize_str(name),
            };
        }
        let v = ctx.shaped(&json).map_err(S::Error::custom)?;
        drop(json);
        self.rec.path.borrow_mut().push(self.did.to_owned());
        let child = RecordSer { ctx, value: &v, depth: self.rec.depth - 1, path: self.rec.path, extra: &[] };
        let r = child.serialize(s);
        self.rec.path.borrow_mut().pop();
        r
    }
}
