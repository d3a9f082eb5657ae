//! `medallion sources`: the declared sources with their files, format,
//! keys, columns and checks, as a listing or as JSON for tools.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::flags::load_config;
use crate::cli::{SourcesArgs, SourcesFormat};
use crate::error::Result;
use crate::ingest::load_sources;
use crate::ingest::sources::{ColType, Column, Range, Source};

pub fn sources(args: SourcesArgs) -> Result<()> {
    let mut config = load_config(&args.common)?;
    if let Some(input) = &args.input {
        config.input = input.clone();
    }
    let sources = load_sources(&config.models)?;
    let text = match args.format {
        SourcesFormat::Text => render_text(&sources, &config.input),
        SourcesFormat::Json => {
            let list: Vec<_> = sources.iter().map(|s| describe(s, &config.input)).collect();
            serde_json::to_string_pretty(&json!({ "sources": list }))? + "\n"
        }
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// One source as JSON: every key of its declaration, resolved.
pub fn describe(s: &Source, input: &Path) -> serde_json::Value {
    let columns: Vec<_> = s
        .columns
        .iter()
        .map(|c| {
            let (min, max) = bounds(c);
            json!({
                "name": c.name,
                "type": c.ty.declared_name(),
                "required": c.required,
                "primary_key": c.primary_key,
                "min": min,
                "max": max,
                "values": (!c.checks.values.is_empty()).then_some(&c.checks.values),
                "pattern": c.checks.pattern_text,
                "invalid": c.checks.invalid_null.then_some("null"),
            })
        })
        .collect();
    json!({
        "name": s.name,
        "table": s.bronze_table(),
        "declared_in": s.declared_in.display().to_string(),
        "description": s.description,
        "path": s.path,
        "inputs": s.inputs(input),
        "format": s.format.as_str(),
        "delimiter": char::from(s.dialect.delimiter).to_string(),
        "quote": char::from(s.dialect.quote).to_string(),
        "header": s.dialect.header,
        "primary_key": s.primary_key().iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        "latest_by": s.latest_by,
        "unknown_columns": if s.fail_on_unknown_columns { "fail" } else { "ignore" },
        "columns": columns,
    })
}

/// The declared range of a column in its own units (decimals unscaled).
fn bounds(c: &Column) -> (Option<f64>, Option<f64>) {
    let scale = match c.ty {
        ColType::Dec(_, s) => 10f64.powi(i32::from(s)),
        _ => 1.0,
    };
    match c.checks.range {
        Some(Range::Int(lo, hi)) => (lo.map(|x| x as f64), hi.map(|x| x as f64)),
        Some(Range::Dec(lo, hi)) => (lo.map(|x| x as f64 / scale), hi.map(|x| x as f64 / scale)),
        Some(Range::Float(lo, hi)) => (lo, hi),
        None => (None, None),
    }
}

/// The checks of a column in words.
fn checks_text(c: &Column) -> String {
    let mut parts = Vec::new();
    match bounds(c) {
        (Some(lo), Some(hi)) => parts.push(format!("{lo}..{hi}")),
        (Some(lo), None) => parts.push(format!(">= {lo}")),
        (None, Some(hi)) => parts.push(format!("<= {hi}")),
        (None, None) => {}
    }
    if !c.checks.values.is_empty() {
        parts.push(format!("one of {}", c.checks.values.join(", ")));
    }
    if let Some(p) = &c.checks.pattern_text {
        parts.push(format!("matches `{p}`"));
    }
    if c.checks.invalid_null {
        parts.push("invalid values land as NULL".into());
    }
    parts.join("; ")
}

fn render_text(sources: &[Source], input: &Path) -> String {
    let mut out = String::new();
    for s in sources {
        let key: Vec<&str> = s.primary_key().iter().map(|c| c.name.as_str()).collect();
        out.push_str(&format!(
            "{}  ({})\n",
            s.bronze_table(),
            s.declared_in.display()
        ));
        if let Some(d) = &s.description {
            out.push_str(&format!("  {d}\n"));
        }
        out.push_str(&format!("  files        {}\n", s.inputs(input)));
        if s.format == crate::ingest::sources::Format::Csv {
            out.push_str(&format!(
                "  dialect      delimiter {:?}, quote {:?}, {}\n",
                char::from(s.dialect.delimiter),
                char::from(s.dialect.quote),
                if s.dialect.header {
                    "header"
                } else {
                    "no header: columns in declared order"
                }
            ));
        }
        out.push_str(&format!(
            "  primary key  {}\n  latest by    {}\n  unknown      {}\n",
            if key.is_empty() {
                "(none: every row is kept)".into()
            } else {
                key.join(", ")
            },
            s.latest_by.as_deref().unwrap_or("(file name, then line)"),
            if s.fail_on_unknown_columns {
                "fail"
            } else {
                "ignore"
            },
        ));
        for c in &s.columns {
            let flag = match (c.primary_key, c.required) {
                (true, _) => "key",
                (false, true) => "required",
                _ => "",
            };
            out.push_str(&format!(
                "    {:<24} {:<10} {:<9} {}\n",
                c.name,
                c.ty.declared_name(),
                flag,
                checks_text(c)
            ));
        }
        out.push('\n');
    }
    out
}
