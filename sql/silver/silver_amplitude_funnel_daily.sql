-- silver_amplitude_funnel_daily: one row per funnel (experiment, variant,
-- device, culture, group_value) × date × step (grain), for dates on or before
-- the as-of date. When envelopes overlap, the most recently fetched wins.
with final as (
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
    from {{ latest_rows('bronze_amplitude_funnel_daily') }} as latest
    where date <= as_of_date()
)

select * from final
