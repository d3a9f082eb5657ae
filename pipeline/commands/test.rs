//! `medallion test`: the data tests of the selected models, run on their
//! published tables; exits like a run whose tests failed.

use std::io::Write;

use super::flags::{layer, load_config};
use crate::audit::{self, TestResult, TestStatus};
use crate::cli::TestArgs;
use crate::config::Config;
use crate::engine;
use crate::error::{Error, Result};
use crate::models::{self, Layer};
use crate::run::default_as_of;
use crate::storage::Root;
use crate::udf::RunContext;

pub async fn test(args: TestArgs) -> Result<()> {
    let config = load_config(&args.common)?;
    let results = test_published(&config, &args.select, layer(args.layer)).await?;
    let mut out = String::from(
        "model                              test                                                  severity  status  failing\n",
    );
    let mut blocking = 0;
    let mut failed_models = Vec::new();
    for (model, tests) in &results {
        for t in tests {
            let status = match t.status {
                TestStatus::Pass => "pass",
                TestStatus::Fail => "FAIL",
                TestStatus::Error => "ERROR",
            };
            out.push_str(&format!(
                "{model:<34} {:<53} {:<9} {status:<7} {}\n",
                t.name,
                format!("{:?}", t.severity).to_lowercase(),
                t.failing_rows
            ));
            if t.blocks() {
                blocking += 1;
                failed_models.push(model.clone());
            }
        }
    }
    let total: usize = results.iter().map(|(_, t)| t.len()).sum();
    out.push_str(&format!(
        "{total} test(s), {blocking} failing with error severity\n"
    ));
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    if blocking > 0 {
        failed_models.dedup();
        return Err(Error::DataTests {
            failed: blocking,
            models: failed_models.join(", "),
        });
    }
    Ok(())
}

/// Run the data tests of the selected models on their published tables.
/// Returns each model with its results.
pub async fn test_published(
    config: &Config,
    select: &[String],
    layer: Option<Layer>,
) -> Result<Vec<(String, Vec<TestResult>)>> {
    config.validate()?;
    let dag = models::load_dag(config)?;
    let selected = dag.select(select, layer)?;
    let run_ctx = RunContext::new(default_as_of(), config);
    let ctx = engine::session_context(config, &run_ctx)?;
    let root = Root::open(&config.output)?;
    root.register_store(&ctx);
    // A damaged table fails its own tests, naming its file; the others run.
    let mut damaged = std::collections::BTreeMap::new();
    for model in dag.ordered() {
        let layer = model.layer.as_str();
        if root.is_published(layer, &model.name).await?
            && let Err(why) = root
                .register_readable(&ctx, &model.name, layer, &model.name)
                .await
        {
            tracing::warn!(model = %model.name, reason = %why, "Table cannot be read; its tests report an error.");
            damaged.insert(model.name.clone(), why);
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
        let results = match damaged.get(&model.name) {
            Some(why) => model
                .tests
                .iter()
                .map(|t| TestResult {
                    name: t.name.clone(),
                    severity: t.severity,
                    status: audit::TestStatus::Error,
                    failing_rows: 0,
                    sample: Vec::new(),
                    error: Some(why.clone()),
                })
                .collect(),
            None => {
                let mut results =
                    audit::run_tests(&ctx, &model.name, &model.tests, 0, audit::Scope::Whole).await;
                // A file broken past the one registration read: name it.
                let failed = |r: &TestResult| r.status == audit::TestStatus::Error;
                if results.iter().any(failed) {
                    let extra: Vec<String> =
                        model.tests.iter().flat_map(|t| t.extra_tables()).collect();
                    let tables = std::iter::once(model.name.as_str())
                        .chain(extra.iter().map(String::as_str));
                    if let Some(why) = root.damage_among(tables) {
                        tracing::warn!(model = %model.name, reason = %why, "Table cannot be read; its tests report an error.");
                        for r in results.iter_mut().filter(|r| failed(r)) {
                            r.error = Some(why.clone());
                        }
                    }
                }
                results
            }
        };
        out.push((model.name.clone(), results));
    }
    Ok(out)
}
