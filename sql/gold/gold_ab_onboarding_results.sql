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

-- Users are aggregated once per segment and arm (a CTE is re-evaluated at
-- every reference, and the users table is the one large input).
per_segment as (
    select
        segment_name,
        ab_group,
        count(*) as users,
        count(case when activation then 1 end) as activation,
        count(case when setup then 1 end) as setup,
        count(case when habit then 1 end) as habit,
        count(case when "drop" then 1 end) as dropped
    from users
    group by segment_name, ab_group
),

with_total as (
    select * from per_segment
    union all
    select
        'All' as segment_name,
        ab_group,
        sum(users) as users,
        sum(activation) as activation,
        sum(setup) as setup,
        sum(habit) as habit,
        sum(dropped) as dropped
    from per_segment
    group by ab_group
),

-- Driven by segments × arms, so an arm without users still gets its rows
-- (with zero counts).
by_arm as (
    select
        s.segment_name,
        a.variant,
        coalesce(u.users, 0) as users,
        coalesce(u.activation, 0) as activation,
        coalesce(u.setup, 0) as setup,
        coalesce(u.habit, 0) as habit,
        coalesce(u.dropped, 0) as dropped
    from (values ('Individuals'), ('Sellers'), ('All')) as s (segment_name)
    cross join arms as a
    left join with_total as u on u.segment_name = s.segment_name and u.ab_group = a.variant
),

-- One row per metric × segment × arm, and control's counts beside each.
metrics as (
    select
        m.metric,
        b.segment_name,
        b.variant,
        b.users,
        case m.metric
            when 'activation' then b.activation
            when 'setup' then b.setup
            when 'habit' then b.habit
            else b.dropped
        end as successes
    from by_arm as b
    cross join (values ('activation'), ('setup'), ('habit'), ('drop')) as m (metric)
),

with_control as (
    select
        *,
        max(case when variant = setting('control_variant') then successes end)
            over (partition by metric, segment_name) as control_successes,
        max(case when variant = setting('control_variant') then users end)
            over (partition by metric, segment_name) as control_trials
    from metrics
),

paired as (
    select
        t.metric,
        t.segment_name,
        t.variant,
        t.control_successes,
        t.control_trials,
        t.successes as treatment_successes,
        t.users as treatment_trials,
        coalesce(s.srm_detected, false) as srm_failed
    from with_control as t
    left join srm as s on s.segment_name = t.segment_name
    where t.variant <> setting('control_variant') and t.control_trials is not null
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
