//! Output on a real S3-compatible server: a full run, killed runs, the lock
//! and an input on S3, each against a moto server of its own
//! (`support::moto`, which installs moto when it is missing).

use std::process::Stdio;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

use crate::support::moto::*;
use crate::support::project_root;

/// `table,rows` for every table under `root`, through `medallion query`.
async fn row_counts(moto: &Moto, root: &str, tables: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for t in tables {
        let o = moto
            .run(&[
                "query",
                "--output",
                root,
                "--format",
                "csv",
                &format!("select count(*) as n from {t}"),
            ])
            .await;
        out.push(format!("{t},{}", stdout(&o).lines().nth(1).unwrap_or("?")));
    }
    out
}

#[tokio::test]
async fn full_run_to_s3_publishes_what_a_local_run_does() {
    let moto = start_moto();
    let store = moto.bucket("full").await;
    let local = tempfile::tempdir().unwrap();
    let local_root = local.path().to_str().unwrap().to_string();
    let s3_root = "s3://full/lake";
    for root in [s3_root, local_root.as_str()] {
        stdout(
            &moto
                .run(&["run", "--as-of", "2026-10-31", "--output", root])
                .await,
        );
    }
    let tables = check_tables(&store, true).await;
    assert!(tables > 40, "{tables} manifests");
    let results = read_json(&store, "lake/_runs/latest.json").await;
    assert_eq!(results["status"], "success");
    assert_eq!(results["output"], s3_root);
    assert!(keys(&store, "lake/_lock").await.is_empty(), "lock released");

    // The same rows on S3 as in the local folder, read back through the manifest.
    let gold: Vec<String> = std::fs::read_dir(local.path().join("gold"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(gold.len() >= 16, "{gold:?}");
    assert_eq!(
        row_counts(&moto, s3_root, &gold).await,
        row_counts(&moto, &local_root, &gold).await
    );
    let sql = "select * from gold_sales_monthly order by 1, 2";
    let mut contents = Vec::new();
    for root in [s3_root, local_root.as_str()] {
        let o = moto
            .run(&["query", "--output", root, "--format", "csv", sql])
            .await;
        contents.push(stdout(&o));
    }
    assert!(contents[0].lines().count() > 10);
    assert_eq!(contents[0], contents[1]);
}

#[tokio::test]
async fn killed_runs_leave_the_previous_version_published() {
    let moto = start_moto();
    let store = moto.bucket("killed").await;
    let root = "s3://killed/lake";
    stdout(
        &moto
            .run(&["run", "--as-of", "2026-10-31", "--output", root])
            .await,
    );
    let first = check_tables(&store, true).await;
    let gold_manifest = read_json(&store, "lake/gold/gold_sales_daily/_SUCCESS").await;
    let expected_rows = gold_manifest["rows"].as_u64().unwrap();

    // Kill re-runs at several points; every table must stay whole each time.
    for delay_ms in [150u64, 400, 700, 1000] {
        let mut child = moto
            .medallion(&["run", "--as-of", "2026-10-30", "--output", root])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.kill();
        child.wait().unwrap();
        assert_eq!(check_tables(&store, false).await, first);
        // Readers following the manifest see one whole version.
        let manifest = read_json(&store, "lake/gold/gold_sales_daily/_SUCCESS").await;
        let counted = row_counts(&moto, root, &["gold_sales_daily".to_string()]).await;
        assert_eq!(
            counted,
            [format!("gold_sales_daily,{}", manifest["rows"])],
            "after a kill at {delay_ms} ms"
        );
    }

    // The next run takes over the dead run's lock, publishes, and removes strays.
    let o = moto
        .run(&["run", "--as-of", "2026-10-31", "--output", root])
        .await;
    stdout(&o);
    assert_eq!(check_tables(&store, true).await, first);
    let manifest = read_json(&store, "lake/gold/gold_sales_daily/_SUCCESS").await;
    assert_eq!(manifest["rows"].as_u64().unwrap(), expected_rows);
}

#[tokio::test]
async fn a_lock_held_elsewhere_stops_the_run_with_its_holder() {
    let moto = start_moto();
    let store = moto.bucket("locked").await;
    let epoch = "lake/_lock/00000000000000000004";
    // The lease of a run on another host, last renewed `minutes_ago`.
    let plant = |minutes_ago: i64| {
        let holder = serde_json::json!({
            "run_id": "20261122T000000Z-nightly1", "pid": 4242,
            "host": "scheduler-7", "started_at": "2026-11-22T00:00:00Z",
            "refreshed_at": (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)).to_rfc3339()
        });
        let store = store.clone();
        async move {
            store
                .put(
                    &ObjectPath::from(epoch),
                    PutPayload::from(holder.to_string().into_bytes()),
                )
                .await
                .unwrap();
        }
    };
    let run = || {
        moto.run(&[
            "run",
            "--output",
            "s3://locked/lake",
            "--select",
            "bronze_orders",
        ])
    };
    // Renewed a moment ago: alive.
    plant(0).await;
    let o = run().await;
    assert_eq!(o.status.code(), Some(4), "exit code for a held lock");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("20261122T000000Z-nightly1") && stderr.contains("scheduler-7"),
        "{stderr}"
    );
    // Nothing was published and the other run's lock is untouched.
    assert_eq!(keys(&store, "lake").await, [epoch]);

    // Silent for 20 minutes (a pod that died): taken over by a conditional
    // PUT of the next epoch, then released.
    plant(20).await;
    stdout(&run().await);
    assert!(
        keys(&store, "lake/_lock").await.is_empty(),
        "taken over, then released"
    );
    assert_eq!(
        read_json(&store, "lake/_runs/latest.json").await["status"],
        "success"
    );
}

#[tokio::test]
async fn input_on_s3_is_ingested_like_a_local_folder() {
    let moto = start_moto();
    let store = moto.bucket("inbox").await;
    let sample = project_root().join("datasets");
    for (relative, bytes) in crate::support::snapshot(&sample) {
        let key = format!("drop/2026-10-31/{}", relative.to_string_lossy());
        store
            .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
            .await
            .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let local_out = tempfile::tempdir().unwrap();
    let select = ["--select", "+gold_sales_daily", "--as-of", "2026-10-31"];
    let remote = [
        &["run", "--input", "s3://inbox/drop/2026-10-31", "--output"][..],
        &[out.path().to_str().unwrap()],
        &select,
    ]
    .concat();
    stdout(&moto.run(&remote).await);
    let local = [
        &["run", "--input", "datasets", "--output"][..],
        &[local_out.path().to_str().unwrap()],
        &select,
    ]
    .concat();
    stdout(&moto.run(&local).await);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("_runs/latest.json")).unwrap())
            .unwrap();
    assert_eq!(results["input"], "s3://inbox/drop/2026-10-31");
    let sql = "select * from gold_sales_daily order by sale_date";
    let mut contents = Vec::new();
    for root in [out.path(), local_out.path()] {
        let o = moto
            .run(&[
                "query",
                "--output",
                root.to_str().unwrap(),
                "--format",
                "csv",
                sql,
            ])
            .await;
        contents.push(stdout(&o));
    }
    assert!(contents[0].lines().count() > 100);
    assert_eq!(contents[0], contents[1]);
    // Quarantined rows name the file as it was downloaded, under the same relative path.
    assert!(out.path().join("_quarantine/orders/_SUCCESS").exists());
}
