//! The files of an incremental build: a session whose inputs can be parts
//! of tables, partition folders found, kept by hard links (in folders
//! moved from the spare version the last publish replaced) and cleared.

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
///
/// When `to` does not exist yet and `spare` (the version the table's last
/// publish replaced) holds a folder of its name, that folder is moved in
/// and made to hold exactly `from`'s files: mostly it holds those very
/// files already, and moving a folder costs a small part of making one
/// (docs/performance.md).
pub(super) fn link_folder(from: &Path, to: &Path, spare: &Path) -> Result<()> {
    let wanted: BTreeMap<std::ffi::OsString, u64> = std::fs::read_dir(from)
        .map_err(|e| Error::io("cannot list", from, e))?
        .flatten()
        .map(|e| (e.file_name(), e.metadata().map_or(0, |m| inode(&m))))
        .collect();
    let mut present: BTreeSet<std::ffi::OsString> = BTreeSet::new();
    if !to.exists() && reuse_spare(to, spare) {
        let entries = std::fs::read_dir(to).map_err(|e| Error::io("cannot list", to, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let same = entry.metadata().is_ok_and(|m| {
                m.is_file() && wanted.get(&name).is_some_and(|&i| i != 0 && i == inode(&m))
            });
            if same {
                present.insert(name);
                continue;
            }
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| Error::io("cannot clear reused partition folder", &path, e))?;
        }
    } else {
        std::fs::create_dir_all(to)
            .map_err(|e| Error::io("cannot create partition folder", to, e))?;
    }
    for name in wanted.keys().filter(|n| !present.contains(*n)) {
        let (src, dst) = (from.join(name), to.join(name));
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| Error::io("cannot keep partition", &src, e))?;
        }
    }
    Ok(())
}

/// Move the spare's folder of `to`'s name to `to`; false when there is none.
fn reuse_spare(to: &Path, spare: &Path) -> bool {
    let Some(name) = to.file_name() else {
        return false;
    };
    let old = spare.join(name);
    if !old.is_dir() {
        return false;
    }
    if let Some(parent) = to.parent()
        && std::fs::create_dir_all(parent).is_err()
    {
        return false;
    }
    std::fs::rename(&old, to).is_ok()
}

/// A file's inode number: equal numbers on one filesystem are one file.
#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

/// No inode numbers: never taken for the same file, so always linked again.
#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[cfg(unix)]
    #[test]
    fn a_reused_spare_folder_ends_with_exactly_the_kept_files() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("table/d=2026-10-01");
        let spare = tmp.path().join("spare");
        let old = spare.join("d=2026-10-01");
        std::fs::create_dir_all(&from).unwrap();
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(from.join("same.parquet"), "kept").unwrap();
        std::fs::write(from.join("new.parquet"), "new").unwrap();
        std::fs::write(from.join("renamed.parquet"), "current").unwrap();
        // The spare holds one of the files itself, a stale file of the same
        // name as a kept one, a file no longer kept and a stray folder.
        std::fs::hard_link(from.join("same.parquet"), old.join("same.parquet")).unwrap();
        std::fs::write(old.join("renamed.parquet"), "stale").unwrap();
        std::fs::write(old.join("gone.parquet"), "gone").unwrap();
        std::fs::create_dir_all(old.join("stray")).unwrap();
        let to = tmp.path().join("stage/d=2026-10-01");
        link_folder(&from, &to, &spare).unwrap();
        assert!(!old.exists(), "the spare folder was moved in");
        assert_eq!(names(&to), names(&from));
        for name in names(&from) {
            let (a, b) = (from.join(&name), to.join(&name));
            assert_eq!(
                std::fs::metadata(&a).unwrap().ino(),
                std::fs::metadata(&b).unwrap().ino(),
                "{name}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(to.join("renamed.parquet")).unwrap(),
            "current"
        );
        // Without a spare folder of its name, a new folder is made.
        let other = tmp.path().join("stage/d=2026-10-02");
        link_folder(&from, &other, &spare).unwrap();
        assert_eq!(names(&other), names(&from));
    }
}
