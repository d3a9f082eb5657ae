//! One Amplitude funnel query (an experiment's variant with its device and
//! culture filters): the parameters of `GET /api/2/funnels` as the original
//! dashboard tool sent them, and the envelope's file name.

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::config::amplitude::{AmplitudeConfig, ExperimentConfig};

/// One funnel query: an experiment's variant with device and culture.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelQuery {
    pub experiment_id: String,
    pub variant: String,
    pub device: String,
    pub culture: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub events: Vec<String>,
}

impl FunnelQuery {
    /// Every (experiment, variant) query of a config entry.
    pub fn for_experiment(e: &ExperimentConfig) -> Vec<FunnelQuery> {
        e.variants
            .iter()
            .map(|v| FunnelQuery {
                experiment_id: e.id.clone(),
                variant: v.clone(),
                device: e.device.clone(),
                culture: e.culture.clone(),
                start: e.start,
                end: e.end,
                events: e.events.clone(),
            })
            .collect()
    }

    /// The query parameters of `GET /api/2/funnels`, in order.
    pub fn params(&self, cfg: &AmplitudeConfig) -> Vec<(String, String)> {
        let mut step_filters = Vec::new();
        if !self.culture.eq_ignore_ascii_case("all") {
            let country = self.culture.to_ascii_uppercase();
            let lang = cfg
                .culture_languages
                .get(&country)
                .map_or("es", String::as_str);
            let lower = country.to_ascii_lowercase();
            step_filters.push(json!({
                "subprop_type": "event",
                "subprop_key": "culture",
                "subprop_op": "is",
                "subprop_value": [
                    format!("{lang}-{country}"), format!("{lang}-{lower}"),
                    format!("{lang}_{country}"), format!("{lang}_{lower}")
                ],
            }));
        }
        let mut params: Vec<(String, String)> = self
            .events
            .iter()
            .map(|event| {
                (
                    "e".to_string(),
                    json!({"event_type": event, "filters": step_filters}).to_string(),
                )
            })
            .collect();
        let mut segment = vec![json!({
            "prop": format!("gp:[Experiment] {}", self.experiment_id),
            "op": "is",
            "values": [self.variant],
        })];
        match self.device.to_ascii_lowercase().as_str() {
            "mobile" => segment.push(
                json!({"prop": "device_type", "op": "is", "values": cfg.mobile_device_types}),
            ),
            "desktop" => segment.push(
                json!({"prop": "device_type", "op": "is not", "values": cfg.mobile_device_types}),
            ),
            _ => {}
        }
        params.extend([
            ("start".to_string(), self.start.format("%Y%m%d").to_string()),
            ("end".to_string(), self.end.format("%Y%m%d").to_string()),
            ("s".to_string(), Value::Array(segment).to_string()),
            ("cs".to_string(), cfg.conversion_window_seconds.to_string()),
            ("i".to_string(), "1".to_string()),
        ]);
        params
    }

    /// `<experiment>__<variant>__<device>__<culture>__<start>_<end>.json`, filesystem-safe.
    pub fn file_name(&self) -> String {
        let clean = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        };
        format!(
            "{}__{}__{}__{}__{}_{}.json",
            clean(&self.experiment_id),
            clean(&self.variant),
            clean(&self.device),
            clean(&self.culture),
            self.start.format("%Y%m%d"),
            self.end.format("%Y%m%d")
        )
    }
}
