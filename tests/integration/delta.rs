//! Delta Lake tables (`table_format = "delta"`): the same rows as Parquet,
//! a version per publish, time travel, no version for a blocked model, and
//! a killed run that leaves every table readable at its marker's version.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use datafusion::prelude::SessionContext;
use medallion::config::{Config, TableFormat, TableFormats};
use medallion::storage::Root;

use crate::support::*;

fn delta_config(input: &Path, output: &Path) -> Config {
    Config {
        table_format: TableFormats::all(TableFormat::Delta),
        ..config(input, output)
    }
}

/// Tables of a layer with a `_SUCCESS` marker.
fn tables(output: &Path, layer: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(output.join(layer))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("_SUCCESS").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn marker(output: &Path, layer: &str, table: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(output.join(layer).join(table).join("_SUCCESS")).unwrap())
        .unwrap()
}

/// Commits in a Delta table's log.
fn log_versions(output: &Path, layer: &str, table: &str) -> Vec<u64> {
    let mut versions: Vec<u64> =
        std::fs::read_dir(output.join(layer).join(table).join("_delta_log"))
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json")?.parse().ok()
            })
            .collect();
    versions.sort();
    versions
}

/// A table read the way medallion reads it (the marker's version, or `version`).
async fn rows(output: &Path, layer: &str, table: &str, version: Option<u64>) -> Vec<String> {
    let root = Root::open(output).unwrap();
    let ctx = SessionContext::new();
    match version {
        Some(v) => root.register_version(&ctx, table, layer, table, v).await,
        None => root.register(&ctx, table, layer, table).await,
    }
    .unwrap_or_else(|e| panic!("{layer}/{table}: {e}"));
    query_rows(&ctx, &format!("select * from {table}")).await
}

#[tokio::test]
async fn delta_tables_hold_the_parquet_rows_with_a_version_per_publish() {
    let parquet = tempfile::tempdir().unwrap();
    let delta = tempfile::tempdir().unwrap();
    let first = run(config(&fixture("shop"), parquet.path()), "2026-10-29").await;
    assert!(first.outcome().is_ok(), "{}", first.summary_table());
    let first = run(delta_config(&fixture("shop"), delta.path()), "2026-10-29").await;
    assert!(first.outcome().is_ok(), "{}", first.summary_table());

    // Same rows as the Parquet run, every silver and gold table a Delta table at version 0.
    let mut first_rows = Vec::new();
    for layer in ["silver", "gold"] {
        let names = tables(delta.path(), layer);
        assert_eq!(names, tables(parquet.path(), layer));
        for table in names {
            assert_eq!(
                log_versions(delta.path(), layer, &table),
                vec![0],
                "{table}"
            );
            assert_eq!(
                marker(delta.path(), layer, &table)["delta_version"],
                0,
                "{table}"
            );
            let got = rows(delta.path(), layer, &table, None).await;
            assert_eq!(
                got,
                table_rows(parquet.path(), layer, &table, None).await,
                "{table}"
            );
            first_rows.push((layer, table, got));
        }
    }
    // Bronze stays per-file Parquet parts.
    assert!(
        !delta
            .path()
            .join("bronze/bronze_orders/_delta_log")
            .exists()
    );

    // A later as-of: tables that read it get version 1; version 0 is the first run.
    let second = run(delta_config(&fixture("shop"), delta.path()), "2026-10-31").await;
    assert!(second.outcome().is_ok(), "{}", second.summary_table());
    let mut travelled = 0;
    for (layer, table, before) in &first_rows {
        let versions = log_versions(delta.path(), layer, table);
        let current = marker(delta.path(), layer, table)["delta_version"]
            .as_u64()
            .unwrap();
        assert_eq!(Some(&current), versions.last(), "{table}");
        if current == 1 {
            assert_eq!(
                &rows(delta.path(), layer, table, Some(0)).await,
                before,
                "{table} v0"
            );
            travelled += 1;
        }
    }
    assert!(travelled > 0, "no table depends on the as-of date");
    let daily = rows(delta.path(), "gold", "gold_sales_daily", None).await;
    let daily_v0 = rows(delta.path(), "gold", "gold_sales_daily", Some(0)).await;
    assert_ne!(daily, daily_v0, "the later as-of adds a sales day");

    // `medallion query --version` travels too.
    let query = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_medallion"))
            .current_dir(project_root())
            .args(["query", "--format", "csv", "--output"])
            .arg(delta.path())
            .args(extra)
            .arg("select count(*) as n from gold_sales_daily")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let n = |text: String| {
        text.lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    assert_eq!(n(query(&[])), daily.len());
    assert_eq!(n(query(&["--version", "0"])), daily_v0.len());
    assert_eq!(
        n(query(&["--version", "gold_sales_daily=0"])),
        daily_v0.len()
    );
}

#[tokio::test]
async fn a_blocked_delta_model_adds_no_version() {
    let out = tempfile::tempdir().unwrap();
    let first = run(delta_config(&fixture("shop"), out.path()), "2026-10-31").await;
    assert!(first.outcome().is_ok(), "{}", first.summary_table());
    let before = rows(out.path(), "gold", "gold_sales_daily", None).await;

    // The same model with a data test that fails on its staged rows.
    let models = models_copy();
    let sidecar = models.path().join("gold/gold_sales_daily.toml");
    let mut text = std::fs::read_to_string(&sidecar).unwrap();
    text.push_str(
        "\n[[tests]]\ntype = \"expression\"\nname = \"never true\"\nexpression = \"daily_orders < 0\"\n",
    );
    std::fs::write(&sidecar, text).unwrap();
    let cfg = Config {
        models: models.path().to_path_buf(),
        ..delta_config(&fixture("shop"), out.path())
    };
    let second = run(cfg, "2026-10-31").await;
    let err = second.outcome().unwrap_err().to_string();
    assert!(err.contains("gold_sales_daily"), "{err}");
    assert_eq!(
        log_versions(out.path(), "gold", "gold_sales_daily"),
        vec![0]
    );
    assert_eq!(
        marker(out.path(), "gold", "gold_sales_daily")["delta_version"],
        0
    );
    assert_eq!(
        rows(out.path(), "gold", "gold_sales_daily", None).await,
        before
    );
}

#[test]
fn a_killed_delta_run_leaves_every_table_readable_at_its_marker_version() {
    let data = generated(0.03, 5, 0.0);
    let out = tempfile::tempdir().unwrap();
    let medallion_run = |date: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medallion"));
        cmd.current_dir(project_root())
            .args([
                "run",
                "--quiet",
                "--table-format",
                "delta",
                "--as-of",
                date,
                "--input",
            ])
            .arg(data.path())
            .arg("--output")
            .arg(out.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let first = medallion_run("2026-10-30").output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut before = Vec::new();
    for layer in ["silver", "gold"] {
        for table in tables(out.path(), layer) {
            let content = rt.block_on(rows(out.path(), layer, &table, None));
            before.push((layer, table, content));
        }
    }

    // A later as-of rebuilds silver and gold; kill it once it stages a silver table.
    let child = medallion_run("2026-10-31").spawn().unwrap();
    let staging = out.path().join("_staging");
    kill_when(child, Duration::from_secs(120), || {
        snapshot(&staging)
            .iter()
            .any(|(p, _)| p.components().any(|c| c.as_os_str() == "silver"))
    });

    // Every table reads at its marker's version; an unmarked newer commit
    // is a complete version, and the marker's version is still the old rows.
    let mut unchanged = 0;
    for (layer, table, old) in &before {
        let at = marker(out.path(), layer, table)["delta_version"]
            .as_u64()
            .unwrap();
        let newest = *log_versions(out.path(), layer, table).last().unwrap();
        assert!(
            newest == at || newest == at + 1,
            "{table}: log at {newest}, marker at {at}"
        );
        if at == 0 {
            assert_eq!(
                &rt.block_on(rows(out.path(), layer, table, None)),
                old,
                "{table}"
            );
            unchanged += 1;
        }
        rt.block_on(rows(out.path(), layer, table, Some(newest)));
    }
    assert!(
        unchanged > 0,
        "the run was killed after publishing everything"
    );

    // The next run takes over and finishes the job.
    let third = medallion_run("2026-10-31").output().unwrap();
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    for (layer, table, _) in &before {
        let at = marker(out.path(), layer, table)["delta_version"]
            .as_u64()
            .unwrap();
        assert_eq!(
            Some(&at),
            log_versions(out.path(), layer, table).last(),
            "{table}"
        );
    }
}

#[tokio::test]
async fn delta_tables_on_s3_travel_back_through_their_log() {
    use crate::support::moto::*;
    let moto = start_moto();
    let store = moto.bucket("delta").await;
    let root = "s3://delta/lake";
    let local = tempfile::tempdir().unwrap();
    let earlier = local.path().to_str().unwrap();
    for (date, output, format) in [
        ("2026-10-30", root, "delta"),
        ("2026-10-31", root, "delta"),
        ("2026-10-30", earlier, "parquet"),
    ] {
        stdout(
            &moto
                .run(&[
                    "run",
                    "--quiet",
                    "--as-of",
                    date,
                    "--table-format",
                    format,
                    "--output",
                    output,
                ])
                .await,
        );
    }
    let marker = read_json(&store, "lake/gold/gold_sales_daily/_SUCCESS").await;
    assert_eq!(marker["delta_version"], 1, "{marker}");
    assert!(
        !keys(&store, "lake/gold/gold_sales_daily/_delta_log/")
            .await
            .is_empty(),
        "a Delta log on S3"
    );
    let now = query_csv(&moto, root, &[]).await;
    let then = query_csv(&moto, root, &["--version", "0"]).await;
    assert_ne!(now, then);
    assert_eq!(
        then,
        query_csv(&moto, earlier, &[]).await,
        "version 0 is the first run"
    );
}

/// gold_sales_daily through `medallion query` with `extra` flags, as CSV.
async fn query_csv(moto: &crate::support::moto::Moto, output: &str, extra: &[&str]) -> String {
    let mut args = vec!["query", "--format", "csv", "--output", output];
    args.extend_from_slice(extra);
    args.push("select * from gold_sales_daily order by sale_date");
    crate::support::moto::stdout(&moto.run(&args).await)
}
