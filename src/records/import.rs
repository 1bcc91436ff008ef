//! `oipd import`: move an existing node's data in one step. Accepts, per file,
//! a JSON array of documents, NDJSON, an Elasticsearch `_search` response
//! (`hits.hits[]._source`) or an elasticdump NDJSON export (`{_index, _id,
//! _source}` per line). Records are upserted by DID (idempotent: re-importing
//! changes nothing), templates likewise, and the original's `users` index (its
//! accounts, passwords and sealed keys as they are) by email; anything else is
//! skipped with its reason
//! and position. Each batch is one transaction, so a bad document never leaves a
//! partial record and never stops the rest.
//!
//! Bounds: [`BATCH`] documents held at once for JSON arrays and NDJSON; a single
//! `_search` response object is parsed whole (use elasticdump NDJSON for large
//! indices); [`MAX_LINE_BYTES`] per NDJSON line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

use crate::oip::model::{IndexedRecord, IndexedTemplate, MAX_RECORD_BYTES};
use crate::store::backends::Stores;
use crate::store::users::{email_key, UserDoc, UserStore, MAX_USER_BYTES};
use crate::store::{RecordStore, StoreError, Upserted};

/// Bound: documents per transaction (and held in memory at once).
pub const BATCH: usize = 1000;
/// Bound: bytes of one NDJSON line.
pub const MAX_LINE_BYTES: usize = MAX_RECORD_BYTES + 64 * 1024;
/// Skipped documents listed individually in the summary (the rest are counted).
pub const MAX_LISTED_SKIPS: usize = 100;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub templates: u64,
    /// Accounts (the original's `users` index), upserted by email.
    pub users: u64,
    pub skipped: u64,
    /// `file:position: reason`, the first [`MAX_LISTED_SKIPS`].
    pub skips: Vec<String>,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "imported {} new, updated {}, unchanged {}, templates {}, users {}, skipped {}",
            self.imported, self.updated, self.unchanged, self.templates, self.users, self.skipped
        )?;
        for s in &self.skips {
            writeln!(f, "  skipped {s}")?;
        }
        if self.skipped as usize > self.skips.len() {
            writeln!(f, "  ... and {} more skipped", self.skipped as usize - self.skips.len())?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
    #[error("{0}: not JSON, NDJSON, an Elasticsearch response or an elasticdump export: {1}")]
    Format(PathBuf, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Doc {
    Record(IndexedRecord),
    Template(IndexedTemplate),
    User(UserDoc),
}

struct Importer<'a> {
    store: &'a dyn RecordStore,
    user_store: &'a dyn UserStore,
    /// Import is synchronous code (parsing, files); store calls run on this runtime.
    rt: &'a tokio::runtime::Handle,
    summary: ImportSummary,
    records: Vec<(String, IndexedRecord)>,
    templates: Vec<IndexedTemplate>,
    users: Vec<UserDoc>,
    file: String,
}

impl Importer<'_> {
    fn skip(&mut self, pos: &str, reason: impl std::fmt::Display) {
        self.summary.skipped += 1;
        if self.summary.skips.len() < MAX_LISTED_SKIPS {
            self.summary.skips.push(format!("{}:{pos}: {reason}", self.file));
        }
    }

    /// Classify one document (unwrapping `_source`) and queue it.
    fn add(&mut self, pos: String, v: Value) -> Result<(), ImportError> {
        let (index, id, doc) = match v {
            Value::Object(mut m) if m.contains_key("_source") => {
                let index = m.get("_index").and_then(Value::as_str).map(str::to_owned);
                let id = m.get("_id").and_then(Value::as_str).map(str::to_owned);
                (index, id, m.remove("_source").unwrap_or(Value::Null))
            }
            other => (None, None, other),
        };
        let parsed = match index.as_deref() {
            Some("templates") => IndexedTemplate::from_value(&doc).map(Doc::Template).ok_or_else(|| "not a template".to_string()),
            Some("users") => user_doc(id, doc).map(Doc::User),
            None if looks_like_user(&doc) => user_doc(id, doc).map(Doc::User),
            Some(i) if i != "records" => Err(format!("documents of index {i:?} are not imported")),
            _ => match IndexedRecord::from_value(&doc) {
                Ok(r) => Ok(Doc::Record(r)),
                Err(e) => IndexedTemplate::from_value(&doc).map(Doc::Template).ok_or_else(|| e.to_string()),
            },
        };
        match parsed {
            Ok(Doc::Record(r)) => self.records.push((pos, r)),
            Ok(Doc::Template(t)) => self.templates.push(t),
            Ok(Doc::User(u)) => self.users.push(u),
            Err(reason) => self.skip(&pos, reason),
        }
        if self.records.len() + self.templates.len() + self.users.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        if !self.records.is_empty() {
            let batch: Vec<IndexedRecord> = self.records.drain(..).map(|(_, r)| r).collect();
            for u in self.rt.block_on(self.store.upsert(batch))? {
                match u {
                    Upserted::Inserted => self.summary.imported += 1,
                    Upserted::Updated => self.summary.updated += 1,
                    Upserted::Unchanged => self.summary.unchanged += 1,
                    Upserted::Refused => self.summary.skipped += 1,
                }
            }
        }
        if !self.templates.is_empty() {
            let batch: Vec<IndexedTemplate> = std::mem::take(&mut self.templates);
            self.summary.templates += self.rt.block_on(self.store.upsert_templates(batch))?.len() as u64;
        }
        if !self.users.is_empty() {
            let batch: Vec<UserDoc> = std::mem::take(&mut self.users);
            let emails: Vec<String> = batch.iter().map(|u| u.email().to_owned()).collect();
            for (u, email) in self.rt.block_on(self.user_store.upsert_users(batch))?.into_iter().zip(emails) {
                if u == Upserted::Refused {
                    self.skip("users", format!("{email}: its userId belongs to another account on this node"));
                } else {
                    self.summary.users += 1;
                }
            }
        }
        Ok(())
    }
}

/// A document of the original's `users` index: no record sections, an email and
/// a password hash or key.
fn looks_like_user(doc: &Value) -> bool {
    doc.get("oip").is_none()
        && doc.get("data").is_none()
        && doc.get("email").is_some_and(Value::is_string)
        && (doc.get("passwordHash").is_some() || doc.get("publicKey").is_some())
}

/// An account from the original's export: its `_id` stays its `userId` (tokens
/// the original issued name it); without one, an id derived from the email.
fn user_doc(id: Option<String>, doc: Value) -> Result<UserDoc, String> {
    let Value::Object(doc) = doc else { return Err("a user document must be an object".into()) };
    let email = doc.get("email").and_then(Value::as_str).map(str::trim).filter(|e| e.contains('@')).ok_or("a user needs an email")?;
    if serde_json::to_vec(&doc).map_or(usize::MAX, |v| v.len()) > MAX_USER_BYTES {
        return Err(format!("user document over {MAX_USER_BYTES} bytes"));
    }
    let id = match id.or_else(|| doc.get("userId").and_then(Value::as_str).map(str::to_owned)) {
        Some(i) if !i.is_empty() && i.len() <= 128 => i,
        _ => {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(email_key(email).as_bytes()))[..20].to_owned()
        }
    };
    Ok(UserDoc { id, doc, rev: 0 })
}

/// Counts bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

/// Import `files` into `store`, calling it on `rt` (call this from a thread that
/// may block: a plain thread or `spawn_blocking`). `progress` draws a bar on
/// stderr (hidden when it is not a terminal).
pub fn import_files(
    stores: &Stores,
    rt: &tokio::runtime::Handle,
    files: &[PathBuf],
    progress: bool,
) -> Result<ImportSummary, ImportError> {
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = if progress { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let store = &*stores.records;
    let mut imp = Importer {
        store,
        user_store: &*stores.users,
        rt,
        summary: ImportSummary::default(),
        records: Vec::new(),
        templates: Vec::new(),
        users: Vec::new(),
        file: String::new(),
    };
    let mut done = 0u64;
    for path in files {
        imp.file = path.display().to_string();
        let counter = Arc::new(AtomicU64::new(0));
        let bar2 = bar.clone();
        let c2 = counter.clone();
        let tick = move |base: u64| bar2.set_position(base + c2.load(Ordering::Relaxed));
        import_one(&mut imp, path, counter.clone(), &|| tick(done))?;
        imp.flush()?;
        done += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        bar.set_position(done);
        bar.set_message(format!("{} records", imp.summary.imported + imp.summary.updated + imp.summary.unchanged));
    }
    bar.finish_and_clear();
    rt.block_on(store.after_bulk_load())?;
    Ok(imp.summary)
}

fn import_one(imp: &mut Importer<'_>, path: &Path, counter: Arc<AtomicU64>, tick: &dyn Fn()) -> Result<(), ImportError> {
    let io_err = |e| ImportError::Io(path.to_path_buf(), e);
    let file = File::open(path).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(256 * 1024, Counting { inner: file, n: counter });
    let first = loop {
        let buf = reader.fill_buf().map_err(io_err)?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                reader.consume(i);
                break Some(b);
            }
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    match first {
        None => Ok(()),
        Some(b'[') => import_array(imp, reader, tick).map_err(|e| match e {
            ArrayError::Json(e) => ImportError::Format(path.to_path_buf(), e.to_string()),
            ArrayError::Import(e) => e,
        }),
        Some(b'{') => import_objects(imp, reader, path, tick),
        Some(_) => Err(ImportError::Format(path.to_path_buf(), "expected '[' or '{'".into())),
    }
}

/// NDJSON (one document per line), or one whole JSON object (an ES response).
fn import_objects(imp: &mut Importer<'_>, mut reader: impl BufRead, path: &Path, tick: &dyn Fn()) -> Result<(), ImportError> {
    let io_err = |e| ImportError::Io(path.to_path_buf(), e);
    let mut first = String::new();
    reader.by_ref().take(MAX_LINE_BYTES as u64).read_line(&mut first).map_err(io_err)?;
    match serde_json::from_str::<Value>(&first) {
        Ok(v) if !first.trim().is_empty() => {
            // NDJSON
            add_value(imp, "line 1".into(), v)?;
            let mut line_no = 1u64;
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.by_ref().take(MAX_LINE_BYTES as u64).read_line(&mut line).map_err(io_err)?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                if line.trim().is_empty() {
                    continue;
                }
                if n >= MAX_LINE_BYTES && !line.ends_with('\n') {
                    imp.skip(&format!("line {line_no}"), format!("line over {MAX_LINE_BYTES} bytes"));
                    // drain the rest of the overlong line
                    let mut sink = Vec::new();
                    reader.read_until(b'\n', &mut sink).map_err(io_err)?;
                    continue;
                }
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => add_value(imp, format!("line {line_no}"), v)?,
                    Err(e) => imp.skip(&format!("line {line_no}"), format!("invalid JSON: {e}")),
                }
                if line_no % 1000 == 0 {
                    tick();
                }
            }
            Ok(())
        }
        _ => {
            // One JSON document spread over lines: an Elasticsearch `_search` response.
            let mut rest = first;
            reader.read_to_string(&mut rest).map_err(io_err)?;
            let v: Value = serde_json::from_str(&rest).map_err(|e| ImportError::Format(path.to_path_buf(), e.to_string()))?;
            add_value(imp, "document".into(), v)
        }
    }
}

/// One parsed top-level value: an ES response expands to its hits.
fn add_value(imp: &mut Importer<'_>, pos: String, v: Value) -> Result<(), ImportError> {
    if let Some(hits) = v.get("hits").and_then(|h| h.get("hits")).and_then(Value::as_array) {
        for (i, h) in hits.iter().enumerate() {
            imp.add(format!("hits[{i}]"), h.clone())?;
        }
        return Ok(());
    }
    imp.add(pos, v)
}

enum ArrayError {
    Json(serde_json::Error),
    Import(ImportError),
}

/// A JSON array, element by element, never holding the whole array.
fn import_array(imp: &mut Importer<'_>, reader: impl Read, tick: &dyn Fn()) -> Result<(), ArrayError> {
    struct Seed<'a, 'b> {
        imp: &'a mut Importer<'b>,
        tick: &'a dyn Fn(),
        err: Option<ImportError>,
    }
    impl<'de> DeserializeSeed<'de> for &mut Seed<'_, '_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for &mut Seed<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of documents")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0usize;
            loop {
                // An element that is not valid JSON ends the file (we cannot resync);
                // one that is JSON but not a document is skipped.
                let Some(v) = seq.next_element::<Value>()? else { break };
                if let Err(e) = self.imp.add(format!("element {i}"), v) {
                    self.err = Some(e);
                    return Err(serde::de::Error::custom("store error"));
                }
                i += 1;
                if i % 1000 == 0 {
                    (self.tick)();
                }
            }
            Ok(())
        }
    }
    let mut seed = Seed { imp, tick, err: None };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let r = (&mut seed).deserialize(&mut de);
    if let Some(e) = seed.err {
        return Err(ArrayError::Import(e));
    }
    r.map_err(ArrayError::Json)?;
    de.end().map_err(ArrayError::Json)
}
