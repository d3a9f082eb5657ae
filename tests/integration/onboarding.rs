//! Onboarding funnel and A/B testing (docs/models.md §3.5, §3.8) on the hand-made
//! `tests/fixtures/onboarding` data, as-of 2026-10-31, control_share 0.5.
//!
//! The fixture: user 1 reaches the habit on exactly its 5th distinct day (two
//! transactions share day 2; one carries segment 2 against dim_users' 1);
//! seller 2 has 4 charges and many other transactions (no habit); user 3
//! transacts on days 25–29 (day 29 counts: habit on 2026-09-30), user 4 on
//! days 26–30 (day 30 is outside: no habit); users 5, 6 and 11 have no usable
//! segment (empty, absent, 3); seller 7 has return NULL; seller 8 reaches 5
//! charges on day 3 (three on day 1); user 9 logs in after the as-of date;
//! user 10's 5th day is after it. Groups come from murmur3 of
//! "onboarding-v1/<id>" (checked with Python mmh3 5.3.1): buckets 1 → 4291,
//! 2 → 5348, 3 → 9621, 4 → 486, 7 → 9544, 8 → 308, 10 → 3174, 12 → 5609;
//! below 5000 is control. Statistics were computed with SciPy 1.17.1.

use crate::support::*;

fn onboarding_config(
    output: &std::path::Path,
    input: &std::path::Path,
) -> medallion::config::Config {
    let mut cfg = config(input, output);
    cfg.variables.control_share = 0.5;
    cfg
}

#[tokio::test]
async fn onboarding_gold_tables_match_hand_computed_values() {
    let out = tempfile::tempdir().unwrap();
    let results = run(
        onboarding_config(out.path(), &fixture("onboarding")),
        "2026-10-31",
    )
    .await;
    assert!(results.outcome().is_ok(), "{}", results.summary_table());
    let o = out.path();

    assert_eq!(
        table_text(o, "gold", "gold_user_onboarding_metrics").await,
        expected_table(
            "
            user_id | segment | segment_name | first_login_dt | drop | activation | setup | habit | habit_dt | ab_group
            1  | 1 | Individuals | 2026-09-01 | false | true  | true  | true  | 2026-09-11 | control
            2  | 2 | Sellers     | 2026-09-01 | false | true  | false | false | NULL       | treatment
            3  | 1 | Individuals | 2026-09-01 | true  | false | false | true  | 2026-09-30 | treatment
            4  | 1 | Individuals | 2026-09-01 | false | true  | false | false | NULL       | control
            7  | 2 | Sellers     | 2026-09-10 | NULL  | true  | true  | false | NULL       | treatment
            8  | 2 | Sellers     | 2026-10-01 | false | true  | true  | true  | 2026-10-04 | control
            10 | 1 | Individuals | 2026-10-25 | false | true  | false | false | NULL       | control
            12 | 1 | Individuals | 2026-10-01 | true  | false | false | false | NULL       | treatment
            "
        )
    );

    assert_eq!(
        table_text(o, "gold", "gold_onboarding_funnel").await,
        expected_table(
            "
            segment_name | ab_group | users | activated | setup_done | habit_users | dropped | activation_rate | setup_rate | habit_rate | drop_rate
            All         | all       | 8 | 6 | 3 | 3 | 2 | 0.750000 | 0.375000 | 0.375000 | 0.250000
            All         | control   | 4 | 4 | 2 | 2 | 0 | 1.000000 | 0.500000 | 0.500000 | 0.000000
            All         | treatment | 4 | 2 | 1 | 1 | 2 | 0.500000 | 0.250000 | 0.250000 | 0.500000
            Individuals | all       | 5 | 3 | 1 | 2 | 2 | 0.600000 | 0.200000 | 0.400000 | 0.400000
            Individuals | control   | 3 | 3 | 1 | 1 | 0 | 1.000000 | 0.333333 | 0.333333 | 0.000000
            Individuals | treatment | 2 | 0 | 0 | 1 | 2 | 0.000000 | 0.000000 | 0.500000 | 1.000000
            Sellers     | all       | 3 | 3 | 2 | 1 | 0 | 1.000000 | 0.666667 | 0.333333 | 0.000000
            Sellers     | control   | 1 | 1 | 1 | 1 | 0 | 1.000000 | 1.000000 | 1.000000 | 0.000000
            Sellers     | treatment | 2 | 2 | 1 | 0 | 0 | 1.000000 | 0.500000 | 0.000000 | 0.000000
            "
        )
    );

    // Two arms: one row per metric × segment for `treatment`, with every
    // number of docs/models.md §3.8 as before.
    // metric | segment | variant | n0 | x0 | p0 | n1 | x1 | p1 | diff | lift | z | p | ci_low | ci_high | significant
    assert_eq!(
        table_rows(
            o,
            "gold",
            "gold_ab_onboarding_results",
            Some(
                "select metric, segment_name, variant, control_users, control_successes, control_rate, \
                 treatment_users, treatment_successes, treatment_rate, abs_diff, relative_lift, z_score, \
                 p_value, ci_low, ci_high, significant from gold_ab_onboarding_results"
            )
        )
        .await,
        expected(
            "
            activation | Individuals | treatment | 3 | 3 | 1.000000 | 2 | 0 | 0.000000 | -1.000000 | -1.000000 | -2.236068 | 0.025347 | -1.000000 | -1.000000 | true
            activation | Sellers | treatment | 1 | 1 | 1.000000 | 2 | 2 | 1.000000 | 0.000000 | 0.000000 | NULL | NULL | 0.000000 | 0.000000 | false
            activation | All | treatment | 4 | 4 | 1.000000 | 4 | 2 | 0.500000 | -0.500000 | -0.500000 | -1.632993 | 0.102470 | -0.989991 | -0.010009 | false
            setup | Individuals | treatment | 3 | 1 | 0.333333 | 2 | 0 | 0.000000 | -0.333333 | -1.000000 | -0.912871 | 0.361310 | -0.866768 | 0.200101 | false
            setup | Sellers | treatment | 1 | 1 | 1.000000 | 2 | 1 | 0.500000 | -0.500000 | -0.500000 | -0.866025 | 0.386476 | -1.192952 | 0.192952 | false
            setup | All | treatment | 4 | 2 | 0.500000 | 4 | 1 | 0.250000 | -0.250000 | -0.500000 | -0.730297 | 0.465209 | -0.898197 | 0.398197 | false
            habit | Individuals | treatment | 3 | 1 | 0.333333 | 2 | 1 | 0.500000 | 0.166667 | 0.500000 | 0.372678 | 0.709388 | -0.707825 | 1.041158 | false
            habit | Sellers | treatment | 1 | 1 | 1.000000 | 2 | 0 | 0.000000 | -1.000000 | -1.000000 | -1.732051 | 0.083265 | -1.000000 | -1.000000 | false
            habit | All | treatment | 4 | 2 | 0.500000 | 4 | 1 | 0.250000 | -0.250000 | -0.500000 | -0.730297 | 0.465209 | -0.898197 | 0.398197 | false
            drop | Individuals | treatment | 3 | 0 | 0.000000 | 2 | 2 | 1.000000 | 1.000000 | NULL | 2.236068 | 0.025347 | 1.000000 | 1.000000 | true
            drop | Sellers | treatment | 1 | 0 | 0.000000 | 2 | 0 | 0.000000 | 0.000000 | NULL | NULL | NULL | 0.000000 | 0.000000 | false
            drop | All | treatment | 4 | 0 | 0.000000 | 4 | 2 | 0.500000 | 0.500000 | NULL | 1.632993 | 0.102470 | 0.010009 | 0.989991 | false
            "
        )
    );
    // One treatment: Holm changes nothing; the two significant rows decide.
    assert_eq!(
        table_rows(
            o,
            "gold",
            "gold_ab_onboarding_results",
            Some(
                "select metric, segment_name, decision from gold_ab_onboarding_results \
                 where (p_value_adjusted is distinct from p_value) or srm_failed or decision <> 'keep running'"
            )
        )
        .await,
        expected(
            "
            activation | Individuals | stop
            drop       | Individuals | ship
            "
        )
    );

    assert_eq!(
        table_text(o, "gold", "gold_ab_srm").await,
        expected_table(
            "
            segment_name | control_users | treatment_users | expected_control_share | chi_square | p_value | srm_detected | arms
            Individuals | 3 | 2 | 0.500000 | 0.200000 | 0.654721 | false | 2
            Sellers     | 1 | 2 | 0.500000 | 0.333333 | 0.563703 | false | 2
            All         | 4 | 4 | 0.500000 | 0.000000 | 1.000000 | false | 2
            "
        )
    );

    // Excluded users and segment disagreements are counted in run_results.
    let test = |model: &str, name: &str| {
        let m = results.models.iter().find(|m| m.name == model).unwrap();
        m.tests
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .failing_rows
    };
    assert_eq!(
        test(
            "silver_onboarding_users",
            "users without a known segment (excluded from gold)"
        ),
        3,
        "users 5, 6, 11"
    );
    assert_eq!(
        test(
            "silver_user_transactions",
            "transactions whose own segment disagrees with dim_users"
        ),
        2
    );
}

#[tokio::test]
async fn ab_groups_never_change_when_runs_repeat_or_users_arrive() {
    let input = tempfile::tempdir().unwrap();
    copy_tree(&fixture("onboarding"), input.path());
    let out = tempfile::tempdir().unwrap();
    let groups = |o: std::path::PathBuf| async move {
        table_rows(
            &o,
            "silver",
            "silver_onboarding_users",
            Some("select user_id, ab_group from silver_onboarding_users"),
        )
        .await
    };
    // The default 5 % control share, as in production.
    let cfg = || config(input.path(), out.path());
    assert!(run(cfg(), "2026-10-31").await.outcome().is_ok());
    let first = groups(out.path().to_path_buf()).await;
    assert!(run(cfg(), "2026-10-31").await.outcome().is_ok());
    assert_eq!(groups(out.path().to_path_buf()).await, first);

    // 200 new users, some before the existing ones in the file.
    let mut onboarding = std::fs::read_to_string(input.path().join("lk_onboarding.csv")).unwrap();
    let mut users = std::fs::read_to_string(input.path().join("dim_users.csv")).unwrap();
    for id in 100..300 {
        onboarding.push_str(&format!("{id},2026-10-0{},2026-W40,1,,,,,\n", 1 + id % 9));
        users.push_str(&format!("{id},{},\n", 1 + id % 2));
    }
    std::fs::write(input.path().join("lk_onboarding.csv"), onboarding).unwrap();
    std::fs::write(input.path().join("dim_users.csv"), users).unwrap();
    assert!(run(cfg(), "2026-10-31").await.outcome().is_ok());
    let after = groups(out.path().to_path_buf()).await;
    assert_eq!(after.len(), first.len() + 200);
    for row in &first {
        assert!(after.contains(row), "{row} changed group");
    }
    // With 5 % control, users 4 (bucket 486) and 8 (308) are control, 1 (4291) is not.
    assert!(
        first.contains(&"4 | control".to_string()) && first.contains(&"8 | control".to_string())
    );
    assert!(first.contains(&"1 | treatment".to_string()));
}
