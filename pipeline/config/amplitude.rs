//! `[amplitude]` in medallion.toml: where and how `medallion fetch amplitude`
//! calls the API, and the experiments it fetches by default.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `[amplitude]` in medallion.toml.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AmplitudeConfig {
    /// Dashboard REST API base URL; env `MEDALLION_AMPLITUDE_API_URL`.
    pub api_url: String,
    /// Experiment Management API base URL; env `MEDALLION_EXPERIMENT_API_URL`.
    pub experiment_api_url: String,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Per-request timeout in seconds.
    pub timeout_seconds: u64,
    /// First backoff delay in milliseconds, doubled per retry (with jitter).
    pub backoff_initial_ms: u64,
    /// Longest single wait between attempts, in seconds.
    pub backoff_max_seconds: u64,
    /// Largest response body read, in MiB; a bigger one fails the request.
    pub max_response_mb: u64,
    /// Most pages of the experiment list followed (`nextCursor`).
    pub max_pages: u32,
    /// Funnel conversion window `cs` in seconds.
    pub conversion_window_seconds: u64,
    /// Values of the user property `device_type` that make a device `mobile`.
    pub mobile_device_types: Vec<String>,
    /// Language per culture for the `culture` event property (`es` otherwise).
    pub culture_languages: std::collections::BTreeMap<String, String>,
    /// Experiments fetched when no `--experiment` is given.
    pub experiments: Vec<ExperimentConfig>,
}

impl Default for AmplitudeConfig {
    fn default() -> Self {
        AmplitudeConfig {
            api_url: "https://amplitude.com".into(),
            experiment_api_url: "https://experiment.amplitude.com".into(),
            max_in_flight: 2,
            max_attempts: 6,
            timeout_seconds: 300,
            backoff_initial_ms: 1000,
            backoff_max_seconds: 120,
            max_response_mb: 64,
            max_pages: 100,
            conversion_window_seconds: 1800,
            mobile_device_types: vec!["Android".into(), "Apple iPhone".into()],
            culture_languages: [("BR", "pt"), ("US", "en")]
                .into_iter()
                .map(|(a, b)| (a.into(), b.into()))
                .collect(),
            experiments: Vec::new(),
        }
    }
}

/// One `[[amplitude.experiments]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub id: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Funnel steps, in order.
    pub events: Vec<String>,
    #[serde(default = "default_variants")]
    pub variants: Vec<String>,
    /// Expected traffic share of each variant, in the order of `variants`,
    /// for the sample ratio mismatch test; equal shares when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<Vec<f64>>,
    #[serde(default = "all")]
    pub device: String,
    #[serde(default = "all")]
    pub culture: String,
}

fn default_variants() -> Vec<String> {
    vec!["control".into(), "treatment".into()]
}

fn all() -> String {
    "All".into()
}

impl AmplitudeConfig {
    pub fn validate(&self) -> Result<()> {
        if self.max_in_flight == 0 || self.max_in_flight > 5 {
            return Err(Error::Config("amplitude.max_in_flight must be within 1..=5 (Amplitude allows 5 concurrent queries)".into()));
        }
        if self.max_attempts == 0 || self.timeout_seconds == 0 {
            return Err(Error::Config(
                "amplitude.max_attempts and timeout_seconds must be > 0".into(),
            ));
        }
        if self.max_response_mb == 0 || self.max_pages == 0 {
            return Err(Error::Config(
                "amplitude.max_response_mb and max_pages must be > 0".into(),
            ));
        }
        for e in &self.experiments {
            e.validate()?;
        }
        Ok(())
    }
}

impl ExperimentConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(format!("experiment `{}`: {m}", self.id)));
        if self.id.trim().is_empty() {
            return Err(Error::Config("an experiment needs an id".into()));
        }
        if self.end < self.start {
            return bad("end is before start");
        }
        if self.events.is_empty() {
            return bad("needs at least one event (funnel step)");
        }
        if self.variants.is_empty() {
            return bad("needs at least one variant");
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = self.variants.iter().find(|v| !seen.insert(v.as_str())) {
            return bad(&format!("variant `{twice}` is listed twice"));
        }
        if let Some(shares) = &self.shares {
            if shares.len() != self.variants.len() {
                return bad(&format!(
                    "has {} shares for {} variants; give one share per variant, in the same order",
                    shares.len(),
                    self.variants.len()
                ));
            }
            if !shares.iter().all(|s| s.is_finite() && *s > 0.0) {
                return bad("shares must be positive numbers");
            }
        }
        if !["all", "mobile", "desktop"].contains(&self.device.to_ascii_lowercase().as_str()) {
            return bad("device must be All, mobile or desktop");
        }
        Ok(())
    }
}
