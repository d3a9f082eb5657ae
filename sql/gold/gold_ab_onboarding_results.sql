-- gold_ab_onboarding_results: one row per metric (activation, setup, habit,
-- drop) × segment_name (Individuals, Sellers, All), always all twelve, with
-- the two-proportion test of docs/models.md §3.8 (treatment against control).
-- Successes of `drop` are users whose return = 0 (unknown counts as no drop).
with users as (
    select * from gold_user_onboarding_metrics
),

with_total as (
    select segment_name, ab_group, activation, setup, habit, "drop" from users
    union all
    select 'All' as segment_name, ab_group, activation, setup, habit, "drop" from users
),

-- Driven by the list of segments, so a segment without users still gets its
-- rows (with zero counts) and count() never yields NULL.
by_segment as (
    select
        s.segment_name,
        count(case when u.ab_group = 'control' then 1 end) as control_users,
        count(case when u.ab_group = 'treatment' then 1 end) as treatment_users,
        count(case when u.ab_group = 'control' and u.activation then 1 end) as control_activation,
        count(case when u.ab_group = 'treatment' and u.activation then 1 end) as treatment_activation,
        count(case when u.ab_group = 'control' and u.setup then 1 end) as control_setup,
        count(case when u.ab_group = 'treatment' and u.setup then 1 end) as treatment_setup,
        count(case when u.ab_group = 'control' and u.habit then 1 end) as control_habit,
        count(case when u.ab_group = 'treatment' and u.habit then 1 end) as treatment_habit,
        count(case when u.ab_group = 'control' and u."drop" then 1 end) as control_drop,
        count(case when u.ab_group = 'treatment' and u."drop" then 1 end) as treatment_drop
    from (values ('Individuals'), ('Sellers'), ('All')) as s (segment_name)
    left join with_total as u on u.segment_name = s.segment_name
    group by s.segment_name
),

tested as (
    select 'activation' as metric, segment_name, control_users, control_activation as control_successes,
           treatment_users, treatment_activation as treatment_successes
    from by_segment
    union all
    select 'setup' as metric, segment_name, control_users, control_setup as control_successes,
           treatment_users, treatment_setup as treatment_successes
    from by_segment
    union all
    select 'habit' as metric, segment_name, control_users, control_habit as control_successes,
           treatment_users, treatment_habit as treatment_successes
    from by_segment
    union all
    select 'drop' as metric, segment_name, control_users, control_drop as control_successes,
           treatment_users, treatment_drop as treatment_successes
    from by_segment
),

with_stats as (
    select
        *,
        ab_test(control_successes, control_users, treatment_successes, treatment_users, param('alpha')) as stats
    from tested
),

final as (
    select
        metric,
        segment_name,
        control_users,
        control_successes,
        get_field(stats, 'control_rate') as control_rate,
        treatment_users,
        treatment_successes,
        get_field(stats, 'treatment_rate') as treatment_rate,
        get_field(stats, 'abs_diff') as abs_diff,
        get_field(stats, 'relative_lift') as relative_lift,
        get_field(stats, 'z_score') as z_score,
        get_field(stats, 'p_value') as p_value,
        get_field(stats, 'ci_low') as ci_low,
        get_field(stats, 'ci_high') as ci_high,
        get_field(stats, 'significant') as significant
    from with_stats
)

select * from final
