//! The order models run in: dependencies first, at most `limit` at once,
//! and of the models ready to start the one heading the longest chain of
//! expected work first. A model whose upstream failed or was skipped is
//! skipped. Generic over the function that builds a model, so it is tested
//! with a fake builder.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::Path;

use super::results::{ModelResult, Status, skipped};
use crate::ingest;
use crate::models::{Dag, Model, ModelKind};
use crate::progress::RunProgress;

/// Assumed CSV ingestion speed for a source never built before, in bytes
/// per second: only the order of the estimates matters.
const ASSUMED_INGEST_BYTES_PER_SECOND: f64 = 100e6;

/// Run the selected models of `dag` through `build`, respecting
/// dependencies and `limit` (less the slots `borrowed` says a large file's
/// extra parsers hold); of the ready models, the one with the highest
/// `priority` starts first. When `stop` completes (a signal), no model
/// starts any more and running ones are aborted; they and the ones never
/// started are `cancelled`. Returns one result per selected model, in
/// dependency order.
#[allow(clippy::too_many_arguments)]
pub async fn execute<F, Fut, S>(
    dag: &Dag,
    selected: &BTreeSet<String>,
    priority: &HashMap<String, f64>,
    limit: usize,
    borrowed: impl Fn() -> usize,
    progress: &RunProgress,
    stop: S,
    build: F,
) -> Vec<ModelResult>
where
    F: Fn(Model) -> Fut,
    Fut: Future<Output = ModelResult> + Send + 'static,
    S: Future<Output = ()>,
{
    tokio::pin!(stop);
    let mut stopping = false;
    let mut pending: Vec<&Model> = dag
        .ordered()
        .filter(|m| selected.contains(&m.name))
        .collect();
    // A stable sort: equal priorities keep the dependency order.
    let rank = |m: &Model| priority.get(&m.name).copied().unwrap_or(0.0);
    pending.sort_by(|a, b| rank(b).total_cmp(&rank(a)));
    let mut status: HashMap<String, Status> = HashMap::new();
    let mut results: HashMap<String, ModelResult> = HashMap::new();
    // Which model each task builds, so a task that panics is still reported.
    let mut names: HashMap<tokio::task::Id, &Model> = HashMap::new();
    let mut running = tokio::task::JoinSet::new();
    let limit = limit.max(1);
    loop {
        let mut i = 0;
        // A borrowed slot comes back when its file is read, before its
        // model ends: the next model to end lets the loop fill it.
        while !stopping
            && i < pending.len()
            && (running.is_empty() || running.len() + borrowed() < limit)
        {
            let model = pending[i];
            let upstream: Vec<&String> = model
                .deps
                .iter()
                .filter(|d| selected.contains(*d))
                .collect();
            if let Some(bad) = upstream.iter().find(|d| {
                matches!(
                    status.get(**d),
                    Some(Status::Error | Status::Skipped | Status::Cancelled)
                )
            }) {
                tracing::warn!(model = %model.name, upstream = %bad, "Model skipped because an upstream model did not succeed.");
                status.insert(model.name.clone(), Status::Skipped);
                results.insert(model.name.clone(), skipped(model, bad));
                progress.model_finished(&model.name, 0, false);
                pending.remove(i);
                continue;
            }
            if upstream
                .iter()
                .all(|d| status.get(*d).is_some_and(|s| s.is_current()))
            {
                progress.model_started(&model.name);
                let handle = running.spawn(build(model.clone()));
                names.insert(handle.id(), model);
                pending.remove(i);
                continue;
            }
            i += 1;
        }
        let next = if stopping {
            running.join_next_with_id().await
        } else {
            let stopped = tokio::select! {
                biased;
                () = &mut stop => None,
                next = running.join_next_with_id() => Some(next),
            };
            match stopped {
                Some(next) => next,
                None => {
                    tracing::warn!(
                        running = running.len(),
                        waiting = pending.len(),
                        "Aborting the running models."
                    );
                    stopping = true;
                    running.abort_all();
                    continue;
                }
            }
        };
        match next {
            Some(Err(join_error)) if join_error.is_cancelled() => {
                if let Some(model) = names.get(&join_error.id()).copied() {
                    progress.model_finished(&model.name, 0, false);
                    status.insert(model.name.clone(), Status::Cancelled);
                    results.insert(
                        model.name.clone(),
                        cancelled(model, "aborted while running"),
                    );
                }
            }
            Some(Ok((_, result))) => {
                progress.model_finished(
                    &result.name,
                    result.rows_written,
                    result.status == Status::Unchanged,
                );
                status.insert(result.name.clone(), result.status);
                results.insert(result.name.clone(), result);
            }
            Some(Err(join_error)) => {
                // A panicking build is a bug: the model fails, its dependants are skipped.
                let Some(model) = names.get(&join_error.id()).copied() else {
                    tracing::error!(error = %join_error, "A model task failed unexpectedly.");
                    continue;
                };
                tracing::error!(model = %model.name, error = %join_error, "A model task failed unexpectedly.");
                progress.model_finished(&model.name, 0, false);
                let mut result = ModelResult::new(model, Status::Error);
                result.error = Some(format!(
                    "internal error: the model's task failed: {join_error}"
                ));
                status.insert(model.name.clone(), Status::Error);
                results.insert(model.name.clone(), result);
            }
            None if pending.is_empty() => break,
            None if stopping => {
                for model in pending.drain(..) {
                    results.insert(model.name.clone(), cancelled(model, "not started"));
                }
                break;
            }
            None => {
                // Nothing runs and nothing is ready: only possible if a task vanished.
                for model in pending.drain(..) {
                    results.insert(
                        model.name.clone(),
                        skipped(model, "an upstream task that did not report"),
                    );
                }
                break;
            }
        }
    }
    dag.ordered()
        .filter_map(|m| results.remove(&m.name))
        .collect()
}

/// The result of a model a signal stopped.
fn cancelled(model: &Model, when: &str) -> ModelResult {
    let mut result = ModelResult::new(model, Status::Cancelled);
    result.error = Some(format!(
        "cancelled: the run was stopped by a signal ({when}); its previous version stays published"
    ));
    result
}

/// Expected seconds per model, used only to order the ready models: its
/// last successful duration (`previous`); otherwise its CSV input's size at
/// an assumed speed for a source, and for any other model the largest of
/// its upstream models' estimates: a model scans its inputs about once and
/// its largest input dominates. (Their sum ranked a small model that joins
/// many tables above the long chain on the largest source, and a first run
/// at scale 10 started that chain 13 s late.)
pub fn expected_costs(
    previous: &BTreeMap<String, f64>,
    dag: &Dag,
    input: &Path,
) -> HashMap<String, f64> {
    let mut costs = HashMap::new();
    for model in dag.ordered() {
        let cost = match (previous.get(&model.name), &model.kind) {
            (Some(seconds), _) => *seconds,
            (None, ModelKind::Source(source)) => {
                let bytes: u64 = ingest::discover(input, source)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|f| std::fs::metadata(&f.path).ok())
                    .map(|m| m.len())
                    .sum();
                bytes as f64 / ASSUMED_INGEST_BYTES_PER_SECOND
            }
            (None, _) => model
                .deps
                .iter()
                .filter_map(|d| costs.get(d).copied())
                .fold(0.0, f64::max),
        };
        costs.insert(model.name.clone(), cost);
    }
    costs
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::models::Layer;
    use crate::models::model::test_model as model;

    /// bronze_a → silver_a → gold_ab ← silver_b ← bronze_b, and gold_c ← silver_a.
    fn dag() -> Dag {
        Dag::build(vec![
            model("bronze_a", Layer::Bronze, &[]),
            model("bronze_b", Layer::Bronze, &[]),
            model("silver_a", Layer::Silver, &["bronze_a"]),
            model("silver_b", Layer::Silver, &["bronze_b"]),
            model("gold_ab", Layer::Gold, &["silver_a", "silver_b"]),
            model("gold_c", Layer::Gold, &["silver_a"]),
        ])
        .unwrap()
    }

    /// What the fake builder saw: start order, and the most models in flight at once.
    #[derive(Default)]
    struct Log {
        started: Vec<String>,
        running: usize,
        most_running: usize,
    }

    /// Run the whole DAG with a fake builder that fails the models in `fail`.
    async fn run_fake(
        limit: usize,
        priority: &[(&str, f64)],
        fail: &'static [&'static str],
    ) -> (Vec<ModelResult>, Log) {
        run_fake_borrowed(limit, 0, priority, fail).await
    }

    /// [`run_fake`] while extra parsers hold `borrowed` slots throughout.
    async fn run_fake_borrowed(
        limit: usize,
        borrowed: usize,
        priority: &[(&str, f64)],
        fail: &'static [&'static str],
    ) -> (Vec<ModelResult>, Log) {
        let dag = dag();
        let selected: BTreeSet<String> = dag.ordered().map(|m| m.name.clone()).collect();
        let priority: HashMap<String, f64> =
            priority.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        let log = Arc::new(Mutex::new(Log::default()));
        let progress = RunProgress::start(selected.len());
        let never = std::future::pending::<()>();
        let borrowed = move || borrowed;
        let results = execute(
            &dag,
            &selected,
            &priority,
            limit,
            borrowed,
            &progress,
            never,
            |m| {
                let log = Arc::clone(&log);
                async move {
                    {
                        let mut l = log.lock().unwrap();
                        l.started.push(m.name.clone());
                        l.running += 1;
                        l.most_running = l.most_running.max(l.running);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    log.lock().unwrap().running -= 1;
                    let status = if fail.contains(&m.name.as_str()) {
                        Status::Error
                    } else {
                        Status::Success
                    };
                    ModelResult::new(&m, status)
                }
            },
        )
        .await;
        let log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();
        (results, log)
    }

    fn status_of<'a>(results: &'a [ModelResult], name: &str) -> &'a ModelResult {
        results.iter().find(|r| r.name == name).unwrap()
    }

    #[test]
    fn a_model_never_built_is_expected_to_cost_its_largest_input() {
        let previous = BTreeMap::from([
            ("bronze_a".to_string(), 10.0),
            ("bronze_b".to_string(), 3.0),
        ]);
        let costs = expected_costs(&previous, &dag(), Path::new("unused"));
        assert_eq!(costs["silver_b"], 3.0);
        // Not 13: joining a small table to a large one costs about the large one.
        assert_eq!(costs["gold_ab"], 10.0);
        let ranks = dag().critical_paths(|m| costs[&m.name]);
        assert!(ranks["bronze_a"] > ranks["bronze_b"], "{ranks:?}");
    }

    #[tokio::test]
    async fn the_ready_model_with_the_highest_priority_starts_first() {
        let (_, log) = run_fake(1, &[("bronze_b", 10.0), ("bronze_a", 1.0)], &[]).await;
        assert_eq!(log.started[0], "bronze_b");
        let (_, log) = run_fake(1, &[("bronze_a", 10.0), ("bronze_b", 1.0)], &[]).await;
        assert_eq!(log.started[0], "bronze_a");
        // Dependencies always come first, whatever the priority.
        let (_, log) = run_fake(1, &[("gold_c", 100.0)], &[]).await;
        let pos = |n: &str| log.started.iter().position(|s| s == n).unwrap();
        assert!(pos("bronze_a") < pos("silver_a") && pos("silver_a") < pos("gold_c"));
    }

    #[tokio::test]
    async fn no_model_starts_into_a_slot_a_parser_borrowed() {
        let (results, log) = run_fake_borrowed(3, 1, &[], &[]).await;
        assert_eq!(results.len(), 6);
        assert_eq!(log.most_running, 2);
        // With every slot borrowed, models still run, one at a time.
        let (results, log) = run_fake_borrowed(2, 2, &[], &[]).await;
        assert_eq!(results.len(), 6);
        assert_eq!(log.most_running, 1);
    }

    #[tokio::test]
    async fn no_more_than_the_limit_run_at_once() {
        for limit in [1, 2, 3] {
            let (results, log) = run_fake(limit, &[], &[]).await;
            assert_eq!(results.len(), 6);
            assert_eq!(log.started.len(), 6);
            assert!(
                log.most_running <= limit,
                "limit {limit}: {}",
                log.most_running
            );
        }
        // Two independent chains do run side by side when allowed.
        let (_, log) = run_fake(2, &[], &[]).await;
        assert_eq!(log.most_running, 2);
    }

    #[tokio::test]
    async fn a_failure_skips_every_model_downstream_and_nothing_else() {
        let (results, log) = run_fake(2, &[], &["silver_a"]).await;
        assert_eq!(status_of(&results, "silver_a").status, Status::Error);
        for downstream in ["gold_ab", "gold_c"] {
            let r = status_of(&results, downstream);
            assert_eq!(r.status, Status::Skipped, "{downstream}");
            assert!(r.error.as_deref().unwrap_or("").contains("silver_a"));
            assert!(!log.started.iter().any(|s| s == downstream));
        }
        for fine in ["bronze_a", "bronze_b", "silver_b"] {
            assert_eq!(status_of(&results, fine).status, Status::Success, "{fine}");
        }
        // Results come back in dependency order.
        let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
        let order: Vec<String> = dag().ordered().map(|m| m.name.clone()).collect();
        assert_eq!(names, order.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_build_is_an_error_and_skips_its_dependants() {
        let dag = dag();
        let selected: BTreeSet<String> = dag.ordered().map(|m| m.name.clone()).collect();
        let progress = RunProgress::start(selected.len());
        let results = execute(
            &dag,
            &selected,
            &HashMap::new(),
            2,
            || 0,
            &progress,
            std::future::pending(),
            |m| async move {
                if m.name == "bronze_b" {
                    panic!("a bug in a builder");
                }
                ModelResult::new(&m, Status::Success)
            },
        )
        .await;
        assert_eq!(status_of(&results, "bronze_b").status, Status::Error);
        assert_eq!(status_of(&results, "silver_b").status, Status::Skipped);
        assert_eq!(status_of(&results, "gold_ab").status, Status::Skipped);
        assert_eq!(status_of(&results, "gold_c").status, Status::Success);
    }

    #[tokio::test]
    async fn a_stop_aborts_running_models_and_starts_no_more() {
        let dag = dag();
        let selected: BTreeSet<String> = dag.ordered().map(|m| m.name.clone()).collect();
        let progress = RunProgress::start(selected.len());
        let stop = tokio::time::sleep(Duration::from_millis(150));
        let results = execute(
            &dag,
            &selected,
            &HashMap::new(),
            1,
            || 0,
            &progress,
            stop,
            |m| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                ModelResult::new(&m, Status::Success)
            },
        )
        .await;
        assert_eq!(results.len(), 6, "every model is reported");
        let count = |s: Status| results.iter().filter(|r| r.status == s).count();
        assert_eq!(count(Status::Success), 1, "one finished before the stop");
        assert_eq!(count(Status::Cancelled), 5);
        let said = |r: &ModelResult, what: &str| r.error.as_deref().unwrap_or("").contains(what);
        assert_eq!(
            results
                .iter()
                .filter(|r| said(r, "aborted while running"))
                .count(),
            1
        );
        assert_eq!(results.iter().filter(|r| said(r, "not started")).count(), 4);
    }
}
