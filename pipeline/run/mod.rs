//! `medallion run`: one run of the pipeline, in the order it happens.
//!
//! 1. plan: validate the config, load the models and their graph, select;
//! 2. lock the output root and open the run (`context`);
//! 3. build the selected models in dependency order, independent ones
//!    concurrently (`schedule`), each ingested or queried into staging
//!    (`materialize`), tested and published (`publish`);
//! 4. write `run_results.json` (`results`), prune old run folders and
//!    release the lock.
//!
//! A failed model keeps its previous version published and its dependants
//! are skipped; the rest of the run goes on. SIGTERM and SIGINT stop the
//! run cleanly (`cancel`).

pub mod cancel;
pub mod changes;
pub mod context;
pub mod fingerprint;
pub mod incremental;
pub mod materialize;
pub mod publish;
pub mod results;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, SecondsFormat, Utc};

use crate::error::{Error, Result};
use crate::models;
use crate::progress::RunProgress;
use crate::storage::{self, LockHolder, Root};
pub use context::{Run, RunRequest};
pub use results::{ModelResult, RunResults, Status};

/// The default as-of date: yesterday in UTC.
pub fn default_as_of() -> NaiveDate {
    Utc::now().date_naive().pred_opt().unwrap_or(NaiveDate::MIN)
}

/// A sortable, unique run id: `20261122T184318Z-1a2b3c4d`.
pub fn new_run_id() -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", Utc::now().format("%Y%m%dT%H%M%SZ"), &uuid[..8])
}

/// Run the pipeline. Returns the results once the run has started, whatever
/// each model did (a signal included: see [`RunResults::outcome`]);
/// configuration, DAG and lock problems are errors.
pub async fn run(request: RunRequest) -> Result<RunResults> {
    // First, so that from here on a signal is handled rather than fatal.
    let mut stop = cancel::Stop::listen()?;
    let config = &request.config;
    config.validate()?;
    config.check_paths()?;
    let dag = models::load_dag(config)?;
    let root = Root::open(&config.output)?;
    let selected = if request.retry {
        retry_selection(&root, &dag).await?
    } else {
        dag.select(&request.select, request.layer)?
    };
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
    let run_id = new_run_id();
    let started = Utc::now();
    let holder = LockHolder::this_process(&run_id, started);
    let timeout = Duration::from_secs(config.lock_timeout_seconds);
    let lease = tokio::select! {
        lease = root.lock(holder, timeout) => lease?,
        caught = stop.wait() => return Err(cancelled(caught)),
    };
    let outcome = async {
        let opened = tokio::select! {
            run = Run::open(&request, &dag, &selected, root, run_id, started, lease.lost_flag()) => run?,
            caught = stop.wait() => {
                // Whatever a half-opened run staged is removed by the next run.
                return Err(cancelled(caught));
            }
        };
        execute(Arc::new(opened), &request, &dag, &selected, &mut stop).await
    }
    .await;
    lease.release().await;
    outcome
}

/// `--retry`: the models the previous run did not finish that still exist.
async fn retry_selection(
    root: &Root,
    dag: &models::Dag,
) -> Result<std::collections::BTreeSet<String>> {
    let Some((previous, names)) = results::unfinished_models(root).await? else {
        return Err(Error::Config(format!(
            "--retry: no previous run under {} to retry; run without --retry",
            root.display()
        )));
    };
    let selected: std::collections::BTreeSet<String> =
        names.into_iter().filter(|n| dag.get(n).is_some()).collect();
    if selected.is_empty() {
        tracing::info!(previous_run = %previous, "Nothing to retry: the previous run finished every model.");
    } else {
        tracing::info!(previous_run = %previous, models = selected.len(), "Retrying the models the previous run did not finish.");
    }
    Ok(selected)
}

fn cancelled(caught: cancel::Caught) -> Error {
    Error::Cancelled {
        signal: caught.name(),
        code: caught.exit_code(),
    }
}

/// Build every selected model of an opened run, then record the results.
async fn execute(
    run: Arc<Run>,
    request: &RunRequest,
    dag: &models::Dag,
    selected: &std::collections::BTreeSet<String>,
    stop: &mut cancel::Stop,
) -> Result<RunResults> {
    tracing::info!(run_id = %run.run_id, as_of = %run.as_of, models = selected.len(), "Run started.");
    let progress = RunProgress::start(selected.len());
    let durations = results::previous_durations(&run.root).await;
    let expected = durations
        .iter()
        .filter_map(|(name, d)| Some((name.clone(), d.expected(run.full_refresh)?)))
        .collect();
    let costs = schedule::expected_costs(&expected, dag, &run.config.input);
    let priority = dag.critical_paths(|m| costs.get(&m.name).copied().unwrap_or(0.0));
    let limit = run.config.max_concurrent_models;
    let signal = async {
        stop.wait().await;
    };
    let models = schedule::execute(
        dag,
        selected,
        &priority,
        limit,
        || run.ingest.workload.borrowed(),
        &progress,
        signal,
        |model| materialize::build_model(Arc::clone(&run), model),
    )
    .await;
    drop(progress);
    if stop.caught().is_some() {
        run.stop_blocking(Duration::from_secs(5)).await;
    }
    log_footer_cache(&run);
    run.close();
    let finished = Utc::now();
    let failed = models.iter().any(|m| m.status == Status::Error);
    let cancelled_by = stop.caught().map(cancel::Caught::name);
    let run_results = RunResults {
        run_id: run.run_id.clone(),
        status: match (cancelled_by, failed) {
            (Some(_), _) => "cancelled",
            (None, true) => "error",
            (None, false) => "success",
        },
        cancelled_by,
        started_at: run.started.to_rfc3339_opts(SecondsFormat::Millis, true),
        finished_at: finished.to_rfc3339_opts(SecondsFormat::Millis, true),
        as_of: run.as_of.to_string(),
        arguments: request.arguments.clone(),
        input: run.input_display.clone(),
        output: run.root.display(),
        models,
    };
    let body = serde_json::to_vec_pretty(&run_results)?;
    let run_id = &run.run_id;
    run.root
        .write_file(&format!("_runs/{run_id}/run_results.json"), body.clone())
        .await?;
    run.root.write_file("_runs/latest.json", body).await?;
    results::record_durations(&run.root, durations, &run_results.models).await;
    results::prune_runs(&run.root, run.config.keep_runs).await;
    tracing::info!(run_id = %run_id, status = run_results.status, "Run finished.");
    Ok(run_results)
}

/// What the footer cache held at the end of a run: when it is full, scans
/// re-read footers it had to drop.
fn log_footer_cache(run: &Run) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let cache = run
        .ctx
        .runtime_env()
        .cache_manager
        .get_file_metadata_cache();
    let entries = cache.list_entries();
    let bytes: usize = entries.values().map(|e| e.size_bytes).sum();
    let hits: usize = entries.values().map(|e| e.hits).sum();
    tracing::debug!(
        entries = entries.len(),
        bytes,
        hits,
        limit = cache.cache_limit(),
        "Footer cache at the end of the run."
    );
}
