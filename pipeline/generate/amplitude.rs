//! Amplitude funnel envelopes (docs/models.md §1.3) for `<out>/amplitude/funnels/`:
//! five experiments, a culture split (CL and BR), 35 days, three or four
//! steps, in the shape `medallion fetch amplitude` writes. Three are
//! control/treatment tests; one has three arms (A/B/N, docs/models.md §3.9)
//! and one sends its treatment 30 % more traffic, a deliberate sample ratio
//! mismatch that the comparison marks invalid.
//!
//! Each day's cohort walks the funnel by binomial draws, so
//! `dayFunnels.series` falls step by step. Users come back on several days,
//! so `cumulativeRaw` (distinct users over the range) is below the sum of the
//! daily series, as in real exports: the trap the gold tables must avoid.
//! Responses carry a dozen keys the pipeline ignores, and the first
//! experiment gives `events[]` as objects, the others as strings.

use std::path::PathBuf;

use chrono::{Datelike, Duration, Weekday};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::GenerateOptions;
use crate::error::{Error, Result};
use crate::fetch::amplitude::{FunnelQuery, envelope_at};
use crate::ingest::amplitude::FUNNELS_DIR;

/// An experiment: steps, per-step conversion for control, and its arms.
struct Experiment {
    id: &'static str,
    steps: &'static [&'static str],
    control_rates: &'static [f64],
    arms: &'static [Arm],
    device: &'static str,
    events_as_objects: bool,
}

/// One variant: its multiplier of control's rate per step (1.0 = no
/// effect) and its traffic relative to control's.
struct Arm {
    name: &'static str,
    lift: &'static [f64],
    traffic: f64,
}

/// Control: control's rates (the lifts are zipped with the rates, so extra
/// ones are unused).
const CONTROL: Arm = Arm {
    name: "control",
    lift: &[1.0, 1.0, 1.0],
    traffic: 1.0,
};

const fn treatment(lift: &'static [f64]) -> Arm {
    Arm {
        name: "treatment",
        lift,
        traffic: 1.0,
    }
}

const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        id: "onboarding-checkout-v2",
        steps: &["page_view", "add_to_cart", "checkout_start", "purchase"],
        control_rates: &[0.32, 0.55, 0.60],
        arms: &[CONTROL, treatment(&[1.0, 1.12, 1.05])],
        device: "All",
        events_as_objects: true,
    },
    Experiment {
        id: "pricing-page-redesign",
        steps: &["pricing_view", "plan_select", "signup"],
        control_rates: &[0.25, 0.40],
        arms: &[CONTROL, treatment(&[1.0, 1.0])],
        device: "All",
        events_as_objects: false,
    },
    Experiment {
        id: "search-ranking-v3",
        steps: &["search", "product_view", "add_to_cart"],
        control_rates: &[0.45, 0.18],
        arms: &[CONTROL, treatment(&[1.04, 1.10])],
        device: "mobile",
        events_as_objects: false,
    },
    Experiment {
        id: "homepage-hero-abn",
        steps: &["home_view", "hero_click", "signup"],
        control_rates: &[0.20, 0.30],
        arms: &[
            CONTROL,
            treatment(&[1.15, 1.0]),
            Arm {
                name: "variant-b",
                lift: &[1.05, 1.0],
                traffic: 1.0,
            },
        ],
        device: "All",
        events_as_objects: false,
    },
    Experiment {
        id: "referral-banner-srm",
        steps: &["banner_view", "referral_sent"],
        control_rates: &[0.10],
        arms: &[
            CONTROL,
            Arm {
                name: "treatment",
                lift: &[1.2],
                traffic: 1.3,
            },
        ],
        device: "All",
        events_as_objects: false,
    },
];

const CULTURES: &[(&str, f64)] = &[("CL", 1.0), ("BR", 1.6)];
const DAYS: i64 = 35;
/// Share of a day's entrants who had already entered on an earlier day: the
/// gap between summed daily series and distinct users.
const RETURNING: f64 = 0.18;

pub(super) fn generate(o: &GenerateOptions) -> Result<Vec<(PathBuf, usize)>> {
    let dir = o.out.join(FUNNELS_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create folder", &dir, e))?;
    let start = o.end_date - Duration::days(DAYS - 1);
    let fetched_at = format!("{}T02:00:03Z", o.end_date + Duration::days(1));
    // Entrants per day and variant at scale 1; small scales keep a usable size.
    let base = (400.0 * o.scale).clamp(40.0, 20_000.0);
    let mut written = Vec::new();
    for exp in EXPERIMENTS {
        for (culture, weight) in CULTURES {
            for arm in exp.arms {
                let variant = arm.name;
                let mut rng = o.rng(&format!("amplitude:{}:{culture}:{variant}", exp.id));
                let query = FunnelQuery {
                    experiment_id: exp.id.into(),
                    variant: variant.into(),
                    device: exp.device.into(),
                    culture: (*culture).into(),
                    start,
                    end: o.end_date,
                    events: exp.steps.iter().map(|s| s.to_string()).collect(),
                };
                let rates: Vec<f64> = exp
                    .control_rates
                    .iter()
                    .zip(arm.lift)
                    .map(|(r, lift)| r * lift)
                    .collect();
                let traffic = base * weight * arm.traffic;
                let (x_values, series) = daily_series(&mut rng, &query, traffic, &rates);
                let cumulative = distinct_users(&series, exp.steps.len());
                let response = response(exp, &x_values, &series, &cumulative);
                let envelope = envelope_at(&query, response, &fetched_at);
                let path = dir.join(query.file_name());
                let bytes = serde_json::to_vec_pretty(&envelope)?;
                std::fs::write(&path, bytes)
                    .map_err(|e| Error::io("cannot write envelope", &path, e))?;
                written.push((path, x_values.len()));
            }
        }
    }
    Ok(written)
}

/// `xValues` and `series[d][s]`: entrants per day (weekday/weekend pattern,
/// noise), each step a binomial draw from the previous one.
fn daily_series(
    rng: &mut ChaCha8Rng,
    q: &FunnelQuery,
    per_day: f64,
    rates: &[f64],
) -> (Vec<String>, Vec<Vec<i64>>) {
    let mut x_values = Vec::new();
    let mut series = Vec::new();
    let mut d = q.start;
    while d <= q.end {
        let weekend = matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        let mean = per_day * if weekend { 0.7 } else { 1.0 };
        let entrants = (mean * rng.random_range(0.8..1.2)).round() as i64;
        let mut row = vec![entrants];
        for rate in rates {
            let previous = row[row.len() - 1];
            row.push(binomial(rng, previous, *rate));
        }
        x_values.push(d.to_string());
        series.push(row);
        d += Duration::days(1);
    }
    (x_values, series)
}

/// Binomial(n, p) by Bernoulli trials: n is at most a few tens of thousands.
fn binomial(rng: &mut ChaCha8Rng, n: i64, p: f64) -> i64 {
    let p = p.clamp(0.0, 1.0);
    (0..n).filter(|_| rng.random_bool(p)).count() as i64
}

/// Distinct users per step over the range: the daily sums less the returning
/// share, never increasing from one step to the next.
fn distinct_users(series: &[Vec<i64>], steps: usize) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::with_capacity(steps);
    for s in 0..steps {
        let summed: i64 = series.iter().map(|row| row[s]).sum();
        let distinct = (summed as f64 * (1.0 - RETURNING)).floor() as i64;
        let capped = out.last().map_or(distinct, |prev| distinct.min(*prev));
        out.push(capped);
    }
    out
}

/// A `GET /api/2/funnels` body with the keys real responses carry.
fn response(
    exp: &Experiment,
    x_values: &[String],
    series: &[Vec<i64>],
    cumulative: &[i64],
) -> Value {
    let events: Vec<Value> = exp
        .steps
        .iter()
        .map(|s| {
            if exp.events_as_objects {
                json!({"event_type": s, "filters": [], "group_by": []})
            } else {
                json!(s)
            }
        })
        .collect();
    let step_by_step: Vec<f64> = cumulative
        .iter()
        .enumerate()
        .map(|(i, c)| match i {
            0 => 1.0,
            _ if cumulative[i - 1] == 0 => 0.0,
            _ => *c as f64 / cumulative[i - 1] as f64,
        })
        .collect();
    let formatted: Vec<String> = x_values
        .iter()
        .map(|x| {
            chrono::NaiveDate::parse_from_str(x, "%Y-%m-%d")
                .map_or_else(|_| x.clone(), |d| d.format("%b %-d").to_string())
        })
        .collect();
    let zeros: Vec<Vec<i64>> = series.iter().map(|row| vec![0; row.len()]).collect();
    json!({
        "data": [{
            "events": events,
            "dayFunnels": {"xValues": x_values, "formattedXValues": formatted, "series": series},
            "cumulativeRaw": cumulative,
            "cumulative": step_by_step.iter().scan(1.0, |acc, r| { *acc *= r; Some(*acc) }).collect::<Vec<f64>>(),
            "stepByStep": step_by_step,
            "convertedCounts": cumulative,
            "medianTransTimes": (0..exp.steps.len()).map(|i| i as i64 * 47_000).collect::<Vec<_>>(),
            "avgTransTimes": (0..exp.steps.len()).map(|i| i as i64 * 93_000).collect::<Vec<_>>(),
            "dayMedianTransTimes": {"xValues": x_values, "series": zeros},
            "stepTransTimeDistribution": {"bins": [], "counts": []},
            "numSeries": 1,
        }],
        "wasCached": false,
        "timeComputed": 1_761_962_403_000_i64,
        "novaRuntime": 812,
        "novaCost": 4_200,
        "throttleTime": 0,
        "prunedResult": false,
        "hitChunkGroupByLimit": false,
        "minSampleRate": 1.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::envelope::parse_envelope;

    #[test]
    fn envelopes_parse_and_daily_sums_exceed_distinct_users() {
        let dir = tempfile::tempdir().unwrap();
        let opts = GenerateOptions {
            scale: 0.01,
            seed: 3,
            out: dir.path().to_path_buf(),
            dirty_rate: 0.0,
            end_date: chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            daily: false,
        };
        let written = generate(&opts).unwrap();
        let arms: usize = EXPERIMENTS.iter().map(|e| e.arms.len()).sum();
        assert_eq!(written.len(), arms * CULTURES.len());
        assert_eq!(
            written.len(),
            22,
            "3 two-arm experiments, one A/B/N, one SRM, two cultures"
        );
        for (path, days) in &written {
            assert!(*days >= 30);
            let env = parse_envelope(&std::fs::read(path).unwrap()).unwrap();
            assert!(!env.is_partial());
            let f = &env.funnels[0];
            for s in 0..f.steps.len() {
                let summed: i64 = f.days.iter().map(|(_, users)| users[s]).sum();
                assert!(summed > f.cumulative[s] || summed == 0, "{path:?} step {s}");
                if s > 0 {
                    assert!(f.cumulative[s] <= f.cumulative[s - 1]);
                }
            }
        }
    }
}
