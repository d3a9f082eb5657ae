-- gold_ab_funnel_comparison: every non-control variant against control per
-- experiment, device, culture, group_value, date range and step
-- (docs/models.md §3.6, §3.8, §3.9): successes = distinct users at the step,
-- trials = distinct users at step 1, both from cumulativeRaw. A variant or
-- control that was not fetched leaves its side and the statistics NULL; an
-- experiment with control alone has one row per step with variant NULL.
-- p-values are Holm-adjusted across the variants of one experiment, segment
-- and step; an experiment whose arms' step-1 users fail the SRM test (equal
-- shares) keeps its rows, marked invalid.
with summary as (
    select * from gold_ab_funnel_summary
),

control as (
    select * from summary where variant = setting('control_variant')
),

arms as (
    select * from summary where variant <> setting('control_variant')
),

steps as (
    select experiment_id, device, culture, group_value, start_date, end_date, step, min(stage) as stage
    from summary
    group by experiment_id, device, culture, group_value, start_date, end_date, step
),

variants as (
    select distinct experiment_id, device, culture, group_value, start_date, end_date, variant
    from arms
),

-- Every step of an experiment for each of its non-control variants.
grid as (
    select s.*, v.variant
    from steps as s
    left join variants as v
        on v.experiment_id = s.experiment_id and v.device = s.device and v.culture = s.culture
        and v.group_value = s.group_value and v.start_date = s.start_date and v.end_date = s.end_date
),

first_steps as (
    select experiment_id, variant, device, culture, group_value, start_date, end_date, users as step1_users
    from summary
    where step = 1
),

paired as (
    select
        g.*,
        c.users as control_users,
        c.conversion_from_start as control_conversion,
        t.users as treatment_users,
        t.conversion_from_start as treatment_conversion,
        fc.step1_users as control_trials,
        ft.step1_users as treatment_trials
    from grid as g
    left join control as c
        on c.experiment_id = g.experiment_id and c.device = g.device and c.culture = g.culture
        and c.group_value = g.group_value and c.start_date = g.start_date and c.end_date = g.end_date
        and c.step = g.step
    left join arms as t
        on t.variant = g.variant and t.experiment_id = g.experiment_id and t.device = g.device
        and t.culture = g.culture and t.group_value = g.group_value
        and t.start_date = g.start_date and t.end_date = g.end_date and t.step = g.step
    left join first_steps as fc
        on fc.variant = setting('control_variant') and fc.experiment_id = g.experiment_id
        and fc.device = g.device and fc.culture = g.culture and fc.group_value = g.group_value
        and fc.start_date = g.start_date and fc.end_date = g.end_date
    left join first_steps as ft
        on ft.variant = g.variant and ft.experiment_id = g.experiment_id and ft.device = g.device
        and ft.culture = g.culture and ft.group_value = g.group_value
        and ft.start_date = g.start_date and ft.end_date = g.end_date
),

-- SRM per experiment and segment: the arms' step-1 users against equal shares.
srm as (
    select
        experiment_id, device, culture, group_value, start_date, end_date,
        chi2_sf(
            sum((step1_users - expected) * (step1_users - expected) / expected),
            count(*) - 1
        ) as srm_p_value
    from (
        select
            *,
            sum(step1_users) over (partition by experiment_id, device, culture, group_value, start_date, end_date)
                / cast(count(*) over (partition by experiment_id, device, culture, group_value, start_date, end_date) as double)
                as expected
        from first_steps
    ) as arm_sizes
    where expected > 0
    group by experiment_id, device, culture, group_value, start_date, end_date
),

with_stats as (
    select
        p.*,
        ab_test(control_users, control_trials, treatment_users, treatment_trials, param('alpha')) as stats,
        seq_ci(control_users, control_trials, treatment_users, treatment_trials, param('alpha'), param('sequential_tuning')) as seq,
        coalesce(s.srm_p_value < param('srm_alpha'), false) as srm_failed
    from paired as p
    left join srm as s
        on s.experiment_id = p.experiment_id and s.device = p.device and s.culture = p.culture
        and s.group_value = p.group_value and s.start_date = p.start_date and s.end_date = p.end_date
),

-- Holm–Bonferroni over the variants of one experiment, segment and step:
-- the j-th smallest of m p-values becomes max over i ≤ j of (m − i + 1) p_(i), capped at 1.
ranked as (
    select
        *,
        get_field(stats, 'p_value') as p_value,
        cast(count(get_field(stats, 'p_value')) over (
            partition by experiment_id, device, culture, group_value, start_date, end_date, step
        ) as double) as m,
        cast(row_number() over (
            partition by experiment_id, device, culture, group_value, start_date, end_date, step
            order by get_field(stats, 'p_value') asc nulls last, variant
        ) as double) as j
    from with_stats
),

holm as (
    select
        *,
        max((m - j + 1) * p_value) over (
            partition by experiment_id, device, culture, group_value, start_date, end_date, step
            order by p_value asc nulls last, variant
            rows between unbounded preceding and current row
        ) as holm_running
    from ranked
),

adjusted as (
    select
        *,
        case
            when p_value is null then null
            when holm_running > 1 then 1.0
            else holm_running
        end as p_value_adjusted
    from holm
),

decided as (
    select
        *,
        not srm_failed and coalesce(p_value_adjusted < param('alpha'), false) as is_significant
    from adjusted
),

final as (
    select
        experiment_id,
        device,
        culture,
        group_value,
        start_date,
        end_date,
        step,
        stage,
        variant,
        control_users,
        control_conversion,
        treatment_users,
        treatment_conversion,
        get_field(stats, 'abs_diff') as abs_diff,
        get_field(stats, 'relative_lift') as relative_lift,
        get_field(stats, 'z_score') as z_score,
        p_value,
        p_value_adjusted,
        get_field(stats, 'ci_low') as ci_low,
        get_field(stats, 'ci_high') as ci_high,
        is_significant as significant,
        chance_to_beat_control(control_users, control_trials, treatment_users, treatment_trials) as chance_to_beat_control,
        expected_loss(control_users, control_trials, treatment_users, treatment_trials) as expected_loss,
        get_field(seq, 'seq_ci_low') as seq_ci_low,
        get_field(seq, 'seq_ci_high') as seq_ci_high,
        not srm_failed and get_field(seq, 'seq_significant') as seq_significant,
        srm_failed,
        case
            when srm_failed then 'invalid: sample ratio mismatch'
            when is_significant and get_field(stats, 'abs_diff') > 0 then 'ship'
            when is_significant and get_field(stats, 'abs_diff') < 0 then 'stop'
            else 'keep running'
        end as decision
    from decided
)

select * from final
