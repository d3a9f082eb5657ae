//! `medallion docs`: a static site of the project that opens from disk and
//! needs no network: the model graph, a page per model (description, grain,
//! published columns and types, data tests with their last results, SQL,
//! upstream and downstream), the last run as a timeline, A/B results as
//! intervals, and the rows and freshness of every table.
//!
//! Everything is read, never computed anew: the models from `sql/`, the
//! published tables' markers and schemas, and `_runs/latest.json`.

mod html;
mod svg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::SessionContext;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::models::{self, Dag, Model, ModelKind};
use crate::storage::Root;
use html::{escape, layer_badge, page};

/// What `build` wrote.
#[derive(Debug)]
pub struct Site {
    pub dir: PathBuf,
    pub pages: usize,
}

/// What the site says of one table.
struct TableInfo {
    rows: Option<u64>,
    /// The run that published the current version, and when (from its id).
    run_id: Option<String>,
    columns: Vec<(String, String)>,
}

/// Write the site for `config`'s models and output root into `out`.
pub async fn build(config: &Config, out: &Path) -> Result<Site> {
    let dag = models::load_dag(config)?;
    let root = Root::open(&config.output)?;
    let latest: Option<serde_json::Value> = match root.read_file("_runs/latest.json").await? {
        Some(bytes) => serde_json::from_slice(&bytes).ok(),
        None => None,
    };
    let ctx = SessionContext::new();
    root.register_store(&ctx);
    let mut tables = BTreeMap::new();
    for model in dag.ordered() {
        tables.insert(model.name.clone(), table_info(&root, &ctx, model).await);
    }
    let models_dir = out.join("models");
    std::fs::create_dir_all(&models_dir)
        .map_err(|e| Error::io("cannot create docs folder", &models_dir, e))?;
    let write = |path: PathBuf, text: String| -> Result<()> {
        std::fs::write(&path, text).map_err(|e| Error::io("cannot write docs page", &path, e))
    };
    write(out.join("index.html"), index(&dag, &tables, &root))?;
    write(out.join("run.html"), run_page(latest.as_ref()))?;
    write(
        out.join("experiments.html"),
        experiments(&ctx, &tables).await,
    )?;
    for model in dag.ordered() {
        let page = model_page(config, &dag, model, &tables[&model.name], latest.as_ref())?;
        write(models_dir.join(format!("{}.html", model.name)), page)?;
    }
    Ok(Site {
        dir: out.to_path_buf(),
        pages: 3 + dag.len(),
    })
}

async fn table_info(root: &Root, ctx: &SessionContext, model: &Model) -> TableInfo {
    let layer = model.layer.as_str();
    let marker = root.marker(layer, &model.name).await.ok().flatten();
    let mut columns = Vec::new();
    if marker.is_some()
        && root
            .register(ctx, &model.name, layer, &model.name)
            .await
            .is_ok()
        && let Ok(frame) = ctx.table(model.name.as_str()).await
    {
        columns = frame
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
    }
    TableInfo {
        rows: marker.as_ref().map(|m| m.rows),
        run_id: marker.map(|m| m.run_id),
        columns,
    }
}

/// `20261128T211714Z-983bd368` → `2026-11-28 21:17:14 UTC`.
fn published_at(run_id: &str) -> String {
    chrono::NaiveDateTime::parse_from_str(run_id.get(..16).unwrap_or(""), "%Y%m%dT%H%M%SZ")
        .map(|t| format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S")))
        .unwrap_or_else(|_| run_id.to_string())
}

fn index(dag: &Dag, tables: &BTreeMap<String, TableInfo>, root: &Root) -> String {
    let mut body = format!(
        "<h1>medallion: {} models</h1>\n<p>Output root <code>{}</code>. Click a model in the graph or the table.</p>\n\
         <div class=\"graph fit\">{}</div>\n<h2>Tables</h2>\n<table><tr><th>model</th><th>layer</th>\
         <th>rows</th><th>published</th></tr>\n",
        dag.len(),
        escape(&root.display()),
        svg::graph(dag)
    );
    for model in dag.ordered() {
        let info = &tables[&model.name];
        body.push_str(&format!(
            "<tr><td><a href=\"models/{name}.html\">{name}</a></td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
            layer_badge(model.layer.as_str()),
            info.rows.map_or("—".into(), |r| r.to_string()),
            info.run_id.as_deref().map_or("never".into(), published_at),
            name = escape(&model.name)
        ));
    }
    body.push_str("</table>\n");
    page("Models", 0, &body)
}

fn run_page(latest: Option<&serde_json::Value>) -> String {
    let Some(run) = latest else {
        return page(
            "Last run",
            0,
            "<h1>Last run</h1><p>No run has finished in this output root yet.</p>",
        );
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let models = run["models"].as_array().cloned().unwrap_or_default();
    let mut bars: Vec<svg::Bar> = models
        .iter()
        .map(|m| svg::Bar {
            name: text(&m["name"]),
            start: m["started_seconds"].as_f64().unwrap_or(0.0),
            seconds: m["duration_seconds"].as_f64().unwrap_or(0.0),
            status: m["skipped"]
                .as_str()
                .map_or_else(|| text(&m["status"]), str::to_string),
        })
        .collect();
    bars.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut body = format!(
        "<h1>Last run: {}</h1>\n<p>Status <b>{}</b>, as of {}, from {} to {}. Each bar is one model \
         on the run's time axis (blue built, red failed, grey skipped); the bars that end last \
         are the chain that set the run's length.</p>\n<div class=\"graph\">{}</div>\n",
        escape(&text(&run["run_id"])),
        escape(&text(&run["status"])),
        escape(&text(&run["as_of"])),
        escape(&text(&run["started_at"])),
        escape(&text(&run["finished_at"])),
        svg::timeline(&bars)
    );
    body.push_str("<h2>Models</h2>\n<table><tr><th>model</th><th>status</th><th>rows</th><th>seconds</th></tr>\n");
    for m in &models {
        body.push_str(&format!(
            "<tr><td><a href=\"models/{n}.html\">{n}</a></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td></tr>\n",
            escape(&m["skipped"].as_str().map_or_else(|| text(&m["status"]), |s| format!("skipped: {s}"))),
            m["rows_written"].as_u64().unwrap_or(0),
            m["duration_seconds"].as_f64().unwrap_or(0.0),
            n = escape(&text(&m["name"]))
        ));
    }
    body.push_str("</table>\n");
    page("Last run", 0, &body)
}

/// The A/B comparison tables as interval plots: each non-control arm's
/// difference from control with its confidence interval.
async fn experiments(ctx: &SessionContext, tables: &BTreeMap<String, TableInfo>) -> String {
    let mut body = String::from(
        "<h1>Experiments</h1>\n<p>Each row is a variant's difference from control (treatment rate \
         minus control rate) with its 95 % confidence interval; green where the interval leaves \
         out zero. Hover a dot for the numbers.</p>\n",
    );
    for (table, label, sql) in [
        (
            "gold_ab_funnel_comparison",
            "Amplitude funnels: experiment · device/culture · step · variant",
            "select concat(experiment_id, ' · ', device, '/', culture, ' · ', cast(step as varchar), ' ', \
             stage, ' · ', variant), abs_diff, ci_low, ci_high from gold_ab_funnel_comparison \
             order by experiment_id, device, culture, step, variant",
        ),
        (
            "gold_ab_onboarding_results",
            "Onboarding: metric · segment · variant",
            "select concat(metric, ' · ', segment_name, ' · ', variant), abs_diff, ci_low, ci_high \
             from gold_ab_onboarding_results order by metric, segment_name, variant",
        ),
    ] {
        body.push_str(&format!("<h2>{}</h2>\n", escape(label)));
        if tables.get(table).is_none_or(|t| t.rows.is_none()) {
            body.push_str(&format!("<p><code>{table}</code> is not published.</p>\n"));
            continue;
        }
        match interval_rows(ctx, sql).await {
            Ok(rows) if rows.is_empty() => body.push_str("<p>No rows.</p>\n"),
            Ok(rows) => body.push_str(&format!(
                "<div class=\"graph\">{}</div>\n",
                svg::intervals(&rows)
            )),
            Err(e) => body.push_str(&format!(
                "<p>Cannot read <code>{table}</code>: {}</p>\n",
                escape(&e.to_string())
            )),
        }
    }
    page("Experiments", 0, &body)
}

async fn interval_rows(ctx: &SessionContext, sql: &str) -> Result<Vec<svg::Interval>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut rows = Vec::new();
    for batch in batches {
        let labels = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let labels = labels.as_string::<i32>();
        let numbers = (1..4)
            .map(|i| datafusion::arrow::compute::cast(batch.column(i), &DataType::Float64))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let value = |c: usize, i: usize| {
            let a = numbers[c].as_primitive::<Float64Type>();
            if a.is_null(i) { f64::NAN } else { a.value(i) }
        };
        for i in 0..batch.num_rows() {
            rows.push(svg::Interval {
                label: labels.value(i).to_string(),
                estimate: value(0, i),
                low: value(1, i),
                high: value(2, i),
            });
        }
    }
    Ok(rows)
}

fn model_page(
    config: &Config,
    dag: &Dag,
    model: &Model,
    info: &TableInfo,
    latest: Option<&serde_json::Value>,
) -> Result<String> {
    let (description, grain, code) = match &model.kind {
        ModelKind::Source(source) => (
            source.description.clone(),
            source
                .primary_key()
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            std::fs::read_to_string(&source.declared_in).unwrap_or_default(),
        ),
        ModelKind::Amplitude(_) => (
            Some("Landed from the Amplitude funnel envelopes under amplitude/funnels/.".into()),
            String::new(),
            String::new(),
        ),
        ModelKind::Sql { path, sql } => {
            let sidecar = path.with_extension("toml");
            let (spec, _) = if sidecar.is_file() {
                models::sidecar::load_tests(&sidecar, &config.models)?
            } else {
                Default::default()
            };
            (spec.description, spec.grain.join(", "), sql.clone())
        }
    };
    let name = escape(&model.name);
    let links = |names: Vec<&str>| -> String {
        if names.is_empty() {
            return "none".into();
        }
        names
            .iter()
            .map(|n| format!("<a href=\"{n}.html\">{n}</a>", n = escape(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut body = format!(
        "<h1>{name} {}</h1>\n<p>{}</p>\n<table><tr><th>grain</th><td>{}</td></tr>\
         <tr><th>defined in</th><td><code>{}</code></td></tr>\
         <tr><th>rows</th><td>{}</td></tr><tr><th>published</th><td>{}</td></tr>\
         <tr><th>upstream</th><td>{}</td></tr><tr><th>downstream</th><td>{}</td></tr></table>\n",
        layer_badge(model.layer.as_str()),
        escape(description.as_deref().unwrap_or("No description.")),
        escape(if grain.is_empty() { "—" } else { &grain }),
        escape(&model.origin()),
        info.rows.map_or("—".into(), |r| r.to_string()),
        info.run_id.as_deref().map_or("never".into(), published_at),
        links(model.deps.iter().map(String::as_str).collect()),
        links(dag.dependants(&model.name)),
    );
    body.push_str("<h2>Columns</h2>\n");
    if info.columns.is_empty() {
        body.push_str("<p>Not published yet.</p>\n");
    } else {
        body.push_str("<table><tr><th>column</th><th>type</th></tr>\n");
        for (column, ty) in &info.columns {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td></tr>\n",
                escape(column),
                escape(ty)
            ));
        }
        body.push_str("</table>\n");
    }
    body.push_str("<h2>Data tests</h2>\n");
    let last: Option<&serde_json::Value> = latest
        .and_then(|r| r["models"].as_array())
        .and_then(|ms| ms.iter().find(|m| m["name"] == model.name.as_str()));
    if model.tests.is_empty() {
        body.push_str("<p>None.</p>\n");
    } else {
        body.push_str("<table><tr><th>test</th><th>severity</th><th>last result</th><th>failing rows</th></tr>\n");
        for test in &model.tests {
            let result = last
                .and_then(|m| m["tests"].as_array())
                .and_then(|ts| ts.iter().find(|t| t["name"] == test.name.as_str()));
            let (status, failing) = match result {
                Some(t) => (
                    t["status"].as_str().unwrap_or("?").to_string(),
                    t["failing_rows"]
                        .as_u64()
                        .map_or(String::new(), |n| n.to_string()),
                ),
                None => ("not run in the last run".to_string(), String::new()),
            };
            let class = match status.as_str() {
                "pass" => "pass",
                "fail" | "error" => "fail",
                _ => "warn",
            };
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td class=\"num\">{}</td></tr>\n",
                escape(&test.name),
                escape(&format!("{:?}", test.severity).to_lowercase()),
                escape(&status),
                escape(&failing)
            ));
        }
        body.push_str("</table>\n");
    }
    if !code.is_empty() {
        let what = if matches!(model.kind, ModelKind::Sql { .. }) {
            "SQL (macros expanded)"
        } else {
            "Declaration"
        };
        body.push_str(&format!("<h2>{what}</h2>\n<pre>{}</pre>\n", escape(&code)));
    }
    Ok(page(&model.name, 1, &body))
}
