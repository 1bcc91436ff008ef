use super::*;
use crate::indexer::fixtures::{self, NODE_TEMPLATE};
use rsa::pss::SigningKey;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};

/// The modulus a creator registration carries in its first item's `"1"`.
fn registration_key(tx: &Tx) -> String {
    let items: Value = serde_json::from_str(&tx.data).unwrap();
    items[0]["1"].as_str().unwrap().to_owned()
}

/// Maximum PSS salt for SHA-256 and a `bits`-bit modulus: emLen - hLen - 2.
fn max_salt(bits: usize) -> usize {
    (bits - 1).div_ceil(8) - 32 - 2
}

#[test]
fn scribe_registration_verifies_as_given() {
    let tx = fixtures::scribe();
    let key = registration_key(&tx);
    assert_eq!(verify_record_tx(&tx, &key), Ok(()));
    // signed by Node with the maximum salt length, not 32
    let msg = creator_registration_message(tx.signed_tags(), &tx.data);
    let sig = tx.creator_sig().unwrap();
    assert_eq!(verify_signature_with_salt_len(msg.as_bytes(), &sig, &key, Some(max_salt(4096))), Ok(()));
    assert_eq!(verify_signature_with_salt_len(msg.as_bytes(), &sig, &key, Some(32)), Err(VerifyError::Mismatch));
}

#[test]
fn player_registration_as_hard_coded_is_rejected_cleanly() {
    let tx = fixtures::player();
    let sig = tx.creator_sig().unwrap();
    assert_eq!(sig.len(), 683);
    let key = registration_key(&tx);
    // 682 base64 characters before the padding: 511 bytes, not the key's 512
    assert_eq!(verify_record_tx(&tx, &key), Err(VerifyError::SignatureLength { got: 511, want: 512 }));
}

#[test]
fn player_registration_verifies_with_the_lost_plus_restored() {
    let mut tx = fixtures::player();
    let last = tx.tags.len() - 1;
    let sig = &tx.tags[last].value;
    assert_eq!(&sig[428..438], "NB6d+XZVGO");
    assert_eq!(&sig[432..433], "+");
    let restored = format!("{}+{}", &sig[..432], &sig[432..]);
    assert_eq!(restored.len(), 684);
    assert_eq!(&restored[428..439], "NB6d++XZVGO");
    tx.tags[last].value = restored.clone();
    let key = registration_key(&tx);
    assert_eq!(verify_record_tx(&tx, &key), Ok(()));
    // a WebCrypto-style signature: salt length 32
    let msg = record_message(tx.signed_tags(), &tx.data);
    assert_eq!(verify_signature_with_salt_len(msg.as_bytes(), &restored, &key, Some(32)), Ok(()));
    assert_eq!(
        verify_signature_with_salt_len(msg.as_bytes(), &restored, &key, Some(max_salt(4096))),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn signature_spaces_and_url_safe_alphabet_are_tolerated() {
    let mut tx = fixtures::scribe();
    let key = registration_key(&tx);
    let last = tx.tags.len() - 1;
    let sig = tx.tags[last].value.clone();
    assert!(sig.contains('+'));
    // a gateway that decoded the tag as form data: '+' became ' '
    tx.tags[last].value = sig.replace('+', " ");
    assert_eq!(verify_record_tx(&tx, &key), Ok(()));
    let url_safe = sig.replace('+', "-").replace('/', "_").trim_end_matches('=').to_owned();
    let msg = record_message(tx.signed_tags(), &tx.data);
    assert_eq!(verify_signature(msg.as_bytes(), &url_safe, &key), Ok(()));
}

#[test]
fn tampering_is_a_mismatch() {
    let tx = fixtures::scribe();
    let key = registration_key(&tx);
    let mut t = tx.clone();
    t.data = t.data.replace("Scribe", "Scribf");
    assert_eq!(verify_record_tx(&t, &key), Err(VerifyError::Mismatch));
    let mut t = tx.clone();
    t.tags[4].value = "post".into();
    assert_eq!(verify_record_tx(&t, &key), Err(VerifyError::Mismatch));
    // the other creator's key
    let other = registration_key(&fixtures::player());
    assert_eq!(verify_record_tx(&tx, &other), Err(VerifyError::Mismatch));
}

#[test]
fn node_signed_template_verifies() {
    let f: Value = serde_json::from_str(NODE_TEMPLATE).unwrap();
    let data = f["data"].as_str().unwrap();
    let n = f["n"].as_str().unwrap();
    let tags: Vec<Tag> = serde_json::from_value(f["tags"].clone()).unwrap();
    let msg = template_message(data, &tags).unwrap();
    assert_eq!(msg, f["msg"].as_str().unwrap(), "the message node signed");
    assert_eq!(verify_signature(msg.as_bytes(), f["sig"].as_str().unwrap(), n), Ok(()));
    assert_eq!(verify_signature(msg.as_bytes(), f["sig32"].as_str().unwrap(), n), Ok(()));
    assert_eq!(
        verify_signature_with_salt_len(msg.as_bytes(), f["sig32"].as_str().unwrap(), n, Some(32)),
        Ok(())
    );
    // through the transaction: CreatorSig last, as published
    let mut all = tags.clone();
    all.push(Tag::new("CreatorSig", f["sig"].as_str().unwrap()));
    let tx = fixtures::tx("t", 1, &[], data);
    let tx = Tx { tags: all, ..tx };
    assert_eq!(verify_template_tx(&tx, n), Ok(()));
    // the record form of the same bytes is a different message
    assert_eq!(verify_record_tx(&tx, n), Err(VerifyError::Mismatch));
    let bad = Tx { data: "{not json".into(), ..tx };
    assert!(matches!(verify_template_tx(&bad, n), Err(VerifyError::TemplateJson(_))));
}

#[test]
fn tags_serialise_like_json_stringify() {
    // node: JSON.stringify([{name:'a"b',value:'c\\d/é\u2028\n'}])
    let tags = [Tag::new("a\"b", "c\\d/é\u{2028}\n"), Tag::new("", "")];
    assert_eq!(tags_json(&tags), "[{\"name\":\"a\\\"b\",\"value\":\"c\\\\d/é\u{2028}\\n\"},{\"name\":\"\",\"value\":\"\"}]");
    assert_eq!(tags_json(&[]), "[]");
}

#[test]
fn bad_keys_and_signatures_are_errors_not_panics() {
    let tx = fixtures::scribe();
    let key = registration_key(&tx);
    let msg = b"m";
    assert_eq!(verify_signature(msg, "AAAA", "not*base64"), Err(VerifyError::KeyEncoding));
    assert!(matches!(verify_signature(msg, "AAAA", ""), Err(VerifyError::Key(_))));
    assert!(matches!(verify_signature(msg, "AAAA", "AAAA"), Err(VerifyError::Key(_))));
    // an even modulus of a plausible size
    let even = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfeu8; 256]);
    assert!(matches!(verify_signature(msg, "AAAA", &even), Err(VerifyError::Key(_))));
    // a modulus above the bound
    let huge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xffu8; 1025]);
    assert!(matches!(verify_signature(msg, "AAAA", &huge), Err(VerifyError::Key(_))));
    assert_eq!(verify_signature(msg, "!!!!", &key), Err(VerifyError::SignatureEncoding));
    assert_eq!(verify_signature(msg, "", &key), Err(VerifyError::SignatureLength { got: 0, want: 512 }));
    assert_eq!(verify_signature(msg, "A", &key), Err(VerifyError::SignatureEncoding));
    // right length, all ones: at or above the modulus
    let ones = base64::engine::general_purpose::STANDARD.encode([0xffu8; 512]);
    assert_eq!(verify_signature(msg, &ones, &key), Err(VerifyError::Mismatch));
    let zeros = base64::engine::general_purpose::STANDARD.encode([0u8; 512]);
    assert_eq!(verify_signature(msg, &zeros, &key), Err(VerifyError::Mismatch));
    let no_sig = Tx { tags: tx.tags[..tx.tags.len() - 1].to_vec(), ..tx };
    assert_eq!(verify_record_tx(&no_sig, &key), Err(VerifyError::NoSignature));
}

#[test]
fn round_trip_with_generated_key() {
    let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
    let private = rsa::PrivateKey::new(&mut rng, 2048).expect("key generation");
    let public = private.to_public_key();
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(rsa::traits::PublicKeyParts::n(&public).to_be_bytes());
    let tags = [Tag::new("Index-Method", "OIP"), Tag::new("Type", "Record")];
    let msg = record_message(&tags, r#"[{"0":"x","t":"T"}]"#);
    for salt in [max_salt(2048), 32] {
        let signer = SigningKey::<Sha256>::new_with_salt_len(private.clone(), salt);
        let sig = base64::engine::general_purpose::STANDARD.encode(signer.sign_with_rng(&mut rng, msg.as_bytes()).to_bytes());
        assert_eq!(verify_signature(msg.as_bytes(), &sig, &n), Ok(()), "salt {salt}");
        assert_eq!(verify_signature_with_salt_len(msg.as_bytes(), &sig, &n, Some(salt)), Ok(()));
        let tampered = msg.replace("\"x\"", "\"y\"");
        assert_eq!(verify_signature(tampered.as_bytes(), &sig, &n), Err(VerifyError::Mismatch));
    }
}
