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
    let text = format!("{:.14e}", x.abs());
    let (mantissa, exponent) = text
        .split_once('e')
        .and_then(|(m, e)| {
            Some((
                m.replace('.', "").parse::<u64>().ok()?,
                e.parse::<i64>().ok()?,
            ))
        })
        .ok_or_else(|| DataFusionError::Internal(format!("round_half_away: cannot read {text}")))?;
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
    let rounded: f64 = format!("{units}e-{digits}")
        .parse()
        .map_err(|e| DataFusionError::Internal(format!("round_half_away: {e}")))?;
    Ok(rounded.copysign(x))
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
}
