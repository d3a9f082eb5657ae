//! `medallion query`: ad-hoc SQL over the published tables of an output root,
//! each registered under its table name, printed as a table, CSV or JSON.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

use super::flags::load_config;
use crate::cli::{QueryArgs, QueryFormat};
use crate::engine;
use crate::error::{Error, Result};
use crate::models::Layer;
use crate::run::default_as_of;
use crate::storage::Root;
use crate::udf::RunContext;

pub async fn query(args: QueryArgs) -> Result<()> {
    let config = load_config(&args.common)?;
    let run = RunContext::new(default_as_of(), &config);
    let ctx = engine::session_context(&config, &run)?;
    // A person's query filters gold tables, whose files carry page indexes.
    engine::set_parquet_options(&ctx, |p| p.enable_page_index = true);
    let root = Root::open(&config.output)?;
    let (names, damaged) = register_published(&ctx, &root).await?;
    if names.is_empty() && damaged.is_empty() {
        return Err(Error::Input(format!(
            "no published tables under {}; run `medallion run` first or pass --output",
            config.output.display()
        )));
    }
    time_travel(&ctx, &root, &args.versions, &args.sql).await?;
    // Only reads: `query` must never write files or register paths.
    let explain = |e: &dyn std::fmt::Display| {
        // A table left out, or a file that broke mid-query: say which.
        let sql = args.sql.to_ascii_lowercase();
        let mut why: Vec<&str> = damaged
            .iter()
            .filter(|(t, _)| sql.contains(t.as_str()))
            .map(|(_, why)| why.as_str())
            .collect();
        let found;
        if why.is_empty() && e.to_string().to_ascii_lowercase().contains("parquet") {
            found = damaged_anywhere(&root);
            why.extend(found.iter().map(String::as_str));
        }
        match why.is_empty() {
            true => Error::Input(format!("query: {e}")),
            false => Error::Input(format!("query: {e}; {}", why.join("; "))),
        }
    };
    let df = ctx
        .sql_with_options(&args.sql, engine::read_only())
        .await
        .map_err(|e| explain(&e))?;
    let batches = df.collect().await.map_err(|e| explain(&e))?;
    let text = format_batches(&batches, args.format)?;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// Render query results as a table, CSV or JSON rows.
pub fn format_batches(batches: &[RecordBatch], format: QueryFormat) -> Result<String> {
    Ok(match format {
        QueryFormat::Table => format!(
            "{}\n",
            datafusion::arrow::util::pretty::pretty_format_batches(batches)?
        ),
        QueryFormat::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(Vec::new());
            for b in batches {
                writer.write(b)?;
            }
            String::from_utf8_lossy(&writer.into_inner()).into_owned()
        }
        QueryFormat::Json => {
            let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
            let mut s = String::from_utf8_lossy(&writer.into_inner()).into_owned();
            s.push('\n');
            s
        }
    })
}

/// Register every readable published table of an output root under its
/// name. A damaged table is left out with a warning naming its file (the
/// others stay queryable); it is returned with that message.
pub async fn register_published(
    ctx: &SessionContext,
    root: &Root,
) -> Result<(Vec<String>, Vec<(String, String)>)> {
    root.register_store(ctx);
    let mut names = Vec::new();
    let mut damaged = Vec::new();
    for layer in Layer::ALL {
        for table in root.published_tables(layer.as_str()).await? {
            match root
                .register_readable(ctx, &table, layer.as_str(), &table)
                .await
            {
                Ok(()) => names.push(table),
                Err(why) => {
                    tracing::warn!(table = %table, reason = %why, "Table left out: it cannot be read.");
                    damaged.push((table, why));
                }
            }
        }
    }
    // Quarantined rows, as `quarantine_<source>`, to look at next to the tables.
    for source in root.published_tables("_quarantine").await? {
        let name = format!("quarantine_{source}");
        if root
            .register_readable(ctx, &name, "_quarantine", &source)
            .await
            .is_ok()
        {
            names.push(name);
        }
    }
    Ok((names, damaged))
}

/// `--version [TABLE=]N`: re-register Delta tables at an earlier version.
/// A bare `N` applies to every Delta table the SQL names.
async fn time_travel(
    ctx: &SessionContext,
    root: &Root,
    versions: &[String],
    sql: &str,
) -> Result<()> {
    if versions.is_empty() {
        return Ok(());
    }
    // (layer, table, is a Delta table) of every published model table.
    let mut published = Vec::new();
    for layer in [Layer::Silver, Layer::Gold] {
        for table in root.published_tables(layer.as_str()).await? {
            let marker = root.marker(layer.as_str(), &table).await?;
            let delta = marker.is_some_and(|m| m.delta_version.is_some());
            published.push((layer, table, delta));
        }
    }
    let layer_of = |name: &str| {
        published
            .iter()
            .find(|(_, t, _)| t == name)
            .map(|(layer, _, _)| *layer)
    };
    let sql = sql.to_ascii_lowercase();
    for spec in versions {
        let bad = || {
            Error::Config(format!(
                "--version {spec}: expected N or TABLE=N, a Delta table version (0 is the first)"
            ))
        };
        let (tables, number) = match spec.split_once('=') {
            Some((table, n)) => {
                let table = table.trim().to_string();
                let layer = layer_of(&table).ok_or_else(|| {
                    Error::Input(format!(
                        "--version {spec}: no published silver or gold table `{table}`"
                    ))
                })?;
                (vec![(layer, table)], n)
            }
            None => {
                let named: Vec<(Layer, String)> = published
                    .iter()
                    .filter(|(_, t, delta)| *delta && sql.contains(t.as_str()))
                    .map(|(layer, t, _)| (*layer, t.clone()))
                    .collect();
                if named.is_empty() {
                    return Err(Error::Input(format!(
                        "--version {spec}: the query reads no Delta table \
                         (publish with table_format = \"delta\" to keep versions)"
                    )));
                }
                (named, spec.as_str())
            }
        };
        let version: u64 = number.trim().parse().map_err(|_| bad())?;
        for (layer, table) in tables {
            root.register_version(ctx, &table, layer.as_str(), &table, version)
                .await?;
        }
    }
    Ok(())
}

/// Every damaged file of a local root's published tables, as messages.
fn damaged_anywhere(root: &Root) -> Vec<String> {
    let mut found = Vec::new();
    for layer in Layer::ALL {
        let tables = match root {
            Root::Local(l) => std::fs::read_dir(l.root.join(layer.as_str()))
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_else(|_| Vec::new()),
            Root::Object(_) => Vec::new(),
        };
        found.extend(tables.iter().filter_map(|t| root.damage(layer.as_str(), t)));
    }
    found
}
