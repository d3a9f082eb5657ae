//! One Amplitude funnel envelope, parsed and checked: the fields read from
//! the wrapped `GET /api/2/funnels` response, every other key ignored. A
//! shape that does not hold gives the reason the envelope is quarantined.

use serde::Deserialize;
use serde_json::Value;

use super::values::{parse_date, parse_timestamp};

/// The envelope fields we read; everything else is ignored.
#[derive(Debug, Deserialize)]
struct Envelope {
    experiment_id: String,
    variant: String,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    culture: Option<String>,
    start: String,
    end: String,
    #[serde(default)]
    events: Vec<Value>,
    #[serde(default)]
    fetched_at: Option<String>,
    response: Response,
}

#[derive(Debug, Deserialize)]
struct Response {
    data: Vec<Funnel>,
    #[serde(default, rename = "prunedResult")]
    pruned_result: Option<bool>,
    #[serde(default, rename = "hitChunkGroupByLimit")]
    hit_chunk_group_by_limit: Option<bool>,
    #[serde(default, rename = "minSampleRate")]
    min_sample_rate: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Funnel {
    #[serde(default)]
    events: Option<Vec<Value>>,
    #[serde(default, rename = "groupValue")]
    group_value: Option<Value>,
    #[serde(rename = "dayFunnels")]
    day_funnels: DayFunnels,
    #[serde(rename = "cumulativeRaw")]
    cumulative_raw: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct DayFunnels {
    #[serde(rename = "xValues")]
    x_values: Vec<String>,
    series: Vec<Vec<Value>>,
}

/// A checked funnel, ready to land.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelRows {
    pub group_value: String,
    pub steps: Vec<String>,
    /// (day, users per step)
    pub days: Vec<(i32, Vec<i64>)>,
    pub cumulative: Vec<i64>,
}

/// A checked envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEnvelope {
    pub experiment_id: String,
    pub variant: String,
    pub device: String,
    pub culture: String,
    pub start: i32,
    pub end: i32,
    pub fetched_at: Option<i64>,
    pub pruned_result: Option<bool>,
    pub hit_chunk_group_by_limit: Option<bool>,
    pub min_sample_rate: Option<f64>,
    pub funnels: Vec<FunnelRows>,
}

impl ParsedEnvelope {
    /// Amplitude says the result is partial or sampled.
    pub fn is_partial(&self) -> bool {
        self.pruned_result == Some(true)
            || self.hit_chunk_group_by_limit == Some(true)
            || self.min_sample_rate.is_some_and(|r| r < 1.0)
    }
}

fn step_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("event_type")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// The largest count a JSON number holds exactly: beyond 2^53 a float has
/// gaps, and such a count is surely damage rather than users.
const MAX_EXACT_COUNT: f64 = 9_007_199_254_740_992.0;

fn count(v: &Value, what: &str) -> std::result::Result<i64, String> {
    if let Some(n) = v.as_u64() {
        // An integer literal: exact, but it must fit the count column.
        return i64::try_from(n)
            .ok()
            .filter(|n| *n <= 1 << 53)
            .ok_or_else(|| format!("{what}: `{v}` is too large to be a user count"));
    }
    match v.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= MAX_EXACT_COUNT => Ok(f as i64),
        Some(f) if f > MAX_EXACT_COUNT => {
            Err(format!("{what}: `{v}` is too large to be a user count"))
        }
        _ => Err(format!("{what}: `{v}` is not a user count")),
    }
}

fn group_text(v: &Option<Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// Parse and check one envelope; `Err` is the quarantine reason.
pub fn parse_envelope(bytes: &[u8]) -> std::result::Result<ParsedEnvelope, String> {
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| format!("not a funnel envelope: {e}"))?;
    let start = parse_date(&env.start).map_err(|e| format!("start: {e}"))?;
    let end = parse_date(&env.end).map_err(|e| format!("end: {e}"))?;
    if end < start {
        return Err(format!("end {} is before start {}", env.end, env.start));
    }
    let fetched_at = match &env.fetched_at {
        Some(t) => Some(parse_timestamp(t).map_err(|e| format!("fetched_at: {e}"))?),
        None => None,
    };
    let envelope_steps: Vec<String> = env.events.iter().filter_map(step_name).collect();
    if env.response.data.is_empty() {
        return Err("response.data holds no funnel".into());
    }
    let mut funnels = Vec::with_capacity(env.response.data.len());
    for (i, f) in env.response.data.iter().enumerate() {
        let at = |m: String| format!("response.data[{i}]: {m}");
        let steps: Vec<String> = match &f.events {
            Some(events) => {
                let names: Vec<String> = events.iter().filter_map(step_name).collect();
                if names.len() != events.len() {
                    return Err(at(
                        "events[] entries must be strings or objects with event_type".into(),
                    ));
                }
                names
            }
            None => envelope_steps.clone(),
        };
        if steps.is_empty() {
            return Err(at("no step names (events[] is empty)".into()));
        }
        let n = steps.len();
        if f.cumulative_raw.len() != n {
            return Err(at(format!(
                "cumulativeRaw has {} values for {n} steps",
                f.cumulative_raw.len()
            )));
        }
        let cumulative = f
            .cumulative_raw
            .iter()
            .map(|v| count(v, "cumulativeRaw"))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(at)?;
        let d = &f.day_funnels;
        if d.x_values.len() != d.series.len() {
            return Err(at(format!(
                "dayFunnels has {} xValues but {} series",
                d.x_values.len(),
                d.series.len()
            )));
        }
        let mut days = Vec::with_capacity(d.x_values.len());
        for (x, row) in d.x_values.iter().zip(&d.series) {
            let day = parse_date(x).map_err(|e| at(format!("dayFunnels.xValues: {e}")))?;
            if row.len() != n {
                return Err(at(format!(
                    "dayFunnels.series for {x} has {} values for {n} steps",
                    row.len()
                )));
            }
            let users = row
                .iter()
                .map(|v| count(v, "dayFunnels.series"))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(at)?;
            days.push((day, users));
        }
        funnels.push(FunnelRows {
            group_value: group_text(&f.group_value),
            steps,
            days,
            cumulative,
        });
    }
    Ok(ParsedEnvelope {
        experiment_id: env.experiment_id,
        variant: env.variant,
        device: env.device.unwrap_or_else(|| "All".into()),
        culture: env.culture.unwrap_or_else(|| "All".into()),
        start,
        end,
        fetched_at,
        pruned_result: env.response.pruned_result,
        hit_chunk_group_by_limit: env.response.hit_chunk_group_by_limit,
        min_sample_rate: env.response.min_sample_rate,
        funnels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
      "experiment_id": "exp-1", "variant": "treatment", "start": "2026-10-01", "end": "2026-10-02",
      "events": ["a", "b"], "fetched_at": "2026-11-01T02:00:03Z", "somethingNew": 1,
      "response": {"wasCached": true, "minSampleRate": 0.5, "data": [
        {"events": [{"event_type": "a"}, "b"], "groupValue": "(none)", "stepByStep": [1, 0.5],
         "dayFunnels": {"xValues": ["2026-10-01", "2026-10-02"], "formattedXValues": ["Oct 1", "Oct 2"],
                        "series": [[10, 4], [6, 3]]},
         "cumulativeRaw": [14, 6], "medianTransTimes": [0, 12]}
      ]}}"#;

    #[test]
    fn parses_strings_objects_groups_and_ignores_unknown_keys() {
        let env = parse_envelope(GOOD.as_bytes()).unwrap();
        assert_eq!(env.device, "All");
        assert!(env.is_partial(), "minSampleRate 0.5");
        let f = &env.funnels[0];
        assert_eq!(f.steps, ["a", "b"]);
        assert_eq!(f.group_value, "(none)");
        assert_eq!(f.days.len(), 2);
        assert_eq!(f.days[1].1, vec![6, 3]);
        assert_eq!(f.cumulative, vec![14, 6]);
    }

    #[test]
    fn malformed_shapes_give_reasons() {
        let bad = GOOD.replace("\"cumulativeRaw\": [14, 6]", "\"cumulativeRaw\": [14]");
        assert!(
            parse_envelope(bad.as_bytes())
                .unwrap_err()
                .contains("cumulativeRaw has 1 values for 2 steps")
        );
        let bad = GOOD.replace("[[10, 4], [6, 3]]", "[[10, 4]]");
        assert!(
            parse_envelope(bad.as_bytes())
                .unwrap_err()
                .contains("2 xValues but 1 series")
        );
        let bad = GOOD.replace("[6, 3]", "[6, -3]");
        assert!(
            parse_envelope(bad.as_bytes())
                .unwrap_err()
                .contains("not a user count")
        );
        for huge in ["1e300", "18446744073709551615", "9007199254740993"] {
            let bad = GOOD.replace("[6, 3]", &format!("[6, {huge}]"));
            let reason = parse_envelope(bad.as_bytes()).unwrap_err();
            assert!(reason.contains("too large"), "{huge}: {reason}");
        }
        let exact = GOOD.replace("[6, 3]", "[6, 3.0]");
        assert!(parse_envelope(exact.as_bytes()).is_ok());
        assert!(
            parse_envelope(b"{\"experiment_id\": 1}")
                .unwrap_err()
                .contains("not a funnel envelope")
        );
        assert!(parse_envelope(b"\x00\x01").is_err());
    }
}
