//! Operating medallion: write–audit–publish with data tests, selection,
//! dry runs and reproducible as-of re-runs.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::Command;

use medallion::audit::TestStatus;
use medallion::models::Layer;
use medallion::models::sidecar::Severity;
use medallion::run::Status;

use crate::support::*;

fn append(path: &std::path::Path, text: &str) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

#[tokio::test]
async fn an_error_test_blocks_publishing_and_a_warn_test_only_reports() {
    let out = tempfile::tempdir().unwrap();
    let first = run(config(&fixture("shop"), out.path()), "2026-10-31").await;
    assert!(first.outcome().is_ok(), "{}", first.summary_table());
    let daily_before = snapshot(&out.path().join("gold/gold_sales_daily"));
    let monthly_before = snapshot(&out.path().join("gold/gold_sales_monthly"));

    let models = models_copy();
    append(
        &models.path().join("gold/gold_sales_daily.toml"),
        "\n[[tests]]\ntype = \"expression\"\nname = \"impossible\"\nexpression = \"daily_revenue < 0\"\n",
    );
    // Products 102, 104 and 105 have no review (docs/models.md: avg_rating NULL).
    append(
        &models.path().join("gold/gold_product_performance.toml"),
        "\n[[tests]]\ntype = \"not_null\"\ncolumn = \"avg_rating\"\nseverity = \"warn\"\n",
    );
    let mut cfg = config(&fixture("shop"), out.path());
    cfg.models = models.path().to_path_buf();
    // An earlier as-of date: a published gold_sales_daily would differ.
    let second = run(cfg, "2026-10-25").await;

    let err = second.outcome().unwrap_err();
    assert_eq!(err.exit_code(), medallion::error::exit::DATA_TESTS, "{err}");
    let model = |name: &str| {
        second
            .models
            .iter()
            .find(|m| m.name == name)
            .unwrap()
            .clone()
    };
    let daily = model("gold_sales_daily");
    assert_eq!(daily.status, Status::Error);
    let impossible = daily.tests.iter().find(|t| t.name == "impossible").unwrap();
    assert_eq!(
        (impossible.status, impossible.failing_rows),
        (TestStatus::Fail, 9),
        "9 sale days up to 2026-10-25"
    );
    assert_eq!(impossible.sample.len(), 5);
    assert_eq!(
        model("gold_sales_monthly").status,
        Status::Skipped,
        "it reads gold_sales_daily in a test"
    );
    assert_eq!(
        snapshot(&out.path().join("gold/gold_sales_daily")),
        daily_before,
        "byte for byte"
    );
    assert_eq!(
        snapshot(&out.path().join("gold/gold_sales_monthly")),
        monthly_before
    );

    let products = model("gold_product_performance");
    assert_eq!(products.status, Status::Success);
    let warn = products
        .tests
        .iter()
        .find(|t| t.severity == Severity::Warn)
        .unwrap();
    assert_eq!((warn.status, warn.failing_rows), (TestStatus::Fail, 3));
    let published = table_rows(
        out.path(),
        "gold",
        "gold_product_performance",
        Some("select count(*) from gold_product_performance"),
    )
    .await;
    assert_eq!(published, vec!["6"]);

    // run_results.json carries each failing test with its count and samples.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("_runs/latest.json")).unwrap())
            .unwrap();
    let daily_json = json["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "gold_sales_daily")
        .unwrap();
    let test = daily_json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "impossible")
        .unwrap();
    assert_eq!(test["status"], "fail");
    assert_eq!(test["failing_rows"], 9);
    assert!(test["sample"][0]["sale_date"].is_string(), "{test}");
}

#[tokio::test]
async fn selection_runs_exactly_what_was_asked() {
    let out = tempfile::tempdir().unwrap();
    let cfg = || config(&fixture("shop"), out.path());
    // Nothing published yet: a lone gold model cannot run and says how to fix it.
    let err = run_selected(cfg(), "2026-10-31", &["gold_sales_daily"], None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("--select +gold_sales_daily"),
        "{err}"
    );

    let full = run(cfg(), "2026-10-31").await;
    assert!(full.outcome().is_ok());
    let names = |r: &medallion::run::RunResults| {
        let mut n: Vec<String> = r.models.iter().map(|m| m.name.clone()).collect();
        n.sort();
        n
    };

    // Plant a duration no real run takes, so that what the selection run
    // writes can be told apart from what it kept.
    let durations = out.path().join("_runs/model_seconds.json");
    let planted: std::collections::BTreeMap<String, f64> =
        names(&full).into_iter().map(|n| (n, 1e6)).collect();
    std::fs::write(&durations, serde_json::to_vec(&planted).unwrap()).unwrap();

    let one = run_selected_in_full(cfg(), "2026-10-31", &["gold_sales_daily"])
        .await
        .unwrap();
    assert_eq!(names(&one), ["gold_sales_daily"]);
    // The next full run still orders every model by its last duration,
    // not only the one this run built.
    // Kept by kind of build: the planted plain numbers read as full builds'.
    let seconds: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&durations).unwrap()).unwrap();
    assert_eq!(
        seconds.keys().cloned().collect::<Vec<_>>(),
        names(&full),
        "durations of the models the selection did not build are kept"
    );
    let built = one.models[0].duration_seconds;
    assert!(built < 1e6, "a real duration: {built}");
    let kind = match one.models[0].build {
        Some(medallion::run::results::Build::Incremental) => "incremental",
        _ => "full",
    };
    for (model, entry) in &seconds {
        let (s, expected) = if model == "gold_sales_daily" {
            (entry[kind].as_f64().unwrap(), built)
        } else {
            (entry["full"].as_f64().unwrap(), 1e6)
        };
        assert!(
            (s - expected).abs() < 1e-9,
            "{model}: {s} (only the built model's duration changes)"
        );
    }

    let upstream = run_selected(cfg(), "2026-10-31", &["+gold_sales_daily"], None)
        .await
        .unwrap();
    assert_eq!(
        names(&upstream),
        [
            "bronze_order_items",
            "bronze_orders",
            "bronze_products",
            "gold_sales_daily",
            "silver_order_items",
            "silver_order_totals",
            "silver_orders",
            "silver_products"
        ]
    );

    let gold_before = snapshot(&out.path().join("gold"));
    let silver = run_selected(cfg(), "2026-10-31", &[], Some(Layer::Silver))
        .await
        .unwrap();
    assert!(
        silver
            .models
            .iter()
            .all(|m| m.layer == Layer::Silver && m.status.is_current())
    );
    let dag = medallion::models::load_dag(&cfg()).unwrap();
    assert_eq!(silver.models.len(), dag.by_layer()[&Layer::Silver].len());
    assert_eq!(
        snapshot(&out.path().join("gold")),
        gold_before,
        "--layer silver touches no gold table"
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("root");
    let output = Command::new(env!("CARGO_BIN_EXE_medallion"))
        .current_dir(project_root())
        .args([
            "run",
            "--dry-run",
            "--as-of",
            "2026-10-31",
            "--select",
            "+gold_customer_analytics",
            "--output",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan = String::from_utf8(output.stdout).unwrap();
    assert!(
        plan.contains("gold_customer_analytics") && plan.contains("silver_order_totals"),
        "{plan}"
    );
    assert!(
        plan.contains("accepted_values(customer_segment)"),
        "the plan lists tests: {plan}"
    );
    assert!(!plan.contains("gold_sales_daily"), "{plan}");
    assert!(!target.exists(), "a dry run creates nothing");
}

#[tokio::test]
async fn re_running_an_old_as_of_date_reproduces_its_gold_tables() {
    let out = tempfile::tempdir().unwrap();
    let cfg = || config(&fixture("shop"), out.path());
    assert!(run(cfg(), "2026-09-30").await.outcome().is_ok());
    let september = gold_contents(out.path()).await;
    assert!(run(cfg(), "2026-10-31").await.outcome().is_ok());
    let october = gold_contents(out.path()).await;
    assert_ne!(september, october);
    assert!(run(cfg(), "2026-09-30").await.outcome().is_ok());
    assert_eq!(gold_contents(out.path()).await, september);
}

/// Re-running a night two weeks before the data ends: rows dated after the
/// as-of date (products created later included) never leak into a score,
/// so every data test of every model passes.
#[tokio::test]
async fn an_older_night_reruns_with_every_data_test_passing() {
    let data = generated(0.1, 42, 0.01);
    // Warn-severity tests count dirty rows by design; an older night may
    // only fail those the last night fails too.
    let failing = |results: &medallion::run::RunResults| -> Vec<String> {
        let mut failing: Vec<String> = results
            .models
            .iter()
            .flat_map(|m| {
                assert_eq!(m.status, Status::Success, "{}: {:?}", m.name, m.error);
                m.tests.iter().map(move |t| (m, t))
            })
            .filter(|(_, t)| t.status != TestStatus::Pass)
            .map(|(m, t)| {
                assert_eq!(t.severity, Severity::Warn, "{} {}", m.name, t.name);
                format!("{} {}", m.name, t.name)
            })
            .collect();
        failing.sort();
        failing
    };
    let last = tempfile::tempdir().unwrap();
    let last_night = failing(&run(config(data.path(), last.path()), "2026-10-31").await);
    let out = tempfile::tempdir().unwrap();
    let older = "2026-10-17";
    let older_night = failing(&run(config(data.path(), out.path()), older).await);
    for test in &older_night {
        assert!(
            last_night.contains(test),
            "{test} fails only on the older night"
        );
    }
    // The case is really there: products created after the as-of date exist,
    // and none of them is ranked.
    let later = table_rows(
        out.path(),
        "bronze",
        "bronze_products",
        Some(&format!(
            "select count(*) from bronze_products where created_at > date '{older}'"
        )),
    )
    .await;
    assert_ne!(later, vec!["0".to_string()], "{later:?}");
    let ranked_later = table_rows(
        out.path(),
        "gold",
        "gold_product_rankings",
        Some("select count(*) > 0, max(freshness_score) <= 1.0 from gold_product_rankings"),
    )
    .await;
    assert_eq!(ranked_later, vec!["true | true".to_string()]);
}

/// `medallion query` only reads: statements that would write files or
/// register paths are refused (exit 2) and write nothing; an empty
/// `--select` (an unset `$MODELS`) is a usage error, not "run nothing".
#[tokio::test]
async fn query_is_read_only_and_an_empty_selection_is_an_error() {
    let out = tempfile::tempdir().unwrap();
    assert!(
        run(config(&fixture("shop"), out.path()), "2026-10-31")
            .await
            .outcome()
            .is_ok()
    );
    let medallion = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_medallion"))
            .current_dir(project_root())
            .args(args)
            .output()
            .unwrap()
    };
    let root = out.path().to_str().unwrap();
    let written = out.path().join("copied.csv");
    let copy = format!("copy (select 1 as x) to '{}'", written.display());
    let create = format!(
        "create external table t stored as parquet location '{}'",
        out.path().join("gold/gold_sales_daily").display()
    );
    for sql in [
        copy.as_str(),
        create.as_str(),
        "set datafusion.execution.batch_size = 1",
    ] {
        let o = medallion(&["query", "--output", root, sql]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{sql}: {stderr}");
        assert!(stderr.contains("query:"), "{stderr}");
    }
    assert!(!written.exists(), "COPY wrote a file");
    let o = medallion(&[
        "query",
        "--output",
        root,
        "select count(*) from gold_sales_daily",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Usage errors, refused before the lock: nothing is written.
    let latest = std::fs::read(out.path().join("_runs/latest.json")).unwrap();
    for (flag, value, says) in [
        ("--select", "", vec!["--select names no model"]),
        ("--var", "alpha=NaN", vec!["alpha", "finite"]),
    ] {
        let o = medallion(&[
            "run",
            "--as-of",
            "2026-10-31",
            "--output",
            root,
            flag,
            value,
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(says.iter().all(|s| stderr.contains(s)), "{stderr}");
        assert_eq!(
            std::fs::read(out.path().join("_runs/latest.json")).unwrap(),
            latest
        );
    }
}

/// The volume guard: a source that falls by more than max_shrink_fraction
/// against its published version (a truncated or header-only file) fails,
/// naming both counts, and every published table stays; `allow_shrink`
/// (flag `--allow-shrink`) publishes it.
#[tokio::test]
async fn a_source_that_shrinks_fails_unless_the_run_allows_it() {
    let input = tempfile::tempdir().unwrap();
    copy_tree(&fixture("shop"), input.path());
    let out = tempfile::tempdir().unwrap();
    assert!(
        run(config(input.path(), out.path()), "2026-10-31")
            .await
            .outcome()
            .is_ok()
    );
    let gold_before = gold_contents(out.path()).await;
    let header = std::fs::read_to_string(input.path().join("orders.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(input.path().join("orders.csv"), format!("{header}\n")).unwrap();

    let refused = run(config(input.path(), out.path()), "2026-10-31").await;
    let err = refused.outcome().unwrap_err();
    assert_eq!(err.exit_code(), medallion::error::exit::INPUT, "{err}");
    let orders = refused
        .models
        .iter()
        .find(|m| m.name == "bronze_orders")
        .unwrap();
    let message = orders.error.as_deref().unwrap_or_default();
    assert!(
        message.contains("0 rows against 19") && message.contains("--allow-shrink"),
        "{message}"
    );
    // Models that do not read orders were rebuilt, from the same inputs.
    assert_eq!(gold_contents(out.path()).await, gold_before);

    let allowed = run(
        medallion::config::Config {
            allow_shrink: true,
            ..config(input.path(), out.path())
        },
        "2026-10-31",
    )
    .await;
    let orders = allowed
        .models
        .iter()
        .find(|m| m.name == "bronze_orders")
        .unwrap();
    assert_eq!((orders.status, orders.rows_written), (Status::Success, 0));
}
