-- gold_ab_funnel_daily: users who entered the funnel on `date` and reached
-- `step` (docs/models.md §3.6). One row per funnel × day × step. Never sum these rows
-- over days for totals: a user entering on several days counts once per day;
-- totals are in gold_ab_funnel_summary.
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
        users
    from silver_amplitude_funnel_daily
)

select * from final
