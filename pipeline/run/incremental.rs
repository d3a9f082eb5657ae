//! Incremental models (`incremental = { by, lookback_days }` in the
//! sidecar): a table partitioned by a date column, of which a run
//! recomputes only the dates its inputs changed and keeps the others as
//! they are (hard links into the staged version, which is then tested and
//! swapped in whole like any table).
//!
//! The engine, not the SQL, applies the as-of date: the model is computed
//! for every date, the dates up to the as-of are published and the later
//! ones wait in `_state/future/<table>/<run_id>/`, so that moving the as-of
//! date only moves partitions. Which dates to recompute:
//! - inputs that are incremental tables: their changed partitions, each
//!   widened by `lookback_days` (a row dated `d` reads inputs dated
//!   `d - lookback_days ..= d`);
//! - one bronze table with new files: the model must keep a key's rows a
//!   function of that key's bronze rows (a `latest_rows` with filters and
//!   per-row expressions) and its primary key columns; the dates of the new
//!   files' keys, old and new, are recomputed, and in them those keys'
//!   rows are replaced. A bronze table without a primary key: each row's
//!   output must depend on that row alone (filters and per-row
//!   expressions); the new files' rows are added to their dates.
//!
//! Anything else (first build, `--full-refresh`, an edited model, another
//! input changed, a bronze file changed or removed) rebuilds every date.
//! Only on a local root with Parquet tables and the local engine; elsewhere
//! the model is built whole, unpartitioned, with the same rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::options::ReadOptions;
use datafusion::prelude::{ParquetReadOptions, SessionContext, col, ident, lit};
use datafusion::scalar::ScalarValue;

use super::context::Run;
use super::fingerprint;
use super::publish::{Staged, Version, publish};
use super::results::{Build, ModelResult};
use crate::error::{Error, Result};
use crate::models::Model;
use crate::models::sidecar::Incremental;
use crate::parquet::partitioned::{
    PartitionDate, Placement, date_text, parse_date, write_partitioned,
};
use crate::parquet::{empty_parquet, storage_schema};
use crate::storage::marker::{InputState, Partitioned, parquet_files};
use crate::storage::{Layout, Root};

/// Whether `model` is built date by date here (else whole, unpartitioned).
pub fn applies(run: &Run, model: &Model) -> bool {
    model.incremental.is_some()
        && matches!(run.root, Root::Local(_))
        && run.cluster.is_none()
        && run.config.table_format.of(model.layer.as_str()) == crate::config::TableFormat::Parquet
}

/// The SQL of an incremental model built whole: the engine's as-of cap
/// around the model's query (NULL dates are always published).
pub fn capped_sql(sql: &str, by: &str) -> String {
    format!(
        "select * from ({sql}) as incremental_model where \"{by}\" is null or \"{by}\" <= as_of_date()"
    )
}

/// What to recompute.
enum Plan {
    /// Every date, from all inputs.
    Full(&'static str),
    /// These output dates, from these input dates.
    Dates(BTreeSet<PartitionDate>),
    /// The keys of these new bronze parts (their files' paths), in `table`.
    Keys {
        table: String,
        parts: Vec<(PathBuf, String)>,
    },
}

/// Build an incremental model on a local root (`applies`).
pub async fn build(
    run: &Run,
    model: &Model,
    spec: &Incremental,
    sql: &str,
    fingerprint: Option<String>,
    result: &mut ModelResult,
) -> Result<()> {
    let Root::Local(layout) = &run.root else {
        return Err(Error::Config(
            "incremental build on a non-local root".into(),
        ));
    };
    let layer = model.layer.as_str();
    let name = model.name.as_str();
    let published = layout.table_dir(layer, name);
    let stage = run.staging.join(layer).join(name);
    let future_root = layout.root.join("_state").join("future").join(name);
    let placement = Placement {
        table: stage.clone(),
        future: future_root.join(&run.run_id),
        as_of: days(run.as_of),
    };
    let previous = if run.full_refresh {
        None
    } else {
        run.root
            .marker(layer, name)
            .await?
            .and_then(|m| m.incremental)
    };
    let base = fingerprint::base(run, model, sql);
    let inputs = current_inputs(run, model, layout)?;
    let plan = plan(spec, previous.as_ref(), &base, &inputs, layout);
    // Every partition the previous version had, published or waiting.
    let mut kept: BTreeMap<PartitionDate, PathBuf> = BTreeMap::new();
    if let (Some(prev), Plan::Dates(_) | Plan::Keys { .. }) = (&previous, &plan) {
        for (date, folder) in partition_folders(&published, &spec.by)? {
            kept.insert(date, folder);
        }
        if let Some(run_id) = &prev.future {
            for (date, folder) in partition_folders(&future_root.join(run_id), &spec.by)? {
                kept.insert(date, folder);
            }
        }
    }
    let mut rows: BTreeMap<PartitionDate, u64> = match &previous {
        Some(prev) if !matches!(plan, Plan::Full(_)) => prev
            .rows
            .iter()
            .filter_map(|(d, n)| Some((parse_date(d)?, *n)))
            .collect(),
        _ => BTreeMap::new(),
    };
    let schema: SchemaRef;
    let recomputed: BTreeSet<PartitionDate> = match plan {
        Plan::Full(why) => {
            tracing::debug!(model = %name, reason = why, "Incremental model rebuilt whole.");
            result.build = Some(Build::Full);
            let df = run.ctx.sql(sql).await?;
            schema = storage_schema(df.schema().as_arrow());
            rows = write_partitioned(
                df,
                &spec.by,
                &placement,
                &run.run_id,
                run.props(model.layer),
            )
            .await?;
            BTreeSet::new()
        }
        Plan::Dates(dates) if dates.is_empty() => {
            // Only the as-of date moved: partitions change sides, nothing is computed.
            schema = storage_schema(run.ctx.sql(sql).await?.schema().as_arrow());
            dates
        }
        Plan::Dates(dates) => {
            let ctx = scratch_context(run);
            for dep in &model.deps {
                let provider = input_provider(run, dep, &dates, spec.lookback_days, layout).await?;
                ctx.register_table(dep.as_str(), provider)?;
            }
            let list: Vec<_> = dates.iter().filter_map(|d| d.map(date_lit)).collect();
            let df = ctx.sql(sql).await?;
            schema = storage_schema(df.schema().as_arrow());
            let df = df.filter(ident(&spec.by).in_list(list, false))?;
            let written = write_partitioned(
                df,
                &spec.by,
                &placement,
                &run.run_id,
                run.props(model.layer),
            )
            .await?;
            settle(&mut rows, &dates, written);
            dates
        }
        Plan::Keys { table, parts } => {
            let (dates, written, s) =
                by_keys(run, model, spec, sql, &table, &parts, &kept, &placement).await?;
            schema = s;
            settle(&mut rows, &dates, written);
            dates
        }
    };
    if !matches!(result.build, Some(Build::Full)) {
        result.build = Some(Build::Incremental);
        result.partitions = Some(recomputed.iter().map(|d| date_text(*d)).collect());
    }
    // The dates not recomputed keep their files, each on its side of the as-of.
    for (date, folder) in &kept {
        if recomputed.contains(date) {
            continue;
        }
        link_folder(folder, &placement.folder(&spec.by, *date))?;
    }
    std::fs::create_dir_all(&stage)
        .map_err(|e| Error::io("cannot create staging folder", &stage, e))?;
    if parquet_files(&stage)?.is_empty() {
        // No dates at all: one empty file, so readers still see the columns.
        let bytes = empty_parquet(&schema, run.props(model.layer))?;
        let path = stage.join(format!("part-empty-{}.parquet", run.run_id));
        std::fs::write(&path, bytes).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    let as_of = days(run.as_of);
    let published_rows: u64 = rows
        .iter()
        .filter(|(d, _)| d.is_none_or(|d| d <= as_of))
        .map(|(_, n)| n)
        .sum();
    let has_future = rows.keys().any(|d| d.is_some_and(|d| d > as_of));
    result.rows_written = published_rows;
    let version = Version {
        rows: published_rows,
        fingerprint,
        inputs: Vec::new(),
        incremental: Some(Partitioned {
            base,
            as_of: run.as_of.to_string(),
            inputs,
            future: has_future.then(|| run.run_id.clone()),
            rows: rows.iter().map(|(d, n)| (date_text(*d), *n)).collect(),
        }),
    };
    let outcome = publish(run, model, Staged::Local(&stage), version, result).await;
    // Keep only the future folder the published marker names.
    let keep = match &outcome {
        Ok(()) => has_future.then(|| run.run_id.clone()),
        Err(_) => previous.and_then(|p| p.future),
    };
    remove_other_folders(&future_root, keep.as_deref());
    outcome
}

/// Replace the counts of `dates` by what was written for them.
fn settle(
    rows: &mut BTreeMap<PartitionDate, u64>,
    dates: &BTreeSet<PartitionDate>,
    written: BTreeMap<PartitionDate, u64>,
) {
    rows.retain(|d, _| !dates.contains(d));
    rows.extend(written);
}

/// Days since the epoch of a date.
fn days(date: chrono::NaiveDate) -> i32 {
    date.signed_duration_since(chrono::DateTime::UNIX_EPOCH.date_naive())
        .num_days() as i32
}

fn date_lit(days: i32) -> datafusion::prelude::Expr {
    lit(ScalarValue::Date32(Some(days)))
}

/// Each input as this build reads it (recorded in the marker).
fn current_inputs(
    run: &Run,
    model: &Model,
    layout: &Layout,
) -> Result<BTreeMap<String, InputState>> {
    let mut inputs = BTreeMap::new();
    for dep in &model.deps {
        let info = run.tables.get(dep).cloned().unwrap_or_default();
        let layer = info.layer.map_or("bronze", |l| l.as_str());
        let parquet = run.config.table_format.of(layer) == crate::config::TableFormat::Parquet;
        let state = if info.partitioned && parquet {
            let dir = layout.table_dir(layer, dep);
            let mut partitions: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for file in parquet_files(&dir)? {
                let (folder, name) = file.split_once('/').unwrap_or(("", file.as_str()));
                partitions
                    .entry(folder.to_string())
                    .or_default()
                    .push(name.to_string());
            }
            InputState::Partitions(partitions)
        } else if info.parts {
            let marker = crate::storage::Marker::parse(
                &std::fs::read(
                    layout
                        .table_dir(layer, dep)
                        .join(crate::storage::SUCCESS_MARKER),
                )
                .map_err(|e| Error::io("cannot read marker", &layout.table_dir(layer, dep), e))?,
                dep,
            )?;
            let mut keys: Vec<String> = marker
                .inputs
                .iter()
                .map(|p| format!("{}\t{}", p.key, p.file))
                .collect();
            keys.sort();
            InputState::Parts(keys)
        } else {
            InputState::Version(run.version(dep))
        };
        inputs.insert(dep.clone(), state);
    }
    Ok(inputs)
}

/// Compare the inputs with those the published version was built from.
fn plan(
    spec: &Incremental,
    previous: Option<&Partitioned>,
    base: &str,
    inputs: &BTreeMap<String, InputState>,
    layout: &Layout,
) -> Plan {
    let Some(prev) = previous else {
        return Plan::Full("no incremental version published");
    };
    if prev.base != base {
        return Plan::Full("the model, its tests or the variables changed");
    }
    if prev.inputs.keys().ne(inputs.keys()) {
        return Plan::Full("the model reads other tables");
    }
    let mut dates: BTreeSet<PartitionDate> = BTreeSet::new();
    let mut new_parts: Vec<(String, Vec<String>)> = Vec::new();
    for (dep, now) in inputs {
        match (&prev.inputs[dep], now) {
            (InputState::Version(a), InputState::Version(b)) if a == b && a.is_some() => {}
            (InputState::Parts(a), InputState::Parts(b)) => {
                let had: BTreeSet<&String> = a.iter().collect();
                let has: BTreeSet<&String> = b.iter().collect();
                if !had.is_subset(&has) {
                    return Plan::Full("a bronze file changed or was removed");
                }
                let added: Vec<String> = has.difference(&had).map(|s| s.to_string()).collect();
                if !added.is_empty() {
                    new_parts.push((dep.clone(), added));
                }
            }
            (InputState::Partitions(a), InputState::Partitions(b)) => {
                let folders: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for folder in folders {
                    if a.get(folder) == b.get(folder) {
                        continue;
                    }
                    let value = folder.split_once('=').map_or("", |(_, v)| v);
                    match parse_date(value) {
                        Some(Some(d)) => {
                            for shift in 0..=spec.lookback_days as i32 {
                                dates.insert(Some(d + shift));
                            }
                        }
                        _ => return Plan::Full("an input's undated rows changed"),
                    }
                }
            }
            _ => return Plan::Full("an input changed"),
        }
    }
    match new_parts.as_slice() {
        [] => Plan::Dates(dates),
        // The other inputs are unchanged, so a join with them stays key-local.
        [(table, added)] if dates.is_empty() => {
            let dir = layout.table_dir("bronze", table);
            let parts = added
                .iter()
                .filter_map(|k| k.split_once('\t'))
                .map(|(key, file)| {
                    (
                        dir.join(crate::storage::marker::part_name(key)),
                        file.to_string(),
                    )
                })
                .collect();
            Plan::Keys {
                table: table.clone(),
                parts,
            }
        }
        _ => Plan::Full("new bronze files, with other inputs"),
    }
}

/// A context for one build whose input names may be bound to parts of
/// tables, sharing the run's settings, memory pool and functions.
fn scratch_context(run: &Run) -> SessionContext {
    let ctx = SessionContext::new_with_config_rt(run.ctx.copied_config(), run.ctx.runtime_env());
    crate::engine::register_functions(&ctx, &crate::udf::RunContext::new(run.as_of, &run.config));
    ctx
}

/// An input restricted to the dates `dates` need (incremental tables), or
/// the whole published table (any other).
async fn input_provider(
    run: &Run,
    dep: &str,
    dates: &BTreeSet<PartitionDate>,
    lookback: u32,
    layout: &Layout,
) -> Result<Arc<dyn TableProvider>> {
    let whole = run.ctx.table_provider(dep).await?;
    let info = run.tables.get(dep).cloned().unwrap_or_default();
    if !info.partitioned {
        return Ok(whole);
    }
    let layer = info.layer.map_or("silver", |l| l.as_str());
    let mut wanted: BTreeSet<i32> = BTreeSet::new();
    for d in dates.iter().flatten() {
        wanted.extend((d - lookback as i32)..=*d);
    }
    let folders: Vec<PathBuf> = partition_folders(&layout.table_dir(layer, dep), "")?
        .into_iter()
        .filter(|(d, _)| d.is_some_and(|d| wanted.contains(&d)))
        .map(|(_, f)| f)
        .collect();
    files_provider(run, whole.schema(), &folders).await
}

/// A table over some folders or files, or an empty one with `schema`.
async fn files_provider(
    run: &Run,
    schema: SchemaRef,
    paths: &[PathBuf],
) -> Result<Arc<dyn TableProvider>> {
    if paths.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
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
    let options = ParquetReadOptions::default()
        .to_listing_options(&run.ctx.copied_config(), run.ctx.copied_table_options());
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// The partition folders `<by>=<date>/` under `dir` (any column when `by`
/// is empty), by date; none when `dir` does not exist.
fn partition_folders(dir: &Path, by: &str) -> Result<BTreeMap<PartitionDate, PathBuf>> {
    let mut folders = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(folders);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((column, value)) = name.split_once('=') else {
            continue;
        };
        if (!by.is_empty() && column != by) || !entry.path().is_dir() {
            continue;
        }
        if let Some(date) = parse_date(value) {
            folders.insert(date, entry.path());
        }
    }
    Ok(folders)
}

/// Hard-link (or copy) the files of one partition folder into another.
fn link_folder(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("cannot create partition folder", to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| Error::io("cannot list", from, e))?;
    for entry in entries.flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| Error::io("cannot keep partition", &src, e))?;
        }
    }
    Ok(())
}

/// Remove every folder under `root` but `keep`; leftovers of killed runs
/// and superseded versions. Failures only leave disk space used.
fn remove_other_folders(root: &Path, keep: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if keep.is_some_and(|k| entry.file_name().to_string_lossy() == k) {
            continue;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Recompute the rows of the keys in new bronze parts: the dates those keys
/// had and have now are rewritten, keeping the other keys' rows.
#[allow(clippy::too_many_arguments)]
async fn by_keys(
    run: &Run,
    model: &Model,
    spec: &Incremental,
    sql: &str,
    table: &str,
    parts: &[(PathBuf, String)],
    kept: &BTreeMap<PartitionDate, PathBuf>,
    placement: &Placement,
) -> Result<(
    BTreeSet<PartitionDate>,
    BTreeMap<PartitionDate, u64>,
    SchemaRef,
)> {
    let key = run
        .tables
        .get(table)
        .map(|i| i.key.clone())
        .unwrap_or_default();
    let ctx = scratch_context(run);
    let whole = run.ctx.table_provider(table).await?;
    let files: Vec<PathBuf> = parts
        .iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, _)| p.clone())
        .collect();
    let new_rows = files_provider(run, whole.schema(), &files).await?;
    if key.is_empty() {
        return by_rows(run, model, spec, sql, table, new_rows, kept, placement).await;
    }
    ctx.register_table("__new_rows", new_rows)?;
    ctx.register_table("__all_rows", whole)?;
    register_others(run, &ctx, model, table).await?;
    let quoted: Vec<String> = key.iter().map(|k| format!("\"{k}\"")).collect();
    let on = |a: &str, b: &str| {
        quoted
            .iter()
            .map(|k| format!("{a}.{k} is not distinct from {b}.{k}"))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let keys_sql = format!("select distinct {} from __new_rows", quoted.join(", "));
    let keys = ctx.sql(&keys_sql).await?.collect().await?;
    let keys_schema = keys
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
    ctx.register_table(
        "__keys",
        Arc::new(MemTable::try_new(keys_schema, vec![keys])?),
    )?;
    // Every bronze row of those keys, from any file: few, so held in memory.
    let restricted = ctx
        .sql(&format!(
            "select a.* from __all_rows a left semi join __keys k on {}",
            on("a", "k")
        ))
        .await?;
    let restricted_schema: SchemaRef = restricted.schema().inner().clone();
    let restricted = restricted.collect().await?;
    let new_files: Vec<_> = parts.iter().map(|(_, f)| lit(f.as_str())).collect();
    let all = Arc::new(MemTable::try_new(
        restricted_schema.clone(),
        vec![restricted],
    )?);
    ctx.register_table("__restricted", all.clone())?;
    // The keys' rows as published (without the new files) and as they are now.
    let before = ctx
        .table("__restricted")
        .await?
        .filter(col("_source_file").in_list(new_files, true))?
        .into_view();
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
    let mut dates: BTreeSet<PartitionDate> = BTreeSet::new();
    for batch in old_rows.iter().chain(&new_rows) {
        collect_dates(batch, by, &mut dates);
    }
    // In those dates: the published rows of other keys, then the keys' new rows.
    let old_folders: Vec<PathBuf> = dates.iter().filter_map(|d| kept.get(d).cloned()).collect();
    ctx.register_table(
        "__old",
        files_provider(run, schema.clone(), &old_folders).await?,
    )?;
    let conformed = new_rows
        .iter()
        .map(|b| crate::parquet::write::conform(b, &schema))
        .collect::<Result<Vec<_>>>()?;
    ctx.register_table(
        "__now",
        Arc::new(MemTable::try_new(schema.clone(), vec![conformed])?),
    )?;
    let merged = ctx
        .sql(&format!(
            "select o.* from __old o left anti join __keys k on {} union all select * from __now",
            on("o", "k")
        ))
        .await?;
    let written = write_partitioned(
        merged,
        &spec.by,
        placement,
        &run.run_id,
        run.props(model.layer),
    )
    .await?;
    Ok((dates, written, schema))
}

/// A bronze table without a key: the model over the new files' rows alone
/// gives their output rows, added to the rows their dates already had.
#[allow(clippy::too_many_arguments)]
async fn by_rows(
    run: &Run,
    model: &Model,
    spec: &Incremental,
    sql: &str,
    table: &str,
    new_rows: Arc<dyn TableProvider>,
    kept: &BTreeMap<PartitionDate, PathBuf>,
    placement: &Placement,
) -> Result<(
    BTreeSet<PartitionDate>,
    BTreeMap<PartitionDate, u64>,
    SchemaRef,
)> {
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
    let old_folders: Vec<PathBuf> = dates.iter().filter_map(|d| kept.get(d).cloned()).collect();
    ctx.register_table(
        "__old",
        files_provider(run, schema.clone(), &old_folders).await?,
    )?;
    let conformed = rows
        .iter()
        .map(|b| crate::parquet::write::conform(b, &schema))
        .collect::<Result<Vec<_>>>()?;
    ctx.register_table(
        "__now",
        Arc::new(MemTable::try_new(schema.clone(), vec![conformed])?),
    )?;
    let merged = ctx
        .sql("select * from __old union all select * from __now")
        .await?;
    let written = write_partitioned(
        merged,
        &spec.by,
        placement,
        &run.run_id,
        run.props(model.layer),
    )
    .await?;
    Ok((dates, written, schema))
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
