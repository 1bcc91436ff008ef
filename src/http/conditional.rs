//! Conditional requests (RFC 9110 §13): `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since` evaluated in the §13.2.2 order, and
//! `If-Range` (§13.1.5) deciding whether a `Range` applies.
//!
//! Only GET and HEAD reach this code (the file routes allow nothing else), so a
//! matching `If-None-Match` always means 304.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{header, HeaderMap, HeaderName};

use super::etag::{self, TagList};

/// The validators of the selected representation.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// Opaque part of our strong ETag (no quotes).
    pub etag: &'a str,
    /// Last modification, truncated to whole seconds (HTTP-date precision).
    pub last_modified: Option<SystemTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on and serve (possibly a range).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Truncate a time to whole seconds, as an HTTP-date carries it.
pub fn to_http_precision(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => UNIX_EPOCH,
    }
}

/// All values of a header joined with ", " (a list header may be split across lines).
/// `None` when absent; a value that is not visible ASCII becomes `"\u{0}"`, which
/// parses as no valid list (so If-Match fails and If-None-Match is ignored).
fn joined(headers: &HeaderMap, name: HeaderName) -> Option<std::borrow::Cow<'_, str>> {
    let mut lines = headers.get_all(name).iter();
    let first = lines.next()?.to_str().unwrap_or("\u{0}");
    let Some(second) = lines.next() else {
        // one line, the common case: no copy
        return Some(std::borrow::Cow::Borrowed(first));
    };
    let mut out = first.to_owned();
    for v in std::iter::once(second).chain(lines) {
        out.push_str(", ");
        out.push_str(v.to_str().unwrap_or("\u{0}"));
    }
    Some(std::borrow::Cow::Owned(out))
}

/// An `If-Modified-Since` / `If-Unmodified-Since` date. The field takes one
/// HTTP-date; a value with more than one member (several field lines, or a list)
/// is invalid and ignored (RFC 9110 §13.1.3, §13.1.4), like any unparsable date.
fn date(headers: &HeaderMap, name: HeaderName) -> Option<SystemTime> {
    let mut lines = headers.get_all(name).iter();
    let v = lines.next()?.to_str().ok()?;
    if lines.next().is_some() {
        return None;
    }
    httpdate::parse_http_date(v.trim()).ok()
}

/// RFC 9110 §13.2.2 steps 1–4.
pub fn evaluate(headers: &HeaderMap, v: &Validators<'_>) -> Precondition {
    // 1. If-Match (strong comparison); an unparsable list matches nothing.
    if let Some(im) = joined(headers, header::IF_MATCH) {
        let ok = etag::parse_list(&im).is_some_and(|l| l.matches_strong(v.etag));
        if !ok {
            return Precondition::Failed;
        }
    } else if let (Some(since), Some(lm)) = (date(headers, header::IF_UNMODIFIED_SINCE), v.last_modified) {
        // 2. If-Unmodified-Since, only without If-Match; an invalid date is ignored.
        if lm > since {
            return Precondition::Failed;
        }
    }
    // 3. If-None-Match (weak comparison); an unparsable list is ignored.
    if let Some(inm) = joined(headers, header::IF_NONE_MATCH) {
        if let Some(list) = etag::parse_list(&inm) {
            if list.matches_weak(v.etag) {
                return Precondition::NotModified;
            }
            return Precondition::Proceed;
        }
    } else if let (Some(since), Some(lm)) = (date(headers, header::IF_MODIFIED_SINCE), v.last_modified) {
        // 4. If-Modified-Since, only without If-None-Match.
        if lm <= since {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// RFC 9110 §13.1.5: does a `Range` header apply? True when there is no
/// `If-Range`, or when it strongly matches our ETag or exactly equals our
/// Last-Modified. Anything else (weak tag, other tag, other date, garbage) → the
/// whole representation.
pub fn if_range_allows_partial(headers: &HeaderMap, v: &Validators<'_>) -> bool {
    let Some(raw) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(s) = raw.to_str() else {
        return false;
    };
    let s = s.trim();
    if s.starts_with('"') || s.starts_with("W/") {
        return match etag::parse_one(s) {
            Some((tag, rest)) if rest.trim().is_empty() => {
                TagList::Tags(vec![tag]).matches_strong(v.etag)
            }
            _ => false,
        };
    }
    match (httpdate::parse_http_date(s), v.last_modified) {
        (Ok(d), Some(lm)) => d == lm,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use Precondition::*;

    const TAG: &str = "abc123";

    fn lm() -> SystemTime {
        httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap()
    }

    fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// RFC 9110 §13.2.2 precedence, one row per rule.
    #[test]
    fn precedence_table() {
        let v = Validators { etag: TAG, last_modified: Some(lm()) };
        let before = "Wed, 21 Oct 2015 07:27:59 GMT";
        let same = "Wed, 21 Oct 2015 07:28:00 GMT";
        let after = "Wed, 21 Oct 2015 07:28:01 GMT";
        let cases: Vec<(Vec<(&str, &str)>, Precondition)> = vec![
            (vec![], Proceed),
            // If-Match
            (vec![("if-match", "\"abc123\"")], Proceed),
            (vec![("if-match", "*")], Proceed),
            (vec![("if-match", "\"zzz\", \"abc123\"")], Proceed),
            (vec![("if-match", "\"zzz\"")], Failed),
            (vec![("if-match", "W/\"abc123\"")], Failed), // strong comparison
            (vec![("if-match", "garbage")], Failed),
            (vec![("if-match", "\"abc123\"")], Proceed),
            (vec![("if-match", "\"zzz\""), ("if-match", "\"abc123\"")], Proceed), // split lines
            // If-Unmodified-Since
            (vec![("if-unmodified-since", same)], Proceed),
            (vec![("if-unmodified-since", after)], Proceed),
            (vec![("if-unmodified-since", before)], Failed),
            (vec![("if-unmodified-since", "not a date")], Proceed),
            // If-Match wins over If-Unmodified-Since
            (vec![("if-match", "\"abc123\""), ("if-unmodified-since", before)], Proceed),
            // If-None-Match
            (vec![("if-none-match", "\"abc123\"")], NotModified),
            (vec![("if-none-match", "W/\"abc123\"")], NotModified), // weak comparison
            (vec![("if-none-match", "*")], NotModified),
            (vec![("if-none-match", "\"x\", \"abc123\"")], NotModified),
            (vec![("if-none-match", "\"x\"")], Proceed),
            (vec![("if-none-match", "garbage")], Proceed),
            // If-Modified-Since
            (vec![("if-modified-since", same)], NotModified),
            (vec![("if-modified-since", after)], NotModified),
            (vec![("if-modified-since", before)], Proceed),
            (vec![("if-modified-since", "yesterday")], Proceed),
            // a field with more than one member is invalid and ignored (§13.1.3), even identical ones
            (vec![("if-modified-since", same), ("if-modified-since", same)], Proceed),
            (vec![("if-modified-since", after), ("if-modified-since", before)], Proceed),
            (vec![("if-unmodified-since", before), ("if-unmodified-since", before)], Proceed),
            // If-None-Match wins over If-Modified-Since (both ways)
            (vec![("if-none-match", "\"x\""), ("if-modified-since", after)], Proceed),
            (vec![("if-none-match", "\"abc123\""), ("if-modified-since", before)], NotModified),
            // 412 beats 304
            (vec![("if-match", "\"x\""), ("if-none-match", "\"abc123\"")], Failed),
            (vec![("if-unmodified-since", before), ("if-modified-since", after)], Failed),
        ];
        for (headers, want) in cases {
            assert_eq!(evaluate(&hm(&headers), &v), want, "{headers:?}");
        }
    }

    #[test]
    fn unreadable_if_match_fails() {
        let v = Validators { etag: TAG, last_modified: Some(lm()) };
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_bytes(b"\"\x80\"").unwrap());
        assert_eq!(evaluate(&h, &v), Failed);
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_bytes(b"\"\x80\"").unwrap());
        assert_eq!(evaluate(&h, &v), Proceed);
    }

    #[test]
    fn without_last_modified_dates_are_ignored() {
        let v = Validators { etag: TAG, last_modified: None };
        let h = hm(&[("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(evaluate(&h, &v), Proceed);
    }

    #[test]
    fn if_range() {
        let v = Validators { etag: TAG, last_modified: Some(lm()) };
        let cases = [
            (None, true),
            (Some("\"abc123\""), true),
            (Some("W/\"abc123\""), false), // never weak
            (Some("\"other\""), false),
            (Some("Wed, 21 Oct 2015 07:28:00 GMT"), true), // exact date
            (Some("Wed, 21 Oct 2015 07:28:01 GMT"), false),
            (Some("Wed, 21 Oct 2015 07:27:59 GMT"), false),
            (Some("garbage"), false),
            (Some("\"abc123\" trailing"), false),
        ];
        for (ir, want) in cases {
            let h = match ir {
                Some(x) => hm(&[("if-range", x)]),
                None => hm(&[]),
            };
            assert_eq!(if_range_allows_partial(&h, &v), want, "If-Range: {ir:?}");
        }
    }

    #[test]
    fn precision() {
        let t = UNIX_EPOCH + Duration::from_millis(1_500_999);
        assert_eq!(to_http_precision(t), UNIX_EPOCH + Duration::from_secs(1500));
    }
}
