//! `medallion fetch amplitude` (docs/models.md §1.4) against a local HTTP server
//! (wiremock) started by each test: retries on 429 with `Retry-After`, on 500
//! and on a timeout; 401 fails after one request; the query parameters are
//! decoded and checked; the secret key never appears in stdout, stderr (at
//! trace level) or the files written; a fetch killed mid-way leaves only
//! whole envelopes. The real binary runs, as a scheduler would run it.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "sEcReT-4f9a-never-print-me";

/// A funnel response as Amplitude sends it, unknown keys included.
fn funnel_body(first_step_users: i64) -> Value {
    json!({
        "data": [{
            "events": ["page_view", "add_to_cart", "purchase"],
            "dayFunnels": {
                "xValues": ["2026-10-01", "2026-10-02", "2026-10-03"],
                "formattedXValues": ["Oct 1", "Oct 2", "Oct 3"],
                "series": [[20, 10, 2], [15, 6, 1], [12, 5, 2]]
            },
            "cumulativeRaw": [first_step_users, 20, 5],
            "stepByStep": [1.0, 0.5, 0.25],
            "medianTransTimes": [0, 40000, 81000],
            "numSeries": 1
        }],
        "wasCached": true,
        "novaCost": 2100
    })
}

/// `[amplitude]` settings that keep the tests quick: short backoff and timeout.
fn write_config(dir: &Path, timeout_seconds: u64) -> std::path::PathBuf {
    let path = dir.join("medallion.toml");
    std::fs::write(
        &path,
        format!(
            "[amplitude]\nmax_attempts = 4\ntimeout_seconds = {timeout_seconds}\n\
             backoff_initial_ms = 20\nbackoff_max_seconds = 5\n"
        ),
    )
    .unwrap();
    path
}

fn fetch_command(server: &MockServer, dir: &Path, variants: &str, timeout_seconds: u64) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medallion"));
    cmd.args(["-vv", "fetch", "amplitude", "--config"])
        .arg(write_config(dir, timeout_seconds))
        .args([
            "--experiment",
            "checkout-v2",
            "--start",
            "2026-10-01",
            "--end",
            "2026-10-03",
            "--events",
            "page_view,add_to_cart,purchase",
            "--variants",
            variants,
            "--device",
            "mobile",
            "--culture",
            "CL",
            "--api-url",
            &server.uri(),
            "--out",
        ])
        .arg(dir.join("funnels"))
        .env("AMPLITUDE_API_KEY", "key-123")
        .env("AMPLITUDE_SECRET_KEY", SECRET)
        .env_remove("MEDALLION_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Run the fetch to completion off the test's runtime (the mock server lives on it).
async fn fetch(server: &MockServer, dir: &Path, variants: &str, timeout_seconds: u64) -> Output {
    let mut cmd = fetch_command(server, dir, variants, timeout_seconds);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Every byte the fetch produced: stdout, stderr and the files it wrote.
fn assert_secret_absent(output: &Output, dir: &Path) {
    let mut everything = String::from_utf8_lossy(&output.stdout).into_owned();
    everything.push_str(&String::from_utf8_lossy(&output.stderr));
    for (_, bytes) in crate::support::snapshot(&dir.join("funnels")) {
        everything.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert!(!everything.is_empty());
    assert!(
        !everything.contains(SECRET),
        "the secret key leaked into the output"
    );
}

fn envelope_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("funnels"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn ok_response(first_step_users: i64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(funnel_body(first_step_users))
}

/// A matcher on the variant inside the segment parameter `s`.
fn variant(name: &'static str) -> impl Fn(&Request) -> bool + Send + Sync {
    move |r: &Request| {
        r.url
            .query_pairs()
            .any(|(k, v)| k == "s" && v.contains(&format!("[\"{name}\"]")))
    }
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn rate_limited_request_waits_for_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/2/funnels"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_json(
            json!({"error": {"http_code": 429, "type": "rate_limited", "message": "Too many concurrent requests"}}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/2/funnels"))
        .respond_with(ok_response(47))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = fetch(&server, dir.path(), "treatment", 10).await;
    assert_success(&output);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("429 rate limited"));

    // The envelope wraps the unmodified response and is ingestible.
    let name = "checkout-v2__treatment__mobile__CL__20261001_20261003.json";
    assert_eq!(envelope_files(dir.path()), [name]);
    let bytes = std::fs::read(dir.path().join("funnels").join(name)).unwrap();
    let envelope: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(envelope["response"], funnel_body(47));
    assert_eq!(envelope["variant"], "treatment");
    assert_eq!(envelope["start"], "2026-10-01");
    let parsed = medallion::ingest::envelope::parse_envelope(&bytes).unwrap();
    assert_eq!(parsed.funnels[0].cumulative, [47, 20, 5]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        dir.path().join("funnels").join(name).display().to_string()
    );
    assert_secret_absent(&output, dir.path());
}

#[tokio::test]
async fn query_parameters_decode_to_the_spec_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/2/funnels"))
        .respond_with(ok_response(40))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let output = fetch(&server, dir.path(), "control,treatment", 10).await;
    assert_success(&output);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "one request per variant");
    let mut variants = Vec::new();
    for r in &requests {
        let pairs: Vec<(String, String)> = r.url.query_pairs().into_owned().collect();
        let get = |k: &str| -> Vec<&str> {
            pairs
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("start"), ["20261001"]);
        assert_eq!(get("end"), ["20261003"]);
        assert_eq!(get("cs"), ["1800"]);
        assert_eq!(get("i"), ["1"]);
        let culture = json!([{
            "subprop_type": "event", "subprop_key": "culture", "subprop_op": "is",
            "subprop_value": ["es-CL", "es-cl", "es_CL", "es_cl"]
        }]);
        let e: Vec<Value> = get("e")
            .iter()
            .map(|v| serde_json::from_str(v).unwrap())
            .collect();
        assert_eq!(
            e,
            ["page_view", "add_to_cart", "purchase"]
                .map(|step| json!({"event_type": step, "filters": culture}))
        );
        let s: Value = serde_json::from_str(get("s")[0]).unwrap();
        let segment = s.as_array().unwrap();
        assert_eq!(segment.len(), 2);
        assert_eq!(segment[0]["prop"], "gp:[Experiment] checkout-v2");
        assert_eq!(segment[0]["op"], "is");
        variants.push(segment[0]["values"][0].as_str().unwrap().to_string());
        assert_eq!(
            segment[1],
            json!({"prop": "device_type", "op": "is", "values": ["Android", "Apple iPhone"]})
        );
        let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(auth.starts_with("Basic "), "HTTP Basic auth");
    }
    variants.sort();
    assert_eq!(variants, ["control", "treatment"]);
    assert_eq!(envelope_files(dir.path()).len(), 2);
    assert_secret_absent(&output, dir.path());
}

#[tokio::test]
async fn server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_response(40))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let output = fetch(&server, dir.path(), "control", 10).await;
    assert_success(&output);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("500"));
    assert_eq!(envelope_files(dir.path()).len(), 1);
    assert_secret_absent(&output, dir.path());
}

#[tokio::test]
async fn timed_out_request_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok_response(999).set_delay(Duration::from_secs(5)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_response(40))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let output = fetch(&server, dir.path(), "control", 1).await;
    assert_success(&output);
    assert!(String::from_utf8_lossy(&output.stderr).contains("timed out"));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    // The slow first answer was abandoned: the envelope holds the retry's.
    let name = &envelope_files(dir.path())[0];
    let envelope: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("funnels").join(name)).unwrap())
            .unwrap();
    assert_eq!(envelope["response"]["data"][0]["cumulativeRaw"][0], 40);
    assert_secret_absent(&output, dir.path());
}

#[tokio::test]
async fn unauthorized_fails_after_one_request_with_what_to_fix() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"http_code": 401, "type": "unauthorized", "message": "Invalid API key",
                      "metadata": {"details": "no project for this api key"}}
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let output = fetch(&server, dir.path(), "control", 10).await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "401 is an input/config error"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "no retry on 401"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "401",
        "Invalid API key: no project for this api key",
        "AMPLITUDE_API_KEY and AMPLITUDE_SECRET_KEY",
    ] {
        assert!(
            stderr.contains(needle),
            "`{needle}` missing from:\n{stderr}"
        );
    }
    assert!(envelope_files(dir.path()).is_empty());
    assert_secret_absent(&output, dir.path());
}

#[tokio::test]
async fn killed_fetch_leaves_only_whole_envelopes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(variant("control"))
        .respond_with(ok_response(40))
        .mount(&server)
        .await;
    // The treatment query hangs until the process is killed.
    Mock::given(method("GET"))
        .and(variant("treatment"))
        .respond_with(ok_response(41).set_delay(Duration::from_secs(120)))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = fetch_command(&server, dir.path(), "control,treatment", 300)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let control = "checkout-v2__control__mobile__CL__20261001_20261003.json";
    let deadline = Instant::now() + Duration::from_secs(30);
    while !envelope_files(dir.path()).contains(&control.to_string()) {
        assert!(
            Instant::now() < deadline,
            "the control envelope never appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Only the finished envelope is there, whole; no temporary file is left
    // that a reader could take for an envelope.
    assert_eq!(envelope_files(dir.path()), [control]);
    let bytes = std::fs::read(dir.path().join("funnels").join(control)).unwrap();
    medallion::ingest::envelope::parse_envelope(&bytes).unwrap();
}

/// Run `medallion fetch amplitude` with extra arguments and environment.
async fn fetch_with(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medallion"));
        cmd.args(&args)
            .env("AMPLITUDE_API_KEY", "key-123")
            .env("AMPLITUDE_SECRET_KEY", SECRET)
            .env_remove("MEDALLION_LOG")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn an_experiment_list_that_repeats_its_cursor_stops_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/1/experiments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"experiments": [{"key": "a", "state": "running", "name": "A"}], "nextCursor": "again"}),
        ))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let args = vec![
        "fetch".into(),
        "amplitude".into(),
        "--config".into(),
        write_config(dir.path(), 10).display().to_string(),
        "--list-experiments".into(),
        "--experiment-api-url".into(),
        server.uri(),
    ];
    let output = fetch_with(
        args,
        vec![("AMPLITUDE_MANAGEMENT_KEY", "mgmt-token-77".into())],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("repeats the cursor"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "page 1, then page 2 repeats"
    );
    assert!(!stderr(&output).contains("mgmt-token-77"));
}

#[tokio::test]
async fn an_oversized_response_fails_without_being_buffered() {
    let server = MockServer::start().await;
    // 3 MiB of JSON against a 1 MiB limit.
    let big = format!("{{\"data\": \"{}\"}}", "x".repeat(3 << 20));
    Mock::given(method("GET"))
        .and(path("/api/2/funnels"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(big, "application/json"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = fetch_command(&server, dir.path(), "treatment", 10);
    std::fs::write(
        dir.path().join("medallion.toml"),
        "[amplitude]\nmax_attempts = 4\nbackoff_initial_ms = 20\nmax_response_mb = 1\n",
    )
    .unwrap();
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("larger than 1 MiB"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "not retried"
    );
    assert!(envelope_files(dir.path()).is_empty());
}

#[tokio::test]
async fn a_redirect_loop_is_followed_a_few_times_and_not_retried() {
    let server = MockServer::start().await;
    let target = format!("{}/api/2/funnels", server.uri());
    Mock::given(method("GET"))
        .and(path("/api/2/funnels"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", target.as_str()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let output = fetch(&server, dir.path(), "treatment", 10).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("redirects"), "{}", stderr(&output));
    let requests = server.received_requests().await.unwrap().len();
    assert!(requests <= 6, "{requests} requests for one redirect loop");
}

#[tokio::test]
async fn a_server_echoing_the_credentials_never_gets_them_printed() {
    use base64::Engine as _;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/2/funnels"))
        .respond_with(|r: &Request| {
            let auth = r
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let token = auth.trim_start_matches("Basic ");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            ResponseTemplate::new(502).set_body_string(format!(
                "proxy error; request had Authorization: {auth} ({decoded})"
            ))
        })
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let output = fetch(&server, dir.path(), "treatment", 10).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("key-123:{SECRET}"));
    let text = stderr(&output);
    assert!(
        text.contains("proxy error"),
        "the server's words are kept: {text}"
    );
    for secret in [SECRET, basic.as_str(), "key-123"] {
        assert!(!text.contains(secret), "`{secret}` printed: {text}");
    }
    assert_secret_absent(&output, dir.path());
}

#[tokio::test]
async fn colliding_or_repeated_variant_names_are_refused_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok_response(1))
        .mount(&server)
        .await;
    for (variants, says) in [
        ("a/b,a_b", "would both be written"),
        ("control,control", "twice"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = fetch(&server, dir.path(), variants, 10).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variants}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{variants}: {}",
            stderr(&output)
        );
        assert!(envelope_files(dir.path()).is_empty());
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn sigterm_stops_a_fetch_at_once_with_exit_143() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/2/funnels"))
        .respond_with(ok_response(5).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = fetch_command(&server, dir.path(), "treatment", 120);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while server.received_requests().await.unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no request arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped at once"
    );
    assert!(stderr(&output).contains("cancelled by SIGTERM"));
    assert!(
        envelope_files(dir.path()).is_empty(),
        "nothing half written"
    );
}
