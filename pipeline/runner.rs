//! Executes a run: lock, then for each selected model in dependency order
//! (independent ones concurrently) build → stage → publish, then write
//! `run_results.json`. A failed model keeps its previous version published and
//! its dependants are skipped; the rest of the run goes on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, SecondsFormat, Utc};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::audit::{self, TestResult};
use crate::catalog::{self, Layer, Model, ModelKind};
use crate::config::Config;
use crate::dag::Dag;
use crate::engine::{self, RunContext};
use crate::error::{Error, Result};
use crate::ingest::amplitude::{self, FunnelTable};
use crate::ingest::{self, IngestOptions, Source};
use crate::storage::{self, LockHolder, Root, SUCCESS_MARKER};
use crate::writer;

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
}

/// The default as-of date: yesterday in UTC.
pub fn default_as_of() -> NaiveDate {
    Utc::now().date_naive().pred_opt().unwrap_or(NaiveDate::MIN)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Success,
    Error,
    Skipped,
}

/// One model's line in run_results.json.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    pub name: String,
    pub layer: Layer,
    pub status: Status,
    pub rows_written: u64,
    pub quarantined_rows: u64,
    /// Rows sharing a primary key with a later row; silver keeps one (SPEC §1.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates_dropped: Option<u64>,
    pub duration_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Data tests run on the staged table before publishing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestResult>,
    #[serde(skip)]
    pub input_error: bool,
    /// The model failed only because an error-severity data test failed.
    #[serde(skip)]
    pub tests_failed: bool,
}

impl ModelResult {
    fn new(model: &Model, status: Status) -> Self {
        ModelResult {
            name: model.name.clone(),
            layer: model.layer,
            status,
            rows_written: 0,
            quarantined_rows: 0,
            duplicates_dropped: None,
            duration_seconds: 0.0,
            error: None,
            tests: Vec::new(),
            input_error: false,
            tests_failed: false,
        }
    }
}

/// `_runs/<run_id>/run_results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunResults {
    pub run_id: String,
    pub status: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub as_of: String,
    pub arguments: Vec<String>,
    pub input: String,
    pub output: String,
    pub models: Vec<ModelResult>,
}

impl RunResults {
    /// `Ok` when every model succeeded, else the error that sets the exit code.
    pub fn outcome(&self) -> Result<()> {
        let failed = self.models.iter().filter(|m| m.status == Status::Error);
        let (tests, other): (Vec<&ModelResult>, Vec<&ModelResult>) =
            failed.partition(|m| m.tests_failed);
        let names = |ms: &[&ModelResult]| {
            ms.iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !other.is_empty() {
            // A broken model outranks a failed test: fix that first.
            return Err(Error::ModelsFailed {
                failed: other.len() + tests.len(),
                total: self.models.len(),
                models: names(&other),
                input_caused: other.iter().all(|m| m.input_error),
            });
        }
        if !tests.is_empty() {
            let failed_tests = tests
                .iter()
                .flat_map(|m| m.tests.iter())
                .filter(|t| t.blocks())
                .count();
            return Err(Error::DataTests {
                failed: failed_tests,
                models: names(&tests),
            });
        }
        Ok(())
    }

    /// The end-of-run table: model, rows, quarantined, seconds, status.
    pub fn summary_table(&self) -> String {
        let width = self
            .models
            .iter()
            .map(|m| m.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!(
            "{:<width$}  {:>12}  {:>11}  {:>8}  status\n",
            "model", "rows", "quarantined", "seconds"
        );
        for m in &self.models {
            let warned = m.tests.iter().any(|t| t.status != audit::TestStatus::Pass);
            let status = match m.status {
                Status::Success if warned => "success (test warnings)",
                Status::Success => "success",
                Status::Error if m.tests_failed => "TESTS FAILED",
                Status::Error => "ERROR",
                Status::Skipped => "skipped",
            };
            out.push_str(&format!(
                "{:<width$}  {:>12}  {:>11}  {:>8.2}  {status}\n",
                m.name, m.rows_written, m.quarantined_rows, m.duration_seconds
            ));
        }
        out.push_str(&format!(
            "run {} ({}): {}\n",
            self.run_id, self.as_of, self.status
        ));
        out
    }
}

/// A sortable, unique run id: `20261122T184318Z-1a2b3c4d`.
pub fn new_run_id() -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", Utc::now().format("%Y%m%dT%H%M%SZ"), &uuid[..8])
}

/// Load the models and build the DAG (no data is touched).
pub fn load_dag(config: &Config) -> Result<Dag> {
    Dag::build(catalog::discover(&config.models)?)
}

/// State shared by the model tasks of one run.
struct Shared {
    ctx: SessionContext,
    /// With `engine = "ballista"`: where silver and gold SQL runs.
    cluster: Option<SessionContext>,
    root: Root,
    config: Config,
    run_id: String,
    staging: PathBuf,
    /// Parquet settings of silver tables (bronze's are in `ingest`).
    silver_props: WriterProperties,
    gold_props: WriterProperties,
    ingest: IngestOptions,
}

/// Run the pipeline. Returns the results once the run has started, whatever
/// each model did; configuration, DAG and lock problems are errors.
pub async fn run(request: RunRequest) -> Result<RunResults> {
    let config = request.config.clone();
    config.validate()?;
    let dag = load_dag(&config)?;
    let selected = dag.select(&request.select, request.layer)?;
    let remote_input = storage::parse_location(&config.input)?;
    if remote_input.is_none()
        && !config.input.is_dir()
        && selected.iter().any(|n| n.starts_with("bronze_"))
    {
        return Err(Error::Input(format!(
            "input folder {} not found; pass --input or run `medallion generate --out {}`",
            config.input.display(),
            config.input.display()
        )));
    }
    let root = Root::open(&config.output)?;
    let run_id = new_run_id();
    let started = Utc::now();
    let holder = LockHolder {
        run_id: run_id.clone(),
        pid: std::process::id(),
        host: storage::host_name(),
        started_at: started.to_rfc3339_opts(SecondsFormat::Secs, true),
    };
    let lock = root.lock(&holder).await?;
    let outcome = run_locked(
        request,
        config,
        dag,
        selected,
        root,
        run_id,
        started,
        remote_input,
    )
    .await;
    lock.release().await;
    outcome
}

/// The run proper, once the lock is held (released by the caller whatever happens).
#[allow(clippy::too_many_arguments)]
async fn run_locked(
    request: RunRequest,
    mut config: Config,
    dag: Dag,
    selected: BTreeSet<String>,
    root: Root,
    run_id: String,
    started: chrono::DateTime<Utc>,
    remote_input: Option<url::Url>,
) -> Result<RunResults> {
    // We hold the lock: any staging folder left is from a run that died.
    let staging_root = root.staging_root();
    if staging_root.exists() {
        let _ = std::fs::remove_dir_all(&staging_root);
    }
    let staging = staging_root.join(&run_id);
    let input_display = config.input.display().to_string();
    if let Some(url) = &remote_input
        && selected.iter().any(|n| n.starts_with("bronze_"))
    {
        config.input = storage::download_input(url, &staging.join("_input")).await?;
    }
    let run_ctx = RunContext::new(request.as_of, &config);
    let ctx = engine::session_context(&config, &run_ctx)?;
    root.register_store(&ctx);
    let cluster = engine::cluster_context(&config, &run_ctx).await?;
    if let (Some(cluster), Root::Object(object)) = (&cluster, &root) {
        root.register_store(cluster);
        // We hold the lock: anything staged there is from a run that died.
        object.clear_staging().await?;
    }
    let contexts: Vec<&SessionContext> = std::iter::once(&ctx).chain(cluster.as_ref()).collect();
    register_unselected(&contexts, &dag, &selected, &root).await?;
    let shared = Arc::new(Shared {
        ctx,
        cluster,
        root: root.clone(),
        ingest: IngestOptions {
            batch_rows: config.batch_rows,
            run_id: run_id.clone(),
            ingested_at: started.timestamp_micros(),
            writer_properties: storage::writer_properties(&config, Layer::Bronze)?,
        },
        config: config.clone(),
        run_id: run_id.clone(),
        staging: staging.clone(),
        silver_props: storage::writer_properties(&config, Layer::Silver)?,
        gold_props: storage::writer_properties(&config, Layer::Gold)?,
    });
    tracing::info!(run_id = %run_id, as_of = %request.as_of, models = selected.len(), "Run started.");
    let progress = Arc::new(crate::progress::RunProgress::start(selected.len()));
    let durations = previous_durations(&root).await;
    let costs = expected_costs(&durations, &dag, &config.input);
    let priority = dag.critical_paths(|m| costs.get(&m.name).copied().unwrap_or(0.0));
    let results = execute(&shared, &dag, &selected, &priority, &progress).await;
    drop(progress);
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir(&staging_root);
    let finished = Utc::now();
    let failed = results.iter().any(|m| m.status == Status::Error);
    let run_results = RunResults {
        run_id: run_id.clone(),
        status: if failed { "error" } else { "success" },
        started_at: started.to_rfc3339_opts(SecondsFormat::Millis, true),
        finished_at: finished.to_rfc3339_opts(SecondsFormat::Millis, true),
        as_of: request.as_of.to_string(),
        arguments: request.arguments.clone(),
        input: input_display,
        output: root.display(),
        models: results,
    };
    let body = serde_json::to_vec_pretty(&run_results)?;
    root.write_file(&format!("_runs/{run_id}/run_results.json"), body.clone())
        .await?;
    root.write_file("_runs/latest.json", body).await?;
    record_durations(&root, durations, &run_results.models).await;
    tracing::info!(run_id = %run_id, status = run_results.status, "Run finished.");
    Ok(run_results)
}

/// Register the published tables of models this run does not build, and
/// check every selected model's inputs will exist.
async fn register_unselected(
    contexts: &[&SessionContext],
    dag: &Dag,
    selected: &BTreeSet<String>,
    root: &Root,
) -> Result<()> {
    for model in dag.ordered() {
        if selected.contains(&model.name) {
            continue;
        }
        let layer = model.layer.as_str();
        if root.is_published(layer, &model.name).await? {
            for ctx in contexts {
                root.register(ctx, &model.name, layer, &model.name).await?;
            }
        }
    }
    for model in dag.ordered().filter(|m| selected.contains(&m.name)) {
        for dep in &model.deps {
            if selected.contains(dep) {
                continue;
            }
            let dep_layer = dag.get(dep).map_or("?", |m| m.layer.as_str());
            if !root.is_published(dep_layer, dep).await? {
                return Err(Error::Config(format!(
                    "model `{}` reads `{dep}`, which is not selected and has never been published under {}; \
                     run with --select +{} to build its inputs too",
                    model.name,
                    root.display(),
                    model.name
                )));
            }
        }
    }
    Ok(())
}

/// The durations of the previous run, as far as `_runs/latest.json` tells.
#[derive(Deserialize)]
struct PreviousRun {
    models: Vec<PreviousModel>,
}

#[derive(Deserialize)]
struct PreviousModel {
    name: String,
    status: Status,
    duration_seconds: f64,
}

/// Where each model's last successful duration is kept, across runs: a
/// `--select` run's `latest.json` names only the models it built, and the
/// next full run would otherwise order all the others by guesswork.
const MODEL_SECONDS: &str = "_runs/model_seconds.json";

/// The last successful duration of each model: [`MODEL_SECONDS`], or for an
/// output written before it existed, `_runs/latest.json`. Empty when
/// neither can be read; the estimates of [`expected_costs`] then do.
async fn previous_durations(root: &Root) -> BTreeMap<String, f64> {
    if let Ok(Some(bytes)) = root.read_file(MODEL_SECONDS).await
        && let Ok(seconds) = serde_json::from_slice::<BTreeMap<String, f64>>(&bytes)
    {
        return seconds;
    }
    match root.read_file("_runs/latest.json").await {
        Ok(Some(bytes)) => serde_json::from_slice::<PreviousRun>(&bytes)
            .map(|run| {
                run.models
                    .into_iter()
                    .filter(|m| m.status == Status::Success)
                    .map(|m| (m.name, m.duration_seconds))
                    .collect()
            })
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    }
}

/// Record this run's successful durations over the previous ones. Only
/// scheduling reads them, so a failure to write is logged, not fatal.
async fn record_durations(
    root: &Root,
    mut seconds: BTreeMap<String, f64>,
    results: &[ModelResult],
) {
    for model in results.iter().filter(|m| m.status == Status::Success) {
        seconds.insert(model.name.clone(), model.duration_seconds);
    }
    let written = match serde_json::to_vec_pretty(&seconds) {
        Ok(body) => root.write_file(MODEL_SECONDS, body).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = written {
        tracing::warn!(file = MODEL_SECONDS, error = %e, "Model durations not recorded; the next run orders its models by estimates.");
    }
}

/// Expected seconds per model, used only to order the ready models: its
/// last successful duration (`previous`); otherwise its CSV input's size at
/// 100 MB/s for a source, and for any other model the sum of its upstream
/// models' estimates (a model's work grows with what it reads).
fn expected_costs(
    previous: &BTreeMap<String, f64>,
    dag: &Dag,
    input: &Path,
) -> HashMap<String, f64> {
    let mut costs = HashMap::new();
    for model in dag.ordered() {
        let cost = match (previous.get(&model.name), &model.kind) {
            (Some(seconds), _) => *seconds,
            (None, ModelKind::Source(source)) => {
                let bytes: u64 = ingest::discover(input, source.name)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|f| std::fs::metadata(&f.path).ok())
                    .map(|m| m.len())
                    .sum();
                bytes as f64 / 100e6
            }
            (None, _) => model.deps.iter().filter_map(|d| costs.get(d)).sum::<f64>(),
        };
        costs.insert(model.name.clone(), cost);
    }
    costs
}

/// Run the selected models, respecting dependencies and the concurrency
/// limit; of the models ready to start, the one heading the longest chain
/// (by `priority`, see `Dag::critical_paths`) starts first.
async fn execute(
    shared: &Arc<Shared>,
    dag: &Dag,
    selected: &BTreeSet<String>,
    priority: &HashMap<String, f64>,
    progress: &Arc<crate::progress::RunProgress>,
) -> Vec<ModelResult> {
    let mut pending: Vec<&Model> = dag
        .ordered()
        .filter(|m| selected.contains(&m.name))
        .collect();
    // A stable sort: equal priorities keep the dependency order.
    let rank = |m: &Model| priority.get(&m.name).copied().unwrap_or(0.0);
    pending.sort_by(|a, b| rank(b).total_cmp(&rank(a)));
    let mut status: HashMap<String, Status> = HashMap::new();
    let mut results: HashMap<String, ModelResult> = HashMap::new();
    let mut running = tokio::task::JoinSet::new();
    let limit = shared.config.max_concurrent_models;
    loop {
        let mut i = 0;
        while i < pending.len() && running.len() < limit {
            let model = pending[i];
            let upstream: Vec<&String> = model
                .deps
                .iter()
                .filter(|d| selected.contains(*d))
                .collect();
            if let Some(bad) = upstream
                .iter()
                .find(|d| matches!(status.get(**d), Some(Status::Error | Status::Skipped)))
            {
                tracing::warn!(model = %model.name, upstream = %bad, "Model skipped because an upstream model did not succeed.");
                status.insert(model.name.clone(), Status::Skipped);
                results.insert(model.name.clone(), skipped(model, bad));
                progress.model_finished(&model.name, 0);
                pending.remove(i);
                continue;
            }
            if upstream
                .iter()
                .all(|d| status.get(*d) == Some(&Status::Success))
            {
                let shared = Arc::clone(shared);
                let model = model.clone();
                let progress = Arc::clone(progress);
                progress.model_started(&model.name);
                running.spawn(async move {
                    let result = build_model(shared, model).await;
                    progress.model_finished(&result.name, result.rows_written);
                    result
                });
                pending.remove(i);
                continue;
            }
            i += 1;
        }
        match running.join_next().await {
            Some(Ok(result)) => {
                status.insert(result.name.clone(), result.status);
                results.insert(result.name.clone(), result);
            }
            Some(Err(join_error)) => {
                // A panicking model task is a bug; keep the run going and report it.
                tracing::error!(error = %join_error, "A model task failed unexpectedly.");
            }
            None if pending.is_empty() => break,
            None => {
                // Nothing runs and nothing is ready: only possible if a task vanished.
                for model in pending.drain(..) {
                    results.insert(
                        model.name.clone(),
                        skipped(model, "an upstream task that did not report"),
                    );
                }
                break;
            }
        }
    }
    dag.ordered()
        .filter_map(|m| results.remove(&m.name))
        .collect()
}

fn skipped(model: &Model, upstream: &str) -> ModelResult {
    ModelResult {
        error: Some(format!("skipped: upstream `{upstream}` did not succeed")),
        ..ModelResult::new(model, Status::Skipped)
    }
}

/// Build, stage and publish one model.
async fn build_model(shared: Arc<Shared>, model: Model) -> ModelResult {
    let started = Instant::now();
    tracing::info!(model = %model.name, layer = %model.layer, "Model started.");
    let mut result = ModelResult::new(&model, Status::Success);
    let outcome = match &model.kind {
        ModelKind::Source(source) => build_source(&shared, &model, source, &mut result).await,
        ModelKind::Amplitude(table) => build_amplitude(&shared, &model, *table, &mut result).await,
        ModelKind::Sql { sql, .. } => build_sql(&shared, &model, sql, &mut result).await,
    };
    result.duration_seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => tracing::info!(
            model = %model.name,
            rows = result.rows_written,
            quarantined = result.quarantined_rows,
            seconds = result.duration_seconds,
            "Model published."
        ),
        Err(error @ Error::DataTests { .. }) => {
            result.status = Status::Error;
            result.tests_failed = true;
            let chain = error_chain(&error);
            tracing::error!(model = %model.name, error = %chain, "Data tests failed; the previous version stays published.");
            result.error = Some(chain);
        }
        Err(error) => {
            let error = match error {
                e @ (Error::Source { .. } | Error::Model { .. }) => e,
                e => Error::Model {
                    name: model.name.clone(),
                    path: PathBuf::from(model.origin()),
                    source: Box::new(e),
                },
            };
            result.status = Status::Error;
            result.input_error = error.is_input_error();
            let mut chain = error_chain(&error);
            if chain.contains("Resources exhausted") {
                // Joins and partial aggregations cannot spill: say which knobs help.
                chain.push_str(&format!(
                    "; raise memory_limit_mb (now {} MiB; flag --memory-limit-mb) or lower max_concurrent_models (now {})",
                    shared.config.memory_limit_mb, shared.config.max_concurrent_models
                ));
                if shared.config.memory_pool == crate::config::MemoryPoolKind::Greedy {
                    // The greedy pool lets one spilling operator take what a join needs.
                    chain.push_str(", or set memory_pool = \"fair\" (flag --memory-pool fair)");
                }
            }
            tracing::error!(model = %model.name, error = %chain, "Model failed; its previous version stays published.");
            result.error = Some(chain);
        }
    }
    result
}

/// `error: cause: cause` on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

async fn build_source(
    shared: &Shared,
    model: &Model,
    source: &'static Source,
    result: &mut ModelResult,
) -> Result<()> {
    let files = ingest::discover(&shared.config.input, source.name)?;
    if files.is_empty() {
        return Err(Error::Source {
            source_name: source.name.to_string(),
            message: format!(
                "no input found: expected {0}/{1}.csv or CSV files under {0}/{1}/",
                shared.config.input.display(),
                source.name
            ),
        });
    }
    let bronze_stage = shared.staging.join("bronze").join(&model.name);
    let quarantine_stage = shared.staging.join("_quarantine").join(source.name);
    let report = {
        let (b, q, opts) = (
            bronze_stage.clone(),
            quarantine_stage.clone(),
            shared.ingest.clone(),
        );
        tokio::task::spawn_blocking(move || ingest::ingest_source(source, &files, &b, &q, &opts))
            .await??
    };
    result.rows_written = report.rows;
    result.quarantined_rows = report.quarantined;
    if report.quarantined > 0 {
        tracing::warn!(
            source = source.name,
            rows = report.quarantined,
            "Rows quarantined."
        );
    }
    // The quarantine is published even when the source fails: it says why.
    write_marker(&shared.run_id, &quarantine_stage, report.quarantined)?;
    shared
        .root
        .publish(&quarantine_stage, "_quarantine", source.name)
        .await?;
    report.check_bad_fraction(source.name, shared.config.max_bad_row_fraction)?;
    if source.primary_key().is_some() {
        let duplicates = report.duplicate_keys;
        if duplicates > 0 {
            tracing::info!(
                source = source.name,
                duplicates,
                "Duplicate primary keys found; silver keeps one row per key."
            );
        }
        result.duplicates_dropped = Some(duplicates);
    }
    publish(
        shared,
        model,
        Staged::Local(&bronze_stage),
        report.rows,
        result,
    )
    .await
}

async fn build_amplitude(
    shared: &Shared,
    model: &Model,
    table: FunnelTable,
    result: &mut ModelResult,
) -> Result<()> {
    let files = amplitude::discover(&shared.config.input)?;
    let stage = shared.staging.join("bronze").join(&model.name);
    // Both tables read the same envelopes; the daily one owns their quarantine.
    let quarantine_stage = (table == FunnelTable::Daily).then(|| {
        shared
            .staging
            .join("_quarantine")
            .join(amplitude::QUARANTINE_SOURCE)
    });
    let report = {
        let (s, q, opts) = (
            stage.clone(),
            quarantine_stage.clone(),
            shared.ingest.clone(),
        );
        tokio::task::spawn_blocking(move || {
            amplitude::ingest_envelopes(table, &files, &s, q.as_deref(), &opts)
        })
        .await??
    };
    result.rows_written = report.rows;
    result.quarantined_rows = report.quarantined;
    if let Some(q) = quarantine_stage {
        write_marker(&shared.run_id, &q, report.quarantined)?;
        shared
            .root
            .publish(&q, "_quarantine", amplitude::QUARANTINE_SOURCE)
            .await?;
    }
    publish(shared, model, Staged::Local(&stage), report.rows, result).await
}

async fn build_sql(
    shared: &Shared,
    model: &Model,
    sql: &str,
    result: &mut ModelResult,
) -> Result<()> {
    let plan_error = |e| Error::Model {
        name: model.name.clone(),
        path: PathBuf::from(model.origin()),
        source: Box::new(Error::DataFusion(e)),
    };
    let props = match model.layer {
        Layer::Gold => &shared.gold_props,
        _ => &shared.silver_props,
    };
    let started = Instant::now();
    if let Some(cluster) = &shared.cluster {
        let Root::Object(object) = &shared.root else {
            // `Config::validate` allows the cluster only with an object-store root.
            return Err(Error::Config(
                "engine `ballista` needs an s3:// output root".into(),
            ));
        };
        let df = cluster.sql(sql).await.map_err(plan_error)?;
        let rows = stage_on_cluster(shared, model, object, df, props).await?;
        tracing::debug!(model = %model.name, rows, seconds = started.elapsed().as_secs_f64(), "Query executed and staged on the cluster.");
        result.rows_written = rows;
        let staged = Staged::Cluster {
            root: object,
            ctx: cluster,
        };
        return publish(shared, model, staged, rows, result).await;
    }
    let stage = shared.staging.join(model.layer.as_str()).join(&model.name);
    let df = shared.ctx.sql(sql).await.map_err(plan_error)?;
    let rows = writer::write_dataframe(df, &stage, props).await?;
    tracing::debug!(model = %model.name, rows, seconds = started.elapsed().as_secs_f64(), "Query executed and staged.");
    result.rows_written = rows;
    publish(shared, model, Staged::Local(&stage), rows, result).await
}

/// Have the cluster write `df` under the model's object-store staging
/// folder; returns the rows written.
async fn stage_on_cluster(
    shared: &Shared,
    model: &Model,
    object: &storage::ObjectRoot,
    df: datafusion::dataframe::DataFrame,
    props: &WriterProperties,
) -> Result<u64> {
    let (run_id, layer, name) = (&shared.run_id, model.layer.as_str(), &model.name);
    let url = object.staging_url(run_id, layer, name);
    let options = storage::table_parquet_options(&shared.config, model.layer);
    let written = async {
        let limit = shared.config.cluster_query_timeout_seconds;
        let (rows, schema) = engine::within_cluster_limit(
            limit,
            || format!("the query of {name}"),
            writer::write_on_cluster(df, &url, options),
        )
        .await?;
        object.settle_staged(run_id, layer, name, rows).await?;
        Ok::<_, Error>((rows, schema))
    };
    let (rows, schema) = match written.await {
        Ok(written) => written,
        Err(error) => {
            // Executors may have written some files before the failure;
            // the next run would clear them, but nothing should linger.
            if let Err(cleanup) = object.discard_staged(run_id, layer, name).await {
                tracing::warn!(model = %name, error = %cleanup, "Could not remove a failed model's staged files; the next run will.");
            }
            return Err(error);
        }
    };
    if rows == 0 {
        // Executors write no file for an empty result; as on the local
        // engine, an empty table is one file that still has its columns.
        let bytes = writer::empty_parquet(&schema, props)?;
        object
            .stage_file(run_id, layer, name, "part-00000.parquet", bytes)
            .await?;
    }
    Ok(rows)
}

/// Where a model's new version waits for its data tests.
#[derive(Clone, Copy)]
enum Staged<'a> {
    /// A local folder: every bronze table, and SQL models on the local engine.
    Local(&'a Path),
    /// `_staging/<run_id>/<layer>/<table>/` of the object root, written by
    /// the cluster behind `ctx`.
    Cluster {
        root: &'a storage::ObjectRoot,
        ctx: &'a SessionContext,
    },
}

/// Write–audit–publish: run the model's data tests on the staged table; only
/// if no error-severity test fails, swap it into place atomically and make
/// the new version queryable. Otherwise the previous version stays.
async fn publish(
    shared: &Shared,
    model: &Model,
    staged: Staged<'_>,
    rows: u64,
    result: &mut ModelResult,
) -> Result<()> {
    let layer = model.layer.as_str();
    let name = model.name.as_str();
    if let Staged::Local(stage) = staged {
        write_marker(&shared.run_id, stage, rows)?;
    }
    if !model.tests.is_empty() {
        // Dependants wait for this model, so nobody else reads this name meanwhile.
        let (test_ctx, limit) = match staged {
            Staged::Cluster { root, ctx } => {
                let url = root.staging_url(&shared.run_id, layer, name);
                storage::register_url(ctx, name, &url).await?;
                (ctx, shared.config.cluster_query_timeout_seconds)
            }
            Staged::Local(stage) => {
                storage::register_dir(&shared.ctx, name, stage).await?;
                (&shared.ctx, 0)
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
                root.discard_staged(&shared.run_id, layer, name).await?;
            }
            if shared.root.is_published(layer, name).await? {
                register_published(shared, layer, name).await?;
            } else {
                let _ = test_ctx.deregister_table(name)?;
            }
            return Err(Error::DataTests {
                failed: blocking.len(),
                models: format!("{} ({})", name, blocking.join("; ")),
            });
        }
    }
    match staged {
        Staged::Local(stage) => shared.root.publish(stage, layer, name).await?,
        Staged::Cluster { root, .. } => {
            root.publish_staged(&shared.run_id, layer, name, rows)
                .await?
        }
    }
    register_published(shared, layer, name).await
}

/// Make the published version of a table the one every context of the run reads.
async fn register_published(shared: &Shared, layer: &str, name: &str) -> Result<()> {
    for ctx in std::iter::once(&shared.ctx).chain(shared.cluster.as_ref()) {
        shared.root.register(ctx, name, layer, name).await?;
    }
    Ok(())
}

/// `medallion test`: run the data tests of the selected models on their
/// published tables. Returns each model with its results.
pub async fn test_published(
    config: &Config,
    select: &[String],
    layer: Option<Layer>,
) -> Result<Vec<(String, Vec<TestResult>)>> {
    config.validate()?;
    let dag = load_dag(config)?;
    let selected = dag.select(select, layer)?;
    let run_ctx = RunContext::new(default_as_of(), config);
    let ctx = engine::session_context(config, &run_ctx)?;
    let root = Root::open(&config.output)?;
    root.register_store(&ctx);
    for model in dag.ordered() {
        let layer = model.layer.as_str();
        if root.is_published(layer, &model.name).await? {
            root.register(&ctx, &model.name, layer, &model.name).await?;
        }
    }
    let mut out = Vec::new();
    for model in dag
        .ordered()
        .filter(|m| selected.contains(&m.name) && !m.tests.is_empty())
    {
        if !root.is_published(model.layer.as_str(), &model.name).await? {
            return Err(Error::Input(format!(
                "`{}` has never been published under {}; run `medallion run --select +{}` first",
                model.name,
                root.display(),
                model.name
            )));
        }
        out.push((
            model.name.clone(),
            audit::run_tests(&ctx, &model.name, &model.tests, 0).await,
        ));
    }
    Ok(out)
}

fn write_marker(run_id: &str, dir: &Path, rows: u64) -> Result<()> {
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
