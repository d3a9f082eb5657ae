//! A real S3-compatible server for the tests: moto's server mode from PyPI
//! on 127.0.0.1, one per test, plus small object-store helpers. The
//! binary runs as a scheduler would run it, with the standard AWS
//! environment variables pointing it at the server.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::project_root;

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

/// `moto_server`: `$MOTO_SERVER`, or on `PATH`, or installed once per
/// build folder into a virtualenv of its own (`python3 -m venv`, then pip
/// from PyPI). Fails, saying how to get it, when none of these works:
/// these tests never pass by skipping.
fn moto_binary() -> PathBuf {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = BINARY.get_or_init(|| {
        if let Ok(p) = std::env::var("MOTO_SERVER") {
            return Ok(PathBuf::from(p));
        }
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("moto_server"))
                .find(|p| p.is_file())
        });
        on_path.map_or_else(install_moto, Ok)
    });
    match found {
        Ok(binary) => binary.clone(),
        Err(why) => panic!(
            "the S3 tests need moto's server and could not install it ({why}); \
             run `python3 -m venv /tmp/venv && /tmp/venv/bin/pip install 'moto[server]'` \
             and set MOTO_SERVER=/tmp/venv/bin/moto_server"
        ),
    }
}

/// Install moto into `<target>/tmp/moto-venv` (kept between test runs).
fn install_moto() -> Result<PathBuf, String> {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
    let binary = venv.join("bin/moto_server");
    if binary.is_file() {
        return Ok(binary);
    }
    let status = |mut c: Command| {
        c.status()
            .map_err(|e| format!("{c:?}: {e}"))
            .and_then(|s| s.success().then_some(()).ok_or(format!("{c:?}: {s}")))
    };
    let mut venv_cmd = Command::new("python3");
    venv_cmd.args(["-m", "venv"]).arg(&venv);
    status(venv_cmd)?;
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "moto[server]",
    ]);
    status(pip)?;
    Ok(binary)
}

/// A moto server of this test's own on a free port.
pub fn start_moto() -> Moto {
    let binary = moto_binary();
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
    moto
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
