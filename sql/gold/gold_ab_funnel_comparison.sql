-- gold_ab_funnel_comparison: treatment against control per experiment,
-- device, culture, group_value, date range and step (docs/models.md §3.6, §3.8):
-- successes = distinct users at the step, trials = distinct users at step 1,
-- both from cumulativeRaw. A variant that was not fetched leaves its side and
-- the statistics NULL.
with summary as (
    select * from gold_ab_funnel_summary
),

control as (
    select * from summary where variant = 'control'
),

treatment as (
    select * from summary where variant = 'treatment'
),

first_steps as (
    select experiment_id, variant, device, culture, group_value, start_date, end_date, users as step1_users
    from summary
    where step = 1
),

paired as (
    select
        coalesce(c.experiment_id, t.experiment_id) as experiment_id,
        coalesce(c.device, t.device) as device,
        coalesce(c.culture, t.culture) as culture,
        coalesce(c.group_value, t.group_value) as group_value,
        coalesce(c.start_date, t.start_date) as start_date,
        coalesce(c.end_date, t.end_date) as end_date,
        coalesce(c.step, t.step) as step,
        coalesce(c.stage, t.stage) as stage,
        c.users as control_users,
        c.conversion_from_start as control_conversion,
        t.users as treatment_users,
        t.conversion_from_start as treatment_conversion
    from control as c
    full outer join treatment as t
        on t.experiment_id = c.experiment_id
        and t.device = c.device
        and t.culture = c.culture
        and t.group_value = c.group_value
        and t.start_date = c.start_date
        and t.end_date = c.end_date
        and t.step = c.step
),

with_trials as (
    select
        p.*,
        fc.step1_users as control_trials,
        ft.step1_users as treatment_trials
    from paired as p
    left join first_steps as fc
        on fc.variant = 'control' and fc.experiment_id = p.experiment_id and fc.device = p.device
        and fc.culture = p.culture and fc.group_value = p.group_value
        and fc.start_date = p.start_date and fc.end_date = p.end_date
    left join first_steps as ft
        on ft.variant = 'treatment' and ft.experiment_id = p.experiment_id and ft.device = p.device
        and ft.culture = p.culture and ft.group_value = p.group_value
        and ft.start_date = p.start_date and ft.end_date = p.end_date
),

with_stats as (
    select
        *,
        ab_test(control_users, control_trials, treatment_users, treatment_trials, param('alpha')) as stats
    from with_trials
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
        control_users,
        control_conversion,
        treatment_users,
        treatment_conversion,
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
