-- gold_ab_funnel_comparison: every non-control variant against control per
-- experiment, device, culture, group_value, date range and step
-- (docs/models.md §3.6, §3.8, §3.9): successes = distinct users at the step,
-- trials = distinct users at step 1, both from cumulativeRaw. A variant or
-- control that was not fetched leaves its side and the statistics NULL; an
-- experiment with control alone has one row per step with variant NULL.
-- p-values are Holm-adjusted across the variants of one experiment, segment
-- and step; an experiment whose arms' step-1 users fail the SRM test (against
-- `[[amplitude.experiments]] shares`, equal when absent) keeps its rows,
-- marked invalid. The statistics are the shared ab_comparison macro.
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

shares as (
    select * from {{ experiment_shares() }} as shares
),

configured as (
    select distinct experiment_id from shares
),

-- Each arm's expected share: the configured one (an arm missing from a
-- configured list is left out of the test), or equal shares when the
-- experiment has none configured.
arm_shares as (
    select
        f.*,
        case when cfg.experiment_id is null then 1.0 else sh.share end as share
    from first_steps as f
    left join shares as sh on sh.experiment_id = f.experiment_id and sh.variant = f.variant
    left join configured as cfg on cfg.experiment_id = f.experiment_id
),

-- SRM per experiment and segment: the arms' step-1 users against their
-- shares, χ² with k − 1 degrees of freedom.
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
                * share
                / sum(share) over (partition by experiment_id, device, culture, group_value, start_date, end_date)
                as expected
        from arm_shares
        where share is not null
    ) as arm_sizes
    where expected > 0
    group by experiment_id, device, culture, group_value, start_date, end_date
),

gated as (
    select
        p.*,
        p.control_users as control_successes,
        p.treatment_users as treatment_successes,
        coalesce(s.srm_p_value < param('srm_alpha'), false) as srm_failed
    from paired as p
    left join srm as s
        on s.experiment_id = p.experiment_id and s.device = p.device and s.culture = p.culture
        and s.group_value = p.group_value and s.start_date = p.start_date and s.end_date = p.end_date
),

compared as (
    select * from {{ ab_comparison('gated', 'experiment_id, device, culture, group_value, start_date, end_date, step') }} as compared
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
