//! Model discovery: every `sql/<layer>/<model>.sql` file and every CSV source.
//!
//! A model's dependencies are the tables its SQL reads, found with
//! DataFusion's own SQL parser, so the run order is derived from the SQL and
//! never listed by hand.

use std::fmt;
use std::path::{Path, PathBuf};

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::audit::{self, DataTest};
use crate::error::{Error, Result};
use crate::ingest::amplitude::FunnelTable;
use crate::ingest::{SOURCES, Source};

/// The medallion layers, in data-flow order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Bronze,
    Silver,
    Gold,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::Bronze, Layer::Silver, Layer::Gold];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Layer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Layer::ALL
            .into_iter()
            .find(|l| l.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown layer `{s}`: expected bronze, silver or gold"
                ))
            })
    }
}

/// How a model is built.
#[derive(Debug, Clone)]
pub enum ModelKind {
    /// A CSV source landed by the ingest step.
    Source(&'static Source),
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
}

impl Model {
    /// Where the model is defined, for messages.
    pub fn origin(&self) -> String {
        match &self.kind {
            ModelKind::Source(s) => format!("CSV source `{}`", s.name),
            ModelKind::Amplitude(_) => "Amplitude envelopes under amplitude/funnels/".to_string(),
            ModelKind::Sql { path, .. } => path.display().to_string(),
        }
    }
}

/// Every model of a project: CSV sources plus the SQL files under `models_dir`.
pub fn discover(models_dir: &Path) -> Result<Vec<Model>> {
    if !models_dir.is_dir() {
        return Err(Error::Config(format!(
            "models folder {} not found; run from the project root or set `models` in medallion.toml",
            models_dir.display()
        )));
    }
    let mut models: Vec<Model> = SOURCES
        .iter()
        .map(|s| Model {
            name: s.bronze_table(),
            layer: Layer::Bronze,
            kind: ModelKind::Source(s),
            deps: Vec::new(),
            tests: Vec::new(),
        })
        .collect();
    models.extend(FunnelTable::ALL.into_iter().map(|t| Model {
        name: t.table_name().to_string(),
        layer: Layer::Bronze,
        kind: ModelKind::Amplitude(t),
        deps: Vec::new(),
        tests: Vec::new(),
    }));
    for layer in Layer::ALL {
        let dir = models_dir.join(layer.as_str());
        if !dir.is_dir() {
            continue;
        }
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io("cannot list models", &dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        paths.sort();
        for path in paths {
            models.push(load_sql_model(&path, layer)?);
        }
    }
    for model in &mut models {
        let spec = models_dir
            .join(model.layer.as_str())
            .join(format!("{}.toml", model.name));
        let (_, tests) = audit::load_tests(&spec, models_dir)?;
        for test in &tests {
            model
                .deps
                .extend(test.extra_tables().into_iter().filter(|t| *t != model.name));
        }
        model.deps.sort();
        model.deps.dedup();
        model.tests = tests;
    }
    Ok(models)
}

fn load_sql_model(path: &Path, layer: Layer) -> Result<Model> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wrap = |source: Error| Error::Model {
        name: name.clone(),
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let sql =
        std::fs::read_to_string(path).map_err(|e| wrap(Error::io("cannot read model", path, e)))?;
    let deps = sql_dependencies(&sql).map_err(wrap)?;
    Ok(Model {
        name,
        layer,
        kind: ModelKind::Sql {
            path: path.to_path_buf(),
            sql,
        },
        deps,
        tests: Vec::new(),
    })
}

/// Tables read by one SQL query (CTE names excluded), lower-cased and sorted.
pub fn sql_dependencies(sql: &str) -> Result<Vec<String>> {
    let mut statements = DFParser::parse_sql(sql)?;
    if statements.len() != 1 {
        return Err(Error::Input(format!(
            "a model holds exactly one SELECT statement, found {}",
            statements.len()
        )));
    }
    let statement = statements
        .pop_front()
        .ok_or_else(|| Error::Input("empty model".into()))?;
    let is_query =
        matches!(&statement, Statement::Statement(s) if matches!(**s, SqlStatement::Query(_)));
    if !is_query {
        return Err(Error::Input(
            "a model must be a query (SELECT … or WITH … SELECT …), not DDL or DML".into(),
        ));
    }
    let (tables, _ctes) = resolve_table_references(&statement, true)?;
    let mut deps: Vec<String> = tables.iter().map(|t| t.table().to_string()).collect();
    deps.sort();
    deps.dedup();
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_from_the_sql_and_skip_ctes() {
        let sql = "with o as (select * from silver_orders), \
                   final as (select o.*, c.email from o join Silver_Customers c using (customer_id) \
                             where o.order_id in (select order_id from silver_order_items)) \
                   select * from final";
        assert_eq!(
            sql_dependencies(sql).unwrap(),
            vec!["silver_customers", "silver_order_items", "silver_orders"]
        );
    }

    #[test]
    fn only_one_query_is_a_model() {
        assert!(sql_dependencies("select 1; select 2").is_err());
        assert!(sql_dependencies("drop table x").is_err());
        assert!(sql_dependencies("selec 1").is_err());
    }
}
