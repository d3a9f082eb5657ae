//! What a run reports: each model's outcome, the run's `run_results.json`,
//! the end-of-run table and exit outcome, and the durations kept across runs
//! to order the next run's models.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::{self, TestResult};
use crate::error::{Error, Result};
use crate::models::{Layer, Model};
use crate::storage::Root;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Success,
    Error,
    /// Not built because an upstream model did not succeed.
    Skipped,
    /// Not built because nothing it is built from changed since its last
    /// publish: its published version is current (`"skipped": "unchanged"`).
    #[serde(rename = "skipped")]
    Unchanged,
    /// A signal stopped the run before the model finished.
    Cancelled,
}

impl Status {
    /// Whether dependants may build on this model's published version.
    pub fn is_current(self) -> bool {
        matches!(self, Status::Success | Status::Unchanged)
    }
}

/// How a run built a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Build {
    /// From all of its inputs.
    Full,
    /// A source: only its new and changed input files were read; the rows
    /// of unchanged files were kept as they were. An incremental model:
    /// only the dates in `partitions` were recomputed, the others kept.
    Incremental,
}

/// A source's input files against its published version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FileChanges {
    pub new: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// One model's line in run_results.json.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    pub name: String,
    pub layer: Layer,
    pub status: Status,
    pub rows_written: u64,
    pub quarantined_rows: u64,
    /// Rows sharing a primary key with a later row; silver keeps one (docs/models.md §1.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates_dropped: Option<u64>,
    pub duration_seconds: f64,
    /// When the model started, in seconds after the run started (the
    /// timeline of `medallion docs`).
    pub started_seconds: f64,
    /// Why a skipped model was skipped: `unchanged` or `upstream failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
    /// How a built model was built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// A source's input files: new, changed, removed, unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileChanges>,
    /// An incremental model built incrementally: the dates it recomputed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Data tests run on the staged table before publishing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestResult>,
    #[serde(skip)]
    pub input_error: bool,
    /// The model failed only because an error-severity data test failed.
    #[serde(skip)]
    pub tests_failed: bool,
}

impl ModelResult {
    pub fn new(model: &Model, status: Status) -> Self {
        ModelResult {
            name: model.name.clone(),
            layer: model.layer,
            status,
            rows_written: 0,
            quarantined_rows: 0,
            duplicates_dropped: None,
            duration_seconds: 0.0,
            started_seconds: 0.0,
            skipped: None,
            build: None,
            files: None,
            partitions: None,
            error: None,
            tests: Vec::new(),
            input_error: false,
            tests_failed: false,
        }
    }
}

/// `_runs/<run_id>/run_results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunResults {
    pub run_id: String,
    pub status: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub as_of: String,
    pub arguments: Vec<String>,
    pub input: String,
    pub output: String,
    /// The signal that stopped the run (`SIGTERM`, `SIGINT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<&'static str>,
    pub models: Vec<ModelResult>,
}

impl RunResults {
    /// `Ok` when every model succeeded, else the error that sets the exit code.
    pub fn outcome(&self) -> Result<()> {
        if let Some(caught) = self.cancelled_by.and_then(super::cancel::Caught::from_name) {
            return Err(Error::Cancelled {
                signal: caught.name(),
                code: caught.exit_code(),
            });
        }
        let failed = self.models.iter().filter(|m| m.status == Status::Error);
        let (tests, other): (Vec<&ModelResult>, Vec<&ModelResult>) =
            failed.partition(|m| m.tests_failed);
        let names = |ms: &[&ModelResult]| {
            ms.iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !other.is_empty() {
            // A broken model outranks a failed test: fix that first.
            return Err(Error::ModelsFailed {
                failed: other.len() + tests.len(),
                total: self.models.len(),
                models: names(&other),
                input_caused: other.iter().all(|m| m.input_error),
            });
        }
        if !tests.is_empty() {
            let failed_tests = tests
                .iter()
                .flat_map(|m| m.tests.iter())
                .filter(|t| t.blocks())
                .count();
            return Err(Error::DataTests {
                failed: failed_tests,
                models: names(&tests),
            });
        }
        Ok(())
    }

    /// The end-of-run table: model, rows, quarantined, seconds, status.
    pub fn summary_table(&self) -> String {
        let width = self
            .models
            .iter()
            .map(|m| m.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!(
            "{:<width$}  {:>12}  {:>11}  {:>8}  status\n",
            "model", "rows", "quarantined", "seconds"
        );
        for m in &self.models {
            let warned = m.tests.iter().any(|t| t.status != audit::TestStatus::Pass);
            let status = match m.status {
                Status::Success if warned => "success (test warnings)".to_string(),
                Status::Success => match (m.build, m.files) {
                    (Some(Build::Incremental), Some(f)) => format!(
                        "success: {} new, {} changed, {} removed files",
                        f.new, f.changed, f.removed
                    ),
                    _ => "success".to_string(),
                },
                Status::Error if m.tests_failed => "TESTS FAILED".to_string(),
                Status::Error => "ERROR".to_string(),
                Status::Skipped => "skipped".to_string(),
                Status::Unchanged => "unchanged".to_string(),
                Status::Cancelled => "cancelled".to_string(),
            };
            out.push_str(&format!(
                "{:<width$}  {:>12}  {:>11}  {:>8.2}  {status}\n",
                m.name, m.rows_written, m.quarantined_rows, m.duration_seconds
            ));
        }
        out.push_str(&format!(
            "run {} ({}): {}\n",
            self.run_id, self.as_of, self.status
        ));
        out
    }
}

/// The durations of the previous run, as far as `_runs/latest.json` tells.
#[derive(Deserialize)]
struct PreviousRun {
    models: Vec<PreviousModel>,
}

#[derive(Deserialize)]
struct PreviousModel {
    name: String,
    status: String,
    duration_seconds: f64,
}

/// Where each model's last successful durations are kept, across runs: a
/// `--select` run's `latest.json` names only the models it built, and the
/// next full run would otherwise order all the others by guesswork.
const MODEL_SECONDS: &str = "_runs/model_seconds.json";

/// A model's last successful durations, by how it was built: a nightly run
/// recomputes a day of an incremental table in a fraction of its full
/// build, and ordering it by the full build's seconds starts the wrong
/// chains first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Durations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<f64>,
}

impl Durations {
    /// Only a full build's seconds are known.
    fn full(seconds: f64) -> Self {
        Durations {
            full: Some(seconds),
            incremental: None,
        }
    }

    /// What the next build is expected to take: an incremental one unless
    /// the run rebuilds everything (`--full-refresh`) or none was recorded.
    pub fn expected(&self, full_refresh: bool) -> Option<f64> {
        if full_refresh {
            self.full.or(self.incremental)
        } else {
            self.incremental.or(self.full)
        }
    }
}

/// One model's entry in [`MODEL_SECONDS`]: a number in files written
/// before builds were told apart (the full build's seconds).
#[derive(Deserialize)]
#[serde(untagged)]
enum Recorded {
    Seconds(f64),
    ByBuild(Durations),
}

impl From<Recorded> for Durations {
    fn from(recorded: Recorded) -> Self {
        match recorded {
            Recorded::Seconds(s) => Durations::full(s),
            Recorded::ByBuild(d) => d,
        }
    }
}

/// The last successful durations of each model: [`MODEL_SECONDS`], or for
/// an output written before it existed, `_runs/latest.json`. Empty when
/// neither can be read; the estimates of [`expected_costs`] then do.
///
/// [`expected_costs`]: super::schedule::expected_costs
pub async fn previous_durations(root: &Root) -> BTreeMap<String, Durations> {
    if let Ok(Some(bytes)) = root.read_file(MODEL_SECONDS).await
        && let Ok(recorded) = serde_json::from_slice::<BTreeMap<String, Recorded>>(&bytes)
    {
        return recorded
            .into_iter()
            .map(|(name, r)| (name, r.into()))
            .collect();
    }
    match root.read_file("_runs/latest.json").await {
        Ok(Some(bytes)) => serde_json::from_slice::<PreviousRun>(&bytes)
            .map(|run| {
                run.models
                    .into_iter()
                    .filter(|m| m.status == "success")
                    .map(|m| (m.name, Durations::full(m.duration_seconds)))
                    .collect()
            })
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    }
}

/// Record this run's successful durations over the previous ones, each
/// under the kind of build it was. Only scheduling reads them, so a
/// failure to write is logged, not fatal.
pub async fn record_durations(
    root: &Root,
    mut seconds: BTreeMap<String, Durations>,
    results: &[ModelResult],
) {
    for model in results.iter().filter(|m| m.status == Status::Success) {
        let entry = seconds.entry(model.name.clone()).or_default();
        match model.build {
            Some(Build::Incremental) => entry.incremental = Some(model.duration_seconds),
            _ => entry.full = Some(model.duration_seconds),
        }
    }
    let written = match serde_json::to_vec_pretty(&seconds) {
        Ok(body) => root.write_file(MODEL_SECONDS, body).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = written {
        tracing::warn!(file = MODEL_SECONDS, error = %e, "Model durations not recorded; the next run orders its models by estimates.");
    }
}

/// `skipped` of a model whose upstream did not succeed.
pub const UPSTREAM_FAILED: &str = "upstream failed";
/// `skipped` of a model whose inputs and code did not change.
pub const UNCHANGED: &str = "unchanged";

/// The models a `--retry` runs: those the previous run (`latest.json`)
/// left failed, cancelled, or skipped because of a failure. `None` when
/// there is no previous run to retry.
pub async fn unfinished_models(root: &Root) -> Result<Option<(String, Vec<String>)>> {
    #[derive(Deserialize)]
    struct Previous {
        run_id: String,
        models: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        name: String,
        status: String,
        #[serde(default)]
        skipped: Option<String>,
    }
    let Some(bytes) = root.read_file("_runs/latest.json").await? else {
        return Ok(None);
    };
    let previous: Previous = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Input(format!(
            "{}/_runs/latest.json cannot be read ({e}); run without --retry",
            root.display()
        ))
    })?;
    let names = previous
        .models
        .into_iter()
        .filter(|m| match m.status.as_str() {
            "error" | "cancelled" => true,
            "skipped" => m.skipped.as_deref() != Some(UNCHANGED),
            _ => false,
        })
        .map(|m| m.name)
        .collect();
    Ok(Some((previous.run_id, names)))
}

/// The result of a model not built because `upstream` did not succeed.
pub fn skipped(model: &Model, upstream: &str) -> ModelResult {
    ModelResult {
        error: Some(format!("skipped: upstream `{upstream}` did not succeed")),
        skipped: Some(UPSTREAM_FAILED),
        ..ModelResult::new(model, Status::Skipped)
    }
}

/// Keep the newest `keep` run folders under `_runs/` (run ids sort by
/// time); 0 keeps all. Housekeeping: a failure is logged, not fatal.
pub async fn prune_runs(root: &Root, keep: usize) {
    if keep == 0 {
        return;
    }
    let mut runs = match root.list_folders("_runs").await {
        Ok(runs) => runs,
        Err(e) => {
            tracing::warn!(error = %e, "Could not list _runs/ to remove old run folders.");
            return;
        }
    };
    runs.sort();
    let old = runs.len().saturating_sub(keep);
    for run in &runs[..old] {
        if let Err(e) = root.remove_folder(&format!("_runs/{run}")).await {
            tracing::warn!(run = %run, error = %e, "Could not remove an old run folder.");
        }
    }
    if old > 0 {
        tracing::debug!(removed = old, kept = keep, "Old run folders removed.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_by_kind_of_build_and_from_plain_numbers() {
        let text =
            r#"{"old": 12.5, "both": {"full": 40.0, "incremental": 2.0}, "whole": {"full": 3.0}}"#;
        let read: BTreeMap<String, Recorded> = serde_json::from_str(text).unwrap();
        let read: BTreeMap<String, Durations> =
            read.into_iter().map(|(n, r)| (n, r.into())).collect();
        let get = |name: &str| read[name];
        // A nightly run expects the day's recomputation, a full refresh the whole build.
        assert_eq!(get("both").expected(false), Some(2.0));
        assert_eq!(get("both").expected(true), Some(40.0));
        assert_eq!(get("old").expected(false), Some(12.5));
        assert_eq!(get("whole").expected(false), Some(3.0));
        let unknown = serde_json::from_str::<Recorded>(r#"{"fast": 1.0}"#);
        assert!(
            unknown.is_err(),
            "an unknown kind is not read as no durations"
        );
    }
}
