//! Write–audit–publish: a model's new version waits in staging while its
//! data tests run on it; only if no error-severity test fails is it swapped
//! into place (atomically, see `crate::storage`) and made the version every
//! session of the run reads. Otherwise the previous version stays.

use std::path::Path;
use std::time::Instant;

use super::context::Run;
use super::results::ModelResult;
use crate::audit;
use crate::error::{Error, Result};
use crate::models::Model;
use crate::storage::{self, ObjectRoot, SUCCESS_MARKER};
use datafusion::prelude::SessionContext;

/// Where a model's new version waits for its data tests.
#[derive(Clone, Copy)]
pub enum Staged<'a> {
    /// A local folder: every bronze table, and SQL models on the local engine.
    Local(&'a Path),
    /// `_staging/<run_id>/<layer>/<table>/` of the object root, written by
    /// the cluster behind `ctx`.
    Cluster {
        root: &'a ObjectRoot,
        ctx: &'a SessionContext,
    },
}

/// Test the staged table, then publish it or keep the previous version.
pub async fn publish(
    run: &Run,
    model: &Model,
    staged: Staged<'_>,
    rows: u64,
    result: &mut ModelResult,
) -> Result<()> {
    let layer = model.layer.as_str();
    let name = model.name.as_str();
    if let Staged::Local(stage) = staged {
        write_marker(&run.run_id, stage, rows)?;
    }
    if !model.tests.is_empty() {
        // Dependants wait for this model, so nobody else reads this name meanwhile.
        let (test_ctx, limit) = match staged {
            Staged::Cluster { root, ctx } => {
                let url = root.staging_url(&run.run_id, layer, name);
                storage::register_url(ctx, name, &url).await?;
                (ctx, run.config.cluster_query_timeout_seconds)
            }
            Staged::Local(stage) => {
                storage::register_dir(&run.ctx, name, stage).await?;
                (&run.ctx, 0)
            }
        };
        let started = Instant::now();
        result.tests = audit::run_tests(test_ctx, name, &model.tests, limit).await;
        tracing::debug!(model = %name, tests = model.tests.len(), seconds = started.elapsed().as_secs_f64(), "Data tests ran on the staged table.");
        let blocking: Vec<&str> = result
            .tests
            .iter()
            .filter(|t| t.blocks())
            .map(|t| t.name.as_str())
            .collect();
        if !blocking.is_empty() {
            if let Staged::Cluster { root, .. } = staged {
                root.discard_staged(&run.run_id, layer, name).await?;
            }
            if run.root.is_published(layer, name).await? {
                register_published(run, layer, name).await?;
            } else {
                let _ = test_ctx.deregister_table(name)?;
            }
            return Err(Error::DataTests {
                failed: blocking.len(),
                models: format!("{} ({})", name, blocking.join("; ")),
            });
        }
    }
    if run.lease_lost() {
        return Err(Error::Locked {
            root: run.root.display(),
            holder: "another run, which took this run's lease over after it was not renewed for lock_timeout_seconds; this table was not published"
                .into(),
            lock_file: std::path::PathBuf::from(crate::storage::LOCK_DIR),
        });
    }
    match staged {
        Staged::Local(stage) => run.root.publish(stage, layer, name).await?,
        Staged::Cluster { root, .. } => root.publish_staged(&run.run_id, layer, name, rows).await?,
    }
    register_published(run, layer, name).await
}

/// Make the published version of a table the one every context of the run reads.
pub async fn register_published(run: &Run, layer: &str, name: &str) -> Result<()> {
    for ctx in run.contexts() {
        run.root.register(ctx, name, layer, name).await?;
    }
    Ok(())
}

/// The `_SUCCESS` marker of a staged local folder: run id, rows and the
/// data files of this version (an object root's manifest is made from it).
pub fn write_marker(run_id: &str, dir: &Path, rows: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create staging folder", dir, e))?;
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("cannot list staging folder", dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    files.sort();
    let marker = serde_json::json!({ "run_id": run_id, "rows": rows, "files": files });
    std::fs::write(
        dir.join(SUCCESS_MARKER),
        serde_json::to_vec_pretty(&marker)?,
    )
    .map_err(|e| Error::io("cannot write marker", dir, e))
}
