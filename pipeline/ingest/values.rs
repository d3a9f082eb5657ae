//! Parsers for one CSV field of each docs/models.md §1.1 type.
//!
//! Each returns `Err(reason)` with a short, user-facing reason that ends up in
//! the quarantine table, so a data engineer can see why a row was set aside.

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::compute::kernels::cast_utils::string_to_datetime;

/// Days from 0001-01-01 (CE day 1) to 1970-01-01, for Date32 conversion.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// `YYYY-MM-DD` to days since the Unix epoch (Date32).
pub fn parse_date(s: &str) -> Result<i32, String> {
    // A strict shape check first: chrono alone would accept `2026-1-5`.
    let b = s.as_bytes();
    if !shaped(b, b"dddd-dd-dd") {
        return Err(format!("`{s}` is not a date (expected YYYY-MM-DD)"));
    }
    calendar_day(b).ok_or_else(|| format!("`{s}` is not a valid calendar date"))
}

/// Days since the Unix epoch of the `YYYY-MM-DD` at the start of `b`, whose
/// digits the caller has checked; `None` for a day the calendar lacks.
/// Digits are read by hand: `NaiveDate::parse_from_str` was a tenth of the
/// ingestion's time on timestamp-heavy sources.
fn calendar_day(b: &[u8]) -> Option<i32> {
    let year = digits(&b[0..4]) as i32;
    let month = digits(&b[5..7]);
    let day = digits(&b[8..10]);
    NaiveDate::from_ymd_opt(year, month, day).map(|d| d.num_days_from_ce() - UNIX_EPOCH_CE_DAYS)
}

/// Whether `b` has the form of `shape`, where `d` stands for an ASCII digit
/// and every other byte for itself.
fn shaped(b: &[u8], shape: &[u8]) -> bool {
    b.len() == shape.len()
        && b.iter().zip(shape).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            s => c == s,
        })
}

/// The value of a run of ASCII digits (checked by the caller).
fn digits(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'))
}

/// The common `YYYY-MM-DD HH:MM:SS` (or `T` between, optional `Z`) without
/// fractions or offsets, in µs since the epoch; `None` sends every other
/// shape, and every invalid value, to arrow's general parser.
fn plain_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let b = b.strip_suffix(b"Z").unwrap_or(b);
    if !shaped(b, b"dddd-dd-dd dd:dd:dd") && !shaped(b, b"dddd-dd-ddTdd:dd:dd") {
        return None;
    }
    let (hour, minute, second) = (digits(&b[11..13]), digits(&b[14..16]), digits(&b[17..19]));
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let day = i64::from(calendar_day(b)?);
    let seconds = day * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(seconds * 1_000_000)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` or ISO 8601 (`T`, optional `Z`/`±HH:MM`)
/// to microseconds since the epoch in UTC; no offset means UTC.
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    // arrow's parser also accepts a bare date; the spec's timestamps always carry a time.
    if s.len() < 16 {
        return Err(format!(
            "`{s}` is not a timestamp (expected YYYY-MM-DD HH:MM:SS or ISO 8601)"
        ));
    }
    if let Some(micros) = plain_timestamp(s) {
        return Ok(micros);
    }
    let utc = chrono::Utc;
    string_to_datetime(&utc, s)
        .map(|dt| dt.timestamp_micros())
        .map_err(|_| format!("`{s}` is not a timestamp (expected YYYY-MM-DD HH:MM:SS or ISO 8601)"))
}

/// A 64-bit integer (optional leading sign, digits only).
pub fn parse_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .map_err(|_| format!("`{s}` is not an integer"))
}

/// A finite 64-bit float (`1.5`, `-2e3`; not NaN or infinity).
pub fn parse_float(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a number")),
    }
}

/// A decimal with `.` as separator to an integer scaled by `10^scale`.
/// Extra fractional digits are rounded half away from zero; a value of
/// more than `precision` digits is an error.
pub fn parse_decimal(s: &str, precision: u32, scale: u32) -> Result<i128, String> {
    let err = || format!("`{s}` is not a decimal number");
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
        || int_part.len() > 30
        || int_part.trim_start_matches('0').len() + scale as usize > 38
    {
        return Err(err());
    }
    let mut value: i128 = 0;
    for c in int_part.bytes() {
        value = value * 10 + i128::from(c - b'0');
    }
    let frac = frac_part.as_bytes();
    for i in 0..scale as usize {
        let d = frac.get(i).map_or(0, |c| i128::from(c - b'0'));
        value = value * 10 + d;
    }
    if frac.get(scale as usize).is_some_and(|c| *c >= b'5') {
        value += 1;
    }
    // Decimal128(p, s) holds at most p digits.
    if value >= 10i128.pow(precision) {
        return Err(format!(
            "`{s}` is too large for a decimal({precision},{scale})"
        ));
    }
    Ok(if negative { -value } else { value })
}

/// `true/false/1/0/yes/no`, case-insensitive.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (true/false/1/0/yes/no)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("1970-01-02"), Ok(1));
        assert_eq!(parse_date("2026-10-31"), Ok(20_757));
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("2026-1-5").is_err());
        assert!(parse_date("31/10/2026").is_err());
    }

    #[test]
    fn timestamps_are_utc_micros() {
        let base = 1_793_404_800_000_000; // 2026-10-31T00:00:00Z
        assert_eq!(parse_timestamp("2026-10-31 00:00:00"), Ok(base));
        assert_eq!(parse_timestamp("2026-10-31T00:00:00Z"), Ok(base));
        assert_eq!(parse_timestamp("2026-10-31T02:00:00+02:00"), Ok(base));
        assert_eq!(parse_timestamp("2026-10-30T21:00:00-03:00"), Ok(base));
        assert_eq!(
            parse_timestamp("2026-10-31 00:00:00.000250"),
            Ok(base + 250)
        );
        assert_eq!(parse_timestamp("2026-10-31T00:00:01"), Ok(base + 1_000_000));
        assert_eq!(parse_timestamp("1969-12-31 23:59:59"), Ok(-1_000_000));
        assert_eq!(
            parse_timestamp("2024-02-29 12:34:56Z"),
            Ok(1_709_210_096_000_000)
        );
        // Invalid values of the plain shape still fail, through arrow's parser.
        assert!(parse_timestamp("2026-02-30 00:00:00").is_err());
        assert!(parse_timestamp("2026-10-31 24:00:00").is_err());
        assert!(parse_timestamp("2026-10-31 12:60:00").is_err());
        assert!(parse_timestamp("2026-10-31").is_err());
        assert!(parse_timestamp("yesterday at noon").is_err());
    }

    #[test]
    fn decimals_round_half_away_from_zero() {
        assert_eq!(parse_decimal("19.99", 18, 2), Ok(1999));
        assert_eq!(parse_decimal("5", 18, 2), Ok(500));
        assert_eq!(parse_decimal(".5", 18, 2), Ok(50));
        assert_eq!(parse_decimal("-1.005", 18, 2), Ok(-101));
        assert_eq!(parse_decimal("0.125", 18, 4), Ok(1250));
        assert!(parse_decimal("1,5", 18, 2).is_err());
        assert!(parse_decimal("1e5", 18, 2).is_err());
        assert!(parse_decimal(".", 18, 2).is_err());
        assert!(parse_decimal("", 18, 2).is_err());
    }

    #[test]
    fn ints_and_bools() {
        assert_eq!(parse_int("-42"), Ok(-42));
        assert!(parse_int("4.0").is_err());
        assert_eq!(parse_bool("YES"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }
}
