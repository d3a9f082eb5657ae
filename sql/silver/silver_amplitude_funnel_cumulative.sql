-- silver_amplitude_funnel_cumulative: one row per funnel (experiment,
-- variant, device, culture, group_value) × date range × step (grain), from
-- cumulativeRaw: distinct users over the whole range. Ranges that start after
-- the as-of date are left out; re-fetches keep the most recent envelope.
with ranked as (
    select
        *,
        row_number() over (
            partition by experiment_id, variant, device, culture, group_value, start_date, end_date, step
            order by fetched_at desc nulls last, _source_file desc, _source_line desc
        ) as version_rank
    from bronze_amplitude_funnel_cumulative
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
        fetched_at,
        pruned_result,
        hit_chunk_group_by_limit,
        min_sample_rate
    from ranked
    where version_rank = 1
      and start_date <= as_of_date()
)

select * from final
