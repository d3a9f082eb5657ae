-- gold_ab_funnel_summary: one row per funnel × date range × step with the
-- distinct users of cumulativeRaw (docs/models.md §3.6).
--   conversion_from_start = users / users at step 1
--   step_conversion       = users / users at the previous step (1.0 at step 1)
-- NULL where the denominator is 0.
with funnels as (
    select
        *,
        first_value(users) over (
            partition by experiment_id, variant, device, culture, group_value, start_date, end_date
            order by step
        ) as first_step_users,
        lag(users) over (
            partition by experiment_id, variant, device, culture, group_value, start_date, end_date
            order by step
        ) as previous_step_users
    from silver_amplitude_funnel_cumulative
),

final as (
    select
        experiment_id,
        variant,
        device,
        culture,
        group_value,
        start_date,
        end_date,
        step,
        stage,
        users,
        cast(users as double) / nullif(first_step_users, 0) as conversion_from_start,
        case
            when step = 1 then 1.0
            else cast(users as double) / nullif(previous_step_users, 0)
        end as step_conversion
    from funnels
)

select * from final
