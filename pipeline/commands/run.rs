//! `medallion run`: build the config from flags, then either print the plan
//! (`--dry-run`) or run the pipeline and print the summary table.

use std::io::Write;

use super::flags::{layer, run_config};
use crate::cli::RunArgs;
use crate::error::Result;
use crate::models::{self, Dag, ModelKind};
use crate::run::{self, RunRequest};
use crate::storage::Root;

pub async fn run(args: RunArgs) -> Result<()> {
    let config = run_config(&args)?;
    let layer = layer(args.layer);
    let request = RunRequest {
        as_of: args.as_of.unwrap_or_else(run::default_as_of),
        select: args.select.clone(),
        layer,
        arguments: std::env::args().collect(),
        full_refresh: args.full_refresh,
        retry: args.retry,
        config,
    };
    if args.dry_run {
        let dag = models::load_dag(&request.config)?;
        let plan = dry_run_plan(&dag, &request)?;
        let _ = std::io::stdout().lock().write_all(plan.as_bytes());
        return Ok(());
    }
    let results = run::run(request).await?;
    let _ = std::io::stdout()
        .lock()
        .write_all(results.summary_table().as_bytes());
    results.outcome()
}

/// The plan a run would execute: models in order, what each reads and writes.
pub fn dry_run_plan(dag: &Dag, request: &RunRequest) -> Result<String> {
    let selected = dag.select(&request.select, request.layer)?;
    let root = Root::open(&request.config.output)?;
    let mut out = format!(
        "Plan for as-of {} ({} of {} models), output {}:\n",
        request.as_of,
        selected.len(),
        dag.len(),
        root.display()
    );
    for (n, model) in dag
        .ordered()
        .filter(|m| selected.contains(&m.name))
        .enumerate()
    {
        let reads = match &model.kind {
            ModelKind::Source(s) => s.inputs(&request.config.input),
            ModelKind::Amplitude(_) => format!(
                "{}/amplitude/funnels/*.json",
                request.config.input.display()
            ),
            ModelKind::Sql { .. } => model.deps.join(", "),
        };
        out.push_str(&format!(
            "{:>3}. {:<34} reads {}\n     writes {}/{}/{}\n",
            n + 1,
            model.name,
            reads,
            root.display().trim_end_matches('/'),
            model.layer.as_str(),
            model.name
        ));
        if !model.tests.is_empty() {
            let tests: Vec<String> = model
                .tests
                .iter()
                .map(|t| {
                    format!(
                        "{} [{}]",
                        t.name,
                        format!("{:?}", t.severity).to_lowercase()
                    )
                })
                .collect();
            out.push_str(&format!("     tests  {}\n", tests.join("; ")));
        }
    }
    Ok(out)
}
