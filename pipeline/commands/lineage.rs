//! `medallion lineage`: the model graph as text, Graphviz DOT, Mermaid or JSON.

use std::io::Write;

use super::flags::load_config;
use crate::cli::{LineageArgs, LineageFormat};
use crate::error::Result;
use crate::models::{self, Dag, Model, ModelKind};
use std::path::Path;

pub fn lineage(args: LineageArgs) -> Result<()> {
    let config = load_config(&args.common)?;
    let dag = models::load_dag(&config)?;
    let text = render_lineage(&dag, args.format, &config.input)?;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// What a model without dependencies reads: a source's files under `input`.
fn reads(model: &Model, input: &Path) -> Option<String> {
    match &model.kind {
        ModelKind::Source(s) => Some(s.inputs(input)),
        ModelKind::Amplitude(_) => Some(format!("{}/amplitude/funnels/*.json", input.display())),
        ModelKind::Sql { .. } => None,
    }
}

/// The DAG as text, Graphviz DOT, Mermaid or JSON; sources name their input files.
pub fn render_lineage(dag: &Dag, format: LineageFormat, input: &Path) -> Result<String> {
    let mut out = String::new();
    match format {
        LineageFormat::Text => {
            for m in dag.ordered() {
                let deps = if let Some(files) = reads(m, input) {
                    format!("<- {files}")
                } else if m.deps.is_empty() {
                    "(no inputs)".to_string()
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
                .map(|m| serde_json::json!({"name": m.name, "layer": m.layer, "depends_on": m.deps, "origin": m.origin(), "reads": reads(m, input)}))
                .collect();
            out = serde_json::to_string_pretty(&serde_json::json!({ "models": nodes }))?;
            out.push('\n');
        }
    }
    Ok(out)
}
