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
//!   widened by `lookback_days` and `lookahead_days` (a row dated `d` reads
//!   inputs dated `d - lookback_days ..= d + lookahead_days`);
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

mod files;
mod keys;
mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::{ident, lit};
use datafusion::scalar::ScalarValue;

use self::files::{
    files_provider, input_provider, link_folder, partition_folders, remove_other_folders,
    scratch_context,
};
use self::keys::{Target, by_keys};
use self::plan::{current_inputs, plan};
use super::context::Run;
use super::fingerprint;
use super::publish::{Staged, Version, publish, publish_tested};
use super::results::{Build, ModelResult};
use crate::audit::Scope;
use crate::error::{Error, Result};
use crate::models::Model;
use crate::models::sidecar::Incremental;
use crate::parquet::partitioned::{Count, PartitionDate, Placement, date_text, parse_date};
use crate::parquet::{empty_parquet, storage_schema};
use crate::storage::Root;
use crate::storage::marker::{Partitioned, parquet_files};

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
    // `by` is the spec's `as_of_column()`: a row's own day where it has one.
    format!(
        "select * from ({sql}) as incremental_model where \"{by}\" is null or \"{by}\" <= as_of_date()"
    )
}

/// What to recompute.
pub(super) enum Plan {
    /// Every date, from all inputs.
    Full(&'static str),
    /// These output dates, from these input dates.
    Dates(BTreeSet<PartitionDate>),
    /// The keys of these new bronze parts (their files' paths), in `table`,
    /// and the keys of the rows in changed dates of followed inputs.
    Keys {
        table: String,
        parts: Vec<(PathBuf, String)>,
        follow: Vec<Follow>,
    },
}

/// Changed dates of an input the model's rows follow by `column`.
pub(super) struct Follow {
    pub table: String,
    pub column: String,
    pub dates: BTreeSet<PartitionDate>,
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
        as_of_by: spec.as_of_by.clone(),
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
    // The later dates wait outside the table: without them only a full
    // build gives every date back.
    let future_gone = previous
        .as_ref()
        .and_then(|p| p.future.as_ref())
        .is_some_and(|id| !future_root.join(id).is_dir());
    let plan = if future_gone {
        Plan::Full("the dates after the as-of date are gone from _state/future")
    } else {
        let periods = |dep: &str| run.tables.get(dep).map(|t| t.period).unwrap_or_default();
        plan(spec, previous.as_ref(), &base, &inputs, &periods, layout)
    };
    // Every partition the previous version had, published or waiting (or
    // both, for a partition split by `as_of_by`): its folders.
    let mut kept: BTreeMap<PartitionDate, Vec<PathBuf>> = BTreeMap::new();
    // The waiting ones: never tested, as the table did not hold them.
    let mut waited: BTreeSet<PartitionDate> = BTreeSet::new();
    if let (Some(prev), Plan::Dates(_) | Plan::Keys { .. }) = (&previous, &plan) {
        for (date, folder) in partition_folders(&published, &spec.by)? {
            kept.entry(date).or_default().push(folder);
        }
        if let Some(run_id) = &prev.future {
            for (date, folder) in partition_folders(&future_root.join(run_id), &spec.by)? {
                waited.insert(date);
                kept.entry(date).or_default().push(folder);
            }
        }
    }
    let as_of = days(run.as_of);
    // A partition on one side whole holds back all its rows or none; those
    // split by `as_of_by` are written again below, with their counts.
    let mut rows: BTreeMap<PartitionDate, Count> = match &previous {
        Some(prev) if !matches!(plan, Plan::Full(_)) => prev
            .rows
            .iter()
            .filter_map(|(d, n)| {
                let date = parse_date(d)?;
                let later = date.is_some_and(|d| d > as_of);
                Some((
                    date,
                    Count {
                        rows: *n,
                        held: if later { *n } else { 0 },
                    },
                ))
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let target = Target {
        run,
        model,
        spec,
        kept: &kept,
        placement: &placement,
    };
    let schema: SchemaRef;
    // The key columns whose every row a key build rewrote, wherever it was.
    let mut rewritten_keys: Vec<String> = Vec::new();
    let recomputed: BTreeSet<PartitionDate> = match plan {
        Plan::Full(why) => {
            tracing::debug!(model = %name, reason = why, "Incremental model rebuilt whole.");
            result.build = Some(Build::Full);
            let df = run.ctx.sql(sql).await?;
            schema = storage_schema(df.schema().as_arrow());
            rows = target.write(df).await?;
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
                let provider = input_provider(run, dep, &dates, Some(spec), layout).await?;
                ctx.register_table(dep.as_str(), provider)?;
            }
            let list: Vec<_> = dates.iter().filter_map(|d| d.map(date_lit)).collect();
            let df = ctx.sql(sql).await?;
            schema = storage_schema(df.schema().as_arrow());
            let df = df.filter(ident(&spec.by).in_list(list, false))?;
            let written = target.write(df).await?;
            settle(&mut rows, &dates, written);
            dates
        }
        Plan::Keys {
            table,
            parts,
            follow,
        } => {
            let (dates, written, s) =
                by_keys(&target, sql, &table, &parts, &follow, layout).await?;
            rewritten_keys = run
                .tables
                .get(&table)
                .map(|i| i.key.clone())
                .unwrap_or_default();
            schema = s;
            settle(&mut rows, &dates, written);
            dates
        }
    };
    if !matches!(result.build, Some(Build::Full)) {
        result.build = Some(Build::Incremental);
        result.partitions = Some(recomputed.iter().map(|d| date_text(*d)).collect());
    }
    tracing::debug!(model = %name, "Recomputed dates written.");
    // Partitions whose rows fall on both sides of the as-of date, before or
    // now, have their rows placed again (computed as they are, so moving
    // them is all an as-of change asks).
    let resplit: BTreeSet<PartitionDate> = kept
        .iter()
        .filter(|(d, folders)| {
            !recomputed.contains(d)
                && spec.as_of_column() != spec.by
                && (folders.len() > 1 || d.is_some_and(|d| straddles(spec, d, as_of)))
        })
        .map(|(d, _)| *d)
        .collect();
    if !resplit.is_empty() {
        let files: Vec<PathBuf> = resplit.iter().flat_map(|d| kept[d].clone()).collect();
        let df = run
            .ctx
            .read_table(files_provider(run, schema.clone(), &files).await?)?;
        let written = target.write(df).await?;
        settle(&mut rows, &resplit, written);
        tracing::debug!(model = %name, dates = resplit.len(), "Dates across the as-of date placed again.");
    }
    // The other dates keep their files, each on its side of the as-of.
    let spare = layout.spare_dir(layer, name);
    for (date, folders) in &kept {
        if recomputed.contains(date) || resplit.contains(date) {
            continue;
        }
        for folder in folders {
            link_folder(folder, &placement.folder(&spec.by, *date), &spare)?;
        }
    }
    tracing::debug!(model = %name, dates = kept.len(), "Other dates linked.");
    std::fs::create_dir_all(&stage)
        .map_err(|e| Error::io("cannot create staging folder", &stage, e))?;
    if parquet_files(&stage)?.is_empty() {
        // No dates at all: one empty file, so readers still see the columns.
        let bytes = empty_parquet(&schema, run.props(model.layer))?;
        let path = stage.join(format!("part-empty-{}.parquet", run.run_id));
        std::fs::write(&path, bytes).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    let published_rows: u64 = rows.values().map(|c| c.rows - c.held).sum();
    let has_future = rows.values().any(|c| c.held > 0);
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
            rows: rows.iter().map(|(d, c)| (date_text(*d), c.rows)).collect(),
        }),
        schema: Some(schema.clone()),
    };
    let full = matches!(result.build, Some(Build::Full));
    let outcome = if full {
        publish(run, model, Staged::Local(&stage), version, result).await
    } else {
        // The tests read the dates this build wrote or brought in from the
        // waiting side; the other files passed them when first published.
        let tested: Vec<PathBuf> = recomputed
            .iter()
            .chain(&waited)
            .chain(&resplit)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|d| d.is_none_or(|d| d <= as_of))
            .map(|d| placement.side_folder(&spec.by, *d, false))
            .filter(|f| f.is_dir())
            .collect();
        let rows_name = format!("__recomputed_{name}");
        run.ctx.register_table(
            rows_name.as_str(),
            files_provider(run, schema, &tested).await?,
        )?;
        let scope = Scope::Recomputed {
            rows: &rows_name,
            by: &spec.by,
            keys: &rewritten_keys,
        };
        let outcome =
            publish_tested(run, model, Staged::Local(&stage), version, result, scope).await;
        let _ = run.ctx.deregister_table(rows_name.as_str())?;
        outcome
    };
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
    rows: &mut BTreeMap<PartitionDate, Count>,
    dates: &BTreeSet<PartitionDate>,
    written: BTreeMap<PartitionDate, Count>,
) {
    rows.retain(|d, _| !dates.contains(d));
    rows.extend(written);
}

/// Whether the partition dated `start` holds days on both sides of `as_of`.
fn straddles(spec: &Incremental, start: i32, as_of: i32) -> bool {
    let days = spec.period.days(start);
    *days.start() <= as_of && as_of < *days.end()
}

/// Days since the epoch of a date.
fn days(date: chrono::NaiveDate) -> i32 {
    date.signed_duration_since(chrono::DateTime::UNIX_EPOCH.date_naive())
        .num_days() as i32
}

fn date_lit(days: i32) -> datafusion::prelude::Expr {
    lit(ScalarValue::Date32(Some(days)))
}
