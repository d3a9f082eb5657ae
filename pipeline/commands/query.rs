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
    let root = Root::open(&config.output)?;
    let names = register_published(&ctx, &root).await?;
    if names.is_empty() {
        return Err(Error::Input(format!(
            "no published tables under {}; run `medallion run` first or pass --output",
            config.output.display()
        )));
    }
    // Only reads: `query` must never write files or register paths.
    let df = ctx
        .sql_with_options(&args.sql, engine::read_only())
        .await
        .map_err(|e| Error::Input(format!("query: {e}")))?;
    let batches = df.collect().await?;
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

/// Register every published table of an output root under its name.
pub async fn register_published(ctx: &SessionContext, root: &Root) -> Result<Vec<String>> {
    root.register_store(ctx);
    let mut names = Vec::new();
    for layer in Layer::ALL {
        for table in root.published_tables(layer.as_str()).await? {
            root.register(ctx, &table, layer.as_str(), &table).await?;
            names.push(table);
        }
    }
    Ok(names)
}
