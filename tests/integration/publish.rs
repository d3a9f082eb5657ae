//! Atomic publish and the run lock: a failed or killed run leaves every
//! previously published table as it was; a second run fails fast.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use medallion::storage::{LockHolder, Root};

use crate::support::*;

fn published(output: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    ["bronze", "silver", "gold", "_quarantine"]
        .iter()
        .flat_map(|layer| {
            snapshot(&output.join(layer))
                .into_iter()
                .map(move |(p, b)| (Path::new(layer).join(p), b))
        })
        .collect()
}

#[tokio::test]
async fn a_failing_model_keeps_its_previous_version_and_skips_dependants() {
    let out = tempfile::tempdir().unwrap();
    let first = run(config(&fixture("shop"), out.path()), "2026-10-31").await;
    assert!(first.outcome().is_ok(), "{}", first.summary_table());
    let before = snapshot(&out.path().join("gold/gold_customer_analytics"));
    let daily_before = snapshot(&out.path().join("gold/gold_sales_daily"));

    // Same project, but silver_order_totals now fails while executing.
    let models = tempfile::tempdir().unwrap();
    copy_tree(&project_root().join("sql"), models.path());
    std::fs::write(
        models.path().join("silver/silver_order_totals.sql"),
        "select o.*, cast(date_trunc('month', o.order_day) as date) as order_month, \
         cast(0 as decimal(18,2)) as order_revenue, cast(0 as bigint) as items, \
         o.is_revenue_order as x, cast(1 / (o.order_id - o.order_id) as bigint) as boom from silver_orders o",
    )
    .unwrap();
    let mut cfg = config(&fixture("shop"), out.path());
    cfg.models = models.path().to_path_buf();
    let second = run(cfg, "2026-10-31").await;
    let err = second.outcome().unwrap_err();
    assert!(err.to_string().contains("silver_order_totals"), "{err}");
    let status = |name: &str| {
        second
            .models
            .iter()
            .find(|m| m.name == name)
            .unwrap()
            .status
    };
    use medallion::run::Status;
    assert_eq!(status("silver_order_totals"), Status::Error);
    for dependant in [
        "gold_customer_analytics",
        "gold_sales_daily",
        "gold_sales_monthly",
        "gold_operational_metrics",
    ] {
        assert_eq!(status(dependant), Status::Skipped, "{dependant}");
    }
    // Not downstream of the failure and nothing it reads changed.
    assert_eq!(status("gold_product_performance"), Status::Unchanged);
    assert_eq!(
        snapshot(&out.path().join("gold/gold_customer_analytics")),
        before
    );
    assert_eq!(
        snapshot(&out.path().join("gold/gold_sales_daily")),
        daily_before
    );
    // run_results.json records the failure and the skip.
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("_runs/latest.json")).unwrap())
            .unwrap();
    assert_eq!(latest["status"], "error");
    assert_eq!(latest["run_id"], second.run_id.as_str());
    let model = |name: &str| {
        latest["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(model("silver_order_totals")["status"], "error");
    assert!(
        model("silver_order_totals")["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("divide by zero")
    );
    assert_eq!(model("gold_sales_daily")["status"], "skipped");
    assert!(
        out.path()
            .join(format!("_runs/{}/run_results.json", second.run_id))
            .exists()
    );
    assert!(
        !out.path().join("_staging").exists(),
        "staging is cleaned up"
    );
}

#[tokio::test]
async fn a_second_run_fails_fast_naming_the_lock_holder() {
    let out = tempfile::tempdir().unwrap();
    let holder = LockHolder::this_process("20261122T000000Z-holder01", chrono::Utc::now());
    let lock = Root::open(out.path())
        .unwrap()
        .lock(holder, Duration::from_secs(600))
        .await
        .unwrap();
    let started = Instant::now();
    let err = medallion::run::run(medallion::run::RunRequest {
        config: config(&fixture("shop"), out.path()),
        as_of: as_of("2026-10-31"),
        select: vec![],
        layer: None,
        arguments: vec![],
        full_refresh: false,
        retry: false,
    })
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.to_string().contains("20261122T000000Z-holder01"),
        "{err}"
    );
    assert_eq!(err.exit_code(), medallion::error::exit::LOCKED);
    assert!(!out.path().join("gold").exists(), "nothing was written");
    lock.release().await;
    assert!(
        !out.path().join("_lock").exists(),
        "a released lock leaves nothing"
    );
}

#[test]
fn a_killed_run_leaves_the_previous_tables_and_the_next_run_takes_over() {
    let data = generated(0.03, 3, 0.0);
    let out = tempfile::tempdir().unwrap();
    let medallion_run = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medallion"));
        cmd.current_dir(project_root())
            .args([
                "run",
                "--as-of",
                "2026-10-31",
                "--quiet",
                "--full-refresh",
                "--input",
            ])
            .arg(data.path())
            .arg("--output")
            .arg(out.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let first = medallion_run().output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = published(out.path());
    let first_run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("_runs/latest.json")).unwrap())
            .unwrap();

    let child = medallion_run().spawn().unwrap();
    let staging = out.path().join("_staging");
    // Kill as soon as the second run has staged a file of its own.
    kill_when(child, Duration::from_secs(60), || {
        !snapshot(&staging).is_empty()
    });
    let latest_run = |root: &Path| -> String {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join("_runs/latest.json")).unwrap())
                .unwrap();
        v["run_id"].as_str().unwrap().to_string()
    };

    // Each table is either exactly the old version or a complete new one
    // (its marker lists exactly the files present): never a mix.
    let after = published(out.path());
    let tables = |files: &[(std::path::PathBuf, Vec<u8>)]| {
        let mut t: Vec<_> = files
            .iter()
            .map(|(p, _)| p.parent().unwrap().to_path_buf())
            .collect();
        t.dedup();
        t
    };
    let mut unchanged = 0;
    for table in tables(&before) {
        let old: Vec<_> = before
            .iter()
            .filter(|(p, _)| p.parent() == Some(&table))
            .collect();
        let new: Vec<_> = after
            .iter()
            .filter(|(p, _)| p.parent() == Some(&table))
            .collect();
        if old == new {
            unchanged += 1;
            continue;
        }
        let marker: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.path().join(&table).join("_SUCCESS")).unwrap(),
        )
        .unwrap();
        let mut listed: Vec<String> = marker["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        let mut present: Vec<String> = new
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".parquet"))
            .collect();
        listed.sort();
        present.sort();
        assert_eq!(listed, present, "{} is a mix of versions", table.display());
    }
    assert!(
        unchanged > 0,
        "the run was killed before it could publish everything"
    );
    assert_eq!(
        latest_run(out.path()),
        first_run["run_id"].as_str().unwrap(),
        "the killed run wrote no results"
    );

    // The dead run's lock and staging do not block the next run.
    let third = medallion_run().output().unwrap();
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    assert!(!staging.exists());
}
