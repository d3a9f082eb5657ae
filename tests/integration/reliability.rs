//! Reliability: bad input of every kind, run through the release binary as
//! a scheduler runs it, against an output root that already holds a good
//! run. Each case asserts the documented exit code, a message naming the
//! file, line, key or path, no panic, and what is published afterwards:
//! byte for byte unchanged when the input is refused, the bad row in the
//! quarantine with its reason when it is quarantined. Signals and locks
//! mid-run are here too (docs/operations.md, "When things go wrong").

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::*;

const AS_OF: &str = "2026-10-31";

/// A good run of the shop fixture, made once; every case starts from a copy.
fn baseline() -> &'static Path {
    static BASELINE: OnceLock<tempfile::TempDir> = OnceLock::new();
    BASELINE
        .get_or_init(|| {
            let out = tempfile::tempdir().unwrap();
            let cwd = tempfile::tempdir().unwrap();
            let o = medallion(cwd.path(), &fixture("shop"), out.path(), &[]);
            assert_eq!(o.status.code(), Some(0), "baseline run: {}", stderr(&o));
            out
        })
        .path()
}

/// A fresh case: a copy of the fixture input, a copy of the baseline output
/// and an empty working folder (for a `medallion.toml`).
struct Case {
    input: tempfile::TempDir,
    out: tempfile::TempDir,
    cwd: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let case = Case {
            input: tempfile::tempdir().unwrap(),
            out: tempfile::tempdir().unwrap(),
            cwd: tempfile::tempdir().unwrap(),
        };
        copy_tree(&fixture("shop"), case.input.path());
        copy_tree(baseline(), case.out.path());
        case
    }

    fn file(&self, name: &str) -> PathBuf {
        self.input.path().join(name)
    }

    /// Append one CSV line to an input file.
    fn append(&self, name: &str, line: &str) {
        let path = self.file(name);
        let mut text = std::fs::read(&path).unwrap();
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        std::fs::write(path, text).unwrap();
    }

    /// A command other than `run` (`query`, `test`) on this case's output root.
    fn command(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_medallion"))
            .current_dir(self.cwd.path())
            .args(args)
            .arg("--output")
            .arg(self.out.path())
            .arg("--models")
            .arg(project_root().join("sql"))
            .output()
            .unwrap()
    }

    fn run(&self, extra: &[&str]) -> Output {
        medallion(self.cwd.path(), self.input.path(), self.out.path(), extra)
    }
}

/// `medallion run` on `input` into `out`, from `cwd`, with the fixture's
/// bad-row allowance (it holds a malformed row of each kind on purpose).
fn medallion(cwd: &Path, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medallion"));
    cmd.current_dir(cwd).args(["--quiet", "run"]);
    if !extra.contains(&"--models") {
        cmd.arg("--models").arg(project_root().join("sql"));
    }
    cmd.arg("--input").arg(input).arg("--output").arg(out);
    if !extra.contains(&"--max-bad-row-fraction") {
        cmd.args(["--max-bad-row-fraction", "0.3"]);
    }
    if !extra.contains(&"--as-of") {
        cmd.args(["--as-of", AS_OF]);
    }
    cmd.args(extra)
        .env_remove("MEDALLION_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file of the published bronze, silver and gold tables (the
/// quarantine is republished by a failing source: it says why).
fn published(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    snapshot(out)
        .into_iter()
        .filter(|(p, _)| {
            ["bronze", "silver", "gold"]
                .iter()
                .any(|l| p.starts_with(l))
        })
        .collect()
}

/// The exit code and message of a refused input, and no panic.
fn assert_refused(what: &str, o: &Output, code: i32, says: &[&str]) {
    let text = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{what}: {text}");
    assert!(!text.contains("panicked"), "{what}: {text}");
    for word in says {
        assert!(text.contains(word), "{what}: `{word}` missing from: {text}");
    }
}

/// Flags a scheduler template can get wrong: exit 2 before anything is
/// touched, `_runs/latest.json` included.
#[test]
fn bad_flags_are_usage_errors_that_touch_nothing() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("empty selection", &["--select", ""], &["names no model"]),
        (
            "unknown model",
            &["--select", "gold_nothing"],
            &["gold_nothing"],
        ),
        ("NaN variable", &["--var", "alpha=NaN"], &["alpha"]),
        ("infinite variable", &["--var", "alpha=inf"], &["alpha"]),
        (
            "unknown variable",
            &["--var", "no_such_variable=1"],
            &["no_such_variable"],
        ),
        (
            "variable without a value",
            &["--var", "alpha"],
            &["name=value"],
        ),
        (
            "bad-row fraction over 1",
            &["--max-bad-row-fraction", "2"],
            &["max_bad_row_fraction"],
        ),
        (
            "no concurrency",
            &["--max-concurrent-models", "0"],
            &["max_concurrent_models"],
        ),
        (
            "negative shrink fraction",
            &["--max-shrink-fraction=-0.5"],
            &["max_shrink_fraction"],
        ),
        (
            "cluster without scheduler",
            &["--engine", "ballista"],
            &["scheduler"],
        ),
        (
            "impossible date",
            &["--as-of", "2026-13-45"],
            &["2026-13-45"],
        ),
        ("unknown flag", &["--frobnicate"], &["--frobnicate"]),
        ("unknown layer", &["--layer", "platinum"], &["platinum"]),
        (
            "missing config file",
            &["--config", "nope.toml"],
            &["nope.toml"],
        ),
    ];
    let case = Case::new();
    let before = snapshot(case.out.path());
    for (what, args, says) in cases {
        let o = case.run(args);
        assert_refused(what, &o, 2, says);
        assert!(
            snapshot(case.out.path()) == before,
            "{what}: the output changed"
        );
    }
    let missing = Path::new("/nonexistent/medallion-in");
    let o = medallion(case.cwd.path(), missing, case.out.path(), &[]);
    assert_refused(
        "missing input folder",
        &o,
        2,
        &["/nonexistent/medallion-in", "not found"],
    );
    assert!(
        snapshot(case.out.path()) == before,
        "missing input: the output changed"
    );
}

/// Config files with a wrong key, value or type: exit 2 naming the key.
#[test]
fn bad_config_files_name_the_key_and_touch_nothing() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("unknown key", "max_bad_rows = 0.1\n", &["max_bad_rows"]),
        (
            "infinite variable",
            "[variables]\nalpha = inf\n",
            &["alpha"],
        ),
        (
            "NaN variable",
            "[variables]\nclv_lifespan_years = nan\n",
            &["clv_lifespan_years"],
        ),
        (
            "unknown variable",
            "[variables]\nno_such = 1\n",
            &["no_such"],
        ),
        (
            "inverted ranks",
            "[variables]\nbest_seller_rank = 0.9\ngood_rank = 0.1\n",
            &["best_seller_rank"],
        ),
        (
            "zstd level out of range",
            "zstd_level = 99\n",
            &["zstd_level"],
        ),
        ("wrong type", "batch_rows = \"many\"\n", &["batch_rows"]),
        (
            "syntax error",
            "max_bad_row_fraction = = 0.1\n",
            &["medallion.toml"],
        ),
        (
            "missing spill folder",
            "spill_dir = \"/nonexistent/medallion-spill\"\n",
            &["spill_dir", "/nonexistent/medallion-spill"],
        ),
        ("zero pages", "[amplitude]\nmax_pages = 0\n", &["max_pages"]),
        (
            "variant listed twice",
            "[[amplitude.experiments]]\nid = \"x\"\nstart = \"2026-10-01\"\nend = \"2026-10-02\"\n\
             events = [\"a\"]\nvariants = [\"c\", \"c\"]\n",
            &["`c`", "twice"],
        ),
        ("unknown engine", "engine = \"spark\"\n", &["spark"]),
    ];
    let case = Case::new();
    let before = snapshot(case.out.path());
    for (what, toml, says) in cases {
        std::fs::write(case.cwd.path().join("medallion.toml"), toml).unwrap();
        let o = case.run(&[]);
        assert_refused(what, &o, 2, says);
        assert!(
            snapshot(case.out.path()) == before,
            "{what}: the output changed"
        );
    }
}

/// Paths that cannot work are refused before the lock is taken.
#[test]
fn an_output_that_is_a_file_or_overlaps_the_input_is_refused() {
    let case = Case::new();
    let file = case.cwd.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let o = medallion(case.cwd.path(), case.input.path(), &file, &[]);
    assert_refused("output is a file", &o, 2, &["is a file"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    // Input inside the output: the run would clear and read its own folders.
    let inbox = case.out.path().join("inbox");
    copy_tree(case.input.path(), &inbox);
    let before = snapshot(case.out.path());
    let o = medallion(case.cwd.path(), &inbox, case.out.path(), &[]);
    assert_refused("input inside output", &o, 2, &["overlap"]);
    assert!(snapshot(case.out.path()) == before);
    // And the output inside the input.
    let nested = case.input.path().join("out");
    let o = medallion(case.cwd.path(), case.input.path(), &nested, &[]);
    assert_refused("output inside input", &o, 2, &["overlap"]);
    assert!(!nested.exists());
}

/// A source file that cannot be used fails that source (exit 2, naming the
/// file) and leaves it and everything built on it as published.
#[test]
fn an_unusable_source_file_fails_and_keeps_the_published_tables() {
    type Mutate = fn(&Case);
    let cases: &[(&str, Mutate, &[&str])] = &[
        (
            "empty file",
            |c| std::fs::write(c.file("orders.csv"), "").unwrap(),
            &["orders.csv", "empty"],
        ),
        (
            "required column missing from the header",
            |c| {
                std::fs::write(
                    c.file("orders.csv"),
                    "order_id,customer_id,status\n1,1,delivered\n",
                )
                .unwrap()
            },
            &["orders.csv", "order_date"],
        ),
        (
            "header only (a truncated export)",
            |c| {
                std::fs::write(
                    c.file("orders.csv"),
                    "order_id,customer_id,order_date,status,payment_method,shipping_cost,delivered_at\n",
                )
                .unwrap()
            },
            &["bronze_orders", "0 rows against", "--allow-shrink"],
        ),
        (
            "every row bad",
            |c| {
                let text = std::fs::read_to_string(c.file("orders.csv")).unwrap();
                let bad = text
                    .replace("delivered", "teleported")
                    .replace("shipped", "teleported")
                    .replace("cancelled", "teleported")
                    .replace("pending", "teleported")
                    .replace("processing", "teleported")
                    .replace("returned", "teleported");
                std::fs::write(c.file("orders.csv"), bad).unwrap();
            },
            &["orders", "max_bad_row_fraction"],
        ),
        (
            "not UTF-8 in the header",
            |c| {
                std::fs::write(c.file("orders.csv"), b"order_id,cust\xff\xfeomer_id\n1,2\n")
                    .unwrap()
            },
            &["orders.csv"],
        ),
        (
            "a binary file named .csv",
            |c| {
                std::fs::write(c.file("orders.csv"), [0u8, 159, 146, 150, 0, 1, 2, 3, 0, 0])
                    .unwrap()
            },
            &["orders.csv"],
        ),
        (
            "a quote that never closes",
            |c| {
                let text = std::fs::read_to_string(c.file("orders.csv")).unwrap();
                let mut lines: Vec<&str> = text.lines().collect();
                let damaged = format!("\"{}", lines[4]);
                lines[4] = &damaged;
                std::fs::write(c.file("orders.csv"), lines.join("\n")).unwrap();
            },
            &["orders.csv", "line 5", "quote"],
        ),
        (
            "no input for a source",
            |c| std::fs::remove_file(c.file("orders.csv")).unwrap(),
            &["orders", "no input found"],
        ),
    ];
    for (what, mutate, says) in cases {
        let case = Case::new();
        mutate(&case);
        let before = published(case.out.path());
        let o = case.run(&["--select", "bronze_orders+"]);
        assert_refused(what, &o, 2, says);
        assert!(
            published(case.out.path()) == before,
            "{what}: a published table changed"
        );
        let latest = std::fs::read_to_string(case.out.path().join("_runs/latest.json")).unwrap();
        assert!(latest.contains("\"status\": \"error\""), "{what}: {latest}");
    }
}

/// A bad value quarantines its row (with the reason) and the run goes on.
#[tokio::test]
async fn a_bad_value_is_quarantined_with_its_reason() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (what, file, appended line, reason words)
        (
            "barcode as quantity",
            "order_items.csv",
            "900,1,101,4006381333931,10.00,0.10",
            "above the maximum 1000000",
        ),
        (
            "price beyond any sale",
            "order_items.csv",
            "901,1,101,1,99999999999.99,",
            "above the maximum 1000000000",
        ),
        (
            "quantity not a number",
            "order_items.csv",
            "902,1,101,many,10.00,",
            "quantity",
        ),
        (
            "zero quantity",
            "order_items.csv",
            "903,1,101,0,10.00,",
            "below the minimum 1",
        ),
        (
            "discount over 1",
            "order_items.csv",
            "904,1,101,1,10.00,1.5",
            "outside 0..1",
        ),
        (
            "negative price",
            "products.csv",
            "900,Thing,1,Acme,-5.00,1.00,1,2024-01-01,true",
            "below the minimum 0",
        ),
        (
            "unknown status",
            "orders.csv",
            "900,1,2026-10-01 10:00:00,teleported,card,1.00,",
            "not one of",
        ),
        (
            "date that is not one",
            "orders.csv",
            "901,1,yesterday,delivered,card,1.00,",
            "order_date",
        ),
        (
            "shipping beyond any price",
            "orders.csv",
            "902,1,2026-10-01 10:00:00,delivered,card,5000000000000,",
            "above the maximum",
        ),
        (
            "too many fields",
            "orders.csv",
            "903,1,2026-10-01 10:00:00,delivered,card,1.00,,extra",
            "fields",
        ),
        (
            "empty required value",
            "orders.csv",
            "904,,2026-10-01 10:00:00,delivered,card,1.00,",
            "customer_id",
        ),
        (
            "key not a number",
            "orders.csv",
            "nine-oh-five,1,2026-10-01 10:00:00,delivered,card,1.00,",
            "order_id",
        ),
        (
            "rating out of range",
            "reviews.csv",
            "900,101,1,6,2026-10-01,ok",
            "outside 1..5",
        ),
    ];
    for (what, file, line, reason) in cases {
        let case = Case::new();
        case.append(file, line);
        // Products holds three bad rows of eleven already.
        let o = case.run(&["--max-bad-row-fraction", "0.5"]);
        assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
        let source = file.trim_end_matches(".csv");
        let reasons = table_rows(
            case.out.path(),
            "_quarantine",
            source,
            Some(&format!(
                "select reason from {source} where raw_values like '9%' or raw_values like 'nine%'"
            )),
        )
        .await;
        assert!(
            reasons.iter().any(|r| r.contains(reason)),
            "{what}: no quarantined row says `{reason}`: {reasons:?}"
        );
    }
}

/// Lines ended by CR alone (old Excel exports) are read line by line: the
/// gold tables equal the baseline's.
#[tokio::test]
async fn cr_only_line_ends_give_the_same_gold_tables() {
    let case = Case::new();
    let text = std::fs::read(case.file("orders.csv")).unwrap();
    let cr: Vec<u8> = text
        .iter()
        .map(|b| if *b == b'\n' { b'\r' } else { *b })
        .collect();
    std::fs::write(case.file("orders.csv"), cr).unwrap();
    let o = case.run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        gold_contents(case.out.path()).await,
        gold_contents(baseline()).await
    );
}

/// Only the newest `keep_runs` run folders stay.
#[test]
fn old_run_folders_are_pruned_to_keep_runs() {
    let case = Case::new();
    for _ in 0..3 {
        let o = case.run(&["--select", "bronze_reviews", "--keep-runs", "2"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let runs: Vec<_> = std::fs::read_dir(case.out.path().join("_runs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
}

/// A lock planted by a run that is gone: its lease expired on another
/// host, or its pid no longer runs here. Both are taken over.
#[test]
fn a_stale_lock_is_taken_over_and_a_live_one_is_not() {
    let case = Case::new();
    let lock = case.out.path().join("_lock");
    let plant = |holder: serde_json::Value| {
        std::fs::create_dir_all(&lock).unwrap();
        std::fs::write(lock.join("00000000000000000009"), holder.to_string()).unwrap();
    };
    let ago = |minutes: i64| (chrono::Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339();
    let host = medallion::storage::host_name();
    // Another host, not refreshed for 20 minutes (lock_timeout_seconds 600).
    plant(
        serde_json::json!({"run_id": "gone-pod", "pid": 1, "host": "pod-7", "started_at": ago(60), "refreshed_at": ago(20)}),
    );
    let o = case.run(&["--select", "bronze_reviews"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!lock.exists(), "released after the run");
    // This host, a pid that does not exist.
    plant(
        serde_json::json!({"run_id": "dead", "pid": 0x3fff_fff0u32, "host": host, "started_at": ago(1), "refreshed_at": ago(0)}),
    );
    let o = case.run(&["--select", "bronze_reviews"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Another host, refreshed a minute ago: alive, so exit 4 naming it.
    plant(
        serde_json::json!({"run_id": "live-pod", "pid": 1, "host": "pod-8", "started_at": ago(5), "refreshed_at": ago(1)}),
    );
    let o = case.run(&["--select", "bronze_reviews"]);
    assert_refused("live lease", &o, 4, &["live-pod", "pod-8"]);
}

/// SIGTERM and SIGINT mid-run: the run stops, leaves no lock and no
/// staging, records `cancelled`, exits 143 / 130; the next run succeeds.
#[test]
fn a_signal_mid_run_cancels_cleanly_and_the_next_run_succeeds() {
    let data = generated(0.05, 11, 0.0);
    for (signal, code, name) in [
        (libc::SIGTERM, 143, "SIGTERM"),
        (libc::SIGINT, 130, "SIGINT"),
    ] {
        let out = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_medallion"))
            .current_dir(cwd.path())
            .args([
                "--quiet",
                "run",
                "--as-of",
                AS_OF,
                "--max-concurrent-models",
                "1",
                "--models",
            ])
            .arg(project_root().join("sql"))
            .arg("--input")
            .arg(data.path())
            .arg("--output")
            .arg(out.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the run holds its lock and has staged something.
        let started = Instant::now();
        while !out.path().join("_staging").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the run never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: signalling our own child process.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let o = child.wait_with_output().unwrap();
        assert_refused(name, &o, code, &["cancelled", name]);
        assert!(
            !out.path().join("_lock").exists(),
            "{name}: the lock was released"
        );
        assert!(
            !out.path().join("_staging").exists(),
            "{name}: staging was removed"
        );
        let latest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("_runs/latest.json")).unwrap())
                .unwrap();
        assert_eq!(latest["status"], "cancelled", "{name}");
        assert_eq!(latest["cancelled_by"], name);
        let models = latest["models"].as_array().unwrap();
        assert!(
            models.iter().any(|m| m["status"] == "cancelled"),
            "{name}: {latest}"
        );
        // The next run finishes the job.
        let o = medallion(cwd.path(), data.path(), out.path(), &[]);
        assert_eq!(o.status.code(), Some(0), "{name}: next run: {}", stderr(&o));
    }
}

/// Arithmetic a value makes overflow in a user's model fails that model as
/// bad input (exit 2, not "re-run"), naming it and what to do; the rest of
/// the run is published and the model's previous version stays.
#[test]
fn an_overflow_in_a_model_is_an_input_error_naming_the_model() {
    let case = Case::new();
    let models = models_copy();
    std::fs::write(
        models.path().join("gold/gold_overflow.sql"),
        "with final as (\n    select order_id,\n        cast(cast(order_id as decimal(18, 2)) * 100000000000000000 as decimal(18, 2)) as huge\n    from silver_orders\n)\n\nselect * from final\n",
    )
    .unwrap();
    let before = published(case.out.path());
    let models_dir = models.path().display().to_string();
    let o = case.run(&["--models", &models_dir, "--select", "gold_overflow"]);
    assert_refused(
        "overflow",
        &o,
        2,
        &["gold_overflow", "too large", "medallion query"],
    );
    assert!(published(case.out.path()) == before);
}

/// A published Parquet file cut short (a full disk, a bad copy): `query`
/// and `test` name the file and keep working on every other table.
#[test]
fn a_truncated_table_file_is_named_and_the_other_tables_still_work() {
    let case = Case::new();
    // An unpartitioned table first; a partitioned one below.
    let part = truncate_a_part(&case.out.path().join("gold/gold_ab_srm"));
    let cli = |args: &[&str]| case.command(args);
    let file = part.display().to_string();
    let o = cli(&["query", "select count(*) as n from gold_ab_srm"]);
    assert_refused("query the damaged table", &o, 2, &[&file, "gold_ab_srm"]);
    let o = cli(&["query", "select count(*) as n from gold_sales_monthly"]);
    assert_eq!(o.status.code(), Some(0), "another table: {}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains('n'));
    let o = cli(&[
        "test",
        "--select",
        "gold_ab_srm",
        "--select",
        "gold_customer_analytics",
    ]);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_eq!(o.status.code(), Some(3), "{text}");
    assert!(text.contains(&file), "test names the file: {text}");
    assert!(!text.contains("panicked"), "{text}");
    let other: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("gold_customer_analytics"))
        .collect();
    assert!(
        !other.is_empty() && other.iter().all(|l| l.contains("pass")),
        "{text}"
    );
    // A file inside a partition folder of a partitioned table is named too.
    let month = std::fs::read_dir(case.out.path().join("gold/gold_operational_metrics"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.to_string_lossy().contains("month="))
        .expect("a month partition of gold_operational_metrics");
    let part = truncate_a_part(&month);
    let o = cli(&[
        "query",
        "select count(*) as n from gold_operational_metrics",
    ]);
    let file = part.display().to_string();
    assert_refused(
        "query the damaged partition",
        &o,
        2,
        &[&file, "gold_operational_metrics", "--full-refresh"],
    );
}

/// Tables are registered from one footer, so a broken file in a later
/// partition shows only when it is read: `query`, `test` and a run that
/// reads it each still name the file and the fix.
#[test]
fn a_damaged_later_partition_is_named_when_it_is_read() {
    let case = Case::new();
    let table = case.out.path().join("silver/silver_orders");
    let mut days: Vec<_> = std::fs::read_dir(&table)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.to_string_lossy().contains("order_day="))
        .collect();
    days.sort();
    assert!(days.len() > 2, "day partitions of silver_orders: {days:?}");
    let part = truncate_a_part(days.last().unwrap());
    let file = part.display().to_string();
    let cli = |args: &[&str]| case.command(args);
    let o = cli(&["query", "select sum(customer_id) as s from silver_orders"]);
    assert_refused(
        "query the damaged partition",
        &o,
        2,
        &[&file, "silver_orders", "--full-refresh"],
    );
    let o = cli(&["test", "--select", "silver_orders"]);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_eq!(o.status.code(), Some(3), "{text}");
    assert!(text.contains(&file), "test names the file: {text}");
    let o = case.run(&["--select", "silver_order_totals", "--full-refresh"]);
    let text = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains(&file) && text.contains("--full-refresh"),
        "the run names the file: {text}"
    );
}

/// Cut the first Parquet file of `dir` in half, as a full disk would; its path.
fn truncate_a_part(dir: &std::path::Path) -> std::path::PathBuf {
    let part = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .unwrap_or_else(|| panic!("a data file in {}", dir.display()));
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();
    part
}

/// A lock file left by an earlier version (the lock was a file, it is a
/// folder of leases now) is named with what to do, not a raw I/O error.
#[test]
fn a_lock_file_of_an_earlier_version_is_named() {
    let case = Case::new();
    std::fs::write(case.out.path().join("_lock"), r#"{"run_id": "old"}"#).unwrap();
    let before = published(case.out.path());
    let o = case.run(&["--select", "bronze_reviews"]);
    assert_refused(
        "old lock file",
        &o,
        2,
        &["_lock", "earlier medallion version"],
    );
    assert!(published(case.out.path()) == before);
}
