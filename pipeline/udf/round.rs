//! `round_half_away(x, digits)`: rounds a Float64 to `digits` decimals, half
//! away from zero, on the value's decimal form rather than its binary one.
//!
//! A score such as 10 × (0.5 × 0.22 + 0.3 × 4.25 / 5 + 0.2) is 5.65 in
//! decimal but 5.6499999999999995 as a float, so a plain `round(x, 1)` gives
//! 5.6 while 5.85 gives 5.9. Reading the float back at 15 significant digits
//! (all an f64 holds reliably) recovers the decimal value the formula meant;
//! rounding that digit string makes every exact tie go up in magnitude.

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

use super::{FnResult, all_scalar, arrays, downcast, finish};

/// The most decimals a call may ask for: beyond 15 an f64 has no digits left.
const MAX_DIGITS: i64 = 15;

pub fn udf() -> ScalarUDF {
    create_udf(
        "round_half_away",
        vec![DataType::Float64, DataType::Int64],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(invoke),
    )
}

fn invoke(args: &[ColumnarValue]) -> FnResult {
    let a = arrays(args)?;
    let values = downcast::<Float64Array>(&a[0], "round_half_away")?;
    let digits = downcast::<Int64Array>(&a[1], "round_half_away")?;
    let out = values
        .iter()
        .zip(digits.iter())
        .map(|(x, d)| match (x, d) {
            (Some(x), Some(d)) => round_half_away(x, d).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<Float64Array, DataFusionError>>()?;
    finish(Arc::new(out), all_scalar(args))
}

/// `x` rounded to `digits` decimals, exact decimal ties away from zero.
pub fn round_half_away(x: f64, digits: i64) -> Result<f64, DataFusionError> {
    if !(0..=MAX_DIGITS).contains(&digits) {
        return exec_err!("round_half_away: digits must be 0..={MAX_DIGITS}, got {digits}");
    }
    if !x.is_finite() || x == 0.0 {
        return Ok(x);
    }
    // 15 significant digits: mantissa m (15 digits) × 10^(exponent − 14).
    let (mantissa, exponent) = significant_digits(x.abs())?;
    // Scale so that the wanted last digit is the units digit.
    let shift = exponent - 14 + digits;
    if shift >= 0 {
        return Ok(x); // already has no more than `digits` decimals
    }
    let drop = (-shift) as u32;
    let units = if drop > 19 {
        0 // below half a unit of the last digit kept
    } else {
        let divisor = 10u64.pow(drop);
        let (kept, rest) = (mantissa / divisor, mantissa % divisor);
        // `rest` and `divisor - rest` cannot overflow: both are below 10^19.
        if rest >= divisor - rest {
            kept + 1
        } else {
            kept
        }
    };
    Ok(scaled(units, digits).copysign(x))
}

/// The f64 nearest `units` × 10^−`digits`, which is what parsing
/// "{units}e-{digits}" gives: both numbers (at most 10^15 + 1 and 10^15)
/// are exact f64s, so the one division is correctly rounded.
fn scaled(units: u64, digits: i64) -> f64 {
    units as f64 / POWERS_OF_TEN[digits as usize]
}

/// 10^0 ..= 10^15, each exact as an f64.
const POWERS_OF_TEN: [f64; MAX_DIGITS as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A positive finite `x` at 15 significant digits, correctly rounded:
/// (mantissa of 15 digits, decimal exponent of its first digit). Formatted
/// into a stack buffer: this runs once per row.
fn significant_digits(x: f64) -> Result<(u64, i64), DataFusionError> {
    use std::io::Write;
    let mut buf = [0u8; 32]; // the longest, "1.23456789012345e-308", is 21
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let unreadable = || DataFusionError::Internal(format!("round_half_away: cannot read {x:e}"));
    write!(cursor, "{x:.14e}").map_err(|_| unreadable())?;
    let len = cursor.position() as usize;
    let text = &buf[..len];
    let e = text
        .iter()
        .position(|&b| b == b'e')
        .ok_or_else(unreadable)?;
    let mut mantissa = 0u64;
    for &b in &text[..e] {
        match b {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(b - b'0'),
            b'.' => {}
            _ => return Err(unreadable()),
        }
    }
    let exponent = std::str::from_utf8(&text[e + 1..])
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(unreadable)?;
    Ok((mantissa, exponent))
}

#[cfg(test)]
mod tests {
    use super::round_half_away;

    #[test]
    fn exact_decimal_ties_round_away_from_zero() {
        // The ties of gold_product_health_score: the float is just below the tie.
        let a: f64 = 10.0 * (0.5 * 0.22 + 0.3 * 4.25 / 5.0 + 0.2);
        let b = 10.0 * (0.5 * 0.39 + 0.3 * (11.0 / 3.0) / 5.0 + 0.0);
        let c = 10.0 * (0.5 * 0.26 + 0.3 * 4.25 / 5.0 + 0.2);
        assert!(
            a < 5.65 && (a * 10.0).round() / 10.0 == 5.6,
            "the float case: {a}"
        );
        assert_eq!(round_half_away(a, 1).unwrap(), 5.7);
        assert_eq!(round_half_away(b, 1).unwrap(), 4.2);
        assert_eq!(round_half_away(c, 1).unwrap(), 5.9, "{c}");
        assert_eq!(round_half_away(-a, 1).unwrap(), -5.7);
        assert_eq!(round_half_away(0.125, 2).unwrap(), 0.13);
        assert_eq!(round_half_away(2.675, 2).unwrap(), 2.68); // 2.67499999… as a float
        assert_eq!(round_half_away(0.5, 0).unwrap(), 1.0);
        assert_eq!(round_half_away(-2.5, 0).unwrap(), -3.0);
    }

    #[test]
    fn values_off_a_tie_round_to_nearest() {
        assert_eq!(round_half_away(5.649, 1).unwrap(), 5.6);
        assert_eq!(round_half_away(5.6501, 1).unwrap(), 5.7);
        assert_eq!(round_half_away(1234.5678, 2).unwrap(), 1234.57);
        assert_eq!(round_half_away(3.0, 1).unwrap(), 3.0);
        assert_eq!(round_half_away(1e-30, 2).unwrap(), 0.0);
        assert_eq!(round_half_away(1e20, 2).unwrap(), 1e20);
        assert!(round_half_away(f64::NAN, 1).unwrap().is_nan());
        assert!(round_half_away(1.0, 16).is_err());
    }

    /// The two steps that replaced a text round trip, each against it on
    /// values of every magnitude and on money-like ties.
    #[test]
    fn digits_and_scaling_equal_the_text_round_trip() {
        use super::{MAX_DIGITS, scaled, significant_digits};
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200_000 {
            let x = match rng.random_range(0..3) {
                0 => f64::from_bits(rng.random::<u64>() >> 1), // any positive bit pattern
                1 => rng.random_range(0..10_000_000_000u64) as f64 / 1000.0, // money-like
                _ => rng.random_range(0.0..1.0) * 10f64.powi(rng.random_range(-20..20)),
            };
            if !x.is_finite() || x == 0.0 {
                continue;
            }
            let text = format!("{x:.14e}");
            let (m, e) = text.split_once('e').unwrap();
            let by_text = (m.replace('.', "").parse().unwrap(), e.parse().unwrap());
            assert_eq!(significant_digits(x).unwrap(), by_text, "{x:e}");

            let units = rng.random_range(0..=1_000_000_000_000_001u64);
            let digits = rng.random_range(0..=MAX_DIGITS);
            let parsed: f64 = format!("{units}e-{digits}").parse().unwrap();
            assert_eq!(
                scaled(units, digits).to_bits(),
                parsed.to_bits(),
                "{units}e-{digits}"
            );
        }
    }
}
