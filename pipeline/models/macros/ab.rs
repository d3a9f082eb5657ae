//! The experiment macros (docs/models.md §3.9): the configured arms and
//! shares as SQL, and the comparison every A/B model shares.
//!
//! - `{{ ab_group(<bucket>) }}`: the arm owning a murmur3 bucket, a `case`.
//! - `{{ ab_arms() }}`: the onboarding arms, `(variant, arm_order, share)`.
//! - `{{ experiment_shares() }}`: the configured Amplitude shares,
//!   `(experiment_id, variant, share)`, no rows when none are configured.
//! - `{{ ab_comparison('<relation>', '<partition columns>') }}`: every row of
//!   the relation (one variant against control: `variant`, `srm_failed`,
//!   `control_successes`, `control_trials`, `treatment_successes`,
//!   `treatment_trials`) with the §3.8 test, Holm over the variants of one
//!   partition, chance to beat control, expected loss, the confidence
//!   sequence, the SRM gate and the decision.

use crate::config::arms::Arm;

/// A text as a SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A float as a SQL literal that reads back as the same `f64` (Float64).
fn number(x: f64) -> String {
    format!("cast({x:?} as double)")
}

pub fn ab_group(arms: &[Arm], bucket: &str) -> String {
    let mut sql = String::from("(case");
    let (last, rest) = match arms.split_last() {
        Some(split) => split,
        None => return "cast(null as varchar)".into(),
    };
    for arm in rest {
        sql.push_str(&format!(
            " when {bucket} < {} then {}",
            arm.bucket_high,
            literal(&arm.name)
        ));
    }
    sql.push_str(&format!(" else {} end)", literal(&last.name)));
    sql
}

pub fn ab_arms(arms: &[Arm]) -> String {
    let rows: Vec<String> = arms
        .iter()
        .enumerate()
        .map(|(i, a)| format!("({}, {i}, {})", literal(&a.name), number(a.share)))
        .collect();
    format!(
        "(select * from (values {}) as arms (variant, arm_order, share))",
        rows.join(", ")
    )
}

pub fn experiment_shares(shares: &[(String, String, f64)]) -> String {
    if shares.is_empty() {
        return "(select cast(null as varchar) as experiment_id, cast(null as varchar) as variant, \
                cast(null as double) as share where false)"
            .into();
    }
    let rows: Vec<String> = shares
        .iter()
        .map(|(id, variant, share)| {
            format!(
                "({}, {}, {})",
                literal(id),
                literal(variant),
                number(*share)
            )
        })
        .collect();
    format!(
        "(select * from (values {}) as shares (experiment_id, variant, share))",
        rows.join(", ")
    )
}

/// Nested subqueries, one step each, since a select list cannot use the
/// aliases it defines.
pub fn ab_comparison(relation: &str, partition: &str) -> String {
    let counts = "control_successes, control_trials, treatment_successes, treatment_trials";
    format!(
        "(
    select
        *,
        case
            when srm_failed then 'invalid: sample ratio mismatch'
            when significant and abs_diff > 0 then 'ship'
            when significant and abs_diff < 0 then 'stop'
            else 'keep running'
        end as decision
    from (
        select
            *,
            not srm_failed and coalesce(p_value_adjusted < param('alpha'), false) as significant,
            chance_to_beat_control({counts}) as chance_to_beat_control,
            expected_loss({counts}) as expected_loss,
            get_field(seq, 'seq_ci_low') as seq_ci_low,
            get_field(seq, 'seq_ci_high') as seq_ci_high,
            not srm_failed and get_field(seq, 'seq_significant') as seq_significant
        from (
            -- Holm: the j-th smallest of m p-values becomes the running
            -- maximum of (m - i + 1) p_(i) over i <= j, capped at 1.
            select
                *,
                case
                    when p_value is null then null
                    when holm_running > 1 then 1.0
                    else holm_running
                end as p_value_adjusted
            from (
                select
                    *,
                    max((m - j + 1) * p_value) over (
                        partition by {partition}
                        order by p_value asc nulls last, variant
                        rows between unbounded preceding and current row
                    ) as holm_running
                from (
                    select
                        *,
                        cast(count(p_value) over (partition by {partition}) as double) as m,
                        cast(row_number() over (
                            partition by {partition}
                            order by p_value asc nulls last, variant
                        ) as double) as j
                    from (
                        select
                            *,
                            get_field(stats, 'control_rate') as control_rate,
                            get_field(stats, 'treatment_rate') as treatment_rate,
                            get_field(stats, 'abs_diff') as abs_diff,
                            get_field(stats, 'relative_lift') as relative_lift,
                            get_field(stats, 'z_score') as z_score,
                            get_field(stats, 'p_value') as p_value,
                            get_field(stats, 'ci_low') as ci_low,
                            get_field(stats, 'ci_high') as ci_high
                        from (
                            select
                                *,
                                ab_test({counts}, param('alpha')) as stats,
                                seq_ci({counts}, param('alpha'), param('sequential_tuning')) as seq
                            from {relation}
                        ) as ab_tested
                    ) as ab_unpacked
                ) as ab_ranked
            ) as ab_holm
        ) as ab_adjusted
    ) as ab_decided
)"
    )
}
