//! `Range` requests (RFC 9110 §14): parsing a `bytes=` ranges-specifier and deciding
//! between a full 200, a 206 (one range or `multipart/byteranges`) and a 416.
//!
//! Decisions, in order (each one tested below):
//! - a header that is not a valid `bytes=` ranges-specifier is ignored (→ 200), per
//!   §14.2 ("MUST ignore" an invalid range), never a 500: garbage, unknown units,
//!   `last-pos < first-pos`, an empty set; numbers past u64 saturate (so they
//!   are simply past the end);
//! - an empty representation has no ranges to give: the header is ignored (→ 200);
//! - more than `max_ranges` range-specs → the whole file (200), like nginx's
//!   `max_ranges` and Apache's `MaxRanges` (§14.2 allows ignoring the header);
//! - no range overlaps the representation → 416 (`Content-Range: bytes */size`);
//! - several satisfiable ranges whose lengths add up to more than the file (overlap
//!   or abuse) → the whole file (200), as nginx does;
//! - otherwise the satisfiable ranges, clipped to the file, in request order; the
//!   unsatisfiable ones are dropped (§14.1.2).
//!
//! Bound: a header is looked at for at most `max_ranges` specs, and the planned
//! multipart body holds one small header per part, so work per request is bounded.

/// An inclusive byte range, already clipped to the representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive, like `Content-Range`.
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value for this range of a `size`-byte representation.
    pub fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, size)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Serve the whole representation (no Range, or one we ignore).
    Full,
    /// Serve these ranges with 206 (one → single part, more → multipart).
    Partial(Vec<ByteRange>),
    /// 416 Range Not Satisfiable.
    Unsatisfiable,
}

#[derive(Debug, Clone, Copy)]
enum Spec {
    /// `first-last`, or `first-` when `last` is `None`.
    FromTo(u64, Option<u64>),
    /// `-suffix_len`
    Suffix(u64),
}

/// Decide what to serve for a `Range` header value on a `size`-byte file.
pub fn evaluate(header: &[u8], size: u64, max_ranges: usize) -> RangeOutcome {
    let Some(specs) = parse(header, max_ranges) else {
        return RangeOutcome::Full;
    };
    if size == 0 {
        return RangeOutcome::Full;
    }
    let mut ranges = Vec::with_capacity(specs.len());
    for spec in specs {
        let r = match spec {
            Spec::FromTo(first, _) if first >= size => continue,
            Spec::FromTo(first, last) => ByteRange {
                start: first,
                end: last.map_or(size - 1, |l| l.min(size - 1)),
            },
            Spec::Suffix(0) => continue,
            Spec::Suffix(n) => ByteRange { start: size - n.min(size), end: size - 1 },
        };
        ranges.push(r);
    }
    if ranges.is_empty() {
        return RangeOutcome::Unsatisfiable;
    }
    if ranges.len() > 1 {
        let total = ranges.iter().fold(0u64, |acc, r| acc.saturating_add(r.len()));
        if total > size {
            return RangeOutcome::Full;
        }
    }
    RangeOutcome::Partial(ranges)
}

/// Parse `bytes=<spec>[,<spec>]*`. `None` = invalid or over the bound (ignore the header).
fn parse(header: &[u8], max_ranges: usize) -> Option<Vec<Spec>> {
    let s = std::str::from_utf8(header).ok()?.trim();
    let (unit, set) = s.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // RFC 9110 §5.6.1: recipients accept empty list elements ("a,,b").
    for item in set.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if specs.len() == max_ranges {
            return None;
        }
        let (first, last) = item.split_once('-')?;
        let spec = if first.is_empty() {
            Spec::Suffix(digits(last)?)
        } else {
            let first = digits(first)?;
            if last.is_empty() {
                Spec::FromTo(first, None)
            } else {
                let last = digits(last)?;
                if last < first {
                    return None;
                }
                Spec::FromTo(first, Some(last))
            }
        };
        specs.push(spec);
    }
    if specs.is_empty() {
        None
    } else {
        Some(specs)
    }
}

/// 1*DIGIT as u64; no signs or spaces. A number too large for u64 saturates: it
/// is past the end of any file (RFC 9110 §14.1.1 puts no limit on digits).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    /// (header, size, expected) — RFC 9110 §14.1.2 examples and the classic cases
    /// from nginx's range tests (suffix, past-EOF, overlap, garbage).
    #[test]
    fn table() {
        let cases: Vec<(&str, u64, RangeOutcome)> = vec![
            // RFC 9110 §14.1.2 examples on a 10000-byte representation
            ("bytes=0-499", 10000, Partial(vec![r(0, 499)])),
            ("bytes=500-999", 10000, Partial(vec![r(500, 999)])),
            ("bytes=-500", 10000, Partial(vec![r(9500, 9999)])),
            ("bytes=9500-", 10000, Partial(vec![r(9500, 9999)])),
            ("bytes=0-0,-1", 10000, Partial(vec![r(0, 0), r(9999, 9999)])),
            ("bytes= 0-999, 4500-5499, -1000", 10000, Partial(vec![r(0, 999), r(4500, 5499), r(9000, 9999)])),
            ("bytes=500-600,601-999", 10000, Partial(vec![r(500, 600), r(601, 999)])),
            // end past EOF is clipped
            ("bytes=0-99999", 1000, Partial(vec![r(0, 999)])),
            ("bytes=990-2000", 1000, Partial(vec![r(990, 999)])),
            // suffix longer than the file = whole file, as a 206
            ("bytes=-5000", 1000, Partial(vec![r(0, 999)])),
            // start at/after EOF: unsatisfiable
            ("bytes=1000-", 1000, Unsatisfiable),
            ("bytes=1000-1001", 1000, Unsatisfiable),
            ("bytes=5000-6000,7000-", 1000, Unsatisfiable),
            ("bytes=-0", 1000, Unsatisfiable),
            // one satisfiable among unsatisfiable: only it is served
            ("bytes=2000-3000,0-9", 1000, Partial(vec![r(0, 9)])),
            // overlapping / excessive: sum past the size → whole file
            ("bytes=0-999,0-999", 1000, Full),
            ("bytes=0-600,500-999", 1000, Full),
            ("bytes=0-,0-", 1000, Full),
            // small overlap within the size is served as asked
            ("bytes=0-10,5-15", 1000, Partial(vec![r(0, 10), r(5, 15)])),
            // malformed → ignored
            ("bytes=abc", 1000, Full),
            ("bytes=5-3", 1000, Full),
            ("bytes=-", 1000, Full),
            ("bytes=", 1000, Full),
            ("bytes=,", 1000, Full),
            ("bytes=1-2-3", 1000, Full),
            ("bytes=+1-2", 1000, Full),
            ("bytes=1 -2", 1000, Full),
            ("bytes=0x10-20", 1000, Full),
            ("bytes=99999999999999999999-", 1000, Unsatisfiable),
            ("bytes=0-99999999999999999999", 1000, Partial(vec![r(0, 999)])),
            ("bytes=-99999999999999999999", 1000, Partial(vec![r(0, 999)])),
            ("items=0-10", 1000, Full),
            ("0-10", 1000, Full),
            ("", 1000, Full),
            ("bytes=0-10;x", 1000, Full),
            // unit is case-insensitive; empty list elements are allowed
            ("Bytes=0-1", 1000, Partial(vec![r(0, 1)])),
            ("bytes=0-1,,2-3", 1000, Partial(vec![r(0, 1), r(2, 3)])),
            // empty representation: ignore ranges
            ("bytes=0-10", 0, Full),
            ("bytes=-10", 0, Full),
        ];
        for (h, size, want) in cases {
            assert_eq!(evaluate(h.as_bytes(), size, 32), want, "Range: {h:?} on {size} bytes");
        }
    }

    #[test]
    fn too_many_ranges_gives_the_whole_file() {
        let many: Vec<String> = (0..33).map(|i| format!("{}-{}", i * 10, i * 10 + 1)).collect();
        let h = format!("bytes={}", many.join(","));
        assert_eq!(evaluate(h.as_bytes(), 100_000, 32), Full);
        let ok = format!("bytes={}", many[..32].join(","));
        assert!(matches!(evaluate(ok.as_bytes(), 100_000, 32), Partial(v) if v.len() == 32));
    }

    #[test]
    fn non_utf8_is_ignored() {
        assert_eq!(evaluate(b"bytes=\xff-1", 10, 32), Full);
    }
}
