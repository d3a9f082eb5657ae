-- silver_usage_logs: one row per usage_id (grain) on or before the as-of
-- date. metadata stays the JSON text it arrived as: a malformed value is no
-- reason to drop a row.
with final as (
    select
        usage_id,
        user_id,
        feature_key,
        occurred_at,
        utc_date(occurred_at) as usage_date,
        metadata
    from {{ latest_rows('bronze_usage_logs') }} as latest
)

select * from final
