//! Output on a real S3-compatible server (SPEC §2): moto's server mode from
//! PyPI on 127.0.0.1, one per test. `.ci/run` installs moto; locally the
//! tests look for `moto_server` on PATH, in `$MOTO_SERVER`, or in
//! `/tmp/venv/bin`, and are skipped with a message when none is found, unless
//! `MEDALLION_REQUIRE_S3_TESTS=1` (set by CI) makes that a failure.
//!
//! The binary runs as a scheduler would run it, with the standard AWS
//! environment variables pointing it at the server.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::common::project_root;

/// A moto server on a free port, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from("/tmp/venv/bin/moto_server")).filter(|p| p.is_file()))
}

pub fn start_moto() -> Option<Moto> {
    let Some(binary) = moto_binary() else {
        assert!(
            std::env::var("MEDALLION_REQUIRE_S3_TESTS").is_err(),
            "MEDALLION_REQUIRE_S3_TESTS is set but no moto_server was found; pip install 'moto[server]'"
        );
        eprintln!("skipped: no moto_server found (pip install 'moto[server]' to run the S3 tests)");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(moto)
}

impl Moto {
    pub async fn bucket(&self, name: &str) -> Arc<dyn ObjectStore> {
        // Bucket creation needs no signature on moto; objects do.
        let status = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "create bucket: {status}");
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_bucket_name(name)
                .with_access_key_id("test")
                .with_secret_access_key("test")
                .with_region("us-east-1")
                .build()
                .unwrap(),
        )
    }

    pub fn medallion(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medallion"));
        cmd.args(args)
            .current_dir(project_root())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env_remove("MEDALLION_LOG")
            .stdin(Stdio::null());
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.medallion(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

pub async fn keys(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(Some(&ObjectPath::from(prefix)))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

/// The object at `key`, whole.
pub async fn read_bytes(store: &Arc<dyn ObjectStore>, key: &str) -> Vec<u8> {
    store
        .get(&ObjectPath::from(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

pub async fn read_json(store: &Arc<dyn ObjectStore>, key: &str) -> serde_json::Value {
    serde_json::from_slice(&read_bytes(store, key).await).unwrap()
}

pub fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

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

/// Every table's manifest lists files that exist, and nothing else is in
/// the table folder once `clean` (after a completed publish).
pub async fn check_tables(store: &Arc<dyn ObjectStore>, clean: bool) -> usize {
    let all = keys(store, "lake").await;
    let manifests: Vec<&String> = all.iter().filter(|k| k.ends_with("/_SUCCESS")).collect();
    for m in &manifests {
        let dir = m.trim_end_matches("_SUCCESS");
        let manifest = read_json(store, m).await;
        let listed: Vec<String> = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{dir}{}", f.as_str().unwrap()))
            .collect();
        assert!(!listed.is_empty() || dir.contains("_quarantine"), "{m}");
        for f in &listed {
            assert!(all.contains(f), "{m} lists {f}, which is missing");
        }
        if clean {
            let present: Vec<&String> = all
                .iter()
                .filter(|k| k.starts_with(dir) && !k.ends_with("/_SUCCESS"))
                .collect();
            assert_eq!(present.len(), listed.len(), "{dir} holds unlisted files");
        }
    }
    manifests.len()
}

#[tokio::test]
async fn full_run_to_s3_publishes_what_a_local_run_does() {
    let Some(moto) = start_moto() else { return };
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
    let Some(moto) = start_moto() else { return };
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
    let Some(moto) = start_moto() else { return };
    let store = moto.bucket("locked").await;
    let holder = serde_json::json!({
        "run_id": "20261122T000000Z-nightly1", "pid": 4242,
        "host": "scheduler-7", "started_at": "2026-11-22T00:00:00Z"
    });
    store
        .put(
            &ObjectPath::from("lake/_lock"),
            PutPayload::from(holder.to_string().into_bytes()),
        )
        .await
        .unwrap();
    let o = moto
        .run(&[
            "run",
            "--output",
            "s3://locked/lake",
            "--select",
            "bronze_orders",
        ])
        .await;
    assert_eq!(o.status.code(), Some(4), "exit code for a held lock");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("20261122T000000Z-nightly1") && stderr.contains("scheduler-7"),
        "{stderr}"
    );
    // Nothing was published and the other run's lock is untouched.
    assert_eq!(keys(&store, "lake").await, ["lake/_lock"]);
}

#[tokio::test]
async fn input_on_s3_is_ingested_like_a_local_folder() {
    let Some(moto) = start_moto() else { return };
    let store = moto.bucket("inbox").await;
    let sample = project_root().join("datasets");
    for (relative, bytes) in crate::common::snapshot(&sample) {
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
