//! The models of a project: every source declared in `sql/bronze/*.toml`,
//! the two Amplitude tables and every `sql/<layer>/<model>.sql` file, each with the tests of its sidecar
//! (`sidecar`), its dependencies (`sql`) and its place in the graph (`dag`).

pub mod dag;
pub mod macros;
pub mod model;
pub mod period;
pub mod sidecar;
pub mod sql;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ingest::amplitude::FunnelTable;
use crate::ingest::{Source, load_sources};
pub use crate::layer::Layer;
pub use dag::Dag;
pub use model::{Model, ModelKind};
pub use sql::sql_dependencies;

/// Load the models of `config.models` and build their graph (no data is
/// touched); the config's experiments are printed into the macros.
pub fn load_dag(config: &Config) -> Result<Dag> {
    Dag::build(discover(config)?)
}

/// Every model of a project: its declared sources, the Amplitude tables and
/// the SQL files under `config.models`.
pub fn discover(config: &Config) -> Result<Vec<Model>> {
    let models_dir = config.models.as_path();
    if !models_dir.is_dir() {
        return Err(Error::Config(format!(
            "models folder {} not found; run from the project root or set `models` in medallion.toml",
            models_dir.display()
        )));
    }
    let sources: Vec<Arc<Source>> = load_sources(models_dir)?
        .into_iter()
        .map(Arc::new)
        .collect();
    let context = macros::Context::new(config, &sources)?;
    let mut models: Vec<Model> = sources
        .iter()
        .map(|s| Model {
            name: s.bronze_table(),
            layer: Layer::Bronze,
            kind: ModelKind::Source(Arc::clone(s)),
            deps: Vec::new(),
            tests: Vec::new(),
            incremental: None,
        })
        .collect();
    models.extend(FunnelTable::ALL.into_iter().map(|t| Model {
        name: t.table_name().to_string(),
        layer: Layer::Bronze,
        kind: ModelKind::Amplitude(t),
        deps: Vec::new(),
        tests: Vec::new(),
        incremental: None,
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
            models.push(load_sql_model(&path, layer, &context)?);
        }
    }
    for model in &mut models {
        let spec = models_dir
            .join(model.layer.as_str())
            .join(format!("{}.toml", model.name));
        let (sidecar, tests) = sidecar::load_tests(&spec, models_dir)?;
        if let Some(mut incremental) = sidecar.incremental {
            incremental_allowed(model, &incremental, &spec)?;
            if let Some(days) = &incremental.lookahead_days {
                incremental.lookahead = days.resolve(&config.variables.as_map()).ok_or_else(|| {
                    Error::Input(format!(
                        "{}: `incremental.lookahead_days = {days:?}` is not a whole number of days or the name of a whole-number variable; write a number or a variable of medallion.toml's [variables]",
                        spec.display()
                    ))
                })?;
            }
            model.incremental = Some(incremental);
        }
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

/// Whether a model may declare `incremental` in its sidecar `spec`.
fn incremental_allowed(
    model: &Model,
    incremental: &sidecar::Incremental,
    spec: &Path,
) -> Result<()> {
    let ModelKind::Sql { sql, .. } = &model.kind else {
        return Err(Error::Input(format!(
            "{}: `incremental` is for SQL models; a source is already read file by file",
            spec.display()
        )));
    };
    if sql.to_ascii_lowercase().contains("as_of_date(") {
        return Err(Error::Input(format!(
            "{}: an incremental model must not call as_of_date(): the engine publishes only its dates up to the as-of date (and keeps the later ones for when the as-of date reaches them), so drop that filter from {}.sql",
            spec.display(),
            model.name
        )));
    }
    if let Some(table) = incremental.follows.keys().find(|t| !model.deps.contains(t)) {
        return Err(Error::Input(format!(
            "{}: `incremental.follows` names {table}, which {}.sql does not read; name one of its inputs",
            spec.display(),
            model.name
        )));
    }
    Ok(())
}

fn load_sql_model(path: &Path, layer: Layer, context: &macros::Context) -> Result<Model> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wrap = |source: Error| Error::Model {
        name: name.clone(),
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| wrap(Error::io("cannot read model", path, e)))?;
    let sql = macros::expand(&text, context).map_err(wrap)?;
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
        incremental: None,
    })
}
