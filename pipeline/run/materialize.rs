//! Building one model: ingest a source or run a model's SQL into staging,
//! then hand it to write–audit–publish (`publish`). Every failure becomes
//! the model's result, with the error chain a user can act on; a run goes on
//! past a failed model.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::context::Run;
use super::publish::{Staged, publish, write_marker};
use super::results::{ModelResult, Status};
use crate::cluster;
use crate::config::MemoryPoolKind;
use crate::error::{Error, Result, error_chain};
use crate::ingest::amplitude::{self, FunnelTable};
use crate::ingest::{self, Source};
use crate::models::{Model, ModelKind};
use crate::parquet;
use crate::storage::Root;

/// Build, stage, test and publish one model; never fails, reports instead.
pub async fn build_model(run: Arc<Run>, model: Model) -> ModelResult {
    let started = Instant::now();
    tracing::info!(model = %model.name, layer = %model.layer, "Model started.");
    let mut result = ModelResult::new(&model, Status::Success);
    let outcome = match &model.kind {
        ModelKind::Source(source) => build_source(&run, &model, source, &mut result).await,
        ModelKind::Amplitude(table) => build_amplitude(&run, &model, *table, &mut result).await,
        ModelKind::Sql { sql, .. } => build_sql(&run, &model, sql, &mut result).await,
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
                chain.push_str(&memory_hint(run.as_ref()));
            } else if error.is_overflow() {
                chain.push_str(
                    "; a value in this model's input is too large for its arithmetic: find the row with \
                     `medallion query` on the model's inputs and correct it at the source, or declare \
                     a maximum so ingestion quarantines it (the built-in sources quarantine quantities \
                     above 1000000 and money above 1000000000)",
                );
            }
            tracing::error!(model = %model.name, error = %chain, "Model failed; its previous version stays published.");
            result.error = Some(chain);
        }
    }
    result
}

/// What to change when the memory pool ran out: joins and partial
/// aggregations cannot spill, so name the settings that help.
fn memory_hint(run: &Run) -> String {
    let config = &run.config;
    let mut hint = format!(
        "; raise memory_limit_mb (now {} MiB; flag --memory-limit-mb) or lower max_concurrent_models (now {})",
        config.memory_limit_mb, config.max_concurrent_models
    );
    if config.memory_pool == MemoryPoolKind::Greedy {
        // The greedy pool lets one spilling operator take what a join needs.
        hint.push_str(", or set memory_pool = \"fair\" (flag --memory-pool fair)");
    }
    hint
}

async fn build_source(
    run: &Run,
    model: &Model,
    source: &Arc<Source>,
    result: &mut ModelResult,
) -> Result<()> {
    let files = ingest::discover(&run.config.input, source)?;
    if files.is_empty() {
        return Err(Error::Source {
            source_name: source.name.clone(),
            message: format!(
                "no input found: expected {} (declared in {})",
                source.inputs(&run.config.input),
                source.declared_in.display()
            ),
        });
    }
    let bronze_stage = run.staging.join("bronze").join(&model.name);
    let quarantine_stage = run.staging.join("_quarantine").join(&source.name);
    let report = {
        let (b, q, opts) = (
            bronze_stage.clone(),
            quarantine_stage.clone(),
            run.ingest.clone(),
        );
        let source = Arc::clone(source);
        let pass = run.blocking_pass().await;
        tokio::task::spawn_blocking(move || {
            let _pass = pass;
            ingest::ingest_source(&source, &files, &b, &q, &opts)
        })
        .await??
    };
    result.rows_written = report.rows;
    result.quarantined_rows = report.quarantined;
    if report.quarantined > 0 {
        tracing::warn!(
            source = source.name.as_str(),
            rows = report.quarantined,
            "Rows quarantined."
        );
    }
    // The quarantine is published even when the source fails: it says why.
    write_marker(&run.run_id, &quarantine_stage, report.quarantined)?;
    run.root
        .publish(&quarantine_stage, "_quarantine", &source.name)
        .await?;
    report.check_bad_fraction(&source.name, run.config.max_bad_row_fraction)?;
    check_shrink(run, &model.name, &source.name, report.rows).await?;
    if !source.primary_key().is_empty() {
        let duplicates = report.duplicate_keys;
        if duplicates > 0 {
            tracing::info!(
                source = source.name.as_str(),
                duplicates,
                "Duplicate primary keys found; silver keeps one row per key."
            );
        }
        result.duplicates_dropped = Some(duplicates);
    }
    publish(
        run,
        model,
        Staged::Local(&bronze_stage),
        report.rows,
        result,
    )
    .await
}

/// The volume guard: a source whose rows fell by more than
/// `max_shrink_fraction` against its published version fails, unless the
/// run allows it. Over the whole source, all of its files together.
async fn check_shrink(run: &Run, table: &str, source: &str, rows: u64) -> Result<()> {
    if run.config.allow_shrink {
        return Ok(());
    }
    let Some(before) = run.root.published_rows("bronze", table).await? else {
        return Ok(());
    };
    let floor = before as f64 * (1.0 - run.config.max_shrink_fraction);
    if (rows as f64) < floor {
        return Err(Error::Source {
            source_name: source.to_string(),
            message: format!(
                "{rows} rows against {before} in the published {table}: a fall of more than \
                 max_shrink_fraction {} (a truncated or header-only file?); the published \
                 tables stay as they are. If the source really shrank, re-run with --allow-shrink",
                run.config.max_shrink_fraction
            ),
        });
    }
    Ok(())
}

async fn build_amplitude(
    run: &Run,
    model: &Model,
    table: FunnelTable,
    result: &mut ModelResult,
) -> Result<()> {
    let files = amplitude::discover(&run.config.input)?;
    let stage = run.staging.join("bronze").join(&model.name);
    // Both tables read the same envelopes; the daily one owns their quarantine.
    let quarantine_stage = (table == FunnelTable::Daily).then(|| {
        run.staging
            .join("_quarantine")
            .join(amplitude::QUARANTINE_SOURCE)
    });
    let report = {
        let (s, q, opts) = (stage.clone(), quarantine_stage.clone(), run.ingest.clone());
        let pass = run.blocking_pass().await;
        tokio::task::spawn_blocking(move || {
            let _pass = pass;
            amplitude::ingest_envelopes(table, &files, &s, q.as_deref(), &opts)
        })
        .await??
    };
    result.rows_written = report.rows;
    result.quarantined_rows = report.quarantined;
    if let Some(q) = quarantine_stage {
        write_marker(&run.run_id, &q, report.quarantined)?;
        run.root
            .publish(&q, "_quarantine", amplitude::QUARANTINE_SOURCE)
            .await?;
    }
    publish(run, model, Staged::Local(&stage), report.rows, result).await
}

async fn build_sql(run: &Run, model: &Model, sql: &str, result: &mut ModelResult) -> Result<()> {
    let plan_error = |e| Error::Model {
        name: model.name.clone(),
        path: PathBuf::from(model.origin()),
        source: Box::new(Error::DataFusion(e)),
    };
    let props = run.props(model.layer);
    let started = Instant::now();
    if let Some(cluster) = &run.cluster {
        let Root::Object(object) = &run.root else {
            // `Config::validate` allows the cluster only with an object-store root.
            return Err(Error::Config(
                "engine `ballista` needs an s3:// output root".into(),
            ));
        };
        let df = cluster.sql(sql).await.map_err(plan_error)?;
        let target = cluster::stage::Target {
            root: object,
            run_id: &run.run_id,
            layer: model.layer.as_str(),
            table: &model.name,
        };
        let options = parquet::table_parquet_options(&run.config, model.layer);
        let limit = run.config.cluster_query_timeout_seconds;
        let rows = cluster::stage::stage_query(target, df, options, props, limit).await?;
        tracing::debug!(model = %model.name, rows, seconds = started.elapsed().as_secs_f64(), "Query executed and staged on the cluster.");
        result.rows_written = rows;
        let staged = Staged::Cluster {
            root: object,
            ctx: cluster,
        };
        return publish(run, model, staged, rows, result).await;
    }
    let stage = run.staging.join(model.layer.as_str()).join(&model.name);
    let df = run.ctx.sql(sql).await.map_err(plan_error)?;
    let rows = parquet::write_dataframe(df, &stage, props).await?;
    tracing::debug!(model = %model.name, rows, seconds = started.elapsed().as_secs_f64(), "Query executed and staged.");
    result.rows_written = rows;
    publish(run, model, Staged::Local(&stage), rows, result).await
}
