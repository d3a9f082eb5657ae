//! `medallion run`: one run of the pipeline, in the order it happens.
//!
//! 1. plan: validate the config, load the models and their graph, select;
//! 2. lock the output root and open the run (`context`);
//! 3. build the selected models in dependency order, independent ones
//!    concurrently (`schedule`), each ingested or queried into staging
//!    (`materialize`), tested and published (`publish`);
//! 4. write `run_results.json` (`results`) and release the lock.
//!
//! A failed model keeps its previous version published and its dependants
//! are skipped; the rest of the run goes on.

pub mod context;
pub mod materialize;
pub mod publish;
pub mod results;
pub mod schedule;

use std::sync::Arc;

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
/// each model did; configuration, DAG and lock problems are errors.
pub async fn run(request: RunRequest) -> Result<RunResults> {
    let config = &request.config;
    config.validate()?;
    let dag = models::load_dag(&config.models)?;
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
    let outcome = async {
        let run = Run::open(&request, &dag, &selected, root, run_id, started).await?;
        execute(Arc::new(run), &request, &dag, &selected).await
    }
    .await;
    lock.release().await;
    outcome
}

/// Build every selected model of an opened run, then record the results.
async fn execute(
    run: Arc<Run>,
    request: &RunRequest,
    dag: &models::Dag,
    selected: &std::collections::BTreeSet<String>,
) -> Result<RunResults> {
    tracing::info!(run_id = %run.run_id, as_of = %run.as_of, models = selected.len(), "Run started.");
    let progress = RunProgress::start(selected.len());
    let durations = results::previous_durations(&run.root).await;
    let costs = schedule::expected_costs(&durations, dag, &run.config.input);
    let priority = dag.critical_paths(|m| costs.get(&m.name).copied().unwrap_or(0.0));
    let limit = run.config.max_concurrent_models;
    let models = schedule::execute(dag, selected, &priority, limit, &progress, |model| {
        materialize::build_model(Arc::clone(&run), model)
    })
    .await;
    drop(progress);
    run.close();
    let finished = Utc::now();
    let failed = models.iter().any(|m| m.status == Status::Error);
    let run_results = RunResults {
        run_id: run.run_id.clone(),
        status: if failed { "error" } else { "success" },
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
    tracing::info!(run_id = %run_id, status = run_results.status, "Run finished.");
    Ok(run_results)
}
