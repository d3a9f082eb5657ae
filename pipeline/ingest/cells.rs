//! One field to one typed cell: parsing by the column's declared type, then
//! its checks (range, allowed values, pattern, `invalid = "null"`), and the
//! reason a failing row is quarantined with. Shared by every input format.

use super::columns::Cell;
use super::sources::{ColType, Column, MONEY_MAX_UNITS, QUANTITY_MAX, Range};
use super::values;

/// Parse one field, found at byte `offset` of the record, per its column's
/// type and checks. Inlined into the row loop: it runs once per field.
#[inline]
pub fn parse_cell(column: &Column, field: &str, offset: usize) -> Result<Cell, String> {
    let name = &column.name;
    let leading = field.len() - field.trim_start().len();
    let text = field.trim();
    if text.is_empty() {
        return if column.primary_key {
            Err(format!("primary key `{name}` is empty"))
        } else if column.required {
            Err(format!("required column `{name}` is empty"))
        } else {
            Ok(Cell::Null)
        };
    }
    let parsed = match column.ty {
        ColType::Int => values::parse_int(text).map(Cell::Int),
        ColType::Float => values::parse_float(text).map(Cell::Float),
        ColType::Dec(precision, scale) => {
            values::parse_decimal(text, u32::from(precision), scale as u32).map(Cell::Dec)
        }
        ColType::Str => Ok(Cell::Str(offset + leading, offset + leading + text.len())),
        ColType::Date => values::parse_date(text).map(Cell::Date),
        ColType::Ts => values::parse_timestamp(text).map(Cell::Ts),
        ColType::Bool => values::parse_bool(text).map(Cell::Bool),
    };
    let checks = &column.checks;
    let cell = match parsed {
        Err(_) if checks.invalid_null => return Ok(Cell::Null),
        Err(reason) => return Err(format!("column `{name}`: {reason}")),
        Ok(cell) => cell,
    };
    if let Some(failure) = check(column, cell, text) {
        return if checks.invalid_null {
            Ok(Cell::Null)
        } else {
            Err(format!("column `{name}`: `{text}` {failure}"))
        };
    }
    Ok(cell)
}

/// Why a parsed value fails its column's checks, or `None`.
#[inline]
fn check(column: &Column, cell: Cell, text: &str) -> Option<String> {
    let checks = &column.checks;
    let in_range = match (checks.range, cell) {
        (Some(Range::Int(lo, hi)), Cell::Int(v)) => {
            lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi)
        }
        (Some(Range::Dec(lo, hi)), Cell::Dec(v)) => {
            lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi)
        }
        (Some(Range::Float(lo, hi)), Cell::Float(v)) => {
            lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi)
        }
        _ => true,
    };
    if !in_range {
        return Some(format!("is {}", describe(column, cell)));
    }
    if !checks.values.is_empty() && !checks.values.iter().any(|a| a.eq_ignore_ascii_case(text)) {
        return Some(format!("is not one of {}", checks.values.join(", ")));
    }
    if let Some(pattern) = &checks.pattern
        && !pattern.is_match(text)
    {
        return Some(format!(
            "does not match the pattern `{}`",
            checks.pattern_text.as_deref().unwrap_or_default()
        ));
    }
    None
}

/// Why a value is outside its column's range. A range that reaches a
/// capacity limit ([`QUANTITY_MAX`], [`MONEY_MAX_UNITS`]) or has one side
/// only is reported as the bound that was crossed; a business range as
/// `outside lo..hi`.
fn describe(column: &Column, cell: Cell) -> String {
    let scale = match column.ty {
        ColType::Dec(_, s) => 10f64.powi(i32::from(s)),
        _ => 1.0,
    };
    let (lo, hi, below, limit) = match (column.checks.range, cell) {
        (Some(Range::Int(lo, hi)), Cell::Int(v)) => (
            lo.map(|x| x as f64),
            hi.map(|x| x as f64),
            lo.is_some_and(|lo| v < lo),
            hi.is_some_and(|hi| hi >= QUANTITY_MAX),
        ),
        (Some(Range::Dec(lo, hi)), Cell::Dec(v)) => (
            lo.map(|x| x as f64 / scale),
            hi.map(|x| x as f64 / scale),
            lo.is_some_and(|lo| v < lo),
            hi.is_some_and(|hi| hi as f64 / scale >= MONEY_MAX_UNITS),
        ),
        (Some(Range::Float(lo, hi)), Cell::Float(v)) => (
            lo,
            hi,
            lo.is_some_and(|lo| v < lo),
            hi.is_some_and(|hi| hi >= QUANTITY_MAX as f64),
        ),
        _ => (None, None, false, false),
    };
    match (lo, hi) {
        (Some(lo), Some(hi)) if !limit => format!("outside {lo}..{hi}"),
        (Some(lo), _) if below => format!("below the minimum {lo}"),
        (_, Some(hi)) if limit => {
            format!("above the maximum {hi} (larger values cannot be computed with)")
        }
        (_, Some(hi)) => format!("above the maximum {hi}"),
        _ => "invalid".to_string(),
    }
}
