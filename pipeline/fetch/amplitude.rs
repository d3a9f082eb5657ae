//! `medallion fetch amplitude`: funnel queries against Amplitude's Dashboard
//! REST API, written as envelopes (docs/models.md §1.3, §1.4).
//!
//! Polite by construction: at most `max_in_flight` requests at once (Amplitude
//! allows 5 concurrent queries per project and a cost budget per hour),
//! retries of 429, 5xx, timeouts and connection errors with exponential
//! backoff, jitter and `Retry-After`, a bounded number of attempts, and a
//! generous timeout because throttling can look like a hung request. 400, 401
//! and 403 fail at once with Amplitude's message and what to fix. Hostile or
//! broken servers are bounded too: bodies are read up to `max_response_mb`,
//! redirects are followed at most 5 times and not retried, the experiment
//! list stops at `max_pages` or a cursor it has seen. The keys are handed
//! only to reqwest's auth; every text that came from the server or the
//! network is scrubbed of the keys and of any `Basic`/`Bearer` token
//! before it reaches a log or an error. Envelopes are written through a
//! temporary file and a rename, under names that must be unique.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{SecondsFormat, Utc};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

pub use super::query::FunnelQuery;
pub use crate::config::amplitude::{AmplitudeConfig, ExperimentConfig};

/// Credentials, from the environment only.
#[derive(Clone)]
pub struct Credentials {
    pub api_key: String,
    secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key)
            .field("secret_key", &"***")
            .finish()
    }
}

impl Credentials {
    pub fn new(api_key: String, secret_key: String) -> Self {
        Credentials {
            api_key,
            secret_key,
        }
    }

    /// `AMPLITUDE_API_KEY` and `AMPLITUDE_SECRET_KEY`.
    pub fn from_env() -> Result<Self> {
        let get = |k: &str| {
            std::env::var(k).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::Config(format!("{k} is not set: export the project's API key and secret key (Amplitude → Settings → Projects → API keys)"))
            })
        };
        Ok(Credentials::new(
            get("AMPLITUDE_API_KEY")?,
            get("AMPLITUDE_SECRET_KEY")?,
        ))
    }
}

/// The HTTP client with its politeness settings.
pub struct Client {
    http: reqwest::Client,
    cfg: AmplitudeConfig,
    credentials: Credentials,
    in_flight: Arc<Semaphore>,
}

/// Redirects followed per request.
const MAX_REDIRECTS: usize = 5;

/// Why one attempt did not succeed.
enum Attempt {
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Fatal(Error),
}

impl Client {
    pub fn new(cfg: AmplitudeConfig, credentials: Credentials) -> Result<Client> {
        cfg.validate()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_seconds))
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("medallion/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            in_flight: Arc::new(Semaphore::new(cfg.max_in_flight)),
            http,
            cfg,
            credentials,
        })
    }

    /// Run one funnel query (with retries) and return the response body.
    pub async fn funnel(&self, query: &FunnelQuery) -> Result<Value> {
        let url = format!("{}/api/2/funnels", self.cfg.api_url.trim_end_matches('/'));
        let params = query.params(&self.cfg);
        let what = format!("funnel {} / {}", query.experiment_id, query.variant);
        self.get_json(&what, &[], || {
            self.http.get(&url).query(&params).basic_auth(
                &self.credentials.api_key,
                Some(&self.credentials.secret_key),
            )
        })
        .await
    }

    /// Every experiment of the project, following `nextCursor` pages.
    pub async fn list_experiments(&self, management_key: &str) -> Result<Vec<Value>> {
        let url = format!(
            "{}/api/1/experiments",
            self.cfg.experiment_api_url.trim_end_matches('/')
        );
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        let secrets = [management_key];
        for page_number in 1.. {
            if page_number > self.cfg.max_pages {
                return Err(Error::Input(format!(
                    "Amplitude experiment list: still more pages after {} (amplitude.max_pages); raise the setting if the project really has that many",
                    self.cfg.max_pages
                )));
            }
            let page = self
                .get_json("experiment list", &secrets, || {
                    let mut req = self
                        .http
                        .get(&url)
                        .bearer_auth(management_key)
                        .query(&[("limit", "1000")]);
                    if let Some(c) = &cursor {
                        req = req.query(&[("cursor", c)]);
                    }
                    req
                })
                .await?;
            if let Some(items) = page.get("experiments").and_then(Value::as_array) {
                all.extend(items.iter().cloned());
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => {
                    if !seen.insert(next.to_string()) {
                        return Err(Error::Input(format!(
                            "Amplitude experiment list: page {page_number} repeats the cursor `{}` of an earlier page; the API is looping, stopped",
                            self.scrub(next, &secrets)
                        )));
                    }
                    cursor = Some(next.to_string());
                }
                _ => break,
            }
        }
        Ok(all)
    }

    async fn get_json(
        &self,
        what: &str,
        secrets: &[&str],
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = {
                // The permit is held for the request only, not while backing off.
                let _permit = self
                    .in_flight
                    .acquire()
                    .await
                    .map_err(|_| Error::Input("HTTP client closed".into()))?;
                self.try_once(what, secrets, build()).await
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry { reason, after }) => {
                    if attempt >= self.cfg.max_attempts {
                        return Err(Error::Input(format!(
                            "Amplitude {what}: giving up after {attempt} attempts; last: {reason}"
                        )));
                    }
                    let wait = after
                        .unwrap_or_else(|| self.backoff(attempt))
                        .min(Duration::from_secs(self.cfg.backoff_max_seconds));
                    tracing::warn!(request = what, attempt, wait_ms = wait.as_millis() as u64, reason = %reason, "Amplitude request will be retried.");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Exponential backoff with full jitter: uniform in [d/2, d], d = initial · 2^(attempt−1).
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .cfg
            .backoff_initial_ms
            .saturating_mul(1u64 << (attempt - 1).min(16));
        let ms = rand::rng().random_range(base / 2..=base.max(1));
        Duration::from_millis(ms)
    }

    /// `text` without the keys, their Basic token or any `Basic`/`Bearer`
    /// credential: whatever a server or proxy echoes back.
    fn scrub(&self, text: &str, extra: &[&str]) -> String {
        let c = &self.credentials;
        let basic = BASE64.encode(format!("{}:{}", c.api_key, c.secret_key));
        let mut out = scrub_tokens(text);
        let secrets = [c.api_key.as_str(), c.secret_key.as_str(), basic.as_str()];
        for secret in secrets.iter().chain(extra).filter(|s| s.len() >= 4) {
            out = out.replace(secret, "***");
        }
        out
    }

    async fn try_once(
        &self,
        what: &str,
        secrets: &[&str],
        request: reqwest::RequestBuilder,
    ) -> std::result::Result<Value, Attempt> {
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_redirect() => {
                return Err(Attempt::Fatal(Error::Input(format!(
                    "Amplitude {what}: more than {MAX_REDIRECTS} redirects ({}); check amplitude.api_url / experiment_api_url",
                    self.scrub(&redact(&e.without_url().to_string()), secrets)
                ))));
            }
            Err(e) => {
                // Timeouts and connection errors are worth another try; say which, never the URL's credentials.
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                return Err(Attempt::Retry {
                    reason: format!(
                        "{kind}: {}",
                        self.scrub(&redact(&e.without_url().to_string()), secrets)
                    ),
                    after: None,
                });
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let limit = self.cfg.max_response_mb.saturating_mul(1 << 20);
        let body = match read_capped(response, limit).await {
            Ok(body) => body,
            Err(Capped::TooBig) => {
                return Err(Attempt::Fatal(Error::Input(format!(
                    "Amplitude {what}: the response is larger than {} MiB (amplitude.max_response_mb); narrow the query or raise the setting",
                    self.cfg.max_response_mb
                ))));
            }
            Err(Capped::Failed(e)) => {
                return Err(Attempt::Retry {
                    reason: format!(
                        "reading the response failed: {}",
                        self.scrub(&redact(&e.without_url().to_string()), secrets)
                    ),
                    after: None,
                });
            }
        };
        if status.is_success() {
            return serde_json::from_str(&body).map_err(|e| Attempt::Retry {
                reason: format!("response is not JSON: {e}"),
                after: None,
            });
        }
        let detail = self.scrub(&amplitude_error(&body), secrets);
        match status {
            StatusCode::TOO_MANY_REQUESTS => Err(Attempt::Retry {
                reason: format!("429 rate limited: {detail}"),
                after: retry_after,
            }),
            s if s.is_server_error() => Err(Attempt::Retry {
                reason: format!("{s}: {detail}"),
                after: retry_after,
            }),
            StatusCode::UNAUTHORIZED => Err(Attempt::Fatal(Error::Input(format!(
                "Amplitude {what}: 401 unauthorized ({detail}); check AMPLITUDE_API_KEY and AMPLITUDE_SECRET_KEY belong to the same project and that the URL matches its data residency"
            )))),
            StatusCode::FORBIDDEN => Err(Attempt::Fatal(Error::Input(format!(
                "Amplitude {what}: 403 forbidden ({detail}); the key lacks access to this project or API"
            )))),
            StatusCode::BAD_REQUEST => Err(Attempt::Fatal(Error::Input(format!(
                "Amplitude {what}: 400 bad request ({detail}); check the event names, the dates and the device/culture filters"
            )))),
            s => Err(Attempt::Fatal(Error::Input(format!(
                "Amplitude {what}: {s} ({detail})"
            )))),
        }
    }
}

/// Amplitude's `{"error": {"message", "metadata": {"details"}}}`, or the raw body.
fn amplitude_error(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    match err {
        Some(e) => {
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            match e.pointer("/metadata/details") {
                Some(d) => format!(
                    "{message}: {}",
                    d.as_str().map_or_else(|| d.to_string(), str::to_string)
                ),
                None => message.to_string(),
            }
        }
        None => body.chars().take(300).collect(),
    }
}

/// Why a body was not read whole.
enum Capped {
    TooBig,
    Failed(reqwest::Error),
}

/// The body as text, read chunk by chunk and abandoned past `limit` bytes
/// (a declared `Content-Length` over it fails before reading).
async fn read_capped(
    mut response: reqwest::Response,
    limit: u64,
) -> std::result::Result<String, Capped> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(Capped::TooBig);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Capped::Failed)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Capped::TooBig);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `text` with the token after every `Basic ` or `Bearer ` (any case)
/// replaced by `***`.
fn scrub_tokens(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let next = ["basic ", "bearer "]
            .iter()
            .filter_map(|w| lower[at..].find(w).map(|i| (at + i, w.len())))
            .min();
        let Some((start, len)) = next else { break };
        let token_start = start + len;
        let token_end = text[token_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '}' | ')'))
            .map_or(text.len(), |i| token_start + i);
        out.push_str(&text[at..token_start]);
        if token_end > token_start {
            out.push_str("***");
        }
        at = token_end.max(token_start);
    }
    out.push_str(&text[at..]);
    out
}

/// Strip anything that looks like `user:password@` from a message.
fn redact(message: &str) -> String {
    match (message.find("://"), message.find('@')) {
        (Some(s), Some(a)) if a > s => format!("{}{}", &message[..s + 3], &message[a + 1..]),
        _ => message.to_string(),
    }
}

/// The envelope of docs/models.md §1.3 around an unmodified response body, fetched now.
pub fn envelope(query: &FunnelQuery, response: Value) -> Value {
    envelope_at(
        query,
        response,
        &Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// The envelope with a given `fetched_at` (the generator's is deterministic).
pub fn envelope_at(query: &FunnelQuery, response: Value, fetched_at: &str) -> Value {
    json!({
        "experiment_id": query.experiment_id,
        "variant": query.variant,
        "device": query.device,
        "culture": query.culture,
        "start": query.start.to_string(),
        "end": query.end.to_string(),
        "events": query.events,
        "fetched_at": fetched_at,
        "response": response,
    })
}

/// Fetch every query (at most `max_in_flight` at once) and write one
/// envelope per query into `out`. Returns the files written.
pub async fn fetch_all(
    client: Arc<Client>,
    queries: Vec<FunnelQuery>,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let mut names: std::collections::BTreeMap<String, &FunnelQuery> = Default::default();
    for query in &queries {
        if let Some(other) = names.insert(query.file_name(), query) {
            let what = if other == query {
                format!(
                    "variant `{}` of experiment `{}` is asked for twice",
                    query.variant, query.experiment_id
                )
            } else {
                format!(
                    "`{}`/`{}` and `{}`/`{}` would both be written to {}",
                    other.experiment_id,
                    other.variant,
                    query.experiment_id,
                    query.variant,
                    query.file_name()
                )
            };
            return Err(Error::Config(format!(
                "fetch amplitude: {what}; give each experiment and variant a distinct name (characters other than letters, digits, `-` and `.` become `_` in file names)"
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io("cannot create output folder", out, e))?;
    let mut tasks = tokio::task::JoinSet::new();
    for query in queries {
        let client = Arc::clone(&client);
        let path = out.join(query.file_name());
        tasks.spawn(async move {
            let body = client.funnel(&query).await?;
            let bytes = serde_json::to_vec_pretty(&envelope(&query, body))?;
            crate::storage::write_atomic(&path, &bytes)?;
            tracing::info!(file = %path.display(), "Envelope written.");
            Ok::<PathBuf, Error>(path)
        });
    }
    let mut written = Vec::new();
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        match done? {
            Ok(p) => written.push(p),
            Err(e) => {
                tracing::error!(error = %crate::error::error_chain(&e), "Funnel query failed.");
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn query_parameters_follow_the_original_tool() {
        let cfg = AmplitudeConfig::default();
        let q = FunnelQuery {
            experiment_id: "exp-1".into(),
            variant: "treatment".into(),
            device: "mobile".into(),
            culture: "CL".into(),
            start: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            events: vec!["page_view".into(), "purchase".into()],
        };
        let p = q.params(&cfg);
        let e: Vec<Value> = p
            .iter()
            .filter(|(k, _)| k == "e")
            .map(|(_, v)| serde_json::from_str(v).unwrap())
            .collect();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1]["event_type"], "purchase");
        assert_eq!(
            e[0]["filters"][0]["subprop_value"],
            json!(["es-CL", "es-cl", "es_CL", "es_cl"])
        );
        let s: Value = serde_json::from_str(&p.iter().find(|(k, _)| k == "s").unwrap().1).unwrap();
        assert_eq!(
            s[0],
            json!({"prop": "gp:[Experiment] exp-1", "op": "is", "values": ["treatment"]})
        );
        assert_eq!(
            s[1],
            json!({"prop": "device_type", "op": "is", "values": ["Android", "Apple iPhone"]})
        );
        assert!(
            p.contains(&("start".into(), "20261001".into()))
                && p.contains(&("cs".into(), "1800".into()))
        );
        assert_eq!(
            q.file_name(),
            "exp-1__treatment__mobile__CL__20261001_20261031.json"
        );
    }

    #[test]
    fn basic_and_bearer_tokens_are_scrubbed() {
        assert_eq!(
            scrub_tokens("echo: Authorization: Basic a2V5OnNlY3JldA== and bearer xyz, ok"),
            "echo: Authorization: Basic *** and bearer ***, ok"
        );
        assert_eq!(
            scrub_tokens("{\"auth\":\"Basic abc\"}"),
            "{\"auth\":\"Basic ***\"}"
        );
        assert_eq!(scrub_tokens("nothing here"), "nothing here");
        let client = Client::new(
            AmplitudeConfig::default(),
            Credentials::new("the-key".into(), "the-secret".into()),
        )
        .unwrap();
        let basic = BASE64.encode("the-key:the-secret");
        let text = format!("proxy said {basic} for the-key / the-secret and mgmt-token");
        let clean = client.scrub(&text, &["mgmt-token"]);
        for secret in ["the-key", "the-secret", basic.as_str(), "mgmt-token"] {
            assert!(!clean.contains(secret), "{clean}");
        }
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let c = Credentials::new("key".into(), "s3cr3t".into());
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(
            redact("error sending request for url (https://key:s3cr3t@host/x)"),
            "error sending request for url (https://host/x)"
        );
    }
}
