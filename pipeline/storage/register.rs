//! Making local table folders queryable: a folder of Parquet files (its
//! partition folders included) registered under a name, with its schema
//! read from one footer or given by the build that wrote it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::options::ReadOptions;
use datafusion::prelude::SessionContext;

use super::local;
use crate::error::Result;

/// Register a local table folder (published or staged) under `name`.
///
/// Every data file of a version is written with the table's one schema, so
/// the schema is read from one footer, not inferred from all of them (a
/// table of a thousand day files would read a thousand footers just to be
/// registered; docs/performance.md).
pub async fn register_dir(ctx: &SessionContext, name: &str, dir: &Path) -> Result<()> {
    let Some(file) = local::first_parquet(dir) else {
        return register_url(ctx, name, &format!("{}/", dir.display())).await;
    };
    let options = datafusion::prelude::ParquetReadOptions::default()
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    let url = ListingTableUrl::parse(file.display().to_string())?;
    let schema = options.infer_schema(&ctx.state(), &url).await?;
    register_dir_as(ctx, name, dir, schema).await
}

/// Register a local table folder whose columns the caller knows (the build
/// that just wrote it) as `name`, listing its files without reading their
/// footers: inferring the schema of a table of a thousand day files reads a
/// thousand footers, which its readers read again (docs/performance.md).
pub async fn register_dir_as(
    ctx: &SessionContext,
    name: &str,
    dir: &Path,
    schema: SchemaRef,
) -> Result<()> {
    let _ = ctx.deregister_table(name)?;
    let table = parquet_listing(ctx, &[dir.to_path_buf()], schema)?;
    ctx.register_table(name, table)?;
    Ok(())
}

/// A table of the Parquet files in some local folders (listed when read,
/// partition folders included) or named files, with a known schema: no
/// footer is read until a query scans it.
pub fn parquet_listing(
    ctx: &SessionContext,
    paths: &[PathBuf],
    schema: SchemaRef,
) -> Result<Arc<ListingTable>> {
    let urls = paths
        .iter()
        .map(|p| {
            let text = if p.is_dir() {
                format!("{}/", p.display())
            } else {
                p.display().to_string()
            };
            ListingTableUrl::parse(text)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let options = datafusion::prelude::ParquetReadOptions::default()
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    // The run's statistics cache: a file read by several models and tests
    // has its footer turned into statistics once, not at every scan.
    let cache = ctx.runtime_env().cache_manager.get_file_statistic_cache();
    Ok(Arc::new(ListingTable::try_new(config)?.with_cache(cache)))
}

/// Register every Parquet file under a folder or `s3://…/` prefix as `name`.
pub async fn register_url(ctx: &SessionContext, name: &str, url: &str) -> Result<()> {
    let _ = ctx.deregister_table(name)?;
    ctx.register_parquet(
        name,
        url,
        datafusion::prelude::ParquetReadOptions::default(),
    )
    .await?;
    Ok(())
}
