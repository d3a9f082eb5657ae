//! A/B funnel gold tables (docs/models.md §1.3, §3.6) on hand-made envelopes in
//! `tests/fixtures/amplitude/amplitude/funnels/`:
//!
//! - `exp-a` control (events as objects, ~10 unknown keys, a nested unknown
//!   object) and treatment (events as strings, `prunedResult: true`), culture
//!   CL, three days whose series sum *above* `cumulativeRaw` (105 > 100 users
//!   at step 1 for control): totals must come from `cumulativeRaw`.
//! - An older fetch of exp-a control (`fetched_at` a day earlier, 999 users):
//!   silver keeps the newest envelope.
//! - `exp-b`: grouped responses (`groupValue` "BR" as a string, ["US"] as an
//!   array), two steps, one day, device mobile.
//! - `exp-c`: a day series with 2 values for 3 steps: quarantined whole.
//!
//! Hand computation, exp-a step 2 (x₀ = 40 of n₀ = 100, x₁ = 60 of n₁ = 120):
//! p₀ = 0.4, p₁ = 0.5, diff = 0.1, lift = 0.1 / 0.4 = 0.25;
//! pooled p̂ = 100 / 220 = 0.454545, se = √(0.454545 · 0.545455 · (1/100 + 1/120))
//! = 0.067420, z = 1.483240, p = 2(1 − Φ(1.483240)) = 0.138011;
//! unpooled se = √(0.5·0.5/120 + 0.4·0.6/100) = 0.066958,
//! CI = 0.1 ± 1.959964 · 0.066958 = [−0.031235, 0.231235].
//! Step 3 (10/100 against 18/120) and exp-b the same way; at step 1 both
//! sides convert 100 %, the pooled variance is 0 and z/p are NULL.

use crate::support::*;

async fn run_amplitude() -> (tempfile::TempDir, medallion::run::RunResults) {
    let out = tempfile::tempdir().unwrap();
    let results = run_selected(
        config(&fixture("amplitude"), out.path()),
        "2026-10-31",
        &["+gold_ab_funnel_daily", "+gold_ab_funnel_comparison"],
        None,
    )
    .await
    .unwrap();
    assert!(results.outcome().is_ok(), "{}", results.summary_table());
    (out, results)
}

#[tokio::test]
async fn summary_and_comparison_come_from_cumulative_raw() {
    let (out, _) = run_amplitude().await;
    let o = out.path();

    // experiment | variant | device | culture | group | start | end | step | stage | users | from start | step conversion
    assert_eq!(
        table_text(o, "gold", "gold_ab_funnel_summary").await,
        expected_table(
            "
            experiment_id | variant | device | culture | group_value | start_date | end_date | step | stage | users | conversion_from_start | step_conversion
            exp-a | control   | All    | CL  |    | 2026-10-01 | 2026-10-03 | 1 | page_view   | 100 | 1.000000 | 1.000000
            exp-a | control   | All    | CL  |    | 2026-10-01 | 2026-10-03 | 2 | add_to_cart | 40  | 0.400000 | 0.400000
            exp-a | control   | All    | CL  |    | 2026-10-01 | 2026-10-03 | 3 | purchase    | 10  | 0.100000 | 0.250000
            exp-a | treatment | All    | CL  |    | 2026-10-01 | 2026-10-03 | 1 | page_view   | 120 | 1.000000 | 1.000000
            exp-a | treatment | All    | CL  |    | 2026-10-01 | 2026-10-03 | 2 | add_to_cart | 60  | 0.500000 | 0.500000
            exp-a | treatment | All    | CL  |    | 2026-10-01 | 2026-10-03 | 3 | purchase    | 18  | 0.150000 | 0.300000
            exp-b | control   | mobile | All | BR | 2026-10-05 | 2026-10-05 | 1 | signup      | 50  | 1.000000 | 1.000000
            exp-b | control   | mobile | All | BR | 2026-10-05 | 2026-10-05 | 2 | activate    | 5   | 0.100000 | 0.100000
            exp-b | control   | mobile | All | US | 2026-10-05 | 2026-10-05 | 1 | signup      | 80  | 1.000000 | 1.000000
            exp-b | control   | mobile | All | US | 2026-10-05 | 2026-10-05 | 2 | activate    | 20  | 0.250000 | 0.250000
            exp-b | treatment | mobile | All | BR | 2026-10-05 | 2026-10-05 | 1 | signup      | 50  | 1.000000 | 1.000000
            exp-b | treatment | mobile | All | BR | 2026-10-05 | 2026-10-05 | 2 | activate    | 10  | 0.200000 | 0.200000
            exp-b | treatment | mobile | All | US | 2026-10-05 | 2026-10-05 | 1 | signup      | 80  | 1.000000 | 1.000000
            exp-b | treatment | mobile | All | US | 2026-10-05 | 2026-10-05 | 2 | activate    | 16  | 0.200000 | 0.200000
            "
        )
    );

    // experiment | device | culture | group | step | stage | control users, conversion | treatment users, conversion
    // | abs_diff | lift | z | p | ci_low | ci_high | significant
    assert_eq!(
        table_rows(
            o,
            "gold",
            "gold_ab_funnel_comparison",
            Some(
                "select experiment_id, device, culture, group_value, step, stage, control_users, \
                 control_conversion, treatment_users, treatment_conversion, abs_diff, relative_lift, \
                 z_score, p_value, ci_low, ci_high, significant from gold_ab_funnel_comparison"
            )
        )
        .await,
        expected(
            "
            exp-a | All    | CL  |    | 1 | page_view   | 100 | 1.000000 | 120 | 1.000000 | 0.000000  | 0.000000  | NULL      | NULL     | 0.000000  | 0.000000 | false
            exp-a | All    | CL  |    | 2 | add_to_cart | 40  | 0.400000 | 60  | 0.500000 | 0.100000  | 0.250000  | 1.483240  | 0.138011 | -0.031235 | 0.231235 | false
            exp-a | All    | CL  |    | 3 | purchase    | 10  | 0.100000 | 18  | 0.150000 | 0.050000  | 0.500000  | 1.108007  | 0.267859 | -0.036827 | 0.136827 | false
            exp-b | mobile | All | BR | 1 | signup      | 50  | 1.000000 | 50  | 1.000000 | 0.000000  | 0.000000  | NULL      | NULL     | 0.000000  | 0.000000 | false
            exp-b | mobile | All | BR | 2 | activate    | 5   | 0.100000 | 10  | 0.200000 | 0.100000  | 1.000000  | 1.400280  | 0.161429 | -0.038590 | 0.238590 | false
            exp-b | mobile | All | US | 1 | signup      | 80  | 1.000000 | 80  | 1.000000 | 0.000000  | 0.000000  | NULL      | NULL     | 0.000000  | 0.000000 | false
            exp-b | mobile | All | US | 2 | activate    | 20  | 0.250000 | 16  | 0.200000 | -0.050000 | -0.200000 | -0.757282 | 0.448881 | -0.179176 | 0.079176 | false
            "
        )
    );
}

#[tokio::test]
async fn daily_rows_keep_each_day_and_never_become_totals() {
    let (out, results) = run_amplitude().await;
    let o = out.path();
    let daily = table_rows(
        o,
        "gold",
        "gold_ab_funnel_daily",
        Some(
            "select experiment_id, variant, group_value, cast(date as varchar), step, users \
             from gold_ab_funnel_daily where experiment_id = 'exp-a' and variant = 'control'",
        ),
    )
    .await;
    assert_eq!(
        daily,
        expected(
            "
            exp-a | control | | 2026-10-01 | 1 | 40
            exp-a | control | | 2026-10-01 | 2 | 20
            exp-a | control | | 2026-10-01 | 3 | 5
            exp-a | control | | 2026-10-02 | 1 | 35
            exp-a | control | | 2026-10-02 | 2 | 15
            exp-a | control | | 2026-10-02 | 3 | 4
            exp-a | control | | 2026-10-03 | 1 | 30
            exp-a | control | | 2026-10-03 | 2 | 10
            exp-a | control | | 2026-10-03 | 3 | 3
            "
        )
    );
    // 40 + 35 + 30 = 105 users entered over the days, 100 distinct: the
    // summary says 100 (above), the daily table still holds the 105.
    assert_eq!(
        table_rows(
            o,
            "gold",
            "gold_ab_funnel_daily",
            Some("select count(*), sum(users) from gold_ab_funnel_daily"),
        )
        .await,
        // exp-a: 9 rows per variant, users 105+45+12 and 135+67+21;
        // exp-b: 2 groups × 2 steps per variant, 55 + 100 + 60 + 96.
        vec!["26 | 696".to_string()]
    );

    // The partial flag of exp-a treatment is kept in bronze.
    assert_eq!(
        table_rows(
            o,
            "bronze",
            "bronze_amplitude_funnel_cumulative",
            Some(
                "select variant, pruned_result, hit_chunk_group_by_limit, min_sample_rate, count(*) \
                 from bronze_amplitude_funnel_cumulative where experiment_id = 'exp-a' \
                 group by 1, 2, 3, 4"
            ),
        )
        .await,
        // The control envelopes carry no flags; the older fetch is still in bronze.
        expected(
            "
            control   | NULL | NULL  | NULL     | 6
            treatment | true | false | 1.000000 | 3
            "
        )
    );

    // exp-c is quarantined with its reason; the rest of the run went on.
    let bronze = results
        .models
        .iter()
        .find(|m| m.name == "bronze_amplitude_funnel_daily")
        .unwrap();
    assert_eq!(bronze.quarantined_rows, 1);
    let quarantine = table_rows(
        o,
        "_quarantine",
        "amplitude_funnels",
        Some("select * from amplitude_funnels"),
    )
    .await;
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    assert!(
        quarantine[0].contains("exp-c__control")
            && quarantine[0].contains("dayFunnels.series for 2026-10-01 has 2 values for 3 steps"),
        "{quarantine:?}"
    );
}
