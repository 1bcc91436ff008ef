//! JavaScript value semantics the original node's wire formats depend on.
//!
//! Its job: reproduce, byte for byte, what Node.js computes where a signature
//! or a stored value depends on it — `JSON.stringify` (signed messages),
//! `Number.prototype.toString` (creator handles, numbers in messages),
//! `parseInt(s, 16)` (creator handles), `parseInt(s, 10)`, `parseFloat` and
//! `Number(s)` (record expansion, version checks), JavaScript's own property
//! order, and `String.prototype.trim`'s notion of white space.
//!
//! Its bounds: pure functions over borrowed input, no allocation beyond the
//! output; recursion in [`js_stringify`] follows the value's depth, which
//! serde_json already limits to 128 when it parses text.
//!
//! Known gap: a Rust `String` cannot hold a lone UTF-16 surrogate, so JSON text
//! with one (`"\ud800"`) fails to parse here, where `JSON.parse` accepts it and
//! `JSON.stringify` re-escapes it. Callers treat that as an invalid document.

use serde_json::{Map, Number, Value};

/// `WhiteSpace` or `LineTerminator` in ECMAScript terms (what `trim`, `parseInt`,
/// `parseFloat` and `Number()` skip): TAB, VT, FF, SP, NBSP, ZWNBSP (BOM), the
/// `Zs` space separators, LF, CR, LS and PS. Not U+0085, which Rust's
/// `char::is_whitespace` includes.
pub fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{a}' | '\u{b}' | '\u{c}' | '\u{d}' | ' ' | '\u{a0}' | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// `String.prototype.trim`.
pub fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// `String(x)` for a number (ECMAScript Number::toString, radix 10): shortest
/// round-trip digits, plain notation for 1e-7 < |x| < 1e21, otherwise
/// `1.2345e+68` style; `NaN`, `Infinity`, `-Infinity`; `-0` prints `0`.
pub fn js_number_to_string(x: f64) -> String {
    ryu_js::Buffer::new().format(x).to_owned()
}

/// A JavaScript number as a JSON value the way `JSON.stringify` would write it:
/// NaN and ±Infinity become `null`, integral values within ±2^53 are stored as
/// integers (so `3` is not re-serialised as `3.0`), anything else as a float.
pub fn number_to_value(x: f64) -> Value {
    const MAX_SAFE: f64 = 9_007_199_254_740_992.0; // 2^53
    if !x.is_finite() {
        return Value::Null;
    }
    if x.fract() == 0.0 && x.abs() <= MAX_SAFE {
        // Exact: integral and within i64 (and f64's exact-integer range).
        return Value::Number(Number::from(x as i64));
    }
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// The f64 a JSON number denotes in JavaScript (what `JSON.parse` gives).
pub fn json_number_to_f64(n: &Number) -> f64 {
    // u64 and i64 convert with round-to-nearest-even, as JSON.parse rounds the
    // decimal literal; large literals already arrive as f64 (correctly rounded
    // with serde_json's `float_roundtrip`).
    if let Some(u) = n.as_u64() {
        u as f64
    } else if let Some(i) = n.as_i64() {
        i as f64
    } else {
        n.as_f64().unwrap_or(f64::NAN)
    }
}

/// Is `key` an array index (a canonical decimal integer in 0..=2^32-2)? JavaScript
/// enumerates such keys first, in ascending numeric order, then the other
/// string keys in insertion order.
pub fn is_array_index(key: &str) -> bool {
    const MAX_INDEX: u64 = u32::MAX as u64 - 1;
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return false;
    }
    key.parse::<u64>().is_ok_and(|n| n <= MAX_INDEX)
}

/// The entries of an object in JavaScript's own-property order (what
/// `Object.entries`, `for…in` and `JSON.stringify` see after `JSON.parse`).
pub fn js_ordered_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut indexed: Vec<(u32, (&String, &Value))> = Vec::new();
    let mut named: Vec<(&String, &Value)> = Vec::new();
    for (k, v) in map {
        match (is_array_index(k), k.parse::<u32>()) {
            (true, Ok(n)) => indexed.push((n, (k, v))),
            _ => named.push((k, v)),
        }
    }
    indexed.sort_by_key(|(n, _)| *n);
    indexed.into_iter().map(|(_, e)| e).chain(named).collect()
}

/// `JSON.stringify(value)` as Node prints it (no spacing): JavaScript key order,
/// JavaScript number formatting, and its string escaping (`"` `\\` `\b` `\f`
/// `\n` `\r` `\t`, other controls as `\u00xx`; `/`, non-ASCII, U+2028/2029 and
/// DEL written raw).
pub fn js_stringify(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let x = json_number_to_f64(n);
            if x.is_finite() {
                out.push_str(&js_number_to_string(x));
            } else {
                out.push_str("null");
            }
        }
        Value::String(s) => write_js_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in js_ordered_entries(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_js_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// A string literal as `JSON.stringify` writes it.
pub fn write_js_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `String(v)` for a JSON value: numbers as [`js_number_to_string`], arrays
/// joined with `,` (null elements empty), objects `[object Object]`.
pub fn js_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_number_to_string(json_number_to_f64(n)),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| if i.is_null() { String::new() } else { js_to_string(i) })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// Leading white space, then an optional sign: `(negative, rest)`.
fn sign_prefix(s: &str) -> (bool, &str) {
    let s = s.trim_start_matches(is_js_whitespace);
    if let Some(r) = s.strip_prefix('-') {
        (true, r)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    }
}

fn apply_sign(negative: bool, x: f64) -> f64 {
    if negative {
        -x
    } else {
        x
    }
}

/// `parseInt(s, 16)`: leading white space, a sign, an optional `0x`/`0X`, then
/// the longest run of hex digits (none: NaN). The value is rounded to the
/// nearest double, ties to even, as the specification requires for radix 16
/// and as V8 computes it (past 53 significant bits the remaining digits only
/// decide the rounding; past 2^1024, Infinity).
pub fn js_parse_int_hex(s: &str) -> f64 {
    let (negative, rest) = sign_prefix(s);
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))
        .unwrap_or(rest);
    let digits: Vec<u8> = rest
        .bytes()
        .take_while(u8::is_ascii_hexdigit)
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        })
        .collect();
    if digits.is_empty() {
        return f64::NAN;
    }
    apply_sign(negative, round_hex_digits(&digits))
}

/// Exactly rounded value of hex digits (most significant first), non-negative.
fn round_hex_digits(digits: &[u8]) -> f64 {
    const MANTISSA_BITS: u32 = 53;
    let mut number: u64 = 0;
    let mut iter = digits.iter();
    let mut exponent: i64 = 0;
    while let Some(&d) = iter.next() {
        number = number * 16 + u64::from(d);
        let overflow = number >> MANTISSA_BITS;
        if overflow == 0 {
            continue;
        }
        // More than 53 bits: drop the low `dropped` bits, remember them for
        // rounding, and let every remaining digit count only as 4 more bits of
        // exponent and as "is the tail all zero" for the tie case.
        let dropped = 64 - overflow.leading_zeros(); // 1..=4
        let mask = (1u64 << dropped) - 1;
        let dropped_bits = number & mask;
        number >>= dropped;
        exponent = i64::from(dropped);
        let mut zero_tail = true;
        for &d in iter.by_ref() {
            zero_tail &= d == 0;
            exponent += 4;
        }
        let half = 1u64 << (dropped - 1);
        if dropped_bits > half || (dropped_bits == half && (number & 1 == 1 || !zero_tail)) {
            number += 1;
        }
        if number >> MANTISSA_BITS != 0 {
            number >>= 1;
            exponent += 1;
        }
        break;
    }
    // `number` < 2^53 is exact as f64; scaling by 2^exponent is exact or overflows.
    scale_by_power_of_two(number as f64, exponent)
}

fn scale_by_power_of_two(x: f64, exponent: i64) -> f64 {
    if x == 0.0 || exponent == 0 {
        return x;
    }
    let mut x = x;
    let mut e = exponent;
    // 2^1000 steps keep every factor finite and exact.
    while e > 0 {
        let step = e.min(1000);
        x *= f64::from_bits(((1023 + step) as u64) << 52);
        e -= step;
        if x.is_infinite() {
            break;
        }
    }
    x
}

/// `parseInt(s, 10)`: leading white space, a sign, the longest run of decimal
/// digits (none: NaN), rounded to the nearest double.
pub fn js_parse_int_decimal(s: &str) -> f64 {
    let (negative, rest) = sign_prefix(s);
    let end = rest.bytes().take_while(u8::is_ascii_digit).count();
    if end == 0 {
        return f64::NAN;
    }
    // Rust's float parser is correctly rounded, as V8's strtod is.
    apply_sign(negative, rest[..end].parse::<f64>().unwrap_or(f64::NAN))
}

/// Length of the longest prefix of `s` that is an unsigned StrDecimalLiteral
/// without `Infinity` (`12`, `1.`, `.5`, `1e5`, `1.5E-3`); 0 if none.
fn decimal_literal_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let int_digits = i;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        frac_digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if int_digits > 0 || frac_digits > 0 {
            i += 1 + frac_digits;
        }
    }
    if int_digits == 0 && frac_digits == 0 {
        return 0;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_digits = b[j.min(b.len())..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits > 0 {
            i = j + exp_digits;
        }
    }
    i
}

/// Parse an unsigned decimal literal Rust's parser accepts once normalised
/// (`1.` → `1.0`, `.5` → `0.5`).
fn parse_decimal(lit: &str) -> f64 {
    let mut s = String::with_capacity(lit.len() + 2);
    if lit.starts_with('.') {
        s.push('0');
    }
    s.push_str(lit);
    if let Some(p) = s.find('.') {
        if !s[p + 1..].starts_with(|c: char| c.is_ascii_digit()) {
            s.insert(p + 1, '0');
        }
    }
    s.parse::<f64>().unwrap_or(f64::NAN)
}

/// `parseFloat(s)`: leading white space, then the longest prefix that is a
/// decimal literal or `Infinity` (signed); otherwise NaN.
pub fn js_parse_float(s: &str) -> f64 {
    let (negative, rest) = sign_prefix(s);
    if rest.starts_with("Infinity") {
        return apply_sign(negative, f64::INFINITY);
    }
    match decimal_literal_len(rest) {
        0 => f64::NAN,
        n => apply_sign(negative, parse_decimal(&rest[..n])),
    }
}

/// `Number(s)` for a string: white space trimmed; empty → 0; `0x`/`0o`/`0b`
/// integers (unsigned); `Infinity` (signed); otherwise the whole string must be
/// a decimal literal, else NaN.
pub fn js_string_to_number(s: &str) -> f64 {
    let t = js_trim(s);
    if t.is_empty() {
        return 0.0;
    }
    let radix = match t.get(..2) {
        Some("0x" | "0X") => 16,
        Some("0o" | "0O") => 8,
        Some("0b" | "0B") => 2,
        _ => 0,
    };
    if radix != 0 {
        let digits = &t[2..];
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return f64::NAN;
        }
        // Exact for up to 53 bits; beyond that JavaScript rounds, and so does
        // the u128 → f64 conversion (longer values are not versions anyway).
        return u128::from_str_radix(digits, radix).map_or(f64::NAN, |v| v as f64);
    }
    let (negative, rest) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if rest == "Infinity" {
        return apply_sign(negative, f64::INFINITY);
    }
    let n = decimal_literal_len(rest);
    if n == 0 || n != rest.len() {
        return f64::NAN;
    }
    apply_sign(negative, parse_decimal(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every expected string below was printed by Node.js v20.20.2 while this
    // module was written (`node -e 'console.log(JSON.stringify(…))'`), then
    // pasted here; the tests do not need node to run.

    #[test]
    fn stringify_orders_keys_like_javascript() {
        let cases = [
            (
                r#"{"b":1,"a":2,"10":3,"2":4,"01":5,"4294967294":6,"4294967295":7,"-1":8,"1.5":9,"0":10,"":11," 1":12,"1e3":13}"#,
                r#"{"0":10,"2":4,"10":3,"4294967294":6,"b":1,"a":2,"01":5,"4294967295":7,"-1":8,"1.5":9,"":11," 1":12,"1e3":13}"#,
            ),
            (
                r#"{"z":{"9":"x","y":[1,{"3":null,"c":true}]},"5":false}"#,
                r#"{"5":false,"z":{"9":"x","y":[1,{"3":null,"c":true}]}}"#,
            ),
            // duplicate keys: the last value, at the first key's position
            (r#"{"a":1,"a":2,"b":3,"a":4}"#, r#"{"a":4,"b":3}"#),
            (r#"{"__proto__":1,"constructor":2}"#, r#"{"__proto__":1,"constructor":2}"#),
        ];
        for (input, node) in cases {
            let v: Value = serde_json::from_str(input).unwrap();
            assert_eq!(js_stringify(&v), node, "{input}");
        }
    }

    #[test]
    fn stringify_escapes_strings_like_javascript() {
        let cases = [
            ("\u{2028}\u{2029}", "\"\u{2028}\u{2029}\""),
            ("a/b\\c\"d", r#""a/b\\c\"d""#),
            ("é日本🎉", "\"é日本🎉\""),
            (
                "\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}\u{80}",
                "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\u{7f}\u{80}\"",
            ),
            ("</script>", "\"</script>\""),
        ];
        for (input, node) in cases {
            assert_eq!(js_stringify(&Value::String(input.into())), node);
        }
    }

    #[test]
    fn stringify_formats_numbers_like_javascript() {
        // (JSON text, JSON.stringify(JSON.parse(text)))
        let cases = [
            ("1e21", "1e+21"),
            ("1e-7", "1e-7"),
            ("123456789012345678901234", "1.2345678901234569e+23"),
            ("0.1", "0.1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1.0", "1"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("0.000001", "0.000001"),
            ("1e20", "100000000000000000000"),
            ("100", "100"),
            ("1.5e300", "1.5e+300"),
            ("-1e-7", "-1e-7"),
            ("123e-20", "1.23e-18"),
            ("12345678901234567890", "12345678901234567000"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("9007199254740993", "9007199254740992"),
            ("-1.5", "-1.5"),
            ("2e-6", "0.000002"),
            ("1.2345e-6", "0.0000012345"),
            ("999999999999999999999", "1e+21"),
            ("1e+21", "1e+21"),
            ("4.35", "4.35"),
            ("0.000001234", "0.000001234"),
        ];
        for (input, node) in cases {
            let v: Value = serde_json::from_str(input).unwrap();
            assert_eq!(js_stringify(&v), node, "{input}");
        }
    }

    #[test]
    fn number_to_string_special_values() {
        assert_eq!(js_number_to_string(f64::NAN), "NaN");
        assert_eq!(js_number_to_string(f64::INFINITY), "Infinity");
        assert_eq!(js_number_to_string(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(js_number_to_string(-0.0), "0");
        assert_eq!(js_number_to_string(6.814562224920465e22), "6.814562224920465e+22");
        assert_eq!(js_number_to_string(743198797428927400.0), "743198797428927400");
    }

    #[test]
    fn parse_int_hex_matches_v8() {
        // (input, String(parseInt(input, 16))) printed by node
        let cases: &[(&str, &str)] = &[
            ("20000000000001", "9007199254740992"),
            ("20000000000003", "9007199254740996"),
            ("20000000000001000000000000000001", "4.253529586511732e+37"),
            ("1fffffffffffff8", "144115188075855870"),
            ("1fffffffffffff7ff", "36893488147419100000"),
            ("1fffffffffffff800000001", "6.189700196426902e+26"),
            ("fffffffffffffc00", "18446744073709552000"),
            ("ffffffffffffffff", "18446744073709552000"),
            ("0x1f", "31"),
            ("  -0x1F", "-31"),
            ("+ff", "255"),
            ("fg", "15"),
            ("g", "NaN"),
            ("", "NaN"),
            ("-", "NaN"),
            ("0x", "NaN"),
            ("00000000000000000000000000000000000000000000000000000000000000001fffffffffffff8", "144115188075855870"),
            ("\u{a0}\u{feff}\u{2028} 7f", "127"),
            ("ABCDEF0123456789abcdef0123456789ABCDEF01234", "4.0174792491011226e+51"),
        ];
        for (input, node) in cases {
            assert_eq!(js_number_to_string(js_parse_int_hex(input)), *node, "{input:?}");
        }
        // 256 f's round up to 2^1024: Infinity; so do longer ones.
        assert_eq!(js_parse_int_hex(&"f".repeat(256)), f64::INFINITY);
        assert_eq!(js_parse_int_hex(&"f".repeat(257)), f64::INFINITY);
        assert_eq!(js_parse_int_hex(&format!("1{}", "0".repeat(256))), f64::INFINITY);
        // 2^1020 - 1 rounds up to 2^1020 (node: "1.1235582092889474e+307").
        assert_eq!(js_number_to_string(js_parse_int_hex(&"f".repeat(255))), "1.1235582092889474e+307");
    }

    #[test]
    fn parse_int_decimal_and_float_and_number() {
        assert_eq!(js_parse_int_decimal(" 42px"), 42.0);
        assert_eq!(js_parse_int_decimal("-7.9"), -7.0);
        assert!(js_parse_int_decimal("abc").is_nan());
        assert!(js_parse_int_decimal("0x10") == 0.0);
        assert_eq!(js_parse_int_decimal("12345678901234567890"), 12345678901234567890.0);
        assert_eq!(js_parse_float("  3.25kg"), 3.25);
        assert_eq!(js_parse_float(".5"), 0.5);
        assert_eq!(js_parse_float("1."), 1.0);
        assert_eq!(js_parse_float("1e3x"), 1000.0);
        assert_eq!(js_parse_float("1e"), 1.0);
        assert_eq!(js_parse_float("-Infinityx"), f64::NEG_INFINITY);
        assert!(js_parse_float("inf").is_nan());
        assert!(js_parse_float(".").is_nan());
        assert_eq!(js_string_to_number(" 8 "), 8.0);
        assert_eq!(js_string_to_number(""), 0.0);
        assert_eq!(js_string_to_number("0x10"), 16.0);
        assert!(js_string_to_number("-0x10").is_nan());
        assert!(js_string_to_number("0-beta").is_nan());
        assert!(js_string_to_number("v0").is_nan());
        assert!(js_string_to_number("infinity").is_nan());
        assert_eq!(js_string_to_number("1e1"), 10.0);
        assert_eq!(js_string_to_number("-Infinity"), f64::NEG_INFINITY);
    }

    #[test]
    fn to_string_and_values() {
        assert_eq!(js_to_string(&serde_json::json!([1, null, "a", [2, 3]])), "1,,a,2,3");
        assert_eq!(js_to_string(&serde_json::json!({"a": 1})), "[object Object]");
        assert_eq!(js_to_string(&serde_json::json!(1e21)), "1e+21");
        assert_eq!(number_to_value(3.0), serde_json::json!(3));
        assert_eq!(number_to_value(2.5), serde_json::json!(2.5));
        assert_eq!(number_to_value(f64::NAN), Value::Null);
        assert_eq!(number_to_value(-0.0), serde_json::json!(0));
    }
}
