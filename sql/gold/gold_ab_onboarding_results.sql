-- gold_ab_onboarding_results: one row per metric (activation, setup, habit,
-- drop) × segment_name (Individuals, Sellers, All) × non-control arm, always
-- all of them, with that arm's statistics against control (docs/models.md
-- §3.8, §3.9): the two-proportion test, Holm across the arms of one metric and
-- segment, chance to beat control, expected loss, the confidence sequence and
-- the decision. A segment whose split fails the SRM test (gold_ab_srm) keeps
-- its rows, marked invalid. Successes of `drop` are users whose return = 0
-- (unknown counts as no drop).
with users as (
    select * from gold_user_onboarding_metrics
),

arms as (
    select * from {{ ab_arms() }} as arms
),

srm as (
    select segment_name, srm_detected from gold_ab_srm
),

with_total as (
    select segment_name, ab_group, activation, setup, habit, "drop" from users
    union all
    select 'All' as segment_name, ab_group, activation, setup, habit, "drop" from users
),

-- Driven by segments × arms, so an arm without users still gets its rows
-- (with zero counts) and count() never yields NULL.
by_arm as (
    select
        s.segment_name,
        a.variant,
        count(u.ab_group) as users,
        count(case when u.activation then 1 end) as activation,
        count(case when u.setup then 1 end) as setup,
        count(case when u.habit then 1 end) as habit,
        count(case when u."drop" then 1 end) as dropped
    from (values ('Individuals'), ('Sellers'), ('All')) as s (segment_name)
    cross join arms as a
    left join with_total as u on u.segment_name = s.segment_name and u.ab_group = a.variant
    group by s.segment_name, a.variant
),

metrics as (
    select 'activation' as metric, segment_name, variant, users, activation as successes from by_arm
    union all
    select 'setup' as metric, segment_name, variant, users, setup as successes from by_arm
    union all
    select 'habit' as metric, segment_name, variant, users, habit as successes from by_arm
    union all
    select 'drop' as metric, segment_name, variant, users, dropped as successes from by_arm
),

paired as (
    select
        t.metric,
        t.segment_name,
        t.variant,
        c.successes as control_successes,
        c.users as control_trials,
        t.successes as treatment_successes,
        t.users as treatment_trials,
        coalesce(s.srm_detected, false) as srm_failed
    from metrics as t
    inner join metrics as c
        on c.metric = t.metric and c.segment_name = t.segment_name
        and c.variant = setting('control_variant')
    left join srm as s on s.segment_name = t.segment_name
    where t.variant <> setting('control_variant')
),

compared as (
    select * from {{ ab_comparison('paired', 'metric, segment_name') }} as compared
),

final as (
    select
        metric,
        segment_name,
        variant,
        control_trials as control_users,
        control_successes,
        control_rate,
        treatment_trials as treatment_users,
        treatment_successes,
        treatment_rate,
        abs_diff,
        relative_lift,
        z_score,
        p_value,
        p_value_adjusted,
        ci_low,
        ci_high,
        significant,
        chance_to_beat_control,
        expected_loss,
        seq_ci_low,
        seq_ci_high,
        seq_significant,
        srm_failed,
        decision
    from compared
)

select * from final
