//! One `[[source.columns]]` entry: read, checked against its type and
//! compiled into a [`Column`] with its checks resolved (ranges scaled to the
//! column's type, patterns anchored and compiled).

use serde::Deserialize;

use super::{Checks, ColType, Column, Range};

/// One `[[source.columns]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    required: bool,
    min: Option<toml::Value>,
    max: Option<toml::Value>,
    values: Option<Vec<String>>,
    pattern: Option<String>,
    invalid: Option<String>,
}

/// One column, or `(key, message)` naming what is wrong.
pub fn compile_column(c: &ColumnSpec, primary_key: bool) -> Result<Column, (String, String)> {
    let wrong = |key: &str, m: String| Err((key.to_string(), m));
    let name = c.name.trim();
    if name.is_empty() || name != name.to_ascii_lowercase() || name.contains(['"', '`']) {
        return wrong(
            "name",
            "a column name must be non-empty lower-case text (headers match it case-insensitively)"
                .into(),
        );
    }
    let ty = parse_type(&c.ty).ok_or_else(|| {
        (
            "type".to_string(),
            format!(
                "`{}` is not a type; use int, float, dec (money, 18,2), \"dec(P,S)\", str, date, ts or bool",
                c.ty
            ),
        )
    })?;
    let mut checks = Checks::default();
    if c.min.is_some() || c.max.is_some() {
        let number =
            |key: &str, v: &Option<toml::Value>| -> Result<Option<f64>, (String, String)> {
                match v {
                    None => Ok(None),
                    Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
                    Some(toml::Value::Float(f)) if f.is_finite() => Ok(Some(*f)),
                    Some(other) => Err((key.to_string(), format!("`{other}` is not a number"))),
                }
            };
        let (lo, hi) = (number("min", &c.min)?, number("max", &c.max)?);
        if let (Some(lo), Some(hi)) = (lo, hi)
            && lo > hi
        {
            return wrong("min", format!("min {lo} is above max {hi}"));
        }
        checks.range = Some(match ty {
            ColType::Int => {
                let whole = |key: &str, v: Option<f64>| match v {
                    Some(x) if x.fract() != 0.0 => Err((
                        key.to_string(),
                        format!("{x} is not a whole number for an int column"),
                    )),
                    other => Ok(other.map(|x| x as i64)),
                };
                Range::Int(whole("min", lo)?, whole("max", hi)?)
            }
            ColType::Dec(_, scale) => {
                let scaled =
                    |v: Option<f64>| v.map(|x| (x * 10f64.powi(i32::from(scale))).round() as i128);
                Range::Dec(scaled(lo), scaled(hi))
            }
            ColType::Float => Range::Float(lo, hi),
            other => {
                return wrong(
                    "min",
                    format!(
                        "min and max apply to int, float and dec columns, not {}",
                        other.declared_name()
                    ),
                );
            }
        });
    }
    if let Some(values) = &c.values {
        if values.is_empty() {
            return wrong("values", "the list of allowed values is empty".into());
        }
        if ty != ColType::Str {
            return wrong(
                "values",
                "an allowed set applies to str columns; use min and max for numbers".into(),
            );
        }
        checks.values = values.clone();
    }
    if let Some(pattern) = &c.pattern {
        if ty != ColType::Str {
            return wrong("pattern", "a pattern applies to str columns".into());
        }
        let anchored = format!("^(?:{pattern})$");
        checks.pattern = Some(regex::Regex::new(&anchored).map_err(|e| {
            (
                "pattern".to_string(),
                format!("`{pattern}` is not a regular expression: {e}"),
            )
        })?);
        checks.pattern_text = Some(pattern.clone());
    }
    match c.invalid.as_deref() {
        None => {}
        Some("null") if primary_key || c.required => {
            return wrong(
                "invalid",
                "a required or primary key column cannot land invalid values as NULL".into(),
            );
        }
        Some("null") => checks.invalid_null = true,
        Some(other) => {
            return wrong(
                "invalid",
                format!("`{other}` is not a choice; the one choice is \"null\""),
            );
        }
    }
    Ok(Column {
        name: name.to_string(),
        ty,
        required: c.required || primary_key,
        primary_key,
        checks,
    })
}

/// `int`, `float`, `dec`, `dec(P,S)`, `str`, `date`, `ts`, `bool`.
fn parse_type(text: &str) -> Option<ColType> {
    let t = text.trim().to_ascii_lowercase().replace(' ', "");
    Some(match t.as_str() {
        "int" => ColType::Int,
        "float" => ColType::Float,
        "dec" => ColType::Dec(18, 2),
        "str" => ColType::Str,
        "date" => ColType::Date,
        "ts" => ColType::Ts,
        "bool" => ColType::Bool,
        _ => {
            let (p, s) = t.strip_prefix("dec(")?.strip_suffix(')')?.split_once(',')?;
            let (p, s): (u8, i8) = (p.parse().ok()?, s.parse().ok()?);
            // Decimal128 holds 38 digits; the scale cannot exceed them.
            if !(1..=38).contains(&p) || s < 0 || s as u8 > p {
                return None;
            }
            ColType::Dec(p, s)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_with_precision_and_scale() {
        assert_eq!(parse_type("dec"), Some(ColType::Dec(18, 2)));
        assert_eq!(parse_type("dec(18, 4)"), Some(ColType::Dec(18, 4)));
        assert_eq!(parse_type("DEC(5,6)"), None);
        assert_eq!(parse_type("dec(39,2)"), None);
        assert_eq!(parse_type("float"), Some(ColType::Float));
    }
}
