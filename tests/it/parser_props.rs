//! Property tests over the parsers that face the network: the `Range` evaluator,
//! the path decoder/resolver, the records query parser and record JSON import.
//! None may panic on any input, and each keeps its invariant: a served range lies
//! within the file; a resolved path lies under the root; a parsed query is within
//! its documented bounds; an imported record is whole or refused.

use std::path::Path;

use oipd::http::range::{evaluate, RangeOutcome};
use oipd::oip::query;
use proptest::prelude::*;

/// Range headers: random bytes, and random but plausible `bytes=` specs.
fn range_header() -> impl Strategy<Value = Vec<u8>> {
    let num = prop_oneof![Just(String::new()), (0u64..200).prop_map(|n| n.to_string()), any::<u64>().prop_map(|n| n.to_string()), "[0-9]{18,30}"];
    let spec = (num.clone(), prop_oneof![Just("-"), Just(""), Just("--"), Just(" - ")], num).prop_map(|(a, d, b)| format!("{a}{d}{b}"));
    let specs = prop::collection::vec(spec, 0..40).prop_map(|v| v.join(","));
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (prop_oneof![Just("bytes="), Just("BYTES="), Just("bytes ="), Just("items="), Just("")], specs).prop_map(|(u, s)| format!("{u}{s}").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, .. ProptestConfig::default() })]

    #[test]
    fn ranges_are_always_within_the_file(h in range_header(), size in prop_oneof![Just(0u64), 1u64..1000, any::<u64>()], max in 1usize..40) {
        match evaluate(&h, size, max) {
            RangeOutcome::Partial(ranges) => {
                prop_assert!(!ranges.is_empty() && ranges.len() <= max);
                for r in &ranges {
                    prop_assert!(r.start <= r.end && r.end < size, "{:?} of {}", r, size);
                    let cr = r.content_range(size);
                    let total = format!("/{}", size);
                    prop_assert!(cr.starts_with("bytes ") && cr.ends_with(&total));
                }
            }
            RangeOutcome::Unsatisfiable => {}
            RangeOutcome::Full => {}
        }
    }

    #[test]
    fn decoded_paths_are_plain_and_relative(raw in prop_oneof![
        "[a-zA-Z0-9._%/\\\\-]{0,64}",
        prop::collection::vec(prop_oneof![Just("..".to_string()), Just("%2e".to_string()), Just("%2f".to_string()), Just("%5c".to_string()), Just("%00".to_string()), Just("/".to_string()), Just(".".to_string()), Just("%c0%ae".to_string()), "[a-z]{1,4}"], 0..20).prop_map(|v| v.concat()),
        any::<String>(),
    ]) {
        if let Ok(p) = oipd::http::safe_path::decode(&raw) {
            prop_assert!(p.is_relative());
            for c in p.components() {
                match c {
                    std::path::Component::Normal(n) => {
                        let n = n.to_string_lossy();
                        prop_assert!(!n.starts_with('.') && !n.contains('\\') && !n.contains('\0'), "{raw:?} → {p:?}");
                    }
                    other => prop_assert!(false, "{raw:?} → {other:?}"),
                }
            }
        }
    }

    #[test]
    fn query_parser_never_panics_and_respects_bounds(pairs in prop::collection::vec((
        prop_oneof![
            Just("limit"), Just("page"), Just("resolveDepth"), Just("search"), Just("sortBy"), Just("exactMatch"),
            Just("tags"), Just("tagsMatchMode"), Just("dateStart"), Just("dateEnd"), Just("recordType"), Just("did"),
            Just("fieldName"), Just("fieldSearch"), Just("fieldMatchMode"), Just("summarizeTags"), Just("tagCount"),
            Just("tagPage"), Just("source"), Just("inArweaveBlock"), Just("noDuplicates"), Just("resolveNamesOnly"),
            Just("exerciseNames"), Just("ingredientNames"), Just("includeSigs"), Just("hideNullValues"), Just("x"),
            Just("scheduledOn"), Just("equipmentRequired"), Just("exerciseType"), Just("cuisine"), Just("model"),
            Just("exerciseDIDs"), Just("didTxRef"), Just("hasAudio"), Just("searchMatchMode"), Just("equipmentMatchMode")
        ].prop_map(str::to_owned),
        prop_oneof![any::<String>(), "-?[0-9]{0,25}", "-?[0-9]{1,20}-[0-9]{1,3}-[0-9]{1,3}", "[a-z:,]{0,40}", "\\{[\"a-z.:0-9,\\[\\]{} ]{0,60}\\}"],
    ), 0..12)) {
        if let Ok(q) = query::parse(&pairs, 5) {
            prop_assert!(q.limit <= query::MAX_LIMIT);
            prop_assert!(q.offset() <= query::MAX_LIMIT as u64 * query::MAX_PAGE as u64);
        }
    }

    #[test]
    fn raw_query_strings_never_panic(raw in prop_oneof![any::<String>(), "[a-zA-Z=&%0-9]{0,200}"]) {
        if let Ok(pairs) = query::pairs(&raw) {
            let _ = query::parse(&pairs, 5);
        }
    }

    #[test]
    fn record_import_is_whole_or_refused(doc in arb_json(4)) {
        // Either a whole IndexedRecord or an error; never a panic.
        let _ = oipd::oip::model::IndexedRecord::from_value(&doc);
        let wrapped = serde_json::json!({"data": doc.clone(), "oip": {"did": "did:arweave:x", "recordType": "post"}});
        if let Ok(r) = oipd::oip::model::IndexedRecord::from_value(&wrapped) {
            prop_assert_eq!(r.did.as_str(), "did:arweave:x");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    /// Whatever else a document holds, a non-public access level is never indexed
    /// as public.
    #[test]
    fn private_levels_are_never_indexed_public(level in prop_oneof![Just("private".to_string()), Just("PRIVATE".to_string()), Just(" Private ".to_string()), Just("organization".to_string()), "[a-zA-Z ]{1,12}"], extra in arb_json(3)) {
        let doc = serde_json::json!({
            "data": {"basic": {"name": "x"}, "accessControl": {"access_level": level.clone(), "owner_public_key": "k"}, "extra": extra},
            "oip": {"did": "did:arweave:x", "recordType": "post"}
        });
        if let Ok(r) = oipd::oip::model::IndexedRecord::from_value(&doc) {
            let public = level.trim().eq_ignore_ascii_case("public");
            prop_assert_eq!(r.is_public(), public, "level {:?}", level);
        }
    }
}

fn arb_json(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(prop_oneof![Just("basic".to_string()), Just("oip".to_string()), Just("date".to_string()), Just("name".to_string()), Just("accessControl".to_string()), "[a-z]{1,6}"], inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn resolver_stays_under_the_root_for_generated_paths() {
    // The resolver with a real filesystem: random paths built from hostile parts.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(root.join("a/b/f.gif"), b"x").unwrap();
    std::fs::write(dir.path().join("outside"), b"secret").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("a/out")).unwrap();
    let root = std::fs::canonicalize(&root).unwrap();
    let parts = ["a", "b", "f.gif", "out", "..", "%2e%2e", "%2f", ".", "outside", "%c0%ae", "%5c"];
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&prop::collection::vec(prop::sample::select(parts.to_vec()), 1..8), |segs| {
            let raw = segs.join("/");
            if let Ok(p) = oipd::http::safe_path::resolve(&root, &raw) {
                prop_assert!(p.starts_with(&root), "{raw} → {}", p.display());
                prop_assert!(p != Path::new(&dir.path().join("outside")));
            }
            Ok(())
        })
        .unwrap();
}
