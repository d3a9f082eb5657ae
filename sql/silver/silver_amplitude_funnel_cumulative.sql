-- silver_amplitude_funnel_cumulative: one row per funnel (experiment,
-- variant, device, culture, group_value) × date range × step (grain), from
-- cumulativeRaw: distinct users over the whole range. Ranges that start after
-- the as-of date are left out; re-fetches keep the most recent envelope.
with final as (
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
        fetched_at,
        pruned_result,
        hit_chunk_group_by_limit,
        min_sample_rate
    from {{ latest_rows('bronze_amplitude_funnel_cumulative') }} as latest
    where start_date <= as_of_date()
)

select * from final
