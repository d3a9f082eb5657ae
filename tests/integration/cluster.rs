//! `--engine ballista` (build feature `distributed`): a scheduler and two
//! executors started from the medallion binary on 127.0.0.1, reading and
//! writing a moto S3 server, as `docker compose --profile cluster` runs them.
//!
//! One test, in steps, because each step needs the previous one's tables
//! and a cluster takes seconds to start:
//! 1. the whole pipeline on the cluster publishes every gold table with the
//!    same contents as a local-engine run on the same data;
//! 2. a re-run with one executor killed mid-run either completes or fails
//!    with a message, and every published table stays whole and unchanged;
//! 3. the next run, on the surviving executor, completes;
//! 4. a model with an empty result is published as one file with its columns.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;

use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::support::moto::{Moto, check_tables, keys, read_bytes, read_json, start_moto, stdout};
use crate::support::{copy_tree, gold_contents, project_root};

/// Scheduler and executors, killed on drop.
struct Cluster {
    scheduler_url: String,
    scheduler: Child,
    executors: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.executors.iter_mut().chain([&mut self.scheduler]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn role(moto: &Moto, args: &[&str], log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    moto.medallion(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Executor number `i` of the scheduler at `scheduler_url`, once it listens.
fn start_executor(moto: &Moto, scheduler_url: &str, i: usize, logs: &Path) -> Child {
    let (flight, grpc) = (free_port(), free_port());
    let work = logs.join(format!("executor-{i}"));
    std::fs::create_dir_all(&work).unwrap();
    let child = role(
        moto,
        &[
            "executor",
            "--scheduler",
            scheduler_url,
            "--bind-host",
            "127.0.0.1",
            "--external-host",
            "127.0.0.1",
            "--port",
            &flight.to_string(),
            "--grpc-port",
            &grpc.to_string(),
            "--concurrent-tasks",
            "2",
            "--heartbeat-seconds",
            "1",
            "--work-dir",
            work.to_str().unwrap(),
        ],
        &logs.join(format!("executor-{i}.log")),
    );
    wait_for_port(flight, "an executor");
    child
}

fn start_cluster(moto: &Moto, executors: usize, logs: &Path) -> Cluster {
    let port = free_port();
    let port_text = port.to_string();
    let scheduler = role(
        moto,
        &[
            "scheduler",
            "--bind-host",
            "127.0.0.1",
            "--external-host",
            "127.0.0.1",
            "--port",
            &port_text,
            // Lost executors are noticed within seconds, not the default minute.
            "--executor-timeout-seconds",
            "5",
        ],
        &logs.join("scheduler.log"),
    );
    wait_for_port(port, "the scheduler");
    let scheduler_url = format!("df://127.0.0.1:{port}");
    let children = (0..executors)
        .map(|i| start_executor(moto, &scheduler_url, i, logs))
        .collect();
    // Registration follows the listening ports by a heartbeat at most.
    std::thread::sleep(Duration::from_secs(2));
    Cluster {
        scheduler_url,
        scheduler,
        executors: children,
    }
}

/// Copy the published version of every gold table (the files its manifest
/// lists) from the bucket to `local/gold/<table>/`.
async fn download_gold(store: &Arc<dyn ObjectStore>, prefix: &str, local: &Path) {
    let all = keys(store, &format!("{prefix}/gold")).await;
    for manifest_key in all.iter().filter(|k| k.ends_with("/_SUCCESS")) {
        let table_dir = manifest_key.trim_end_matches("/_SUCCESS");
        let table = table_dir.rsplit('/').next().unwrap();
        let manifest = read_json(store, manifest_key).await;
        let dest = local.join("gold").join(table);
        std::fs::create_dir_all(&dest).unwrap();
        for file in manifest["files"].as_array().unwrap() {
            let name = file.as_str().unwrap();
            let bytes = read_bytes(store, &format!("{table_dir}/{name}")).await;
            std::fs::write(dest.join(name), bytes).unwrap();
        }
    }
}

/// Every gold table's sorted rows, read from the bucket.
async fn gold_on_s3(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<(String, Vec<String>)> {
    let copy = tempfile::tempdir().unwrap();
    download_gold(store, prefix, copy.path()).await;
    gold_contents(copy.path()).await
}

fn differences(
    expected: &[(String, Vec<String>)],
    actual: &[(String, Vec<String>)],
) -> Vec<String> {
    let actual: BTreeMap<&String, &Vec<String>> = actual.iter().map(|(t, r)| (t, r)).collect();
    let mut out = Vec::new();
    for (table, rows) in expected {
        match actual.get(table) {
            None => out.push(format!("{table}: missing")),
            Some(got) if got != &rows => out.push(format!(
                "{table}: {} rows expected, {} found; first expected {:?}, first found {:?}",
                rows.len(),
                got.len(),
                rows.first(),
                got.first()
            )),
            Some(_) => {}
        }
    }
    if actual.len() != expected.len() {
        out.push(format!(
            "{} gold tables expected, {} found",
            expected.len(),
            actual.len()
        ));
    }
    out
}

#[tokio::test]
async fn the_cluster_publishes_what_the_local_engine_does_and_survives_a_lost_executor() {
    let moto = start_moto();
    let store = moto.bucket("cluster").await;
    let logs = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let as_of = ["--as-of", "2026-10-31"];
    let root = "s3://cluster/lake";

    // The reference: the local engine on the same data.
    let local_root = local.path().to_str().unwrap();
    stdout(
        &moto
            .run(&[&["run", "--output", local_root][..], &as_of].concat())
            .await,
    );
    let expected = gold_contents(local.path()).await;
    assert!(expected.len() >= 16, "{} gold tables", expected.len());

    // 1. The whole pipeline on a scheduler and two executors.
    let mut cluster = start_cluster(&moto, 2, logs.path());
    let scheduler_url = cluster.scheduler_url.clone();
    let on_cluster: Vec<&str> = [
        &["run", "--output", root, "--engine", "ballista"][..],
        &["--scheduler", &scheduler_url],
        &as_of,
    ]
    .concat();
    let started = Instant::now();
    let first = moto.run(&on_cluster).await;
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        first.status.success(),
        "exit {:?}\n{}\nscheduler log:\n{}",
        first.status.code(),
        String::from_utf8_lossy(&first.stderr),
        std::fs::read_to_string(logs.path().join("scheduler.log")).unwrap_or_default()
    );
    eprintln!("cluster run: {seconds:.1} s");
    let tables = check_tables(&store, true).await;
    let diff = differences(&expected, &gold_on_s3(&store, "lake").await);
    assert!(diff.is_empty(), "cluster vs local:\n{}", diff.join("\n"));
    assert!(
        keys(&store, "lake/_staging").await.is_empty(),
        "staged files are removed once published"
    );
    let results = read_json(&store, "lake/_runs/latest.json").await;
    assert_eq!(results["status"], "success");
    let manifests_before: Vec<(String, Vec<u8>)> = manifests(&store).await;

    // 2. Kill one executor while a re-run is under way.
    // Quiet: errors only, so stderr fits the pipe while nobody reads it.
    // A job can stay "running" after losing an executor; the query limit
    // turns that into a failed model (a minute: far beyond any sample model).
    let mut rerun = moto
        .medallion(
            &[
                &on_cluster[..],
                // A full refresh: the tables are current, a plain re-run builds nothing.
                &[
                    "--quiet",
                    "--full-refresh",
                    "--cluster-query-timeout-seconds",
                    "60",
                ],
            ]
            .concat(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs_f64((seconds / 3.0).max(1.0))).await;
    assert!(
        rerun.try_wait().unwrap().is_none(),
        "the re-run ended before the executor was killed: nothing was tested"
    );
    let mut victim = cluster.executors.remove(0);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let outcome = finish(rerun, Duration::from_secs(600)).await;
    let stderr = outcome.1;
    eprintln!(
        "re-run with a lost executor: exit {:?}\n{stderr}",
        outcome.0
    );
    match outcome.0 {
        Some(0) => {}
        Some(code) => {
            assert!(
                stderr.contains("error:") && stderr.contains("model"),
                "exit {code} without a clear message:\n{stderr}"
            );
        }
        None => panic!("the run was killed by a signal:\n{stderr}"),
    }
    // Whatever happened, every manifest lists whole files and gold is unchanged.
    assert_eq!(check_tables(&store, false).await, tables);
    let diff = differences(&expected, &gold_on_s3(&store, "lake").await);
    assert!(
        diff.is_empty(),
        "after a lost executor:\n{}",
        diff.join("\n")
    );
    let manifests_after = manifests(&store).await;
    // A model that failed or was skipped keeps its previous version: its
    // manifest did not change.
    let rerun_results = read_json(&store, "lake/_runs/latest.json").await;
    let after: BTreeMap<_, _> = manifests_after.into_iter().collect();
    let mut kept = 0;
    for model in rerun_results["models"].as_array().unwrap() {
        if model["status"] == "success" {
            continue;
        }
        let (layer, name) = (
            model["layer"].as_str().unwrap(),
            model["name"].as_str().unwrap(),
        );
        let key = format!("lake/{layer}/{name}/_SUCCESS");
        let before = manifests_before
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, b)| b);
        assert_eq!(
            after.get(&key),
            before,
            "{key} changed although {name} did not succeed"
        );
        kept += 1;
    }
    assert_eq!(kept > 0, outcome.0 != Some(0), "{rerun_results}");
    // 3. The next run succeeds once the lost executor is replaced, as an
    // orchestrator would. Not on the survivor alone: when Ballista 55 rolls
    // back a stage of a lost executor it can ignore the survivor's reports of
    // tasks it was running, whose slots then stay taken, so that a later job
    // is never scheduled (docs/cluster.md). The query limit turns any such
    // hang into a failure within minutes rather than the default hour.
    cluster.executors.push(start_executor(
        &moto,
        &cluster.scheduler_url,
        2,
        logs.path(),
    ));
    std::thread::sleep(Duration::from_secs(2));
    let third = moto
        .run(&[&on_cluster[..], &["--cluster-query-timeout-seconds", "180"]].concat())
        .await;
    stdout(&third);
    assert_eq!(check_tables(&store, true).await, tables);
    let diff = differences(&expected, &gold_on_s3(&store, "lake").await);
    assert!(diff.is_empty(), "on one executor:\n{}", diff.join("\n"));

    // 4. An empty result: executors write no file for it, yet the table
    // must exist with its columns, as on the local engine.
    let models = tempfile::tempdir().unwrap();
    copy_tree(&project_root().join("sql"), models.path());
    std::fs::write(
        models.path().join("gold/gold_nothing_yet.sql"),
        "select * from silver_orders where order_id is null\n",
    )
    .unwrap();
    let models_dir = models.path().to_str().unwrap();
    stdout(
        &moto
            .run(
                &[
                    &on_cluster[..],
                    &["--models", models_dir, "--select", "gold_nothing_yet"],
                ]
                .concat(),
            )
            .await,
    );
    let manifest = read_json(&store, "lake/gold/gold_nothing_yet/_SUCCESS").await;
    assert_eq!(manifest["rows"], 0);
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{manifest}");
    let file = format!("lake/gold/gold_nothing_yet/{}", files[0].as_str().unwrap());
    let local_copy = models.path().join("empty.parquet");
    std::fs::write(&local_copy, read_bytes(&store, &file).await).unwrap();
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&local_copy).unwrap())
            .unwrap();
    let columns: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert!(
        columns.contains(&"order_id".to_string()) && columns.len() > 3,
        "{columns:?}"
    );
    assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
}

/// `(key, body)` of every manifest under `lake/`.
async fn manifests(store: &Arc<dyn ObjectStore>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for key in keys(store, "lake").await {
        if key.ends_with("/_SUCCESS") {
            let body = read_bytes(store, &key).await;
            out.push((key, body));
        }
    }
    out
}

/// Wait for `child` for at most `limit` (killing it past that, which fails
/// the test); returns its exit code (`None` for a signal) and its stderr.
async fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the run did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let mut text = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            use std::io::Read;
            let _ = stderr.read_to_string(&mut text);
        }
        (status.code(), text)
    })
    .await
    .unwrap()
}
