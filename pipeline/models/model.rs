//! One node of the model graph: a table, the layer it lands in, and how it
//! is built (a CSV source, an Amplitude table or a SQL query).

use std::path::PathBuf;
use std::sync::Arc;

use super::sidecar::{DataTest, Incremental};
use crate::ingest::Source;
use crate::ingest::amplitude::FunnelTable;
use crate::layer::Layer;

/// How a model is built.
#[derive(Debug, Clone)]
pub enum ModelKind {
    /// A declared source landed by the ingest step.
    Source(Arc<Source>),
    /// One of the two tables landed from Amplitude funnel envelopes.
    Amplitude(FunnelTable),
    /// A SQL query whose result becomes the table.
    Sql { path: PathBuf, sql: String },
}

/// One node of the DAG: a table and how to build it.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub layer: Layer,
    pub kind: ModelKind,
    /// Tables this model (or one of its data tests) reads, sorted.
    pub deps: Vec<String>,
    /// Data tests from the sidecar `<name>.toml`, grain first.
    pub tests: Vec<DataTest>,
    /// The sidecar's `incremental` declaration (SQL models only).
    pub incremental: Option<Incremental>,
}

impl Model {
    /// Where the model is defined, for messages.
    pub fn origin(&self) -> String {
        match &self.kind {
            ModelKind::Source(s) => format!("source `{}` ({})", s.name, s.declared_in.display()),
            ModelKind::Amplitude(_) => "Amplitude envelopes under amplitude/funnels/".to_string(),
            ModelKind::Sql { path, .. } => path.display().to_string(),
        }
    }
}

/// A SQL model with no SQL, for tests of the graph and the scheduler.
#[cfg(test)]
pub fn test_model(name: &str, layer: Layer, deps: &[&str]) -> Model {
    Model {
        name: name.into(),
        layer,
        kind: ModelKind::Sql {
            path: format!("{name}.sql").into(),
            sql: String::new(),
        },
        deps: deps.iter().map(|d| d.to_string()).collect(),
        tests: Vec::new(),
        incremental: None,
    }
}
