//! What goes on chain: a record, template or delete message as the data and
//! tags of one Arweave data item, with the creator signature in the original's
//! message formats (the inverse of what [`crate::indexer::verify`] checks).
//!
//! - records: data `[{"t": <templateTxId>, "<index>": value…}, …]` from
//!   [`crate::indexer::expand::compress`]; tags `Content-Type, Index-Method,
//!   Ver, Type: Record, RecordType, Creator`; `CreatorSig` over
//!   `JSON.stringify(tags) + data`.
//! - templates: data `JSON.stringify(fields)`; tags with `Type: Template` and
//!   `TemplateName` before `Creator`; `CreatorSig` over
//!   `JSON.stringify(JSON.parse(data)) + JSON.stringify(tags)`.
//! - deletes: data `[{"delete": {"did": <did>}}]`, `RecordType: delete`.
//!
//! The signature: RSA-PSS, SHA-256, 32-byte salt, with the wallet's key,
//! standard base64 (as `signMessage` encodes it). Pure functions: no I/O.
//! Bounds: the caller caps the record ([`crate::oip::model::MAX_RECORD_BYTES`]);
//! compression keeps [`crate::indexer::expand`]'s item and field bounds.

use base64::Engine as _;
use rsa::pss::SigningKey;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use serde_json::{json, Map, Value};

use crate::arweave::jwk::ArweaveWallet;
use crate::indexer::tx::Tag;
use crate::indexer::verify::{record_message, template_message, VerifyError};

/// The protocol version the original publishes.
pub const OIP_VERSION: &str = "0.8.0";

/// PSS salt length of creator signatures (WebCrypto's; verifiers detect it).
const SALT_BYTES: usize = 32;

/// A signed OIP payload: the data item's data and its tags (`CreatorSig` last).
#[derive(Debug, Clone, PartialEq)]
pub struct Signed {
    pub data: String,
    pub tags: Vec<Tag>,
}

impl Signed {
    pub fn creator_sig(&self) -> &str {
        self.tags.last().map_or("", |t| t.value.as_str())
    }
}

/// The creator signature of `message`: RSA-PSS SHA-256, standard base64.
pub fn creator_sig(wallet: &ArweaveWallet, message: &[u8]) -> String {
    let key = SigningKey::<rsa::sha2::Sha256>::new_with_salt_len(wallet.private_key().clone(), SALT_BYTES);
    let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
    base64::engine::general_purpose::STANDARD.encode(key.sign_with_rng(&mut rng, message).to_bytes())
}

fn base_tags(wallet: &ArweaveWallet, ty: &str, name_tag: (&str, &str)) -> Vec<Tag> {
    vec![
        Tag::new("Content-Type", "application/json"),
        Tag::new("Index-Method", "OIP"),
        Tag::new("Ver", OIP_VERSION),
        Tag::new("Type", ty),
        Tag::new(name_tag.0, name_tag.1),
        Tag::new("Creator", wallet.address()),
    ]
}

/// A record of `record_type` whose compressed items are `items`.
pub fn record(wallet: &ArweaveWallet, record_type: &str, items: &[Value]) -> Signed {
    let data = Value::Array(items.to_vec()).to_string();
    let mut tags = base_tags(wallet, "Record", ("RecordType", record_type));
    let sig = creator_sig(wallet, record_message(&tags, &data).as_bytes());
    tags.push(Tag::new("CreatorSig", sig));
    Signed { data, tags }
}

/// A template named `name` with the field definition `fields`.
pub fn template(wallet: &ArweaveWallet, name: &str, fields: &Map<String, Value>) -> Result<Signed, VerifyError> {
    let data = Value::Object(fields.clone()).to_string();
    let mut tags = base_tags(wallet, "Template", ("TemplateName", name));
    let message = template_message(&data, &tags)?;
    let sig = creator_sig(wallet, message.as_bytes());
    tags.push(Tag::new("CreatorSig", sig));
    Ok(Signed { data, tags })
}

/// A delete message for `did` (the original's `{"delete": {"did": …}}`).
pub fn delete(wallet: &ArweaveWallet, did: &str) -> Signed {
    record(wallet, "delete", &[json!({"delete": {"did": did}})])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arweave::test_vectors::JWK;
    use crate::indexer::expand::{compress, expand, parse_items, Template, TemplateSet};
    use crate::indexer::tx::Tx;
    use crate::indexer::verify::{verify_record_tx, verify_template_tx};

    fn wallet() -> ArweaveWallet {
        ArweaveWallet::from_jwk_json(JWK.as_bytes()).unwrap()
    }

    fn tx(s: &Signed) -> Tx {
        Tx { id: "x".repeat(43), owner_address: None, tags: s.tags.clone(), block_height: Some(1), block_timestamp: None, data: s.data.clone() }
    }

    fn modulus(w: &ArweaveWallet) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(w.owner())
    }

    #[test]
    fn records_verify_as_the_indexer_checks_them_and_round_trip() {
        let w = wallet();
        let fields = json!({"name": "string", "index_name": 0, "tagItems": "repeated string", "index_tagItems": 1,
            "language": "enum", "index_language": 2, "languageValues": [{"code": "en", "name": "English"}, {"code": "fr", "name": "French"}],
            "image": "dref", "index_image": 3});
        let basic = Template::from_fields("T1", "basic", fields.as_object().unwrap()).unwrap();
        let set: TemplateSet = [basic].into_iter().collect();
        let record = json!({"basic": {"name": "Hi", "tagItems": ["a", "b"], "language": "French", "image": "did:arweave:abc"}});
        let items = compress(record.as_object().unwrap(), &set, None).unwrap();
        assert_eq!(items[0], json!({"0": "Hi", "1": ["a", "b"], "2": 1, "3": "did:arweave:abc", "t": "T1"}));
        let s = super::record(&w, "post", &items);
        let names: Vec<&str> = s.tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["Content-Type", "Index-Method", "Ver", "Type", "RecordType", "Creator", "CreatorSig"]);
        assert_eq!(s.tags[5].value, w.address());
        verify_record_tx(&tx(&s), &modulus(&w)).expect("the indexer accepts the signature");
        // a changed byte breaks it
        let mut bad = s.clone();
        bad.data = bad.data.replace("Hi", "Ho");
        assert!(verify_record_tx(&tx(&bad), &modulus(&w)).is_err());
        // expanding what was compressed gives back the record
        let back = expand(&parse_items(&s.data).unwrap(), &set).unwrap();
        assert_eq!(Value::Object(back.data), record);
    }

    #[test]
    fn templates_and_deletes_verify() {
        let w = wallet();
        let fields = json!({"title": "string", "index_title": 0});
        let s = super::template(&w, "note", fields.as_object().unwrap()).unwrap();
        assert_eq!(s.tags[4], Tag::new("TemplateName", "note"));
        verify_template_tx(&tx(&s), &modulus(&w)).expect("template signature");
        let d = super::delete(&w, "did:arweave:abc");
        assert_eq!(d.data, r#"[{"delete":{"did":"did:arweave:abc"}}]"#);
        verify_record_tx(&tx(&d), &modulus(&w)).expect("delete signature");
    }
}
