-- silver_amplitude_funnel_daily: one row per funnel (experiment, variant,
-- device, culture, group_value) × date × step (grain), for dates on or before
-- the as-of date. When envelopes overlap, the most recently fetched wins.
with ranked as (
    select
        *,
        row_number() over (
            partition by experiment_id, variant, device, culture, group_value, date, step
            order by fetched_at desc nulls last, _source_file desc, _source_line desc
        ) as version_rank
    from bronze_amplitude_funnel_daily
),

final as (
    select
        experiment_id,
        variant,
        device,
        culture,
        group_value,
        date,
        step,
        stage,
        users,
        fetched_at
    from ranked
    where version_rank = 1
      and date <= as_of_date()
)

select * from final
