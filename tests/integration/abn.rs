//! A/B/N (docs/models.md §3.9) on hand-made envelopes in `tests/fixtures/abn`:
//!
//! - `exp-d`, three arms of 1,000 users each on 2026-10-07, converting 100
//!   (control), 130 (treatment) and 118 (variant-b). Treatment's own p-value
//!   is 0.035488 (< alpha 0.05), but Holm over the two comparisons doubles the
//!   smaller one: 2 × 0.035488 = 0.070977, so it is not significant and the
//!   decision is `keep running`; variant-b's adjusted value is max(0.070977,
//!   1 × 0.196519) = 0.196519.
//! - `exp-e`, control 100 of 1,000 against treatment 200 of 1,300 on
//!   2026-10-08: p = 0.000144, but the step-1 split 1,000 / 1,300 against equal
//!   shares gives χ² = 39.13 (1 df), p = 3.96e-10 < srm_alpha 0.001, so the
//!   row is kept, marked `srm_failed`, not significant (either way) and
//!   `invalid: sample ratio mismatch`.
//!
//! Expected numbers from SciPy 1.17.1 (norm.sf for the z-test; quad over
//! betaincc for chance to beat control and expected loss) and the §3.9
//! formula for the confidence sequence (alpha 0.05, N* = 5000).

use crate::support::*;

#[tokio::test]
async fn three_arms_are_holm_adjusted_and_a_sample_ratio_mismatch_gates_its_experiment() {
    let out = tempfile::tempdir().unwrap();
    let results = run_selected(
        config(&fixture("abn"), out.path()),
        "2026-10-31",
        &["+gold_ab_funnel_comparison"],
        None,
    )
    .await
    .unwrap();
    assert!(results.outcome().is_ok(), "{}", results.summary_table());
    assert_eq!(
        table_rows(
            out.path(),
            "gold",
            "gold_ab_funnel_comparison",
            Some(
                "select experiment_id, variant, abs_diff, p_value, p_value_adjusted, significant, \
                 chance_to_beat_control, expected_loss, seq_ci_low, seq_ci_high, seq_significant, \
                 srm_failed, decision from gold_ab_funnel_comparison where step = 2"
            )
        )
        .await,
        expected(
            "
            exp-d | treatment | 0.030000 | 0.035488 | 0.070977 | false | 0.982165 | 0.000092 | -0.014518 | 0.074518 | false | false | keep running
            exp-d | variant-b | 0.018000 | 0.196519 | 0.196519 | false | 0.901322 | 0.000651 | -0.025518 | 0.061518 | false | false | keep running
            exp-e | treatment | 0.053846 | 0.000144 | 0.000144 | false | 0.999935 | 0.000000 | 0.011143 | 0.096549 | false | true  | invalid: sample ratio mismatch
            "
        )
    );
    // Step 1 compares 100 % with 100 %: no p-value, nothing to adjust.
    assert_eq!(
        table_rows(
            out.path(),
            "gold",
            "gold_ab_funnel_comparison",
            Some("select count(*) from gold_ab_funnel_comparison where step = 1 and p_value is null and p_value_adjusted is null")
        )
        .await,
        ["3"]
    );
}

/// exp-e's 1,000 / 1,300 split is what its configured shares expect: no
/// mismatch, so its p = 0.000144 stands and the decision is `ship`.
#[tokio::test]
async fn configured_shares_are_what_the_sample_ratio_test_expects() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = config(&fixture("abn"), out.path());
    cfg.amplitude.experiments = vec![experiment(
        "exp-e",
        &["control", "treatment"],
        &[1000.0, 1300.0],
    )];
    let results = run_selected(cfg, "2026-10-31", &["+gold_ab_funnel_comparison"], None)
        .await
        .unwrap();
    assert!(results.outcome().is_ok(), "{}", results.summary_table());
    assert_eq!(
        table_rows(
            out.path(),
            "gold",
            "gold_ab_funnel_comparison",
            Some(
                "select experiment_id, variant, p_value_adjusted, significant, srm_failed, decision \
                 from gold_ab_funnel_comparison where step = 2"
            )
        )
        .await,
        expected(
            "
            exp-d | treatment | 0.070977 | false | false | keep running
            exp-d | variant-b | 0.196519 | false | false | keep running
            exp-e | treatment | 0.000144 | true  | false | ship
            "
        )
    );
}

/// The sample's three-arm experiment, with shares of 0.2 / 0.4 / 0.4 set
/// against its equal traffic, fails the SRM test: its comparison rows keep
/// every statistic but are gated, and every other row of every gold table
/// is exactly what the run without the shares published.
#[tokio::test]
async fn a_three_arm_sample_ratio_mismatch_gates_its_rows_and_nothing_else() {
    let sample = project_root().join("datasets");
    let (plain, gated) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert!(
        run(config(&sample, plain.path()), "2026-10-31")
            .await
            .outcome()
            .is_ok()
    );
    let mut cfg = config(&sample, gated.path());
    cfg.amplitude.experiments = vec![experiment(
        "homepage-hero-abn",
        &["control", "treatment", "variant-b"],
        &[0.2, 0.4, 0.4],
    )];
    let results = run(cfg, "2026-10-31").await;
    assert!(results.outcome().is_ok(), "{}", results.summary_table());

    let (before, after) = (
        gold_contents(plain.path()).await,
        gold_contents(gated.path()).await,
    );
    assert_eq!(before.len(), after.len());
    let hero = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| !r.starts_with("homepage-hero-abn |"))
            .cloned()
            .collect()
    };
    for ((table, rows_before), (_, rows_after)) in before.iter().zip(&after) {
        if table == "gold_ab_funnel_comparison" {
            assert_eq!(
                hero(rows_before),
                hero(rows_after),
                "{table}: other experiments"
            );
        } else {
            assert_eq!(rows_before, rows_after, "{table}");
        }
    }

    let gate = "select count(*), count(distinct variant), \
                count(case when srm_failed and not significant and not coalesce(seq_significant, false) \
                and decision = 'invalid: sample ratio mismatch' then 1 end) \
                from gold_ab_funnel_comparison where experiment_id = 'homepage-hero-abn'";
    let gated_rows = table_rows(
        gated.path(),
        "gold",
        "gold_ab_funnel_comparison",
        Some(gate),
    )
    .await;
    let fields: Vec<i64> = gated_rows[0]
        .split(" | ")
        .map(|f| f.parse().unwrap())
        .collect();
    assert!(
        fields[0] > 0 && fields[1] == 2 && fields[2] == fields[0],
        "{gated_rows:?}"
    );
    // The statistics themselves are unchanged: only the gate moved.
    let stats = "select culture, step, variant, p_value, p_value_adjusted, chance_to_beat_control, \
                 expected_loss, seq_ci_low, seq_ci_high from gold_ab_funnel_comparison \
                 where experiment_id = 'homepage-hero-abn'";
    assert_eq!(
        table_rows(
            plain.path(),
            "gold",
            "gold_ab_funnel_comparison",
            Some(stats)
        )
        .await,
        table_rows(
            gated.path(),
            "gold",
            "gold_ab_funnel_comparison",
            Some(stats)
        )
        .await
    );
    let plain_gate = "select count(*) from gold_ab_funnel_comparison \
                      where experiment_id = 'homepage-hero-abn' and srm_failed";
    assert_eq!(
        table_rows(
            plain.path(),
            "gold",
            "gold_ab_funnel_comparison",
            Some(plain_gate)
        )
        .await,
        ["0"],
        "with equal shares the three arms pass"
    );
}

/// Three onboarding arms (`ab_arms = "control=0.4, b=0.3, c=0.3"`) on the
/// onboarding fixture: buckets below 4000 are control (users 4, 8, 10),
/// below 7000 b (1, 2, 12), the rest c (3, 7). SRM and the z-tests from
/// SciPy 1.17.1 (chi2.sf with 2 df; norm.sf): All's split 3 / 3 / 2 against
/// 3.2 / 2.4 / 2.4 gives χ² 0.229167, p 0.891738; activation in All is 3/3
/// for control, 2/3 for b (p 0.273322) and 1/2 for c (p 0.170904), so Holm
/// makes both 2 × 0.170904 = 0.341807.
#[tokio::test]
async fn onboarding_runs_with_three_arms_and_keeps_every_user_in_one() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = config(&fixture("onboarding"), out.path());
    cfg.variables.ab_arms = "control=0.4, b=0.3, c=0.3".into();
    let results = run(cfg, "2026-10-31").await;
    assert!(results.outcome().is_ok(), "{}", results.summary_table());
    let o = out.path();
    assert_eq!(
        table_rows(
            o,
            "gold",
            "gold_user_onboarding_metrics",
            Some("select user_id, ab_group from gold_user_onboarding_metrics")
        )
        .await,
        expected(
            "
            1 | b
            10 | control
            12 | b
            2 | b
            3 | c
            4 | control
            7 | c
            8 | control
            "
        )
    );
    assert_eq!(
        table_text(o, "gold", "gold_ab_srm").await,
        expected_table(
            "
            segment_name | control_users | treatment_users | expected_control_share | chi_square | p_value | srm_detected | arms
            Individuals | 2 | 3 | 0.400000 | 0.333333 | 0.846482 | false | 3
            Sellers     | 1 | 2 | 0.400000 | 0.055556 | 0.972604 | false | 3
            All         | 3 | 5 | 0.400000 | 0.229167 | 0.891738 | false | 3
            "
        )
    );
    assert_eq!(
        table_rows(
            o,
            "gold",
            "gold_ab_onboarding_results",
            Some(
                "select variant, control_users, control_successes, treatment_users, treatment_successes, \
                 p_value, p_value_adjusted, significant, decision from gold_ab_onboarding_results \
                 where metric = 'activation' and segment_name = 'All'"
            )
        )
        .await,
        expected(
            "
            b | 3 | 3 | 3 | 2 | 0.273322 | 0.341807 | false | keep running
            c | 3 | 3 | 2 | 1 | 0.170904 | 0.341807 | false | keep running
            "
        )
    );
    assert_eq!(
        table_rows(
            o,
            "gold",
            "gold_ab_onboarding_results",
            Some("select count(*) from gold_ab_onboarding_results")
        )
        .await,
        ["24"],
        "4 metrics × 3 segments × 2 non-control arms"
    );
}

fn experiment(
    id: &str,
    variants: &[&str],
    shares: &[f64],
) -> medallion::config::amplitude::ExperimentConfig {
    medallion::config::amplitude::ExperimentConfig {
        id: id.into(),
        start: as_of("2026-09-27"),
        end: as_of("2026-10-31"),
        events: vec!["step".into()],
        variants: variants.iter().map(|v| v.to_string()).collect(),
        shares: Some(shares.to_vec()),
        device: "All".into(),
        culture: "All".into(),
    }
}
