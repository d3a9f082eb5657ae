//! The commands behind the CLI: turn parsed flags into a validated config and
//! call the library. Results go to stdout, logs to stderr.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::audit::TestStatus;
use crate::catalog::{Layer, ModelKind};
use crate::cli::TestArgs;
use crate::cli::{
    Cli, Command, CommonArgs, LayerArg, LineageArgs, LineageFormat, QueryArgs, QueryFormat, RunArgs,
};
use crate::config::Config;
use crate::dag::Dag;
use crate::engine::{self, RunContext};
use crate::error::{Error, Result};
use crate::generate;
use crate::runner::{self, RunRequest};
use crate::storage::Root;

/// Run one parsed command line.
pub async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run(args).await,
        Command::Generate(args) => {
            let summary = generate::generate(&generate::GenerateOptions {
                scale: args.scale,
                seed: args.seed,
                out: args.out.clone(),
                dirty_rate: args.dirty_rate,
                end_date: args.end_date,
            })?;
            // One line per source: daily folders are summed.
            let mut per_source: std::collections::BTreeMap<String, (usize, usize)> =
                Default::default();
            for (file, rows) in summary {
                let relative = file.strip_prefix(&args.out).unwrap_or(&file);
                let source = relative
                    .components()
                    .next()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .unwrap_or_default();
                let entry = per_source.entry(source).or_default();
                entry.0 += 1;
                entry.1 += rows;
            }
            let mut out = std::io::stdout().lock();
            for (source, (files, rows)) in per_source {
                let _ = writeln!(
                    out,
                    "{rows:>10} rows  {files:>4} file(s)  {}",
                    args.out.join(source).display()
                );
            }
            Ok(())
        }
        Command::Test(args) => test(args).await,
        Command::Lineage(args) => lineage(args),
        Command::Fetch(crate::cli::FetchCommand::Amplitude(args)) => fetch_amplitude(args).await,
        Command::Query(args) => query(args).await,
        Command::Scheduler(args) => crate::distributed::serve_scheduler(args).await,
        Command::Executor(args) => crate::distributed::serve_executor(args).await,
    }
}

fn load_config(common: &CommonArgs) -> Result<Config> {
    let mut config = Config::load(common.config.as_deref())?;
    if let Some(o) = &common.output {
        config.output = o.clone();
    }
    if let Some(m) = &common.models {
        config.models = m.clone();
    }
    Ok(config)
}

fn run_config(args: &RunArgs) -> Result<Config> {
    let mut config = load_config(&args.common)?;
    if let Some(i) = &args.input {
        config.input = i.clone();
    }
    if let Some(f) = args.max_bad_row_fraction {
        config.max_bad_row_fraction = f;
    }
    if let Some(n) = args.max_concurrent_models {
        config.max_concurrent_models = n;
    }
    if let Some(n) = args.target_partitions {
        config.target_partitions = n;
    }
    if let Some(n) = args.memory_limit_mb {
        config.memory_limit_mb = n;
    }
    if let Some(pool) = args.memory_pool {
        config.memory_pool = pool;
    }
    if let Some(engine) = args.engine {
        config.engine = engine;
    }
    if let Some(url) = &args.scheduler {
        config.scheduler = Some(url.clone());
    }
    if let Some(seconds) = args.cluster_query_timeout_seconds {
        config.cluster_query_timeout_seconds = seconds;
    }
    // MEDALLION_VAR_<NAME>=value first, so that flags win over the environment.
    let mut from_env: Vec<(String, String)> = std::env::vars()
        .filter_map(|(k, v)| {
            k.strip_prefix("MEDALLION_VAR_")
                .map(|n| (n.to_ascii_lowercase(), v))
        })
        .collect();
    from_env.sort();
    for (name, value) in from_env {
        config.variables.set(&format!("{name}={value}"))?;
    }
    for assignment in &args.vars {
        config.variables.set(assignment)?;
    }
    config.validate()?;
    Ok(config)
}

fn layer(arg: Option<LayerArg>) -> Option<Layer> {
    arg.map(|l| match l {
        LayerArg::Bronze => Layer::Bronze,
        LayerArg::Silver => Layer::Silver,
        LayerArg::Gold => Layer::Gold,
    })
}

async fn test(args: TestArgs) -> Result<()> {
    let config = load_config(&args.common)?;
    let results = runner::test_published(&config, &args.select, layer(args.layer)).await?;
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

async fn run(args: RunArgs) -> Result<()> {
    let config = run_config(&args)?;
    let layer = layer(args.layer);
    let request = RunRequest {
        as_of: args.as_of.unwrap_or_else(runner::default_as_of),
        select: args.select.clone(),
        layer,
        arguments: std::env::args().collect(),
        config,
    };
    if args.dry_run {
        let dag = runner::load_dag(&request.config)?;
        let plan = dry_run_plan(&dag, &request)?;
        let _ = std::io::stdout().lock().write_all(plan.as_bytes());
        return Ok(());
    }
    let results = runner::run(request).await?;
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
            ModelKind::Source(s) => format!(
                "{}/{}.csv or {}/{}/*.csv",
                request.config.input.display(),
                s.name,
                request.config.input.display(),
                s.name
            ),
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

fn lineage(args: LineageArgs) -> Result<()> {
    let config = load_config(&args.common)?;
    let dag = runner::load_dag(&config)?;
    let text = render_lineage(&dag, args.format)?;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// The DAG as text, Graphviz DOT, Mermaid or JSON.
pub fn render_lineage(dag: &Dag, format: LineageFormat) -> Result<String> {
    let mut out = String::new();
    match format {
        LineageFormat::Text => {
            for m in dag.ordered() {
                let deps = if m.deps.is_empty() {
                    "(source)".to_string()
                } else {
                    format!("<- {}", m.deps.join(", "))
                };
                out.push_str(&format!("{:<6} {:<36} {deps}\n", m.layer.as_str(), m.name));
            }
        }
        LineageFormat::Dot => {
            out.push_str("digraph medallion {\n  rankdir=LR;\n");
            for m in dag.ordered() {
                out.push_str(&format!("  \"{}\" [group={}];\n", m.name, m.layer));
                for d in &m.deps {
                    out.push_str(&format!("  \"{d}\" -> \"{}\";\n", m.name));
                }
            }
            out.push_str("}\n");
        }
        LineageFormat::Mermaid => {
            out.push_str("graph LR\n");
            for m in dag.ordered() {
                if m.deps.is_empty() {
                    out.push_str(&format!("  {}\n", m.name));
                }
                for d in &m.deps {
                    out.push_str(&format!("  {d} --> {}\n", m.name));
                }
            }
        }
        LineageFormat::Json => {
            let nodes: Vec<serde_json::Value> = dag
                .ordered()
                .map(|m| serde_json::json!({"name": m.name, "layer": m.layer, "depends_on": m.deps, "origin": m.origin()}))
                .collect();
            out = serde_json::to_string_pretty(&serde_json::json!({ "models": nodes }))?;
            out.push('\n');
        }
    }
    Ok(out)
}

/// Register every published table of an output root under its name.
pub async fn register_published(ctx: &SessionContext, root: &Root) -> Result<Vec<String>> {
    root.register_store(ctx);
    let mut names = Vec::new();
    for layer in Layer::ALL {
        for table in root.published_tables(layer.as_str()).await? {
            root.register(ctx, &table, layer.as_str(), &table).await?;
            names.push(table);
        }
    }
    Ok(names)
}

async fn fetch_amplitude(args: crate::cli::FetchAmplitudeArgs) -> Result<()> {
    use crate::fetch::amplitude::{Client, Credentials, ExperimentConfig, FunnelQuery, fetch_all};
    let mut config = load_config(&args.common)?;
    if let Some(u) = &args.api_url {
        config.amplitude.api_url = u.clone();
    }
    if let Some(u) = &args.experiment_api_url {
        config.amplitude.experiment_api_url = u.clone();
    }
    if let Some(i) = &args.input {
        config.input = i.clone();
    }
    config.validate()?;
    if args.list_experiments {
        let key = std::env::var("AMPLITUDE_MANAGEMENT_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::Config(
                    "AMPLITUDE_MANAGEMENT_KEY is not set: export an Experiment Management API key"
                        .into(),
                )
            })?;
        // Listing uses the Bearer management key only.
        let client = Client::new(
            config.amplitude.clone(),
            Credentials::new(String::new(), String::new()),
        )?;
        let experiments = client.list_experiments(&key).await?;
        let mut out = std::io::stdout().lock();
        for e in &experiments {
            let field = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let _ = writeln!(
                out,
                "{}\t{}\t{}",
                field("key"),
                field("state"),
                field("name")
            );
        }
        return Ok(());
    }
    let experiments = match &args.experiment {
        Some(id) => {
            let e = ExperimentConfig {
                id: id.clone(),
                start: args
                    .start
                    .ok_or_else(|| Error::Config("--start is required with --experiment".into()))?,
                end: args
                    .end
                    .ok_or_else(|| Error::Config("--end is required with --experiment".into()))?,
                events: args.events.clone(),
                variants: args.variants.clone(),
                device: args.device.clone(),
                culture: args.culture.clone(),
            };
            e.validate()?;
            vec![e]
        }
        None if config.amplitude.experiments.is_empty() => {
            return Err(Error::Config(
                "nothing to fetch: pass --experiment/--start/--end/--events or list [[amplitude.experiments]] in medallion.toml".into(),
            ));
        }
        None => config.amplitude.experiments.clone(),
    };
    let queries: Vec<FunnelQuery> = experiments
        .iter()
        .flat_map(FunnelQuery::for_experiment)
        .collect();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| config.input.join(crate::ingest::amplitude::FUNNELS_DIR));
    let client = std::sync::Arc::new(Client::new(
        config.amplitude.clone(),
        Credentials::from_env()?,
    )?);
    let written = fetch_all(client, queries, &out).await?;
    let mut stdout = std::io::stdout().lock();
    for p in written {
        let _ = writeln!(stdout, "{}", p.display());
    }
    Ok(())
}

async fn query(args: QueryArgs) -> Result<()> {
    let config = load_config(&args.common)?;
    let run = RunContext::new(runner::default_as_of(), &config);
    let ctx = engine::session_context(&config, &run)?;
    let root = Root::open(&config.output)?;
    let names = register_published(&ctx, &root).await?;
    if names.is_empty() {
        return Err(Error::Input(format!(
            "no published tables under {}; run `medallion run` first or pass --output",
            config.output.display()
        )));
    }
    let batches = ctx.sql(&args.sql).await?.collect().await?;
    let text = format_batches(&batches, args.format)?;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// Render query results as a table, CSV or JSON rows.
pub fn format_batches(batches: &[RecordBatch], format: QueryFormat) -> Result<String> {
    Ok(match format {
        QueryFormat::Table => format!(
            "{}\n",
            datafusion::arrow::util::pretty::pretty_format_batches(batches)?
        ),
        QueryFormat::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(Vec::new());
            for b in batches {
                writer.write(b)?;
            }
            String::from_utf8_lossy(&writer.into_inner()).into_owned()
        }
        QueryFormat::Json => {
            let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
            let mut s = String::from_utf8_lossy(&writer.into_inner()).into_owned();
            s.push('\n');
            s
        }
    })
}
