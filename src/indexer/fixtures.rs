//! Real chain data for the tests: the two creator registrations whose full
//! payloads (tags, data, signature) the original node hard-codes in
//! `helpers/arweave.js` (`HARDCODED_TRANSACTIONS`, at `ccfdf3e`), copied here
//! verbatim; `data` is the `JSON.stringify(...)` of the literal there, as node
//! printed it.
//!
//! `eqUwpy6…` (block 1463761, handle "Player"): its hard-coded `CreatorSig`
//! has 683 characters; the chain's has 684 (a `+` at offset 432:
//! `…NB6d+XZV…` where the chain reads `…NB6d++XZV…`).
//! `iZq_A50…` (block 1579572, handle "Scribe"): verifies as given.

use super::tx::{Tag, Tx};

pub const PLAYER_TXID: &str = "eqUwpy6et2egkGlkvS7c5GKi0aBsCXT6Dhlydf3GA3Y";
pub const PLAYER_BLOCK: u64 = 1463761;
pub const PLAYER_TAGS: &[(&str, &str)] = &[
    ("Content-Type", "application/json"),
    ("Index-Method", "OIP"),
    ("Ver", "0.7.2"),
    ("Type", "Record"),
    ("Creator", "u4B6d5ddggsotOiG86D-KPkeW23qQNdqaXo_ZcdI3k0"),
    ("CreatorSig", "kxaouVUFcvHDAPUT8xsLo7ilepwKuVNeR52Hsn/tEZwUK+TAeXb5JtszUeFBpbMy0nuYydBwFxgSmIofkwByVzOpe7j3n1QKZhGIKVGuq9HBiekNfWne/vw3kiPvl+T8bwTM+M6vvsfDTKiIqs+NYZVHWm9iebhWlfIHVdtbRmn6NxHAYtaosggep0XyOuwrVuJEsEMfl8AYS7AZPcClQxl8LMERCdeWRE6BTu0ZGMyFeV38xKOea5ccwV2A7kYfRf6iwdmpACzlh9CIkNfOQ3JC2NJK/Rs6f5sJMMjzIn84odt+7GqaBeitLI4rv6E64FSEdcPtOn0Rm2ICwuzg/jqxF4QUdRQ5t7diBPWKY0JITw+Fhw+DTL2WTYazd/1j4OlQJJefE4Of30oWGzlUvDhNui9yudc0MO/+nPBzHYxVNB6d+XZVGODgfgD/wDRH0DMtE7Fsq35s5m2JY424RSikUCyz354XY0JJuyzUCWxflKgMhL1q0/IHx4ASI7Go/wEE0H4q0F2Tutk/6F6hjyl7z5JUqnOOALPW4t5mqo53D6Milt/khaA97gLU1RO1xQdHX7LrHRWsgiulLayMN+ll6DLK+fSlISagf9yZ5f61QjxkMi8K8pEedckSwaM586RO1PJoS2pBlX2DpPl28/ZRpt/fT5Q2NfWFapNXRk="),
];
pub const PLAYER_DATA: &str = r#"[{"0":"u4B6d5ddggsotOiG86D-KPkeW23qQNdqaXo_ZcdI3k0","1":"v2LPUKrpSnmzQzPr7Cfjb_vh9FD6GbRXQNqUk9miFmiWA6PtKj6gvOCiQXpr5o9u4PJcvD7jbMUNegIVj0YuOMd718qwQvXC75OZCyZlvd5Llr94pFFXhZGqlFy1ArdKhULeqgdkb-jB5dJg4u07BakmkJ8avxfKclV5jS825dw70A0lNx4R4GLD8e4-s4jp-BC9VHMR_6FAJHuGZMn2QtezF0jtmVLTKh3E6yHI2G75wwCBN5KZaOZfNNEazVAf6J-GT1H0JG1eTzH8jYIufTc9p99CX4Tzf8Ov8A8MOteM-pbJ8MQ0XDhw32F_AW9TjLqOkBprFZVaQRt8VC6Xe0r_g2ZFFokbCj8gYhF_Ezb4aRVDBhyC0Hmnwo7uFiISZrfb20iudYRM2vP7iUiZgG8wApufvKta6dByqEnuO6Jywp8vIZw0OZQMuzwCbV-3oXLWds1c8H0OkQuDOv51u14oo4720KjTW2F_eOWNTdqc2vM05K2aJg88eL7U2gUXjuLM7ZbJ3w64Mmg7FEdzNwT4K1-rbfdVjpmO6NHSgY_-j1KW2_bOWezRpWNBt4yW9csrk54YVjLDzgg2cX_jjXHaajHe27ljRV9nbBQINCOvaavMnJ8GZ-sgP0ZJttzXcrHtXCgj4JKl6RDdy6I7x1cShFb0IqaUoZSANRsGMAk","2":"Player","3":"James","t":"creatorRegistration"},{"0":"Devon","3":37,"t":"basic"}]"#;

pub const SCRIBE_TXID: &str = "iZq_A50yy5YpHNZZfQ5E5Xres3fhMa-buPOlotxbEtU";
pub const SCRIBE_BLOCK: u64 = 1579572;
pub const SCRIBE_TAGS: &[(&str, &str)] = &[
    ("Content-Type", "application/json"),
    ("Index-Method", "OIP"),
    ("Ver", "0.8.0"),
    ("Type", "Record"),
    ("RecordType", "creatorRegistration"),
    ("Creator", "iZq_A50yy5YpHNZZfQ5E5Xres3fhMa-buPOlotxbEtU"),
    ("CreatorSig", "YGhI+1ZmIRW4AJSFx/RJ/8BsI9ABbp2XESRzIaAFibCAhv+B8FzAj5S/VnMzvPCRSSns+ciex64wXS1ebtuRzEF4FXzeQOd9SWpviJ1gv9q3CsDGWK3JTyijzvOOD3wfkrbT3AJvHcZ8z8aWGBbuP1DltHLamOBnxkX/imE2qoL/RCf/jbbYvDRpI76EFDueXRyz94lG7EwMVj4Vne2MFWCa0HU7N8RJKuAE8VhqG6aSp1tVRIRfjW1uQQHesQa7hA5T0WaVtEUSkLfpSjUEv3OvB66JVQ2AUx5kZIHhAVEViSvBucVZ3UTZbkZw8ip4q60c8XkJ/3MUBSBv4nS8cTU2mBJyLs8haW3/4uDgBpYxWBrB3EhwHhj/R3Z223ra/Flri6ydwnqwUpAyzEPtXwNC1LplovNS0qith6FRClgjKZuZ8Jx1OQZl+G09tf1XMiYRidnhD8zTSSCiFKXbqB7WCe2XQvfokBtXuK7EKpBGGQJBwkwhnqlhEPU3psJAcsKVvsfQtBsadiPjYJcOyD7kgbdVoP1SQGl9j3fCNhk03Bp7BFWsiWUtWZQXtkmoIY3Zbtz8kA/ayuesbZNGWmnHJhSr8Wh3n86khC54b0rvClGk+K1gGtDSM+09yKyRRDo3A+SL0KVc4MafSVPP27AUYdNpmNBT6d8JtMbkG5M="),
];
pub const SCRIBE_DATA: &str = r#"[{"0":"iZq_A50yy5YpHNZZfQ5E5Xres3fhMa-buPOlotxbEtU","1":"g80XM1oE_GZVzpq6yTRVX0sCj1xisWhBAA31ANiqAl9-r6_5VMOT5SiX5ujLIh1GtLefb_BtNECoTSRbosndWrhypPFzEZutT6ttBi6lPrrDJGFYdAxE8Rucfw7aZyzfMNYQfEZC-vK6Wkw4HiVllwwp2ZG--XplJyYlKSQIDt78DmLUnkRIA0c0HhPC4pct3G0lHFz7-7ychn9HYNOmEYBsaIrqX4XIE1GGOzPieyAa5DiOkWqTDBwFVglRZ1bE4VSEl-TdEpizUC8SOuAsVvjiHIXkrCP3ugkZj2mpi3VaDN6T9GhI9BtP6duXa7fU5GUbYTkArxYU9bGCpvJKVE3hoeWAq-5coaG3tV5q_vXfGcVcwbm2tz1q292kpXnQ91HIBVzaOlJgEhC-f4UvHy_4dNvYlBc8wvdUFktkPK8tpQ17a3wNSN6_qRZemvbVobLXguSqWE9jxx4F3oXSoGoYQYL_UomWnIsNRr5Gre8fwrBOc8ZTl3wdKbqDV6SlSYq0q3y41KW2V6KI_csTXyE6boTWRIoFxGBG7Z1N8Fd3_GtdFKmevEkfNnlYYAM7pcMRfD-oz8ZMXHXwD86yed-b0kh6p4yqPnYpR_NyKsURlloVvpxBwOzZqIU9d_rsmsMZDY2ZIIowSYkqkjW7ug0597_LkCpA-eyyLaijbxE","2":"Scribe","t":"svZ3lRyzSpdjdG95o106Gpn4eVdpn8HMdos8RHaAd-c"}]"#;

/// The transaction as `getTransaction` would return it.
pub fn tx(id: &str, block: u64, tags: &[(&str, &str)], data: &str) -> Tx {
    Tx {
        id: id.to_owned(),
        owner_address: None,
        tags: tags.iter().map(|(n, v)| Tag::new(*n, *v)).collect(),
        block_height: Some(block),
        block_timestamp: None,
        data: data.to_owned(),
    }
}

pub fn player() -> Tx {
    tx(PLAYER_TXID, PLAYER_BLOCK, PLAYER_TAGS, PLAYER_DATA)
}

pub fn scribe() -> Tx {
    tx(SCRIBE_TXID, SCRIBE_BLOCK, SCRIBE_TAGS, SCRIBE_DATA)
}

/// A template signed by Node.js (v20.20.2, `crypto.sign('sha256', msg, {padding:
/// RSA_PKCS1_PSS_PADDING})`, i.e. the maximum salt length, and again with
/// `saltLength: 32`) with a throw-away 2048-bit key, generated while this module
/// was written. Its data is spaced and ordered so that only
/// `JSON.stringify(JSON.parse(data))` reproduces what was signed: integer-like
/// keys first, `1.50` → `1.5`, `1e21` → `1e+21`, `0.0000001` → `1e-7`, a raw
/// U+2028, escapes. `msg` is the message node signed.
pub const NODE_TEMPLATE: &str = r#####"{"n": "7eBhFwvMcShFTDHSxruzqJASpyT3ZmcrBzw01J8CH3a6Ap3vPeVInAqd_5inFcsi9bYAurss4BUqAUljK4249BCrDzMxVD2r_KOHlsL0TlX7rUpjTkSGcsBn8zSrjBMOD4GX6L-aagiWX8EHE2qvY8BkPfcbl4ENII57tQXPcLGag0gqUii4qaRNkiova7lIv6R28YM7YSuWYrCirrRm5OqxLyn4Hj1ebyaZuGe1kCCXoX7rho3-PmsfyRcAF-g6dY-oiPXmfYWqHM4inBfULjBoferRroTSZ0JFdvJOlVzD12s7IIvZtSp41LFBJteS3HGqBD5NbJEpBza856sdeQ", "data": "{\n  \"name\": \"string\", \"index_name\": 0,\n  \"unit\": \"enum\", \"unitValues\": [{\"code\": \"g\", \"name\": \"gram/\u00b5g\\u2028\"}],\n  \"index_unit\": 1,\n  \"10\": \"odd key\", \"2\": \"another\",\n  \"ratio\": 1.50, \"big\": 1e21, \"tiny\": 0.0000001, \"esc\": \"tab\\there \\u0001 \\\"q\\\" \\\\ /\"\n}", "tags": [{"name": "Content-Type", "value": "application/json"}, {"name": "Index-Method", "value": "OIP"}, {"name": "Ver", "value": "0.8.0"}, {"name": "Type", "value": "Template"}, {"name": "TemplateName", "value": "\u00fcnit \"test\""}, {"name": "Creator", "value": "someAddress"}], "msg": "{\"2\":\"another\",\"10\":\"odd key\",\"name\":\"string\",\"index_name\":0,\"unit\":\"enum\",\"unitValues\":[{\"code\":\"g\",\"name\":\"gram/\u00b5g\u2028\"}],\"index_unit\":1,\"ratio\":1.5,\"big\":1e+21,\"tiny\":1e-7,\"esc\":\"tab\\there \\u0001 \\\"q\\\" \\\\ /\"}[{\"name\":\"Content-Type\",\"value\":\"application/json\"},{\"name\":\"Index-Method\",\"value\":\"OIP\"},{\"name\":\"Ver\",\"value\":\"0.8.0\"},{\"name\":\"Type\",\"value\":\"Template\"},{\"name\":\"TemplateName\",\"value\":\"\u00fcnit \\\"test\\\"\"},{\"name\":\"Creator\",\"value\":\"someAddress\"}]", "sig": "PqS/CGg0DmrshkthgvO4AVKLv9f07JfDqz+TVSIf9Ins93hq3m8CzqtZKh0oXEFz92//eIgEqN4iMqZb9GsA0Enij1gu2xHxt6lCDo31/4ZLy5/ikbQSXo5o+tmSQZ9667Pa7mthybwaZqnRRlqp9ySRnaycCCteNHu3JPimhO+W6W9DWgxURHpBdP3HQp+591kJiYe8jCZtiqlFchSpLUusmwnbx9luOEiZNPnEb0K4Ebu1JAfBNnPApiTsqtGt/2vVo5aL8Niq5heTboqvO1pG0fcYCe4x2xi/b+S1DPQM861ZmznvxsZQCfe56Sidt2FezzsgZPV52PMgRkoqvw==", "sig32": "SH/KNGOU8O/MpS4EGTXiCbjdh80alK83dW9BCQvvV759Pv7NtFYAWk1XCWSm+aQiDnsQ5LKQs+lWB7RnOeLmFhRXvXLIMhmOV+8b9+FSn7Zb/udtPmCYxvHTFphfAts8T6yl/hJXDy4lTuAmqJliP7q3G+OTYqymuJQJ7fSEu2oL26eNqmVp4KZWfR9jSKO/S6PSG+vUhbc9tReXqvhAGgauZd99V01N1hOyzNWVhNGy2FCYF6RyAYAMMY3C+HvnyKUPoc2dYJsDFtTumZs+K/bsJcF+88acpjzEY7yr9Sf8TSVR019iJqQixkVTrPIRWsjrymHHTRycyEVZLEydeg=="}"#####;
