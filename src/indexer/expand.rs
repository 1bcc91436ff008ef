//! Records between their compressed wire form and the indexed document.
//!
//! Its job: a record's data on Arweave is a JSON array of items
//! `{"t": <templateTxId>, "<index>": value, …}`; each template maps indices to
//! field names and types. [`expand`] turns the items into the original's
//! `data{<templateName>:{<field>: value}}` exactly as its `expandData` /
//! `translateOIPDataToJSON` (`helpers/elasticsearch.js`) do, and
//! [`record_document`] wraps that in the original's `oip{…}` block
//! (`processNewRecord`). [`compress`] is the inverse, for publishing:
//! field names → indices, enum names → their position, DIDs kept as DIDs.
//!
//! Conversions, as the original: `uint64` → `parseInt(v, 10)`, `float` →
//! `parseFloat(v)` (both only from a string or number; anything else is
//! dropped), `repeated …` → the array converted element-wise (`…uint64…` →
//! parseInt, `…float…` → parseFloat, others as they are; a non-array is
//! dropped), `enum` with a number n → `<field>Values[n].name` (null when out of
//! range or empty), everything else (`string`, `bool`, `long`, `dref`,
//! `repeated dref`, …) as it is. Indices no field claims are dropped. Types
//! other than strings in a template count as "as it is" (the original throws
//! on some of them).
//!
//! Deliberate differences: an item whose template is unknown, an item without
//! `t`, and data that is not an array are errors here (the original logs and
//! drops the item, or the record); delete items (`{"delete": …}`) are skipped
//! as in the original.
//!
//! Its bounds: at most [`MAX_ITEMS`] items, [`MAX_FIELDS_PER_ITEM`] keys per
//! item, [`MAX_REPEATED_LEN`] elements per repeated field, templates of at most
//! [`MAX_TEMPLATE_KEYS`] keys and [`MAX_ENUM_VALUES`] enum values. The data's
//! size is capped by the caller before parsing (the gateway client's body
//! limit; [`crate::oip::model::MAX_RECORD_BYTES`] for what is stored).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::js::{
    js_number_to_string, js_ordered_entries, js_parse_float, js_parse_int_decimal, js_to_string, number_to_value,
};
use super::tx::Tx;

/// Bound: items in one record (templates it combines). Real records use 2–6.
pub const MAX_ITEMS: usize = 64;
/// Bound: keys in one item (fields plus `t`). The largest real templates have
/// a few dozen fields.
pub const MAX_FIELDS_PER_ITEM: usize = 256;
/// Bound: elements in one repeated field (tags, ingredients, citations).
pub const MAX_REPEATED_LEN: usize = 4096;
/// Bound: keys in a template's field definition (each field has a type and an
/// `index_` key, enums a `…Values` list too).
pub const MAX_TEMPLATE_KEYS: usize = 2048;
/// Bound: values of one enum (the `basic` template's language list has ~180).
pub const MAX_ENUM_VALUES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template has no data.TxId")]
    NoTxId,
    #[error("template {0} has no data.template (its name)")]
    NoName(String),
    #[error("template {0} has neither data.fields nor data.fieldsInTemplate")]
    NoFields(String),
    #[error("template {0}: data.fields is not a JSON object")]
    BadFields(String),
    #[error("template {tx_id} has {count} keys (at most {max})")]
    TooManyKeys { tx_id: String, count: usize, max: usize },
    #[error("template {tx_id}: enum {field} has {count} values (at most {max})")]
    TooManyEnumValues { tx_id: String, field: String, count: usize, max: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("record data is not JSON: {0}")]
    NotJson(String),
    #[error("record data is not a JSON array")]
    NotArray,
    #[error("record has {count} items (at most {max})")]
    TooManyItems { count: usize, max: usize },
    #[error("item {0} is not an object")]
    ItemNotObject(usize),
    #[error("item {0} names no template (no \"t\")")]
    NoTemplateRef(usize),
    #[error("template {0} is not known")]
    UnknownTemplate(String),
    #[error("item {item} has {count} keys (at most {max})")]
    TooManyFields { item: usize, count: usize, max: usize },
    #[error("field {field} has {len} elements (at most {max})")]
    RepeatedTooLong { field: String, len: usize, max: usize },
    #[error("the record has nothing to index")]
    NothingToIndex,
    // compress only
    #[error("record section {0:?} is not an object")]
    SectionNotObject(String),
    #[error("no template is named {0:?}")]
    UnknownTemplateName(String),
    #[error("more than one template is named {0:?}; name its txid")]
    AmbiguousTemplateName(String),
    #[error("template {template} has no field {field:?}")]
    UnknownField { template: String, field: String },
    #[error("{field}: {value:?} is not one of the enum's values")]
    UnknownEnumValue { field: String, value: String },
    #[error("{field}: a reference must be a DID string (did:…)")]
    NotADid { field: String },
}

/// One enum value, `{code, name}` as templates list them.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumValue {
    pub code: Value,
    pub name: Value,
}

/// One field of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// The type string (`string`, `uint64`, `enum`, `repeated dref`, …); `None`
    /// when the template gives something else.
    pub ty: Option<String>,
    /// The item key that carries this field: `String(fields["index_<name>"])`.
    pub index_key: String,
    /// For `enum` fields with a `<name>Values` array.
    pub enum_values: Option<Vec<EnumValue>>,
}

impl Field {
    fn is_repeated(&self) -> bool {
        self.ty.as_deref().is_some_and(|t| t.starts_with("repeated"))
    }

    fn is_dref(&self) -> bool {
        self.ty.as_deref().is_some_and(|t| t == "dref" || (t.starts_with("repeated") && t.contains("dref")))
    }
}

/// A template as expansion needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub tx_id: String,
    pub name: String,
    fields: Vec<Field>,
    /// index key → position in `fields` (the last field claiming a key wins).
    by_index: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

/// `String(v)` used as a property key (`indexToFieldMap[fields[indexKey]]`).
fn property_key(v: &Value) -> String {
    match v {
        Value::Number(n) => js_number_to_string(super::js::json_number_to_f64(n)),
        other => js_to_string(other),
    }
}

impl Template {
    /// From the raw field definition (`{"name":"string","index_name":0,
    /// "language":"enum","languageValues":[{code,name}],…}`), the text a
    /// template transaction carries and `data.fields` stores.
    pub fn from_fields(tx_id: &str, name: &str, fields: &Map<String, Value>) -> Result<Template, TemplateError> {
        if fields.len() > MAX_TEMPLATE_KEYS {
            return Err(TemplateError::TooManyKeys { tx_id: tx_id.to_owned(), count: fields.len(), max: MAX_TEMPLATE_KEYS });
        }
        let mut t = Template {
            tx_id: tx_id.to_owned(),
            name: name.to_owned(),
            fields: Vec::new(),
            by_index: HashMap::new(),
            by_name: HashMap::new(),
        };
        // `for (const fieldName in fields)`: JavaScript order; a key is a field
        // when `index_<key>` exists (null counts: it is not undefined).
        for (key, ty) in js_ordered_entries(fields) {
            let Some(index) = fields.get(&format!("index_{key}")) else { continue };
            let ty = ty.as_str().map(str::to_owned);
            let enum_values = match (ty.as_deref(), fields.get(&format!("{key}Values"))) {
                (Some("enum"), Some(Value::Array(values))) => {
                    if values.len() > MAX_ENUM_VALUES {
                        return Err(TemplateError::TooManyEnumValues {
                            tx_id: tx_id.to_owned(),
                            field: key.clone(),
                            count: values.len(),
                            max: MAX_ENUM_VALUES,
                        });
                    }
                    Some(
                        values
                            .iter()
                            .map(|v| EnumValue {
                                code: v.get("code").cloned().unwrap_or(Value::Null),
                                name: v.get("name").cloned().unwrap_or(Value::Null),
                            })
                            .collect(),
                    )
                }
                _ => None,
            };
            let index_key = property_key(index);
            let pos = t.fields.len();
            t.by_index.insert(index_key.clone(), pos);
            t.by_name.insert(key.clone(), pos);
            t.fields.push(Field { name: key.clone(), ty, index_key, enum_values });
        }
        Ok(t)
    }

    /// From a stored template document (the original's `templates` index
    /// shape, as our templates table keeps it): `data.TxId`, `data.template`,
    /// and `data.fields` (the definition as JSON text, or an object). Without
    /// `fields`, `data.fieldsInTemplate` is used — `{field: {type, index}}`
    /// with enum lists in `data.<field>Values`, or the flat form. Note the
    /// original fills `fieldsInTemplate.index` with a running count for
    /// plain-string definitions, which is only right when indices are
    /// sequential; it stores `fields` next to it, and that is preferred.
    pub fn from_stored(doc: &Value) -> Result<Template, TemplateError> {
        let data = doc.get("data").unwrap_or(&Value::Null);
        let tx_id = data.get("TxId").and_then(Value::as_str).ok_or(TemplateError::NoTxId)?;
        let name = data
            .get("template")
            .and_then(Value::as_str)
            .ok_or_else(|| TemplateError::NoName(tx_id.to_owned()))?;
        match data.get("fields") {
            Some(Value::String(text)) => {
                let parsed: Value = serde_json::from_str(text).map_err(|_| TemplateError::BadFields(tx_id.to_owned()))?;
                let obj = parsed.as_object().ok_or_else(|| TemplateError::BadFields(tx_id.to_owned()))?;
                Template::from_fields(tx_id, name, obj)
            }
            Some(Value::Object(obj)) => Template::from_fields(tx_id, name, obj),
            _ => {
                let fit = data
                    .get("fieldsInTemplate")
                    .and_then(Value::as_object)
                    .ok_or_else(|| TemplateError::NoFields(tx_id.to_owned()))?;
                let mut flat = Map::new();
                for (k, v) in fit {
                    match v {
                        Value::Object(o) if o.contains_key("type") => {
                            flat.insert(k.clone(), o.get("type").cloned().unwrap_or(Value::Null));
                            flat.insert(format!("index_{k}"), o.get("index").cloned().unwrap_or(Value::Null));
                            if let Some(values) = data.get(format!("{k}Values")) {
                                flat.insert(format!("{k}Values"), values.clone());
                            }
                        }
                        other => {
                            flat.insert(k.clone(), other.clone());
                        }
                    }
                }
                Template::from_fields(tx_id, name, &flat)
            }
        }
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn field_by_index(&self, key: &str) -> Option<&Field> {
        self.by_index.get(key).map(|&i| &self.fields[i])
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.by_name.get(name).map(|&i| &self.fields[i])
    }
}

/// The templates a record may use, by txid. Its size is what the caller puts
/// in: the templates a record references ([`referenced_templates`]).
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    by_txid: HashMap<String, Template>,
}

impl TemplateSet {
    pub fn new() -> Self {
        TemplateSet::default()
    }

    pub fn insert(&mut self, t: Template) {
        self.by_txid.insert(t.tx_id.clone(), t);
    }

    pub fn get(&self, tx_id: &str) -> Option<&Template> {
        self.by_txid.get(tx_id)
    }

    /// The one template of that name.
    pub fn by_name(&self, name: &str) -> Result<&Template, ExpandError> {
        let mut found = self.by_txid.values().filter(|t| t.name == name);
        match (found.next(), found.next()) {
            (Some(t), None) => Ok(t),
            (None, _) => Err(ExpandError::UnknownTemplateName(name.to_owned())),
            (Some(_), Some(_)) => Err(ExpandError::AmbiguousTemplateName(name.to_owned())),
        }
    }
}

impl FromIterator<Template> for TemplateSet {
    fn from_iter<I: IntoIterator<Item = Template>>(iter: I) -> Self {
        let mut s = TemplateSet::new();
        for t in iter {
            s.insert(t);
        }
        s
    }
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => {
            let x = super::js::json_number_to_f64(n);
            x != 0.0 && !x.is_nan()
        }
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A delete message item (`{"delete": …}` / `{"deleteTemplate": …}`), which
/// expansion skips.
pub fn is_delete_item(item: &Value) -> bool {
    item.get("delete").is_some_and(truthy) || item.get("deleteTemplate").is_some_and(truthy)
}

/// Parse record data into its items, within [`MAX_ITEMS`].
pub fn parse_items(data: &str) -> Result<Vec<Value>, ExpandError> {
    let v: Value = serde_json::from_str(data).map_err(|e| ExpandError::NotJson(e.to_string()))?;
    match v {
        Value::Array(items) if items.len() > MAX_ITEMS => {
            Err(ExpandError::TooManyItems { count: items.len(), max: MAX_ITEMS })
        }
        Value::Array(items) => Ok(items),
        _ => Err(ExpandError::NotArray),
    }
}

/// The distinct template txids the items reference, in order: what to load
/// into a [`TemplateSet`] before expanding.
pub fn referenced_templates(items: &[Value]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for t in items.iter().filter_map(|i| i.get("t")?.as_str()) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// `value` for a `uint64` / `float` field: from a string or number only.
fn scalar_number(value: &Value, parse: fn(&str) -> f64) -> Option<Value> {
    match value {
        Value::String(_) | Value::Number(_) => Some(number_to_value(parse(&js_to_string(value)))),
        _ => None,
    }
}

/// One item's fields, converted (`translateOIPDataToJSON` without its
/// bookkeeping keys). `None` for a field means "dropped".
fn convert(field: &Field, value: &Value) -> Result<Option<Value>, ExpandError> {
    let ty = field.ty.as_deref().unwrap_or("");
    if field.is_repeated() {
        let Value::Array(items) = value else { return Ok(None) };
        if items.len() > MAX_REPEATED_LEN {
            return Err(ExpandError::RepeatedTooLong { field: field.name.clone(), len: items.len(), max: MAX_REPEATED_LEN });
        }
        let conv: Option<fn(&str) -> f64> = if ty.contains("uint64") {
            Some(js_parse_int_decimal)
        } else if ty.contains("float") {
            Some(js_parse_float)
        } else {
            None
        };
        let out = items
            .iter()
            .map(|item| match conv {
                // parseInt/parseFloat take any value through String()
                Some(parse) => number_to_value(parse(&js_to_string(item))),
                None => item.clone(),
            })
            .collect();
        return Ok(Some(Value::Array(out)));
    }
    Ok(match ty {
        "uint64" => scalar_number(value, js_parse_int_decimal),
        "float" => scalar_number(value, js_parse_float),
        _ => match (&field.enum_values, value) {
            (Some(values), Value::Number(n)) => {
                let x = super::js::json_number_to_f64(n);
                let name = (x >= 0.0 && x.fract() == 0.0 && x < values.len() as f64)
                    .then(|| &values[x as usize].name)
                    .filter(|name| truthy(name));
                Some(name.cloned().unwrap_or(Value::Null))
            }
            _ => Some(value.clone()),
        },
    })
}

/// One item expanded with its template: its fields by name, in the item's
/// JavaScript key order.
pub fn expand_item(index: usize, item: &Map<String, Value>, template: &Template) -> Result<Map<String, Value>, ExpandError> {
    if item.len() > MAX_FIELDS_PER_ITEM {
        return Err(ExpandError::TooManyFields { item: index, count: item.len(), max: MAX_FIELDS_PER_ITEM });
    }
    let mut out = Map::new();
    for (key, value) in js_ordered_entries(item) {
        if key == "t" {
            continue;
        }
        let Some(field) = template.field_by_index(key) else { continue };
        // The original sets `template`/`templateTxId` on the same object and
        // deletes them at the end: fields of those names never survive.
        if field.name == "template" || field.name == "templateTxId" {
            continue;
        }
        if let Some(v) = convert(field, value)? {
            out.insert(field.name.clone(), v);
        }
    }
    Ok(out)
}

/// A record's items expanded: `data` for the document, and `templates`
/// (`{name: txid}`, for `oip.templates`).
#[derive(Debug, Clone, PartialEq)]
pub struct Expanded {
    pub data: Map<String, Value>,
    pub templates: Map<String, Value>,
}

/// Expand all items (`expandData` + the merge in `processNewRecord`): each
/// becomes `{<templateName>: fields}`; a later item of the same template
/// replaces an earlier one's fields, keeping its place.
pub fn expand(items: &[Value], templates: &TemplateSet) -> Result<Expanded, ExpandError> {
    if items.len() > MAX_ITEMS {
        return Err(ExpandError::TooManyItems { count: items.len(), max: MAX_ITEMS });
    }
    let mut data = Map::new();
    let mut used = Map::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else { return Err(ExpandError::ItemNotObject(i)) };
        if is_delete_item(item) {
            continue;
        }
        let t = obj.get("t").and_then(Value::as_str).ok_or(ExpandError::NoTemplateRef(i))?;
        let template = templates.get(t).ok_or_else(|| ExpandError::UnknownTemplate(t.to_owned()))?;
        let fields = expand_item(i, obj, template)?;
        data.insert(template.name.clone(), Value::Object(fields));
        used.insert(template.name.clone(), Value::String(t.to_owned()));
    }
    if data.is_empty() {
        return Err(ExpandError::NothingToIndex);
    }
    Ok(Expanded { data, templates: used })
}

/// Who published a record, as the indexed creator registration says
/// (`oip.creator`). Absent values are left out, as `JSON.stringify` leaves
/// out `undefined`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatorInfo {
    pub creator_handle: Option<String>,
    pub did_address: Option<String>,
    pub did_tx: Option<String>,
    pub public_key: Option<String>,
}

fn put(map: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        map.insert(key.to_owned(), v);
    }
}

/// The indexed document for an ordinary record, in the original's shape and
/// key order: `{data, oip{recordType, recordStatus:"original", did, didTx,
/// inArweaveBlock, indexedAt, ver, signature, templates, creator{creatorHandle,
/// didAddress, didTx, publicKey}}}`. `recordType` is the `RecordType` tag
/// (not a template name); `signature` the `CreatorSig` (spaces → `+`).
/// `indexed_at` is an ISO-8601 time (`new Date().toISOString()`).
pub fn record_document(tx: &Tx, expanded: Expanded, creator: &CreatorInfo, in_block: u64, indexed_at: &str) -> Value {
    let did = format!("did:arweave:{}", tx.id);
    let s = |v: Option<&str>| v.map(|v| Value::String(v.to_owned()));
    let mut c = Map::new();
    put(&mut c, "creatorHandle", s(creator.creator_handle.as_deref()));
    put(&mut c, "didAddress", s(creator.did_address.as_deref()));
    put(&mut c, "didTx", s(creator.did_tx.as_deref()));
    put(&mut c, "publicKey", s(creator.public_key.as_deref()));
    let mut oip = Map::new();
    put(&mut oip, "recordType", s(tx.record_type()));
    oip.insert("recordStatus".into(), "original".into());
    oip.insert("did".into(), Value::String(did.clone()));
    oip.insert("didTx".into(), Value::String(did));
    oip.insert("inArweaveBlock".into(), in_block.into());
    oip.insert("indexedAt".into(), indexed_at.into());
    put(&mut oip, "ver", s(tx.ver()));
    put(&mut oip, "signature", tx.creator_sig().map(Value::String));
    oip.insert("templates".into(), Value::Object(expanded.templates));
    oip.insert("creator".into(), Value::Object(c));
    let mut doc = Map::new();
    doc.insert("data".into(), Value::Object(expanded.data));
    doc.insert("oip".into(), Value::Object(oip));
    Value::Object(doc)
}

/// The original publisher's enum lookup: the code equal to the lower-cased
/// input, or the name equal to the input in title case.
fn title_case(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars.as_str().to_lowercase().chars()).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn enum_index(field: &Field, values: &[EnumValue], input: &str) -> Result<usize, ExpandError> {
    let as_str = |v: &Value| v.as_str().map(str::to_owned);
    // An exact name first (what expansion gives back), then the original's rule.
    if let Some(i) = values.iter().position(|v| as_str(&v.name).as_deref() == Some(input)) {
        return Ok(i);
    }
    let code = input.to_lowercase();
    let name = title_case(input);
    values
        .iter()
        .position(|v| as_str(&v.code).as_deref() == Some(code.as_str()) || as_str(&v.name).as_deref() == Some(name.as_str()))
        .ok_or_else(|| ExpandError::UnknownEnumValue { field: field.name.clone(), value: input.to_owned() })
}

fn is_did(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with("did:"))
}

/// Compress a record's `data` (`{<templateName>: {<field>: value}}`) into
/// wire items, one per section, in the data's order; each item's keys are
/// the indices in ascending order, then `t`. Templates are found by the
/// txid `ids` names for a section (a record's `oip.templates`), else by name
/// (which must then be unique in `templates`). Enum names (or codes) become
/// positions; references must already be DIDs (publishing nested records is
/// the publisher's job); `null` values are left out; unknown fields are errors.
pub fn compress(
    data: &Map<String, Value>,
    templates: &TemplateSet,
    ids: Option<&Map<String, Value>>,
) -> Result<Vec<Value>, ExpandError> {
    if data.len() > MAX_ITEMS {
        return Err(ExpandError::TooManyItems { count: data.len(), max: MAX_ITEMS });
    }
    let mut items = Vec::with_capacity(data.len());
    for (i, (section, fields)) in data.iter().enumerate() {
        let Value::Object(fields) = fields else { return Err(ExpandError::SectionNotObject(section.clone())) };
        if fields.len() >= MAX_FIELDS_PER_ITEM {
            return Err(ExpandError::TooManyFields { item: i, count: fields.len() + 1, max: MAX_FIELDS_PER_ITEM });
        }
        let template = match ids.and_then(|ids| ids.get(section)).and_then(Value::as_str) {
            Some(tx_id) => templates.get(tx_id).ok_or_else(|| ExpandError::UnknownTemplate(tx_id.to_owned()))?,
            None => templates.by_name(section)?,
        };
        let mut out = Map::new();
        for (name, value) in fields {
            let field = template.field(name).ok_or_else(|| ExpandError::UnknownField {
                template: template.name.clone(),
                field: name.clone(),
            })?;
            if value.is_null() {
                continue;
            }
            let wire = match (&field.enum_values, value) {
                (Some(values), Value::String(s)) => Value::from(enum_index(field, values, s)?),
                _ if field.is_dref() && field.is_repeated() => match value {
                    Value::Array(a) if a.len() > MAX_REPEATED_LEN => {
                        return Err(ExpandError::RepeatedTooLong { field: name.clone(), len: a.len(), max: MAX_REPEATED_LEN });
                    }
                    Value::Array(a) if a.iter().all(is_did) => value.clone(),
                    _ => return Err(ExpandError::NotADid { field: name.clone() }),
                },
                _ if field.is_dref() => {
                    if !is_did(value) {
                        return Err(ExpandError::NotADid { field: name.clone() });
                    }
                    value.clone()
                }
                (_, Value::Array(a)) if a.len() > MAX_REPEATED_LEN => {
                    return Err(ExpandError::RepeatedTooLong { field: name.clone(), len: a.len(), max: MAX_REPEATED_LEN });
                }
                _ => value.clone(),
            };
            out.insert(field.index_key.clone(), wire);
        }
        // JavaScript key order (indices ascending), `t` last.
        let mut item: Map<String, Value> =
            js_ordered_entries(&out).into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        item.insert("t".into(), Value::String(template.tx_id.clone()));
        items.push(Value::Object(item));
    }
    Ok(items)
}

#[cfg(test)]
mod tests;
