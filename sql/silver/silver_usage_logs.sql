-- silver_usage_logs: one row per usage_id (grain) on or before the as-of
-- date. metadata stays the JSON text it arrived as: a malformed value is no
-- reason to drop a row.
with ranked as (
    select
        *,
        row_number() over (
            partition by usage_id
            order by _source_file desc, _source_line desc
        ) as version_rank
    from bronze_usage_logs
),

final as (
    select
        usage_id,
        user_id,
        feature_key,
        occurred_at,
        cast(occurred_at as date) as usage_date,
        metadata
    from ranked
    where version_rank = 1
      and cast(occurred_at as date) <= as_of_date()
)

select * from final
