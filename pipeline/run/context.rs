//! The state one run shares between its model tasks ([`Run`]): the
//! sessions, the output root, the staging folder and the Parquet settings;
//! opened once the lock is held, closed when the last model is done.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::SessionContext;

use crate::cluster;
use crate::config::Config;
use crate::engine;
use crate::error::{Error, Result};
use crate::ingest::{self, IngestOptions};
use crate::models::{Dag, Layer};
use crate::parquet;
use crate::storage::{self, Root};
use crate::udf::RunContext;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub config: Config,
    pub as_of: NaiveDate,
    /// `--select` expressions; empty = every model.
    pub select: Vec<String>,
    pub layer: Option<Layer>,
    /// The command line, recorded in run_results.json.
    pub arguments: Vec<String>,
    /// `--full-refresh`: read every input file and rebuild every selected
    /// model, whatever the state says.
    pub full_refresh: bool,
    /// `--retry`: only the models the previous run did not finish.
    pub retry: bool,
}

/// State shared by the model tasks of one run.
pub struct Run {
    pub ctx: SessionContext,
    /// With `engine = "ballista"`: where silver and gold SQL runs.
    pub cluster: Option<SessionContext>,
    pub root: Root,
    pub config: Config,
    pub run_id: String,
    pub as_of: NaiveDate,
    pub started: DateTime<Utc>,
    /// The input as the user named it (a remote input is downloaded first).
    pub input_display: String,
    /// Local folder where this run's tables wait for their data tests.
    pub staging: PathBuf,
    staging_root: PathBuf,
    silver_props: WriterProperties,
    gold_props: WriterProperties,
    pub ingest: IngestOptions,
    /// Raised when another run took the lock over: nothing more is published.
    lease_lost: Arc<AtomicBool>,
    /// Held (shared) by every blocking ingestion job while it runs, so a
    /// cancelled run can wait for them before removing the staging folder.
    blocking: Arc<tokio::sync::RwLock<()>>,
    pub full_refresh: bool,
    /// The fingerprint of each table's published version, as this run goes
    /// (`fingerprint.rs`); `None` when unknown.
    versions: Mutex<HashMap<String, Option<String>>>,
    /// What an incremental model needs to know of each table it may read.
    pub tables: HashMap<String, TableInfo>,
}

/// A table of the project, as an incremental model reading it sees it.
#[derive(Debug, Clone, Default)]
pub struct TableInfo {
    pub layer: Option<Layer>,
    /// A declared source's primary key (empty for other tables).
    pub key: Vec<String>,
    /// A declared source: a set of per-file parts.
    pub parts: bool,
    /// An incremental model: a set of date partitions.
    pub partitioned: bool,
    /// The days one of those partitions holds.
    pub period: crate::models::period::Period,
}

impl TableInfo {
    fn of(model: &crate::models::Model) -> TableInfo {
        let (key, parts) = match &model.kind {
            crate::models::ModelKind::Source(source) => (
                source
                    .primary_key()
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
                true,
            ),
            _ => (Vec::new(), false),
        };
        TableInfo {
            layer: Some(model.layer),
            key,
            parts,
            partitioned: model.incremental.is_some(),
            period: model
                .incremental
                .as_ref()
                .map(|i| i.period)
                .unwrap_or_default(),
        }
    }
}

impl Run {
    /// Set up a run whose lock is held: clear what a dead run staged, fetch
    /// a remote input, build the sessions and make the published tables of
    /// the models this run does not build readable.
    pub async fn open(
        request: &RunRequest,
        dag: &Dag,
        selected: &BTreeSet<String>,
        root: Root,
        run_id: String,
        started: DateTime<Utc>,
        lease_lost: Arc<AtomicBool>,
    ) -> Result<Run> {
        let mut config = request.config.clone();
        // We hold the lock: any staging folder left is from a run that died.
        let staging_root = root.staging_root()?;
        if staging_root.exists() {
            let _ = std::fs::remove_dir_all(&staging_root);
        }
        let staging = staging_root.join(&run_id);
        let input_display = config.input.display().to_string();
        if let Some(url) = storage::parse_location(&config.input)?
            && selected.iter().any(|n| n.starts_with("bronze_"))
        {
            config.input = storage::download_input(&url, &staging.join("_input")).await?;
        }
        let run_ctx = RunContext::new(request.as_of, &config);
        let ctx = engine::session_context(&config, &run_ctx)?;
        root.register_store(&ctx);
        let cluster = cluster::cluster_context(&config, &run_ctx).await?;
        if let (Some(cluster), Root::Object(object)) = (&cluster, &root) {
            root.register_store(cluster);
            // We hold the lock: anything staged there is from a run that died.
            object.clear_staging().await?;
        }
        let run = Run {
            ctx,
            cluster,
            root,
            ingest: IngestOptions {
                batch_rows: config.batch_rows,
                run_id: run_id.clone(),
                ingested_at: started.timestamp_micros(),
                writer_properties: parquet::writer_properties(&config, Layer::Bronze)?,
                cancel: Arc::default(),
                chunk_bytes: config.csv_chunk_mb.saturating_mul(1 << 20),
                workload: Arc::new(ingest::Workload::for_run(config.max_concurrent_models)),
            },
            silver_props: parquet::writer_properties(&config, Layer::Silver)?,
            gold_props: parquet::writer_properties(&config, Layer::Gold)?,
            config,
            run_id,
            as_of: request.as_of,
            started,
            input_display,
            staging,
            staging_root,
            lease_lost,
            blocking: Arc::default(),
            full_refresh: request.full_refresh,
            versions: Mutex::default(),
            tables: dag
                .ordered()
                .map(|m| (m.name.clone(), TableInfo::of(m)))
                .collect(),
        };
        run.register_unselected(dag, selected).await?;
        run.load_versions(dag).await?;
        Ok(run)
    }

    /// Read the fingerprint of every published table from its marker.
    async fn load_versions(&self, dag: &Dag) -> Result<()> {
        let mut versions = HashMap::new();
        for model in dag.ordered() {
            // A marker that cannot be read gives an unknown version: rebuild.
            let marker = match self.root.marker(model.layer.as_str(), &model.name).await {
                Ok(marker) => marker,
                Err(e) => {
                    tracing::warn!(model = %model.name, error = %e, "Published marker unreadable; the model is rebuilt.");
                    None
                }
            };
            versions.insert(model.name.clone(), marker.and_then(|m| m.fingerprint));
        }
        *self.versions_lock() = versions;
        Ok(())
    }

    fn versions_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<String>>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (every update is one insert), so a poisoned lock is still usable.
        self.versions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fingerprint of the version of `table` this run reads now.
    pub fn version(&self, table: &str) -> Option<String> {
        self.versions_lock().get(table).cloned().flatten()
    }

    /// Record the version of `table` this run just published.
    pub fn set_version(&self, table: &str, fingerprint: Option<String>) {
        self.versions_lock().insert(table.to_string(), fingerprint);
    }

    /// Every session of the run: the local one, and the cluster's if any.
    pub fn contexts(&self) -> impl Iterator<Item = &SessionContext> {
        std::iter::once(&self.ctx).chain(self.cluster.as_ref())
    }

    /// The Parquet settings of a silver or gold table.
    pub fn props(&self, layer: Layer) -> &WriterProperties {
        match layer {
            Layer::Gold => &self.gold_props,
            _ => &self.silver_props,
        }
    }

    /// A pass a blocking job holds while it runs (see [`Run::stop_blocking`]).
    pub async fn blocking_pass(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        Arc::clone(&self.blocking).read_owned().await
    }

    /// Ask blocking ingestion to stop at its next batch and wait (at most
    /// `patience`) until every job has returned: an aborted model task does
    /// not stop the thread it started.
    pub async fn stop_blocking(&self, patience: std::time::Duration) {
        self.ingest.cancel.store(true, Ordering::Relaxed);
        if tokio::time::timeout(patience, self.blocking.write())
            .await
            .is_err()
        {
            tracing::warn!(
                "A blocking ingestion job did not stop in time; its staging files may remain until the next run."
            );
        }
    }

    /// True once another run has taken this run's lock over.
    pub fn lease_lost(&self) -> bool {
        self.lease_lost.load(Ordering::Relaxed)
    }

    /// Remove this run's staging folder (whatever the models did).
    pub fn close(&self) {
        let _ = std::fs::remove_dir_all(&self.staging);
        let _ = std::fs::remove_dir(&self.staging_root);
    }

    /// Register the published tables of models this run does not build, and
    /// check every selected model's inputs will exist.
    async fn register_unselected(&self, dag: &Dag, selected: &BTreeSet<String>) -> Result<()> {
        for model in dag.ordered() {
            if selected.contains(&model.name) {
                continue;
            }
            let layer = model.layer.as_str();
            if self.root.is_published(layer, &model.name).await? {
                for ctx in self.contexts() {
                    self.root
                        .register_readable(ctx, &model.name, layer, &model.name)
                        .await
                        .map_err(Error::Input)?;
                }
            }
        }
        for model in dag.ordered().filter(|m| selected.contains(&m.name)) {
            for dep in &model.deps {
                if selected.contains(dep) {
                    continue;
                }
                let dep_layer = dag.get(dep).map_or("?", |m| m.layer.as_str());
                if !self.root.is_published(dep_layer, dep).await? {
                    return Err(Error::Config(format!(
                        "model `{}` reads `{dep}`, which is not selected and has never been published under {}; \
                         run with --select +{} to build its inputs too",
                        model.name,
                        self.root.display(),
                        model.name
                    )));
                }
            }
        }
        Ok(())
    }
}
