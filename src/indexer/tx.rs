//! A transaction as the indexer sees it, and what the original node decides
//! from its tags before reading its data.
//!
//! Its job: hold one Arweave transaction or bundled data item (id, owner,
//! tags in gateway order, block, data as text), read the OIP tags the way the
//! original reads them (`helpers/arweave.js` `getTransaction`,
//! `helpers/elasticsearch.js` `processTransaction` / `processNewRecord`), and
//! make the dispatch decision: [`Kind::Record`], [`Kind::Template`] or
//! [`Kind::Skip`] with the reason.
//!
//! Its bounds: nothing is fetched here and nothing grows; the data's size is
//! capped by whoever fetched it (the gateway client). Version strings longer
//! than [`MAX_VERSION_LEN`] are invalid, as in the `semver` package.
//!
//! Two lookups differ in the original and both are kept: the dispatch reads
//! tags as an object built by `reduce` (the **last** tag of a name wins), while
//! `ver`, `creator`, `creatorSig`, `RecordType` and `TemplateName` are read
//! with `Array.find` (the **first** wins).

use serde::{Deserialize, Serialize};

use super::js::{js_string_to_number, js_trim};

/// One tag, as GraphQL returns it (`{name, value}`, already decoded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

impl Tag {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Tag { name: name.into(), value: value.into() }
    }
}

/// A transaction (or bundled data item) with its data read as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    /// The 43-character base64url transaction id.
    pub id: String,
    /// `owner.address` from GraphQL, when known (the organization handling uses it).
    pub owner_address: Option<String>,
    /// All tags, in the order the gateway returned them: the signatures cover
    /// that order.
    pub tags: Vec<Tag>,
    /// `None` while pending.
    pub block_height: Option<u64>,
    /// Block time, unix seconds.
    pub block_timestamp: Option<u64>,
    /// The data as text (see [`Tx::text_from_bytes`]).
    pub data: String,
}

/// The minimum protocol version the original indexes.
pub const MIN_OIP_VERSION: &str = "0.8.0";

/// Bound: the longest version string (`semver`'s `MAX_LENGTH`, UTF-16 units).
pub const MAX_VERSION_LEN: usize = 256;

/// What the original does with a transaction (`processTransaction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `Type=Record`, `Index-Method=OIP`, `Ver` ≥ 0.8.0: `processNewRecord`.
    Record,
    /// `Type=Template`, `Index-Method=OIP`, `Ver` ≥ 0.8.0: `processNewTemplate`.
    Template,
    Skip(SkipReason),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("Type is {0:?}, not Record or Template")]
    NotRecordOrTemplate(Option<String>),
    #[error("Index-Method is {0:?}, not OIP")]
    NotOip(Option<String>),
    #[error("Ver {0} is below {MIN_OIP_VERSION}")]
    VersionTooOld(String),
    /// The original's `semver.gte` throws on these; the throw ends the
    /// transaction's processing, which is a skip.
    #[error("Ver {0:?} is not a version: {1}")]
    VersionInvalid(Option<String>, SemverError),
}

impl Tx {
    /// Data bytes as the original reads them (axios, `responseType: 'text'`):
    /// UTF-8 with invalid sequences replaced by U+FFFD, a leading BOM removed.
    pub fn text_from_bytes(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned()
    }

    /// The first tag of that name (`tags.find(t => t.name === name)`).
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.name == name).map(|t| t.value.as_str())
    }

    /// The last tag of that name (what `tags.reduce((acc, t) => {acc[t.name] = t.value})` keeps).
    pub fn tag_last(&self, name: &str) -> Option<&str> {
        self.tags.iter().rev().find(|t| t.name == name).map(|t| t.value.as_str())
    }

    /// Every tag but the last: what the creator signed (the last is assumed to
    /// be `CreatorSig`, whatever it is).
    pub fn signed_tags(&self) -> &[Tag] {
        &self.tags[..self.tags.len().saturating_sub(1)]
    }

    /// `Ver`, else `ver` (an empty `Ver` falls through, as `||` does).
    pub fn ver(&self) -> Option<&str> {
        self.tag("Ver").filter(|v| !v.is_empty()).or_else(|| self.tag("ver"))
    }

    /// `Creator`: the creator's address.
    pub fn creator(&self) -> Option<&str> {
        self.tag("Creator")
    }

    /// `CreatorSig` with spaces turned back into `+` (some gateways decode the
    /// tag as form data, and the original repairs that).
    pub fn creator_sig(&self) -> Option<String> {
        self.tag("CreatorSig").map(|s| s.replace(' ', "+"))
    }

    /// `RecordType`, looked up among the signed tags (the original slices the
    /// last tag off first).
    pub fn record_type(&self) -> Option<&str> {
        self.signed_tags().iter().find(|t| t.name == "RecordType").map(|t| t.value.as_str())
    }

    /// `TemplateName` (templates).
    pub fn template_name(&self) -> Option<&str> {
        self.tag("TemplateName")
    }

    /// `Type`, `Index-Method`, `Ver` (≥ 0.8.0 by `semver` rules), as
    /// `processTransaction` checks them.
    pub fn kind(&self) -> Kind {
        let ty = self.tag_last("Type");
        if !matches!(ty, Some("Record" | "Template")) {
            return Kind::Skip(SkipReason::NotRecordOrTemplate(ty.map(str::to_owned)));
        }
        let method = self.tag_last("Index-Method");
        if method != Some("OIP") {
            return Kind::Skip(SkipReason::NotOip(method.map(str::to_owned)));
        }
        let ver = self.tag_last("Ver");
        match ver.map(|v| ver_at_least(v, MIN_OIP_VERSION)) {
            Some(Ok(true)) if ty == Some("Record") => Kind::Record,
            Some(Ok(true)) => Kind::Template,
            Some(Ok(false)) => Kind::Skip(SkipReason::VersionTooOld(ver.unwrap_or_default().to_owned())),
            Some(Err(e)) => Kind::Skip(SkipReason::VersionInvalid(ver.map(str::to_owned), e)),
            None => Kind::Skip(SkipReason::VersionInvalid(None, SemverError::Invalid)),
        }
    }

    /// The second version gate `processNewRecord` applies to ordinary records
    /// (not to creator registrations, organizations or deletes); see
    /// [`record_version_accepted`].
    pub fn record_version_accepted(&self) -> bool {
        self.ver().is_some_and(record_version_accepted)
    }
}

/// `processNewRecord`'s own check: `ver.split('.').map(Number)` must have at
/// least three parts, each `>=` the matching part of `[0, 8, 0]` (0 for the
/// fourth and later). This is not a version order: `1.0.0` fails (0 < 8), as
/// does `0.8.0+build` (`Number("0+build")` is NaN). Kept because the original
/// drops those records.
pub fn record_version_accepted(ver: &str) -> bool {
    const MIN_PARTS: [f64; 3] = [0.0, 8.0, 0.0];
    let parts: Vec<f64> = ver.split('.').map(js_string_to_number).collect();
    parts.len() >= 3 && parts.iter().enumerate().all(|(i, p)| *p >= MIN_PARTS.get(i).copied().unwrap_or(0.0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SemverError {
    #[error("longer than {MAX_VERSION_LEN} characters")]
    TooLong,
    #[error("not MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]")]
    Invalid,
    #[error("a component is above 2^53-1")]
    TooLarge,
}

/// A version as the `semver` package (5.7, what the original resolves) parses
/// it in strict mode: surrounding white space trimmed, an optional `v`,
/// numeric parts without leading zeros; build metadata is parsed and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub prerelease: Vec<String>,
}

/// JavaScript's `Number.MAX_SAFE_INTEGER`.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

fn numeric_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn identifier_chars(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn component(s: &str) -> Result<u64, SemverError> {
    if !numeric_identifier(s) {
        return Err(SemverError::Invalid);
    }
    // More than 16 digits is above 2^53-1 whatever they are.
    match s.parse::<u64>() {
        Ok(n) if s.len() <= 16 && n <= MAX_SAFE_INTEGER => Ok(n),
        _ => Err(SemverError::TooLarge),
    }
}

impl SemVer {
    pub fn parse(version: &str) -> Result<SemVer, SemverError> {
        if version.encode_utf16().count() > MAX_VERSION_LEN {
            return Err(SemverError::TooLong);
        }
        let v = js_trim(version);
        let v = v.strip_prefix('v').unwrap_or(v);
        let (v, build) = match v.split_once('+') {
            Some((main, build)) => (main, Some(build)),
            None => (v, None),
        };
        if let Some(build) = build {
            if !build.split('.').all(identifier_chars) {
                return Err(SemverError::Invalid);
            }
        }
        let (main, pre) = match v.split_once('-') {
            Some((main, pre)) => (main, Some(pre)),
            None => (v, None),
        };
        let mut parts = main.split('.');
        let (Some(major), Some(minor), Some(patch), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SemverError::Invalid);
        };
        let prerelease = match pre {
            None => Vec::new(),
            Some(pre) => {
                let ids: Vec<String> = pre.split('.').map(str::to_owned).collect();
                // Each id: numeric without a leading zero, or containing a non-digit.
                let ok = ids.iter().all(|id| {
                    identifier_chars(id) && (numeric_identifier(id) || !id.bytes().all(|b| b.is_ascii_digit()))
                });
                if !ok {
                    return Err(SemverError::Invalid);
                }
                ids
            }
        };
        // All three must have the form before any is checked for size (the
        // regex runs first, then the range checks).
        if ![major, minor, patch].iter().all(|c| numeric_identifier(c)) {
            return Err(SemverError::Invalid);
        }
        Ok(SemVer { major: component(major)?, minor: component(minor)?, patch: component(patch)?, prerelease })
    }

    /// `semver.compare`: main parts numerically, then a release above its
    /// prereleases, then prerelease identifiers in turn.
    pub fn cmp_precedence(&self, other: &SemVer) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let main = (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        if main != Ordering::Equal {
            return main;
        }
        match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        for i in 0.. {
            match (self.prerelease.get(i), other.prerelease.get(i)) {
                (None, None) => return Ordering::Equal,
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (Some(a), Some(b)) if a == b => continue,
                (Some(a), Some(b)) => return compare_identifiers(a, b),
            }
        }
        Ordering::Equal
    }
}

/// `compareIdentifiers`: numeric ids compare as numbers and sort before
/// alphanumeric ones; others compare as strings.
fn compare_identifiers(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        (true, true) => js_string_to_number(a).partial_cmp(&js_string_to_number(b)).unwrap_or(Ordering::Equal),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        // ASCII ids: byte order is UTF-16 code unit order.
        (false, false) => a.cmp(b),
    }
}

/// `semver.gte(ver, min)`: `Err` where the original's call would throw.
pub fn ver_at_least(ver: &str, min: &str) -> Result<bool, SemverError> {
    let v = SemVer::parse(ver)?;
    let m = SemVer::parse(min)?;
    Ok(v.cmp_precedence(&m) != std::cmp::Ordering::Less)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(tags: &[(&str, &str)]) -> Tx {
        Tx {
            id: "id".into(),
            owner_address: None,
            tags: tags.iter().map(|(n, v)| Tag::new(*n, *v)).collect(),
            block_height: Some(1),
            block_timestamp: None,
            data: String::new(),
        }
    }

    #[test]
    fn semver_gte_like_the_semver_package() {
        // (version, semver.gte(version, "0.8.0") from semver 5.7.2 under node;
        // None = it throws)
        let long = format!("0.8.0+{}", "a".repeat(250)); // 256 characters: allowed
        let cases: &[(&str, Option<bool>)] = &[
            ("0.8.0", Some(true)),
            ("0.7.2", Some(false)),
            ("0.9.0", Some(true)),
            ("1.0.0", Some(true)),
            ("0.10.0", Some(true)),
            ("0.8.0-beta", Some(false)),
            ("0.8.1-beta", Some(true)),
            ("0.8.0+build.5", Some(true)),
            ("v0.8.0", Some(true)),
            ("  0.8.0\n", Some(true)),
            ("=0.8.0", None),
            ("0.8", None),
            ("0.08.0", None),
            ("0.8.0.1", None),
            ("0.8.0-01", None),
            ("0.8.0-", None),
            ("0.8.0+", None),
            ("9007199254740991.0.0", Some(true)),
            ("9007199254740992.0.0", None),
            ("", None),
            ("V0.8.0", None),
            ("\u{a0}0.8.0\u{feff}", Some(true)),
            ("0.8.0-a-b", Some(false)),
            ("0.8.0--", Some(false)),
            ("1.0.0-a+b+c", None),
            (long.as_str(), Some(true)),
        ];
        for (v, node) in cases {
            assert_eq!(ver_at_least(v, MIN_OIP_VERSION).ok(), *node, "{v:?}");
        }
        assert_eq!(ver_at_least(&format!("0.8.0+{}", "a".repeat(251)), "0.8.0"), Err(SemverError::TooLong));
    }

    #[test]
    fn prerelease_precedence() {
        let order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"];
        for w in order.windows(2) {
            assert_eq!(ver_at_least(w[0], w[1]), Ok(false), "{} < {}", w[0], w[1]);
            assert_eq!(ver_at_least(w[1], w[0]), Ok(true), "{} > {}", w[1], w[0]);
        }
    }

    #[test]
    fn dispatch_follows_process_transaction() {
        let base = [("Content-Type", "application/json"), ("Index-Method", "OIP"), ("Ver", "0.8.0")];
        let mut t = tx(&[base[0], base[1], base[2], ("Type", "Record"), ("CreatorSig", "x")]);
        assert_eq!(t.kind(), Kind::Record);
        t.tags[3].value = "Template".into();
        assert_eq!(t.kind(), Kind::Template);
        t.tags[3].value = "record".into();
        assert_eq!(t.kind(), Kind::Skip(SkipReason::NotRecordOrTemplate(Some("record".into()))));
        let t = tx(&[("Index-Method", "oip"), ("Ver", "0.8.0"), ("Type", "Record")]);
        assert_eq!(t.kind(), Kind::Skip(SkipReason::NotOip(Some("oip".into()))));
        let t = tx(&[("Index-Method", "OIP"), ("Ver", "0.7.2"), ("Type", "Record")]);
        assert_eq!(t.kind(), Kind::Skip(SkipReason::VersionTooOld("0.7.2".into())));
        let t = tx(&[("Index-Method", "OIP"), ("Type", "Record")]);
        assert!(matches!(t.kind(), Kind::Skip(SkipReason::VersionInvalid(None, _))));
        // reduce(): the last tag of a name decides the dispatch
        let t = tx(&[("Type", "Template"), ("Index-Method", "OIP"), ("Ver", "0.8.0"), ("Type", "Record")]);
        assert_eq!(t.kind(), Kind::Record);
    }

    #[test]
    fn tag_readers() {
        let t = tx(&[
            ("Ver", ""),
            ("ver", "0.8.0"),
            ("RecordType", "post"),
            ("Creator", "abc"),
            ("TemplateName", "basic"),
            ("CreatorSig", "a b+c d=="),
        ]);
        assert_eq!(t.ver(), Some("0.8.0"));
        assert_eq!(t.creator(), Some("abc"));
        assert_eq!(t.creator_sig().as_deref(), Some("a+b+c+d=="));
        assert_eq!(t.record_type(), Some("post"));
        assert_eq!(t.template_name(), Some("basic"));
        assert_eq!(t.signed_tags().len(), 5);
        // RecordType as the last tag is not among the signed tags
        let t = tx(&[("Type", "Record"), ("RecordType", "post")]);
        assert_eq!(t.record_type(), None);
        assert_eq!(tx(&[]).signed_tags(), &[] as &[Tag]);
    }

    #[test]
    fn record_version_gate() {
        for (v, ok) in [
            ("0.8.0", true),
            ("0.9.1", true),
            ("0.10.0", true),
            ("1.8.0", true),
            (" 0.8.0", true),
            ("1.0.0", false),
            ("0.7.9", false),
            ("0.8", false),
            ("v0.8.0", false),
            ("0.8.0+b", false),
            ("0.8.0.1", true),
        ] {
            assert_eq!(record_version_accepted(v), ok, "{v}");
        }
    }

    #[test]
    fn text_like_axios() {
        assert_eq!(Tx::text_from_bytes(b"\xef\xbb\xbf[1]"), "[1]");
        assert_eq!(Tx::text_from_bytes(b"a\xffb"), "a\u{fffd}b");
    }
}
