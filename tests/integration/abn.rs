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
