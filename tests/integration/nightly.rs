//! Nightly runs (docs/operations.md, "Nightly runs"), through the release
//! binary on `generate --daily` folders: after every step of random
//! sequences (new days, a re-sent file with changed rows, a deleted file, an
//! older as-of, an edited model, a changed variable, a run killed mid-way
//! then re-run) every table of every layer equals a full rebuild from the
//! same files into an empty root, compared by contents. Also: a run with
//! nothing new builds nothing and rewrites no file; unchanged input files
//! keep their parts; `--retry` runs only what the last run did not finish.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::support::*;

const LAYERS: [&str; 4] = ["bronze", "silver", "gold", "_quarantine"];
/// Days held back from the first run, added by the "new day" steps.
pub(crate) const HELD_BACK: usize = 3;

pub(crate) fn medallion(input: &Path, out: &Path, models: &Path, args: &[&str]) -> Output {
    let output = run_command(input, out, models, args).output().unwrap();
    assert!(
        output.status.success(),
        "medallion run {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub(crate) fn run_command(input: &Path, out: &Path, models: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medallion"));
    cmd.current_dir(project_root())
        .args(["run", "--quiet", "--max-bad-row-fraction", "0.3", "--input"])
        .arg(input)
        .arg("--output")
        .arg(out)
        .arg("--models")
        .arg(models)
        .args(args)
        .env_remove("MEDALLION_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Daily-drop data with dirty rows, the last `HELD_BACK` days of each
/// daily source moved to `held` (path under the input, bytes).
pub(crate) fn daily_data(seed: u64) -> (tempfile::TempDir, Vec<(PathBuf, Vec<u8>)>) {
    let data = tempfile::tempdir().unwrap();
    medallion::generate::generate(&medallion::generate::GenerateOptions {
        scale: 0.004,
        seed,
        out: data.path().to_path_buf(),
        dirty_rate: 0.01,
        end_date: as_of("2026-10-31"),
        daily: true,
    })
    .unwrap();
    let mut held = Vec::new();
    for source in [
        "orders",
        "order_items",
        "events",
        "usage_logs",
        "bt_users_transactions",
    ] {
        let dir = data.path().join(source);
        let mut days: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        days.sort();
        for path in days.iter().rev().take(HELD_BACK) {
            let relative = path.strip_prefix(data.path()).unwrap().to_path_buf();
            held.push((relative, std::fs::read(path).unwrap()));
            std::fs::remove_file(path).unwrap();
        }
    }
    held.sort();
    (data, held)
}

/// Every table of every layer as sorted text rows, without the columns
/// that name the run (`_ingested_at`, `_run_id`).
pub(crate) async fn contents(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut tables = BTreeMap::new();
    for layer in LAYERS {
        let Ok(entries) = std::fs::read_dir(out.join(layer)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(['_', '.']) {
                continue;
            }
            let ctx = datafusion::prelude::SessionContext::new();
            let dir = format!("{}/", out.join(layer).join(&name).display());
            ctx.register_parquet(&name, &dir, Default::default())
                .await
                .unwrap();
            let frame = ctx.table(name.as_str()).await.unwrap();
            let list = frame
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .filter(|c| !["_ingested_at", "_run_id"].contains(c))
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("select {list} from \"{name}\"");
            tables.insert(
                format!("{layer}/{name}"),
                table_rows(out, layer, &name, Some(&sql)).await,
            );
        }
    }
    tables
}

/// Build everything from `input` into an empty root and compare every table.
pub(crate) async fn assert_equals_full_rebuild(
    step: &str,
    input: &Path,
    out: &Path,
    models: &Path,
    args: &[&str],
) {
    let fresh = tempfile::tempdir().unwrap();
    medallion(input, fresh.path(), models, args);
    let (got, want) = (contents(out).await, contents(fresh.path()).await);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{step}: the same tables"
    );
    for (table, rows) in &want {
        assert!(
            &got[table] == rows,
            "{step}: {table} differs from a full rebuild ({} rows against {})",
            got[table].len(),
            rows.len()
        );
    }
}

pub(crate) fn latest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("_runs/latest.json")).unwrap()).unwrap()
}

pub(crate) fn model<'a>(results: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    results["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in run_results"))
}

#[derive(Debug, Clone, Copy)]
enum Step {
    NewDay,
    ResentFile,
    DeletedFile,
    OlderAsOf,
    EditedModel,
    ChangedVariable,
    KilledThenRerun,
}

/// A daily file of a fact source, chosen by `rng`.
fn some_daily_file(rng: &mut impl Rng, input: &Path) -> PathBuf {
    let source =
        ["orders", "events", "usage_logs", "bt_users_transactions"][rng.random_range(0..4)];
    let mut days: Vec<PathBuf> = std::fs::read_dir(input.join(source))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    days.sort();
    days[rng.random_range(0..days.len())].clone()
}

/// Whether any file is under `dir` (which a run may be changing meanwhile).
fn has_files(dir: &Path) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => return true,
                Err(_) => {}
            }
        }
    }
    false
}

/// Re-send `path` with the second field of its last row prefixed by
/// `digit` (a changed value); a file of a header and one row loses the row.
fn change_last_row(path: &Path, digit: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.pop().unwrap().to_string();
    let mut edited = lines.join("\n");
    if lines.len() > 1 {
        edited.push('\n');
        edited.push_str(&last.replacen(',', &format!(",{digit}"), 1));
    }
    edited.push('\n');
    std::fs::write(path, edited).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sequences_of_nightly_runs_equal_full_rebuilds() {
    for seed in [11, 12] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (data, mut held) = daily_data(seed);
        let models = models_copy();
        let out = tempfile::tempdir().unwrap();
        let (input, root) = (data.path(), out.path());
        let mut as_of_date = "2026-10-31";
        let mut vars: Vec<String> = Vec::new();
        let args = |as_of_date: &str, vars: &[String]| -> Vec<String> {
            let mut a = vec!["--as-of".to_string(), as_of_date.to_string()];
            for v in vars {
                a.extend(["--var".to_string(), v.clone()]);
            }
            a
        };
        let owned = args(as_of_date, &vars);
        let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
        medallion(input, root, models.path(), &borrowed);
        let mut steps = vec![
            Step::NewDay,
            Step::ResentFile,
            Step::DeletedFile,
            Step::OlderAsOf,
            Step::EditedModel,
            Step::ChangedVariable,
            Step::KilledThenRerun,
        ];
        steps.shuffle(&mut rng);
        for step in steps {
            let label = format!("seed {seed}, {step:?}");
            let mut killed = false;
            match step {
                Step::NewDay => {
                    // The next held-back day of every daily source.
                    let day = held
                        .iter()
                        .map(|(p, _)| p.file_name().unwrap().to_owned())
                        .min()
                        .unwrap();
                    let (now, later): (Vec<_>, Vec<_>) = held
                        .drain(..)
                        .partition(|(p, _)| p.file_name().unwrap() == day);
                    held = later;
                    for (path, bytes) in now {
                        std::fs::write(input.join(path), bytes).unwrap();
                    }
                }
                Step::ResentFile => change_last_row(&some_daily_file(&mut rng, input), "1"),
                Step::DeletedFile => {
                    let path = some_daily_file(&mut rng, input);
                    std::fs::remove_file(path).unwrap();
                }
                Step::OlderAsOf => as_of_date = "2026-10-20",
                Step::EditedModel => {
                    let sql = models.path().join("gold/gold_sales_daily.sql");
                    let text = std::fs::read_to_string(&sql).unwrap();
                    std::fs::write(&sql, format!("-- edited in a nightly test\n{text}")).unwrap();
                }
                Step::ChangedVariable => vars = vec!["clv_lifespan_years=5".to_string()],
                Step::KilledThenRerun => {
                    // A re-sent file makes the run do work; kill it once it staged some.
                    change_last_row(&some_daily_file(&mut rng, input), "2");
                    let owned = args(as_of_date, &vars);
                    let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
                    let mut child = run_command(input, root, models.path(), &borrowed)
                        .spawn()
                        .unwrap();
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !has_files(&root.join("_staging")) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    child.kill().unwrap();
                    child.wait().unwrap();
                    killed = true;
                }
            }
            let owned = args(as_of_date, &vars);
            let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
            medallion(input, root, models.path(), &borrowed);
            assert_equals_full_rebuild(&label, input, root, models.path(), &borrowed).await;
            let results = latest(root);
            match step {
                Step::NewDay | Step::ResentFile | Step::DeletedFile if !killed => {
                    // Only the sources whose files changed were read again.
                    assert_eq!(
                        model(&results, "bronze_customers")["skipped"],
                        "unchanged",
                        "{label}"
                    );
                }
                _ => {}
            }
        }
    }
}

#[test]
fn nothing_new_builds_nothing_and_unchanged_files_keep_their_parts() {
    let (data, held) = daily_data(21);
    let models = models_copy();
    let out = tempfile::tempdir().unwrap();
    let (input, root) = (data.path(), out.path());
    let args = ["--as-of", "2026-10-31"];
    medallion(input, root, models.path(), &args);
    let before = snapshot(root);
    let published = |files: &[(PathBuf, Vec<u8>)]| -> Vec<(PathBuf, Vec<u8>)> {
        files
            .iter()
            .filter(|(p, _)| LAYERS.iter().any(|l| p.starts_with(l)))
            .cloned()
            .collect()
    };

    // Nothing new: every model is skipped as unchanged, no table file changes.
    medallion(input, root, models.path(), &args);
    let results = latest(root);
    for m in results["models"].as_array().unwrap() {
        assert_eq!(m["status"], "skipped", "{}", m["name"]);
        assert_eq!(m["skipped"], "unchanged", "{}", m["name"]);
    }
    assert_eq!(
        published(&snapshot(root)),
        published(&before),
        "no table was rewritten"
    );
    let order_days = std::fs::read_dir(input.join("orders")).unwrap().count();
    assert_eq!(
        model(&results, "bronze_orders")["files"]["unchanged"],
        order_days
    );

    // One new day: only that file is read; the parts of the others are the same files.
    let part_inode = |dir: &Path| -> BTreeMap<String, u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().ino(),
                )
            })
            .collect()
    };
    let orders_before = part_inode(&root.join("bronze/bronze_orders"));
    for (path, bytes) in held.iter().filter(|(p, _)| p.starts_with("orders")).take(1) {
        std::fs::write(input.join(path), bytes).unwrap();
    }
    medallion(input, root, models.path(), &args);
    let results = latest(root);
    let orders = model(&results, "bronze_orders");
    assert_eq!(orders["build"], "incremental");
    assert_eq!(orders["files"]["new"], 1);
    assert_eq!(orders["files"]["unchanged"], order_days);
    let orders_after = part_inode(&root.join("bronze/bronze_orders"));
    assert_eq!(orders_after.len(), orders_before.len() + 1, "one part more");
    for (part, inode) in &orders_before {
        assert_eq!(orders_after.get(part), Some(inode), "{part} kept as it was");
    }
    assert_eq!(model(&results, "bronze_events")["skipped"], "unchanged");
    assert_eq!(model(&results, "silver_orders")["build"], "incremental");
    assert_eq!(model(&results, "silver_events")["skipped"], "unchanged");

    // --full-refresh reads every file and builds every model.
    medallion(
        input,
        root,
        models.path(),
        &["--as-of", "2026-10-31", "--full-refresh"],
    );
    let results = latest(root);
    for m in results["models"].as_array().unwrap() {
        assert_eq!(m["status"], "success", "{}", m["name"]);
        assert_eq!(m["build"], "full", "{}", m["name"]);
    }
}

#[test]
fn retry_runs_only_what_the_last_run_did_not_finish() {
    let (data, _) = daily_data(31);
    let models = models_copy();
    let out = tempfile::tempdir().unwrap();
    let (input, root) = (data.path(), out.path());
    let args = ["--as-of", "2026-10-31"];
    medallion(input, root, models.path(), &args);

    // A broken silver model: it fails, its dependants are skipped.
    let sql = models.path().join("silver/silver_orders.sql");
    let good = std::fs::read_to_string(&sql).unwrap();
    let broken = good.replace("select * from final", "select no_such_column from final");
    assert_ne!(broken, good);
    std::fs::write(&sql, broken).unwrap();
    let failed = run_command(input, root, models.path(), &args)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let results = latest(root);
    assert_eq!(model(&results, "silver_orders")["status"], "error");
    assert_eq!(
        model(&results, "gold_sales_daily")["skipped"],
        "upstream failed"
    );
    let unfinished: Vec<String> = results["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "error" || m["skipped"] == "upstream failed")
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();

    // Mended (with a change, so it is not the published version), --retry
    // runs exactly those models, and they build.
    std::fs::write(&sql, format!("-- mended\n{good}")).unwrap();
    medallion(
        input,
        root,
        models.path(),
        &["--as-of", "2026-10-31", "--retry"],
    );
    let retried: Vec<String> = latest(root)["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(retried, unfinished);
    for name in &retried {
        assert_eq!(model(&latest(root), name)["status"], "success", "{name}");
    }
    // Nothing left: a second retry runs nothing.
    medallion(
        input,
        root,
        models.path(),
        &["--as-of", "2026-10-31", "--retry"],
    );
    assert!(latest(root)["models"].as_array().unwrap().is_empty());
}
