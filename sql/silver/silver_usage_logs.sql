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
    -- The filter keeps the cast: DataFusion estimates its selectivity from
    -- column statistics, which it cannot behind utc_date() (docs/performance.md).
    where cast(occurred_at as date) <= as_of_date()
)

select * from final
