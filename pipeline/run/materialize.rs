//! Building one model: ingest a source or run a model's SQL into staging,
//! then hand it to write–audit–publish (`publish`). Every failure becomes
//! the model's result, with the error chain a user can act on; a run goes on
//! past a failed model.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::changes;
use super::context::Run;
use super::fingerprint;
use super::incremental;
use super::publish::{Staged, Version, publish, register_published, write_marker};
use super::results::{Build, ModelResult, Status, UNCHANGED};
use crate::cluster;
use crate::config::MemoryPoolKind;
use crate::error::{Error, Result, error_chain};
use crate::ingest::amplitude::{self, FunnelTable};
use crate::ingest::{self, IngestReport, Source};
use crate::models::{Model, ModelKind};
use crate::parquet;
use crate::storage::{InputPart, Root};

/// Build, stage, test and publish one model; never fails, reports instead.
pub async fn build_model(run: Arc<Run>, model: Model) -> ModelResult {
    let started = Instant::now();
    // Counted while it builds, so that large CSV files parse on idle slots only.
    let _busy = run.ingest.workload.enter();
    tracing::info!(model = %model.name, layer = %model.layer, "Model started.");
    let mut result = ModelResult::new(&model, Status::Success);
    result.started_seconds = (chrono::Utc::now() - run.started)
        .to_std()
        .map_or(0.0, |d| d.as_secs_f64());
    let outcome = match &model.kind {
        ModelKind::Source(source) => build_source(&run, &model, source, &mut result).await,
        ModelKind::Amplitude(table) => build_amplitude(&run, &model, *table, &mut result).await,
        ModelKind::Sql { sql, .. } => build_sql(&run, &model, sql, &mut result).await,
    };
    result.duration_seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) if result.status == Status::Unchanged => {}
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
            } else if chain.to_ascii_lowercase().contains("parquet")
                // Its inputs, and its own table (an incremental build reads its kept dates).
                && let Some(why) = run.root.damage_among(
                    model.deps.iter().map(String::as_str).chain([model.name.as_str()]),
                )
            {
                chain.push_str(&format!("; {why}"));
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
    let plan =
        changes::plan_source(run, &model.name, &source.name, &source.declared_in, files).await?;
    result.files = Some(plan.changes);
    for file in &plan.removed {
        tracing::warn!(
            source = source.name.as_str(),
            file = file.as_str(),
            "Input file gone: its rows are removed from the bronze table."
        );
    }
    let mut inputs: Vec<InputPart> = plan.keep.clone();
    if plan.unchanged {
        let totals = totals(&inputs);
        totals.check_bad_fraction(&source.name, run.config.max_bad_row_fraction)?;
        result.rows_written = totals.rows;
        result.quarantined_rows = totals.quarantined;
        return unchanged(run, model, result).await;
    }
    let bronze_stage = run.staging.join("bronze").join(&model.name);
    let quarantine_stage = run.staging.join("_quarantine").join(&source.name);
    keep_parts(
        run,
        &model.name,
        &source.name,
        &plan.keep,
        &bronze_stage,
        &quarantine_stage,
    )?;
    let (read_files, mut read_parts): (Vec<_>, Vec<_>) = plan.read.iter().cloned().unzip();
    let report = {
        let keys: Vec<String> = read_parts.iter().map(|p| p.key.clone()).collect();
        let (b, q, opts) = (
            bronze_stage.clone(),
            quarantine_stage.clone(),
            run.ingest.clone(),
        );
        let source = Arc::clone(source);
        let pass = run.blocking_pass().await;
        tokio::task::spawn_blocking(move || {
            let _pass = pass;
            ingest::ingest_source(&source, &read_files, &keys, &b, &q, &opts)
        })
        .await??
    };
    for (part, counts) in read_parts.iter_mut().zip(&report.per_file) {
        part.rows = counts.rows;
        part.quarantined = counts.quarantined;
        part.quarantined_lines = counts.quarantined_lines;
    }
    inputs.extend(read_parts);
    inputs.sort_by(|a, b| a.file.cmp(&b.file));
    let mut totals = totals(&inputs);
    totals.damaged = report.damaged.clone();
    result.build = Some(if plan.keep.is_empty() {
        Build::Full
    } else {
        Build::Incremental
    });
    result.rows_written = totals.rows;
    result.quarantined_rows = totals.quarantined;
    if totals.quarantined > 0 {
        tracing::warn!(
            source = source.name.as_str(),
            rows = totals.quarantined,
            "Rows quarantined."
        );
    }
    // The quarantine is published even when the source fails: it says why.
    let quarantine_version = Version {
        rows: totals.quarantined,
        fingerprint: Some(plan.fingerprint.clone()),
        inputs: inputs.clone(),
        incremental: None,
        schema: None,
    };
    write_marker(&run.run_id, &quarantine_stage, &quarantine_version)?;
    run.root
        .publish(&quarantine_stage, "_quarantine", &source.name, false)
        .await?;
    totals.check_bad_fraction(&source.name, run.config.max_bad_row_fraction)?;
    check_shrink(run, &model.name, &source.name, totals.rows).await?;
    // Repeated keys are counted while rows stream by, so only over a full read.
    if !source.primary_key().is_empty() && plan.keep.is_empty() {
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
    let version = Version {
        rows: totals.rows,
        fingerprint: Some(plan.fingerprint.clone()),
        inputs,
        incremental: None,
        schema: Some(source.bronze_schema()),
    };
    publish(run, model, Staged::Local(&bronze_stage), version, result).await?;
    plan.save_cache(&run.root, &source.name).await;
    Ok(())
}

/// The counts of a whole source, from its files' counts.
fn totals(inputs: &[InputPart]) -> IngestReport {
    IngestReport {
        files: inputs.len(),
        rows: inputs.iter().map(|p| p.rows).sum(),
        quarantined: inputs.iter().map(|p| p.quarantined).sum(),
        quarantined_lines: inputs.iter().map(|p| p.quarantined_lines).sum(),
        ..IngestReport::default()
    }
}

/// Put the published parts of unchanged files into the staged folders, as
/// hard links (same filesystem: staging is inside a local root), so they
/// are neither read nor written again.
fn keep_parts(
    run: &Run,
    table: &str,
    source: &str,
    keep: &[InputPart],
    bronze_stage: &std::path::Path,
    quarantine_stage: &std::path::Path,
) -> Result<()> {
    let Root::Local(layout) = &run.root else {
        return Ok(());
    };
    for (from, to, counted) in [
        (layout.table_dir("bronze", table), bronze_stage, false),
        (layout.quarantine_dir(source), quarantine_stage, true),
    ] {
        std::fs::create_dir_all(to)
            .map_err(|e| Error::io("cannot create staging folder", to, e))?;
        for part in keep {
            let rows = if counted { part.quarantined } else { part.rows };
            if rows == 0 {
                continue;
            }
            let name = part.part_name();
            let (src, dst) = (from.join(&name), to.join(&name));
            if std::fs::hard_link(&src, &dst).is_err() {
                std::fs::copy(&src, &dst).map_err(|e| Error::io("cannot keep part", &src, e))?;
            }
        }
    }
    Ok(())
}

/// A model whose published version is current: make it readable to its
/// dependants and report it `skipped: unchanged`.
async fn unchanged(run: &Run, model: &Model, result: &mut ModelResult) -> Result<()> {
    let layer = model.layer.as_str();
    register_published(run, layer, &model.name).await?;
    // A killed run may have uploaded files of this table without its
    // manifest; a skipped table would keep them (SQL models list every file
    // in the manifest; Delta tables keep their own log).
    if let crate::storage::Root::Object(object) = &run.root
        && matches!(model.kind, crate::models::ModelKind::Sql { .. })
        && run.config.table_format.of(layer) == crate::config::TableFormat::Parquet
    {
        object.sweep(layer, &model.name).await?;
    }
    if result.rows_written == 0 {
        result.rows_written = run
            .root
            .published_rows(layer, &model.name)
            .await?
            .unwrap_or(0);
    }
    result.status = Status::Unchanged;
    result.skipped = Some(UNCHANGED);
    tracing::info!(model = %model.name, "Model unchanged since its last publish; skipped.");
    Ok(())
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
    let fingerprint = envelopes_fingerprint(&files).await?;
    let quarantine_current = table != FunnelTable::Daily
        || run
            .root
            .marker("_quarantine", amplitude::QUARANTINE_SOURCE)
            .await?
            .and_then(|m| m.fingerprint)
            .as_ref()
            == Some(&fingerprint);
    if !run.full_refresh
        && quarantine_current
        && run.version(&model.name).as_ref() == Some(&fingerprint)
    {
        return unchanged(run, model, result).await;
    }
    result.build = Some(Build::Full);
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
    let version = Version {
        rows: report.rows,
        fingerprint: Some(fingerprint),
        inputs: Vec::new(),
        incremental: None,
        schema: Some(table.schema()),
    };
    if let Some(q) = quarantine_stage {
        let quarantined = Version {
            rows: report.quarantined,
            ..version.clone()
        };
        write_marker(&run.run_id, &q, &quarantined)?;
        run.root
            .publish(&q, "_quarantine", amplitude::QUARANTINE_SOURCE, false)
            .await?;
    }
    publish(run, model, Staged::Local(&stage), version, result).await
}

/// The fingerprint of the Amplitude tables: every envelope's name and bytes.
async fn envelopes_fingerprint(files: &[(PathBuf, String)]) -> Result<String> {
    let files = files.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut digest = fingerprint::Digest::new("amplitude");
        for (path, name) in &files {
            digest
                .add(name.as_bytes())
                .add(ingest::content_hash(path)?.as_bytes());
        }
        Ok(digest.finish())
    })
    .await?
}

async fn build_sql(run: &Run, model: &Model, sql: &str, result: &mut ModelResult) -> Result<()> {
    let fingerprint = fingerprint::sql_model(run, model, sql);
    if !run.full_refresh && fingerprint.is_some() && fingerprint == run.version(&model.name) {
        return unchanged(run, model, result).await;
    }
    let capped;
    let sql = match &model.incremental {
        Some(spec) if incremental::applies(run, model) => {
            return incremental::build(run, model, spec, sql, fingerprint, result).await;
        }
        // Built whole: the engine's as-of cap, as on the partitioned path.
        Some(spec) => {
            capped = incremental::capped_sql(sql, spec.as_of_column());
            capped.as_str()
        }
        None => sql,
    };
    result.build = Some(Build::Full);
    let version = |rows| Version {
        rows,
        fingerprint: fingerprint.clone(),
        inputs: Vec::new(),
        incremental: None,
        schema: None,
    };
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
        return publish(run, model, staged, version(rows), result).await;
    }
    let stage = run.staging.join(model.layer.as_str()).join(&model.name);
    let df = run.ctx.sql(sql).await.map_err(plan_error)?;
    let rows = parquet::write_dataframe(df, &stage, props).await?;
    tracing::debug!(model = %model.name, rows, seconds = started.elapsed().as_secs_f64(), "Query executed and staged.");
    result.rows_written = rows;
    publish(run, model, Staged::Local(&stage), version(rows), result).await
}
