//! Incremental models (docs/operations.md, "Incremental models"), through
//! the release binary on `generate --daily` folders: a new day recomputes
//! only its date and leaves every other partition's files as they were; a
//! re-sent event that moved to another day leaves its old date; moving the
//! as-of date back and forth computes nothing; after each step every table
//! equals a full rebuild.

use std::collections::BTreeMap;
use std::path::Path;

use crate::nightly::{
    assert_equals_full_rebuild, daily_data, latest, medallion, model, run_command,
};
use crate::support::*;

/// The partitions of a table and the inode of each of their files.
fn partition_files(dir: &Path) -> BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    let mut files = BTreeMap::new();
    for folder in std::fs::read_dir(dir).unwrap().flatten() {
        if !folder.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(folder.path()).unwrap().flatten() {
            let name = format!(
                "{}/{}",
                folder.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            files.insert(name, file.metadata().unwrap().ino());
        }
    }
    files
}

fn partitions(results: &serde_json::Value, name: &str) -> Vec<String> {
    let m = model(results, name);
    assert_eq!(m["build"], "incremental", "{name}: {m}");
    m["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// How many partitions, and the first and last (empty when there are none).
fn span(dates: &[String]) -> (usize, &str, &str) {
    let first = dates.first().map_or("", String::as_str);
    let last = dates.last().map_or("", String::as_str);
    (dates.len(), first, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_models_recompute_only_the_dates_that_changed() {
    recompute_only_the_dates_that_changed(31, models_copy(), false).await;
}

/// The same steps with `silver_orders` and `silver_order_items` by month,
/// the orders held back by their own day (`as_of_by`) and the items
/// following them by month: what a user's monthly fact table does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_tables_hold_back_rows_by_their_own_day() {
    let models = models_copy();
    let edit = |file: &str, old: &str, new: &str| {
        let path = models.path().join("silver").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(old), "{file} no longer has {old:?}");
        std::fs::write(&path, text.replacen(old, new, 1)).unwrap();
    };
    edit(
        "silver_orders.sql",
        "utc_date(order_date) as order_day,",
        "utc_date(order_date) as order_day,\n        cast(date_trunc('month', utc_date(order_date)) as date) as order_month,",
    );
    edit(
        "silver_orders.toml",
        r#"incremental = { by = "order_day", lookback_days = 0 }"#,
        r#"incremental = { by = "order_month", period = "month", as_of_by = "order_day" }"#,
    );
    edit(
        "silver_order_items.sql",
        "o.order_day,",
        "o.order_day,\n        o.order_month,",
    );
    edit(
        "silver_order_items.toml",
        r#"by = "order_day", lookback_days = 0,"#,
        r#"by = "order_month", period = "month","#,
    );
    recompute_only_the_dates_that_changed(34, models, true).await;
}

/// A new day, a re-sent event, the as-of date moved back and forth, the
/// waiting dates deleted, orders before their items; `monthly`: the order
/// and item silvers are by month.
async fn recompute_only_the_dates_that_changed(
    seed: u64,
    models: tempfile::TempDir,
    monthly: bool,
) {
    let (data, held) = daily_data(seed);
    // The day, or with monthly order tables the month, of an order's change.
    let order_partition = |day: &'static str| if monthly { "2026-10-01" } else { day };
    let out = tempfile::tempdir().unwrap();
    let (input, root) = (data.path(), out.path());
    // The first held-back day is 2026-10-29; the run before it is as of 10-28.
    medallion(input, root, models.path(), &["--as-of", "2026-10-28"]);
    let events = root.join("silver/silver_events");
    let before = partition_files(&events);
    assert!(
        before
            .keys()
            .any(|f| f.starts_with("event_date=2026-10-28/"))
    );
    assert!(
        !before
            .keys()
            .any(|f| f.starts_with("event_date=2026-10-29/"))
    );

    // A new day: only its date is computed, in silver and in the daily golds.
    for (path, bytes) in held.iter().filter(|(p, _)| p.ends_with("2026-10-29.csv")) {
        std::fs::write(input.join(path), bytes).unwrap();
    }
    let args = ["--as-of", "2026-10-29"];
    medallion(input, root, models.path(), &args);
    let results = latest(root);
    for name in [
        "silver_events",
        "silver_usage_logs",
        "silver_user_transactions",
        "gold_product_engagement_daily",
        "gold_customer_engagement_daily",
        "gold_feature_usage",
    ] {
        assert_eq!(partitions(&results, name), ["2026-10-29"], "{name}");
    }
    for name in ["silver_orders", "silver_order_items"] {
        assert_eq!(
            partitions(&results, name),
            [order_partition("2026-10-29")],
            "{name}"
        );
    }
    // By month: the month of the day.
    for name in [
        "silver_order_totals",
        "silver_product_sales_monthly",
        "gold_operational_metrics",
    ] {
        assert_eq!(partitions(&results, name), ["2026-10-01"], "{name}");
    }
    // The monthly sales also the months whose growth may read October: its
    // days widened by 31 days of lookback reach into December.
    assert_eq!(
        partitions(&results, "gold_sales_monthly"),
        ["2026-10-01", "2026-11-01", "2026-12-01"]
    );
    // A day of a monthly input: every day of its month.
    assert_eq!(
        span(&partitions(&results, "gold_sales_daily")),
        (31, "2026-10-01", "2026-10-31")
    );
    // Looking ahead by habit_window_days (30): the users whose habit window
    // may hold the day.
    assert_eq!(
        span(&partitions(&results, "gold_user_onboarding_metrics")),
        (31, "2026-09-29", "2026-10-29")
    );
    let after = partition_files(&events);
    for (file, inode) in &before {
        assert_eq!(after.get(file), Some(inode), "{file} kept as it was");
    }
    assert!(
        after
            .keys()
            .any(|f| f.starts_with("event_date=2026-10-29/"))
    );
    assert_equals_full_rebuild("a new day", input, root, models.path(), &args).await;

    // An event re-sent in a later file with another day moves to that day.
    let first = std::fs::read_to_string(input.join("events/2026-10-10.csv")).unwrap();
    let mut lines = first.lines();
    let header = lines.next().unwrap();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.split(',').position(|c| c == "occurred_at").unwrap();
    let mut moved: Vec<String> = row.iter().map(|s| s.to_string()).collect();
    moved[at] = "2026-10-29 12:00:00".to_string();
    std::fs::write(
        input.join("events/2026-10-29-resent.csv"),
        format!("{header}\n{}\n", moved.join(",")),
    )
    .unwrap();
    medallion(input, root, models.path(), &args);
    let results = latest(root);
    assert_eq!(
        partitions(&results, "silver_events"),
        ["2026-10-10", "2026-10-29"]
    );
    assert_equals_full_rebuild("a re-sent event", input, root, models.path(), &args).await;

    // Moving the as-of date computes nothing: partitions change sides.
    for as_of in ["2026-10-20", "2026-10-29"] {
        let args = ["--as-of", as_of];
        medallion(input, root, models.path(), &args);
        let results = latest(root);
        assert!(
            partitions(&results, "silver_events").is_empty(),
            "as of {as_of}"
        );
        assert_equals_full_rebuild(as_of, input, root, models.path(), &args).await;
        // The dates after the as-of date wait, computed, outside the table.
        let waiting = std::fs::read_dir(root.join("_state/future/silver_events"))
            .map(|d| {
                d.flatten()
                    .map(|e| partition_files(&e.path()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let later = waiting
            .iter()
            .flat_map(|f| f.keys())
            .any(|f| f.starts_with("event_date=2026-10-25/"));
        assert_eq!(later, as_of == "2026-10-20", "as of {as_of}");
        if !monthly {
            continue;
        }
        // A monthly table holds back rows by their own day: October's
        // orders after the 20th wait, the others are published.
        assert!(
            partitions(&results, "silver_orders").is_empty(),
            "as of {as_of}"
        );
        let waiting = std::fs::read_dir(root.join("_state/future/silver_orders"))
            .map(|d| {
                d.flatten()
                    .flat_map(|e| partition_files(&e.path()).into_keys())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let october = |files: &[String]| {
            files
                .iter()
                .any(|f| f.starts_with("order_month=2026-10-01/"))
        };
        assert_eq!(october(&waiting), as_of == "2026-10-20", "as of {as_of}");
        let published: Vec<String> = partition_files(&root.join("silver/silver_orders"))
            .into_keys()
            .collect();
        assert!(october(&published), "as of {as_of}");
    }

    // The waiting dates deleted by hand: the next run rebuilds whole
    // rather than publish without them.
    medallion(input, root, models.path(), &["--as-of", "2026-10-20"]);
    std::fs::remove_dir_all(root.join("_state/future")).unwrap();
    medallion(input, root, models.path(), &args);
    let results = latest(root);
    let build = results["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "silver_events")
        .map(|m| m["build"].clone());
    assert_eq!(build, Some(serde_json::json!("full")));
    assert_equals_full_rebuild("future deleted", input, root, models.path(), &args).await;

    // A day's orders before their items, then the items: the items follow
    // their orders' day (or month) in both runs.
    let args = ["--as-of", "2026-10-30"];
    for folder in ["orders", "order_items"] {
        for (path, bytes) in held
            .iter()
            .filter(|(p, _)| p.starts_with(folder) && p.ends_with("2026-10-30.csv"))
        {
            std::fs::write(input.join(path), bytes).unwrap();
        }
        medallion(input, root, models.path(), &args);
        let results = latest(root);
        if folder == "orders" {
            assert_eq!(
                partitions(&results, "silver_orders"),
                [order_partition("2026-10-30")]
            );
        } else {
            assert_eq!(model(&results, "silver_orders")["skipped"], "unchanged");
        }
        assert_eq!(
            partitions(&results, "silver_order_items"),
            [order_partition("2026-10-30")],
            "{folder}"
        );
        assert_equals_full_rebuild(folder, input, root, models.path(), &args).await;
    }
}

/// The failing-row count of `test` of `name` in the last run.
fn failing_rows(root: &Path, name: &str, test: &str) -> u64 {
    let results = latest(root);
    let m = model(&results, name);
    m["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == test)
        .unwrap_or_else(|| panic!("{name} has no test {test}: {m}"))["failing_rows"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_builds_test_the_dates_they_bring_into_the_table() {
    let (data, held) = daily_data(32);
    let models = models_copy();
    // A test only the rows after 2026-10-28 fail.
    let test = "no usage after 10-28";
    let sidecar = models.path().join("silver/silver_usage_logs.toml");
    let mut text = std::fs::read_to_string(&sidecar).unwrap();
    text.push_str(&format!(
        "\n[[tests]]\ntype = \"expression\"\nname = \"{test}\"\nexpression = \"usage_date <= date '2026-10-28'\"\n"
    ));
    std::fs::write(&sidecar, text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (input, root) = (data.path(), out.path());
    for (path, bytes) in &held {
        std::fs::write(input.join(path), bytes).unwrap();
    }
    // Every day on disk, as of 10-28: the later dates wait outside the table.
    medallion(input, root, models.path(), &["--as-of", "2026-10-28"]);
    assert_eq!(failing_rows(root, "silver_usage_logs", test), 0);

    // As of 10-29 nothing is computed, but 10-29 comes into the table:
    // its rows are tested, fail, and the previous version stays.
    let args = ["--as-of", "2026-10-29"];
    let run = run_command(input, root, models.path(), &args)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(partitions(&latest(root), "silver_usage_logs").is_empty());
    let scoped = failing_rows(root, "silver_usage_logs", test);
    assert!(scoped > 0);
    // The same failing rows as a rebuild that tests every row finds.
    let full: Vec<&str> = args.iter().copied().chain(["--full-refresh"]).collect();
    let run = run_command(input, root, models.path(), &full)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(3));
    assert_eq!(model(&latest(root), "silver_usage_logs")["build"], "full");
    assert_eq!(failing_rows(root, "silver_usage_logs", test), scoped);
}
