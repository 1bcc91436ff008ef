//! One transaction → what it does to the store ([`Effect`]), as the original's
//! `processTransaction` decides it — with the checks it skipped made real:
//! template and creator signatures (as the original), ordinary record signatures
//! (`--record-signatures require|mark|off`; the original never checked them),
//! and delete ownership (the deleter must be the target's creator; the
//! original compared the deleter with itself).
//!
//! Every failure of one transaction is a [`Effect::Skipped`] with its reason,
//! never an error that stops the cycle; only store errors propagate.
//!
//! Bounds: one transaction at a time; templates come from a [`TemplateCache`]
//! of at most [`TEMPLATE_CACHE`] parsed templates (loaded from the store on a
//! miss); the data's size was capped by the fetcher.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use super::expand::{self, CreatorInfo, Template, TemplateSet};
use super::handle::{handle_digits, HandleError};
use super::js::{js_ordered_entries, js_stringify};
use super::tx::{Kind, Tx};
use super::verify;
use crate::limits::{BoundReport, BoundSource};
use crate::oip::model::{IndexedRecord, IndexedTemplate};
use crate::store::indexer::{Creator, CreatorRow, Effect, IndexerStore, OrganizationRow};
use crate::store::StoreError;

/// Bound: parsed templates kept in memory, by count and by the bytes of their
/// source (a parsed template is a few times its source).
pub const TEMPLATE_CACHE: usize = 512;
pub const TEMPLATE_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Bound: a template's data (real ones are a few KB).
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Bound: a creator or organization registration's data.
pub const MAX_REGISTRATION_BYTES: usize = 64 * 1024;
/// Bound: handle suffix lengths tried before a registration is skipped.
const MAX_HANDLE_TRIES: usize = 64;

/// The original's creator registrations read by position (its bootstrap).
pub const ORIGINAL_BOOTSTRAP: &[&str] = &[
    "eqUwpy6et2egkGlkvS7c5GKi0aBsCXT6Dhlydf3GA3Y",
    "5lbSxo2TeD_fwZQwwCejjCUZAitJkNT63JBRdC7flgc",
    "VPOc02NjJfJ-dYklnMTWWm3tEddEQPlmYRmJdDyzuP4",
];
/// The templates organizations are read with (fixed, as the original).
pub const ORG_BASIC_TEMPLATE: &str = "-9DirnjVO1FlbEW1lN8jITBESrTsQKEM_BoZ1ey_0mk";
pub const ORG_TEMPLATE: &str = "NQi19GjOw-Iv8PzjZ5P-XcFkAYu50cl5V_qceT2xlGM";

/// What to do with an ordinary record whose signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignatureMode {
    /// Skip it (counted).
    Require,
    /// Index it with `oip.signatureValid: false` (counted).
    Mark,
    /// Do not check (the original's behaviour).
    Off,
}

/// `RECORD_TYPE_INDEX_MODE` with its lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeFilter {
    All,
    Whitelist(HashSet<String>),
    Blacklist(HashSet<String>),
}

impl TypeFilter {
    /// From the original's variables (`all` for an unknown mode, as it falls back).
    pub fn from_env_values(mode: &str, whitelist: &str, blacklist: &str) -> Self {
        let set = |s: &str| s.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
        match mode.trim().to_lowercase().as_str() {
            "whitelist" => TypeFilter::Whitelist(set(whitelist)),
            "blacklist" => TypeFilter::Blacklist(set(blacklist)),
            _ => TypeFilter::All,
        }
    }

    /// `shouldIndexRecordType`: delete messages always pass.
    pub fn admits(&self, record_type: &str) -> bool {
        let t = record_type.trim();
        if matches!(t, "deleteMessage" | "deleteTemplate" | "delete") {
            return true;
        }
        match self {
            TypeFilter::All => true,
            TypeFilter::Whitelist(s) => s.contains(t),
            TypeFilter::Blacklist(s) => !s.contains(t),
        }
    }
}

/// How records are judged.
#[derive(Debug, Clone)]
pub struct Policy {
    pub signatures: SignatureMode,
    pub types: TypeFilter,
    /// Creator registrations read by position (the original's three, plus any
    /// an operator of a private network adds).
    pub bootstrap: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            signatures: SignatureMode::Mark,
            types: TypeFilter::All,
            bootstrap: ORIGINAL_BOOTSTRAP.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Parsed templates by txid, at most [`TEMPLATE_CACHE`], oldest out first.
#[derive(Default)]
pub struct TemplateCache {
    /// Templates with their source's size, oldest first in the queue, and the total.
    inner: Mutex<(HashMap<String, (Arc<Template>, usize)>, VecDeque<String>, usize)>,
}

impl TemplateCache {
    fn get(&self, txid: &str) -> Option<Arc<Template>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.get(txid).map(|(t, _)| t.clone())
    }

    fn put(&self, t: Arc<Template>, bytes: usize) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order, total) = &mut *g;
        match map.insert(t.tx_id.clone(), (t.clone(), bytes)) {
            None => order.push_back(t.tx_id.clone()),
            Some((_, old)) => *total -= old,
        }
        *total += bytes;
        while order.len() > TEMPLATE_CACHE || (*total > TEMPLATE_CACHE_BYTES && order.len() > 1) {
            if let Some(old) = order.pop_front() {
                if let Some((_, b)) = map.remove(&old) {
                    *total -= b;
                }
            }
        }
    }

    /// Forget a template (deleted, or dropped by a fork).
    pub fn remove(&self, txid: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, b)) = g.0.remove(txid) {
            g.2 -= b;
        }
        g.1.retain(|t| t != txid);
    }

    fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).2
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The templates `ids` name that the cache or the store holds.
    async fn load(&self, store: &dyn IndexerStore, ids: &[&str]) -> Result<TemplateSet, StoreError> {
        let mut set = TemplateSet::new();
        for id in ids {
            let t = match self.get(id) {
                Some(t) => Some(t),
                None => match store.template_doc(id).await? {
                    Some(doc) => serde_json::from_str::<Value>(&doc)
                        .ok()
                        .and_then(|v| Template::from_stored(&v).ok())
                        .map(|t| {
                            let t = Arc::new(t);
                            self.put(t.clone(), doc.len());
                            t
                        }),
                    None => None,
                },
            };
            if let Some(t) = t {
                set.insert((*t).clone());
            }
        }
        Ok(set)
    }
}

impl BoundSource for TemplateCache {
    fn report(&self, out: &mut Vec<BoundReport>) {
        out.push(BoundReport {
            name: "indexer_template_cache",
            unit: "templates",
            capacity: TEMPLATE_CACHE as u64,
            fill: self.len() as u64,
            config: "const indexer::process::TEMPLATE_CACHE",
        });
        out.push(BoundReport {
            name: "indexer_template_cache_bytes",
            unit: "bytes",
            capacity: TEMPLATE_CACHE_BYTES as u64,
            fill: self.bytes() as u64,
            config: "const indexer::process::TEMPLATE_CACHE_BYTES",
        });
    }
}

/// What processing needs besides the transaction.
pub struct Ctx<'a> {
    pub store: &'a dyn IndexerStore,
    pub templates: &'a TemplateCache,
    pub policy: &'a Policy,
    /// `indexedAt` for documents written now.
    pub now_iso: String,
}

fn skip(reason: impl Into<String>) -> Effect {
    Effect::Skipped { reason: reason.into() }
}

/// Why a transaction was skipped, reduced to a few labels for counting.
pub fn reason_label(reason: &str) -> &'static str {
    const LABELS: &[(&str, &str)] = &[
        ("Type is", "not_oip_type"),
        ("Index-Method", "not_oip"),
        ("Ver", "version"),
        ("too large", "too_large"),
        ("fetch", "fetch_failed"),
        ("creator not indexed", "creator_unknown"),
        ("signature", "bad_signature"),
        ("data", "bad_data"),
        ("template", "template"),
        ("record type", "type_filtered"),
        ("delete", "delete_refused"),
        ("handle", "handle"),
        ("no block", "pending"),
    ];
    LABELS.iter().find(|(p, _)| reason.contains(p)).map_or("other", |(_, l)| l)
}

/// Decide what `tx` does. Store errors are the only errors.
pub async fn process(tx: &Tx, height: u64, ctx: &Ctx<'_>) -> Result<Effect, StoreError> {
    // The bootstrap registrations are read as registrations whatever their tags
    // say (the original's first one is `Ver: 0.7.2`, below the dispatch's 0.8.0).
    if ctx.policy.bootstrap.iter().any(|b| b == &tx.id) {
        return creator_registration(tx, height, ctx).await;
    }
    match tx.kind() {
        Kind::Skip(reason) => Ok(skip(reason.to_string())),
        Kind::Template => template(tx, height, ctx).await,
        Kind::Record => match tx.record_type() {
            Some("creatorRegistration") => creator_registration(tx, height, ctx).await,
            Some("organization") => organization(tx, height, ctx).await,
            _ => record(tx, height, ctx).await,
        },
    }
}

fn did(txid: &str) -> String {
    format!("did:arweave:{txid}")
}

fn creator_json(c: &Creator) -> Value {
    json!({"creatorHandle": c.handle, "didAddress": c.did_address, "didTx": c.did_tx, "publicKey": c.public_key})
}

async fn creator_of(tx: &Tx, ctx: &Ctx<'_>) -> Result<Option<Creator>, StoreError> {
    match tx.creator() {
        Some(addr) => ctx.store.creator_by_address(&did(addr)).await,
        None => Ok(None),
    }
}

/// The original's `validateTemplateFields`: every field (in JavaScript key
/// order) has its `index_<field>`, except an enum's `<field>Values` right after it.
pub fn template_fields_valid(fields: &Map<String, Value>) -> bool {
    let mut last_was_enum = false;
    for (k, v) in js_ordered_entries(fields) {
        if k.starts_with("index_") {
            continue;
        }
        if last_was_enum && k.ends_with("Values") {
            last_was_enum = false;
            continue;
        }
        if !fields.contains_key(&format!("index_{k}")) {
            return false;
        }
        last_was_enum = v == "enum";
    }
    true
}

async fn template(tx: &Tx, height: u64, ctx: &Ctx<'_>) -> Result<Effect, StoreError> {
    if tx.data.len() > MAX_TEMPLATE_BYTES {
        return Ok(skip(format!("template too large ({} bytes, at most {MAX_TEMPLATE_BYTES})", tx.data.len())));
    }
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&tx.data) else {
        return Ok(skip("template data is not a JSON object"));
    };
    if !template_fields_valid(&fields) {
        return Ok(skip("template fields: a field lacks its index_ entry (the original's validateTemplateFields)"));
    }
    let Some(name) = tx.template_name() else { return Ok(skip("template has no TemplateName tag")) };
    if let Err(e) = Template::from_fields(&tx.id, name, &fields) {
        return Ok(skip(format!("template fields: {e}")));
    }
    let Some(creator) = creator_of(tx, ctx).await? else { return Ok(skip("creator not indexed")) };
    if let Err(e) = verify::verify_template_tx(tx, &creator.public_key) {
        return Ok(skip(format!("template signature: {e}")));
    }
    let fields_string = js_stringify(&Value::Object(fields.clone()));
    // `fieldsInTemplate` as the original builds it: the position among the
    // named fields (not `index_<field>`) unless the value is an object.
    let mut fit = Map::new();
    let mut count = 0u64;
    for (k, v) in js_ordered_entries(&fields) {
        if k.starts_with("index_") || k.ends_with("Values") {
            continue;
        }
        let (ty, index) = match v {
            Value::Object(o) => (o.get("type").cloned().unwrap_or(Value::Null), o.get("index").cloned().unwrap_or(Value::Null)),
            other => (other.clone(), Value::from(count)),
        };
        fit.insert(k.clone(), json!({"type": ty, "index": index}));
        count += 1;
    }
    let mut data = Map::new();
    data.insert("TxId".into(), tx.id.clone().into());
    data.insert("creator".into(), tx.creator().unwrap_or_default().into());
    data.insert("creatorSig".into(), tx.creator_sig().unwrap_or_default().into());
    data.insert("template".into(), name.into());
    data.insert("fields".into(), fields_string.into());
    data.insert("fieldsInTemplate".into(), Value::Object(fit));
    data.insert("fieldsInTemplateCount".into(), count.into());
    for (k, v) in js_ordered_entries(&fields) {
        if v == "enum" {
            if let Some(values) = fields.get(&format!("{k}Values")) {
                data.insert(format!("{k}Values"), values.clone());
            }
        }
    }
    let doc = json!({
        "data": data,
        "oip": {
            "did": did(&tx.id), "didTx": did(&tx.id), "inArweaveBlock": height, "indexedAt": ctx.now_iso,
            "recordStatus": "original", "ver": tx.ver(), "creator": creator_json(&creator),
        }
    });
    ctx.templates.remove(&tx.id);
    match IndexedTemplate::from_value(&doc) {
        Some(t) => Ok(Effect::Template(t)),
        None => Ok(skip("template document incomplete")),
    }
}

/// The first item of the data, as the original reads registrations.
fn data_items(data: &str) -> Option<Vec<Value>> {
    match serde_json::from_str::<Value>(data).ok()? {
        Value::Array(a) => Some(a),
        v @ Value::Object(_) => Some(vec![v]),
        _ => None,
    }
}

/// `handle + digits[..k]` for the smallest k another organization has not
/// taken ([`super::handle::unique_handle`] over the store's answers). Only
/// organizations: the original's organization search works.
async fn unique_org_handle(ctx: &Ctx<'_>, txid: &str, handle: &str) -> Result<Result<String, HandleError>, StoreError> {
    let digits = handle_digits(txid);
    let mut taken = HashSet::new();
    for k in 1..=digits.len().min(MAX_HANDLE_TRIES) {
        let candidate = format!("{handle}{}", &digits[..k]);
        if !ctx.store.org_handle_taken(&candidate, &did(txid)).await? {
            break;
        }
        taken.insert(candidate);
    }
    Ok(super::handle::unique_handle(txid, handle, |h| taken.contains(h)))
}

fn str_of(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The Arweave address of an RSA modulus given as base64url.
fn address_of_modulus(n_b64url: &str) -> Option<String> {
    use base64::Engine as _;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n_b64url.trim_end_matches('=')).ok()?;
    Some(crate::arweave::jwk::address_of(&n))
}

async fn creator_registration(tx: &Tx, height: u64, ctx: &Ctx<'_>) -> Result<Effect, StoreError> {
    if tx.data.len() > MAX_REGISTRATION_BYTES {
        return Ok(skip(format!("registration too large ({} bytes)", tx.data.len())));
    }
    let Some(items) = data_items(&tx.data) else { return Ok(skip("registration data is not JSON")) };
    let first = items.first().cloned().unwrap_or(Value::Null);
    let positional = ctx.policy.bootstrap.iter().any(|b| b == &tx.id);
    let (address, public_key, raw_handle, data) = if positional {
        // The bootstrap registrations, read by position as the original does.
        let (Some(address), Some(key), Some(handle)) = (str_of(first.get("0")), str_of(first.get("1")), str_of(first.get("2"))) else {
            return Ok(skip("registration data lacks address, key or handle"));
        };
        let second = items.get(1).cloned().unwrap_or(Value::Null);
        let data = json!({
            "name": str_of(first.get("3")).unwrap_or_default(),
            "surname": str_of(second.get("0")).unwrap_or_default(),
            "language": if second.get("3") == Some(&json!(37)) { "en" } else { "" },
        });
        (address, key, handle, data)
    } else {
        // Later registrations go through the creatorRegistration and basic templates.
        let ids = expand::referenced_templates(&items);
        let templates = ctx.templates.load(ctx.store, &ids).await?;
        let expanded = match expand::expand(&items, &templates) {
            Ok(e) => e,
            Err(e) => return Ok(skip(format!("registration data: {e}"))),
        };
        let reg = expanded.data.get("creatorRegistration").and_then(Value::as_object).cloned().unwrap_or_default();
        let Some(basic) = expanded.data.get("basic").and_then(Value::as_object).cloned() else {
            return Ok(skip("registration data has no basic section"));
        };
        let (Some(address), Some(key), Some(handle)) = (str_of(reg.get("address")), str_of(reg.get("publicKey")), str_of(reg.get("handle"))) else {
            return Ok(skip("registration data lacks address, key or handle"));
        };
        let mut data = Map::new();
        data.insert("creatorHandle".into(), Value::Null); // filled below, kept first
        for (k, v) in [("name", basic.get("name")), ("surname", reg.get("surname")), ("language", basic.get("language")),
            ("description", reg.get("description")), ("youtube", reg.get("youtube")), ("x", reg.get("x")), ("instagram", reg.get("instagram"))]
        {
            if let Some(v) = v.filter(|v| !v.is_null() && *v != "") {
                data.insert(k.into(), v.clone());
            }
        }
        data.insert("raw".into(), json!({"basic": basic, "creatorRegistration": reg}));
        (address, key, handle, Value::Object(data))
    };
    // The registration proves its key signed it; the address must be that
    // key's, or anyone could register someone else's address (the original
    // did not check).
    if address_of_modulus(&public_key).as_deref() != Some(address.as_str()) {
        return Ok(skip("registration signature: the address is not the registering key's"));
    }
    if let Err(e) = verify::verify_record_tx(tx, &public_key) {
        return Ok(skip(format!("registration signature: {e}")));
    }
    // Handles as the original stores them: its uniqueness search looks at a
    // field no document has, so it always keeps the first digit.
    let handle = match super::handle::creator_handle_as_original(&tx.id, &raw_handle) {
        Ok(h) => h,
        Err(e) => return Ok(skip(format!("handle: {e}"))),
    };
    let creator = Creator { did_tx: did(&tx.id), did_address: did(&address), handle: handle.clone(), public_key };
    let mut data = data;
    if let Some(d) = data.as_object_mut().filter(|d| d.contains_key("creatorHandle")) {
        d.insert("creatorHandle".into(), handle.into());
    }
    let doc = json!({
        "data": data,
        "oip": {
            "recordType": "creatorRegistration", "did": did(&tx.id), "didTx": did(&tx.id), "inArweaveBlock": height,
            "indexedAt": ctx.now_iso, "ver": tx.ver(), "signature": tx.creator_sig(), "creator": creator_json(&creator),
        }
    });
    Ok(Effect::Creator(CreatorRow { creator, in_block: Some(height as i64), status: Some("original".into()), bootstrap: positional, doc: doc.to_string() }))
}

async fn organization(tx: &Tx, height: u64, ctx: &Ctx<'_>) -> Result<Effect, StoreError> {
    if tx.data.len() > MAX_REGISTRATION_BYTES {
        return Ok(skip(format!("organization too large ({} bytes)", tx.data.len())));
    }
    let Some(items) = data_items(&tx.data) else { return Ok(skip("organization data is not JSON")) };
    let find = |t: &str| items.iter().find(|i| i.get("t").and_then(Value::as_str) == Some(t)).cloned();
    let (Some(basic), Some(org)) = (find(ORG_BASIC_TEMPLATE), find(ORG_TEMPLATE)) else {
        return Ok(skip("organization data lacks its basic or organization item"));
    };
    let Some(creator) = creator_of(tx, ctx).await? else { return Ok(skip("creator not indexed")) };
    if let Err(e) = verify::verify_record_tx(tx, &creator.public_key) {
        return Ok(skip(format!("organization signature: {e}")));
    }
    let Some(raw_handle) = str_of(org.get("0")) else { return Ok(skip("organization has no handle")) };
    let handle = match unique_org_handle(ctx, &tx.id, &raw_handle).await? {
        Ok(h) => h,
        Err(e) => return Ok(skip(format!("handle: {e}"))),
    };
    // membershipPolicy: the enum index expanded through the organization template when indexed.
    let mut policy = org.get("3").cloned().unwrap_or(Value::Null);
    let templates = ctx.templates.load(ctx.store, &[ORG_TEMPLATE]).await?;
    if let (Some(t), Some(i)) = (templates.get(ORG_TEMPLATE), policy.as_u64()) {
        if let Some(values) = t.field("membership_policy").and_then(|f| f.enum_values.as_ref()) {
            if let Some(v) = values.get(i as usize) {
                policy = v.name.clone();
            }
        }
    }
    let organization = json!({
        "orgHandle": handle, "orgPublicKey": org.get("1"), "adminPublicKeys": org.get("2"),
        "membershipPolicy": policy, "metadata": org.get("4").cloned().unwrap_or(Value::Null),
    });
    // Absent values are left out, as JSON.stringify leaves out `undefined`.
    let mut data = Map::new();
    data.insert("orgHandle".into(), handle.clone().into());
    for (k, v) in [("name", basic.get("0")), ("description", basic.get("1")), ("date", basic.get("2")), ("language", basic.get("3")),
        ("nsfw", basic.get("6")), ("webUrl", basic.get("12")), ("orgPublicKey", org.get("1")), ("adminPublicKeys", org.get("2"))]
    {
        if let Some(v) = v {
            data.insert(k.into(), v.clone());
        }
    }
    data.insert("membershipPolicy".into(), policy.clone());
    data.insert("metadata".into(), org.get("4").cloned().unwrap_or(Value::Null));
    let doc = json!({
        "data": data,
        "oip": {
            "recordType": "organization", "did": did(&tx.id), "didTx": did(&tx.id), "inArweaveBlock": height,
            "indexedAt": ctx.now_iso, "ver": tx.ver(), "signature": tx.creator_sig(), "organization": organization,
            "creator": creator_json(&creator),
        }
    });
    Ok(Effect::Organization(OrganizationRow {
        did: did(&tx.id),
        handle,
        did_address: creator.did_address.clone(),
        in_block: Some(height as i64),
        doc: doc.to_string(),
    }))
}

/// `processRecordForElasticsearch`: strings that hold JSON arrays become arrays.
pub fn json_string_arrays(v: &mut Value) {
    match v {
        Value::String(s) if s.starts_with('[') && s.ends_with(']') => {
            if let Ok(Value::Array(a)) = serde_json::from_str::<Value>(s) {
                *v = Value::Array(a);
                json_string_arrays(v);
            }
        }
        Value::Object(o) => o.values_mut().for_each(json_string_arrays),
        Value::Array(a) => a.iter_mut().for_each(json_string_arrays),
        _ => {}
    }
}

async fn record(tx: &Tx, height: u64, ctx: &Ctx<'_>) -> Result<Effect, StoreError> {
    let Some(creator) = creator_of(tx, ctx).await? else { return Ok(skip("creator not indexed")) };
    let (items, first) = match serde_json::from_str::<Value>(&tx.data) {
        Ok(Value::Array(a)) => {
            let first = a.first().cloned().unwrap_or(Value::Null);
            (a, first)
        }
        // A delete may be a bare object; anything else must be an array (the original throws).
        Ok(v @ Value::Object(_)) => (Vec::new(), v),
        _ => return Ok(skip("record data is not a JSON array")),
    };
    // `hasOwnProperty('delete' | 'deleteTemplate')`, as the original.
    let is_delete = first.as_object().is_some_and(|o| o.contains_key("delete") || o.contains_key("deleteTemplate"));
    if !is_delete && items.is_empty() {
        return Ok(skip("record data is not a JSON array"));
    }
    let signature_ok = match ctx.policy.signatures {
        SignatureMode::Off => true,
        _ => verify::verify_record_tx(tx, &creator.public_key).is_ok(),
    };
    if !signature_ok && ctx.policy.signatures == SignatureMode::Require {
        return Ok(skip("record signature does not verify"));
    }
    if is_delete {
        return delete(tx, height, ctx, &creator, first).await;
    }
    let record_type = tx.record_type().unwrap_or_default();
    if !record_type.is_empty() && !ctx.policy.types.admits(record_type) {
        return Ok(skip(format!("record type {record_type:?} is not indexed here")));
    }
    if !tx.record_version_accepted() {
        return Ok(skip(format!("Ver {:?} is not accepted for records", tx.ver())));
    }
    if items.len() > expand::MAX_ITEMS {
        return Ok(skip(format!("data: more than {} items", expand::MAX_ITEMS)));
    }
    let ids = expand::referenced_templates(&items);
    let templates = ctx.templates.load(ctx.store, &ids).await?;
    let expanded = match expand::expand(&items, &templates) {
        Ok(e) => e,
        Err(e) => return Ok(skip(format!("data: {e}"))),
    };
    let info = CreatorInfo {
        creator_handle: Some(creator.handle.clone()),
        did_address: Some(creator.did_address.clone()),
        did_tx: Some(creator.did_tx.clone()),
        public_key: Some(creator.public_key.clone()),
    };
    let mut doc = expand::record_document(tx, expanded, &info, height, &ctx.now_iso);
    if let Some(data) = doc.get_mut("data") {
        json_string_arrays(data);
    }
    if !signature_ok {
        doc["oip"]["signatureValid"] = Value::Bool(false);
    }
    match IndexedRecord::from_value(&doc) {
        Ok(r) => Ok(Effect::Record(r)),
        Err(e) => Ok(skip(format!("data: {e}"))),
    }
}

async fn delete(tx: &Tx, height: u64, ctx: &Ctx<'_>, creator: &Creator, item: Value) -> Result<Effect, StoreError> {
    // Checked whatever `--record-signatures` says: `mark` cannot mark a removal
    // and `off` must not let anyone remove anything.
    let signature_ok = verify::verify_record_tx(tx, &creator.public_key).is_ok();
    let is_template = item.get("deleteTemplate").is_some();
    let body = item.get("deleteTemplate").or_else(|| item.get("delete")).cloned().unwrap_or(Value::Null);
    let target = str_of(body.get("didTx")).or_else(|| str_of(body.get("did")));
    let mut refused = None;
    let target = match target {
        None => None,
        Some(_) if !signature_ok => {
            refused = Some("delete signature does not verify");
            None
        }
        Some(t) => match ctx.store.owner_of(&t).await? {
            Some(owner) if owner == creator.did_address => Some(t),
            Some(_) => {
                refused = Some("delete refused: the deleter is not the target's creator");
                None
            }
            None => None,
        },
    };
    let ty = if is_template { "deleteTemplate" } else { "delete" };
    let mut oip = json!({
        "recordType": ty, "did": did(&tx.id), "didTx": did(&tx.id), "inArweaveBlock": height,
        "indexedAt": ctx.now_iso, "ver": tx.ver(), "signature": tx.creator_sig(), "creator": creator_json(creator),
    });
    if let Some(r) = refused {
        oip["deleteRefused"] = Value::String(r.into());
    }
    let doc = json!({"data": item, "oip": oip});
    let message = match IndexedRecord::from_value(&doc) {
        Ok(r) => r,
        Err(e) => return Ok(skip(format!("data: {e}"))),
    };
    // As the original's indexer, a `deleteTemplate` removes a record or
    // organization with that DID, never a template: records still use it.
    Ok(Effect::Delete { message, target })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_type_policy_as_the_original() {
        let all = TypeFilter::from_env_values("ALL", "", "");
        assert!(all.admits("post"));
        let white = TypeFilter::from_env_values("whitelist", " post , recipe ,", "");
        assert!(white.admits("post") && white.admits("recipe") && !white.admits("image"));
        assert!(white.admits("delete") && white.admits("deleteTemplate"), "deletes always pass");
        let black = TypeFilter::from_env_values("blacklist", "post", "image, video");
        assert!(black.admits("post") && !black.admits("image") && !black.admits(" video "));
        assert_eq!(TypeFilter::from_env_values("nonsense", "post", ""), TypeFilter::All, "unknown modes fall back to all");
    }

    #[test]
    fn skip_reasons_have_labels() {
        for (reason, label) in [
            ("data too large (over 10 bytes)", "too_large"),
            ("data fetch failed: gateway x: timed out", "fetch_failed"),
            ("creator not indexed", "creator_unknown"),
            ("template signature: signature mismatch", "bad_signature"),
            ("record signature does not verify", "bad_signature"),
            ("data: unknown template abc", "bad_data"),
            ("template fields: no name", "template"),
            ("record type \"image\" is not indexed here", "type_filtered"),
            ("Type is Some(\"Foo\"), not Record or Template", "not_oip_type"),
            ("Ver \"0.7\" is not accepted for records", "version"),
            ("handle: every handle from \"x\" is taken", "handle"),
            ("something new", "other"),
        ] {
            assert_eq!(reason_label(reason), label, "{reason}");
        }
    }

    #[test]
    fn json_strings_holding_arrays_become_arrays() {
        let mut v = json!({"a": "[1,2]", "b": "[not json]", "c": {"d": "[\"x\"]"}, "e": "plain"});
        json_string_arrays(&mut v);
        assert_eq!(v, json!({"a": [1, 2], "b": "[not json]", "c": {"d": ["x"]}, "e": "plain"}));
    }
}
