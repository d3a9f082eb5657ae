//! An incremental silver over one bronze table with new files: the rows of
//! the new files' keys recomputed, in the dates those keys had and have;
//! with `follows`, also the rows in changed dates of the followed inputs
//! (the keys whose bronze rows point into those dates now, and the keys
//! the published version had in them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionContext, col, lit};

use super::Follow;
use super::files::{files_provider, input_provider, scratch_context};
use crate::error::{Error, Result};
use crate::models::Model;
use crate::models::sidecar::Incremental;
use crate::parquet::partitioned::{Count, PartitionDate, Placement, write_partitioned};
use crate::parquet::storage_schema;
use crate::run::context::Run;
use crate::storage::Layout;

/// Recompute the rows of the keys in new bronze parts: the dates those keys
/// had and have now are rewritten, keeping the other keys' rows.
pub(super) async fn by_keys(
    target: &Target<'_>,
    sql: &str,
    table: &str,
    parts: &[(PathBuf, String)],
    follow: &[Follow],
    layout: &Layout,
) -> Result<Recomputed> {
    let (run, model, spec) = (target.run, target.model, target.spec);
    let started = std::time::Instant::now();
    let key = run
        .tables
        .get(table)
        .map(|i| i.key.clone())
        .unwrap_or_default();
    let ctx = scratch_context(run);
    // The new keys are few among all bronze rows: the scan decodes the key
    // columns, filters them by the join's keys, and decodes the other
    // columns only of matching rows (docs/performance.md).
    crate::engine::set_parquet_options(&ctx, |p| p.pushdown_filters = true);
    let whole = run.ctx.table_provider(table).await?;
    let files: Vec<PathBuf> = parts
        .iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, _)| p.clone())
        .collect();
    let new_rows = files_provider(run, whole.schema(), &files).await?;
    if key.is_empty() {
        if let Some(f) = follow.first() {
            return Err(Error::Input(format!(
                "incremental model {} follows {} but reads {table}, which has no primary key; drop `follows` from its sidecar",
                model.name, f.table
            )));
        }
        return by_rows(target, sql, table, new_rows).await;
    }
    ctx.register_table("__new_rows", new_rows)?;
    ctx.register_table("__all_rows", whole)?;
    register_others(run, &ctx, model, table).await?;
    let quoted: Vec<String> = key.iter().map(|k| format!("\"{k}\"")).collect();
    let on = |a: &str, b: &str| {
        quoted
            .iter()
            // Parenthesised: `x is not distinct from y and z` reads `y and z` as one.
            .map(|k| format!("({a}.{k} is not distinct from {b}.{k})"))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let columns = quoted.join(", ");
    let mut sources = vec![format!("select {columns} from __new_rows")];
    // The rows of followed inputs' changed dates: the keys whose bronze rows
    // point into them now, and those the published version had in them.
    let out_schema = storage_schema(run.ctx.sql(sql).await?.schema().as_arrow());
    for (i, f) in follow.iter().enumerate() {
        let now = input_provider(run, &f.table, &f.dates, None, layout).await?;
        ctx.register_table(format!("__follow_{i}"), now)?;
        let old: Vec<PathBuf> = f
            .dates
            .iter()
            .filter_map(|d| target.kept.get(d))
            .flatten()
            .cloned()
            .collect();
        let old = files_provider(run, out_schema.clone(), &old).await?;
        ctx.register_table(format!("__followed_{i}"), old)?;
        let c = format!("\"{}\"", f.column);
        sources.push(format!(
            "select {columns} from __all_rows where {c} in (select {c} from __follow_{i})"
        ));
        sources.push(format!("select {columns} from __followed_{i}"));
    }
    let keys_sql = format!(
        "select distinct {columns} from ({}) as k",
        sources.join(" union all ")
    );
    // The plan's schema, not a batch's: no key at all is a valid outcome
    // (a followed date changed without any of this table's rows).
    let keys = ctx.sql(&keys_sql).await?;
    let keys_schema: SchemaRef = keys.schema().inner().clone();
    let keys = keys.collect().await?;
    let key_count: usize = keys.iter().map(|b| b.num_rows()).sum();
    tracing::debug!(model = %model.name, keys = key_count, seconds = started.elapsed().as_secs_f64(), "Keys to recompute found.");
    ctx.register_table(
        "__keys",
        Arc::new(MemTable::try_new(keys_schema, vec![keys])?),
    )?;
    // Every bronze row of those keys, from any file: few, so held in memory.
    // (A semi join: a list of literals filtered in the scan was 50 times slower.)
    let restricted = ctx
        .sql(&format!(
            "select a.* from __all_rows a left semi join __keys k on {}",
            on("a", "k")
        ))
        .await?;
    let restricted_schema: SchemaRef = restricted.schema().inner().clone();
    let restricted = restricted.collect().await?;
    tracing::debug!(model = %model.name, rows = restricted.iter().map(|b| b.num_rows()).sum::<usize>(), seconds = started.elapsed().as_secs_f64(), "Bronze rows of the keys read.");
    let new_files: Vec<_> = parts.iter().map(|(_, f)| lit(f.as_str())).collect();
    let all = Arc::new(MemTable::try_new(
        restricted_schema.clone(),
        vec![restricted],
    )?);
    ctx.register_table("__restricted", all.clone())?;
    // The keys' rows as published (without the new files) and as they are now.
    let mut before = ctx.table("__restricted").await?;
    if !new_files.is_empty() {
        before = before.filter(col("_source_file").in_list(new_files, true))?;
    }
    let before = before.into_view();
    ctx.register_table(table, before)?;
    let old_rows = ctx.sql(sql).await?.collect().await?;
    let _ = ctx.deregister_table(table)?;
    ctx.register_table(table, all)?;
    let df = ctx.sql(sql).await?;
    let schema = storage_schema(df.schema().as_arrow());
    let output = df.schema().as_arrow().clone();
    for k in &key {
        if output.index_of(k).is_err() {
            return Err(Error::Input(format!(
                "incremental model {} over {table} must keep the primary key column `{k}` in its output (or declare no `incremental`)",
                model.name
            )));
        }
    }
    let by = crate::parquet::partitioned::date_column(&output, &spec.by)?;
    let new_rows = df.collect().await?;
    tracing::debug!(model = %model.name, seconds = started.elapsed().as_secs_f64(), "Keys' rows computed before and after.");
    // The followed dates are rewritten even where no key's row is left.
    let mut dates: BTreeSet<PartitionDate> = follow.iter().flat_map(|f| f.dates.clone()).collect();
    for batch in old_rows.iter().chain(&new_rows) {
        collect_dates(batch, by, &mut dates);
    }
    // In those dates: the published rows of other keys, then the keys' new rows.
    let kept_rows = format!(
        "select o.* from __old o left anti join __keys k on {}",
        on("o", "k")
    );
    let written = target
        .rewrite(&ctx, &dates, &schema, new_rows, &kept_rows)
        .await?;
    tracing::debug!(model = %model.name, dates = dates.len(), seconds = started.elapsed().as_secs_f64(), "Keys' dates rewritten.");
    Ok((dates, written, schema))
}

/// A bronze table without a key: the model over the new files' rows alone
/// gives their output rows, added to the rows their dates already had.
async fn by_rows(
    target: &Target<'_>,
    sql: &str,
    table: &str,
    new_rows: Arc<dyn TableProvider>,
) -> Result<Recomputed> {
    let (run, model, spec) = (target.run, target.model, target.spec);
    let ctx = scratch_context(run);
    ctx.register_table(table, new_rows)?;
    register_others(run, &ctx, model, table).await?;
    let df = ctx.sql(sql).await?;
    let schema = storage_schema(df.schema().as_arrow());
    let by = crate::parquet::partitioned::date_column(df.schema().as_arrow(), &spec.by)?;
    let rows = df.collect().await?;
    let mut dates: BTreeSet<PartitionDate> = BTreeSet::new();
    for batch in &rows {
        collect_dates(batch, by, &mut dates);
    }
    let written = target
        .rewrite(&ctx, &dates, &schema, rows, "select * from __old")
        .await?;
    Ok((dates, written, schema))
}

/// The dates recomputed, the rows written to each, the table's schema.
pub(super) type Recomputed = (
    BTreeSet<PartitionDate>,
    BTreeMap<PartitionDate, Count>,
    SchemaRef,
);

/// One build of an incremental model and where its recomputed dates go.
pub(super) struct Target<'a> {
    pub run: &'a Run,
    pub model: &'a Model,
    pub spec: &'a Incremental,
    /// Every date of the previous version and its folders (one on each
    /// side of the as-of date where its rows are split).
    pub kept: &'a BTreeMap<PartitionDate, Vec<PathBuf>>,
    pub placement: &'a Placement,
}

impl Target<'_> {
    /// Write `dates` anew: the rows `kept_rows` selects from their previous
    /// files (`__old`), then `rows` (`__now`).
    async fn rewrite(
        &self,
        ctx: &SessionContext,
        dates: &BTreeSet<PartitionDate>,
        schema: &SchemaRef,
        rows: Vec<RecordBatch>,
        kept_rows: &str,
    ) -> Result<BTreeMap<PartitionDate, Count>> {
        let old: Vec<PathBuf> = dates
            .iter()
            .filter_map(|d| self.kept.get(d))
            .flatten()
            .cloned()
            .collect();
        ctx.register_table(
            "__old",
            files_provider(self.run, schema.clone(), &old).await?,
        )?;
        let rows = rows
            .iter()
            .map(|b| crate::parquet::write::conform(b, schema))
            .collect::<Result<Vec<_>>>()?;
        ctx.register_table(
            "__now",
            Arc::new(MemTable::try_new(schema.clone(), vec![rows])?),
        )?;
        let merged = ctx
            .sql(&format!("{kept_rows} union all select * from __now"))
            .await?;
        self.write(merged).await
    }

    /// Write the rows of `df` into their date folders (each on its side of
    /// the as-of date); the rows written per date.
    pub async fn write(&self, df: DataFrame) -> Result<BTreeMap<PartitionDate, Count>> {
        write_partitioned(
            df,
            &self.spec.by,
            self.placement,
            &self.run.run_id,
            self.run.props(self.model.layer),
        )
        .await
    }
}

/// Make the model's inputs other than `table` readable in `ctx`, whole.
async fn register_others(
    run: &Run,
    ctx: &SessionContext,
    model: &Model,
    table: &str,
) -> Result<()> {
    for dep in model.deps.iter().filter(|d| d.as_str() != table) {
        ctx.register_table(dep.as_str(), run.ctx.table_provider(dep).await?)?;
    }
    Ok(())
}

fn collect_dates(batch: &RecordBatch, column: usize, dates: &mut BTreeSet<PartitionDate>) {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Date32Type;
    let values = batch.column(column).as_primitive::<Date32Type>();
    for i in 0..values.len() {
        dates.insert(values.is_valid(i).then(|| values.value(i)));
    }
}
