//! Proleptic Gregorian calendar arithmetic in UTC (Howard Hinnant's algorithms),
//! the one place dates are computed: ISO timestamps, JavaScript-style readable
//! dates, `scheduledOn` days. `from_days` computes in i128, so no day count can
//! overflow it; `to_days` takes years already bounded by its callers.

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01.
pub fn from_days(days: i64) -> (i128, u32, u32) {
    let z = days as i128 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i128::from(m <= 2), m as u32, d as u32)
}

/// Days since 1970-01-01 of a civil date.
pub fn to_days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Now as ISO 8601 UTC with milliseconds (JavaScript's `toISOString`).
pub fn iso_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso_from_unix_millis(now.as_millis() as i64)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from Unix milliseconds (proleptic Gregorian, UTC).
pub fn iso_from_unix_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Unix seconds of an ISO 8601 date (`YYYY-MM-DD`, midnight UTC) or date-time
/// (`YYYY-MM-DDTHH:MM[:SS[.fff]]` with `Z`, `±HH:MM`, `±HHMM` or no offset, read
/// as UTC); the flag says whether it was a bare date. Years must have 4 digits.
pub fn parse_iso(s: &str) -> Option<(i64, bool)> {
    let s = s.trim();
    let num = |t: &str| -> Option<i64> { (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok()).flatten() };
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut it = date.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&d) {
        return None;
    }
    let day = to_days(y, m, d) * 86_400;
    let Some(time) = time else { return Some((day, true)) };
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let off = off[1..].replace(':', "");
        if off.len() != 4 {
            return None;
        }
        let (oh, om) = (num(&off[..2])?, num(&off[2..])?);
        if oh > 23 || om > 59 {
            return None;
        }
        (c, sign * (oh * 3600 + om * 60))
    } else {
        (time, 0)
    };
    let clock = clock.split_once('.').map_or(clock, |(c, frac)| if num(frac).is_some() { c } else { "" });
    let mut parts = clock.split(':');
    let (h, mi) = (num(parts.next()?)?, num(parts.next()?)?);
    let sec = match parts.next() {
        Some(x) => num(x)?,
        None => 0,
    };
    if parts.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some((day + h * 3600 + mi * 60 + sec - offset, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_from_unix_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso_from_unix_millis(1_703_635_200_123),
            "2023-12-27T00:00:00.123Z"
        );
        assert_eq!(
            iso_from_unix_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn iso_parsing() {
        assert_eq!(parse_iso("2024-01-31"), Some((1_706_659_200, true)));
        assert_eq!(parse_iso("2024-02-29T12:00:00Z"), Some((1_709_208_000, false)));
        assert_eq!(parse_iso("2024-02-29T12:00:00.123+02:00"), Some((1_709_200_800, false)));
        assert_eq!(parse_iso("2024-02-29T12:00-0130"), Some((1_709_213_400, false)));
        for bad in ["2023-02-29", "2024-13-01", "2024-1-01", "24-01-01", "2024-01-01T24:00:00Z", "2024-01-01T10:00:00+2", "2024-01-01Tnoon", "", "2024-01-01T10:00:00.x"] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips() {
        for days in [-1_000_000i64, -719_468, -1, 0, 1, 11_016, 19_835, 2_932_896] {
            let (y, m, d) = from_days(days);
            assert_eq!(to_days(y as i64, m as i64, d as i64), days, "{days}");
        }
        assert_eq!(from_days(0), (1970, 1, 1));
        assert_eq!(from_days(11_016), (2000, 2, 29));
    }
}
