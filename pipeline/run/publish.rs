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
use crate::storage::marker::Partitioned;
use crate::storage::{self, InputPart, Marker, ObjectRoot};
use datafusion::arrow::datatypes::SchemaRef;
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

/// What a staged version holds, recorded in its marker.
#[derive(Debug, Clone, Default)]
pub struct Version {
    pub rows: u64,
    /// Digest of what it was built from (`fingerprint.rs`); `None` when unknown.
    pub fingerprint: Option<String>,
    /// A bronze or quarantine table's input files.
    pub inputs: Vec<InputPart>,
    /// An incremental model's dates and inputs.
    pub incremental: Option<Partitioned>,
    /// The columns of its files, when the build knows them: a local table
    /// is then registered without reading every file's footer.
    pub schema: Option<SchemaRef>,
}

/// Test the whole staged table, then publish it or keep the previous version.
pub async fn publish(
    run: &Run,
    model: &Model,
    staged: Staged<'_>,
    version: Version,
    result: &mut ModelResult,
) -> Result<()> {
    publish_tested(run, model, staged, version, result, audit::Scope::Whole).await
}

/// Test the rows `scope` says of the staged table, then publish it or keep
/// the previous version.
pub async fn publish_tested(
    run: &Run,
    model: &Model,
    staged: Staged<'_>,
    version: Version,
    result: &mut ModelResult,
    scope: audit::Scope<'_>,
) -> Result<()> {
    let layer = model.layer.as_str();
    let name = model.name.as_str();
    let started = Instant::now();
    if let Staged::Local(stage) = staged {
        write_marker(&run.run_id, stage, &version)?;
    }
    tracing::debug!(model = %name, seconds = started.elapsed().as_secs_f64(), "Marker written.");
    if !model.tests.is_empty() {
        // Dependants wait for this model, so nobody else reads this name meanwhile.
        let (test_ctx, limit) = match staged {
            Staged::Cluster { root, ctx } => {
                let url = root.staging_url(&run.run_id, layer, name);
                storage::register_url(ctx, name, &url).await?;
                (ctx, run.config.cluster_query_timeout_seconds)
            }
            Staged::Local(stage) => {
                match &version.schema {
                    Some(schema) => {
                        storage::register_dir_as(&run.ctx, name, stage, schema.clone()).await?
                    }
                    None => storage::register_dir(&run.ctx, name, stage).await?,
                }
                (&run.ctx, 0)
            }
        };
        tracing::debug!(model = %name, seconds = started.elapsed().as_secs_f64(), "Staged table registered.");
        let started = Instant::now();
        result.tests = audit::run_tests(test_ctx, name, &model.tests, limit, scope).await;
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
        #[cfg(feature = "delta")]
        Staged::Local(stage)
            if run.config.table_format.of(layer) == crate::config::TableFormat::Delta =>
        {
            let properties = crate::parquet::writer_properties(&run.config, model.layer)?;
            run.root
                .publish_delta(&run.ctx, stage, layer, name, &properties)
                .await?
        }
        Staged::Local(stage) => {
            // An incremental table built here keeps the replaced version as
            // the spare its next build takes partition folders from.
            let spare = model.incremental.is_some();
            run.root.publish(stage, layer, name, spare).await?
        }
        Staged::Cluster { root, .. } => {
            root.publish_staged(
                &run.run_id,
                layer,
                name,
                version.rows,
                version.fingerprint.clone(),
            )
            .await?
        }
    }
    tracing::debug!(model = %name, seconds = started.elapsed().as_secs_f64(), "Swapped in.");
    run.set_version(name, version.fingerprint);
    match (&run.root, staged, version.schema) {
        // A local Parquet table just published from a local folder: its files are the staged ones.
        (storage::Root::Local(layout), Staged::Local(_), Some(schema))
            if run.config.table_format.of(layer) == crate::config::TableFormat::Parquet =>
        {
            let dir = layout.table_dir(layer, name);
            for ctx in run.contexts() {
                storage::register_dir_as(ctx, name, &dir, schema.clone()).await?;
            }
        }
        _ => register_published(run, layer, name).await?,
    }
    tracing::debug!(model = %name, seconds = started.elapsed().as_secs_f64(), "Published version registered.");
    Ok(())
}

/// Make the published version of a table the one every context of the run reads.
pub async fn register_published(run: &Run, layer: &str, name: &str) -> Result<()> {
    for ctx in run.contexts() {
        run.root.register(ctx, name, layer, name).await?;
    }
    Ok(())
}

/// The `_SUCCESS` marker of a staged local folder: run id, rows, the data
/// files of this version and what it was built from (an object root's
/// manifest is made from it).
pub fn write_marker(run_id: &str, dir: &Path, version: &Version) -> Result<()> {
    let marker = Marker {
        fingerprint: version.fingerprint.clone(),
        inputs: version.inputs.clone(),
        incremental: version.incremental.clone(),
        ..Marker::for_dir(run_id, dir, version.rows)?
    };
    marker.write(dir)
}
