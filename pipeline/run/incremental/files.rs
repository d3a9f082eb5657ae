//! The files of an incremental build: a session whose inputs can be parts
//! of tables, partition folders found, kept by hard links and cleared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::models::sidecar::Incremental;
use crate::parquet::partitioned::{PartitionDate, parse_date};
use crate::run::context::Run;
use crate::storage::Layout;

/// A context for one build whose input names may be bound to parts of
/// tables, sharing the run's settings, memory pool and functions.
pub(super) fn scratch_context(run: &Run) -> SessionContext {
    let ctx = SessionContext::new_with_config_rt(run.ctx.copied_config(), run.ctx.runtime_env());
    crate::engine::register_functions(&ctx, &crate::udf::RunContext::new(run.as_of, &run.config));
    ctx
}

/// An input restricted to the dates `dates` need (incremental tables): those
/// `spec`'s partitions read, or `dates` themselves without a spec; or the
/// whole published table (any other input).
pub(super) async fn input_provider(
    run: &Run,
    dep: &str,
    dates: &BTreeSet<PartitionDate>,
    spec: Option<&Incremental>,
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
        match spec {
            Some(spec) => wanted.extend(spec.input_days(*d)),
            None => {
                wanted.insert(*d);
            }
        }
    }
    // A partition of a monthly input is wanted when any of its days is.
    let folders: Vec<PathBuf> = partition_folders(&layout.table_dir(layer, dep), "")?
        .into_iter()
        .filter(|(d, _)| d.is_some_and(|d| info.period.days(d).any(|day| wanted.contains(&day))))
        .map(|(_, f)| f)
        .collect();
    files_provider(run, whole.schema(), &folders).await
}

/// A table over some folders or files, or an empty one with `schema`.
pub(super) async fn files_provider(
    run: &Run,
    schema: SchemaRef,
    paths: &[PathBuf],
) -> Result<Arc<dyn TableProvider>> {
    if paths.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    Ok(crate::storage::parquet_listing(&run.ctx, paths, schema)?)
}

/// The partition folders `<by>=<date>/` under `dir` (any column when `by`
/// is empty), by date; none when `dir` does not exist.
pub(super) fn partition_folders(dir: &Path, by: &str) -> Result<BTreeMap<PartitionDate, PathBuf>> {
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
pub(super) fn link_folder(from: &Path, to: &Path) -> Result<()> {
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
pub(super) fn remove_other_folders(root: &Path, keep: Option<&str>) {
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
